import Testing
import Foundation
import Glibc
@testable import GantryAPI

/// Review findings (issue 11), directory mode through the binary.
@Suite(.serialized, .timeLimit(.minutes(2))) struct APIReviewDirectoryTests {
    /// A state directory inside the spec directory (`--spec-dir D --state-dir D/state`, not a
    /// hidden name): the spec directory's source also reads `state/api-manifests/**.json`, so
    /// an object written through the API becomes a "user manifest" and the API refuses its own
    /// object (409 naming state/api-manifests/...). The same reading makes any `.json` a
    /// replica writes in its working directory (`state/work/...`, owned by the replica's
    /// account) a trusted spec-directory manifest, whose gantry.dev/run-as is honoured.
    @Test func aStateDirectoryInsideTheSpecDirectoryIsNotReadAsManifests() throws {
        let base = try makeTemporaryDirectory("gantry-review-nested-")
        let d = try DaemonUnderTest(spec: base + "/spec", state: base + "/spec/state", logPath: base + "/daemon.log",
                                    extra: ["--listen", "127.0.0.1:0", "--local-gpus", "1"], removing: base)
        d.write("queues.yaml", queueManifest)
        var port: Int?
        d.wait {
            guard let line = d.log.split(separator: "\n").first(where: { $0.contains("serving the HTTP API") }),
                  let r = line.range(of: "port=") else { return false }
            port = Int(line[r.upperBound...].prefix { $0.isNumber })
            return true
        }
        let p = try #require(port, "the daemon serves the API: \(d.log.suffix(800))")
        let body = #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"api-made","namespace":"team-a"},"spec":{"queue":"research","command":"sleep 30","resources":{"gpu":1}}}"#
        let r = try rawRequest(p, "POST", "/api/v1/namespaces/team-a/workloads", headers: ["Content-Type: application/json"], body: Array(body.utf8))
        try #require(r.status == 201, "create: \(r.status) \(r.text)")
        // Give the spec directory's watcher (and its resync) time to see the file: its owner
        // must stay the API.
        var owner: String?
        _ = d.wait(5) {
            let g = try? rawRequest(p, "GET", "/api/v1/namespaces/team-a/workloads/api-made")
            owner = g.flatMap { try? JSON.parse($0.text) }?["owner"]?.stringValue
            return owner == "manifest"
        }
        #expect(owner == "api", "the API's own object became a user manifest")
        let patch = try rawRequest(p, "PATCH", "/api/v1/namespaces/team-a/workloads/api-made",
                                   headers: ["Content-Type: application/merge-patch+json"], body: Array(#"{"metadata":{"labels":{"x":"y"}}}"#.utf8))
        #expect(patch.status == 200, "patch of an API-created workload: \(patch.status) \(patch.text)")
    }
}
