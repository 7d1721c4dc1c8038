import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import StateStore
@testable import ControllerRuntime
@testable import DirectorySource

/// What an edit's status waits for in the state writer (issue 12, "edit -> status p99 <= 50 ms
/// with all 100,000 loaded"): neither a batch of bulk statuses (queue positions) already in
/// flight, nor a checkpoint that holds the writer off to cut the log back.
@Suite(.timeLimit(.minutes(1))) struct WriterLatencyTests {
    static func row(_ k: ObjectKey, _ body: String = "") -> ObjectRow {
        ObjectRow(key: k, uid: "u", generation: 1, specHash: "h", objectHash: "o", creationTime: 1, source: "f.yaml", objectJSON: "{\"b\":\"\(body)\"}")
    }

    /// Statements queued with `enqueueSQL` run in order, each with its own arguments, whether
    /// their prepared statement is new, reused from the cache, or prepared again after the
    /// cache was emptied (more distinct texts than it keeps).
    @Test func enqueuedStatementsRunInOrderThroughTheStatementCache() throws {
        let dir = try makeTemporaryDirectory("gantry-sqlcache-")
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let n = StateStore.otherStatementsKept + 6
        for round in 0..<3 {
            for i in 0..<n {
                // The text differs per i (distinct statements); the value per round (rebinding).
                store.enqueueSQL("INSERT OR REPLACE INTO meta(key, value) VALUES('cache-\(i)', ?)", [.text("r\(round)-\(i)")])
            }
            // One text twice in a batch: the second run must see the first's row.
            store.enqueueSQL("INSERT OR REPLACE INTO meta(key, value) VALUES('twice', coalesce((SELECT value FROM meta WHERE key='twice'), '') || ?)", [.text("a\(round)")])
            store.enqueueSQL("INSERT OR REPLACE INTO meta(key, value) VALUES('twice', coalesce((SELECT value FROM meta WHERE key='twice'), '') || ?)", [.text("b\(round)")])
            try store.flush()
        }
        store.close()
        let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
        let st = try db.prepare("SELECT key, value FROM meta WHERE key LIKE 'cache-%' OR key='twice'")
        var got: [String: String] = [:]
        while try st.step() { got[st.text(0)] = st.text(1) }
        #expect(got.count == n + 1)
        for i in 0..<n { #expect(got["cache-\(i)"] == "r2-\(i)") }
        #expect(got["twice"] == "a0b0a1b1a2b2")
    }

    @Test func anUrgentStatusStopsABatchOfBulkOnes() throws {
        let dir = try makeTemporaryDirectory("gantry-lane-")
        defer { removeTree(dir) }
        let batches = Mutex<[[ObjectKey]]>([])
        let store = try StateStore(directory: dir, batchDelay: 0, onCommit: { keys in
            if !keys.isEmpty { batches.withLock { $0.append(keys) } }
        })
        let bulk = (0..<2000).map { ObjectKey(.workload, namespace: "ns", name: "w\($0)") }
        let urgent = ObjectKey(.workload, namespace: "ns", name: "urgent")
        store.objectProvider = { WriterLatencyTests.row($0) }
        for k in bulk + [urgent] { store.markObjectDirty(k) }
        try store.flush()
        // The urgent status is marked while the writer works on a batch of bulk ones (as it
        // encodes them).
        let encoded = Atomic<Int>(0)
        store.statusProvider = { [unowned store] k in
            if k != urgent && encoded.add(1, ordering: .relaxed).newValue == 20 { store.markStatusDirty(urgent) }
            return "{\"phase\":\"Pending\",\"queuePosition\":1}"
        }
        store.markStatusesDirty(bulk)
        store.startWriter()
        defer { store.close() }
        #expect(poll(timeout: 20) { batches.withLock { $0.reduce(0) { $0 + $1.count } } >= bulk.count + 1 })
        let b = batches.withLock { $0 }
        try #require(b.count >= 2)
        // The batch in flight stopped after a few bulk statuses (not the 512 of a full one) ...
        #expect(b[0].count < 64)
        #expect(!b[0].contains(urgent))
        // ... and the urgent status went next, ahead of the ~1,980 bulk ones left.
        #expect(b[1].contains(urgent))
        // Every bulk status is still written, once.
        let written = b.flatMap { $0 }.filter { $0 != urgent }
        #expect(written.count == bulk.count)
        #expect(Set(written) == Set(bulk))
        let reader = try StateReader(directory: dir)
        #expect(try reader.objects(kind: .workload, name: "w1999").first?.statusJSON?.contains("queuePosition") == true)
    }

    @Test func theWriterCutsALogPastTheLimitBackWithoutATruncateCheckpoint() throws {
        let dir = try makeTemporaryDirectory("gantry-wal-cut-")
        defer { removeTree(dir) }
        // A TRUNCATE checkpoint only after the file was past the limit for 30 s: longer than
        // this test, so only the writer's own checkpoint can bring the file back.
        let policy = CheckpointPolicy(passiveBytes: 64 << 10, limitBytes: 512 << 10, busyMillis: 200, retrySeconds: 30, intervalSeconds: 0.01,
                                      journalSizeLimit: 128 << 10)
        let store = try StateStore(directory: dir, checkpointPolicy: policy)
        store.startWriter()
        defer { store.close() }
        try WALBoundTests.write(store, 100, round: 1)
        // A reader's snapshot keeps the log from being reused while it grows past the limit.
        let reader = try StateReader(directory: dir)
        var held: Statement? = try reader.db.prepare("SELECT name FROM objects")
        #expect(try held?.step() == true)
        for round in 2...4 { try WALBoundTests.write(store, 100, round: round) }
        #expect(store.walFileBytes() > policy.limitBytes)
        held = nil
        // A batch the writer thread commits is followed by its own checkpoint, which starts
        // the log over and cuts the file to `journal_size_limit` (a try that finds the
        // checkpointer copying at the same moment is repeated after the next batch).
        #expect(poll(timeout: 20) {
            store.markObjectDirty(ObjectKey(.workload, namespace: "ns", name: "w0"))
            return store.walFileBytes() <= 2 * policy.journalSizeLimit
        })
        #expect(store.writerCheckpoints.load(ordering: .relaxed) > 0)
        // No TRUNCATE checkpoint held the writer off (nor tried to).
        #expect(store.truncations.load(ordering: .relaxed) == 0)
        #expect(try reader.objects(kind: .workload, name: "w7").first?.objectJSON.hasPrefix("{\"r\":4,") == true)
    }

    /// Records the priority of every workload upserted.
    final class Priorities: ManifestSink, @unchecked Sendable {
        let m = Mutex<[String: Int]>([:])
        func apply(_ changes: [ManifestChange]) {
            m.withLock { st in
                for case .upsert(let o) in changes { st[o.key.name] = o.spec.workload?.priority ?? -1 }
            }
        }
        func priority(_ name: String) -> Int? { m.withLock { $0[name] } }
    }

    static func workload(_ name: String, priority: Int) -> String {
        "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: \(name)\n  namespace: team-a\nspec:\n  queue: q\n  priority: \(priority)\n  command: \"true\"\n  replicas: 1\n  resources: {gpu: 1}\n"
    }

    @Test func aManifestRenamedIntoPlaceIsReadWithoutWaitingForTheDebounce() throws {
        let dir = try makeTemporaryDirectory("gantry-rename-")
        defer { removeTree(dir) }
        try WriterLatencyTests.workload("w", priority: 1).write(toFile: dir + "/w.yaml", atomically: false, encoding: .utf8)
        var options = DirectorySource.Options()
        // A debounce far longer than the test: only a read that skips it can be seen.
        options.debounce = 120; options.maxDebounce = 120
        let sink = Priorities()
        let source = DirectorySource(root: dir, options: options, sink: sink)
        try source.start()
        defer { source.stop() }
        #expect(sink.priority("w") == 1)
        // The atomic-replace idiom: write a hidden temporary file, rename it over the manifest.
        try WriterLatencyTests.workload("w", priority: 2).write(toFile: dir + "/.w.yaml.tmp", atomically: false, encoding: .utf8)
        #expect(rename(dir + "/.w.yaml.tmp", dir + "/w.yaml") == 0)
        #expect(poll(timeout: 20) { sink.priority("w") == 2 })
        // A file written in place still waits for the quiet time (an editor may write again).
        try WriterLatencyTests.workload("v", priority: 3).write(toFile: dir + "/v.yaml", atomically: false, encoding: .utf8)
        #expect(!poll(timeout: 0.5) { sink.priority("v") != nil })
    }
}
