import Foundation
import Testing
import GantryAPI
import KubeClient
import KubeTestServer
@testable import KubeMode

/// A kube-mode controller in this process against the in-process test API server.
final class KubeCluster: @unchecked Sendable {
    let server: TestAPIServer
    let client: KubeClient
    var controllers: [(KubeController, Thread)] = []

    init() throws {
        server = try TestAPIServer()
        client = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 1000, burst: 1000)
    }

    deinit { shutdown() }

    func shutdown() {
        for (c, _) in controllers { c.stop() }
        for (c, _) in controllers { _ = poll(timeout: 10) { c.finished.load(ordering: .relaxed) } }
        controllers = []
        server.stop()
    }

    @discardableResult
    func startController(leaderElect: Bool = false, identity: String = "a", grace: Double = 30, lease: Double = 15) -> KubeController {
        var o = KubeController.Options()
        o.workers = 2
        o.gracePeriod = grace
        o.leaderElect = leaderElect
        o.identity = identity
        o.leaseNamespace = "gantry-system"
        o.leaseDuration = lease; o.renewDeadline = lease * 2 / 3; o.retryPeriod = lease / 8
        o.onLostLease = {}
        let c = KubeController(client: client, options: o)
        let t = Thread { _ = c.run() }
        t.start()
        controllers.append((c, t))
        return c
    }

    func node(_ name: String, gpus: Int, pool: String? = nil) throws {
        var labels = #""nvidia.com/gpu.product":"NVIDIA-A100-SXM4-80GB""#
        if let pool { labels += #","gantry.dev/resource-pool":"\#(pool)""# }
        let v = try JSON.parse(#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"\#(name)","labels":{\#(labels)}},"status":{"allocatable":{"nvidia.com/gpu":"\#(gpus)","cpu":"64","memory":"512Gi"},"conditions":[{"type":"Ready","status":"True"}]}}"#)
        _ = try client.create(GroupVersionResource.nodes.path(), v)
    }

    func queue(_ name: String, _ spec: String) throws {
        let v = try JSON.parse(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"\#(name)"},"spec":\#(spec)}"#)
        _ = try client.create(GroupVersionResource.queues.path(), v)
    }

    func workload(_ ns: String, _ name: String, _ spec: String) throws {
        let v = try JSON.parse(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"\#(name)","namespace":"\#(ns)"},"spec":\#(spec)}"#)
        _ = try client.create(GroupVersionResource.workloads.path(namespace: ns), v)
    }

    func workloadObject(_ ns: String, _ name: String) -> Value? { server.object(GroupVersionResource.workloads.path(namespace: ns, name: name)) }
    func phase(_ ns: String, _ name: String) -> String? { workloadObject(ns, name)?["status"]?["phase"]?.stringValue }
    func pods(_ ns: String, workload: String? = nil) -> [Value] {
        server.objects(GroupVersionResource.pods.path(namespace: ns)).filter { p in
            workload == nil || KubeObjects.stringMap(p["metadata"]?["labels"])[KubeObjects.labelWorkload] == workload
        }
    }
    func podNames(_ ns: String, workload: String? = nil) -> [String] { pods(ns, workload: workload).compactMap { $0["metadata"]?["name"]?.stringValue }.sorted() }
    func setPods(_ ns: String, workload: String, phase: String, exitCode: Int32? = nil) {
        for n in podNames(ns, workload: workload) { server.setPodPhase(namespace: ns, name: n, phase: phase, exitCode: exitCode) }
    }
    /// Plays the kubelet for Pods being deleted: they go.
    func reapDeletedPods(_ ns: String) {
        for p in pods(ns) where KubeObjects.ServerMeta(p).deleting {
            if let n = p["metadata"]?["name"]?.stringValue { server.remove(GroupVersionResource.pods.path(namespace: ns, name: n)) }
        }
    }
    func events(_ ns: String) -> [Value] { server.objects(GroupVersionResource.events.path(namespace: ns)) }
}

@Suite(.serialized, .timeLimit(.minutes(2)))
struct KubeModeTests {
    @Test func workloadsReconcileToPodsAndStatus() throws {
        let k = try KubeCluster()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("team-a", "llama", #"{"type":"PyTorchJob","queue":"q","image":"pytorch:2","command":"python train.py","replicas":2,"resources":{"gpu":2,"cpu":4}}"#)
        let c = k.startController()
        #expect(poll(timeout: 20) { k.podNames("team-a", workload: "llama") == ["llama-master-0", "llama-worker-1"] })
        let pod = k.pods("team-a", workload: "llama").first
        #expect(pod?["spec"]?["nodeName"] == .string("n1"))
        #expect(pod?["metadata"]?["ownerReferences"]?.arrayValue?.first?["uid"] == k.workloadObject("team-a", "llama")?["metadata"]?["uid"])
        #expect(k.server.object(GroupVersionResource.services.path(namespace: "team-a", name: "llama")) != nil)
        #expect(poll(timeout: 10) { KubeObjects.ServerMeta(k.workloadObject("team-a", "llama") ?? .null).finalizers.contains(KubeObjects.finalizer) })
        #expect(poll(timeout: 10) { k.workloadObject("team-a", "llama")?["status"]?["admission"] != nil || k.phase("team-a", "llama") == "Admitted" || k.phase("team-a", "llama") == "Pending" })
        k.setPods("team-a", workload: "llama", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("team-a", "llama") == "Running" })
        k.setPods("team-a", workload: "llama", phase: "Succeeded", exitCode: 0)
        #expect(poll(timeout: 10) { k.phase("team-a", "llama") == "Succeeded" })
        // Events went to the API server, about the workload.
        #expect(poll(timeout: 10) { k.events("team-a").contains { $0["reason"] == .string("Started") && $0["involvedObject"]?["name"] == .string("llama") } })
        let q = k.server.object(GroupVersionResource.queues.path(name: "q"))
        #expect(q?["status"] != nil)
        #expect(c.ready)
    }

    @Test func aWorkloadWithoutImageIsInvalidAndGetsAWarning() throws {
        let k = try KubeCluster()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("default", #"{}"#)
        try k.workload("default", "noimage", #"{"command":"echo hi"}"#)
        k.startController()
        #expect(poll(timeout: 15) { k.workloadObject("default", "noimage")?["status"]?["conditions"]?.arrayValue?.contains { $0["reason"] == .string("InvalidSpec") } == true })
        #expect(poll(timeout: 10) { k.events("default").contains { $0["type"] == .string("Warning") && ($0["message"]?.stringValue ?? "").contains("spec.image") } })
        #expect(k.pods("default").isEmpty)
    }

    @Test func aWorkloadDeletedWithRunningPodsStopsThemBeforeItGoes() throws {
        let k = try KubeCluster()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("ns", "svc", #"{"type":"Deployment","queue":"q","image":"nginx","command":"serve","replicas":2,"resources":{"gpu":1}}"#)
        k.startController(grace: 1)
        #expect(poll(timeout: 20) { k.pods("ns", workload: "svc").count == 2 })
        #expect(poll(timeout: 10) { KubeObjects.ServerMeta(k.workloadObject("ns", "svc") ?? .null).finalizers.contains(KubeObjects.finalizer) })
        k.setPods("ns", workload: "svc", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("ns", "svc") == "Running" })
        try k.client.delete(GroupVersionResource.workloads.path(namespace: "ns", name: "svc"))
        // The finalizer holds the object while its Pods go (grace 1 s, then forced).
        #expect(k.workloadObject("ns", "svc") != nil)
        #expect(poll(timeout: 20) { k.reapDeletedPods("ns"); return k.pods("ns", workload: "svc").isEmpty })
        #expect(poll(timeout: 15) { k.workloadObject("ns", "svc") == nil })
    }

    @Test func preemptionDeletesPodsAndWaitsForThemToGo() throws {
        let k = try KubeCluster()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("ns", "low", #"{"queue":"q","image":"i","command":"c","priority":"low","replicas":1,"resources":{"gpu":8}}"#)
        k.startController(grace: 30)
        #expect(poll(timeout: 20) { k.pods("ns", workload: "low").count == 1 })
        k.setPods("ns", workload: "low", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("ns", "low") == "Running" })
        try k.workload("ns", "high", #"{"queue":"q","image":"i","command":"c","priority":"high","replicas":1,"resources":{"gpu":8}}"#)
        // The victim's Pod is told to stop; the preemptor waits while it is still there.
        #expect(poll(timeout: 15) { k.pods("ns", workload: "low").first.map { KubeObjects.ServerMeta($0).deleting } == true })
        Thread.sleep(forTimeInterval: 0.5)
        #expect(k.pods("ns", workload: "high").isEmpty)
        // It stops (the kubelet's part): the preemptor's Pod comes, on the same GPUs.
        k.reapDeletedPods("ns")
        #expect(poll(timeout: 15) { k.pods("ns", workload: "high").count == 1 })
        #expect(k.pods("ns", workload: "low").isEmpty)
        #expect(poll(timeout: 10) { k.workloadObject("ns", "low")?["status"]?["conditions"]?.arrayValue?.contains { $0["type"] == .string("Preempted") && $0["status"] == .string("True") } == true })
    }

    @Test func aDroppedWatchLosesNoUpdate() throws {
        let k = try KubeCluster()
        defer { k.shutdown() }
        k.server.splitWatchChunks = true
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        k.startController()
        for i in 0..<6 {
            if i % 2 == 1 { k.server.dropWatches() }
            if i == 3 { k.server.expireWatchHistory() }
            try k.workload("ns", "w\(i)", #"{"queue":"q","image":"i","command":"c","resources":{"gpu":1}}"#)
        }
        #expect(poll(timeout: 30) { (0..<6).allSatisfy { k.pods("ns", workload: "w\($0)").count == 1 } })
        k.server.dropWatches()
        for i in 0..<6 { k.setPods("ns", workload: "w\(i)", phase: "Succeeded", exitCode: 0) }
        #expect(poll(timeout: 30) { (0..<6).allSatisfy { k.phase("ns", "w\($0)") == "Succeeded" } })
    }

    @Test func aRestartedControllerAdoptsRunningPodsAndStartsNothingTwice() throws {
        let k = try KubeCluster()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("ns", "train", #"{"queue":"q","image":"i","command":"c","replicas":2,"resources":{"gpu":2}}"#)
        let first = k.startController()
        #expect(poll(timeout: 20) { k.pods("ns", workload: "train").count == 2 })
        k.setPods("ns", workload: "train", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("ns", "train") == "Running" })
        first.stop()
        #expect(poll(timeout: 10) { first.finished.load(ordering: .relaxed) })
        let created = k.server.requestCount("POST", prefix: "/api/v1/namespaces/ns/pods")
        k.startController(identity: "b")
        try k.workload("ns", "next", #"{"queue":"q","image":"i","command":"c","replicas":1,"resources":{"gpu":2}}"#)
        #expect(poll(timeout: 20) { k.pods("ns", workload: "next").count == 1 })
        #expect(k.server.requestCount("POST", prefix: "/api/v1/namespaces/ns/pods") == created + 1)
        #expect(k.phase("ns", "train") == "Running")
        k.setPods("ns", workload: "train", phase: "Succeeded", exitCode: 0)
        #expect(poll(timeout: 10) { k.phase("ns", "train") == "Succeeded" })
    }

    @Test func theStandbyTakesOverWithoutStartingAReplicaTwice() throws {
        let k = try KubeCluster()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("ns", "a", #"{"queue":"q","image":"i","command":"c","replicas":2,"resources":{"gpu":1}}"#)
        let leader = k.startController(leaderElect: true, identity: "one", lease: 1.5)
        #expect(poll(timeout: 15) { leader.leading.load(ordering: .relaxed) })
        let standby = k.startController(leaderElect: true, identity: "two", lease: 1.5)
        #expect(poll(timeout: 20) { k.pods("ns", workload: "a").count == 2 })
        #expect(poll(timeout: 10) { standby.ready })
        let standbyLeads = standby.leading.load(ordering: .relaxed)
        #expect(!standbyLeads)
        k.setPods("ns", workload: "a", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("ns", "a") == "Running" })
        // The leader goes away without releasing the Lease (as after kill -9).
        leader.abandon()
        #expect(poll(timeout: 15) { standby.leading.load(ordering: .relaxed) && standby.active.load(ordering: .relaxed) })
        try k.workload("ns", "b", #"{"queue":"q","image":"i","command":"c","replicas":1,"resources":{"gpu":1}}"#)
        #expect(poll(timeout: 15) { k.pods("ns", workload: "b").count == 1 })
        #expect(k.server.requestCount("POST", prefix: "/api/v1/namespaces/ns/pods") == 3)
        #expect(k.phase("ns", "a") == "Running")
    }
}
