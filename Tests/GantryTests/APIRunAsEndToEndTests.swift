import Testing
import Foundation
import Glibc
@testable import GantryAPI

/// Replicas of API-created workloads run as their submitter's Unix account (the tokens file's
/// mapping), not as the daemon: as root, with a throw-away account made for the test.
@Suite(.serialized, .timeLimit(.minutes(2))) struct APIRunAsEndToEndTests {
    @Test func anAPICreatedReplicaRunsUnderTheMappedAccountAndCannotWriteTheStateDirectory() throws {
        guard let user = ThrowawayUser.make() else { return }
        defer { user.remove() }
        let base = try makeTemporaryDirectory("gantry-api-runas-")
        defer { removeTree(base) }
        // The tokens file: the throw-away account for "eddie"; "nora" has no mapping.
        try "editor-token eddie editor team-a \(user.name)\nnomap-token nora editor team-a\n"
            .write(toFile: base + "/tokens", atomically: true, encoding: .utf8)
        let d = try DaemonUnderTest(extra: ["--listen", "127.0.0.1:0", "--local-gpus", "1", "--tokens", base + "/tokens"])
        d.write("queues.yaml", queueManifest)
        let port = d.apiPort()
        let p = try #require(port)
        let marker = d.state + "/written-by-replica"
        let cmd = "id -u; touch \(marker) && echo WROTE || echo DENIED"
        let body = """
            {"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"as-eddie","namespace":"team-a"},
             "spec":{"queue":"research","command":\(jsonQuote(cmd)),"resources":{"gpu":1}}}
            """
        let r = try rawRequest(p, "POST", "/api/v1/namespaces/team-a/workloads",
                               headers: ["Authorization: Bearer editor-token", "Content-Type: application/json"], body: Array(body.utf8))
        try #require(r.status == 201, "create: \(r.text)")
        let created = try JSON.parse(r.text)
        #expect(created["metadata"]?["annotations"]?["gantry.dev/run-as"]?.stringValue == user.name)
        try #require(d.wait(30) { d.status(.workload, "as-eddie")?["phase"]?.stringValue == "Succeeded" }, "as-eddie succeeded: \(d.log.suffix(1500))")
        let logs = try rawRequest(p, "GET", "/api/v1/namespaces/team-a/workloads/as-eddie/replicas/0/logs", headers: ["Authorization: Bearer editor-token"])
        let lines = logs.text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("[gantry]") }
        #expect(lines.first == String(user.uid), "the replica's uid: \(logs.text)")
        #expect(lines.contains("DENIED"), "the replica could not write the state directory: \(logs.text)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        // A user without a mapping is refused at create, with the reason.
        let body2 = body.replacingOccurrences(of: "as-eddie", with: "as-nora")
        let r2 = try rawRequest(p, "POST", "/api/v1/namespaces/team-a/workloads",
                                headers: ["Authorization: Bearer nomap-token", "Content-Type: application/json"], body: Array(body2.utf8))
        #expect(r2.status == 403)
        #expect(r2.text.contains("Unix account"), "\(r2.text)")
    }
}
