import GantryAPI

/// A label or field selector: comma-separated requirements, all of which must hold.
/// Requirements: `k=v`, `k==v`, `k!=v`, `k` (exists), `!k` (does not exist). Field
/// selectors read dotted paths of the object (`metadata.name`, `spec.nodeName`,
/// `status.phase`); a missing field reads as "".
struct Selector: Sendable, Equatable {
    enum Requirement: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case exists(String)
        case notExists(String)
    }
    var requirements: [Requirement] = []

    static let everything = Selector()

    /// Parses selector text; nil when a requirement is malformed.
    init?(_ text: String?) {
        guard let text, !text.isEmpty else { return }
        for raw in text.split(separator: ",") {
            let part = raw.trimmingSpaces
            if part.isEmpty { return nil }
            if let r = part.range(of: "!=") {
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

    func matchesLabels(_ obj: Value) -> Bool {
        let labels = obj.labels
        for r in requirements {
            switch r {
            case .equals(let k, let v): if labels[k] != v { return false }
            case .notEquals(let k, let v): if labels[k] == v { return false }
            case .exists(let k): if labels[k] == nil { return false }
            case .notExists(let k): if labels[k] != nil { return false }
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
