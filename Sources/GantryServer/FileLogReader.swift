import Foundation
import GantryAPI

/// A replica's log as the API reads it (directory mode). The supervisor appends output to
/// `path`; under the size cap `path` becomes `path.1` (the older half) and a new `path` starts.
/// Beside each file an index (`times`, injected: `LogTimes.load`) says at which byte offset the
/// output read at a time starts; it gives `sinceSeconds` and `timestamps`. Without an index a
/// line counts as written at its file's modification time.
public struct FileLogReader: LogReader {
    public let path: String
    /// Whether the replica can still write (follow ends once it cannot and all is read).
    let isLive: @Sendable () -> Bool
    let now: @Sendable () -> Double
    let times: @Sendable (String) -> [(offset: Int, time: Double)]
    /// How long a follow waits between polls of the file.
    let pollInterval: Double

    public init(path: String, pollInterval: Double = 0.1, times: @escaping @Sendable (String) -> [(offset: Int, time: Double)],
                now: @escaping @Sendable () -> Double, isLive: @escaping @Sendable () -> Bool) {
        self.path = path; self.isLive = isLive; self.now = now; self.times = times; self.pollInterval = pollInterval
    }

    /// Where reading starts in one file: (offset, lines found after it when a tail was asked).
    func start(_ fd: Int32, file: String, _ options: LogOptions, wanted tail: Int?) -> (offset: Int, lines: Int) {
        var offset = 0
        if let since = options.sinceSeconds {
            let cutoff = now() - Double(max(since, 0))
            let idx = times(file)
            if idx.isEmpty {
                var st = stat()
                if fstat(fd, &st) == 0, Double(st.st_mtim.tv_sec) < cutoff { offset = FileLogReader.size(fd) }
            } else if let first = idx.first(where: { $0.time >= cutoff }) {
                offset = FileLogReader.lineStart(fd, atOrAfter: first.offset)
            } else {
                offset = FileLogReader.size(fd)
            }
        }
        guard let tail else { return (offset, 0) }
        let t = FileLogReader.tailStart(fd, lines: max(tail, 0))
        return (max(offset, t.offset), t.lines)
    }

    public func read(_ options: LogOptions, emit: ([UInt8]) -> Bool) throws(APIError) {
        var fd = open(path, O_RDONLY | O_CLOEXEC)
        // A follow of a replica that has not written yet waits for its log to appear.
        while fd < 0 && options.follow && isLive() {
            if !emit([]) { return }
            usleep(UInt32(pollInterval * 1e6))
            fd = open(path, O_RDONLY | O_CLOEXEC)
        }
        guard fd >= 0 else { throw .notFound("no log yet for this replica") }
        defer { close(fd) }
        var budget = options.limitBytes ?? Int.max
        func send(_ bytes: [UInt8], file: String, at start: Int, index: inout [(offset: Int, time: Double)]) -> Bool {
            guard !bytes.isEmpty else { return emit([]) }
            var out = bytes
            if options.timestamps {
                if index.last.map({ $0.offset < start + bytes.count }) ?? true { index = times(file) }
                out = FileLogReader.stamp(bytes, startingAt: start, times: index, fallback: now())
            }
            if out.count >= budget { _ = emit(Array(out.prefix(budget))); budget = 0; return false }
            budget -= out.count
            return emit(out)
        }
        let current = start(fd, file: path, options, wanted: options.tail)
        // The older half first, when what is asked for reaches back into it.
        let older = path + ".1"
        let reachesBack = options.tail.map { current.offset == 0 && current.lines < $0 } ?? (current.offset == 0)
        if reachesBack {
            let ofd = open(older, O_RDONLY | O_CLOEXEC)
            if ofd >= 0 {
                defer { close(ofd) }
                let remaining = options.tail.map { max($0 - current.lines, 0) }
                let s = start(ofd, file: older, options, wanted: remaining)
                if remaining != 0 {
                    var index: [(offset: Int, time: Double)] = options.timestamps ? times(older) : []
                    var off = s.offset
                    while let (bytes, next) = FileLogReader.chunk(ofd, at: off, final: true) {
                        if !send(bytes, file: older, at: off, index: &index) { return }
                        off = next
                    }
                }
            }
        }
        var offset = current.offset
        var index: [(offset: Int, time: Double)] = options.timestamps ? times(path) : []
        var quietSince = now()
        while true {
            if let (bytes, next) = FileLogReader.chunk(fd, at: offset, final: false) {
                if !send(bytes, file: path, at: offset, index: &index) { return }
                offset = next
                quietSince = now()
                continue
            }
            // At the end of what is whole lines.
            let size = FileLogReader.size(fd)
            if options.follow, FileLogReader.replaced(path, fd) {
                // Rotated: the rest of the old file, then the new one from its start.
                while let (bytes, next) = FileLogReader.chunk(fd, at: offset, final: true) {
                    if !send(bytes, file: path + ".1", at: offset, index: &index) { return }
                    offset = next
                }
                let nfd = open(path, O_RDONLY | O_CLOEXEC)
                if nfd >= 0 { close(fd); fd = nfd; offset = 0; index = []; continue }
            }
            let live = options.follow && isLive()
            // A partial last line goes out when the log is done, or after a quiet second.
            if size > offset, !live || now() - quietSince > 1 {
                if let (bytes, next) = FileLogReader.chunk(fd, at: offset, final: true) {
                    if !send(bytes, file: path, at: offset, index: &index) { return }
                    offset = next
                }
            }
            if !live { return }
            // An empty write tells whether the client is still there.
            if !emit([]) { return }
            usleep(UInt32(pollInterval * 1e6))
        }
    }

