import GantryAPI

/// Which lines of a `timestamps=true` pod log were printed already: a poll asks for the
/// log since the last printed line's second and prints, without their timestamps, only
/// the lines after that line (several lines may share one timestamp).
struct LogCursor {
    var last: (Int64, Int64)?
    var atLast = 0

    /// `sinceTime` for the next read: the last printed line's whole second.
    var sinceTime: String? { last.map { Timestamp(seconds: $0.0).rfc3339 } }

    mutating func fresh(_ text: String) -> [String] {
        var out: [String] = []
        var seenAtLast = 0
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        for line in lines {
            guard let (ts, rest) = LogCursor.split(line) else { out.append(String(line)); continue }
            if let l = last {
                if ts < l { continue }
                if ts == l {
                    seenAtLast += 1
                    if seenAtLast <= atLast { continue }
                    atLast += 1
                    out.append(rest)
                    continue
                }
            }
            last = ts; atLast = 1; seenAtLast = 1
            out.append(rest)
        }
        return out
    }

    /// `2026-01-15T10:31:00.123456789Z text` as ((seconds, nanoseconds), text).
    static func split(_ line: Substring) -> ((Int64, Int64), String)? {
        guard let space = line.firstIndex(of: " ") else { return nil }
        let stamp = String(line[..<space])
        guard let t = Timestamp(rfc3339: stamp) else { return nil }
        var nanos: Int64 = 0
        if let dot = stamp.firstIndex(of: ".") {
            let digits = stamp[stamp.index(after: dot)...].prefix { $0.isASCII && $0.isNumber }.prefix(9)
            nanos = Int64(String(digits).padding(toLength: 9, withPad: "0", startingAt: 0)) ?? 0
        }
        return ((t.seconds, nanos), String(line[line.index(after: space)...]))
    }
}
