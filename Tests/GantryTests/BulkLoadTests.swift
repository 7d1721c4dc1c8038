import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore

/// The initial load into an empty store (issue 12): the workload index's secondary indexes
/// are built once at its end, pages read meanwhile are the same, a load cut short leaves a
/// database the next open indexes, and large batches (built on another thread while the SQL
/// of the chunk before runs) store every row, status, phase and change.
@Suite(.timeLimit(.minutes(1)))
struct BulkLoadTests {
    typealias World = WorkloadIndexTests.World

    func indexNames(_ dir: String) throws -> Set<String> {
        let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
        let st = try db.prepare("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='wl_index' AND sql IS NOT NULL")
        var out = Set<String>()
        while try st.step() { out.insert(st.text(0)) }
        return out
    }

    var allIndexes: Set<String> { Set(Schema.workloadIndexes.map(\.name)) }

    /// A store that builds batches of 100 keys or more in chunks of 37 on another thread.
    static func store(_ dir: String) throws -> StateStore {
        let s = try StateStore(directory: dir, batchDelay: 0)
        s.pipelineMinimum = 100
        s.pipelineChunk = 37
        return s
    }

    /// Objects first (one batch over the pipeline's minimum), then their statuses in a later
    /// batch, as the daemon's initial load writes them.
    func load(_ store: StateStore, _ w: World, count: Int) throws -> [ObjectKey] {
        var withStatus: [ObjectKey] = []
        for i in 0..<count {
            let (r, s) = w.randomWorkload(i)
            w.put(store, r, nil)
            if let s { w.lock.withLock { w.statuses[r.key] = s }; withStatus.append(r.key) }
        }
        try store.flush()
        for k in withStatus { store.markStatusDirty(k) }
        try store.flush()
        return withStatus
    }

    @Test func anInitialLoadBuildsTheIndexesAtItsEnd() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try BulkLoadTests.store(dir)
        #expect(try indexNames(dir) == allIndexes)
        #expect(try store.beginBulkLoad())
        #expect(try indexNames(dir).isEmpty)
        let w = World(seed: 31)
        w.attach(store)
        let withStatus = try load(store, w, count: 400)
        #expect(withStatus.count > store.pipelineMinimum)
        let reader = try StateReader(directory: dir)
        // Without the indexes the same pages, by scanning.
        try WorkloadIndexTests().expectSamePages(reader, w, rounds: 40)
        try store.endBulkLoad()
        #expect(try indexNames(dir) == allIndexes)
        try WorkloadIndexTests().expectSamePages(reader, w, rounds: 60)
        // Every object and status stored, every phase indexed; the change feed has no rows of
        // the load's objects, only its gap (a reader from before it reads everything again).
        let counts = try reader.counts()
        #expect(counts.objects == 400 && counts.withStatus == withStatus.count)
        // Here the first flush (of the objects) ended the hold: the statuses after it are in
        // the feed as usual, after the gap.
        #expect(try reader.lastChangeSeq() == Int64(2 + withStatus.count))
        #expect(try reader.changes(after: 2)?.count == withStatus.count)
        #expect(try reader.changes(after: 0) == nil)
        let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
        let phases = try db.prepare("SELECT count(*) FROM wl_index WHERE phase != ''")
        #expect(try phases.step() && phases.int(0) == Int64(withStatus.count))
        // A second load into the now full store keeps the indexes.
        #expect(try !store.beginBulkLoad())
        #expect(try indexNames(dir) == allIndexes)
        store.close()
    }

    @Test func aLoadCutShortIsIndexedWhenTheStoreOpensAgain() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let w = World(seed: 5)
        do {
            // No endBulkLoad and no close: what a crash leaves (the flock goes with the store).
            let store = try BulkLoadTests.store(dir)
            #expect(try store.beginBulkLoad())
            w.attach(store)
            _ = try load(store, w, count: 300)
        }
        #expect(try indexNames(dir).isEmpty)
        let store = try BulkLoadTests.store(dir)
        w.attach(store)
        #expect(try indexNames(dir) == allIndexes)
        try WorkloadIndexTests().expectSamePages(try StateReader(directory: dir), w, rounds: 60)
        store.close()
    }

    @Test func closingDuringALoadBuildsTheIndexes() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try BulkLoadTests.store(dir)
        #expect(try store.beginBulkLoad())
        let w = World(seed: 9)
        w.attach(store)
        _ = try load(store, w, count: 200)
        store.close()
        #expect(try indexNames(dir) == allIndexes)
    }

    @Test func aBatchBuiltInChunksStoresEveryRowStatusAndChange() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try BulkLoadTests.store(dir)
        let w = World(seed: 77)
        w.attach(store)
        // Objects and statuses in one batch (statuses paired with their objects), then
        // statuses only, then edits of half of them: every batch over the pipeline's minimum.
        for i in 0..<400 { let (r, s) = w.randomWorkload(i); w.put(store, r, s) }
        try store.flush()
        let reader = try StateReader(directory: dir)
        try WorkloadIndexTests().expectSamePages(reader, w, rounds: 40)
        let keys = w.lock.withLock { w.objects.keys.sorted() }
        for k in keys { w.lock.withLock { w.statuses[k] = "{\"phase\":\"Running\",\"queuePosition\":1}" }; store.markStatusDirty(k) }
        try store.flush()
        let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
        let running = try db.prepare("SELECT count(*) FROM wl_index WHERE phase = 'running'")
        #expect(try running.step() && running.int(0) == Int64(keys.count))
        let stored = try db.prepare("SELECT count(*) FROM statuses WHERE status LIKE '{\"phase\":\"Running\"%'")
        #expect(try stored.step() && stored.int(0) == Int64(keys.count))
        try WorkloadIndexTests().expectSamePages(reader, w, rounds: 40)
        let before = try reader.lastChangeSeq()
        let changes = try #require(try reader.changes(after: 0, limit: 100_000))
        #expect(Int64(changes.count) == before)
        #expect(Set(changes.filter { $0.op == "status" }.map(\.key)).count == keys.count)
        store.close()
    }

    /// The end of a load that cannot build the indexes (here a table holding one index's name;
    /// on a real machine a full disk) leaves the load mode all the same, so later batches are
    /// capped again, and the checkpointer builds the indexes once it can.
    @Test func aFailedIndexBuildAtTheEndOfALoadIsRetriedAndEndsTheLoad() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try BulkLoadTests.store(dir)
        defer { store.close() }
        store.indexRetrySeconds = 0.2
        store.startWriter()   // its checkpointer retries the build
        #expect(try store.beginBulkLoad())
        #expect(store.isInitialLoad)
        let w = World(seed: 32)
        w.attach(store)
        _ = try load(store, w, count: 150)
        let other = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: false)
        let blocker = try #require(Schema.workloadIndexes.last?.name)
        try other.exec("CREATE TABLE \(blocker) (x)")
        #expect(throws: (any Error).self) { try store.endBulkLoad() }
        #expect(!store.isInitialLoad)
        #expect(store.indexesPending)
        try other.exec("DROP TABLE \(blocker)")
        #expect(poll(timeout: 20) { (try? indexNames(dir)) == allIndexes })
        #expect(!store.indexesPending)
        let reader = try StateReader(directory: dir)
        try WorkloadIndexTests().expectSamePages(reader, w, rounds: 10)
    }
}
