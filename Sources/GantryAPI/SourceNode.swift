/// A parsed YAML/JSON node with its 1-based line and column in the source file, as the
/// decoder needs them for error messages. Produced by YAMLCodec; aliases are already
/// resolved (and budgeted) by the parser.
public struct SourceNode: Sendable {
    public enum Content: Sendable {
        /// A scalar's text; `plain` is false for quoted and block scalars, whose text is
        /// always a string, never a number, bool or null.
        case scalar(String, plain: Bool)
        case mapping([Entry])
        case sequence([SourceNode])
    }
    public struct Entry: Sendable {
        public var key: SourceNode
        public var value: SourceNode
        public init(key: SourceNode, value: SourceNode) { self.key = key; self.value = value }
    }
    public var content: Content
    public var line: Int
    public var column: Int
    public init(_ content: Content, line: Int, column: Int) { self.content = content; self.line = line; self.column = column }

    /// True for `~`, `null`, `Null`, `NULL` and the empty plain scalar.
    public var isNull: Bool {
        if case .scalar(let s, let plain) = content, plain { return s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL" }
        return false
    }

    /// What a user would call this node's type, for "expected X, got Y" messages.
    public var typeName: String {
        switch content {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s, let plain):
            if !plain { return "string \"\(s.prefix(40))\"" }
            if isNull { return "null" }
            if s == "true" || s == "false" { return "boolean \(s)" }
            if Int64(s) != nil || Double(s) != nil { return "number \(s)" }
            return "string \"\(s.prefix(40))\""
        }
    }

    /// Converts to a `Value` with YAML 1.2 core-schema resolution of plain scalars.
    public func toValue() -> Value {
        switch content {
        case .scalar(let s, let plain):
            guard plain else { return .string(s) }
            if isNull { return .null }
            if s == "true" || s == "True" || s == "TRUE" { return .bool(true) }
            if s == "false" || s == "False" || s == "FALSE" { return .bool(false) }
            if let i = Int64(s) { return .int(i) }
            if s.contains(where: { $0.isNumber }), let d = Double(s), d.isFinite, !s.hasPrefix(".") { return .double(d) }
            return .string(s)
        case .mapping(let entries):
            return .object(entries.map { e in
                let k: String
                if case .scalar(let s, _) = e.key.content { k = s } else { k = "?" }
                return Value.Member(k, e.value.toValue())
            })
        case .sequence(let items): return .array(items.map { $0.toValue() })
        }
    }
}

/// One problem found in a manifest: the file, the 1-based line (0 when unknown), the field
/// path (`spec.resources.gpu`), and a message a user can act on. Prints as
/// `queues.yaml:14: spec.deserved.gpu: expected a whole number, got "eight"`.
public struct FieldError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var path: String
    public var message: String
    public init(file: String, line: Int, path: String, message: String) {
        self.file = file; self.line = line; self.path = path; self.message = message
    }
    public var description: String {
        var s = file
        if line > 0 { s += ":\(line)" }
        if !path.isEmpty { s += ": \(path)" }
        return s + ": " + message
    }
}

extension SourceNode {
    /// A node for a value that came as JSON (from the Kubernetes API), so the manifest decoder
    /// reads it as it reads a file; every node reports `line` (0: no file line).
    public init(value: Value, line: Int = 0) {
        switch value {
        case .null: self.init(.scalar("", plain: true), line: line, column: 0)
        case .bool(let b): self.init(.scalar(b ? "true" : "false", plain: true), line: line, column: 0)
        case .int(let i): self.init(.scalar(String(i), plain: true), line: line, column: 0)
        case .double(let d): self.init(.scalar(d.isFinite ? String(d) : "0", plain: true), line: line, column: 0)
        case .string(let s): self.init(.scalar(s, plain: false), line: line, column: 0)
        case .array(let items): self.init(.sequence(items.map { SourceNode(value: $0, line: line) }), line: line, column: 0)
        case .object(let members):
            self.init(.mapping(members.map { Entry(key: SourceNode(.scalar($0.key, plain: false), line: line, column: 0), value: SourceNode(value: $0.value, line: line)) }), line: line, column: 0)
        }
    }
}