    /// Up to 64 KiB from `offset`, cut after the last newline (all of it when `final`); nil at
    /// the end (or when only a partial line is there and not `final`).
    static func chunk(_ fd: Int32, at offset: Int, final: Bool) -> ([UInt8], Int)? {
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n > 0 else { return nil }
        if final { return (Array(buf[0..<n]), offset + n) }
        guard let nl = buf[0..<n].lastIndex(of: 10) else {
            // A line longer than the buffer goes out in pieces.
            return n == buf.count ? (buf, offset + n) : nil
        }
        return (Array(buf[...nl]), offset + nl + 1)
    }

    /// Whether `path` now names another file than `fd` (the log was rotated).
    static func replaced(_ path: String, _ fd: Int32) -> Bool {
        var a = stat(), b = stat()
        guard fstat(fd, &a) == 0 else { return false }
        guard stat(path, &b) == 0 else { return false }
        return a.st_ino != b.st_ino || a.st_dev != b.st_dev
    }

    static func size(_ fd: Int32) -> Int {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Prefixes every line of `bytes` (which starts at file offset `start`) with its time.
    static func stamp(_ bytes: [UInt8], startingAt start: Int, times: [(offset: Int, time: Double)], fallback: Double) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 8)
        var lineStart = 0
        while lineStart < bytes.count {
            let end = bytes[lineStart...].firstIndex(of: 10).map { $0 + 1 } ?? bytes.count
            let t = LogTimes.time(at: start + lineStart, in: times) ?? times.first?.time ?? fallback
            out.append(contentsOf: Array(rfc3339Nanos(t).utf8))
            out.append(32)
            out.append(contentsOf: bytes[lineStart..<end])
            lineStart = end
        }
        return out
    }

    /// `2026-11-30T01:02:03.123456789Z`.
    public static func rfc3339Nanos(_ t: Double) -> String {
        let whole = t.rounded(.down)
        let secs = Int64(exactly: whole) ?? 0
        let nanos = Int64(((t - whole) * 1e9).rounded(.down))
        let base = Timestamp(seconds: secs).rfc3339   // ends with "Z"
        var digits = String(max(0, min(nanos, 999_999_999)))
        while digits.count < 9 { digits = "0" + digits }
        return String(base.dropLast()) + "." + digits + "Z"
    }

    /// The first line start at or after `offset`.
    static func lineStart(_ fd: Int32, atOrAfter offset: Int) -> Int {
        if offset <= 0 { return 0 }
        var byte: UInt8 = 0
        guard pread(fd, &byte, 1, off_t(offset - 1)) == 1, byte != 10 else { return offset }
        var buf = [UInt8](repeating: 0, count: 4096)
        var pos = offset
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(pos)) }
            if n <= 0 { return pos }
            if let i = buf[0..<n].firstIndex(of: 10) { return pos + i + 1 }
            pos += n
        }
    }

    /// Where the last `lines` lines start (reading backwards in blocks), and how many lines
    /// were found (fewer than asked when the file has fewer).
    static func tailStart(_ fd: Int32, lines: Int) -> (offset: Int, lines: Int) {
        let size = size(fd)
        if lines == 0 || size == 0 { return (size, 0) }
        var pos = size
        var newlines = 0
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while pos > 0 {
            let n = min(buf.count, pos)
            pos -= n
            let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n, off_t(pos)) }
            guard got == n else { return (0, newlines) }
            var i = n - 1
            while i >= 0 {
                // A final newline ends the last line; it does not start another.
                if buf[i] == 10 && pos + i != size - 1 {
                    newlines += 1
                    if newlines == lines { return (pos + i + 1, newlines) }
                }
                i -= 1
            }
        }
        return (0, newlines + 1)
    }
}
