import GantryAPI

/// A failed request, sent as a Kubernetes `Status` object.
struct APIError: Error, Sendable {
    var code: Int
    var reason: String
    var message: String
    var name: String? = nil
    var resource: String? = nil

    var status: Value {
        var details = ObjectBuilder()
        details.set("name", name)
        details.set("kind", resource)
        var b = ObjectBuilder()
        b.set("kind", .string("Status"))
        b.set("apiVersion", .string("v1"))
        b.set("metadata", .object([]))
        b.set("status", .string("Failure"))
        b.set("message", .string(message))
        b.set("reason", .string(reason))
        if !details.members.isEmpty { b.set("details", details.value) }
        b.set("code", .int(Int64(code)))
        return b.value
    }

    static func notFound(_ p: ResourcePath, _ name: String) -> APIError {
        APIError(code: 404, reason: "NotFound", message: "\(p.qualifiedResource) \"\(name)\" not found", name: name, resource: p.resource)
    }
    static func alreadyExists(_ p: ResourcePath, _ name: String) -> APIError {
        APIError(code: 409, reason: "AlreadyExists", message: "\(p.qualifiedResource) \"\(name)\" already exists", name: name, resource: p.resource)
    }
    static func conflict(_ p: ResourcePath, _ name: String, _ why: String = "the object has been modified; please apply your changes to the latest version and try again") -> APIError {
        APIError(code: 409, reason: "Conflict", message: "Operation cannot be fulfilled on \(p.qualifiedResource) \"\(name)\": \(why)", name: name, resource: p.resource)
    }
    static func badRequest(_ m: String) -> APIError { APIError(code: 400, reason: "BadRequest", message: m) }
    static func invalid(_ m: String) -> APIError { APIError(code: 422, reason: "Invalid", message: m) }
    static let expired = APIError(code: 410, reason: "Expired", message: "too old resource version")

    /// The reason kube-apiserver gives for a bare status code (used by fault injection).
    static func reason(for code: Int) -> String {
        switch code {
        case 400: return "BadRequest"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "NotFound"
        case 405: return "MethodNotAllowed"
        case 409: return "Conflict"
        case 410: return "Expired"
        case 415: return "UnsupportedMediaType"
        case 422: return "Invalid"
        case 429: return "TooManyRequests"
        case 503: return "ServiceUnavailable"
        case 504: return "Timeout"
        default: return "InternalError"
        }
    }
}
