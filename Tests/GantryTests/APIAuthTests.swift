import Testing
import Foundation
import GantryAPI
@testable import GantryServer
@testable import HTTPServer

/// A concrete path for a route of the table, on the fixture's objects.
func samplePath(_ r: APIRoute, ns: String = "team-a", workload: String = "train", missing: Bool = false) -> String {
    var p = r.path.replacingOccurrences(of: "{ns}", with: ns).replacingOccurrences(of: "{rank}", with: "0")
    let name = missing ? "nothere" : r.path.hasPrefix("/api/v1/queues") ? "research" : r.path.hasPrefix("/api/v1/resourcepools") ? "pool-a"
        : r.path.hasPrefix("/api/v1/nodes") ? "node-1" : workload
    p = p.replacingOccurrences(of: "{name}", with: name)
    return p
}

/// A body good enough to get past parsing for routes that take one.
func sampleBody(_ r: APIRoute) -> String? {
    switch r.operationId {
    case "createWorkload": return #"{"metadata":{"name":"new-one"},"spec":{"image":"img","command":"true","queue":"research"}}"#
    case "createQueue": return #"{"metadata":{"name":"q2"},"spec":{"deserved":{"gpu":1}}}"#
    case "patchWorkload", "patchQueue": return #"{"metadata":{"labels":{"x":"y"}}}"#
    case "batchStop", "batchResume", "batchDelete", "batchClone": return #"{"workloads":["team-a/train"]}"#
    default: return r.body == nil ? nil : "{}"
    }
}

