import GantryAPI

/// A Kubernetes-style label selector: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
/// `=` and `==` are equality; `!=` and `notin` also match objects without the label (as in
/// Kubernetes); `g` requires the label to exist, `!h` to be absent. An empty selector
/// matches everything. Parse errors are 400 naming the query parameter (`labels` unless told).
public struct LabelSelector: Sendable, Equatable {
    public enum Requirement: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, [String])
        case notIn(String, [String])
        case exists(String)
        case notExists(String)
    }
    public var requirements: [Requirement]
    public init(_ requirements: [Requirement] = []) { self.requirements = requirements }

    public static func parse(_ text: String) throws(APIError) -> LabelSelector {
        try parse(text, field: "labels")
    }

    /// Parses with errors naming `field` (`labels`, `selector`).
    public static func parse(_ text: String, field: String) throws(APIError) -> LabelSelector {
        func bad(_ why: String) -> APIError {
            .badRequest("bad label selector \"\(text.prefix(120))\": \(why); expected comma-separated requirements such as a=b, c!=d, e in (x,y), f notin (z), g, !h", field: field)
        }
        // Split on commas outside parentheses.
        var pieces: [String] = []
        var current = "", depth = 0
        for ch in text {
            if ch == "(" { depth += 1; if depth > 1 { throw bad("nested parentheses") } }
            if ch == ")" { depth -= 1; if depth < 0 { throw bad("unbalanced ')'") } }
            if ch == "," && depth == 0 { pieces.append(current); current = ""; continue }
            current.append(ch)
        }
        if depth != 0 { throw bad("unbalanced '('") }
        pieces.append(current)
        var reqs: [Requirement] = []
        for raw in pieces {
            let p = trim(raw)
            if p.isEmpty {
                if pieces.count == 1 { continue }   // the empty selector
                throw bad("empty requirement")
            }
            reqs.append(try requirement(p, bad))
        }
        return LabelSelector(reqs)
    }

    private static func requirement(_ p: String, _ bad: (String) -> APIError) throws(APIError) -> Requirement {
        if p.hasPrefix("!") {
            let k = trim(String(p.dropFirst()))
            guard isKey(k) else { throw bad("invalid label key \"\(k.prefix(80))\"") }
            return .notExists(k)
        }
        if let r = p.firstRange(of: "!=") {
            let k = trim(String(p[..<r.lowerBound])), v = trim(String(p[r.upperBound...]))
            guard isKey(k) else { throw bad("invalid label key \"\(k.prefix(80))\"") }
            guard isValue(v) else { throw bad("invalid label value \"\(v.prefix(80))\"") }
            return .notEquals(k, v)
        }
        if let r = p.firstRange(of: "==") ?? p.firstRange(of: "=") {
            let k = trim(String(p[..<r.lowerBound])), v = trim(String(p[r.upperBound...]))
            guard isKey(k) else { throw bad("invalid label key \"\(k.prefix(80))\"") }
            guard isValue(v) else { throw bad("invalid label value \"\(v.prefix(80))\"") }
            return .equals(k, v)
        }
        if let open = p.firstIndex(of: "(") {
            guard p.hasSuffix(")") else { throw bad("text after ')'") }
            let head = p[..<open].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard head.count == 2 else { throw bad("expected KEY in (VALUES) or KEY notin (VALUES)") }
            let k = head[0]
            guard isKey(k) else { throw bad("invalid label key \"\(k.prefix(80))\"") }
            let inner = p[p.index(after: open)..<p.index(before: p.endIndex)]
            let values = inner.split(separator: ",", omittingEmptySubsequences: false).map { trim(String($0)) }
            for v in values where !isValue(v) { throw bad("invalid label value \"\(v.prefix(80))\"") }
            switch head[1] {
            case "in": return .isIn(k, values)
            case "notin": return .notIn(k, values)
            default: throw bad("unknown operator \"\(head[1].prefix(20))\"")
            }
        }
        guard isKey(p) else { throw bad("invalid requirement \"\(p.prefix(80))\"") }
        return .exists(p)
    }

    public func matches(_ labels: [String: String]) -> Bool { matches { labels[$0] } }

    /// Matches against a label lookup (the value of a key, nil when absent).
    func matches(_ label: (String) -> String?) -> Bool {
        for r in requirements {
            switch r {
            case .equals(let k, let v): if label(k) != v { return false }
            case .notEquals(let k, let v): if label(k) == v { return false }
            case .isIn(let k, let vs): guard let v = label(k), vs.contains(v) else { return false }
            case .notIn(let k, let vs): if let v = label(k), vs.contains(v) { return false }
            case .exists(let k): if label(k) == nil { return false }
            case .notExists(let k): if label(k) != nil { return false }
            }
        }
        return true
    }

    static func trim(_ s: String) -> String {
        var sub = Substring(s)
        while let f = sub.first, f == " " || f == "\t" { sub = sub.dropFirst() }
        while let l = sub.last, l == " " || l == "\t" { sub = sub.dropLast() }
        return String(sub)
    }

    /// `[prefix/]name`: name 1-63 of [A-Za-z0-9._-] starting and ending alphanumeric; prefix a DNS subdomain.
    static func isKey(_ k: String) -> Bool {
        let parts = k.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let name = parts.last else { return false }
        if parts.count == 2 {
            let prefix = parts[0]
            guard !prefix.isEmpty, prefix.count <= 253,
                  prefix.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }) else { return false }
        }
        return !name.isEmpty && isValue(String(name))
    }

    /// Empty, or 1-63 of [A-Za-z0-9._-] starting and ending alphanumeric.
    static func isValue(_ v: String) -> Bool {
        let b = Array(v.utf8)
        if b.isEmpty { return true }
        guard b.count <= 63 else { return false }
        func an(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) }
        guard let f = b.first, let l = b.last, an(f), an(l) else { return false }
        return b.allSatisfy { an($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }
}
