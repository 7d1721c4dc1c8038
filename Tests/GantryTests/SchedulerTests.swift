import Testing
@testable import GantryAPI
@testable import Scheduler
import ControllerRuntime

// MARK: - Builders

func res(_ gpu: Int, cpu: String? = nil, memory: String? = nil) -> ResourceList {
    var r = ResourceList()
    r["gpu"] = Quantity(units: Int64(gpu))
    if let cpu { r["cpu"] = try! Quantity.parse(cpu) }
    if let memory { r["memory"] = try! Quantity.parse(memory) }
    return r
}

func queue(parent: String? = nil, pool: String? = nil, deserved: Int? = nil, guarantee: Int? = nil, capability: Int? = nil,
           reclaimable: Bool = true, disableOversell: Bool = false, strict: Bool = false, closed: Bool = false) -> QueueSpec {
    var q = QueueSpec()
    q.parent = parent; q.resourcePool = pool
    if let deserved { q.deserved = res(deserved) }
    if let guarantee { q.guarantee = res(guarantee) }
    if let capability { q.capability = res(capability) }
    q.reclaimable = reclaimable; q.disableOversell = disableOversell
    q.queueingStrategy = strict ? .strictFIFO : .bestEffortFIFO
    q.state = closed ? .closed : .open
    return q
}

func nodeSpec(gpus: Int = 8, pool: String? = nil, type: String? = "H100", cpu: String? = nil, cordoned: Bool = false) -> NodeSpec {
    var n = NodeSpec()
    n.capacity = res(gpus, cpu: cpu)
    n.resourcePool = pool; n.gpuType = type; n.unschedulable = cordoned
    return n
}

func wkey(_ name: String, _ ns: String = "default") -> ObjectKey { ObjectKey(.workload, namespace: ns, name: name) }

/// A scheduler with a clock that advances one second per call, so creation order is submission order.
final class Sim {
    let s = SchedulerState()
    var t: Int64 = 1000
    var events: [SchedulerEvent] = []
    var last = CycleResult()

    /// `count` 8-GPU nodes and one queue "q" (no quota of its own unless given).
    static func oneQueue(nodes count: Int, _ q: QueueSpec = queue()) -> Sim {
        let sim = Sim()
        sim.nodes(count)
        sim.s.setQueue("q", spec: q)
        return sim
    }

