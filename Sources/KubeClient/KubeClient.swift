import Foundation
import GantryAPI
import Synchronization

/// How a PATCH body is read: `application/merge-patch+json` or `application/json-patch+json`.
public enum PatchType: Sendable {
    case merge, json
    var contentType: String { self == .merge ? "application/merge-patch+json" : "application/json-patch+json" }
}

/// A blocking Kubernetes API client over libcurl. Paths are REST paths
/// (`GroupVersionResource.path`), optionally with a query already. Every method is
/// thread-safe; each concurrent call uses its own pooled connection.
///
/// Behaviour: a client-side token bucket (`qps`/`burst`; watches exempt); 429 and 5xx
/// retried a bounded number of times with backoff, honouring `Retry-After`; a 401 re-reads
/// the token file and retries once (the token file is also re-read every minute); a non-2xx
/// answer becomes a `KubeError` with the `Status` body's reason and message.
public final class KubeClient: Sendable {
    public let config: KubeConfig
    let transport: CurlTransport
    let baseURL: String
    private let limiter: Mutex<TokenBucket>
    private let auth: Mutex<AuthState>
    private let counts = Mutex<[String: Int]>([:])
    /// Retries of a 429 or 5xx before the error is returned.
    let maxRetries: Int
    /// First retry delay when the server gives no Retry-After; doubles per retry.
    let retryBase: Double

    struct AuthState {
        var token: String?
        var readAt: Double
    }

    public convenience init(config: KubeConfig, qps: Double = 50, burst: Int = 100, userAgent: String = "gantry") throws {
        try self.init(config: config, qps: qps, burst: burst, userAgent: userAgent, maxRetries: 5, retryBase: 0.2)
    }

    init(config: KubeConfig, qps: Double, burst: Int, userAgent: String, maxRetries: Int, retryBase: Double) throws {
        var server = config.server
        while server.hasSuffix("/") { server.removeLast() }
        guard server.hasPrefix("http://") || server.hasPrefix("https://") else {
            throw KubeConfig.ConfigError("server \"\(config.server)\" is not an http(s) URL")
        }
        var connectTo: String?
        if let name = config.tlsServerName, !name.isEmpty, server.hasPrefix("https://") {
            // Verify (and send SNI for) `name` while connecting to the configured host.
            let hostPort = KubeClient.hostAndPort(server)
            connectTo = "\(name):\(hostPort.port):\(hostPort.host):\(hostPort.port)"
            server = "https://\(name):\(hostPort.port)" + hostPort.rest
        }
        if config.caFile == nil, config.caData == nil, server.hasPrefix("https://"), !config.insecureSkipTLSVerify, config.inCluster {
            throw KubeConfig.ConfigError("in-cluster configuration without a CA certificate")
        }
        self.config = config
        self.baseURL = server
        self.transport = CurlTransport(tls: TLSSettings(
            caFile: config.caFile, caData: config.caData, insecure: config.insecureSkipTLSVerify,
            certFile: config.clientCertFile, certData: config.clientCertData,
            keyFile: config.clientKeyFile, keyData: config.clientKeyData,
            userAgent: userAgent, connectTo: connectTo))
        self.limiter = Mutex(TokenBucket(qps: qps, burst: burst, now: monotonicNow()))
        self.auth = Mutex(AuthState(token: config.token, readAt: monotonicNow()))
        self.maxRetries = max(0, maxRetries)
        self.retryBase = retryBase
    }

    /// Requests sent so far, by verb (GET LIST WATCH POST PUT PATCH DELETE); retries and
    /// list pages count separately.
    public var requestCounts: [String: Int] { counts.withLock { $0 } }

    // MARK: verbs

    public func get(_ path: String) throws(KubeError) -> Value {
        try decode(try send(verb: "GET", method: "GET", url: url(path, [])))
    }

