import Foundation
import Synchronization
import GantryAPI
import HTTPServer

public struct APIOptions: Sendable {
    /// Request bodies larger than this get 413 (the HTTP server's own limit applies first).
    public var maxBodyBytes = 4 << 20
    /// Seconds a request may take: a log read without follow stops there; the daemon also
    /// passes it to its HTTP server as the idle timeout.
    public var requestTimeout = 30.0
    /// Longest a watch stream lasts (`timeoutSeconds` above it is cut to it); a watch
    /// without `timeoutSeconds` lasts `min(300, this)`. `gantry run --watch-max-seconds`.
    public var watchMaxSeconds = 1800
    /// Watch streams open at once; more get 429 (each holds a connection of the HTTP
    /// server's 256, so watches alone cannot shut out other requests and the probes).
    public var maxWatches = 100
    public init() {}
}

/// The HTTP API (`/api/v1/...`) over any backend: authentication, role and namespace checks,
/// the error shape, and one handler per route of `APIRoute.all`.
public final class APIServer: Sendable {
    let backend: any APIBackend
    let tokens: TokenTable?
    let options: APIOptions
    /// Watch streams open now (see `APIOptions.maxWatches`).
    let openWatches = Atomic<Int>(0)

    public init(backend: any APIBackend, tokens: TokenTable?, options: APIOptions = APIOptions()) {
        self.backend = backend
        self.tokens = tokens
        self.options = options
    }

    /// Adds every /api/v1 route (and /api/v1/openapi.json) to `router`; /healthz, /readyz,
    /// /metrics are the caller's. Unknown /api/v1 paths get 404 and other methods 405, both
    /// in the error shape (HEAD is left to the router, which answers it from GET routes).
    public func register(into router: inout Router) {
        for (pattern, routes) in APIRoute.routerGroups() {
            for m in APIServer.methods {
                router.register(method: m, pattern: pattern) { [self] req in self.dispatch(req, routes) }
            }
        }
        let previous = router.notFound
        router.notFound = { req in
            let parts = req.path.split(separator: "/")
            if parts.count >= 2, parts[0] == "api", parts[1] == "v1" {
                return APIServer.errorResponse(.notFound("no such API path: \(req.path)"))
            }
            return previous(req)
        }
    }

    /// Methods every API path answers (those it does not serve get 405 in the error shape;
    /// HEAD is left to the router, which answers it from GET routes).
    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// Picks the route among those sharing a router pattern (a custom verb after the last ':'
    /// of the parameter segment selects the verb's routes), authenticates, checks role and
    /// namespace, and runs the handler.
    func dispatch(_ req: HTTPRequest, _ routes: [APIRoute]) -> HTTPResponse {
        var req = req
        var candidates = routes.filter { $0.verb == nil }
        if let param = routes.first?.lastPathParameter, let raw = req.pathParameters[param], let colon = raw.lastIndex(of: ":") {
            let verb = raw[raw.index(after: colon)...]
            candidates = routes.filter { $0.verb.map { $0 == verb } ?? false }
            guard !candidates.isEmpty else {
                return APIServer.errorResponse(.notFound("no such API method: \(req.path)"))
            }
            req.pathParameters[param] = String(raw[..<colon])
        }
        // The router hands HEAD to GET routes (the server sends no body).
        let method = req.method == "HEAD" ? "GET" : req.method
        guard let route = candidates.first(where: { $0.method == method }) else {
            if candidates.isEmpty { return APIServer.errorResponse(.notFound("no such API method: \(req.method) \(req.path)")) }
            let allowed = candidates.map(\.method).joined(separator: ", ")
            var r = APIServer.errorResponse(APIError(405, "MethodNotAllowed", "\(req.method) is not allowed here; allowed: \(allowed)"))
            r.headers.append(("Allow", allowed))
            return r
        }
        do throws(APIError) {
            let principal = try authenticate(req, route)
            if req.body.count > options.maxBodyBytes {
                throw APIError(413, "PayloadTooLarge", "request body larger than \(options.maxBodyBytes) bytes")
            }
            let ctx = RequestContext(request: req, principal: principal, route: route)
            return try handle(route.operationId, ctx)
        } catch {
            return APIServer.errorResponse(error)
        }
    }

    func authenticate(_ req: HTTPRequest, _ route: APIRoute) throws(APIError) -> Principal {
        if route.minRole == nil { return tokens == nil ? .anonymous : tokens?.authenticate(req.header("authorization")) ?? .anonymous }
        let principal: Principal
        if let tokens {
            guard let header = req.header("authorization"), !header.isEmpty else {
                throw .unauthorized("missing bearer token (Authorization: Bearer TOKEN)")
            }
            guard let p = tokens.authenticate(header) else { throw .unauthorized("invalid bearer token") }
            principal = p
        } else {
            principal = .anonymous
        }
        if let min = route.minRole, principal.role < min {
            throw .forbidden("user \(principal.user) (\(principal.role.name)) may not \(route.operationId): it needs the \(min.name) role")
        }
        if let ns = req.pathParameters["ns"], !principal.may(namespace: ns) {
            throw .forbidden("user \(principal.user) may not act in namespace \(ns)")
        }
        return principal
    }

    static func errorResponse(_ e: APIError) -> HTTPResponse {
        let status = (400...599).contains(e.status) ? e.status : 500
        return HTTPResponse.json(Array(JSON.encode(e.toValue()).utf8), status: status)
    }

    static func json(_ v: Value, status: Int = 200) -> HTTPResponse {
        HTTPResponse.json(Array(JSON.encode(v).utf8), status: status)
    }
}

/// What a handler gets: the request (path parameters without the verb), the caller, the route.
struct RequestContext {
    var request: HTTPRequest
    var principal: Principal
    var route: APIRoute

    func parameter(_ name: String) throws(APIError) -> String {
        guard let v = request.pathParameters[name], !v.isEmpty else { throw .badRequest("missing path parameter \(name)") }
        return v
    }
}
