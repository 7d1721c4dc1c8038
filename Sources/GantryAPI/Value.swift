/// A JSON-shaped value with ordered object keys: what Gantry writes to the state store,
/// prints with `-o json` and hands to the YAML emitter. Object key order is preserved so
/// output reads like the manifests users write (apiVersion, kind, metadata, spec, status).
public indirect enum Value: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([Value])
    case object([Member])

    /// One key of an object, in order.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: Value
        public init(_ key: String, _ value: Value) { self.key = key; self.value = value }
    }

    /// The member named `key` of an object, or nil.
    public subscript(key: String) -> Value? {
        if case .object(let members) = self {
            for m in members where m.key == key { return m.value }
        }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e18: return Int64(d)
        default: return nil
        }
    }
    public var arrayValue: [Value]? { if case .array(let a) = self { return a }; return nil }
    public var members: [Member]? { if case .object(let m) = self { return m }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
}

/// Builds an object from members, dropping nil values, so encoders read as field lists.
public struct ObjectBuilder {
    public private(set) var members: [Value.Member] = []
    public init() {}
    public mutating func set(_ key: String, _ value: Value?) {
        if let value { members.append(.init(key, value)) }
    }
    public mutating func set(_ key: String, _ value: String?, omitEmpty: Bool = true) {
        guard let value, !(omitEmpty && value.isEmpty) else { return }
        members.append(.init(key, .string(value)))
    }
    public mutating func set(_ key: String, _ value: Int?) {
        if let value { members.append(.init(key, .int(Int64(value)))) }
    }
    public mutating func set(_ key: String, _ value: Bool?) {
        if let value { members.append(.init(key, .bool(value))) }
    }
    public var value: Value { .object(members) }
}

extension Value {
    /// A string-to-string map as an object with sorted keys (stable output).
    public static func stringMap(_ map: [String: String]) -> Value {
        // `map[$0]!` cannot fail: the keys come from the map itself.
        .object(map.keys.sorted().map { Member($0, .string(map[$0]!)) })
    }
}
