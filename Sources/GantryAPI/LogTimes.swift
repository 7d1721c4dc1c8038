import Glibc

/// The times of a replica's log output, from the index its supervisor keeps beside the log
/// (`<log>.times`: lines `OFFSET SECONDS.FRACTION`, the byte offset in the log where output
/// read at that time starts, at most one line per 100 ms). The log `FILE` and its older half
/// `FILE.1` each have their own index (`FILE.times`, `FILE.1.times`); offsets are within that
/// file. Output read between two index lines goes by the earlier time (up to 100 ms early).
public enum LogTimes {
    /// The index of the log file at `path` (reading `path + ".times"`), in offset order. Lines
    /// that do not read (a torn last line, garbage) are skipped; an offset lower than the one
    /// before means the log started over, and only what follows counts. Empty when there is no
    /// index. Reads at most the last 64 MiB of it.
    public static func load(path: String) -> [(offset: Int, time: Double)] {
        let fd = open(path + ".times", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        let size = Int(st.st_size)
        let limit = 64 << 20
        let from = max(0, size - limit)
        var data = [UInt8](repeating: 0, count: min(size, limit))
        var got = 0
        while got < data.count {
            let n = data.withUnsafeMutableBytes { raw in raw.baseAddress.map { pread(fd, $0 + got, raw.count - got, off_t(from + got)) } ?? 0 }
            if n > 0 { got += n } else if n < 0 && errno == EINTR { continue } else { break }
        }
        return parse(data[0..<got], skipFirst: from > 0)
    }

    /// Parses index text (see `load`); `skipFirst`: the first line may be cut (read from the middle).
    public static func parse<C: Collection>(_ bytes: C, skipFirst: Bool = false) -> [(offset: Int, time: Double)] where C.Element == UInt8 {
        var out: [(offset: Int, time: Double)] = []
        var line: [UInt8] = []
        var first = true
        for c in bytes {
            if c != 10 { if line.count <= 64 { line.append(c) }; continue }   // longer: no index line
            defer { line.removeAll(keepingCapacity: true); first = false }
            if first && skipFirst { continue }
            guard let e = entry(line) else { continue }
            if let last = out.last, e.offset < last.offset { out.removeAll() }
            out.append(e)
        }
        return out
    }

    static func entry(_ line: [UInt8]) -> (offset: Int, time: Double)? {
        guard line.count <= 64, let sp = line.firstIndex(of: 32) else { return nil }
        let a = String(decoding: line[..<sp], as: UTF8.self), b = String(decoding: line[(sp + 1)...], as: UTF8.self)
        guard !a.isEmpty, a.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let off = Int(a),
              !b.isEmpty, b.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 46 }), let t = Double(b), t.isFinite else { return nil }
        return (off, t)
    }

    /// The time of the output at byte `offset` of the log: that of the last index line at or
    /// before it. Nil before the first one (the supervisor's header line, or a log with no
    /// index).
    public static func time(at offset: Int, in entries: [(offset: Int, time: Double)]) -> Double? {
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if entries[mid].offset <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 ? entries[lo - 1].time : nil
    }
}
