import GantryAPI

/// A failed API call. `code` is the HTTP status (0 for a transport failure: no connection,
/// TLS, timeout), `reason` the Kubernetes `Status` reason (`NotFound`, `Conflict`,
/// `Expired`, ...) or a short word for transport problems, `message` what the server or
/// libcurl said.
public struct KubeError: Error, Sendable, CustomStringConvertible, Equatable {
    public var code: Int
    public var reason: String
    public var message: String
    public init(code: Int, reason: String, message: String) {
        self.code = code; self.reason = reason; self.message = message
    }
    public var description: String {
        code == 0 ? "\(reason): \(message)" : "HTTP \(code) \(reason): \(message)"
    }

    public var isNotFound: Bool { code == 404 }
    public var isConflict: Bool { code == 409 }
    public var isAlreadyExists: Bool { code == 409 && reason == "AlreadyExists" }
    /// 410 Gone / `Expired`: the resourceVersion is too old; relist.
    public var isGone: Bool { code == 410 }
    /// Worth trying again later: no answer (transport), throttled (429), or a server error.
    public var isTransient: Bool { code == 0 || code == 429 || code >= 500 }

    /// The error for a non-2xx response: the `Status` body's reason and message when the
    /// body is one, else the standard reason for the code and the start of the body.
    static func fromResponse(code: Int, body: [UInt8]) -> KubeError {
        var bytes = body
        if let v = try? JSON.parse(bytes: &bytes), v["kind"]?.stringValue == "Status" {
            return fromStatus(v, fallbackCode: code)
        }
        let text = String(decoding: body.prefix(512), as: UTF8.self)
        return KubeError(code: code, reason: defaultReason(code), message: text.isEmpty ? "HTTP \(code)" : text)
    }

    /// The error a `Status` object describes (as in a watch ERROR event).
    static func fromStatus(_ status: Value, fallbackCode: Int) -> KubeError {
        var code = fallbackCode
        if let c = status["code"]?.intValue, c > 0, c < 1000 { code = Int(c) }
        let reason = status["reason"]?.stringValue ?? ""
        return KubeError(code: code, reason: reason.isEmpty ? defaultReason(code) : reason,
                         message: status["message"]?.stringValue ?? "")
    }

    static func defaultReason(_ code: Int) -> String {
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
        case 500: return "InternalError"
        case 503: return "ServiceUnavailable"
        case 504: return "Timeout"
        default: return code == 0 ? "Transport" : "Unknown"
        }
    }
}
