/// A Kubernetes resource quantity (`8`, `500m`, `64Gi`, `1Ti`, `2e3`, `1.5`), held exactly in
/// thousandths of a unit. The text the user wrote is kept for output. Values beyond
/// ±9.2e15 units (about 8 PiB) are rejected rather than rounded.
public struct Quantity: Sendable, Hashable, Comparable, CustomStringConvertible {
    public private(set) var milli: Int64
    public private(set) var text: String

    public init(milli: Int64) { self.milli = milli; self.text = Quantity.format(milli: milli) }
    public init(units: Int64) { self.init(milli: units * 1000) }

    public static func == (a: Quantity, b: Quantity) -> Bool { a.milli == b.milli }
    public func hash(into h: inout Hasher) { h.combine(milli) }
    public static func < (a: Quantity, b: Quantity) -> Bool { a.milli < b.milli }
    public var description: String { text }
    public static let zero = Quantity(milli: 0)

    /// Whole units when the quantity has no fractional part.
    public var wholeUnits: Int64? { milli % 1000 == 0 ? milli / 1000 : nil }

    public enum ParseError: Error, Equatable, Sendable {
        case malformed, tooLarge, tooPrecise
    }

    private static let binary: [String: Int64] = ["Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60]
    private static let decimalExp: [String: Int] = ["n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18]

    /// Parses Kubernetes quantity syntax: `[+-]digits[.digits](suffix | [eE][+-]digits)`.
    public static func parse(_ raw: String) throws(ParseError) -> Quantity {
        let s = raw.trimmingSpaces
        var bytes = Array(s.utf8)[...]
        guard !bytes.isEmpty else { throw .malformed }
        var negative = false
        if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { negative = bytes.first == UInt8(ascii: "-"); bytes = bytes.dropFirst() }
        var intDigits: [UInt8] = [], fracDigits: [UInt8] = []
        while let c = bytes.first, c >= 0x30 && c <= 0x39 { intDigits.append(c - 0x30); bytes = bytes.dropFirst() }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            while let c = bytes.first, c >= 0x30 && c <= 0x39 { fracDigits.append(c - 0x30); bytes = bytes.dropFirst() }
        }
        guard !(intDigits.isEmpty && fracDigits.isEmpty) else { throw .malformed }
        let suffix = String(decoding: bytes, as: UTF8.self)
        var exp10 = 0
        var mult: Int64 = 1
        if let b = binary[suffix] { mult = b } else if let e = decimalExp[suffix] { exp10 = e } else if let f = suffix.first, f == "e" || f == "E" {
            guard let e = Int(suffix.dropFirst()), abs(e) <= 30 else { throw .malformed }
            exp10 = e
        } else { throw .malformed }
        // value = 0.intfrac * 10^(len(int)) * 10^exp10 * mult, in milli units => exp10 + 3
        var digits = intDigits + fracDigits
        var scale = exp10 + 3 - fracDigits.count   // value_milli = digits * 10^scale * mult
        while digits.count > 1 && digits.first == 0 { digits.removeFirst() }
        var mantissa: Int64 = 0
        for d in digits {
            let (m1, o1) = mantissa.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(Int64(d))
            if o1 || o2 { throw .tooLarge }
            mantissa = m2
        }
        if mantissa == 0 { return Quantity(raw: s, milli: 0) }
        while scale < 0 {
            // drop trailing zeros exactly; anything else is finer than a milli-unit
            if mantissa % 10 != 0 {
                // allow binary multipliers to absorb precision (e.g. 0.5Ki = 512)
                if mult > 1 {
                    let (p, o) = mantissa.multipliedReportingOverflow(by: mult)
                    if o { throw .tooLarge }
                    mantissa = p; mult = 1
                    continue
                }
                throw .tooPrecise
            }
            mantissa /= 10; scale += 1
        }
        var value = mantissa
        for _ in 0..<scale {
            let (p, o) = value.multipliedReportingOverflow(by: 10)
            if o { throw .tooLarge }
            value = p
        }
        let (p, o) = value.multipliedReportingOverflow(by: mult)
        if o || p > 9_200_000_000_000_000_000 / 1 { throw .tooLarge }
        return Quantity(raw: s, milli: negative ? -p : p)
    }

    private init(raw: String, milli: Int64) { self.milli = milli; self.text = raw }

    static func format(milli: Int64) -> String {
        if milli % 1000 == 0 { return String(milli / 1000) }
        return "\(milli)m"
    }

    public static func + (a: Quantity, b: Quantity) -> Quantity { Quantity(milli: a.milli &+ b.milli) }
    public static func - (a: Quantity, b: Quantity) -> Quantity { Quantity(milli: a.milli &- b.milli) }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
