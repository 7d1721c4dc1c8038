import Foundation

/// A small public HTTP client over the same libcurl transport the Kubernetes client uses,
/// for callers that talk to another JSON API (the `gantry` CLI against Gantry's own API).
/// TLS is verified against the system's CAs (or `caFile`); any number of threads may call it.
public final class PlainHTTPClient: Sendable {
    /// What came back: status, headers (names in lower case) and body (empty when streamed).
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public func header(_ name: String) -> String? {
            let lower = name.lowercased()
            return headers.last { $0.0 == lower }?.1
        }
    }

    /// A transfer that did not complete: cannot connect, timed out, a body over the limit.
    public struct TransportError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    private let transport: CurlTransport

    public init(userAgent: String, caFile: String? = nil, insecure: Bool = false) {
        transport = CurlTransport(tls: TLSSettings(caFile: caFile, caData: nil, insecure: insecure, certFile: nil, certData: nil,
                                                   keyFile: nil, keyData: nil, userAgent: userAgent, connectTo: nil), maxIdle: 2)
    }

    /// One exchange, the whole body read (at most `maxBody` bytes). `timeout` in seconds, 0: none.
    public func request(method: String, url: String, headers: [String] = [], body: [UInt8]? = nil,
                        timeout: Int = 60, maxBody: Int = 256 << 20) throws(TransportError) -> Response {
        let ctx = TransferContext(maxBody: maxBody)
        return try run(HTTPRequest(method: method, url: url, headers: headers, body: body, timeout: timeout), ctx)
    }

    /// One exchange whose 2xx body goes to `onData` chunk by chunk as it arrives (chunked
    /// streams); `onData` returning false ends the transfer (the response so far comes back).
    /// A non-2xx body is read whole into the response instead.
    public func stream(method: String = "GET", url: String, headers: [String] = [], timeout: Int = 0,
                       onData: @escaping ([UInt8]) -> Bool) throws(TransportError) -> Response {
        let ctx = TransferContext(maxBody: 16 << 20)
        let cancel = WatchCancel()
        ctx.cancel = cancel
        ctx.onData = { chunk in
            let more = onData(Array(chunk))
            if !more { cancel.cancel() }
            return more
        }
        return try run(HTTPRequest(method: method, url: url, headers: headers, body: nil, timeout: timeout), ctx)
    }

    private func run(_ request: HTTPRequest, _ ctx: TransferContext) throws(TransportError) -> Response {
        switch transport.perform(request, context: ctx) {
        case .success(let r): return Response(status: r.status, headers: r.headers, body: r.body)
        case .failure(let e): throw TransportError(message: e.message.isEmpty ? e.reason : e.message)
        }
    }
}
