import Testing
import Foundation
@testable import GantryAPI
@testable import YAMLCodec
@testable import ControllerRuntime
@testable import DirectorySource
@testable import Controllers
@testable import StateStore

func manifest(_ path: String, _ yaml: String) -> ManifestFile {
    ManifestFile.decode(path: path, bytes: Array(yaml.utf8))
}

func workloadYAML(_ name: String, ns: String = "team-a", queue: String = "research", priority: String = "0", gpu: Int = 1, extra: String = "") -> String {
    """
    apiVersion: gantry.dev/v1alpha1
    kind: Workload
    metadata: {name: \(name), namespace: \(ns)}
    spec:
      queue: \(queue)
      priority: \(priority)
    \(extra.contains("command:") ? "" : "  command: \"true\"")
      resources: {gpu: \(gpu)}
    \(extra)
    """
}

func queueYAML(_ name: String, extra: String = "") -> String {
    "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: \(name)}\nspec:\n  deserved: {gpu: 8}\n\(extra)\n"
}

@Suite(.timeLimit(.minutes(1))) struct ManifestIndexTests {
    @Test func firstPathWinsAndRemovalPromotesTheNext() {
        var idx = ManifestIndex()
        let a = idx.update(manifest("a.yaml", workloadYAML("w", priority: "1")))
        #expect(a.contains { if case .upsert(let o) = $0 { return o.spec.workload?.priority == 1 }; return false })
        let b = idx.update(manifest("b.yaml", workloadYAML("w", priority: "2")))
        #expect(b.contains { if case .duplicate(_, let files) = $0 { return files.map(\.file) == ["a.yaml", "b.yaml"] }; return false })
        #expect(!b.contains { if case .upsert = $0 { return true }; return false })
        let removal = idx.remove(path: "a.yaml")
        #expect(removal.contains { if case .upsert(let o) = $0 { return o.spec.workload?.priority == 2 }; return false })
        let last = idx.remove(path: "b.yaml")
        #expect(last.contains { if case .delete(let k) = $0 { return k.name == "w" }; return false })
    }

    @Test func multiDocumentEditsAreSingleObjectChanges() {
        var idx = ManifestIndex()
        _ = idx.update(manifest("m.yaml", workloadYAML("a") + "\n---\n" + workloadYAML("b") + "\n---\n" + workloadYAML("c")))
        let changes = idx.update(manifest("m.yaml", workloadYAML("a") + "\n---\n" + workloadYAML("b", priority: "2") + "\n---\n" + workloadYAML("d")))
        var upserts: [String] = [], deletes: [String] = []
        for c in changes {
            if case .upsert(let o) = c { upserts.append(o.meta.name) }
            if case .delete(let k) = c { deletes.append(k.name) }
        }
        #expect(upserts.sorted() == ["b", "d"])
        #expect(deletes == ["c"])
    }

    @Test func syntaxErrorKeepsThePreviousObjects() throws {
        var idx = ManifestIndex()
        _ = idx.update(manifest("m.yaml", workloadYAML("a")))
        let broken = idx.update(manifest("m.yaml", "kind: [unclosed\n"))
        try #require(broken.count == 1)
        if case .fileReport(_, let fatal, _, _) = broken[0] { #expect(fatal != nil) } else { Issue.record("expected a report") }
        #expect(idx.object(ObjectKey(.workload, namespace: "team-a", name: "a")) != nil)
    }

    @Test func unidentifiableDocumentDoesNotDeleteOthers() {
        var idx = ManifestIndex()
        _ = idx.update(manifest("m.yaml", workloadYAML("a") + "\n---\n" + workloadYAML("b")))
        let changes = idx.update(manifest("m.yaml", workloadYAML("a") + "\n---\n" + workloadYAML("B_AD")))
        #expect(!changes.contains { if case .delete = $0 { return true }; return false })
        #expect(idx.objectCount == 2)
    }

    @Test func invalidChangeKeepsTheLastValidSpec() {
        var idx = ManifestIndex()
        _ = idx.update(manifest("m.yaml", workloadYAML("a", gpu: 2)))
        let changes = idx.update(manifest("m.yaml", workloadYAML("a", extra: "  replicas: -3")))
        #expect(changes.contains { if case .invalidChangeKept = $0 { return true }; return false })
        #expect(idx.object(ObjectKey(.workload, namespace: "team-a", name: "a"))?.spec.workload?.resources.gpu == 2)
    }
}

/// An inventory and reconcilers over in-memory persistence and a manual clock, driven by hand.
struct Harness {
    let clock = ManualClock()
    let persistence = MemoryPersistence()
    let queue: WorkQueue<ObjectKey>
    let inventory: Inventory
    let admission: Admission
    let controller: Controller
    let events = EventCollector()
    var index = ManifestIndex()

    let overrides = Overrides()

    init(localGPUs: Int? = nil, runtime: (any ReplicaRuntime)? = nil, options: LifecycleOptions = LifecycleOptions()) {
        queue = WorkQueue(name: "t", clock: clock)
        let statuses = StatusCache(persistence: persistence)
        inventory = Inventory(persistence: persistence, statuses: statuses, queue: queue, events: EventRecorder(sink: events, clock: clock), clock: clock)
        if let n = localGPUs { inventory.setLocalNode(LocalNode.make(localGPUs: n, name: "box")) }
        admission = Admission(inventory: inventory, clock: clock, metrics: Metrics(), runtime: runtime, options: options)
        controller = Controller(name: "t", queue: queue, reconciler: KindRouter(inventory: inventory, admission: admission, clock: clock, overrides: overrides), workers: 1, metrics: nil)
        let inv = inventory
        persistence.objectProvider = { inv.row(for: $0) }
        Log.setSink { _ in }
    }

    mutating func apply(_ path: String, _ yaml: String) { inventory.apply(index.update(manifest(path, yaml))); drain() }
    /// A pool "p" of the named 8-GPU nodes and queue "research" (deserved 8 GPUs).
    mutating func cluster(nodes: [String]) {
        apply("p.yaml", ([poolYAML] + nodes.map { nodeYAML($0) }).joined(separator: "---\n"))
        apply("q.yaml", queueYAML("research"))
    }

    mutating func remove(_ path: String) { inventory.apply(index.remove(path: path)); drain() }
    /// Reconciles everything queued, then runs admission cycles, until both are quiet.
    func drain() {
        repeat {
            while controller.processNext() {}
            admission.runCycles()
        } while queue.count > 0
    }
    func workload(_ name: String, ns: String = "team-a") -> WorkloadStatus? { inventory.statuses.get(ObjectKey(.workload, namespace: ns, name: name))?.workload }
    func admitted(_ name: String) -> Condition? { workload(name)?.conditions.get(ConditionType.admitted) }
}

@Suite(.timeLimit(.minutes(1))) struct ReconcilerTests {
    @Test func workloadReasonFollowsItsQueue() {
        var h = Harness()
        h.apply("w.yaml", workloadYAML("w"))
        #expect(h.workload("w")?.phase == .pending)
        #expect(h.admitted("w")?.reason == Reason.queueNotFound)
        #expect(h.workload("w")?.queuePosition == 0)
        h.apply("q.yaml", queueYAML("research"))
        #expect(h.admitted("w")?.reason == Reason.noFittingNodes)   // no node declared, none local
        h.apply("q.yaml", queueYAML("research", extra: "  state: Closed"))
        #expect(h.admitted("w")?.reason == Reason.queueClosed)
        h.remove("q.yaml")
        #expect(h.admitted("w")?.reason == Reason.queueNotFound)
    }

    @Test func invalidAndSuspendedWorkloads() {
        var h = Harness()
        h.apply("q.yaml", queueYAML("research"))
        h.apply("bad.yaml", workloadYAML("bad", extra: "  maxRetry: -1"))
        #expect(h.admitted("bad")?.reason == Reason.invalidSpec)
        #expect(h.admitted("bad")?.message.contains("bad.yaml:9: spec.maxRetry") == true)
        #expect(h.workload("bad")?.queuePosition == nil)
        #expect(h.events.all.contains { $0.type == .warning && $0.reason == Reason.invalidSpec })
        h.apply("s.yaml", workloadYAML("s", extra: "  suspend: true"))
        #expect(h.workload("s")?.phase == .stopped)
        #expect(h.workload("s")?.conditions.get(ConditionType.finished)?.reason == Reason.stopped)
    }

    @Test func queuePositionsByPriorityThenCreationThenName() {
        var h = Harness()
        h.apply("q.yaml", queueYAML("research"))
        h.apply("a.yaml", workloadYAML("zeta"))
        h.clock.advance(by: 10)
        h.apply("b.yaml", workloadYAML("alpha"))
        h.apply("c.yaml", workloadYAML("beta"))
        h.apply("d.yaml", workloadYAML("urgent", priority: "highest"))
        #expect(h.workload("urgent")?.queuePosition == 0)
        #expect(h.workload("zeta")?.queuePosition == 1)   // created first
        #expect(h.workload("alpha")?.queuePosition == 2)  // same time as beta, name first
        #expect(h.workload("beta")?.queuePosition == 3)
        let q = h.inventory.statuses.get(ObjectKey(.queue, name: "research"))?.queue
        #expect(q?.pending == 4)
        h.remove("d.yaml")
        #expect(h.workload("zeta")?.queuePosition == 0)
        #expect(h.workload("beta")?.queuePosition == 2)
        #expect(h.inventory.statuses.get(ObjectKey(.queue, name: "research"))?.queue?.pending == 3)
    }

    @Test func generationBumpsOnSpecChangesOnly() {
        var h = Harness()
        h.apply("w.yaml", workloadYAML("w"))
        let key = ObjectKey(.workload, namespace: "team-a", name: "w")
        #expect(h.inventory.desired.get(key)?.meta.generation == 1)
        // A label change is not a spec change.
        h.apply("w.yaml", workloadYAML("w").replacingOccurrences(of: "namespace: team-a}", with: "namespace: team-a, labels: {x: y}}"))
        #expect(h.inventory.desired.get(key)?.meta.generation == 1)
        #expect(h.inventory.desired.get(key)?.meta.labels == ["x": "y"])
        h.apply("w.yaml", workloadYAML("w", gpu: 4))
        #expect(h.inventory.desired.get(key)?.meta.generation == 2)
        #expect(h.workload("w")?.observedGeneration == 2)
        #expect(h.persistence.objects[key]?.generation == 2)
    }

    @Test func transitionTimeOnlyMovesWhenStatusChanges() {
        var h = Harness()
        h.apply("w.yaml", workloadYAML("w"))
        let t0 = h.admitted("w")?.lastTransitionTime
        h.clock.advance(by: 100)
        h.apply("q.yaml", queueYAML("research"))     // reason changes, status stays False
        #expect(h.admitted("w")?.reason == Reason.noFittingNodes)
        #expect(h.admitted("w")?.lastTransitionTime == t0)
    }

    @Test func statusWrittenOnlyWhenChanged() {
        var h = Harness()
        h.apply("q.yaml", queueYAML("research"))
        h.apply("w.yaml", workloadYAML("w"))
        _ = h.persistence.takeDirty()
        h.queue.add(ObjectKey(.workload, namespace: "team-a", name: "w"))
        h.queue.add(ObjectKey(.queue, name: "research"))
        h.drain()
        #expect(h.persistence.takeDirty().isEmpty)
    }

    @Test func nodesAndPools() {
        var h = Harness()
        let nodes = (1...3).map { "apiVersion: gantry.dev/v1alpha1\nkind: Node\nmetadata: {name: n\($0)}\nspec: {resourcePool: p, capacity: {gpu: 8}, unschedulable: \($0 == 3)}\n" }
        h.apply("n.yaml", nodes.joined(separator: "---\n"))
        #expect(h.inventory.statuses.get(ObjectKey(.node, name: "n1"))?.node?.phase == "NotReady")   // pool missing
        h.apply("p.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: ResourcePool\nmetadata: {name: p}\n")
        let pool = h.inventory.statuses.get(ObjectKey(.resourcePool, name: "p"))?.resourcePool
        #expect(pool?.nodeCount == UsedTotal(total: 3, used: 0))
        #expect(pool?.gpuCount == UsedTotal(total: 24, used: 0))
        #expect(h.inventory.statuses.get(ObjectKey(.node, name: "n1"))?.node?.phase == "Ready")
        #expect(h.inventory.statuses.get(ObjectKey(.node, name: "n3"))?.node?.phase == "SchedulingDisabled")
    }

    @Test func queueParentProblemsShowInActiveCondition() {
        var h = Harness()
        h.apply("q.yaml", queueYAML("a", extra: "  parent: b") + "---\n" + queueYAML("b", extra: "  parent: a"))
        #expect(h.inventory.statuses.get(ObjectKey(.queue, name: "a"))?.conditions.get("Active")?.reason == "CycleDetected")
        h.apply("q.yaml", queueYAML("a", extra: "  parent: missing"))
        #expect(h.inventory.statuses.get(ObjectKey(.queue, name: "a"))?.conditions.get("Active")?.reason == "ParentNotFound")
    }

    @Test func deletingAManifestRemovesStatusAndKeepsEvents() {
        var h = Harness()
        h.apply("w.yaml", workloadYAML("w"))
        let key = ObjectKey(.workload, namespace: "team-a", name: "w")
        #expect(h.persistence.objects[key] != nil)
        h.remove("w.yaml")
        #expect(h.persistence.objects[key] == nil)
        #expect(h.workload("w") == nil)
        #expect(h.events.all.contains { $0.reason == "Deleted" && $0.involved.name == "w" })
    }
}

@Suite(.timeLimit(.minutes(1))) struct StateStoreTests {
    /// A fresh directory; the caller removes it.
    func tempDir() throws -> String { try makeTemporaryDirectory("gantry-test-") }

    @Test func lateStatusOfADeletedObjectIsNotStored() throws {
        let dir = try tempDir()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir)
        let key = ObjectKey(.workload, namespace: "ns", name: "gone")
        store.statusProvider = { _ in "{\"phase\":\"Pending\"}" }
        store.markStatusDirty(key)          // no object row exists for it
        try store.flush()
        let reader = try StateReader(directory: dir)
        #expect(try reader.counts().withStatus == 0)
        store.close()
    }

    @Test func secondOpenIsRefusedWithAClearMessage() throws {
        let dir = try tempDir()
        defer { removeTree(dir) }
        let a = try StateStore(directory: dir)
        do {
            _ = try StateStore(directory: dir)
            Issue.record("second store opened")
        } catch {
            #expect("\(error)".contains("another gantry daemon"))
        }
        a.close()
    }

    @Test func writesCommitInBatchesAndReadBack() throws {
        let dir = try tempDir()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir)
        let key = ObjectKey(.workload, namespace: "ns", name: "w")
        store.statusProvider = { k in k == key ? "{\"phase\":\"Pending\"}" : nil }
        store.objectProvider = { k in
            ObjectRow(key: k, uid: "u1", generation: 3, specHash: "h", objectHash: "o", creationTime: 100, source: "f.yaml:1", objectJSON: "{}")
        }
        store.markObjectDirty(key)
        store.markStatusDirty(key)
        store.write(EventRecord(name: "w.1", involved: InvolvedObject(key), type: .warning, reason: "R", message: "m", count: 2, firstTimestamp: 1, lastTimestamp: 2))
        try store.flush()
        let reader = try StateReader(directory: dir)
        let rows = try reader.objects(kind: .workload)
        try #require(rows.count == 1)
        #expect(rows[0].generation == 3 && rows[0].statusJSON == "{\"phase\":\"Pending\"}")
        #expect(try reader.events(name: "w").first?.count == 2)
        store.deleteObject(key)
        try store.flush()
        #expect(try reader.objects(kind: .workload).isEmpty)
        #expect(try reader.events(name: "w").count == 1)   // events outlive the object
        store.expireEvents(before: 10)
        try store.flush()
        #expect(try reader.events().isEmpty)
        store.close()
        // A restarted store sees what was committed.
        let again = try StateStore(directory: dir)
        #expect(try again.loadObjects().isEmpty)
        again.close()
    }
}

