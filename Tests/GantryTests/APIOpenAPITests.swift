import Testing
import Foundation
import GantryAPI
@testable import GantryServer
@testable import HTTPServer

@Suite(.timeLimit(.minutes(1))) struct APIOpenAPITests {
    static func document() throws -> Value { try JSON.parse(OpenAPIDocument.json()) }

    /// "METHOD path" of every documented operation.
    static func documented(_ doc: Value) -> Set<String> {
        var out = Set<String>()
        for p in doc["paths"]?.members ?? [] {
            for m in p.value.members ?? [] { out.insert("\(m.key.uppercased()) \(p.key)") }
        }
        return out
    }

    @Test func everyRegisteredRouteIsDocumentedAndViceVersa() throws {
        let doc = try Self.document()
        let router = try APIFixture.router(try APIFixture.backend())
        let documented = Self.documented(doc)
        let verbs = Set(documented.compactMap { d -> String? in
            guard let last = d.split(separator: "/").last, last.hasPrefix("{"), let colon = last.lastIndex(of: ":") else { return nil }
            return String(last[last.index(after: colon)...])
        }).union(["bogus", "batchStop"])
        var registered = Set<String>()
        for r in router.routes {
            let pattern = "/" + r.segments.map { s -> String in
                switch s { case .literal(let l): return l; case .parameter(let p): return "{\(p)}" }
            }.joined(separator: "/")
            guard pattern.hasPrefix("/api/v1") else { continue }
            var lastParam: String?
            if case .parameter(let p)? = r.segments.last { lastParam = p }
            for verb in [nil] + verbs.sorted().map(Optional.some) {
                guard verb == nil || lastParam != nil else { continue }
                var params: [String: String] = [:]
                for s in r.segments { if case .parameter(let p) = s { params[p] = "x" } }
                if let verb, let lastParam { params[lastParam] = "x:\(verb)" }
                // Without a token a served operation answers 401 (the document: 200); others 404 or 405.
                let res = r.handle(HTTPRequest(method: r.method, path: pattern, pathParameters: params))
                if res.status == 401 || (res.status == 200 && pattern == "/api/v1/openapi.json") {
                    registered.insert("\(r.method) \(pattern)\(verb.map { ":" + $0 } ?? "")")
                } else {
                    #expect(res.status == 404 || res.status == 405, "\(r.method) \(pattern) \(verb ?? ""): \(res.status)")
                }
            }
        }
        #expect(registered == documented, "registered only: \(registered.subtracting(documented)); documented only: \(documented.subtracting(registered))")
        #expect(registered.count == APIRoute.all.count)
        let ops = (doc["paths"]?.members ?? []).flatMap { p in (p.value.members ?? []).compactMap { $0.value["operationId"]?.stringValue } }
        #expect(Set(ops).count == ops.count, "operationIds are unique")
        #expect(Set(ops) == Set(APIRoute.all.map(\.operationId)))
    }

    @Test func operationsAreComplete() throws {
        let doc = try Self.document()
        #expect(doc["openapi"]?.stringValue == "3.1.0")
        let checker = SchemaChecker(document: doc)
        for p in doc["paths"]?.members ?? [] {
            let templated = Set(p.key.split(separator: "/").compactMap { seg -> String? in
                guard seg.hasPrefix("{"), let close = seg.firstIndex(of: "}") else { return nil }
                return String(seg[seg.index(after: seg.startIndex)..<close])
            })
            for op in p.value.members ?? [] {
                let params = op.value["parameters"]?.arrayValue ?? []
                let declared = Set(params.filter { $0["in"]?.stringValue == "path" }.compactMap { $0["name"]?.stringValue })
                #expect(declared == templated, "\(op.key) \(p.key) path parameters")
                let responses = op.value["responses"]?.members ?? []
                #expect(responses.contains { $0.key.hasPrefix("2") }, "\(op.key) \(p.key) has a 2xx response")
                #expect(op.value["responses"]?["default"]?["content"]?["application/json"]?["schema"] == .object([.init("$ref", .string("#/components/schemas/Error"))]))
                // Every $ref resolves.
                for r in responses {
                    for c in r.value["content"]?.members ?? [] {
                        let schema = c.value["schema"] ?? .null
                        #expect(!checker.check(.null, schema).contains { $0.contains("unresolvable") }, "\(p.key) \(r.key)")
                    }
                }
            }
        }
    }

    /// Checks `res` against the documented response of `route` for its status.
    static func conforms(_ res: APIResult, _ route: APIRoute, _ doc: Value, sourceLocation: SourceLocation = #_sourceLocation) {
        let op = doc["paths"]?[route.path]?[route.method.lowercased()]
        let documented = op?["responses"]?[String(res.status)] ?? op?["responses"]?["default"]
        let contentType = res.response.header("Content-Type")?.split(separator: ";").first.map(String.init) ?? ""
        guard let schema = documented?["content"]?[contentType]?["schema"] else {
            Issue.record("\(route.method) \(route.path): \(res.status) \(contentType) is not documented", sourceLocation: sourceLocation)
            return
        }
        if contentType == "text/plain" { return }
        guard let body = res.json else { Issue.record("\(route.path): not JSON: \(res.text.prefix(200))", sourceLocation: sourceLocation); return }
        let problems = SchemaChecker(document: doc).check(body, schema)
        #expect(problems.isEmpty, "\(route.method) \(route.path) \(res.status): \(problems.prefix(5))", sourceLocation: sourceLocation)
    }

    @Test func responsesOfEveryRouteMatchTheirSchemas() throws {
        let doc = try Self.document()
        for r in APIRoute.all {
            let backend = try APIFixture.backend()
            let router = try APIFixture.router(backend)
            let token = r.minRole == nil ? nil : "admin-token"
            let res = apiCall(router, r.method, samplePath(r), token: token, body: sampleBody(r))
            #expect(res.status == r.status, "\(r.method) \(samplePath(r)): \(res.status) \(res.text.prefix(300))")
            Self.conforms(res, r, doc)
            // Errors too: a missing object, and no token.
            if r.path.contains("{name}") {
                let missing = apiCall(router, r.method, samplePath(r, missing: true), token: "admin-token", body: sampleBody(r))
                #expect(missing.status == 404, "\(r.method) \(r.path) on a missing object: \(missing.status)")
                Self.conforms(missing, r, doc)
            }
            if r.minRole != nil { Self.conforms(apiCall(router, r.method, samplePath(r)), r, doc) }
        }
    }

    @Test func variantsOfTheListsMatchTheirSchemas() throws {
        let doc = try Self.document()
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        _ = apiCall(router, "DELETE", "/api/v1/namespaces/team-a/workloads/wait-2", token: "admin-token")
        let list = try #require(APIRoute.all.first { $0.operationId == "listWorkloads" })
        for q in ["?deleted=true", "?fields=name,gpus,runtime,distributedRuntime,startedAt", "?limit=1", "?sortBy=gpus&sortOrder=desc", "?phase=Nope", "?limit=0"] {
            Self.conforms(apiCall(router, "GET", "/api/v1/workloads" + q, token: "viewer-token"), list, doc)
        }
        let tele = try #require(APIRoute.all.first { $0.operationId == "workloadTelemetry" })
        for g in ["queue", "phase", "type", "namespace", "pool"] {
            Self.conforms(apiCall(router, "GET", "/api/v1/workloads/telemetry?groupBy=\(g)", token: "viewer-token"), tele, doc)
        }
        let batch = try #require(APIRoute.all.first { $0.operationId == "batchStop" })
        Self.conforms(apiCall(router, "POST", "/api/v1/workloads:batchStop", token: "admin-token", body: #"{"workloads":["a/b","team-a/train"]}"#), batch, doc)
        let who = try #require(APIRoute.all.first { $0.operationId == "whoami" })
        Self.conforms(apiCall(router, "GET", "/api/v1/whoami", token: "editor-token"), who, doc)
        let nodes = try #require(APIRoute.all.first { $0.operationId == "listNodes" })
        Self.conforms(apiCall(router, "GET", "/api/v1/nodes", token: "teamb-token"), nodes, doc)
    }

    @Test func theSampleBackendAnswersEveryGETRouteWithinTheSchemas() throws {
        let doc = try Self.document()
        var router = Router()
        APIServer(backend: MemoryBackend.sample(), tokens: nil).register(into: &router)
        for r in APIRoute.all where r.method == "GET" {
            var path = samplePath(r, workload: "llama-finetune")
            if r.operationId == "getReplicaLogs" { path += "?tail=5" }
            let res = apiCall(router, "GET", path)
            #expect(res.status == 200, "\(path): \(res.status) \(res.text.prefix(200))")
            Self.conforms(res, r, doc)
        }
        let list = apiCall(router, "GET", "/api/v1/workloads")
        #expect(list.json?["totalCount"]?.intValue == 6)
        let metrics = apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads/llama-finetune/metrics")
        #expect((metrics.json?["series"]?.arrayValue?.count ?? 0) == 12)
    }

    @Test func theCheckerCatchesMismatches() throws {
        let doc = try Self.document()
        let checker = SchemaChecker(document: doc)
        let count = Value.object([.init("$ref", .string("#/components/schemas/Count"))])
        #expect(checker.check(.object([.init("count", .int(1))]), count).isEmpty)
        #expect(!checker.check(.object([.init("count", .string("1"))]), count).isEmpty)
        #expect(!checker.check(.object([]), count).isEmpty)
        #expect(!checker.check(.object([.init("count", .int(1)), .init("x", .null)]), count).isEmpty)
        let who = Value.object([.init("$ref", .string("#/components/schemas/WhoAmI"))])
        let ok = Value.object([.init("user", .string("u")), .init("role", .string("admin")), .init("namespaces", .null), .init("mode", .string("kube"))])
        #expect(checker.check(ok, who).isEmpty)
        let bad = Value.object([.init("user", .string("u")), .init("role", .string("root")), .init("namespaces", .null), .init("mode", .string("kube"))])
        #expect(!checker.check(bad, who).isEmpty)
    }
}
