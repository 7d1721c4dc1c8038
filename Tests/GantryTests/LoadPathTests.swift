import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import ControllerRuntime
@testable import Scheduler
@testable import StateStore

/// The initial load's reconcile and first writes (issue 12, third round): workers take long
/// queues in batches, pending lists are ordered from a compact array (and sorted once per
/// queue during a bulk load), and the load's first statuses are held for one batch.
@Suite(.timeLimit(.minutes(1)))
struct LoadPathTests {
    // MARK: Work queue batches

    @Test func aLongQueueIsSharedInBatchesAShortOneGoesKeyByKey() {
        let q = WorkQueue<String>(name: "t", clock: ManualClock())
        q.add(contentsOf: (0..<1000).map { "k\($0)" })
        // A quarter of what is ready, at most `max`.
        #expect(q.tryGetBatch(max: 64, share: 4)?.count == 64)
        #expect(q.tryGetBatch(max: 256, share: 4)?.count == 234)   // (1000 - 64) / 4
        let q2 = WorkQueue<String>(name: "t", clock: ManualClock())
        q2.add(contentsOf: ["a", "b", "c"])
        #expect(q2.tryGetBatch(max: 64, share: 4) == ["a"])
        #expect(q2.tryGetBatch(max: 64, share: 1) == ["b", "c"])
        #expect(q2.tryGetBatch(max: 64, share: 1) == nil)
    }

    @Test func aKeyAddedWhileItsBatchRunsComesBackAfterDone() {
        let q = WorkQueue<String>(name: "t", clock: ManualClock())
        q.add(contentsOf: ["a", "b", "c"])
        let batch = q.tryGetBatch(max: 10) ?? []
        #expect(batch == ["a", "b", "c"])
        // Processing: not handed out again, but remembered.
        q.add("b")
        #expect(q.tryGetBatch(max: 10) == nil)
        #expect(!q.isIdle())
        q.done(contentsOf: batch)
        #expect(q.tryGetBatch(max: 10) == ["b"])
        q.done("b")
        #expect(q.isIdle())
    }

    struct Transient: Error {}

