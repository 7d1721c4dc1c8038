import GantryAPI

/// A label or field selector: comma-separated requirements, all of which must hold.
/// Requirements: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists),
/// `!k` (does not exist). Field
/// selectors read dotted paths of the object (`metadata.name`, `spec.nodeName`,
/// `status.phase`); a missing field reads as "".
struct Selector: Sendable, Equatable {
    enum Requirement: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case exists(String)
        case notExists(String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
    }
    var requirements: [Requirement] = []

    static let everything = Selector()

    /// Parses selector text; nil when a requirement is malformed.
    init?(_ text: String?) {
        guard let text, !text.isEmpty else { return }
        guard let parts = Selector.splitTopLevel(text) else { return nil }
        for raw in parts {
            let part = raw.trimmingSpaces
            if part.isEmpty { return nil }
            if let open = part.firstIndex(of: "(") {
                guard part.hasSuffix(")") else { return nil }
                let head = part[..<open].split(separator: " ", omittingEmptySubsequences: true)
                guard head.count == 2 else { return nil }
                let values = Set(part[part.index(after: open)..<part.index(before: part.endIndex)].split(separator: ",").map { $0.trimmingSpaces })
                switch head[1] {
                case "in": requirements.append(.isIn(String(head[0]), values))
                case "notin": requirements.append(.notIn(String(head[0]), values))
                default: return nil
                }
            } else if let r = part.range(of: "!=") {
                requirements.append(.notEquals(String(part[..<r.lowerBound]).trimmingSpaces, String(part[r.upperBound...]).trimmingSpaces))
            } else if let r = part.range(of: "==") {
                requirements.append(.equals(String(part[..<r.lowerBound]).trimmingSpaces, String(part[r.upperBound...]).trimmingSpaces))
            } else if let r = part.range(of: "=") {
                requirements.append(.equals(String(part[..<r.lowerBound]).trimmingSpaces, String(part[r.upperBound...]).trimmingSpaces))
            } else if part.hasPrefix("!") {
                requirements.append(.notExists(String(part.dropFirst()).trimmingSpaces))
            } else {
                requirements.append(.exists(part))
            }
        }
    }

    private init() {}

    /// Splits on commas outside parentheses; nil when parentheses do not balance.
    static func splitTopLevel(_ text: String) -> [String]? {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for ch in text {
            switch ch {
            case "(": depth += 1; current.append(ch)
            case ")":
                depth -= 1
                if depth < 0 { return nil }
                current.append(ch)
            case "," where depth == 0: parts.append(current); current = ""
            default: current.append(ch)
            }
        }
        guard depth == 0 else { return nil }
        parts.append(current)
        return parts
    }

    func matchesLabels(_ obj: Value) -> Bool {
        let labels = obj.labels
        for r in requirements {
            switch r {
            case .equals(let k, let v): if labels[k] != v { return false }
            case .notEquals(let k, let v): if labels[k] == v { return false }
            case .exists(let k): if labels[k] == nil { return false }
            case .notExists(let k): if labels[k] != nil { return false }
            case .isIn(let k, let vs): guard let v = labels[k], vs.contains(v) else { return false }
            case .notIn(let k, let vs): if let v = labels[k], vs.contains(v) { return false }
            }
        }
        return true
    }

    func matchesFields(_ obj: Value) -> Bool {
        func field(_ path: String) -> String {
            guard let v = obj.at(path) else { return "" }
            switch v {
            case .string(let s): return s
            case .int(let i): return String(i)
            case .bool(let b): return b ? "true" : "false"
            default: return ""
            }
        }
        for r in requirements {
            switch r {
            case .equals(let k, let v): if field(k) != v { return false }
            case .notEquals(let k, let v): if field(k) == v { return false }
            case .exists(let k): if field(k).isEmpty { return false }
            case .notExists(let k): if !field(k).isEmpty { return false }
            case .isIn(let k, let vs): if !vs.contains(field(k)) { return false }
            case .notIn(let k, let vs): if vs.contains(field(k)) { return false }
            }
        }
        return true
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
