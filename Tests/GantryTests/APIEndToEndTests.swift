import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore
import Glibc

/// The HTTP API of the real daemon (`gantry run --listen`): writes land in the daemon-owned
/// directory, survive `kill -9`, and never take over what a user's manifest declares.
@Suite(.serialized, .timeLimit(.minutes(2))) struct APIEndToEndTests {
    /// As root, API-created replicas need an account to run as (never root by default).
    static var runAs: [String] { getuid() == 0 ? ["--run-as", "nobody"] : [] }

    func daemon(_ extra: [String] = []) throws -> DaemonUnderTest {
        let d = try DaemonUnderTest(extra: ["--listen", "127.0.0.1:0", "--local-gpus", "2"] + APIEndToEndTests.runAs + extra)
        d.write("queues.yaml", queueManifest)
        return d
    }

    func port(_ d: DaemonUnderTest) throws -> Int { try #require(d.apiPort(), "the daemon logged its API port") }

    func request(_ port: Int, _ method: String, _ path: String, _ body: String = "", token: String? = nil) throws -> (Int, Value) {
        var headers = ["Content-Type: application/json"]
        if let token { headers.append("Authorization: Bearer \(token)") }
        let r = try rawRequest(port, method, path, headers: headers, body: Array(body.utf8))
        return (r.status, (try? JSON.parse(r.text)) ?? .string(r.text))
    }

    static func workloadJSON(_ name: String, command: String, queue: String = "research") -> String {
        """
        {"apiVersion": "gantry.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "\(name)", "namespace": "team-a"},
         "spec": {"queue": "\(queue)", "command": \(jsonQuote(command)), "resources": {"gpu": 1}}}
        """
    }

    func phase(_ port: Int, _ name: String) -> String? {
        (try? request(port, "GET", "/api/v1/namespaces/team-a/workloads/\(name)"))?.1["status"]?["phase"]?.stringValue
    }

    @Test func aWorkloadCreatedThroughTheAPIRunsAndSurvivesKill9() throws {
        let d = try daemon()
        let p = try port(d)
        let (code, created) = try request(p, "POST", "/api/v1/namespaces/team-a/workloads", Self.workloadJSON("via-api", command: "echo made by the api"))
        try #require(code == 201, "create: \(created)")
        #expect(created["owner"]?.stringValue == "api")
        let uid = try #require(created["metadata"]?["uid"]?.stringValue)
        #expect(!uid.isEmpty)
        // Durable before the answer: the file is in the daemon-owned directory.
        #expect(FileManager.default.fileExists(atPath: d.state + "/api-manifests/workloads/team-a/via-api.json"))
        try #require(d.wait(30) { phase(p, "via-api") == "Succeeded" }, "via-api succeeded: \(d.log.suffix(2000))")
        let logs = try rawRequest(p, "GET", "/api/v1/namespaces/team-a/workloads/via-api/replicas/0/logs")
        #expect(logs.status == 200 && logs.text.contains("made by the api"))
        // The user's spec directory is untouched.
        #expect((try FileManager.default.contentsOfDirectory(atPath: d.spec)).sorted() == ["queues.yaml"])
        #expect(d.terminate(signal: SIGKILL) != nil)
        let d2 = try DaemonUnderTest(reusing: d, extra: ["--listen", "127.0.0.1:0", "--local-gpus", "2"] + APIEndToEndTests.runAs)
        let p2 = try port(d2)
        try #require(d2.wait(20) { (try? request(p2, "GET", "/api/v1/namespaces/team-a/workloads/via-api"))?.0 == 200 }, "still there after kill -9")
        let (_, again) = try request(p2, "GET", "/api/v1/namespaces/team-a/workloads/via-api")
        #expect(again["metadata"]?["uid"]?.stringValue == uid)
        #expect(again["status"]?["phase"]?.stringValue == "Succeeded", "not run again")
        // Delete: gone from the list, kept in history.
        let (dc, _) = try request(p2, "DELETE", "/api/v1/namespaces/team-a/workloads/via-api")
        #expect(dc == 200)
        #expect(!FileManager.default.fileExists(atPath: d.state + "/api-manifests/workloads/team-a/via-api.json"))
        try #require(d2.wait { (try? request(p2, "GET", "/api/v1/namespaces/team-a/workloads/via-api"))?.0 == 404 }, "deleted")
        #expect(d2.wait {
            let names = (try? request(p2, "GET", "/api/v1/workloads?deleted=true"))?.1["items"]?.arrayValue?.compactMap { $0["metadata"]?["name"]?.stringValue }
            return names?.contains("via-api") == true
        }, "a deleted workload is listed with deleted=true")
    }

    @Test func objectsAUsersManifestDeclaresAreTheUsers() throws {
        let d = try daemon()
        d.write("mine.yaml", wl("mine", command: "sleep 30"))
        let p = try port(d)
        try #require(d.wait { phase(p, "mine") != nil }, "mine reconciled")
        let (c1, e1) = try request(p, "POST", "/api/v1/namespaces/team-a/workloads", Self.workloadJSON("mine", command: "true"))
        #expect(c1 == 409)
        #expect(e1["error"]?["message"]?.stringValue?.contains("mine.yaml") == true, "\(e1)")
        let (c2, e2) = try request(p, "PATCH", "/api/v1/namespaces/team-a/workloads/mine", "{\"spec\": {\"priority\": 1}}")
        #expect(c2 == 409)
        #expect(e2["error"]?["message"]?.stringValue?.contains("mine.yaml") == true, "\(e2)")
        let (c3, _) = try request(p, "DELETE", "/api/v1/namespaces/team-a/workloads/mine")
        #expect(c3 == 409)
        // Stop and resume still work on manifest-owned workloads (as overrides).
        let (c4, _) = try request(p, "POST", "/api/v1/namespaces/team-a/workloads/mine:stop")
        #expect(c4 == 200)
        #expect(d.wait(15) { phase(p, "mine") == "Stopped" }, "mine stopped")
        // An API object that a manifest later declares gives way, and comes back when the manifest goes.
        let (c5, _) = try request(p, "POST", "/api/v1/namespaces/team-a/workloads", Self.workloadJSON("shared", command: "sleep 30"))
        #expect(c5 == 201)
        d.write("shared.yaml", wl("shared", priority: 1, command: "sleep 30"))
        #expect(d.wait { (try? request(p, "GET", "/api/v1/namespaces/team-a/workloads/shared"))?.1["owner"]?.stringValue == "manifest" }, "the manifest's in force")
        d.remove("shared.yaml")
        #expect(d.wait { (try? request(p, "GET", "/api/v1/namespaces/team-a/workloads/shared"))?.1["owner"]?.stringValue == "api" }, "the API's copy back")
        #expect((try FileManager.default.contentsOfDirectory(atPath: d.spec)).sorted() == ["mine.yaml", "queues.yaml"])
    }

    @Test func tokensAreEnforcedAndTheSubmitterRecorded() throws {
        let base = try makeTemporaryDirectory("gantry-tokens-")
        defer { removeTree(base) }
        let me = String(cString: getpwuid(getuid()).pointee.pw_name)
        let account = getuid() == 0 ? "nobody" : me
        try "# token user role namespaces unix\nviewer-token vera viewer *\neditor-token eddie editor team-a \(account)\n"
            .write(toFile: base + "/tokens", atomically: true, encoding: .utf8)
        let d = try daemon(["--tokens", base + "/tokens"])
        let p = try port(d)
        #expect(try request(p, "GET", "/api/v1/workloads").0 == 401)
        #expect(try request(p, "GET", "/api/v1/workloads", token: "wrong").0 == 401)
        #expect(try request(p, "GET", "/api/v1/workloads", token: "viewer-token").0 == 200)
        #expect(try request(p, "POST", "/api/v1/namespaces/team-a/workloads", Self.workloadJSON("w1", command: "true"), token: "viewer-token").0 == 403)
        let (c, created) = try request(p, "POST", "/api/v1/namespaces/team-a/workloads", Self.workloadJSON("w1", command: "true"), token: "editor-token")
        try #require(c == 201, "\(created)")
        #expect(created["metadata"]?["annotations"]?["gantry.dev/submitter"]?.stringValue == "eddie")
        #expect(try request(p, "GET", "/api/v1/workloads?user=eddie", token: "viewer-token").1["totalCount"]?.intValue == 1)
        // The probes stay open.
        #expect(try rawRequest(p, "GET", "/healthz").status == 200)
    }

    @Test func aNonLoopbackAddressNeedsTokens() throws {
        let base = try makeTemporaryDirectory("gantry-listen-")
        defer { removeTree(base) }
        try FileManager.default.createDirectory(atPath: base + "/spec", withIntermediateDirectories: true)
        let (status, output) = runCLI(["run", "--spec-dir", base + "/spec", "--state-dir", base + "/state", "--local-gpus", "0", "--listen", "0.0.0.0:0"])
        #expect(status == 1)
        #expect(output.contains("not a loopback address"), "\(output)")
    }
}

extension DaemonUnderTest {
    /// The port the daemon logged for `--listen 127.0.0.1:0` (nil when it did not within 10 s).
    func apiPort() -> Int? {
        var port: Int?
        wait {
            guard let line = log.split(separator: "\n").first(where: { $0.contains("serving the HTTP API") }),
                  let r = line.range(of: "port=") else { return false }
            port = Int(line[r.upperBound...].prefix { $0.isNumber })
            return true
        }
        return port
    }
}
