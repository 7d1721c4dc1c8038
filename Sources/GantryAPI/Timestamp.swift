/// A point in time in whole seconds since the Unix epoch (UTC), printed as RFC 3339
/// (`2026-01-15T10:31:00Z`). Gantry's status times are second-resolution by contract.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: Int64
    public init(seconds: Int64) { self.seconds = seconds }
    /// Whole seconds of a time read as a Double (a clock, a stored REAL), rounded down; NaN
    /// is 0 and values out of Int64's range clamp to it, so no stored value can trap here.
    public init(secondsSince1970 t: Double) {
        seconds = t.isNaN ? 0 : t >= 9.2e18 ? .max : t <= -9.2e18 ? .min : Int64(t.rounded(.down))
    }
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.seconds < b.seconds }
    public var description: String { rfc3339 }

    public var rfc3339: String {
        // Floor division by remainder, so that no value (Int64.min included) overflows.
        let r = seconds % 86400
        let days = seconds / 86400 - (r < 0 ? 1 : 0), secs = r < 0 ? r + 86400 : r
        let (y, m, d) = Timestamp.civil(fromDays: days)
        func p2(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let yy = y >= 0 && y < 1000 ? String(repeating: "0", count: 4 - String(y).count) + String(y) : String(y)
        return "\(yy)-\(p2(m))-\(p2(d))T\(p2(secs / 3600)):\(p2(secs % 3600 / 60)):\(p2(secs % 60))Z"
    }

    /// Parses RFC 3339 (`2026-01-15T10:31:00Z`, fractional seconds and offsets accepted)
    /// or a bare date (`2026-01-15`, midnight UTC).
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        func num(_ from: Int, _ n: Int) -> Int64? {
            guard from + n <= b.count else { return nil }
            var v: Int64 = 0
            for k in from..<(from + n) { guard b[k] >= 0x30 && b[k] <= 0x39 else { return nil }; v = v * 10 + Int64(b[k] - 0x30) }
            return v
        }
        guard let y = num(0, 4), b.count >= 10, b[4] == UInt8(ascii: "-"), let mo = num(5, 2), b[7] == UInt8(ascii: "-"), let d = num(8, 2),
              (1...12).contains(mo), (1...31).contains(d) else { return nil }
        var total = Timestamp.days(fromCivil: y, mo, d) * 86400
        if b.count == 10 { self.seconds = total; return }
        guard b.count >= 19, b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
              let h = num(11, 2), b[13] == UInt8(ascii: ":"), let mi = num(14, 2), b[16] == UInt8(ascii: ":"), let s = num(17, 2),
              h < 24, mi < 60, s < 61 else { return nil }
        total += h * 3600 + mi * 60 + s
        var k = 19
        if k < b.count, b[k] == UInt8(ascii: ".") { k += 1; while k < b.count, b[k] >= 0x30 && b[k] <= 0x39 { k += 1 } }
        guard k < b.count else { return nil }
        if b[k] == UInt8(ascii: "Z") || b[k] == UInt8(ascii: "z") { guard k + 1 == b.count else { return nil } } else if b[k] == UInt8(ascii: "+") || b[k] == UInt8(ascii: "-") {
            guard let oh = num(k + 1, 2), k + 3 < b.count, b[k + 3] == UInt8(ascii: ":"), let om = num(k + 4, 2), k + 6 == b.count else { return nil }
            let off = oh * 3600 + om * 60
            total += b[k] == UInt8(ascii: "+") ? -off : off
        } else { return nil }
        self.seconds = total
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}

/// Human age like kubectl: `45s`, `12m`, `3h`, `5d`.
public func formatAge(from t: Timestamp, now: Timestamp) -> String {
    let (d, overflow) = now.seconds.subtractingReportingOverflow(t.seconds)
    let s = overflow ? (t.seconds < 0 ? Int64.max : 0) : max(0, d)
    if s < 120 { return "\(s)s" }
    if s < 7200 { return "\(s / 60)m" }
    if s < 172800 { return "\(s / 3600)h" }
    return "\(s / 86400)d"
}
