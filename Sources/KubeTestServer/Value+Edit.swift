import GantryAPI

/// Small in-place edits of `Value` objects used by the test server's object handling.
extension Value {
    /// A copy of this object with `key` set to `value` (replaced in place, or appended), or
    /// removed when `value` is nil. A non-object becomes an object first.
    func setting(_ key: String, _ value: Value?) -> Value {
        var members = self.members ?? []
        if let i = members.firstIndex(where: { $0.key == key }) {
            if let value { members[i].value = value } else { members.remove(at: i) }
        } else if let value {
            members.append(Member(key, value))
        }
        return .object(members)
    }

    /// The value at a dotted path of object keys (`spec.nodeName`), or nil.
    func at(_ dotted: String) -> Value? {
        var cur: Value? = self
        for part in dotted.split(separator: ".", omittingEmptySubsequences: false) {
            cur = cur?[String(part)]
        }
        return cur
    }

    var metadata: Value { self["metadata"] ?? .object([]) }
    var name: String { self["metadata"]?["name"]?.stringValue ?? "" }
    var namespace: String { self["metadata"]?["namespace"]?.stringValue ?? "" }

    /// A copy with `metadata.<key>` set (or removed when nil).
    func settingMeta(_ key: String, _ value: Value?) -> Value {
        setting("metadata", metadata.setting(key, value))
    }

    var labels: [String: String] {
        var out: [String: String] = [:]
        for m in self["metadata"]?["labels"]?.members ?? [] {
            if let s = m.value.stringValue { out[m.key] = s }
        }
        return out
    }

    var finalizers: [Value] { self["metadata"]?["finalizers"]?.arrayValue ?? [] }
}
