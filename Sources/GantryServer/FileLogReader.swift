import Foundation
import GantryAPI

/// A replica's log file as the API reads it (directory mode). The supervisor appends the
/// output to `path` and, beside it, `path.times`: lines `OFFSET SECONDS` saying that output
/// read at that time starts at that byte offset; that index gives `sinceSeconds` and
/// `timestamps` (the time a line was read). Without the index every line counts as written
/// at the file's modification time.
public struct FileLogReader: LogReader {
    public let path: String
    /// Whether the replica can still write (follow ends once it cannot and all is read).
    let isLive: @Sendable () -> Bool
    let now: @Sendable () -> Double
    /// How long a follow waits between polls of the file.
    let pollInterval: Double

    public init(path: String, pollInterval: Double = 0.1, now: @escaping @Sendable () -> Double, isLive: @escaping @Sendable () -> Bool) {
        self.path = path; self.isLive = isLive; self.now = now; self.pollInterval = pollInterval
    }

    public func read(_ options: LogOptions, emit: ([UInt8]) -> Bool) throws(APIError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .notFound("no log yet for this replica") }
        defer { close(fd) }
        var times = FileLogReader.loadTimes(path + ".times")
        var offset = 0
        if let since = options.sinceSeconds {
            let cutoff = now() - Double(max(since, 0))
            if times.isEmpty {
                var st = stat()
                if fstat(fd, &st) == 0, Double(st.st_mtim.tv_sec) < cutoff { offset = Int(st.st_size) }
            } else if let first = times.first(where: { $0.time >= cutoff }) {
                offset = FileLogReader.lineStart(fd, atOrAfter: first.offset)
            } else {
                offset = FileLogReader.size(fd)
            }
        }
        if let tail = options.tail {
            offset = max(offset, FileLogReader.tailStart(fd, lines: max(tail, 0)))
        }
        var budget = options.limitBytes ?? Int.max
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        var quietSince = now()
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n > 0 {
                var chunk = pending
                chunk.append(contentsOf: buf[0..<n])
                let start = offset - pending.count
                offset += n
                // Emit whole lines; keep a partial line for the next read.
                if let nl = chunk.lastIndex(of: 10) {
                    pending = Array(chunk[(nl + 1)...])
                    var out = Array(chunk[...nl])
                    if options.timestamps {
                        if times.count < 2 || times.last.map({ $0.offset < offset }) == true { times = FileLogReader.loadTimes(path + ".times") }
                        out = FileLogReader.stamp(out, startingAt: start, times: times, fallback: now())
                    }
                    if out.count > budget { _ = emit(Array(out.prefix(budget))); return }
                    budget -= out.count
                    if !emit(out) { return }
                } else {
                    pending = chunk
                }
                quietSince = now()
                continue
            }
            if n == 0, FileLogReader.size(fd) < offset - pending.count {
                // Truncated (the size cap restarted the file): read it again from the start.
                offset = 0; pending = []; continue
            }
            let live = options.follow && isLive()
            if !live {
                if !pending.isEmpty {
                    var out = pending
                    if options.timestamps { out = FileLogReader.stamp(out, startingAt: offset - pending.count, times: times, fallback: now()) }
                    _ = emit(Array(out.prefix(budget)))
                }
                return
            }
            // A partial line that stays partial is sent after a second, so a prompt shows.
            if !pending.isEmpty, now() - quietSince > 1 {
                let start = offset - pending.count
                var out = pending
                if options.timestamps { out = FileLogReader.stamp(out, startingAt: start, times: times, fallback: now()) }
                pending = []
                if out.count > budget { _ = emit(Array(out.prefix(budget))); return }
                budget -= out.count
                if !emit(out) { return }
            }
            // An empty write tells a follower whether the client is still there.
            if !emit([]) { return }
            usleep(UInt32(pollInterval * 1e6))
        }
    }

    static func size(_ fd: Int32) -> Int {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    /// The `.times` index: (offset, time) in offset order; malformed lines are skipped.
    public static func loadTimes(_ path: String) -> [(offset: Int, time: Double)] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var out: [(Int, Double)] = []
        for line in data.split(separator: 10) {
            let f = line.split(separator: 32)
            guard f.count == 2, let o = Int(String(decoding: f[0], as: UTF8.self)), let t = Double(String(decoding: f[1], as: UTF8.self)),
                  o >= 0, t.isFinite else { continue }
            if let last = out.last, o < last.0 { out.removeAll() }   // the file started again
            out.append((o, t))
        }
        return out
    }

    /// The time output at `offset` was read: the last index entry at or before it.
    static func time(at offset: Int, _ times: [(offset: Int, time: Double)]) -> Double? {
        var lo = 0, hi = times.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if times[mid].offset <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? nil : times[lo - 1].time
    }

    /// Prefixes every line of `bytes` (which starts at file offset `start`) with its time.
    static func stamp(_ bytes: [UInt8], startingAt start: Int, times: [(offset: Int, time: Double)], fallback: Double) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 8)
        var lineStart = 0
        while lineStart < bytes.count {
            let end = bytes[lineStart...].firstIndex(of: 10).map { $0 + 1 } ?? bytes.count
            let t = time(at: start + lineStart, times) ?? times.first?.time ?? fallback
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

    /// Where the last `lines` lines start (reading backwards in blocks).
    static func tailStart(_ fd: Int32, lines: Int) -> Int {
        let size = size(fd)
        if lines == 0 { return size }
        var pos = size
        var newlines = 0
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        // A final newline ends the last line; it does not start another.
        var skipFinal = true
        while pos > 0 {
            let n = min(buf.count, pos)
            pos -= n
            let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n, off_t(pos)) }
            guard got == n else { return 0 }
            var i = n - 1
            while i >= 0 {
                if buf[i] == 10 {
                    if skipFinal && pos + i == size - 1 { skipFinal = false; i -= 1; continue }
                    newlines += 1
                    if newlines == lines { return pos + i + 1 }
                }
                skipFinal = false
                i -= 1
            }
        }
        return 0
    }
}
