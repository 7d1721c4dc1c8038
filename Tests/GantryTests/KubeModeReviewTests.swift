import Foundation
import Synchronization
import Testing
import GantryAPI
import Controllers
import KubeClient
import KubeTestServer
@testable import KubeMode

/// Review findings on kube mode: each test fails on the code as reviewed.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct KubeModeReviewTests {
    func json(_ s: String) -> Value { (try? JSON.parse(s)) ?? .null }

    /// A deleted PyTorchJob: the workload leaves the inventory before its replicas are
    /// signalled, so the Pod runtime names rank 0 `-worker-0` (no spec, no type) instead of
    /// `-master-0`, finds no such Pod and reports it exited: the master Pod is never deleted
    /// with its grace period (and the quota goes while it still runs).
    @Test func aDeletedPyTorchJobStopsItsMasterPodToo() throws {
        let k = try KubeCluster.fake()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("ns", "pt", #"{"type":"PyTorchJob","queue":"q","image":"i","command":"c","replicas":2,"resources":{"gpu":1}}"#)
        k.startController(grace: 30)
        #expect(poll(timeout: 20) { k.podNames("ns", workload: "pt") == ["pt-master-0", "pt-worker-1"] })
        #expect(poll(timeout: 10) { KubeObjects.ServerMeta(k.workloadObject("ns", "pt") ?? .null).finalizers.contains(KubeObjects.finalizer) })
        k.setPods("ns", workload: "pt", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("ns", "pt") == "Running" })
        try k.client.delete(GroupVersionResource.workloads.path(namespace: "ns", name: "pt"))
        func deleting(_ name: String) -> Bool {
            k.pods("ns", workload: "pt").first { $0["metadata"]?["name"]?.stringValue == name }.map { KubeObjects.ServerMeta($0).deleting } ?? false
        }
        #expect(poll(timeout: 10) { deleting("pt-worker-1") })
        // Both Pods are told to stop (with their grace period): the master too.
        #expect(poll(timeout: 10) { deleting("pt-master-0") })
    }

    /// The written-status cache goes stale: after our PATCH, an informer event from before it
    /// (the informer lags) replaces the cache with the older status; the next status that
    /// equals that older one is then "unchanged" and never written, so a key our PATCH added
    /// stays on the API server.
    @Test func aLateInformerStatusDoesNotSwallowTheNextWrite() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 1000, burst: 1000)
        _ = try client.create(GroupVersionResource.queues.path(), json(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"q"},"spec":{}}"#))
        let key = ObjectKey(.queue, name: "q")
        let writer = KubeStatusWriter(client: client, threads: 1)
        defer { writer.stop() }
        let desired = Mutex<Value>(.object([]))
        writer.setProvider { _ in desired.withLock { $0 } }
        writer.observed(key, nil)
        func serverStatus() -> Value? { server.object(GroupVersionResource.queues.path(name: "q"))?["status"] }

        let s1 = json(#"{"pending":1}"#)
        desired.withLock { $0 = s1 }
        writer.markStatusDirty(key)
        #expect(poll(timeout: 5) { serverStatus()?["pending"] == .int(1) })
        let rv1 = server.object(GroupVersionResource.queues.path(name: "q"))?["metadata"]?["resourceVersion"]?.stringValue ?? ""
        desired.withLock { $0 = json(#"{"pending":1,"admitted":2}"#) }
        writer.markStatusDirty(key)
        #expect(poll(timeout: 5) { serverStatus()?["admitted"] == .int(2) })
        // The informer now delivers the object as it was before that PATCH.
        writer.observed(key, s1, resourceVersion: rv1)
        // The status goes back to s1: "admitted" must go from the server.
        desired.withLock { $0 = s1 }
        writer.markStatusDirty(key)
        #expect(poll(timeout: 3) { writer.idle && serverStatus()?["admitted"] == nil })
    }

    /// A stop of a replica whose Pod the informer has not seen yet: the fallback GET fails
    /// (here a 503 past the client's retries) and is taken for "no such Pod": the replica is
    /// reported exited (quota released) and its Pod is never deleted.
    @Test func aStopWhoseLookupFailsStillDeletesThePod() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 1000, burst: 1000)
        let key = ObjectKey(.workload, namespace: "ns", name: "w")
        let spec: WorkloadSpec = { var s = WorkloadSpec(); s.image = "i"; return s }()
        let lookup = PodRuntime.Lookup(uid: { _ in "u" }, spec: { _ in spec }, vendor: { _ in .nvidia })
        // An informer that has not caught up (never started: an empty cache).
        let pods = Informer(client: client, resource: .pods, labelSelector: KubeObjects.labelWorkload, name: "pods")
        let rt = PodRuntime(client: client, pods: pods, lookup: lookup)
        let ref = ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0)
        let launch = ReplicaLaunch(ref: ref, command: "c", env: [], header: "")
        let pod = PodRuntime.podObject(launch, spec: spec, uid: "u", intent: nil, assignment: nil, vendor: .nvidia, grace: 30)
        _ = try client.create(GroupVersionResource.pods.path(namespace: "ns"), pod)
        let events = Mutex<[RuntimeEvent]>([])
        rt.start { e in events.withLock { $0.append(e) } }
        defer { rt.stop() }
        let path = GroupVersionResource.pods.path(namespace: "ns", name: "w-worker-0")
        server.failNext("GET", pathPrefix: path, status: 503, count: 6)
        rt.signal(ref, force: false)
        // The Pod is told to go (the delete is retried until it can be made) ...
        #expect(poll(timeout: 20) { server.object(path).map { KubeObjects.ServerMeta($0).deleting } ?? true })
        // ... and the replica is not over while its Pod is still there.
        if server.object(path) != nil { #expect(events.withLock { $0 }.isEmpty) }
    }

    /// A retry (attempt 1) whose create met the previous attempt's Pod still terminating
    /// under the same name (409: queued again), then a stop: the queued create is dropped,
    /// but because a Pod of that name (the old attempt's) is in the cache, the new replica
    /// is never reported over: the workload waits for it forever.
    @Test func aStopOfARetryWaitingForItsPredecessorsPodEnds() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 1000, burst: 1000)
        let key = ObjectKey(.workload, namespace: "ns", name: "w")
        let spec: WorkloadSpec = { var s = WorkloadSpec(); s.image = "i"; return s }()
        let lookup = PodRuntime.Lookup(uid: { _ in "u" }, spec: { _ in spec }, vendor: { _ in .nvidia })
        let pods = Informer(client: client, resource: .pods, labelSelector: KubeObjects.labelWorkload, name: "pods")
        let rt = PodRuntime(client: client, pods: pods, lookup: lookup)
        pods.addHandler { rt.podEvent($0) }
        let old = ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0)
        let new = ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 1)
        // Bound to a node: deleted, it terminates until its kubelet confirms.
        let n1 = ReplicaAssignment(rank: 0, node: "n1", gpus: [0])
        let oldPod = PodRuntime.podObject(ReplicaLaunch(ref: old, command: "c", env: [], header: ""), spec: spec, uid: "u", intent: nil, assignment: n1, vendor: .nvidia, grace: 30)
        _ = try client.create(GroupVersionResource.pods.path(namespace: "ns"), oldPod)
        pods.start()
        defer { pods.stop() }
        #expect(poll(timeout: 10) { pods.hasSynced && pods.get(namespace: "ns", name: "w-worker-0") != nil })
        let events = Mutex<[RuntimeEvent]>([])
        rt.start { e in events.withLock { $0.append(e) } }
        defer { rt.stop() }
        rt.launch(ReplicaLaunch(ref: new, command: "c", env: [], header: ""))
        let path = GroupVersionResource.pods.path(namespace: "ns", name: "w-worker-0")
        // The create met the old Pod (409) and told it to go; it still terminates.
        #expect(poll(timeout: 10) { server.object(path).map { KubeObjects.ServerMeta($0).deleting } == true })
        rt.signal(new, force: false)
        // The new attempt never got a Pod: it is over.
        #expect(poll(timeout: 5) { events.withLock { $0.contains { $0.ref == new } } })
        #expect(PodRuntime.ref(of: server.object(path) ?? .null) == old)
    }

    /// The finalizer holds a deleted Workload while any of its Pods is still there (the
    /// existing deletion test passes with the Pods check removed: it reaps them at once).
    @Test func theFinalizerStaysWhilePodsTerminate() throws {
        let k = try KubeCluster.fake()
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("ns", "svc", #"{"queue":"q","image":"i","command":"c","replicas":1,"resources":{"gpu":1}}"#)
        k.startController(grace: 30)
        #expect(poll(timeout: 20) { k.pods("ns", workload: "svc").count == 1 })
        #expect(poll(timeout: 10) { KubeObjects.ServerMeta(k.workloadObject("ns", "svc") ?? .null).finalizers.contains(KubeObjects.finalizer) })
        k.setPods("ns", workload: "svc", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("ns", "svc") == "Running" })
        try k.client.delete(GroupVersionResource.workloads.path(namespace: "ns", name: "svc"))
        #expect(poll(timeout: 10) { k.pods("ns", workload: "svc").first.map { KubeObjects.ServerMeta($0).deleting } == true })
        // The finalizer check runs every second: give it three.
        #expect(!poll(timeout: 3) { k.workloadObject("ns", "svc") == nil })
        k.reapDeletedPods("ns")
        #expect(poll(timeout: 10) { k.workloadObject("ns", "svc") == nil })
    }

    /// The relay keeps what arrives during the initial sync, in order (no end-to-end test
    /// fails when buffered events are dropped).
    @Test func theRelayBuffersInOrderThenGoesLive() {
        let relay = KubeController.Relay()
        func obj(_ n: String) -> Value { .object([Value.Member("metadata", .object([Value.Member("name", .string(n))]))]) }
        relay.event(.queue, .added(obj("dropped")))
        relay.state.withLock { $0.mode = .buffering }
        relay.event(.queue, .added(obj("a")))
        relay.event(.workload, .deleted(obj("b")))
        let buffered = relay.state.withLock { $0.buffer.map { e -> String in
            if case .added(let v) = e.1 { return "+" + (v["metadata"]?["name"]?.stringValue ?? "") }
            if case .deleted(let v) = e.1 { return "-" + (v["metadata"]?["name"]?.stringValue ?? "") }
            return "?"
        } }
        #expect(buffered == ["+a", "-b"])
    }

    /// A Workload removed while the controller was down (finalizer bypassed) and created
    /// again under the same name (a new uid) while the old Pod still runs: the old Pod is not
    /// the new workload's, and the new one gets a Pod owned by its own uid.
    @Test func aWorkloadRecreatedWhileDownDoesNotAdoptTheOldPods() throws {
        let fake = try TestAPIServer()
        let k = try KubeCluster(fake)
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("ns", "w", #"{"queue":"q","image":"i","command":"old","replicas":1,"resources":{"gpu":1}}"#)
        let first = k.startController()
        #expect(poll(timeout: 20) { k.pods("ns", workload: "w").count == 1 })
        k.setPods("ns", workload: "w", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("ns", "w") == "Running" })
        first.stop()
        #expect(poll(timeout: 10) { first.finished.load(ordering: .relaxed) })
        fake.remove(GroupVersionResource.workloads.path(namespace: "ns", name: "w"))
        try k.workload("ns", "w", #"{"queue":"q","image":"i","command":"new","replicas":1,"resources":{"gpu":1}}"#)
        let uid = k.workloadObject("ns", "w")?["metadata"]?["uid"]
        k.startController(identity: "b")
        func ownedByNew(_ p: Value) -> Bool { p["metadata"]?["ownerReferences"]?.arrayValue?.first?["uid"] == uid }
        // The old Pod goes (the kubelet confirms), and the new workload's Pod comes.
        #expect(poll(timeout: 15) { k.reapDeletedPods("ns"); return k.pods("ns", workload: "w").contains(where: ownedByNew) })
        #expect(k.pods("ns", workload: "w").allSatisfy(ownedByNew))
    }

    /// `forget` deletes older dispatches' Pods by name only. When that DELETE fails and is
    /// retried later, the new dispatch's Pod (same name) may exist by then, and the retry
    /// deletes it: the new replica is lost.
    @Test func aRetriedDeleteOfAnOldPodSparesTheNewOne() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 1000, burst: 1000)
        let key = ObjectKey(.workload, namespace: "ns", name: "w")
        let spec: WorkloadSpec = { var s = WorkloadSpec(); s.image = "i"; return s }()
        let lookup = PodRuntime.Lookup(uid: { _ in "u" }, spec: { _ in spec }, vendor: { _ in .nvidia })
        let pods = Informer(client: client, resource: .pods, labelSelector: KubeObjects.labelWorkload, name: "pods")
        let rt = PodRuntime(client: client, pods: pods, lookup: lookup)
        pods.addHandler { rt.podEvent($0) }
        let old = ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0)
        let new = ReplicaRef(key: key, dispatch: 2, rank: 0, attempt: 0)
        let oldPod = PodRuntime.podObject(ReplicaLaunch(ref: old, command: "c", env: [], header: ""), spec: spec, uid: "u", intent: nil, assignment: nil, vendor: .nvidia, grace: 30)
        _ = try client.create(GroupVersionResource.pods.path(namespace: "ns"), oldPod)
        pods.start()
        defer { pods.stop() }
        #expect(poll(timeout: 10) { pods.hasSynced && pods.get(namespace: "ns", name: "w-worker-0") != nil })
        let events = Mutex<[RuntimeEvent]>([])
        rt.start { e in events.withLock { $0.append(e) } }
        defer { rt.stop() }
        let path = GroupVersionResource.pods.path(namespace: "ns", name: "w-worker-0")
        // The DELETE of the old Pod fails past the client's retries.
        server.failNext("DELETE", pathPrefix: path, status: 503, count: 6)
        rt.forget(key, keepDispatch: 2, files: false)
        rt.launch(ReplicaLaunch(ref: new, command: "c", env: [], header: ""))
        #expect(poll(timeout: 20) { PodRuntime.ref(of: server.object(path) ?? .null) == new })
        // The retried delete of the old Pod must not take the new one.
        #expect(!poll(timeout: 3) { server.object(path).map { PodRuntime.ref(of: $0) != new || KubeObjects.ServerMeta($0).deleting } ?? true })
        #expect(!events.withLock { $0 }.contains { if case .lost(let r, _) = $0 { return r == new }; return false })
    }

    /// A Pod of the replica's name that is not Gantry's (a user's, no gantry labels): the
    /// create meets 409 and is retried every 0.5 s forever; the replica is never reported.
    @Test func aForeignPodOfTheSameNameFailsTheReplica() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 1000, burst: 1000)
        let key = ObjectKey(.workload, namespace: "ns", name: "w")
        let spec: WorkloadSpec = { var s = WorkloadSpec(); s.image = "i"; return s }()
        let lookup = PodRuntime.Lookup(uid: { _ in "u" }, spec: { _ in spec }, vendor: { _ in .nvidia })
        let pods = Informer(client: client, resource: .pods, labelSelector: KubeObjects.labelWorkload, name: "pods")
        let rt = PodRuntime(client: client, pods: pods, lookup: lookup)
        pods.addHandler { rt.podEvent($0) }
        _ = try client.create(GroupVersionResource.pods.path(namespace: "ns"), json(#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w-worker-0","namespace":"ns"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"x"}]}}"#))
        pods.start()
        defer { pods.stop() }
        #expect(poll(timeout: 10) { pods.hasSynced })
        let events = Mutex<[RuntimeEvent]>([])
        rt.start { e in events.withLock { $0.append(e) } }
        defer { rt.stop() }
        let ref = ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0)
        rt.launch(ReplicaLaunch(ref: ref, command: "c", env: [], header: ""))
        #expect(poll(timeout: 5) { events.withLock { $0.contains { $0.ref == ref } } })
        // The user's Pod is left alone.
        #expect(server.object(GroupVersionResource.pods.path(namespace: "ns", name: "w-worker-0")).map { !KubeObjects.ServerMeta($0).deleting } == true)
    }

    /// A controller that created a workload's Pods but died before its status (the
    /// admission) reached the API server: the next one adopts the Pods and starts nothing twice.
    @Test func aRestartBeforeTheAdmissionStatusLandedStartsNothingTwice() throws {
        let fake = try TestAPIServer()
        let k = try KubeCluster(fake)
        defer { k.shutdown() }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        fake.failNext("PATCH", pathPrefix: GroupVersionResource.workloads.path(namespace: "ns", name: "a", subresource: "status"), status: 500, count: 8)
        try k.workload("ns", "a", #"{"queue":"q","image":"i","command":"c","replicas":2,"resources":{"gpu":1}}"#)
        let first = k.startController()
        #expect(poll(timeout: 20) { k.pods("ns", workload: "a").count == 2 })
        first.abandon()
        #expect(poll(timeout: 10) { first.finished.load(ordering: .relaxed) })
        // The API server holds no admission for it.
        #expect(k.workloadObject("ns", "a")?["status"]?["admission"] == nil)
        let before = k.podUIDs("ns")
        k.startController(identity: "b")
        k.setPods("ns", workload: "a", phase: "Running")
        #expect(poll(timeout: 40) { k.phase("ns", "a") == "Running" })
        #expect(k.podUIDs("ns") == before)
    }
}