    /// All objects, fetched `pageSize` at a time (limit + continue), and the list's
    /// resourceVersion to watch from. Items get `apiVersion` and `kind` when the server
    /// left them out. An expired continue token restarts the list unpaged.
    public func list(_ path: String, labelSelector: String? = nil, fieldSelector: String? = nil, pageSize: Int = 500) throws(KubeError) -> (items: [Value], resourceVersion: String) {
        var items: [Value] = []
        var cont: String?
        var limit = pageSize
        while true {
            var q: [(String, String)] = []
            if let labelSelector, !labelSelector.isEmpty { q.append(("labelSelector", labelSelector)) }
            if let fieldSelector, !fieldSelector.isEmpty { q.append(("fieldSelector", fieldSelector)) }
            if limit > 0 { q.append(("limit", String(limit))) }
            if let cont { q.append(("continue", cont)) }
            let page: Value
            do {
                page = try decode(try send(verb: "LIST", method: "GET", url: url(path, q)))
            } catch let e where e.code == 410 && cont != nil {
                items.removeAll(); cont = nil; limit = 0
                continue
            }
            let apiVersion = page["apiVersion"]?.stringValue
            var kind = page["kind"]?.stringValue
            if let k = kind, k.hasSuffix("List") { kind = String(k.dropLast(4)) } else { kind = nil }
            for item in page["items"]?.arrayValue ?? [] {
                items.append(KubeClient.withTypeMeta(item, apiVersion: apiVersion, kind: kind))
            }
            let meta = page["metadata"]
            if let next = meta?["continue"]?.stringValue, !next.isEmpty, limit > 0 {
                cont = next
                continue
            }
            return (items, meta?["resourceVersion"]?.stringValue ?? "")
        }
    }

    public func create(_ path: String, _ body: Value) throws(KubeError) -> Value {
        try decode(try send(verb: "POST", method: "POST", url: url(path, []), body: body, contentType: "application/json"))
    }

    /// PUT: the body's `metadata.resourceVersion` makes it conditional (409 when stale).
    public func replace(_ path: String, _ body: Value) throws(KubeError) -> Value {
        try decode(try send(verb: "PUT", method: "PUT", url: url(path, []), body: body, contentType: "application/json"))
    }

    public func patch(_ path: String, _ body: Value, type: PatchType = .merge) throws(KubeError) -> Value {
        try decode(try send(verb: "PATCH", method: "PATCH", url: url(path, []), body: body, contentType: type.contentType))
    }

    /// DELETE with a DeleteOptions body (grace period, UID precondition). A 404 is thrown:
    /// callers that do not care test `isNotFound`.
    public func delete(_ path: String, gracePeriodSeconds: Int? = nil, preconditionUID: String? = nil) throws(KubeError) {
        var o = ObjectBuilder()
        o.set("apiVersion", "v1")
        o.set("kind", "DeleteOptions")
        o.set("gracePeriodSeconds", gracePeriodSeconds)
        if let uid = preconditionUID, !uid.isEmpty { o.set("preconditions", Value.object([.init("uid", .string(uid))])) }
        _ = try send(verb: "DELETE", method: "DELETE", url: url(path, []), body: o.value, contentType: "application/json")
    }

    /// A GET whose answer is text (pod logs).
    public func text(_ path: String, query: [(String, String)] = []) throws(KubeError) -> String {
        String(decoding: try send(verb: "GET", method: "GET", url: url(path, query), accept: "*/*").body, as: UTF8.self)
    }

    // MARK: plumbing

    func url(_ path: String, _ query: [(String, String)]) -> String {
        var u = baseURL + (path.hasPrefix("/") ? path : "/" + path)
        if !query.isEmpty {
            u += u.contains("?") ? "&" : "?"
            u += query.map { KubeClient.percentEncode($0.0) + "=" + KubeClient.percentEncode($0.1) }.joined(separator: "&")
        }
        return u
    }

    func count(_ verb: String) { counts.withLock { $0[verb, default: 0] += 1 } }

    /// Sends with rate limiting, 401 token refresh, and 429/5xx retries.
    func send(verb: String, method: String, url: String, body: Value? = nil, contentType: String? = nil, accept: String = "application/json",
              timeout: Int = 60, retries: Int? = nil) throws(KubeError) -> HTTPResponse {
        let maxRetries = retries ?? self.maxRetries
        let bytes = body.map { Array(JSON.encode($0).utf8) }
        var attempt = 0
        var refreshed = false
        while true {
            let wait = limiter.withLock { $0.reserve(now: monotonicNow()) }
            if wait > 0 { sleepSeconds(wait) }
            count(verb)
            var headers = ["Accept: \(accept)"]
            if let contentType { headers.append("Content-Type: \(contentType)") }
            if let token = currentToken(), !token.isEmpty { headers.append("Authorization: Bearer \(token)") }
            let request = HTTPRequest(method: method, url: url, headers: headers, body: bytes, timeout: timeout)
            let response = try transport.perform(request, context: TransferContext()).get()
            if (200..<300).contains(response.status) { return response }
            if response.status == 401, !refreshed, config.tokenFile != nil {
                refreshed = true
                refreshToken(force: true)
                continue
            }
            let retriable = response.status == 429 || [500, 502, 503, 504].contains(response.status)
            if retriable, attempt < maxRetries {
                sleepSeconds(retryDelay(attempt: attempt, retryAfter: response.header("Retry-After")))
                attempt += 1
                continue
            }
            throw KubeError.fromResponse(code: response.status, body: response.body)
        }
    }