    func nodes(_ count: Int, gpus: Int = 8, prefix: String = "n", pool: String? = nil, type: String? = "H100") {
        for i in 0..<count { s.setNode("\(prefix)\(i)", spec: nodeSpec(gpus: gpus, pool: pool, type: type)) }
    }
    func add(_ name: String, queue: String, gpu: Int, replicas: Int = 1, priority: Int = 0, gpuType: String? = nil, nodes: [String] = []) {
        t += 1
        s.setWorkload(wkey(name), WorkloadRequest(queue: queue, priority: priority, created: t, replicas: replicas, resources: res(gpu), gpuType: gpuType, specifiedNodes: nodes))
    }
    @discardableResult
    func cycle() -> CycleResult {
        t += 1
        var r = s.cycle(now: Double(t))
        // Keep cycling while a cycle made room others may use (what the controller does).
        while s.needsCycle {
            let more = s.cycle(now: Double(t))
            r.events += more.events; r.waiting += more.waiting
            if more.attempts == 0 { break }
        }
        events += r.events
        last = r
        return r
    }
    func admitted(_ name: String) -> Bool { s.isAdmitted(wkey(name)) }
    var admittedNames: Set<String> { Set(s.workloadIndex.keys.filter { s.isAdmitted($0) }.map(\.name)) }
    func reason(_ name: String) -> WaitReason? { s.waitReason(wkey(name)) }
    func preemptions() -> [(victim: String, by: String, reason: String)] {
        events.compactMap { if case .preempted(let v, let by, let r, _) = $0 { return (v.name, by.name, r) }; return nil }
    }
    func finish(_ name: String) { s.finish(wkey(name)) }
    /// The placement of an admitted workload; fails the test (not the test run) when there is none.
    func placement(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [ReplicaAssignment] {
        let a = try #require(s.assignments(wkey(name)), "\(name) has no placement", sourceLocation: sourceLocation)
        try #require(!a.isEmpty, "\(name) has an empty placement", sourceLocation: sourceLocation)
        return a
    }
    /// A queue's usage; fails the test when the queue is unknown.
    func usage(_ queue: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> QueueUsage {
        try #require(s.queueUsage(queue), "no queue \(queue)", sourceLocation: sourceLocation)
    }
}

// MARK: - Table tests

@Suite(.timeLimit(.minutes(1))) struct SchedulerScenarioTests {
    /// A cohort "ml" (no quota of its own) of research and production.
    func cohort(research: QueueSpec, production: QueueSpec) -> Sim {
        let sim = Sim()
        sim.nodes(4)
        sim.s.setQueue("ml", spec: queue())
        sim.s.setQueue("research", spec: research)
        sim.s.setQueue("production", spec: production)
        return sim
    }

    @Test func borrowsIdleQuotaUpToCapability() throws {
        let sim = cohort(research: queue(parent: "ml", deserved: 8, capability: 12), production: queue(parent: "ml", deserved: 8))
        for i in 0..<4 { sim.add("r\(i)", queue: "research", gpu: 4) }
        sim.cycle()
        #expect(sim.admittedNames == ["r0", "r1", "r2"])
        #expect(sim.reason("r3")?.reason == Reason.waitingForQuota)
        #expect(sim.reason("r3")?.message.contains("capability of 12") == true)
        let u = try sim.usage("research")
        #expect(u.allocated.gpu == 12 && u.borrowed.gpu == 4 && u.pending == 1 && u.admitted == 3)
    }

    @Test func guaranteeIsNeverLent() throws {
        let sim = cohort(research: queue(parent: "ml", deserved: 8), production: queue(parent: "ml", deserved: 8, guarantee: 6))
        for i in 0..<4 { sim.add("r\(i)", queue: "research", gpu: 4) }
        sim.cycle()
        // research may borrow only production's 2 unguaranteed GPUs: not enough for a third 4-GPU workload.
        #expect(sim.admittedNames == ["r0", "r1"])
        sim.add("small", queue: "research", gpu: 2)
        sim.cycle()
        #expect(sim.admitted("small"))
        #expect(try sim.usage("research").borrowed.gpu == 2)
        // Production still gets its guarantee at once.
        sim.add("p", queue: "production", gpu: 6)
        sim.cycle()
        #expect(sim.admitted("p"))
    }

    @Test func disableOversellStopsAtDeserved() {
        let sim = cohort(research: queue(parent: "ml", deserved: 8, disableOversell: true), production: queue(parent: "ml", deserved: 8))
        for i in 0..<3 { sim.add("r\(i)", queue: "research", gpu: 4) }
        sim.cycle()
        #expect(sim.admittedNames == ["r0", "r1"])
        #expect(sim.reason("r2")?.message.contains("disableOversell") == true)
    }

    @Test(arguments: [false, true]) func fifoStrategies(strict: Bool) {
        let sim = Sim.oneQueue(nodes: 2, queue(deserved: 8, strict: strict))
        sim.add("big", queue: "q", gpu: 16)
        sim.add("small", queue: "q", gpu: 4)
        sim.cycle()
        #expect(!sim.admitted("big"))
        #expect(sim.admitted("small") == !strict)
        if strict { #expect(sim.reason("small")?.message.contains("waiting behind default/big") == true) }
        #expect(sim.s.position(wkey("big")) == 0)
        #expect(sim.s.position(wkey("small")) == (strict ? 1 : nil))
    }

    @Test func gangIsAllOrNothingAcrossNodes() throws {
        let sim = Sim.oneQueue(nodes: 2)
        sim.add("three", queue: "q", gpu: 8, replicas: 3)
        sim.cycle()
        #expect(!sim.admitted("three"))
        #expect(sim.reason("three")?.reason == Reason.noFittingNodes)
        #expect(try #require(sim.s.nodeUsage("n0")).allocated.gpu == 0 && #require(sim.s.nodeUsage("n1")).allocated.gpu == 0)
        sim.add("two", queue: "q", gpu: 8, replicas: 2)
        sim.cycle()
        let a = try sim.placement("two")
        #expect(a.map(\.node).sorted() == ["n0", "n1"] && a.allSatisfy { $0.gpus == Array(0..<8) })
        #expect(a.map(\.rank) == [0, 1])
    }

    @Test func binPacksOntoTheFullestNodeAndFewestNodes() throws {
        let sim = Sim.oneQueue(nodes: 3)
        sim.add("a", queue: "q", gpu: 4)
        sim.cycle()
        let first = try sim.placement("a")[0].node
        sim.add("b", queue: "q", gpu: 4)
        sim.cycle()
        #expect(try sim.placement("b")[0].node == first)
        #expect(try sim.placement("b")[0].gpus == [4, 5, 6, 7])
        // Four 2-GPU replicas: one empty node takes them all, not two half nodes.
        sim.add("c", queue: "q", gpu: 2, replicas: 4)
        sim.cycle()
        #expect(Set(try sim.placement("c").map(\.node)).count == 1)
    }

    @Test func gpuTypeAndSpecifiedNodes() throws {
        let sim = Sim()
        sim.nodes(2, type: "H100")
        sim.nodes(2, prefix: "a", type: "A100")
        sim.s.setQueue("q", spec: queue())
        sim.add("a100", queue: "q", gpu: 8, replicas: 2, gpuType: "A100")
        sim.add("pinned", queue: "q", gpu: 1, replicas: 2, nodes: ["n1", "n0"])
        sim.add("missing", queue: "q", gpu: 1, nodes: ["nope"])
        sim.add("l40", queue: "q", gpu: 1, gpuType: "L40")
        sim.cycle()
        #expect(Set(try sim.placement("a100").map(\.node)) == ["a0", "a1"])
        #expect(try sim.placement("pinned").map(\.node) == ["n1", "n0"])
        #expect(sim.reason("missing")?.message.contains("\"nope\" does not exist") == true)
        #expect(sim.reason("l40")?.reason == Reason.noFittingNodes)
    }

    @Test func cordonedNodesTakeNothingNew() {
        let sim = Sim()
        sim.s.setNode("n0", spec: nodeSpec(cordoned: true))
        sim.s.setQueue("q", spec: queue())
        sim.add("w", queue: "q", gpu: 1)
        sim.cycle()
        #expect(!sim.admitted("w"))
        sim.s.setNode("n0", spec: nodeSpec())
        sim.cycle()
        #expect(sim.admitted("w"))
    }

    @Test func priorityPreemptionWithinTheQueue() {
        let sim = Sim.oneQueue(nodes: 1, queue(deserved: 8))
        sim.add("low-old", queue: "q", gpu: 4, priority: -1)
        sim.add("low-new", queue: "q", gpu: 4, priority: -1)
        sim.cycle()
        #expect(sim.admittedNames == ["low-old", "low-new"])
        sim.add("same", queue: "q", gpu: 4, priority: -1)
        sim.cycle()
        #expect(!sim.admitted("same") && sim.preemptions().isEmpty)
        sim.add("high", queue: "q", gpu: 4, priority: 1)
        sim.cycle()
        #expect(sim.admitted("high"))
        // One victim is enough: the most recently admitted of the lowest priority.
        #expect(sim.preemptions().map(\.victim) == ["low-new"])
        #expect(sim.preemptions().allSatisfy { $0.by == "high" && $0.reason == Reason.inQueue })
        #expect(sim.admitted("low-old") && !sim.admitted("low-new"))
        // The victim keeps its place by creation time: ahead of "same".
        #expect(sim.s.pendingOrder("q").map(\.name) == ["low-new", "same"])
    }

    @Test func noPreemptionWhenThePreemptorStillDoesNotFit() {
        let sim = Sim.oneQueue(nodes: 1)
        sim.add("low", queue: "q", gpu: 4, priority: -1)
        sim.cycle()
        sim.add("huge", queue: "q", gpu: 16, priority: 2)
        sim.cycle()
        #expect(sim.admitted("low") && !sim.admitted("huge") && sim.preemptions().isEmpty)
    }

    @Test func reclaimFromAReclaimableBorrower() {
        for reclaimable in [true, false] {
            let sim = cohort(research: queue(parent: "ml", deserved: 16), production: queue(parent: "ml", deserved: 16, reclaimable: reclaimable))
            for i in 0..<6 { sim.add("p\(i)", queue: "production", gpu: 4, priority: 2) }
            sim.cycle()
            #expect(sim.admittedNames.count == 6)   // 24 GPUs: 8 borrowed from research
            sim.add("r", queue: "research", gpu: 8, replicas: 2, priority: -1)
            sim.cycle()
            if reclaimable {
                #expect(sim.admitted("r"))
                // Only what production borrowed goes back: two 4-GPU workloads, the latest.
                #expect(Set(sim.preemptions().map(\.victim)) == ["p5", "p4"])
                #expect(sim.preemptions().allSatisfy { $0.reason == Reason.reclaimed })
            } else {
                #expect(!sim.admitted("r") && sim.preemptions().isEmpty)
            }
        }
    }

    @Test func closedAndMissingQueues() {
        let sim = Sim()
        sim.nodes(1)
        sim.s.setQueue("closed", spec: queue(closed: true))
        sim.add("a", queue: "closed", gpu: 1)
        sim.add("b", queue: "nowhere", gpu: 1)
        sim.cycle()
        #expect(sim.reason("a")?.reason == Reason.queueClosed)
        #expect(sim.reason("b")?.reason == Reason.queueNotFound)
        #expect(sim.s.position(wkey("b")) == 0)
        sim.s.setQueue("nowhere", spec: queue())
        sim.cycle()
        #expect(sim.admitted("b"))
        // Closing a queue keeps what it admitted.
        sim.s.setQueue("nowhere", spec: queue(closed: true))
        sim.cycle()
        #expect(sim.admitted("b"))
    }

    @Test func threeLevelTree() throws {
        let sim = Sim()
        sim.nodes(6)   // 48 GPUs
        sim.s.setQueue("org", spec: queue(deserved: 32))
        sim.s.setQueue("ml", spec: queue(parent: "org", deserved: 24, capability: 28))
        sim.s.setQueue("infra", spec: queue(parent: "org", deserved: 8))
        sim.s.setQueue("research", spec: queue(parent: "ml", deserved: 16))
        sim.s.setQueue("production", spec: queue(parent: "ml", deserved: 8, guarantee: 4))
        for i in 0..<10 { sim.add("r\(i)", queue: "research", gpu: 4) }
        sim.cycle()
        // research: 16 own + 4 of production's unguaranteed share + 8 of infra's idle share
        // would be 28 + production's guarantee 4 = org's 32; ml's capability (28) holds too.
        #expect(try sim.usage("research").allocated.gpu == 28)
        #expect(try sim.usage("ml").allocated.gpu == 28)
        #expect(try sim.usage("ml").borrowed.gpu == 4)
        sim.add("infra", queue: "infra", gpu: 8)
        sim.cycle()
        // infra is owed its 8 and reclaims what research borrowed from it.
        #expect(sim.admitted("infra"))
        #expect(try sim.usage("org").allocated.gpu <= 32)
        // research holds 28 of org's 32: infra's 8 take at least one reclaim.
        #expect(!sim.preemptions().isEmpty)
        #expect(sim.preemptions().allSatisfy { $0.reason == Reason.reclaimed })
    }

    @Test func fairnessFavoursTheQueueFurthestBelowItsShare() throws {
        let sim = Sim()
        sim.nodes(1)
        sim.s.setQueue("ml", spec: queue())
        sim.s.setQueue("a", spec: queue(parent: "ml", deserved: 8))
        sim.s.setQueue("b", spec: queue(parent: "ml", deserved: 8))
        for i in 0..<8 { sim.add("a\(i)", queue: "a", gpu: 1) }
        for i in 0..<8 { sim.add("b\(i)", queue: "b", gpu: 1) }
        sim.cycle()
        #expect(try sim.usage("a").allocated.gpu == 4)
        #expect(try sim.usage("b").allocated.gpu == 4)
    }

    @Test func finishingFreesRoomForTheNext() {
        let sim = Sim.oneQueue(nodes: 1)
        sim.add("a", queue: "q", gpu: 8)
        sim.add("b", queue: "q", gpu: 8)
        sim.cycle()
        #expect(sim.admittedNames == ["a"] && sim.s.position(wkey("b")) == 0)
        sim.finish("a")
        #expect(sim.s.needsCycle)
        sim.cycle()
        #expect(sim.admittedNames == ["b"])
        #expect(sim.last.positions.contains { $0.0.name == "b" && $0.1 == nil })
    }

    @Test func restoredAdmissionsAreKeptAndConflictsRefused() throws {
        let sim = Sim.oneQueue(nodes: 1)
        sim.add("a", queue: "q", gpu: 4)
        sim.add("b", queue: "q", gpu: 4)
        #expect(sim.s.restoreAdmission(wkey("a"), assignments: [ReplicaAssignment(rank: 0, node: "n0", gpus: [2, 3, 4, 5])], admittedAt: 1))
        #expect(!sim.s.restoreAdmission(wkey("b"), assignments: [ReplicaAssignment(rank: 0, node: "n0", gpus: [5, 6, 7, 0])], admittedAt: 1))
        sim.cycle()
        #expect(sim.admitted("b"))
        #expect(Set(try sim.placement("b")[0].gpus) == [0, 1, 6, 7])
    }

    @Test func nodeRemovalRequeuesItsWorkloads() throws {
        let sim = Sim.oneQueue(nodes: 2)
        sim.add("w", queue: "q", gpu: 8)
        sim.cycle()
        let node = try sim.placement("w")[0].node
        sim.s.setNode(node, spec: nil)
        sim.cycle()
        #expect(sim.events.contains { if case .evicted(let k, "NodeRemoved", _) = $0 { return k.name == "w" }; return false })
        #expect(try sim.placement("w")[0].node != node)
    }

    @Test func specChangeOfAnAdmittedWorkloadReadmitsIt() throws {
        let sim = Sim.oneQueue(nodes: 1)
        sim.add("w", queue: "q", gpu: 2)
        sim.cycle()
        sim.s.setWorkload(wkey("w"), WorkloadRequest(queue: "q", priority: 1, created: 1001, resources: res(2)))
        #expect(sim.admitted("w"))   // priority alone keeps the admission
        sim.s.setWorkload(wkey("w"), WorkloadRequest(queue: "q", priority: 1, created: 1001, resources: res(6)))
        #expect(!sim.admitted("w"))
        sim.cycle()
        #expect(try sim.placement("w")[0].gpus.count == 6)
    }

    @Test func cpuAndMemoryLimitNodes() {
        let sim = Sim()
        sim.s.setNode("n0", spec: nodeSpec(gpus: 8, cpu: "16"))
        sim.s.setQueue("q", spec: queue())
        sim.t += 1
        sim.s.setWorkload(wkey("w"), WorkloadRequest(queue: "q", created: sim.t, replicas: 3, resources: res(1, cpu: "6")))
        sim.cycle()
        #expect(!sim.admitted("w"))
        sim.s.setWorkload(wkey("w"), WorkloadRequest(queue: "q", created: sim.t, replicas: 2, resources: res(1, cpu: "6")))
        sim.cycle()
        #expect(sim.admitted("w"))
    }
}

// MARK: - Property tests

@Suite(.timeLimit(.minutes(1))) struct SchedulerPropertyTests {
    /// Usage and demand recomputed from scratch from the admitted workloads and the holds of
    /// stopping ones: no GPU index given twice, nothing past a capability, no guarantee lent.
    func checkInvariants(_ s: SchedulerState, _ context: String) {
        var gpuSeen: [String: Set<Int>] = [:]
        // GPUs of victims still stopping whose quota a nomination took over: only that
        // nomination may share them.
        var handedOver: [String: Set<Int>] = [:]
        var used: [Int: [Int64]] = [:]
        for (k, hs) in s.holds {
            for h in hs {
                for a in h.assignments {
                    for g in a.gpus {
                        #expect(gpuSeen[a.node, default: []].insert(g).inserted, "\(context): GPU \(a.node)/\(g) of the stopping \(k) given again")
                        if !h.counted { handedOver[a.node, default: []].insert(g) }
                    }
                }
                if h.counted { for a in s.queues[h.queue].path { used[a, default: []].add(h.total) } }
            }
        }
        for (i, w) in s.workloads.enumerated() where w.present && w.admitted && s.nominated.contains(Int32(i)) {
            #expect(!w.awaiting.isEmpty, "\(context): \(w.key) nominated without victims to wait for")
            for a in w.assignments {
                for g in a.gpus where !handedOver[a.node, default: []].contains(g) {
                    #expect(gpuSeen[a.node, default: []].insert(g).inserted, "\(context): GPU \(a.node)/\(g) reserved for \(w.key) given twice")
                }
            }
            for a in s.queues[w.queue].path { used[a, default: []].add(w.total) }
        }
        for (i, w) in s.workloads.enumerated() where w.present && w.admitted && !s.nominated.contains(Int32(i)) {
            #expect(w.assignments.count == w.request.replicas, "\(context): \(w.key) has \(w.assignments.count) of \(w.request.replicas) replicas placed")
            for a in w.assignments {
                #expect(a.gpus.count == w.gpusPerReplica, "\(context): replica with \(a.gpus.count) GPUs")
                for g in a.gpus {
                    let cap = s.nodes[s.nodeIndex[a.node]!].gpuCount
                    #expect(g >= 0 && g < cap, "\(context): GPU index \(g) on \(a.node) beyond \(cap)")
                    #expect(gpuSeen[a.node, default: []].insert(g).inserted, "\(context): GPU \(a.node)/\(g) given twice")
                }
            }
            for a in s.queues[w.queue].path { used[a, default: []].add(w.total) }
        }
        for (i, q) in s.queues.enumerated() {
            let u = used[i] ?? []
            for r in 0..<max(u.count, q.used.count) {
                #expect(at(u, r) == at(q.used, r), "\(context): queue \(q.name) bookkeeping drifted")
                if at(q.capNamed, r) { #expect(at(u, r) <= at(q.capability, r), "\(context): queue \(q.name) past its capability") }
            }
        }
        // No guarantee lent: in every tree, each queue's usage or guarantee (whichever is larger),
        // summed up the tree, stays within the root's deserved share.
        func demand(_ i: Int, _ r: Int) -> Int64 {
            var own: Int64 = 0
            for w in s.workloads where w.present && w.admitted && w.queue == i { own += at(w.total, r) }
            for hs in s.holds.values { for h in hs where h.queue == i && h.counted { own += at(h.total, r) } }
            for c in s.queues[i].children { own += demand(c, r) }
            return max(own, at(s.queues[i].guarantee, r))
        }
        for (i, q) in s.queues.enumerated() where q.parent == nil && q.spec != nil && at(q.managed, 0) {
            #expect(demand(i, 0) <= at(q.deserved, 0), "\(context): tree \(q.name) lends a guarantee or exceeds its share")
        }
    }

    /// What the random operations of one or more seeds made happen, so a test can show that
    /// the invariants were checked where they matter, not only on an idle cluster.
    struct Exercised {
        var preemptions = 0      // within a queue (InQueue)
        var reclaims = 0         // across queues (Reclaimed)
        var holds = 0            // admissions withdrawn while their processes ran
        var checksWithHolds = 0  // invariant checks made while something was held
        mutating func add(_ o: Exercised) {
            preemptions += o.preemptions; reclaims += o.reclaims; holds += o.holds; checksWithHolds += o.checksWithHolds
        }
    }

    static let seeds = Array(1...16) as [UInt64]

    @Test func randomOperationsKeepTheInvariants() {
        var total = Exercised()
        for seed in Self.seeds { total.add(randomOperations(seed: seed, processes: false)) }
        #expect(total.preemptions > 0, "no seed preempted within a queue")
        #expect(total.reclaims > 0, "no seed reclaimed across queues")
    }

    /// As a runtime drives it: admitted workloads get processes, and a withdrawn admission
    /// (preempted, deleted, requeued) holds its GPUs until a random later step says they are gone.
    @Test func randomOperationsWithStoppingProcessesKeepTheInvariants() {
        var total = Exercised()
        for seed in Self.seeds { total.add(randomOperations(seed: seed, processes: true)) }
        #expect(total.preemptions > 0, "no seed preempted within a queue")
        #expect(total.reclaims > 0, "no seed reclaimed across queues")
        #expect(total.holds > 0 && total.checksWithHolds > 0, "no admission was held while its processes stopped")
    }

    @discardableResult
    func randomOperations(seed: UInt64, processes: Bool) -> Exercised {
        var exercised = Exercised()
        var holdIDs = Set<Int32>()
        var rng = SplitMix64(seed: seed)
        let s = SchedulerState()
        for i in 0..<4 { s.setNode("n\(i)", spec: nodeSpec(gpus: 8, type: i < 3 ? "H100" : "A100")) }
        s.setQueue("org", spec: queue(deserved: 32))
        s.setQueue("ml", spec: queue(parent: "org", deserved: 24, capability: 28))
        s.setQueue("infra", spec: queue(parent: "org", deserved: 8, guarantee: 4, strict: true))
        s.setQueue("research", spec: queue(parent: "ml", deserved: 12, guarantee: 4))
        s.setQueue("production", spec: queue(parent: "ml", deserved: 12, capability: 20, reclaimable: Bool.random(using: &rng)))
        let names = ["infra", "research", "production"]
        var live: [ObjectKey] = []
        var pairs = Set<[String]>()
        var t = 0.0
        for step in 0..<300 {
            let op = Int.random(in: 0..<10, using: &rng)
            if op < 6 || live.isEmpty {
                let k = wkey("w\(step)")
                let req = WorkloadRequest(queue: names.randomElement(using: &rng)!, priority: Int.random(in: -1...2, using: &rng), created: Int64(step),
                                          replicas: Int.random(in: 1...3, using: &rng), resources: res([1, 2, 4, 8].randomElement(using: &rng)!),
                                          gpuType: Int.random(in: 0..<6, using: &rng) == 0 ? "A100" : nil)
                s.setWorkload(k, req)
                live.append(k)
            } else if !processes || op < 8 {
                let k = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                if processes { s.setActive(k, false) }   // it finished: its processes are gone
                s.finish(k)
            } else {
                // Deleted or suspended while it runs: the GPUs stay held.
                let k = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                s.setWorkload(k, nil)
            }
            if processes, let k = s.holds.keys.sorted().first, Int.random(in: 0..<2, using: &rng) == 0 {
                s.setActive(k, false)   // a stopping workload's processes are gone
            }
            if Int.random(in: 0..<3, using: &rng) == 0 || step == 299 {
                t += 1
                repeat {
                    let r = s.cycle(now: t)
                    for e in r.events {
                        if case .preempted(let v, let by, let reason, _) = e {
                            #expect(!pairs.contains([by.name, v.name]), "seed \(seed): \(v.name) and \(by.name) preempt each other")
                            pairs.insert([v.name, by.name])
                            if reason == Reason.inQueue { exercised.preemptions += 1 }
                            if reason == Reason.reclaimed { exercised.reclaims += 1 }
                        }
                    }
                    if processes { for w in s.workloads where w.present && s.isAdmitted(w.key) { s.setActive(w.key, true) } }
                    if r.attempts == 0 { break }
                } while s.needsCycle
                for hs in s.holds.values { for h in hs { holdIDs.insert(h.id) } }
                if !s.holds.isEmpty { exercised.checksWithHolds += 1 }
                checkInvariants(s, "seed \(seed) step \(step)")
            }
        }
        #expect(s.admittedCount > 0)
        exercised.holds = holdIDs.count
        return exercised
    }
}
