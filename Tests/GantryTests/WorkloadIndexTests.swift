import Testing
import Foundation
@testable import GantryAPI
@testable import ControllerRuntime
@testable import StateStore
@testable import GantryCLI
@testable import Controllers
@testable import YAMLCodec

/// The workload index and the change feed: a page read through SQLite equals the page cut
/// from every stored workload, an old database is migrated, and `-w` follows the feed.
@Suite(.timeLimit(.minutes(1)))
struct WorkloadIndexTests {
    /// Random workloads (seeded): mixed-case queues and types, priorities as numbers or names,
    /// GPUs as numbers or quantities, labels, display names, creation times, phases.
    final class World: @unchecked Sendable {
        let lock = NSLock()
        var objects: [ObjectKey: ObjectRow] = [:]
        var statuses: [ObjectKey: String] = [:]
        var rng: SplitMix64
        init(seed: UInt64) { rng = SplitMix64(seed: seed) }

        func next(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        func pick<T>(_ xs: [T]) -> T { xs[next(xs.count)] }

        func randomWorkload(_ i: Int) -> (ObjectRow, String?) {
            let ns = pick(["default", "team-a", "team-b", "zeta"])
            let name = "w-\(i)-" + pick(["x", "train", "Eval", "run"])
            let key = ObjectKey(.workload, namespace: ns, name: name)
            let queue = pick(["leaf-1", "Leaf-1", "leaf-2", "gpu-q", "default"])
            let type = pick(["Job", "PyTorchJob", "job", "Deployment"])
            let priority = pick(["0", "1", "-1", "7", "\"high\"", "\"low\"", "\"bogus\"", "null"])
            let gpu = pick(["1", "2", "8", "0", "\"4\"", "\"500m\"", "\"2\""])
            let replicas = pick(["1", "2", "3"])
            var labels: [String] = []
            if next(3) > 0 { labels.append("\"project\":\"\(pick(["p1", "p2", "p3"]))\"") }
            if next(2) == 0 { labels.append("\"owner\":\"\(pick(["ann", "bob"]))\"") }
            let display = pick(["", "Training Run \(i)", "eval sweep", "RUN big"])
            let obj = """
                {"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"\(name)","namespace":"\(ns)","labels":{\(labels.joined(separator: ","))}},\
                "spec":{"displayName":"\(display)","type":"\(type)","queue":"\(queue)","priority":\(priority),"replicas":\(replicas),"resources":{"gpu":\(gpu)}}}
                """
            let row = ObjectRow(key: key, uid: "u\(i)", generation: 1, specHash: "h", objectHash: "o", creationTime: Int64(1000 + next(50)),
                                source: "f.yaml", objectJSON: obj)
            let status = next(5) == 0 ? nil : "{\"phase\":\"\(pick(["Pending", "Running", "Succeeded", "Admitted"]))\",\"queuePosition\":\(next(9))}"
            return (row, status)
        }

        func attach(_ store: StateStore) {
            store.objectProvider = { [self] k in lock.withLock { objects[k] } }
            store.statusProvider = { [self] k in lock.withLock { statuses[k] } }
        }

        func put(_ store: StateStore, _ row: ObjectRow, _ status: String?) {
            lock.withLock { objects[row.key] = row; statuses[row.key] = status }
            store.markObjectDirty(row.key)
            if status != nil { store.markStatusDirty(row.key) }
        }

        func remove(_ store: StateStore, _ key: ObjectKey) {
            lock.withLock { objects[key] = nil; statuses[key] = nil }
            store.deleteObject(key)
        }
    }

    func command(_ argv: [String]) throws -> GetCommand {
        var args = try Args(argv, boolFlags: CLI.boolFlags, aliases: CLI.aliases)
        return try GetCommand(&args)
    }

