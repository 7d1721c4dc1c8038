import GantryAPI

/// The OpenAPI 3.1 document of `/api/v1`, made from `APIRoute.all`.
public enum OpenAPIDocument {
    public static func json() -> String { cached }
    static let cached: String = JSON.encode(value)
    static var value: Value { .object([.init("openapi", .string("3.1.0"))]) }
}