    /// One request with its own whole-transfer timeout and no 429/5xx retries (leader
    /// election must not outlive its renew deadline).
    func requestOnce(_ verb: String, _ method: String, _ path: String, body: Value? = nil, timeout: Int) throws(KubeError) -> Value {
        try decode(try send(verb: verb, method: method, url: url(path, []), body: body,
                            contentType: body == nil ? nil : "application/json", timeout: timeout, retries: 0))
    }

    func retryDelay(attempt: Int, retryAfter: String?) -> Double {
        if let s = retryAfter, let secs = Int(s.trimmingCharacters(in: .whitespaces)), secs >= 0 {
            return Double(min(secs, 30))
        }
        let base = retryBase * Double(1 << min(attempt, 10))
        return min(10, base * (1 + 0.2 * Double.random(in: 0..<1)))
    }

    func decode(_ response: HTTPResponse) throws(KubeError) -> Value {
        if response.body.isEmpty { return .object([]) }
        var bytes = response.body
        do {
            return try JSON.parse(bytes: &bytes)
        } catch {
            throw KubeError(code: response.status, reason: "BadResponse", message: "undecodable JSON from the server: \(error)")
        }
    }

    /// The bearer token, re-read from the token file when it is over a minute old.
    func currentToken() -> String? {
        let (token, stale) = auth.withLock { a in (a.token, monotonicNow() - a.readAt > 60) }
        if stale, config.tokenFile != nil { refreshToken(force: false); return auth.withLock { $0.token } }
        return token
    }

    /// Reads the token file (outside the lock); a failed read keeps the old token.
    func refreshToken(force: Bool) {
        guard let file = config.tokenFile else { return }
        let fresh = KubeConfig.readTrimmed(file)
        auth.withLock { a in
            if let fresh, !fresh.isEmpty { a.token = fresh }
            a.readAt = monotonicNow()
        }
    }

    static func withTypeMeta(_ item: Value, apiVersion: String?, kind: String?) -> Value {
        guard case .object(var members) = item else { return item }
        var prefix: [Value.Member] = []
        if let apiVersion, item["apiVersion"] == nil { prefix.append(.init("apiVersion", .string(apiVersion))) }
        if let kind, item["kind"] == nil { prefix.append(.init("kind", .string(kind))) }
        if prefix.isEmpty { return item }
        members.insert(contentsOf: prefix, at: 0)
        return .object(members)
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(b >> 4)])
                out.unicodeScalars.append(hex[Int(b & 15)])
            }
        }
        return out
    }

    /// `(host, port, rest)` of an http(s) URL; the port defaults by scheme.
    static func hostAndPort(_ url: String) -> (host: String, port: Int, rest: String) {
        let https = url.hasPrefix("https://")
        var s = Substring(url.dropFirst(https ? 8 : 7))
        var rest = ""
        if let slash = s.firstIndex(of: "/") { rest = String(s[slash...]); s = s[..<slash] }
        var host = String(s), port = https ? 443 : 80
        if s.hasPrefix("[") {
            if let close = s.firstIndex(of: "]") {
                host = String(s[...close])
                let after = s[s.index(after: close)...]
                if after.hasPrefix(":"), let p = Int(after.dropFirst()) { port = p }
            }
        } else if let colon = s.lastIndex(of: ":") {
            host = String(s[..<colon])
            if let p = Int(s[s.index(after: colon)...]) { port = p }
        }
        return (host, port, rest)
    }
}

/// Seconds on a monotonic clock (for rate limits, expiry judgements and timeouts).
func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sleeps the calling thread; negative or non-finite durations do nothing.
func sleepSeconds(_ s: Double) {
    guard s.isFinite, s > 0 else { return }
    Thread.sleep(forTimeInterval: min(s, 3600))
}