    /// A reconciler that records what it was given and fails the keys it is told to once
    /// (a retryable error), so each must be retried on its own.
    final class Recorder: Reconciler, @unchecked Sendable {
        let lock = NSLock()
        var batches: [[ObjectKey]] = []
        var singles: [ObjectKey] = []
        var failing: Set<ObjectKey>
        init(failing: Set<ObjectKey>) { self.failing = failing }
        func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
            lock.lock(); singles.append(key); lock.unlock()
            return try outcome(key)
        }
        func outcome(_ key: ObjectKey) throws -> ReconcileResult {
            if lock.withLock({ failing.remove(key) }) != nil { throw Transient() }
            return .done
        }
        func reconcile(batch keys: [ObjectKey]) -> [Result<ReconcileResult, any Error>] {
            lock.lock(); batches.append(keys); lock.unlock()
            return keys.map { k in Result { try outcome(k) } }
        }
    }

    @Test func workersTakeALongQueueInBatchesAndEachKeyGetsItsOwnOutcome() throws {
        let q = WorkQueue<ObjectKey>(name: "t", clock: SystemClock())
        let keys = (0..<2000).map { ObjectKey(.workload, namespace: "ns", name: "w\($0)") }
        let bad = ObjectKey(.workload, namespace: "ns", name: "w7")
        let r = Recorder(failing: [bad])
        q.add(contentsOf: keys)
        let c = Controller(name: "t", queue: q, reconciler: r, workers: 2, metrics: nil)
        c.start()
        defer { q.shutDown(); _ = c.wait(timeout: 5) }
        #expect(poll(timeout: 10) { q.isIdle() && q.isDelayed(bad) == nil && r.lock.withLock { r.failing.isEmpty } })
        #expect(poll(timeout: 10) { q.isIdle() && r.lock.withLock { (r.batches.joined().filter { $0 == bad }.count + r.singles.filter { $0 == bad }.count) == 2 } })
        let (seen, singles) = r.lock.withLock { (r.batches, r.singles) }
        #expect(seen.contains { $0.count > 1 })
        #expect(seen.allSatisfy { $0.count <= Controller.maxBatch })
        // Every key once, but the failed one twice: its own outcome, retried alone.
        #expect((seen.flatMap { $0 } + singles).sorted() == (keys + [bad]).sorted())
    }

    // MARK: Pending order

    /// The order `before` gives (compact fields, prefixes) is the one its definition says:
    /// priority high first, then creation time, then the key (Swift's String order).
    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func pendingOrderIsPriorityThenCreationThenKey(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        // Names that share long prefixes, differ after byte 8, are not ASCII or hold a NUL.
        // (No decomposed forms: Swift's own `<` is not a strict weak order over them, e.g.
        // "e\u{301}" == "é" < "éx" but not "e\u{301}" < "éx", so two correct sorts can
        // disagree; `prefixesDecideOnlyWhenTheyCan` covers that prefixes never decide those.)
        let pieces = ["a", "b", "team", "team-a", "team-ab", "teamteam", "teamteam-x", "teamteam-y", "é", "ü",
                      "abcdefgé", "abcdefgf", "x\u{0}", "x", "zz", "Z", "0", "wl-1", "wl-10", "wl-2"]
        func name() -> String {
            var s = ""
            for _ in 0..<Int.random(in: 1...3, using: &rng) { s += pieces[Int.random(in: 0..<pieces.count, using: &rng)] }
            return s
        }
        for bulk in [false, true] {
            let s = SchedulerState()
            s.setQueue("q", spec: QueueSpec(), valid: true)
            s.bulkPending = bulk
            var expected: [(ObjectKey, Int, Int64)] = []
            var used = Set<ObjectKey>()
            for _ in 0..<400 {
                let key = ObjectKey(.workload, namespace: name(), name: name())
                guard used.insert(key).inserted else { continue }
                let p = Int.random(in: 0...2, using: &rng), c = Int64(Int.random(in: 0...2, using: &rng))
                s.setWorkload(key, WorkloadRequest(queue: "q", priority: p, created: c, resources: res(1)))
                expected.append((key, p, c))
            }
            // A few change priority in place (kept in the compact fields too).
            for i in stride(from: 0, to: expected.count, by: 37) {
                let (k, _, c) = expected[i]
                s.setWorkload(k, WorkloadRequest(queue: "q", priority: 5, created: c, resources: res(1)))
                expected[i].1 = 5
            }
            s.bulkPending = false
            let want = expected.sorted { a, b in a.1 != b.1 ? a.1 > b.1 : a.2 != b.2 ? a.2 < b.2 : a.0 < b.0 }.map(\.0)
            let got = s.pendingOrder("q")
            let at = got.indices.first { $0 >= want.count || got[$0] != want[$0] }
            #expect(got.count == want.count && at == nil, "seed \(seed) bulk \(bulk): first difference at \(at.map(String.init) ?? "-"): \(at.map { "\(got[$0]) vs \($0 < want.count ? want[$0].description : "-")" } ?? "")")
        }
    }

    @Test func prefixesDecideOnlyWhenTheyCan() {
        func o(_ ns: String, _ n: String) -> PendingOrder { PendingOrder(ObjectKey(.workload, namespace: ns, name: n), WorkloadRequest(queue: "q", resources: res(1))) }
        #expect(PendingOrder.decides(o("a", "x"), o("b", "a")) == true)
        #expect(PendingOrder.decides(o("team", "wl-2"), o("team", "wl-10")) == false)
        // Equal 8-byte prefixes, or a namespace longer than 8 bytes: the keys decide.
        #expect(PendingOrder.decides(o("teamteam-x", "a"), o("teamteam-y", "a")) == nil)
        #expect(PendingOrder.decides(o("teamteamt", "a"), o("teamteamt", "b")) == nil)
        #expect(PendingOrder.decides(o("x", "a"), o("x\u{0}", "b")) == nil)
        // Not ASCII anywhere: the keys decide.
        #expect(PendingOrder.decides(o("abcdefge\u{301}", "a"), o("abcdefgf", "a")) == nil)
    }

    // MARK: Held statuses

    /// An initial load as the daemon runs it: objects written, then their statuses marked
    /// (held). `status` may give a status to those the world gave none. Returns the keys
    /// whose status was marked.
    func heldLoad(_ store: StateStore, _ w: WorkloadIndexTests.World, count: Int, status: (String?) -> String? = { $0 }) throws -> [ObjectKey] {
        #expect(try store.beginBulkLoad())
        var keys: [ObjectKey] = []
        for i in 0..<count {
            let (r, s) = w.randomWorkload(i)
            w.put(store, r, nil)
            if let s = status(s) { w.lock.withLock { w.statuses[r.key] = s }; keys.append(r.key) }
        }
        for k in keys { store.markStatusDirty(k) }
        return keys
    }

    @Test func anInitialLoadHoldsStatusesForOneBatchAtItsFlush() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        // Statuses per commit that stored any.
        let written = Mutex<[Int]>([])
        let store = try StateStore(directory: dir, batchDelay: 0, onCommit: { keys in if !keys.isEmpty { written.withLock { $0.append(keys.count) } } })
        let w = WorkloadIndexTests.World(seed: 7)
        w.attach(store)
        store.startWriter()
        defer { store.close() }
        let keys = try heldLoad(store, w, count: 300)
        #expect(!keys.isEmpty)
        // The writer stores the objects on its own; the statuses wait for the flush.
        let reader = try StateReader(directory: dir)
        #expect(poll(timeout: 10) { ((try? reader.counts().objects) ?? 0) == 300 })
        #expect(try reader.counts().withStatus == 0)
        #expect(store.settledGeneration() == nil)   // pending, so not settled
        try store.flush()
        #expect(try reader.counts().withStatus == keys.count)
        #expect(written.withLock { $0 } == [keys.count])
        // After the flush, statuses go as they come.
        let more = w.randomWorkload(1000)
        w.put(store, more.0, nil)
        w.lock.withLock { w.statuses[more.0.key] = more.1 ?? "{\"phase\":\"Pending\"}" }
        store.markStatusDirty(more.0.key)
        #expect(poll(timeout: 10) { ((try? reader.counts().withStatus) ?? 0) == keys.count + 1 })
    }

    @Test func closingDuringTheHoldWritesTheHeldStatuses() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try BulkLoadTests.store(dir)
        let w = WorkloadIndexTests.World(seed: 8)
        w.attach(store)
        store.startWriter()
        let keys = try heldLoad(store, w, count: 50)
        store.close()
        let reader = try StateReader(directory: dir)
        let counts = try reader.counts()
        #expect(counts.objects == 50 && counts.withStatus == keys.count)
    }

    @Test(arguments: [false, true])
    func theIndexesAreBuiltBeforeTheHeldStatusesWhichCorrectTheProvisionalPhase(everyWorkloadHasAStatus: Bool) throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try BulkLoadTests.store(dir)
        let w = WorkloadIndexTests.World(seed: 9)
        w.attach(store)
        store.startWriter()
        defer { store.close() }
        // The held statuses go in several transactions of the one batch (chunks of 37).
        store.loadCommitRows = 50
        let keys = try heldLoad(store, w, count: 400) { $0 ?? (everyWorkloadHasAStatus ? "{\"phase\":\"Stopped\"}" : nil) }
        #expect(everyWorkloadHasAStatus == (keys.count == 400))
        try store.indexLoadedObjects()
        #expect(try BulkLoadTests().indexNames(dir) == BulkLoadTests().allIndexes)
        #expect(!store.indexesPending)
        let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
        func phases() throws -> [String: Int] {
            let st = try db.prepare("SELECT phase, count(*) FROM wl_index GROUP BY phase")
            var out: [String: Int] = [:]
            while try st.step() { out[st.text(0)] = Int(st.int(1)) }
            return out
        }
        // Every row provisionally pending, no status yet.
        #expect(try phases() == ["pending": 400])
        #expect(try StateReader(directory: dir).counts().withStatus == 0)
        try store.endBulkLoad()
        // The statuses corrected the phase where it differs, and a workload given no status
        // is back to ""; pages read through the indexes equal the pages cut in memory.
        let want = Dictionary(grouping: keys, by: { k in w.lock.withLock { IndexWriter.leadingPhase(w.statuses[k] ?? "") ?? "" } }).mapValues(\.count)
        var expected = want
        if keys.count < 400 { expected["", default: 0] += 400 - keys.count }   // no status: back to "", as in memory
        #expect(try phases() == expected)
        // The load wrote no feed rows, only the gap that sends a reader from before it (at
        // sequence 0) back to a full read.
        let feed = try db.prepare("SELECT count(*), max(seq), max(op) FROM changes")
        _ = try feed.step()
        #expect(feed.int(0) == 1 && feed.int(1) == 2 && feed.text(2) == "gap")
        #expect(try StateReader(directory: dir).changes(after: 0) == nil)
        #expect(try StateReader(directory: dir).changes(after: 2) == [])
        try WorkloadIndexTests().expectSamePages(try StateReader(directory: dir), w, rounds: 40)
    }

    /// While an initial load writes without feed rows the store never reports a settled
    /// generation (the feed's head says nothing then); the end of the hold is written even
    /// when nothing else is (an empty spec directory), and a reader that followed the feed
    /// before the load (a queue stored, its sequence above 0) must read everything again.
    @Test(arguments: [0, 120])
    func theFeedIsSuspendedUntilTheHoldEndsEvenWithNothingToWrite(workloads: Int) throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try BulkLoadTests.store(dir)
        let w = WorkloadIndexTests.World(seed: 12)
        w.attach(store)
        store.startWriter()
        defer { store.close() }
        // A queue stored before any workload: the feed has a row, the workload index none.
        let queue = ObjectRow(key: ObjectKey(.queue, name: "q"), uid: "uq", generation: 1, specHash: "h", objectHash: "o", creationTime: 1,
                              source: "q.yaml:1", objectJSON: #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"q"},"spec":{}}"#)
        w.put(store, queue, nil)
        try store.flush()
        let before = try StateReader(directory: dir).lastChangeSeq()
        #expect(before > 0)
        #expect(try store.beginBulkLoad())
        for i in 0..<workloads { w.put(store, w.randomWorkload(i).0, nil) }
        try store.indexLoadedObjects()
        #expect(poll(timeout: 10) { (try? StateReader(directory: dir).counts().objects) == workloads + 1 })
        #expect(store.settledGeneration() == nil, "nothing pending, but the feed is suspended")
        try store.flush()
        #expect(store.settledGeneration() != nil)
        let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
        let flag = try db.prepare("SELECT count(*) FROM meta WHERE key='\(StateStore.provisionalFlag)'")
        _ = try flag.step()
        #expect(flag.int(0) == 0, "the hold's end is committed")
        let reader = try StateReader(directory: dir)
        #expect(try reader.changes(after: before) == nil, "a reader from before the load reads everything again")
        #expect(try reader.changes(after: reader.lastChangeSeq()) == [])
    }

    /// A crash while the load's rows hold provisional phases (objects and indexes committed,
    /// statuses not yet): the next open puts every row without a status back to "".
    @Test func theNextOpenAfterACrashDuringTheHoldClearsProvisionalPhases() throws {
        let dir = try makeTemporaryDirectory()
        let copy = try makeTemporaryDirectory()
        defer { removeTree(dir); removeTree(copy) }
        let store = try BulkLoadTests.store(dir)
        let w = WorkloadIndexTests.World(seed: 10)
        w.attach(store)
        store.startWriter()
        defer { store.close() }
        #expect(try store.beginBulkLoad())
        for i in 0..<100 { w.put(store, w.randomWorkload(i).0, nil) }
        try store.indexLoadedObjects()
        // The files as a kill -9 now would leave them (committed transactions are in the log).
        for f in ["state.db", "state.db-wal"] {
            try FileManager.default.copyItem(atPath: dir + "/" + f, toPath: copy + "/" + f)
        }
        let before = try SQLiteDB(path: StateStore.databasePath(copy), readOnly: true)
        let p = try before.prepare("SELECT count(*) FROM wl_index WHERE phase='pending'")
        _ = try p.step()
        #expect(p.int(0) == 100, "the image holds the provisional phases")
        let reopened = try StateStore(directory: copy, batchDelay: 0)
        reopened.close()
        let db = try SQLiteDB(path: StateStore.databasePath(copy), readOnly: true)
        let st = try db.prepare("SELECT count(*) FROM wl_index WHERE phase=''")
        _ = try st.step()
        #expect(st.int(0) == 100)
        let flag = try db.prepare("SELECT count(*) FROM meta WHERE key='\(StateStore.provisionalFlag)'")
        _ = try flag.step()
        #expect(flag.int(0) == 0)
        // The objects committed during the hold have no feed rows: the open writes the gap,
        // so a reader from before the load (sequence 0) reads everything again.
        #expect(try StateReader(directory: copy).changes(after: 0) == nil)
    }

    @Test func uidsAreVersion4UUIDsInLowerCaseAndDistinct() {
        var seen = Set<String>()
        for _ in 0..<5000 {
            let u = RandomUID.next()
            #expect(u.count == 36)
            let parts = u.split(separator: "-").map(String.init)
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12], "\(u)")
            #expect(u.allSatisfy { "0123456789abcdef-".contains($0) }, "\(u)")
            #expect(parts.count == 5 && parts[2].first == "4" && "89ab".contains(parts[3].first ?? "x"), "\(u)")
            #expect(UUID(uuidString: u) != nil)
            seen.insert(u)
        }
        #expect(seen.count == 5000)
    }

    /// A large batch of statuses checks which objects exist with one read of the keys: a
    /// status of an object deleted before it is still not stored, the others are.
    @Test(arguments: [1, 1_000_000])
    func aLargeStatusBatchStoresOnlyStatusesOfStoredObjects(scanAbove: Int) throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        store.existenceScanAbove = scanAbove
        let w = WorkloadIndexTests.World(seed: 11)
        w.attach(store)
        var keys: [ObjectKey] = []
        for i in 0..<200 {
            let (r, _) = w.randomWorkload(i)
            w.put(store, r, nil)
            keys.append(r.key)
        }
        try store.flush()
        // Deleted, yet its status (a late one) is still in the cache.
        let gone = keys[17]
        store.deleteObject(gone)
        try store.flush()
        w.lock.withLock { for k in keys { w.statuses[k] = "{\"phase\":\"Running\"}" } }
        for k in keys { store.markStatusDirty(k) }
        try store.flush()
        let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
        let st = try db.prepare("SELECT count(*), sum(name = ?) FROM statuses")
        st.bind(1, gone.name)
        _ = try st.step()
        #expect(st.int(0) == 199)
        #expect(st.int(1) == 0, "no status for the deleted object")
        try WorkloadIndexTests().expectSamePages(try StateReader(directory: dir), w, rounds: 10)
    }

    /// One batch holding everything at once: new objects with their statuses, statuses of
    /// objects stored earlier, a delete with a late status, a status whose JSON is gone, and a
    /// status of an object never stored. The bulk path (keys read once, in the objects
    /// index's order) stores exactly what the per-row path stores, seeded.
    @Test(arguments: [3, 29, 101])
    func aMixedBulkBatchStoresWhatThePerRowPathStores(seed: UInt64) throws {
        func run(scanAbove: Int) throws -> (statuses: [String], index: [String], feed: [String]) {
            let dir = try makeTemporaryDirectory()
            defer { removeTree(dir) }
            let store = try StateStore(directory: dir, batchDelay: 0)
            store.existenceScanAbove = scanAbove
            let w = WorkloadIndexTests.World(seed: seed)
            w.attach(store)
            var early: [ObjectKey] = []
            for i in 0..<150 {
                let (r, st) = w.randomWorkload(i)
                w.put(store, r, st)
                early.append(r.key)
            }
            try store.flush()
            // The mixed batch: nothing is flushed until all of it is marked.
            for i in 150..<300 {
                let (r, st) = w.randomWorkload(i)
                w.put(store, r, st)
            }
            w.lock.withLock {
                for (n, k) in early.enumerated() { w.statuses[k] = n % 7 == 0 ? nil : "{\"phase\":\"Running\",\"n\":\(n)}" }
            }
            for k in early { store.markStatusDirty(k) }
            w.remove(store, early[5])
            w.lock.withLock { w.statuses[early[5]] = "{\"phase\":\"Late\"}" }
            store.markStatusDirty(early[5])
            let stray = ObjectKey(.workload, namespace: "default", name: "never-stored")
            w.lock.withLock { w.statuses[stray] = "{\"phase\":\"Stray\"}" }
            store.markStatusDirty(stray)
            // An object marked with its status whose row is gone by the commit (deleted from
            // memory first): neither is stored.
            let vanished = ObjectKey(.workload, namespace: "default", name: "vanished")
            w.lock.withLock { w.statuses[vanished] = "{\"phase\":\"Vanished\"}" }
            store.markObjectDirty(vanished)
            store.markStatusDirty(vanished)
            // Queue positions (the low lane) of a deleted object and of a stored one.
            w.remove(store, early[6])
            w.lock.withLock { w.statuses[early[6]] = "{\"phase\":\"LatePosition\"}"; w.statuses[early[8]] = "{\"phase\":\"Position\"}" }
            store.markStatusesDirty([early[6], early[8]])
            try store.flush()
            store.close()
            let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true)
            func rows(_ sql: String, _ columns: Int32) throws -> [String] {
                let st = try db.prepare(sql)
                var out: [String] = []
                while try st.step() { out.append((0..<columns).map { st.text($0) }.joined(separator: "|")) }
                return out
            }
            return (try rows("SELECT kind, namespace, name, status FROM statuses ORDER BY 1, 2, 3", 4),
                    try rows("SELECT namespace, name, phase FROM wl_index ORDER BY 1, 2", 3),
                    try rows("SELECT kind, namespace, name, op FROM changes ORDER BY 1, 2, 3, 4", 4))
        }
        let bulk = try run(scanAbove: 1), perRow = try run(scanAbove: 1_000_000)
        #expect(bulk.statuses.count > 200)
        #expect(!bulk.statuses.contains { $0.contains("never-stored") || $0.contains("Late") || $0.contains("anished") })
        #expect(bulk.statuses.contains { $0.contains("\"Position\"") })
        // The first row where they differ (nil: none), so a failure prints one row, not all.
        func difference(_ a: [String], _ b: [String]) -> String? {
            for (x, y) in zip(a, b) where x != y { return "\(x) against \(y)" }
            return a.count == b.count ? nil : "\(a.count) rows against \(b.count)"
        }
        #expect(difference(bulk.statuses, perRow.statuses) == nil)
        #expect(difference(bulk.index, perRow.index) == nil)
        #expect(difference(bulk.feed, perRow.feed) == nil)
    }
}
