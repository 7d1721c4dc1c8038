import Foundation
import GantryAPI
import KubeClient

/// A failure of a CLI command against Gantry's HTTP API, said in one line (exit status 1):
/// the API's error message (with a hint about `--token-file` for 401 and 403), or why the
/// server could not be reached.
struct RemoteError: Error, CustomStringConvertible {
    var status: Int
    var code: String
    var message: String
    var field: String?

    var description: String {
        var s = message
        if let field, !field.isEmpty, !message.contains(field) { s += " (field \(field))" }
        switch status {
        case 401: s += " — the server wants a bearer token: pass --token-file FILE (or set GANTRY_TOKEN_FILE) holding a token from its tokens file"
        case 403: s += " — the token in --token-file does not allow this (its role or namespaces are too narrow)"
        default: break
        }
        return s.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// The API's error shape `{"error":{"status","code","message","field"?}}`, else the
    /// status line and the start of the body.
    static func from(status: Int, body: [UInt8], what: String) -> RemoteError {
        if let v = try? JSON.parse(String(decoding: body, as: UTF8.self)), let e = v["error"], let message = e["message"]?.stringValue {
            return RemoteError(status: status, code: e["code"]?.stringValue ?? "", message: message, field: e["field"]?.stringValue)
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return RemoteError(status: status, code: "HTTP\(status)", message: "\(what): HTTP \(status)\(text.isEmpty ? "" : ": " + text)")
    }
}

/// The CLI's connection to a Gantry daemon's HTTP API (`--server URL`, `--token-file F`):
/// JSON requests with the bearer token, errors as `RemoteError`.
final class RemoteClient: Sendable {
    /// The server's base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    let base: String
    let token: String?
    let http: PlainHTTPClient

    /// `server` without a scheme means http://. The token file holds the token (its first
    /// non-empty line; surrounding whitespace ignored).
    init(server: String, tokenFile: String?) throws {
        var s = server.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { throw UsageError("--server: a URL like http://127.0.0.1:8080") }
        if !s.contains("://") { s = "http://" + s }
        guard s.hasPrefix("http://") || s.hasPrefix("https://") else { throw UsageError("--server: an http:// or https:// URL, got \"\(server)\"") }
        while s.hasSuffix("/") { s.removeLast() }
        base = s
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else { throw UsageError("--token-file: cannot read \(tokenFile)") }
            let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty && !$0.hasPrefix("#") }
            guard let line, !line.isEmpty, !line.contains(where: { $0.isWhitespace }) else {
                throw UsageError("--token-file: \(tokenFile) holds no token (one line: the bearer token)")
            }
            token = line
        } else {
            token = nil
        }
        http = PlainHTTPClient(userAgent: "gantry-cli/\(CLI.version)")
    }

    /// A path segment percent-encoded (names are DNS labels; this keeps odd input harmless).
    static func segment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    func url(_ path: String, _ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return base + path }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let q = query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
        return base + path + "?" + q
    }

    var headers: [String] {
        var h = ["Accept: application/json"]
        if let token { h.append("Authorization: Bearer \(token)") }
        return h
    }

    /// One request; the 2xx response's body as bytes.
    func raw(_ method: String, _ path: String, query: [(String, String)] = [], body: Value? = nil) throws -> PlainHTTPClient.Response {
        var h = headers
        if body != nil { h.append("Content-Type: application/json") }
        let r: PlainHTTPClient.Response
        do {
            r = try http.request(method: method, url: url(path, query), headers: h, body: body.map { Array(JSON.encode($0).utf8) })
        } catch {
            throw RemoteError(status: 0, code: "Unreachable", message: "cannot reach the Gantry API at \(base): \(error.message)")
        }
        return r
    }

    /// A JSON request; the 2xx response's JSON (`{}` for an empty body), else the API's error.
    func call(_ method: String, _ path: String, query: [(String, String)] = [], body: Value? = nil) throws -> Value {
        let r = try raw(method, path, query: query, body: body)
        guard (200..<300).contains(r.status) else { throw RemoteError.from(status: r.status, body: r.body, what: "\(method) \(path)") }
        if r.body.isEmpty { return .object([]) }
        do { return try JSON.parse(String(decoding: r.body, as: UTF8.self)) } catch {
            throw RemoteError(status: r.status, code: "BadResponse", message: "\(method) \(path): the server's answer is not JSON: \(error)")
        }
    }

    func get(_ path: String, _ query: [(String, String)] = []) throws -> Value { try call("GET", path, query: query) }

    /// The object at `path`, or nil on a 404 (whatever the API says about it).
    func getIfPresent(_ path: String) throws -> Value? {
        do { return try get(path) } catch let e as RemoteError where e.status == 404 { return nil }
    }

    /// A text response (logs): its bytes.
    func text(_ path: String, _ query: [(String, String)]) throws -> [UInt8] {
        let r = try raw("GET", path, query: query)
        guard (200..<300).contains(r.status) else { throw RemoteError.from(status: r.status, body: r.body, what: "GET \(path)") }
        return r.body
    }

    /// A streamed text response (`follow=true`): each chunk to `onData` as it arrives, until
    /// the server ends it or `onData` returns false.
    func stream(_ path: String, _ query: [(String, String)], onData: @escaping ([UInt8]) -> Bool) throws {
        let r: PlainHTTPClient.Response
        do {
            r = try http.stream(url: url(path, query), headers: headers, onData: onData)
        } catch {
            throw RemoteError(status: 0, code: "Unreachable", message: "cannot reach the Gantry API at \(base): \(error.message)")
        }
        guard (200..<300).contains(r.status) else { throw RemoteError.from(status: r.status, body: r.body, what: "GET \(path)") }
    }

    // MARK: Paths

    static func collection(_ kind: Kind, namespace: String?) -> String {
        switch kind {
        case .workload: return namespace.map { "/api/v1/namespaces/\(segment($0))/workloads" } ?? "/api/v1/workloads"
        case .queue: return "/api/v1/queues"
        case .resourcePool: return "/api/v1/resourcepools"
        case .node: return "/api/v1/nodes"
        }
    }

    static func objectPath(_ kind: Kind, namespace: String, name: String) -> String {
        collection(kind, namespace: kind.isNamespaced ? namespace : nil) + "/" + segment(name)
    }

    static func workloadPath(_ key: ObjectKey) -> String { objectPath(.workload, namespace: key.namespace, name: key.name) }
}
