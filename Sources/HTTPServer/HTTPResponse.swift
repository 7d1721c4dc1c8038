/// A response: status, header fields, and a body that is either bytes or a stream.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields in order; Content-Length (bytes) and Transfer-Encoding (streams) are
    /// set by the server.
    public var headers: [(String, String)]
    public var body: Body

    /// A body: all of it at once, or produced on a thread of its own and sent with chunked
    /// transfer encoding as it is written.
    public enum Body: Sendable {
        case bytes([UInt8])
        /// `produce(write)`: `write` blocks while the connection's buffer is full and returns
        /// false once the client is gone or the server stops; the producer should then return.
        /// Returning ends the response.
        case stream(@Sendable (_ write: ([UInt8]) -> Bool) -> Void)
    }

    public init(status: Int = 200, headers: [(String, String)] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name` (any case), or nil.
    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0.lowercased() == n }?.1
    }

    /// `text/plain; charset=utf-8`.
    public static func text(_ text: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: .bytes(Array(text.utf8)))
    }

    /// `application/json` from encoded bytes.
    public static func json(_ bytes: [UInt8], status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: .bytes(bytes))
    }

    /// A streamed body (chunked transfer encoding).
    public static func stream(status: Int = 200, contentType: String, _ produce: @escaping @Sendable (_ write: ([UInt8]) -> Bool) -> Void) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: .stream(produce))
    }

    public static let notFound = text("404 page not found\n", status: 404)

    /// 405 with an `Allow` header listing `allowed`.
    public static func methodNotAllowed(allowed: [String]) -> HTTPResponse {
        var r = text("405 method not allowed\n", status: 405)
        r.headers.append(("Allow", allowed.joined(separator: ", ")))
        return r
    }

    public static func payloadTooLarge(limit: Int) -> HTTPResponse {
        text("413 request body larger than \(limit) bytes\n", status: 413)
    }
}

/// Answers requests. Handlers run on the connection's own thread (one per connection, at
/// most the server's connection limit): a slow handler delays only its own client, but it
/// does delay `HTTPServer.stop()`. Long-lived responses (log follows, watches) return a
/// `.stream` body, whose producer runs on a thread of its own.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest) -> HTTPResponse
}

/// A handler made of a closure.
public struct HandlerFunction: HTTPHandler {
    let body: @Sendable (HTTPRequest) -> HTTPResponse
    public init(_ body: @escaping @Sendable (HTTPRequest) -> HTTPResponse) { self.body = body }
    public func handle(_ request: HTTPRequest) -> HTTPResponse { body(request) }
}
