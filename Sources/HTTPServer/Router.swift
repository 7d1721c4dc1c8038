/// Routes requests by method and path pattern. Patterns are `/`-separated segments, each a
/// literal or a `{name}` parameter matching one whole segment ("/api/v1/namespaces/{ns}/workloads/{name}").
/// Paths are compared segment by segment after percent-decoding each one, so `%2F` stays inside
/// its segment; empty segments (`//`, a trailing `/`) are ignored. When several routes match, the
/// one with the most literal segments wins, then the first registered. A path that matches
/// no route gets 404; one that matches only under other methods gets 405 with `Allow`. HEAD is
/// answered by the GET route when there is no HEAD route (the server sends no body).
public struct Router: HTTPHandler {
    public typealias Handle = @Sendable (HTTPRequest) -> HTTPResponse

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    struct Route: Sendable {
        var method: String
        var segments: [Segment]
        var literals: Int
        var handle: Handle
    }

    var routes: [Route] = []
    /// What unmatched paths get (default: 404).
    public var notFound: Handle = { _ in .notFound }

    public init() {}

    /// Adds a route; `method` is matched exactly ("GET", "POST", ...).
    public mutating func register(method: String, pattern: String, _ handle: @escaping Handle) {
        let segments: [Segment] = pattern.split(separator: "/").map { s in
            if s.hasPrefix("{") && s.hasSuffix("}") && s.count >= 2 { return .parameter(String(s.dropFirst().dropLast())) }
            return .literal(String(s))
        }
        let literals = segments.filter { if case .literal = $0 { return true } else { return false } }.count
        routes.append(Route(method: method, segments: segments, literals: literals, handle: handle))
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        let parts = request.path.split(separator: "/").map { percentDecode($0) }
        var best: (route: Route, params: [String: String])?
        var allowed: [String] = []
        let wanted = request.method == "HEAD" && !routes.contains { $0.method == "HEAD" } ? "GET" : request.method
        for r in routes {
            guard let params = Router.match(r.segments, parts) else { continue }
            if !allowed.contains(r.method) { allowed.append(r.method) }
            guard r.method == wanted else { continue }
            if let b = best, r.literals <= b.route.literals { continue }
            best = (r, params)
        }
        guard let best else {
            return allowed.isEmpty ? notFound(request) : .methodNotAllowed(allowed: allowed)
        }
        var req = request
        req.pathParameters = best.params
        return best.route.handle(req)
    }

    static func match(_ pattern: [Segment], _ parts: [String]) -> [String: String]? {
        guard pattern.count == parts.count else { return nil }
        var params: [String: String] = [:]
        for (seg, part) in zip(pattern, parts) {
            switch seg {
            case .literal(let l): if l != part { return nil }
            case .parameter(let name): params[name] = part
            }
        }
        return params
    }
}
