import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore

/// What the first edits after a 100,000-workload load waited for in the state writer (issue 12,
/// "edit -> status p99 <= 50 ms"): the writer's catch-up checkpoint run in front of an edit's
/// status, the index statistics gathered by the checkpointer under the write lock after the
/// daemon reported ready, and the log the load left for the first edits to copy.
@Suite(.timeLimit(.minutes(1))) struct EditLatencyTests {
    static func row(_ k: ObjectKey, _ body: String = "") -> ObjectRow {
        ObjectRow(key: k, uid: "u", generation: 1, specHash: "h", objectHash: "o", creationTime: 1, source: "f.yaml", objectJSON: "{\"b\":\"\(body)\"}")
    }

    @Test func aCatchUpCheckpointWaitsForAnUrgentStatus() throws {
        let dir = try makeTemporaryDirectory("gantry-catchup-")
        defer { removeTree(dir) }
        // No writer thread: the test runs the writer's steps itself, in order.
        let store = try StateStore(directory: dir, batchDelay: 0)
        defer { store.close() }
        let keys = (0..<10).map { ObjectKey(.workload, namespace: "ns", name: "w\($0)") }
        store.objectProvider = { EditLatencyTests.row($0) }
        store.statusProvider = { _ in "{\"phase\":\"Pending\"}" }
        for k in keys { store.markObjectDirty(k) }
        try store.flush()
        // The checkpointer insists (the log past the limit), and an edit's status is marked.
        store.catchUpRequested.store(StateStore.catchUpNow, ordering: .relaxed)
        store.markStatusDirty(keys[3])
        store.catchUpCheckpoint()
        // The status goes first: no copy ran, and the request is kept ...
        let copiesBefore = store.writerCheckpoints.load(ordering: .relaxed), requestBefore = store.catchUpRequested.load(ordering: .relaxed)
        #expect(copiesBefore == 0)
        #expect(requestBefore == StateStore.catchUpNow)
        try store.flush()
        // ... and served once the status is stored.
        store.catchUpCheckpoint()
        let copiesAfter = store.writerCheckpoints.load(ordering: .relaxed), requestAfter = store.catchUpRequested.load(ordering: .relaxed)
        #expect(copiesAfter == 1)
        #expect(requestAfter == StateStore.noCatchUp)
        // Asked for when free: not while bulk statuses (queue positions) wait either.
        store.catchUpRequested.store(StateStore.catchUpWhenFree, ordering: .relaxed)
        store.markStatusesDirty([keys[5], keys[6]])
        store.catchUpCheckpoint()
        let copiesWhileBulk = store.writerCheckpoints.load(ordering: .relaxed)
        #expect(copiesWhileBulk == 1)
        try store.flush()
        store.catchUpCheckpoint()
        let copiesAfterBulk = store.writerCheckpoints.load(ordering: .relaxed)
        #expect(copiesAfterBulk == 2)
        // Except just before a batch of them alone (paced on the checkpoint): served then,
        // but still not in front of an urgent write.
        store.catchUpRequested.store(StateStore.catchUpWhenFree, ordering: .relaxed)
        store.markStatusesDirty([keys[7]])
        store.markStatusDirty(keys[8])
        store.catchUpCheckpoint(beforeBulk: true)
        let copiesBehindUrgent = store.writerCheckpoints.load(ordering: .relaxed)
        #expect(copiesBehindUrgent == 2)
        try store.flush()
        store.catchUpRequested.store(StateStore.catchUpWhenFree, ordering: .relaxed)
        store.markStatusesDirty([keys[7]])
        store.catchUpCheckpoint(beforeBulk: true)
        let copiesBeforeBulk = store.writerCheckpoints.load(ordering: .relaxed)
        #expect(copiesBeforeBulk == 3)
        #expect(store.catchUpRequested.load(ordering: .relaxed) == StateStore.noCatchUp)
        try store.flush()
        // Only a file past twice the limit is copied in front of an urgent write.
        let p = CheckpointPolicy.standard
        #expect(!StateStore.catchUpWaitsForUrgent(walFileBytes: p.limitBytes * 2, policy: p))
        #expect(StateStore.catchUpWaitsForUrgent(walFileBytes: p.limitBytes * 2 + 2, policy: p))
        #expect(StateStore.catchUpIsSmall(uncopiedFrames: p.catchUpFrames, policy: p))
        #expect(!StateStore.catchUpIsSmall(uncopiedFrames: p.catchUpFrames * 100, policy: p))
    }

    @Test func theEndOfALoadGathersStatisticsAndCutsTheLogBeforeReady() throws {
        let dir = try makeTemporaryDirectory("gantry-ready-")
        defer { removeTree(dir) }
        let policy = CheckpointPolicy(passiveBytes: 64 << 20, limitBytes: 256 << 20, busyMillis: 100, retrySeconds: 30, intervalSeconds: 0.25,
                                      journalSizeLimit: 64 << 10)
        // No checkpointer runs (no writer thread): whatever the end of the load leaves is the
        // writer's own doing.
        let store = try StateStore(directory: dir, batchDelay: 0, checkpointPolicy: policy)
        defer { store.close() }
        #expect(try store.beginBulkLoad())
        let body = String(repeating: "x", count: 2000)
        store.objectProvider = { EditLatencyTests.row($0, body) }
        store.statusProvider = { _ in "{\"phase\":\"Pending\",\"queuePosition\":1}" }
        let keys = (0..<1000).map { ObjectKey(.workload, namespace: "ns-\($0 % 7)", name: "w\($0)") }
        for k in keys { store.markObjectDirty(k); store.markStatusDirty(k) }
        try store.flush()
        let loadLog = store.walFileBytes()
        #expect(loadLog > 1 << 20)
        try store.endBulkLoad()
        // The index's statistics exist before the daemon reports ready (no ANALYZE left for the
        // checkpointer to run under the write lock while edits arrive) ...
        let stats = try store.db.prepare("SELECT count(*) FROM sqlite_stat1 WHERE tbl='wl_index'")
        #expect(try stats.step())
        #expect(stats.int(0) > 0)
        let analyzed = store.analyzed.load(ordering: .relaxed)
        #expect(analyzed)
        // ... and the log is copied and started over, cut to `journal_size_limit`.
        let readyLog = store.walFileBytes()
        #expect(readyLog <= policy.journalSizeLimit)
        let reader = try StateReader(directory: dir)
        #expect(try reader.objects(kind: .workload, namespace: "ns-3", name: "w3").first?.statusJSON?.contains("queuePosition") == true)
    }
}
