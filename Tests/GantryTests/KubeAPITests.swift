import Foundation
import Testing
import GantryAPI
import KubeClient
import KubeTestServer
import HTTPServer
import GantryServer
@testable import GantryCLI
@testable import KubeMode
@testable import Controllers

/// The HTTP API in kube mode: reads from the controller's informers, writes as API calls to
/// the (in-process) API server, which the controller then reconciles like any other change.
@Suite(.serialized, .timeLimit(.minutes(1))) struct KubeAPITests {
    func call(_ router: Router, _ method: String, _ path: String, _ body: String = "") -> (Int, Value) {
        let parts = path.split(separator: "?", maxSplits: 1)
        let query = parts.count > 1 ? parts[1].split(separator: "&").map { kv -> (String, String) in
            let p = kv.split(separator: "=", maxSplits: 1)
            return (String(p[0]), p.count > 1 ? String(p[1]) : "")
        } : []
        let r = router.handle(HTTPRequest(method: method, path: String(parts[0]), query: query, headers: ["content-type": "application/json"], body: Array(body.utf8)))
        guard case .bytes(let b) = r.body else { return (r.status, .null) }
        return (r.status, (try? JSON.parse(String(decoding: b, as: UTF8.self))) ?? .null)
    }

    @Test func workloadsCreatedPatchedStoppedAndDeletedThroughTheAPIAreAPICalls() throws {
        let cluster = try KubeCluster.fake()
        defer { cluster.shutdown() }
        try cluster.node("n1", gpus: 8)
        try cluster.queue("research", #"{"deserved":{"gpu":8}}"#)
        let controller = cluster.startController()
        try #require(poll(timeout: 10) { controller.ready }, "controller ready")
        var router = Router()
        APIServer(backend: KubeAPIBackend(controller: controller), tokens: nil).register(into: &router)

        let body = #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"api-job","namespace":"team-a"},"spec":{"queue":"research","image":"busybox","command":"echo hi","resources":{"gpu":2}}}"#
        let (code, created) = call(router, "POST", "/api/v1/namespaces/team-a/workloads", body)
        try #require(code == 201, "create: \(created)")
        #expect(created["owner"]?.stringValue == "cluster")
        // On the API server, with the submitter recorded.
        let stored = try #require(cluster.workloadObject("team-a", "api-job"))
        #expect(stored["metadata"]?["annotations"]?["gantry.dev/submitter"]?.stringValue == "anonymous")
        // The controller reconciles it like any Workload: Pods, then Running.
        #expect(poll(timeout: 10) { cluster.podNames("team-a", workload: "api-job").count == 1 }, "a Pod")
        // The API reads what the informers hold.
        #expect(poll(timeout: 10) { call(router, "GET", "/api/v1/workloads?queue=research").1["totalCount"]?.intValue == 1 })
        // Patch: a replace with the read resourceVersion.
        let (pc, patched) = call(router, "PATCH", "/api/v1/namespaces/team-a/workloads/api-job", #"{"spec":{"priority":1}}"#)
        #expect(pc == 200, "\(patched)")
        #expect(cluster.workloadObject("team-a", "api-job")?["spec"]?["priority"]?.intValue == 1)
        // Stop: spec.suspend on the object.
        #expect(call(router, "POST", "/api/v1/namespaces/team-a/workloads/api-job:stop").0 == 200)
        #expect(cluster.workloadObject("team-a", "api-job")?["spec"]?["suspend"]?.boolValue == true)
        // Create of an existing name: the server's 409.
        #expect(call(router, "POST", "/api/v1/namespaces/team-a/workloads", body).0 == 409)
        // Delete: the object is deleted (its finalizer goes once the Pods are gone).
        #expect(call(router, "DELETE", "/api/v1/namespaces/team-a/workloads/api-job").0 == 200)
        #expect(poll(timeout: 15) {
            cluster.reapDeletedPods("team-a")
            return cluster.workloadObject("team-a", "api-job") == nil
        }, "deleted")
    }
}

/// The Pod of a workload whose run-as annotation is a numeric uid carries it as its security
/// context; a name (no user database in a cluster) or no annotation leaves the Pod's alone.
@Suite struct KubePodSecurityContextTests {
    func pod(user: String?) -> Value {
        var spec = WorkloadSpec(); spec.image = "i"
        let ref = ReplicaRef(key: ObjectKey(.workload, namespace: "ns", name: "w"), dispatch: 1, rank: 0, attempt: 0)
        return PodRuntime.podObject(ReplicaLaunch(ref: ref, command: "c", env: [], header: "", user: user), spec: spec, uid: "u",
                                    intent: nil, assignment: nil, vendor: .nvidia, grace: 30)
    }

    @Test func aNumericAccountBecomesRunAsUser() {
        #expect(pod(user: "1001")["spec"]?["securityContext"]?["runAsUser"]?.intValue == 1001)
        #expect(pod(user: "1001")["spec"]?["securityContext"]?["runAsNonRoot"]?.boolValue == true)
        #expect(pod(user: "0")["spec"]?["securityContext"]?["runAsNonRoot"]?.boolValue == false)
        #expect(pod(user: "alice")["spec"]?["securityContext"] == nil)
        #expect(pod(user: nil)["spec"]?["securityContext"] == nil)
    }
}
