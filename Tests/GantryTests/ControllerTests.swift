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
      command: "true"
      resources: {gpu: \(gpu)}
    \(extra)
    """
}

func queueYAML(_ name: String, extra: String = "") -> String {
    "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: \(name)}\nspec:\n  deserved: {gpu: 8}\n\(extra)\n"
}

struct ManifestIndexTests {
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

    @Test func syntaxErrorKeepsThePreviousObjects() {
        var idx = ManifestIndex()
        _ = idx.update(manifest("m.yaml", workloadYAML("a")))
        let broken = idx.update(manifest("m.yaml", "kind: [unclosed\n"))
        #expect(broken.count == 1)
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
    let controller: Controller
    let events = EventCollector()
    var index = ManifestIndex()

    init() {
        queue = WorkQueue(name: "t", clock: clock)
        let statuses = StatusCache(persistence: persistence)
        inventory = Inventory(persistence: persistence, statuses: statuses, queue: queue, events: EventRecorder(sink: events, clock: clock), clock: clock)
        controller = Controller(name: "t", queue: queue, reconciler: KindRouter(inventory: inventory, clock: clock), workers: 1, metrics: nil)
        let inv = inventory
        persistence.objectProvider = { inv.row(for: $0) }
        Log.setSink { _ in }
    }

    mutating func apply(_ path: String, _ yaml: String) { inventory.apply(index.update(manifest(path, yaml))); drain() }
    mutating func remove(_ path: String) { inventory.apply(index.remove(path: path)); drain() }
    func drain() { while controller.processNext() {} }
    func workload(_ name: String, ns: String = "team-a") -> WorkloadStatus? { inventory.statuses.get(ObjectKey(.workload, namespace: ns, name: name))?.workload }
    func admitted(_ name: String) -> Condition? { workload(name)?.conditions.get(ConditionType.admitted) }
}

struct ReconcilerTests {
    @Test func workloadReasonFollowsItsQueue() {
        var h = Harness()
        h.apply("w.yaml", workloadYAML("w"))
        #expect(h.workload("w")?.phase == .pending)
        #expect(h.admitted("w")?.reason == Reason.queueNotFound)
        #expect(h.workload("w")?.queuePosition == 0)
        h.apply("q.yaml", queueYAML("research"))
        #expect(h.admitted("w")?.reason == Reason.waitingForQuota)
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
        #expect(h.admitted("w")?.reason == Reason.waitingForQuota)
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

struct StateStoreTests {
    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "gantry-test-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func lateStatusOfADeletedObjectIsNotStored() throws {
        let dir = tempDir()
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
        let dir = tempDir()
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
        let dir = tempDir()
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
        #expect(rows.count == 1)
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
