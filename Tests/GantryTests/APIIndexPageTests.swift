import Testing
import Foundation
@testable import GantryAPI
@testable import ControllerRuntime
@testable import StateStore
@testable import Controllers
@testable import GantryServer
@testable import GantryCLI

/// Directory mode's workload list read through the state database's workload index
/// (`DirectoryBackend.workloadPage`): the same answer as filtering every workload in memory,
/// and never behind a write already made.
@Suite(.serialized, .timeLimit(.minutes(1))) struct APIIndexPageTests {
    /// A store, an inventory and the API backend over them, as the daemon wires them.
    final class World {
        let dir: String
        let clock = ManualClock()
        let store: StateStore
        let statuses: StatusCache
        let inventory: Inventory
        let backend: DirectoryBackend

        init(indexPages: DirectoryBackend.IndexPages = .always) throws {
            dir = try makeTemporaryDirectory()
            let store = try StateStore(directory: dir)
            self.store = store
            let queue = WorkQueue<ObjectKey>(name: "test", clock: clock)
            let events = EventRecorder(sink: store, clock: clock)
            let statuses = StatusCache(persistence: store)
            self.statuses = statuses
            store.statusProvider = { statuses.json($0) }
            let inventory = Inventory(persistence: store, statuses: statuses, queue: queue, events: events, clock: clock)
            self.inventory = inventory
            store.objectProvider = { inventory.row(for: $0) }
            store.startWriter()
            let layers = ManifestLayers(downstream: inventory, current: { inventory.desired.get($0)?.source }, events: events)
            backend = DirectoryBackend(inventory: inventory, layers: layers, overrides: Overrides(), events: events, queue: queue, clock: clock,
                                       stateDir: dir, settled: { store.settledGeneration() }, indexPages: indexPages)
        }

        deinit { store.close(); try? FileManager.default.removeItem(atPath: dir) }

        /// Waits until the store holds every write made so far.
        func settle() throws {
            try store.flush()
            #expect(poll(timeout: 10) { self.store.settledGeneration() != nil }, "the store settles")
        }

        func upsert(_ ns: String, _ name: String, queue: String, type: WorkloadType, priority: Int, gpu: Int64, replicas: Int, labels: [String: String]) {
            var spec = WorkloadSpec()
            spec.queue = queue; spec.type = type; spec.priority = priority; spec.replicas = replicas
            spec.resources = ResourceList(["gpu": Quantity(units: gpu)])
            var meta = ObjectMeta(name: name, namespace: ns)
            meta.labels = labels
            inventory.apply([.upsert(ManifestObject(meta: meta, spec: .workload(spec), source: SourceRef(file: "\(ns)-\(name).yaml", line: 1, index: 0)))])
        }

        func setPhase(_ key: ObjectKey, _ phase: WorkloadPhase) {
            statuses.update(key, initial: { .workload(WorkloadStatus()) }) { s in
                if case .workload(var w) = s { w.phase = phase; s = .workload(w) }
            }
        }

        /// The handler's fallback: the query applied to every workload in memory.
        func inMemory(_ q: WorkloadQuery) throws -> WorkloadPage { try q.apply(backend.list(.workload)) }
    }

    static func same(_ a: WorkloadPage, _ b: WorkloadPage) -> Bool {
        a.items.map(\.key) == b.items.map(\.key) && a.totalCount == b.totalCount && a.next == b.next && a.offset == b.offset && a.limit == b.limit
    }

    static let namespaces = ["ns-a", "ns-b", "ns-c"]
    static let queues = ["q-one", "q-two", "research"]
    static let labelKeys = ["team", "tier"]
    static let labelValues = ["red", "blue"]

    /// Random list parameters over the fields of the random workloads.
    static func randomQuery(_ rng: inout SplitMix64) -> [(String, String)] {
        var p: [(String, String)] = []
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        func maybe(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }
        if maybe(30) { p.append(("namespace", maybe(80) ? pick(namespaces) : "\(pick(namespaces)),\(pick(namespaces))")) }
        if maybe(35) { p.append(("phase", maybe(70) ? pick(["Pending", "running", "Succeeded", "Failed"]) : "pending,Running")) }
        if maybe(20) { p.append(("type", pick(["Job", "PyTorchJob", "job,mpijob"]))) }
        if maybe(30) { p.append(("queue", maybe(85) ? pick(queues) : pick(["Q-one", "q-one,research"]))) }
        if maybe(15) { p.append(("name", pick(["w1", "2", "W-", "zz"]))) }
        if maybe(30) {
            let k = pick(labelKeys), v = pick(labelValues)
            p.append(("labels", pick(["\(k)=\(v)", "\(k)!=\(v)", k, "!\(k)", "\(k) in (\(v))", "\(k) in (red,blue)", "\(k)=\(v),tier"])))
        }
        if maybe(15) { p.append(("since", String(1_768_473_060 + Int(rng.next() % 400)))) }
        if maybe(15) { p.append(("until", String(1_768_473_060 + Int(rng.next() % 400)))) }
        if maybe(10) { p.append(("filterBy", pick(["priority>=1", "queue==q-one", "createdAt>=2026-01-15", "gpus>=2", "gpus==0", "priority!=1,gpus<=2", "replicas==2"]))) }
        if maybe(75) { p.append(("sortBy", pick(["createdAt", "priority", "gpus", "namespace", "name", "phase", "queue"]))) }
        if maybe(50) { p.append(("sortOrder", pick(["asc", "desc"]))) }
        if maybe(40) { p.append(("offset", String(rng.next() % 60))) }
        p.append(("limit", String(1 + rng.next() % 40)))
        return p
    }

    @Test func randomQueriesOverARandomlyEditedStoreAnswerAsInMemory() throws {
        let w = try World()
        var rng = SplitMix64(seed: 0x5eed_12)
        var live: [ObjectKey] = []
        var indexed = 0, compared = 0
        for round in 0..<6 {
            // Edits: creations (several per second of the clock, so creation times tie),
            // changed specs and labels, phases, deletions.
            for _ in 0..<(round == 0 ? 120 : 40) {
                let r = rng.next() % 100
                if r < 50 || live.count < 10 {
                    let ns = Self.namespaces[Int(rng.next() % 3)], name = "w\(rng.next() % 400)-x"
                    var labels: [String: String] = [:]
                    for k in Self.labelKeys where rng.next() % 2 == 0 { labels[k] = Self.labelValues[Int(rng.next() % 2)] }
                    w.upsert(ns, name, queue: Self.queues[Int(rng.next() % 3)], type: rng.next() % 2 == 0 ? .job : .pytorchJob,
                             priority: Int(rng.next() % 3), gpu: Int64(rng.next() % 3), replicas: 1 + Int(rng.next() % 2), labels: labels)
                    let key = ObjectKey(.workload, namespace: ns, name: name)
                    if !live.contains(key) { live.append(key) }
                    if rng.next() % 4 == 0 { w.clock.advance(by: Double(1 + rng.next() % 20)) }
                } else if r < 85 {
                    w.setPhase(live[Int(rng.next() % UInt64(live.count))], [.pending, .running, .succeeded, .failed][Int(rng.next() % 4)])
                } else {
                    let i = Int(rng.next() % UInt64(live.count))
                    w.inventory.apply([.delete(live[i])])
                    live.remove(at: i)
                }
            }
            try w.settle()
            for _ in 0..<150 {
                let params = Self.randomQuery(&rng)
                var q = try WorkloadQuery.parse(params)
                if rng.next() % 5 == 0 { q.restrict(namespaces: [Self.namespaces[Int(rng.next() % 3)]]) }
                let expected = try w.inMemory(q)
                var answer: WorkloadPage?
                if q.indexQuery != nil {
                    // (The store may still commit events recorded after the edits.)
                    #expect(poll(timeout: 10) { answer = w.backend.workloadPage(q); return answer != nil },
                            "an indexable query is answered through the index once the store settles: \(params)")
                } else {
                    #expect(w.backend.workloadPage(q) == nil, "a query the index cannot answer goes to memory: \(params)")
                }
                guard let page = answer else { continue }
                indexed += 1
                #expect(Self.same(page, expected), "\(params): index \(page.items.map(\.key.description)) \(page.totalCount) \(page.next ?? "-") / memory \(expected.items.map(\.key.description)) \(expected.totalCount) \(expected.next ?? "-")")
                // The next page through its marker answers alike too.
                if let next = page.next {
                    let q2 = try WorkloadQuery.parse(params.filter { $0.0 != "offset" } + [("continue", next)])
                    if let p2 = w.backend.workloadPage(q2) {
                        #expect(Self.same(p2, try w.inMemory(q2)), "\(params) continued")
                    }
                }
                compared += 1
            }
        }
        #expect(indexed > 300, "most random queries were answered through the index (\(indexed) of \(compared))")
        #expect(w.backend.indexPages.load(ordering: .relaxed) >= indexed)
    }

    @Test func aWriteIsInTheVeryNextList() throws {
        let w = try World()
        let q = try WorkloadQuery.parse([("namespace", "ns-a"), ("sortBy", "createdAt"), ("sortOrder", "desc"), ("limit", "5")])
        #expect(q.indexQuery != nil)
        for i in 0..<200 {
            w.clock.advance(by: 1)
            w.upsert("ns-a", "new-\(i)", queue: "q-one", type: .job, priority: 0, gpu: 1, replicas: 1, labels: [:])
            let key = ObjectKey(.workload, namespace: "ns-a", name: "new-\(i)")
            // Right after the write (the writer may not have committed it): whichever path
            // answers, the new workload is first.
            let page = try w.backend.workloadPage(q) ?? w.inMemory(q)
            #expect(page.items.first?.key == key, "write \(i) is in the very next list")
            #expect(page.totalCount == i + 1)
            w.setPhase(key, .running)
            let running = try WorkloadQuery.parse([("phase", "Running"), ("namespace", "ns-a"), ("limit", "1000")])
            let r = try w.backend.workloadPage(running) ?? w.inMemory(running)
            #expect(r.totalCount == i + 1, "status \(i) is in the very next list")
        }
        try w.settle()
        // Once the store has every write (and the events recorded after them), the index answers.
        #expect(poll(timeout: 10) { w.backend.workloadPage(q)?.items.first?.key == ObjectKey(.workload, namespace: "ns-a", name: "new-199") },
                "served by the index once settled")
    }

    @Test func byDefaultTheIndexAnswersOnlyWhenTheInMemoryListIsStale() throws {
        let w = try World(indexPages: .whenMemoryIsStale)
        w.upsert("ns-a", "one", queue: "q-one", type: .job, priority: 0, gpu: 1, replicas: 1, labels: [:])
        try w.settle()
        let q = try WorkloadQuery.parse([("sortBy", "priority")])
        #expect(w.backend.workloadPage(q) == nil, "no in-memory list yet: memory answers (and builds it)")
        _ = w.backend.list(.workload)
        #expect(w.backend.workloadPage(q) == nil, "the warm in-memory list answers")
        w.upsert("ns-a", "two", queue: "q-one", type: .job, priority: 1, gpu: 1, replicas: 1, labels: [:])
        try w.settle()
        #expect(poll(timeout: 10) { w.backend.workloadPage(q)?.totalCount == 2 }, "a change made the list stale: the index answers")
    }

    @Test func aCreateThroughTheDaemonsAPIIsInTheVeryNextList() throws {
        let d = try DaemonUnderTest(extra: ["--listen", "127.0.0.1:0", "--local-gpus", "2"] + APIEndToEndTests.runAs)
        d.write("queues.yaml", queueManifest)
        let port = try #require(d.apiPort(), "the daemon logged its API port")
        for i in 0..<8 {
            let body = APIEndToEndTests.workloadJSON("rw-\(i)", command: "sleep 30")
            let c = try rawRequest(port, "POST", "/api/v1/namespaces/team-a/workloads", headers: ["Content-Type: application/json"], body: Array(body.utf8))
            try #require(c.status == 201, "create: \(c.text)")
            let l = try rawRequest(port, "GET", "/api/v1/workloads?namespace=team-a&sortBy=createdAt&sortOrder=desc&limit=50")
            let list = try JSON.parse(l.text)
            let names = list["items"]?.arrayValue?.compactMap { $0["metadata"]?["name"]?.stringValue } ?? []
            #expect(names.contains("rw-\(i)"), "create \(i) is in the very next list: \(names)")
            #expect(list["totalCount"]?.intValue == Int64(i + 1))
        }
    }
}