    /// A random `get workloads` command line.
    func randomArgs(_ w: World) -> [String] {
        var a = ["workloads"]
        if w.next(3) == 0 { a += ["-n", w.pick(["team-a", "zeta", "nowhere"])] } else { a.append("-A") }
        if w.next(3) == 0 { a += ["--phase", w.pick(["running", "Pending,succeeded", "admitted"])] }
        if w.next(4) == 0 { a += ["--type", w.pick(["job", "pytorchjob,deployment"])] }
        if w.next(4) == 0 { a += ["--queue", w.pick(["leaf-1", "LEAF-2,gpu-q", "default"])] }
        if w.next(5) == 0 { a += ["--name-contains", w.pick(["train", "RUN", "eval", "-1"])] }
        if w.next(4) == 0 { a += ["-l", w.pick(["project=p1", "project!=p2", "owner", "!owner", "project=p3,owner=ann"])] }
        if w.next(6) == 0 { a += ["--since", Timestamp(seconds: Int64(1000 + w.next(50))).rfc3339] }
        if w.next(6) == 0 { a += ["--until", Timestamp(seconds: Int64(1000 + w.next(50))).rfc3339] }
        if w.next(4) > 0 { a += ["--sort-by", w.pick(["name", "creationTime", "priority", "gpus", "age"])] }
        if w.next(3) == 0 { a += ["--order", w.pick(["asc", "desc"])] }
        if w.next(2) == 0 { a += ["--limit", String(w.pick([1, 5, 50, 1000]))] }
        if w.next(3) == 0 { a += ["--offset", String(w.next(40))] }
        return a
    }

    func expectSamePages(_ reader: StateReader, _ w: World, rounds: Int) throws {
        #expect(try reader.hasWorkloadIndex())
        for _ in 0..<rounds {
            let argv = randomArgs(w)
            let cmd = try command(argv)
            let viaIndex = try #require(try reader.workloadPage(cmd.pageQuery)).map(\.key)
            let inMemory = try cmd.selectInMemory(reader).map(\.key)
            #expect(viaIndex == inMemory, "\(argv.joined(separator: " "))")
            #expect(try reader.workloadKeys(cmd.pageQuery) == inMemory, "keys: \(argv.joined(separator: " "))")
            #expect(try cmd.select(reader).map(\.key) == inMemory)
            // `-o name`'s bytes, straight from the index.
            let lines = try #require(try reader.workloadNameLines(cmd.pageQuery, prefix: "workload/"))
            #expect(String(decoding: lines, as: UTF8.self) == inMemory.map { "workload/\($0.name)\n" }.joined(), "names: \(argv.joined(separator: " "))")
        }
    }

    @Test func theSQLPageEqualsTheInMemoryPage() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let w = World(seed: 12)
        w.attach(store)
        for i in 0..<400 { let (r, s) = w.randomWorkload(i); w.put(store, r, s) }
        try store.flush()
        let reader = try StateReader(directory: dir)
        try expectSamePages(reader, w, rounds: 150)
        // Edits, status changes and deletes keep the index in step.
        let keys = w.lock.withLock { w.objects.keys.sorted() }
        for (n, k) in keys.enumerated() where n % 3 == 0 {
            switch w.next(3) {
            case 0: w.remove(store, k)
            case 1:
                let (r, _) = w.randomWorkload(n)
                var row = r
                row = ObjectRow(key: k, uid: row.uid, generation: 2, specHash: "h2", objectHash: "o2", creationTime: row.creationTime,
                                source: row.source, objectJSON: row.objectJSON.replacingOccurrences(of: "\"name\":\"\(r.key.name)\"", with: "\"name\":\"\(k.name)\""))
                w.put(store, row, nil)
            default:
                w.lock.withLock { w.statuses[k] = "{\"phase\":\"Running\"}" }
                store.markStatusDirty(k)
            }
        }
        try store.flush()
        try expectSamePages(reader, w, rounds: 150)
        // describe queue reads the index too, with the exact queue name.
        for q in ["leaf-1", "Leaf-1", "gpu-q"] {
            let viaIndex = try reader.workloads(queue: q).map(\.key)
            let all = try reader.objects(kind: .workload).filter { row in
                (try? JSON.parse(row.objectJSON))?["spec"]?["queue"]?.stringValue == q
            }.map(\.key)
            #expect(viaIndex == all && !all.isEmpty, "queue \(q)")
        }
        store.close()
    }