func nodeYAML(_ name: String, gpus: Int = 8, pool: String = "p", extra: String = "") -> String {
    "apiVersion: gantry.dev/v1alpha1\nkind: Node\nmetadata: {name: \(name)}\nspec:\n  resourcePool: \(pool)\n  capacity: {gpu: \(gpus)}\n  gpuType: H100\n\(extra)\n"
}
let poolYAML = "apiVersion: gantry.dev/v1alpha1\nkind: ResourcePool\nmetadata: {name: p}\n"

@Suite(.timeLimit(.minutes(1))) struct AdmissionTests {
    @Test func admittedWorkloadsCarryTheirPlacementAndUsageShowsEverywhere() throws {
        var h = Harness()
        h.cluster(nodes: ["n1", "n2"])
        h.apply("a.yaml", workloadYAML("a", gpu: 8, extra: "  replicas: 1"))
        h.apply("b.yaml", workloadYAML("b", gpu: 4))
        h.apply("c.yaml", workloadYAML("c", gpu: 8))
        let a = try #require(h.workload("a"))
        #expect(a.phase == .pending)
        #expect(h.admitted("a")?.status == "True" && h.admitted("a")?.reason == Reason.quotaReserved)
        #expect(a.admissionQueue == "research" && a.admission.count == 1 && a.admission[0].gpus == Array(0..<8))
        #expect(a.queuePosition == nil)
        // research deserves 8 and is a queue without a parent: c waits for quota, b too.
        #expect(h.admitted("b")?.reason == Reason.waitingForQuota)
        #expect(h.workload("b")?.queuePosition == 0 && h.workload("c")?.queuePosition == 1)
        let q = try #require(h.inventory.statuses.get(ObjectKey(.queue, name: "research"))?.queue)
        #expect(q.allocated.gpu == 8 && q.admitted == 1 && q.pending == 2)
        let nodeGPUs = ["n1", "n2"].map { h.inventory.statuses.get(ObjectKey(.node, name: $0))?.node?.allocated.gpu ?? -1 }
        #expect(nodeGPUs.sorted() == [0, 8])
        let pool = try #require(h.inventory.statuses.get(ObjectKey(.resourcePool, name: "p"))?.resourcePool)
        #expect(pool.gpuCount == UsedTotal(total: 16, used: 8) && pool.nodeCount == UsedTotal(total: 2, used: 1))
        #expect(h.events.all.contains { $0.reason == "QuotaReserved" && $0.involved.name == "a" && $0.message.contains("GPUs [0,1,2,3,4,5,6,7]") })
        // Deleting a frees its quota: b is admitted next, c stays behind (4 + 8 > 8).
        h.remove("a.yaml")
        #expect(h.admitted("b")?.status == "True")
        #expect(h.workload("c")?.queuePosition == 0)
        #expect(h.inventory.statuses.get(ObjectKey(.queue, name: "research"))?.queue?.allocated.gpu == 4)
    }

    @Test func suspendingReleasesAndResumingRequeues() {
        var h = Harness()
        h.cluster(nodes: ["n1"])
        h.apply("a.yaml", workloadYAML("a", gpu: 8))
        h.apply("b.yaml", workloadYAML("b", gpu: 8))
        #expect(h.admitted("a")?.status == "True" && h.admitted("b")?.status == "False")
        h.apply("a.yaml", workloadYAML("a", gpu: 8, extra: "  suspend: true"))
        #expect(h.workload("a")?.phase == .stopped && h.workload("a")?.admission.isEmpty == true)
        #expect(h.admitted("b")?.status == "True")
        h.apply("a.yaml", workloadYAML("a", gpu: 8))
        #expect(h.workload("a")?.phase == .pending && h.workload("a")?.queuePosition == 0)
    }

    @Test func preemptedWorkloadShowsWhoPreemptedIt() throws {
        var h = Harness()
        h.cluster(nodes: ["n1"])
        h.apply("low.yaml", workloadYAML("low", priority: "low", gpu: 8))
        h.clock.advance(by: 5)
        h.apply("high.yaml", workloadYAML("high", priority: "high", gpu: 8))
        #expect(h.admitted("high")?.status == "True")
        let low = try #require(h.workload("low"))
        #expect(low.phase == .pending && low.admission.isEmpty && low.queuePosition == 0)
        let pre = low.conditions.get(ConditionType.preempted)
        #expect(pre?.status == "True" && pre?.reason == Reason.inQueue && pre?.message.contains("team-a/high") == true)
        #expect(h.events.all.contains { $0.reason == "Preempted" && $0.involved.name == "low" && $0.message.contains("team-a/high") })
        // When high goes, low is admitted again and Preempted turns False.
        h.remove("high.yaml")
        #expect(h.admitted("low")?.status == "True")
        #expect(h.workload("low")?.conditions.get(ConditionType.preempted)?.status == "False")
    }

    @Test func localNodeStandsInUntilANodeIsDeclared() {
        var h = Harness(localGPUs: 4)
        h.apply("q.yaml", queueYAML("research"))
        h.apply("w.yaml", workloadYAML("w", gpu: 2))
        #expect(h.workload("w")?.admission.first?.node == "box")
        #expect(h.inventory.desired.get(ObjectKey(.node, name: "box"))?.meta.labels["gantry.dev/local"] == "true")
        h.apply("n.yaml", nodeYAML("real", extra: "  unschedulable: false").replacingOccurrences(of: "  resourcePool: p\n", with: ""))
        #expect(h.inventory.desired.get(ObjectKey(.node, name: "box")) == nil)
        // The workload placed on the vanished local node is placed again on the declared one.
        #expect(h.workload("w")?.admission.first?.node == "real")
        h.remove("n.yaml")
        #expect(h.inventory.desired.get(ObjectKey(.node, name: "box")) != nil)
    }

    @Test func admissionsSurviveARestart() throws {
        var h = Harness()
        h.cluster(nodes: ["n1"])
        h.apply("a.yaml", workloadYAML("a", gpu: 3))
        h.apply("b.yaml", workloadYAML("b", gpu: 3))
        let before = try #require(h.workload("b")).admission
        try #require(!before.isEmpty, "b admitted before the restart")
        // A new daemon: statuses restored, objects seen again, b's file first this time.
        var h2 = Harness()
        for key in [ObjectKey(.workload, namespace: "team-a", name: "a"), ObjectKey(.workload, namespace: "team-a", name: "b")] {
            h2.inventory.statuses.restore(key, try #require(h.inventory.statuses.get(key)))
        }
        h2.cluster(nodes: ["n1"])
        h2.apply("b.yaml", workloadYAML("b", gpu: 3))
        h2.apply("a.yaml", workloadYAML("a", gpu: 3))
        #expect(h2.workload("b")?.admission == before)
        let aBefore = try #require(h.workload("a")).admission
        try #require(!aBefore.isEmpty, "a admitted before the restart")
        #expect(h2.workload("a")?.admission == aBefore)
    }

    @Test func gpuToolOutputParses() throws {
        let nv = LocalNode.parseNvidiaSMI("0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA H100 80GB HBM3, 81559\n")
        try #require(nv.count == 2)
        #expect(nv[1].index == 1 && nv[0].memoryMiB == 81559)
        #expect(LocalNode.gpuType(fromName: nv[0].name) == "H100")
        #expect(LocalNode.gpuType(fromName: "NVIDIA A100-SXM4-80GB") == "A100")
        #expect(LocalNode.gpuType(fromName: "NVIDIA GeForce RTX 4090") == "RTX-4090")
        let amd = LocalNode.parseAMDSMI("gpu,market_name,vendor_id\n0,AMD Instinct MI300X,0x1002\n1,AMD Instinct MI300X,0x1002\n")
        try #require(amd.count == 2)
        #expect(LocalNode.gpuType(fromName: amd[0].name) == "MI300X")
        #expect(LocalNode.dnsLabel("GPU_Box-01.example.com") == "gpu-box-01")
        let none = LocalNode.make(localGPUs: nil, name: "x", run: { _, _ in nil })
        #expect(none.spec.node?.capacity.gpu == 0)
        let fake = LocalNode.make(localGPUs: nil, name: "x", run: { tool, _ in tool == "nvidia-smi" ? "0, NVIDIA A100-SXM4-40GB, 40960\n" : nil })
        #expect(fake.spec.node?.capacity.gpu == 1 && fake.spec.node?.gpuType == "A100")
    }
}
