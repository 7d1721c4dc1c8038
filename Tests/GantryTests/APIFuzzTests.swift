import Testing
import Foundation
import GantryAPI
import ControllerRuntime
@testable import GantryServer
@testable import HTTPServer

/// Seeded random requests: random methods, paths (from the route table and made up),
/// queries and bodies. None may trap or answer 5xx; every /api/v1 error is in the error shape.
@Suite(.timeLimit(.minutes(1))) struct APIFuzzTests {
    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    static let tokens: [String?] = [nil, "admin-token", "editor-token", "viewer-token", "teamb-token", "nounix-token", "zzz", ""]
    static let names = ["train", "wait-2", "wait-1", "from-file", "research", "pool-a", "node-1", "nothere", "", "x:stop", "a:b:c", "%2F",
                        "..", "UPPER", String(repeating: "a", count: 300), "é", "-1", "0", "99999999999999999999", "1e9", " "]
    static let queryNames = ["limit", "offset", "tail", "sinceSeconds", "timestamps", "follow", "limitBytes", "since", "until", "start", "end",
                             "step", "numberOfSamples", "fields", "filterBy", "sortBy", "sortOrder", "continue", "deleted", "groupBy", "labels",
                             "phase", "metric", "gpu", "rank", "bogus", ""]
    static let values = ["", "0", "1", "-1", "50", "1001", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e308", "nan",
                         "inf", "true", "false", "2026-01-01T00:00:00Z", "name", "gpus>=8", "phase==Running,gpus>=1", "a in (", "x=y",
                         "name,gpus", "runtime", "desc", "queue", "%", "\u{0}", "null", "0.0001", "1780000000", "17800000000000"]
    static let bodies = ["", "{}", "[]", "null", "{", "\u{0}\u{1}", #"{"workloads":["team-a/train"]}"#, #"{"selector":"app=llm"}"#,
                         #"{"workloads":[1,2]}"#, #"{"name":"c1"}"#, #"{"name":"Bad Name"}"#, #"{"overrides":{"spec":{"replicas":-5}}}"#,
                         #"{"metadata":{"name":"n1"},"spec":{"image":"i","command":"c"}}"#,
                         #"{"metadata":{"name":"n2"},"spec":{"image":"i","command":"c","replicas":9223372036854775807,"resources":{"gpu":9223372036854775807}}}"#,
                         #"{"spec":{"priority":2}}"#, #"{"spec":{"replicas":"many"}}"#, #"{"metadata":{"labels":null}}"#,
                         #"{"name":"seed","image":"i","resource":{"gpu":-1}}"#, "apiVersion: x\nkind: [\n", "- 1\n- 2\n",
                         #"{"metadata":{"name":"q9"},"spec":{"deserved":{"gpu":"1Ki"}}}"#, String(repeating: "[", count: 5000)]

    @Test(arguments: [UInt64(1), 2, 3])
    func randomRequestsNeverTrapNorFail(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        for i in 0..<1500 {
            var path: String
            if rng.next() % 5 == 0 {
                path = "/api/v1/" + (0..<Int(rng.next() % 7)).map { _ in pick(Self.names + ["workloads", "namespaces", "queues", "replicas", "logs"]) }.joined(separator: "/")
            } else {
                let r = pick(APIRoute.all)
                path = r.path
                for p in ["ns", "name", "rank"] where path.contains("{\(p)}") {
                    let v = pick(Self.names)
                    path = path.replacingOccurrences(of: "{\(p)}", with: p == "ns" && rng.next() % 2 == 0 ? pick(["team-a", "team-b", "team-c"]) : v)
                }
                if rng.next() % 4 == 0 { path = samplePath(r) }
            }
            var query: [(String, String)] = []
            for _ in 0..<Int(rng.next() % 4) { query.append((pick(Self.queryNames), pick(Self.values))) }
            var headers: [String: String] = [:]
            if let t = pick(Self.tokens) { headers["authorization"] = "Bearer " + t }
            if rng.next() % 3 == 0 { headers["content-type"] = pick(["application/json", "application/yaml", "text/plain", "application/merge-patch+json", ";;", ""]) }
            let method = pick(Self.methods)
            let body = rng.next() % 3 == 0 ? [] : Array(pick(Self.bodies).utf8)
            let req = HTTPRequest(method: method, path: path, query: query, headers: headers, body: body)
            let res = router.handle(req)
            #expect(res.status < 500, "#\(i) \(method) \(path) \(query) \(String(decoding: body, as: UTF8.self).prefix(100)): \(res.status)")
            if res.status >= 400, method != "HEAD", path.hasPrefix("/api/v1"), case .bytes(let b) = res.body {
                let v = try? JSON.parse(String(decoding: b, as: UTF8.self))
                #expect(v?["error"]?["status"]?.intValue == Int64(res.status), "#\(i) \(method) \(path): \(String(decoding: b, as: UTF8.self).prefix(200))")
            }
        }
    }
}