@Suite(.timeLimit(.minutes(1))) struct APIAuthTests {
    @Test func everyRouteRefusesAMissingOrWrongTokenAndATooLowRole() throws {
        let routes = APIRoute.all.filter { $0.minRole != nil }
        #expect(routes.count >= 35)
        for r in routes {
            let router = try APIFixture.router(try APIFixture.backend())
            let path = samplePath(r)
            let body = sampleBody(r)
            let missing = apiCall(router, r.method, path, body: body)
            #expect(missing.status == 401 && missing.errorCode == "Unauthorized", "\(r.method) \(path) without a token: \(missing.status) \(missing.text)")
            let wrong = apiCall(router, r.method, path, token: "not-a-token", body: body)
            #expect(wrong.status == 401 && wrong.errorCode == "Unauthorized", "\(r.method) \(path) with a wrong token: \(wrong.status)")
            let nearly = apiCall(router, r.method, path, token: "admin-tokenX", body: body)
            #expect(nearly.status == 401, "a token with an extra byte is refused")
            if let min = r.minRole, min > .viewer {
                let low = min == .admin ? "editor-token" : "viewer-token"
                let res = apiCall(router, r.method, path, token: low, body: body)
                #expect(res.status == 403 && res.errorCode == "Forbidden", "\(r.method) \(path) as \(low): \(res.status) \(res.text)")
            }
            // The admin gets past auth everywhere.
            let ok = apiCall(router, r.method, path, token: "admin-token", body: body)
            #expect(ok.status != 401 && ok.status != 403 && ok.status < 500, "\(r.method) \(path) as admin: \(ok.status) \(ok.text)")
        }
    }

    @Test func namespaceRestrictedTokensStayInTheirNamespaces() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        for r in APIRoute.all where r.path.contains("{ns}") {
            let res = apiCall(router, r.method, samplePath(r, ns: "team-a"), token: "teamb-token", body: sampleBody(r))
            #expect(res.status == 403 && res.errorCode == "Forbidden", "\(r.method) \(samplePath(r)) as team-b editor: \(res.status)")
        }
        // Cross-namespace lists show only team-b.
        let list = apiCall(router, "GET", "/api/v1/workloads", token: "teamb-token")
        #expect(list.status == 200)
        let namespaces = Set(list.json?["items"]?.arrayValue?.compactMap { $0["metadata"]?["namespace"]?.stringValue } ?? [])
        #expect(namespaces == ["team-b"])
        #expect(apiCall(router, "GET", "/api/v1/workloads/count", token: "teamb-token").json?["count"]?.intValue == 1)
        // A batch names a workload outside: that item is 403, the other succeeds.
        let batch = apiCall(router, "POST", "/api/v1/workloads:batchStop", token: "teamb-token", body: #"{"workloads":["team-a/train","team-b/wait-1"]}"#)
        #expect(batch.status == 200)
        let results = batch.json?["results"]?.arrayValue ?? []
        #expect(results.count == 2)
        #expect(results.first?["status"]?.intValue == 403)
        #expect(results.last?["status"]?.intValue == 200)
        #expect(batch.json?["succeeded"]?.intValue == 1 && batch.json?["failed"]?.intValue == 1)
        #expect(backend.get(ObjectKey(.workload, namespace: "team-a", name: "train"))?.status?.workload?.phase == .running)
        // A clone into another namespace is refused.
        let clone = apiCall(router, "POST", "/api/v1/namespaces/team-b/workloads/wait-1:clone", token: "teamb-token", body: #"{"name":"c","namespace":"team-a"}"#)
        #expect(clone.status == 403)
    }

    @Test func withoutATokensFileEveryoneIsAnonymousAdmin() throws {
        let router = APIFixture.router(try APIFixture.backend(), tokens: nil)
        let who = apiCall(router, "GET", "/api/v1/whoami")
        #expect(who.status == 200)
        #expect(who.json?["user"]?.stringValue == "anonymous")
        #expect(who.json?["role"]?.stringValue == "admin")
        #expect(who.json?["namespaces"] == .null)
        #expect(who.json?["mode"]?.stringValue == "directory")
        #expect(apiCall(router, "DELETE", "/api/v1/queues/research").status == 200)
    }

    @Test func whoamiNamesTheTokensUser() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let who = apiCall(router, "GET", "/api/v1/whoami", token: "editor-token")
        #expect(who.json?["user"]?.stringValue == "bob")
        #expect(who.json?["role"]?.stringValue == "editor")
        #expect(who.json?["namespaces"] == .array([.string("team-a"), .string("team-b")]))
    }

    @Test func theOpenAPIDocumentNeedsNoToken() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let doc = apiCall(router, "GET", "/api/v1/openapi.json")
        #expect(doc.status == 200)
        #expect(doc.json?["openapi"]?.stringValue == "3.1.0")
    }

    @Test func tokenFilesParse() throws {
        let t = try APIFixture.tokens()
        #expect(t.count == 5)
        #expect(t.authenticate("Bearer admin-token") == Principal(user: "alice", role: .admin))
        #expect(t.authenticate("bearer   editor-token ") == Principal(user: "bob", role: .editor, namespaces: ["team-a", "team-b"], unixUser: "bob"))
        #expect(t.authenticate("Bearer nounix-token")?.namespaces == nil)
        #expect(t.authenticate("Bearer nounix-token")?.unixUser == nil)
        #expect(t.authenticate("Basic YWRtaW4=") == nil)
        #expect(t.authenticate("Bearer ") == nil)
        #expect(t.authenticate("Bearer admin-toke") == nil)
        #expect(t.authenticate(nil) == nil)
        let dash = try TokenTable.parse("tok u editor * -\n", file: "f")
        #expect(dash.authenticate("Bearer tok")?.unixUser == nil)
        #expect(try TokenTable.parse("", file: "f").count == 0)
        let hashes = try TokenTable.parse("  # only a comment\nab#cd u viewer # trailing comment\n", file: "f")
        #expect(hashes.count == 1)
        #expect(hashes.authenticate("Bearer ab#cd")?.user == "u")
    }

    @Test(arguments: [
        ("a b\n", "t:1:"),
        ("# c\n\nx y superuser\n", "t:3:"),
        ("x y admin ns,Bad_NS\n", "t:1:"),
        ("x y admin * root extra\n", "t:1:"),
        ("x y admin\nx z viewer\n", "t:2:"),
        ("x y admin * bad/name\n", "t:1:"),
    ])
    func tokenFileErrorsNameFileAndLine(_ text: String, _ prefix: String) {
        do {
            _ = try TokenTable.parse(text, file: "t")
            Issue.record("\(text) parsed")
        } catch {
            #expect(error.message.hasPrefix(prefix), "\(error.message)")
        }
    }

    @Test func loadReadsAFileAndNamesIt() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let path = dir + "/tokens"
        try "ok-token alice admin\nbroken\n".write(toFile: path, atomically: true, encoding: .utf8)
        do { _ = try TokenTable.load(path: path); Issue.record("loaded") } catch { #expect(error.message.hasPrefix("\(path):2:")) }
        try "ok-token alice admin\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try TokenTable.load(path: path).count == 1)
        do { _ = try TokenTable.load(path: dir + "/missing"); Issue.record("loaded") } catch { #expect(error.message.contains("missing")) }
    }

    @Test func constantTimeComparisonIsEquality() {
        #expect(TokenTable.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!TokenTable.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!TokenTable.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!TokenTable.constantTimeEqual([], Array("a".utf8)))
        #expect(TokenTable.constantTimeEqual([], []))
    }
}