    /// Both page plans (walk the sort index and check the filters; or read what a filter's
    /// index selects and sort it) give the in-memory page, whichever the count picks.
    @Test(arguments: [1, 60, 1_000_000])
    func theSQLPageEqualsTheInMemoryPageUnderEitherPlan(threshold: Int) throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let w = World(seed: UInt64(30 + threshold % 7))
        w.attach(store)
        for i in 0..<300 { let (r, s) = w.randomWorkload(i); w.put(store, r, s) }
        try store.flush()
        let reader = try StateReader(directory: dir)
        reader.sortScanAbove = threshold
        try expectSamePages(reader, w, rounds: 120)
        store.close()
    }

    /// SQLite, without statistics, would read every row of a common phase and sort them for a
    /// page of 50; the reader walks the sort index when the filter selects many rows, and
    /// sorts when it selects few (EXPLAIN QUERY PLAN names the index and any sort).
    @Test func aCommonPhaseWalksTheSortIndexAndARareOneSortsItsRows() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let w = World(seed: 5)
        w.attach(store)
        for i in 0..<300 {
            let (r, _) = w.randomWorkload(i)
            w.put(store, r, "{\"phase\":\"\(i % 50 == 0 ? "Running" : "Pending")\"}")
        }
        try store.flush()
        let reader = try StateReader(directory: dir)
        reader.sortScanAbove = 100
        func plan(_ argv: [String]) throws -> (StateReader.PagePlan, String) {
            let q = try command(["workloads", "-A", "--limit", "50"] + argv).pageQuery
            return (try reader.pagePlan(q), try reader.explainPage(q).joined(separator: "; "))
        }
        for sort in ["gpus", "priority", "creationTime"] {
            let index = sort == "creationTime" ? "wl_index_created" : "wl_index_\(sort)"
            let (common, commonPlan) = try plan(["--phase", "pending", "--sort-by", sort])
            #expect(common == .sortIndex)
            #expect(commonPlan.contains(index) && !commonPlan.contains("TEMP B-TREE"), "\(sort): \(commonPlan)")
            let (rare, rarePlan) = try plan(["--phase", "running", "--sort-by", sort])
            #expect(rare == .filterIndex("phase"))
            #expect(rarePlan.contains("wl_index_phase") && rarePlan.contains("TEMP B-TREE"), "\(sort): \(rarePlan)")
            // A common phase and a rare queue: the queue's index, not the phase's.
            let (mixed, mixedPlan) = try plan(["--phase", "pending", "--queue", "gpu-q", "--sort-by", sort])
            #expect(mixed == .filterIndex("queue"))
            #expect(mixedPlan.contains("wl_index_queue") && !mixedPlan.contains("wl_index_phase"), "\(sort): \(mixedPlan)")
            // A namespace filter and a common phase: the sort index too.
            let (nsCommon, nsPlan) = try plan(["--phase", "pending", "-n", "team-a", "--sort-by", sort])
            if nsCommon == .sortIndex { #expect(nsPlan.contains(index) && !nsPlan.contains("TEMP B-TREE"), "\(sort): \(nsPlan)") }
        }
        // Name order with a namespace: the primary key, no sort, either way.
        let (_, byName) = try plan(["-n", "team-a", "--phase", "pending"])
        #expect(!byName.contains("TEMP B-TREE"), "\(byName)")
        store.close()
    }

    /// An `ObjectReader` that is not a `StateReader`: `describe queue` then parses every
    /// object, as it does for a cluster or a server.
    struct PlainReader: ObjectReader {
        let r: StateReader
        func objects(kind: Kind, namespace: String?, name: String?) throws -> [ObjectRow] { try r.objects(kind: kind, namespace: namespace, name: name) }
        func workloads(queue: String) throws -> [ObjectRow] { try r.workloads(queue: queue) }
        func events(kind: String?, namespace: String?, name: String?, since: Double?, limit: Int?) throws -> [StateReader.EventRow] {
            try r.events(kind: kind, namespace: namespace, name: name, since: since, limit: limit)
        }
        func latestMetrics(prefix: String) throws -> [(series: String, ts: Double, value: Double)] { try r.latestMetrics(prefix: prefix) }
    }

    /// `describe queue` from the index's fields (statuses parsed, objects not) prints what
    /// parsing every member's object prints, for exact and mixed-case queue names.
    @Test func describeQueueFromTheIndexEqualsParsingTheObjects() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let w = World(seed: 41)
        w.attach(store)
        for i in 0..<300 {
            let (r, s) = w.randomWorkload(i)
            let admitted = "{\"phase\":\"Running\",\"admission\":{\"replicas\":[{\"rank\":0,\"node\":\"n\(i % 3)\"}]}}"
            w.put(store, r, i % 4 == 0 ? admitted : s)
        }
        try store.flush()
        let reader = try StateReader(directory: dir)
        for q in ["leaf-1", "Leaf-1", "gpu-q", "nothing"] {
            var args = try Args(["queue", q], boolFlags: CLI.boolFlags, aliases: CLI.aliases)
            let cmd = try DescribeCommand(&args)
            let viaIndex = try cmd.queueWorkloads(reader)
            let parsed = try cmd.queueWorkloads(PlainReader(r: reader))
            #expect(viaIndex == parsed, "queue \(q)")
            if q != "nothing" { #expect(viaIndex.count > 4 && viaIndex.joined().contains("Admitted Workloads: "), "queue \(q)") }
        }
        #expect(try reader.queueMembers("leaf-1")?.count == (try reader.workloads(queue: "leaf-1").count))
        store.close()
    }

    @Test func aVersionOneDatabaseIsReadWithoutTheIndexThenMigrated() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let w = World(seed: 7)
        do {
            let store = try StateStore(directory: dir, batchDelay: 0)
            w.attach(store)
            for i in 0..<120 { let (r, s) = w.randomWorkload(i); w.put(store, r, s) }
            try store.flush()
            store.close()
        }
        // Make it what version 1 wrote: no index, no feed.
        do {
            let db = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: false)
            for sql in ["DROP TABLE wl_index", "DROP TABLE wl_labels", "DROP TABLE changes", "DELETE FROM meta WHERE key='workload_index'",
                        "UPDATE meta SET value='1' WHERE key='schema_version'"] { try db.exec(sql) }
        }
        let old = try StateReader(directory: dir)
        #expect(try !old.hasWorkloadIndex())
        let cmd = try command(["workloads", "-A", "--sort-by", "priority", "--limit", "10"])
        #expect(try old.workloadPage(cmd.pageQuery) == nil)
        let expected = try cmd.selectInMemory(old).map(\.key)
        #expect(expected.count == 10)
        #expect(try cmd.select(old).map(\.key) == expected)         // the fallback
        #expect(try old.lastChangeSeq() == 0)
        #expect(try old.workloads(queue: "leaf-1").count > 0)
        // The daemon opening it builds the index.
        let store = try StateStore(directory: dir, batchDelay: 0)
        w.attach(store)
        let reader = try StateReader(directory: dir)
        #expect(try reader.workloadPage(cmd.pageQuery)?.map(\.key) == expected)
        try expectSamePages(reader, w, rounds: 80)
        let v = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true).prepare("SELECT value FROM meta WHERE key='schema_version'")
        #expect(try v.step() && v.text(0) == "2")
        store.close()
    }

    @Test func aWatcherSeesEveryChangeOnceInOrder() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let w = World(seed: 3)
        w.attach(store)
        let reader = try StateReader(directory: dir)
        var expected: [String] = []
        var rows: [ObjectRow] = []
        for i in 0..<40 {
            let (r, _) = w.randomWorkload(i)
            rows.append(r)
            switch i % 4 {
            case 0, 1: w.put(store, r, nil); expected.append("object \(r.key)")
            case 2:
                w.put(store, r, "{\"phase\":\"Pending\"}"); try store.flush()
                expected += ["object \(r.key)", "status \(r.key)"]
            default:
                let prior = rows[i - 1].key
                w.remove(store, prior); expected.append("delete \(prior)")
            }
            try store.flush()
        }
        // Read in small slices, as a watcher polling now and then would.
        var seq: Int64 = 0
        var seen: [String] = []
        while true {
            let batch = try #require(try reader.changes(after: seq, limit: 7))
            if batch.isEmpty { break }
            for c in batch { #expect(c.seq > seq); seq = c.seq; seen.append("\(c.op) \(c.key)") }
        }
        #expect(seen == expected)
        #expect(try reader.lastChangeSeq() == seq)
        store.close()
    }

    @Test func theFeedIsPrunedAndAWatcherBehindItIsToldToReadAgain() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        store.changesKept = 10
        let w = World(seed: 5)
        w.attach(store)
        for i in 0..<30 { let (r, _) = w.randomWorkload(i); w.put(store, r, nil); try store.flush() }
        let reader = try StateReader(directory: dir)
        let last = try reader.lastChangeSeq()
        #expect(last >= 30)
        #expect(try reader.changes(after: 0) == nil)                  // pruned past: read everything
        #expect(try reader.changes(after: last - 5)?.count == 5)
        #expect(try reader.changes(after: last)?.isEmpty == true)
        let count = try SQLiteDB(path: StateStore.databasePath(dir), readOnly: true).prepare("SELECT count(*) FROM changes")
        #expect(try count.step() && count.int(0) <= 10)
        store.close()
    }

    @Test func fieldsFromTheTypedSpecEqualThoseReadFromTheStoredJSON() throws {
        var yaml = ""
        for (i, (prio, gpu, replicas)) in [("high", "2", 3), ("7", "\"500m\"", 2), ("Highest", "8", 1), ("-1", "0", 4), ("low", "1", 1)].enumerated() {
            yaml += """
                apiVersion: gantry.dev/v1alpha1
                kind: Workload
                metadata: {name: w\(i), namespace: ns, labels: {b: "2", a: x\(i)}}
                spec: {displayName: Run \(i), type: PyTorchJob, queue: Q-\(i), priority: \(prio), replicas: \(replicas), command: x, resources: {gpu: \(gpu)}}
                ---

                """
        }
        let file = ManifestFile.decode(path: "w.yaml", bytes: Array(yaml.utf8))
        #expect(file.objects.count == 5)
        for obj in file.objects {
            let row = Inventory.row(obj)
            let typed = try #require(row.fields)
            #expect(typed == WorkloadFields(object: try JSON.parse(row.objectJSON)), "\(obj.key)")
        }
    }

    @Test func thePhaseIsIndexedFromEitherShapeOfStatus() throws {
        #expect(IndexWriter.leadingPhase(#"{"phase":"Running","x":1}"#) == "running")
        #expect(IndexWriter.leadingPhase(#"{"x":1,"phase":"Running"}"#) == nil)
        #expect(IndexWriter.leadingPhase(#"{"phase":"Run\"x"}"#) == nil)
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let w = World(seed: 1)
        w.attach(store)
        let (a, _) = w.randomWorkload(1), (b, _) = w.randomWorkload(2), (c, _) = w.randomWorkload(3)
        w.put(store, a, #"{"phase":"Running"}"#)
        w.put(store, b, #"{"queuePosition":2,"phase":"Running","nested":{"phase":"Failed"}}"#)
        w.put(store, c, "not json")
        try store.flush()
        let reader = try StateReader(directory: dir)
        let cmd = try command(["workloads", "-A", "--phase", "running"])
        #expect(try reader.workloadPage(cmd.pageQuery)?.map(\.key) == [a.key, b.key].sorted())
        #expect(try cmd.selectInMemory(reader).map(\.key) == [a.key, b.key].sorted())
        store.close()
    }

    @Test func getWatchReadsOnlyWhatChanged() throws {
        let dir = try makeTemporaryDirectory()
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, batchDelay: 0)
        let w = World(seed: 9)
        w.attach(store)
        var rows: [ObjectRow] = []
        for i in 0..<50 { let (r, s) = w.randomWorkload(i); rows.append(r); w.put(store, r, s ?? "{\"phase\":\"Pending\"}") }
        try store.flush()
        let reader = try StateReader(directory: dir)
        let cmd = try command(["workloads", "-A", "-w"])
        let seq = try reader.lastChangeSeq()
        let items = try cmd.select(reader)
        var watch = GetWatch(cmd, items: items, seq: seq, now: Timestamp(seconds: 0))
        #expect(watch.step(reader).isEmpty && watch.keyReads == 0 && watch.fullReads == 0)
        // One status change, one delete, one new workload.
        let changed = rows[0].key, deleted = rows[1].key
        w.lock.withLock { w.statuses[changed] = "{\"phase\":\"Failed\"}" }
        store.markStatusDirty(changed)
        w.remove(store, deleted)
        let (fresh, _) = w.randomWorkload(1000)
        w.put(store, fresh, "{\"phase\":\"Pending\"}")
        try store.flush()
        let printed = watch.step(reader)
        #expect(watch.fullReads == 0 && watch.keyReads == 3)
        let names = printed.map { $0[1] }
        #expect(Set(names) == Set([changed.name, deleted.name, fresh.key.name]) && printed.count == 3)
        #expect(printed.first { $0[1] == changed.name }?.contains("Failed") == true)
        #expect(printed.first { $0[1] == deleted.name }?.contains("Deleted") == true)
        #expect(watch.step(reader).isEmpty && watch.keyReads == 3)
        store.close()
    }
}
