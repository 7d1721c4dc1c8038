/// One node of a Kubernetes structural OpenAPI v3 schema (the `openAPIV3Schema` of a
/// CustomResourceDefinition): a type, or `x-kubernetes-int-or-string`, with the keywords
/// Gantry's CRDs use. `toValue()` writes the JSON/YAML form the API server reads, keys in a
/// fixed order so the generated files are stable.
///
/// `validations` are CEL `x-kubernetes-validations` rules; they are written out verbatim and
/// are not evaluated here (the API server does that).
public struct Schema: Sendable, Equatable {
    public enum DataType: String, Sendable, Equatable { case object, array, string, integer, boolean }

    /// A named property of an object schema, in declaration order.
    public struct Property: Sendable, Equatable {
        public var name: String
        public var schema: Schema
        public init(_ name: String, _ schema: Schema) { self.name = name; self.schema = schema }
    }

    /// A CEL rule and the message the API server returns when it is false.
    public struct Validation: Sendable, Equatable {
        public var rule: String
        public var message: String
        public init(_ rule: String, _ message: String) { self.rule = rule; self.message = message }
    }

    public var type: DataType?
    public var intOrString = false
    public var format: String?
    public var description: String?
    public var enumValues: [String] = []
    public var pattern: String?
    public var minimum: Int64?
    public var maximum: Int64?
    public var minLength: Int?
    public var maxLength: Int?
    public var maxItems: Int?
    public var maxProperties: Int?
    public var defaultValue: Value?
    public var nullable = false
    public var properties: [Property] = []
    public var required: [String] = []
    /// Recursive children live in arrays (at most one element) so the struct stays finite.
    private var itemsStorage: [Schema] = []
    private var additionalStorage: [Schema] = []
    /// `x-kubernetes-list-type` (`map`, `set`, `atomic`) and, for `map`, its keys.
    public var listType: String?
    public var listMapKeys: [String] = []
    public var validations: [Validation] = []

    public init(type: DataType?) { self.type = type }

    public var items: Schema? {
        get { itemsStorage.first }
        set { itemsStorage = newValue.map { [$0] } ?? [] }
    }
    public var additionalProperties: Schema? {
        get { additionalStorage.first }
        set { additionalStorage = newValue.map { [$0] } ?? [] }
    }

    /// The property named `name`, if this is an object schema that lists it.
    public subscript(property name: String) -> Schema? { properties.first { $0.name == name }?.schema }

    // MARK: builders

    public static func string(_ description: String, pattern: String? = nil, maxLength: Int? = nil, enum values: [String] = [],
                              format: String? = nil, default value: String? = nil) -> Schema {
        var s = Schema(type: .string)
        s.description = description; s.pattern = pattern; s.maxLength = maxLength; s.enumValues = values; s.format = format
        s.defaultValue = value.map { .string($0) }
        return s
    }

    public static func integer(_ description: String, minimum: Int64? = nil, maximum: Int64? = nil, format: String? = nil, default value: Int64? = nil) -> Schema {
        var s = Schema(type: .integer)
        s.description = description; s.minimum = minimum; s.maximum = maximum; s.format = format
        s.defaultValue = value.map { .int($0) }
        return s
    }

    public static func boolean(_ description: String, default value: Bool? = nil) -> Schema {
        var s = Schema(type: .boolean)
        s.description = description; s.defaultValue = value.map { .bool($0) }
        return s
    }

    public static func object(_ description: String?, _ properties: [Property], required: [String] = []) -> Schema {
        var s = Schema(type: .object)
        s.description = description; s.properties = properties; s.required = required
        return s
    }

    /// An object whose keys are free and whose values all follow `values`.
    public static func map(_ description: String, values: Schema, maxProperties: Int? = nil) -> Schema {
        var s = Schema(type: .object)
        s.description = description; s.additionalProperties = values; s.maxProperties = maxProperties
        return s
    }

    public static func array(_ description: String, of items: Schema, maxItems: Int? = nil, listType: String? = nil) -> Schema {
        var s = Schema(type: .array)
        s.description = description; s.items = items; s.maxItems = maxItems; s.listType = listType
        return s
    }

    /// An integer or a string (`x-kubernetes-int-or-string`), the string matching `pattern`.
    public static func intOrString(_ description: String?, pattern: String? = nil) -> Schema {
        var s = Schema(type: nil)
        s.intOrString = true; s.description = description; s.pattern = pattern
        return s
    }

    /// Adds CEL rules.
    public func validated(_ rules: Validation...) -> Schema { var s = self; s.validations += rules; return s }

    // MARK: output

    public func toValue() -> Value {
        var b: [Value.Member] = []
        func add(_ k: String, _ v: Value?) { if let v { b.append(.init(k, v)) } }
        add("description", description.map { .string($0) })
        add("type", type.map { .string($0.rawValue) })
        add("format", format.map { .string($0) })
        if !enumValues.isEmpty { add("enum", .array(enumValues.map { .string($0) })) }
        add("pattern", pattern.map { .string($0) })
        add("minimum", minimum.map { .int($0) })
        add("maximum", maximum.map { .int($0) })
        add("minLength", minLength.map { .int(Int64($0)) })
        add("maxLength", maxLength.map { .int(Int64($0)) })
        add("maxItems", maxItems.map { .int(Int64($0)) })
        add("maxProperties", maxProperties.map { .int(Int64($0)) })
        add("default", defaultValue)
        if nullable { add("nullable", .bool(true)) }
        if intOrString { add("x-kubernetes-int-or-string", .bool(true)) }
        if !properties.isEmpty { add("properties", .object(properties.map { .init($0.name, $0.schema.toValue()) })) }
        if !required.isEmpty { add("required", .array(required.map { .string($0) })) }
        add("items", items?.toValue())
        add("additionalProperties", additionalProperties?.toValue())
        add("x-kubernetes-list-type", listType.map { .string($0) })
        if !listMapKeys.isEmpty { add("x-kubernetes-list-map-keys", .array(listMapKeys.map { .string($0) })) }
        if !validations.isEmpty {
            add("x-kubernetes-validations", .array(validations.map { .object([.init("rule", .string($0.rule)), .init("message", .string($0.message))]) }))
        }
        return .object(b)
    }
}
