import Testing
@testable import GantryAPI
@testable import Scheduler

/// Preemption serves the preemptor: what it freed is reserved for it while the victims'
/// processes stop, and a victim is admitted again only onto what the preemptor does not need.
struct NominationTests {
    /// The reclaim case: org (32) over four 8-GPU nodes; team-a (16, capability 24,
    /// reclaimable) runs 2×8 and a borrowing 1×8; team-b (16, guarantee 8) gets a 2×8.
    func reclaimCase() -> Sim {
        let sim = Sim()
        sim.nodes(4)
        sim.s.setQueue("org", spec: queue(deserved: 32))
        sim.s.setQueue("team-a", spec: queue(parent: "org", deserved: 16, capability: 24, reclaimable: true))
        sim.s.setQueue("team-b", spec: queue(parent: "org", deserved: 16, guarantee: 8))
        sim.add("a-big", queue: "team-a", gpu: 8, replicas: 2)
        sim.cycle()
        sim.add("a-borrow", queue: "team-a", gpu: 8)
        sim.cycle()
        #expect(sim.admittedNames == ["a-big", "a-borrow"])
        // Their processes run.
        sim.s.setActive(wkey("a-big"), true)
        sim.s.setActive(wkey("a-borrow"), true)
        return sim
    }

    @Test func reclaimedCapacityGoesToThePreemptorNotBackToTheVictim() throws {
        let sim = reclaimCase()
        sim.add("b-job", queue: "team-b", gpu: 8, replicas: 2)
        sim.cycle()
        let p = sim.preemptions()
        #expect(p.count == 1)
        #expect(p.first?.victim == "a-borrow" && p.first?.by == "b-job" && p.first?.reason == Reason.reclaimed)
        // The victim's processes still run: nothing admitted on its GPUs yet.
        #expect(!sim.admitted("b-job"))
        #expect(sim.reason("b-job")?.message.contains("waiting for the workloads it preempted to stop") == true)
        let reserved = try #require(sim.s.nomination(wkey("b-job")))
        #expect(reserved.count == 2)
        // Cycles while the victim stops change nothing: the victim stays out.
        sim.cycle(); sim.cycle()
        #expect(!sim.admitted("a-borrow") && !sim.admitted("b-job"))
        // The victim's processes are gone: the preemptor is admitted where it was nominated,
        // and the victim, requeued in a cohort now full, waits.
        sim.s.setActive(wkey("a-borrow"), false)
        #expect(sim.s.needsCycle)
        sim.cycle()
        #expect(sim.admitted("b-job"))
        #expect(sim.s.assignments(wkey("b-job")) == reserved)
        #expect(!sim.admitted("a-borrow"))
        #expect(sim.preemptions().count == 1)
        let admittedEvents = sim.events.filter { if case .admitted(let k, _, _, _) = $0 { return k.name == "b-job" }; return false }
        #expect(admittedEvents.count == 1)
    }

    @Test func theVictimReturnsWhenThePreemptorNoLongerNeedsTheCapacity() {
        for how in ["deleted", "suspended", "changed"] {
            let sim = reclaimCase()
            sim.add("b-job", queue: "team-b", gpu: 8, replicas: 2)
            sim.cycle()
            #expect(sim.s.nomination(wkey("b-job")) != nil, "\(how)")
            switch how {
            case "changed":
                // Now asks for more than the cohort can give at all.
                sim.s.setWorkload(wkey("b-job"), WorkloadRequest(queue: "team-b", created: sim.t, replicas: 5, resources: res(8)))
            default:
                sim.s.setWorkload(wkey("b-job"), nil)
            }
            #expect(sim.s.nomination(wkey("b-job")) == nil, "\(how)")
            sim.s.setActive(wkey("a-borrow"), false)
            sim.cycle()
            #expect(sim.admitted("a-borrow"), "\(how): the victim is admitted again once the preemptor is gone")
            #expect(!sim.admitted("b-job"), "\(how)")
        }
    }

    /// A nomination that ends early gives the victim's stopping processes back their GPUs in
    /// the nodes' allocation as well as their quota.
    @Test func anEndedNominationRestoresTheVictimsNodeAllocation() {
        let sim = reclaimCase()
        func allocatedGPUs() -> Int64 { sim.s.nodeNames.reduce(0) { $0 + (sim.s.nodeUsage($1)?.allocated.gpu ?? 0) } }
        #expect(allocatedGPUs() == 24)
        sim.add("b-job", queue: "team-b", gpu: 8, replicas: 2)
        sim.cycle()
        #expect(sim.s.nomination(wkey("b-job")) != nil)
        #expect(allocatedGPUs() == 32)   // a-big 16, b-job's reservation 16 (over a-borrow's 8)
        sim.s.setWorkload(wkey("b-job"), nil)
        #expect(allocatedGPUs() == 24)   // a-big 16, a-borrow's stopping processes 8
        #expect(sim.s.queueUsage("team-a")?.allocated.gpu == 24)
        sim.s.setActive(wkey("a-borrow"), false)
        #expect(allocatedGPUs() == 16)
    }

    @Test func aHigherPriorityWorkloadMayTakeANomination() {
        let sim = Sim.oneQueue(nodes: 1, queue(deserved: 8))
        sim.add("low", queue: "q", gpu: 8, priority: -1)
        sim.cycle()
        sim.s.setActive(wkey("low"), true)
        sim.add("mid", queue: "q", gpu: 8, priority: 0)
        sim.cycle()
        #expect(sim.s.nomination(wkey("mid")) != nil)
        sim.add("high", queue: "q", gpu: 8, priority: 2)
        sim.cycle()
        // high takes mid's reservation (mid never ran on it) and waits for low's processes.
        #expect(sim.s.nomination(wkey("mid")) == nil)
        #expect(sim.s.nomination(wkey("high")) != nil)
        sim.s.setActive(wkey("low"), false)
        sim.cycle()
        #expect(sim.admitted("high"))
        #expect(!sim.admitted("mid") && !sim.admitted("low"))
        // Each victim preempted once, by one preemptor.
        let pairs = sim.preemptions().map { "\($0.victim)<-\($0.by)" }
        #expect(Set(pairs).count == pairs.count)
        #expect(pairs.contains("low<-mid") && pairs.contains("mid<-high"))
    }

    @Test func aRemovedNodeEndsTheNomination() {
        let sim = Sim.oneQueue(nodes: 2, queue(deserved: 16))
        sim.add("low", queue: "q", gpu: 8, replicas: 2, priority: -1)
        sim.cycle()
        sim.s.setActive(wkey("low"), true)
        sim.add("high", queue: "q", gpu: 8, replicas: 2, priority: 1)
        sim.cycle()
        #expect(sim.s.nomination(wkey("high")) != nil)
        sim.s.setNode("n1", spec: nil)
        #expect(sim.s.nomination(wkey("high")) == nil)
        // The reservation ends with the reason (the evicted event names the node).
        sim.cycle()
        #expect(sim.events.contains { if case .evicted(let k, "NodeRemoved", _) = $0 { return k.name == "high" }; return false })
        sim.s.setActive(wkey("low"), false)
        sim.cycle()
        // One node left: neither 2×8 fits, and nothing is held.
        #expect(!sim.admitted("high"))
        #expect(sim.s.nodeUsage("n0")?.freeGPUs.count == 8)
    }

    /// A workload that names no resources (only a command) is admitted with no GPUs, next
    /// to workloads that use them, and counts against no GPU quota.
    @Test(arguments: [queue(), queue(deserved: 8), queue(deserved: 8, capability: 8, disableOversell: true)])
    func aWorkloadWithoutResourcesIsAdmitted(q: QueueSpec) {
        let sim = Sim.oneQueue(nodes: 1, q)
        sim.s.setWorkload(wkey("bare"), WorkloadRequest(queue: "q", created: 1, replicas: 1, resources: ResourceList()))
        sim.s.setWorkload(wkey("bare3"), WorkloadRequest(queue: "q", created: 2, replicas: 3, resources: ResourceList()))
        sim.cycle()
        #expect(sim.admitted("bare") && sim.admitted("bare3"))
        #expect(sim.s.assignments(wkey("bare3"))?.allSatisfy { $0.gpus.isEmpty } == true)
        #expect(sim.s.assignments(wkey("bare3"))?.count == 3)
        #expect(sim.s.queueUsage("q")?.allocated.gpu == 0)
        // A bare node (no capacity named at all) takes them too.
        let bare = Sim()
        bare.s.setNode("empty", spec: NodeSpec())
        bare.s.setQueue("q", spec: q)
        bare.s.setWorkload(wkey("bare"), WorkloadRequest(queue: "q", created: 1, replicas: 2, resources: ResourceList()))
        bare.cycle()
        #expect(bare.admitted("bare"))
    }

    /// Amounts whose sums pass Int64 never trap: such a request simply does not fit.
    @Test func hugeRequestsDoNotTrap() throws {
        let sim = Sim()
        sim.s.setNode("n0", spec: nodeSpec(gpus: 8, cpu: "64"))
        sim.s.setQueue("q", spec: queue(deserved: 8))
        var r = ResourceList()
        r["memory"] = try Quantity.parse("8Pi")
        r["cpu"] = try Quantity.parse("9000000000000000")
        sim.s.setWorkload(wkey("huge"), WorkloadRequest(queue: "q", created: 1, replicas: 10_000, resources: r))
        var g = ResourceList()
        g["gpu"] = Quantity(units: 9_000_000_000_000_000)
        sim.s.setWorkload(wkey("gpus"), WorkloadRequest(queue: "q", created: 2, replicas: 10_000, resources: g))
        sim.cycle()
        #expect(!sim.admitted("huge") && !sim.admitted("gpus"))
        #expect(sim.reason("gpus") != nil)
    }
}

/// Queue bookkeeping stays exact while parents form a loop and after the loop is broken.
struct QueueLoopTests {
    @Test func usageStaysExactThroughAParentLoop() {
        let sim = Sim()
        sim.nodes(1)
        sim.s.setQueue("a", spec: queue(deserved: 8))
        sim.s.setQueue("b", spec: queue(parent: "a", deserved: 8))
        sim.add("w1", queue: "b", gpu: 4)
        sim.add("w2", queue: "a", gpu: 2)
        sim.cycle()
        #expect(sim.admitted("w1") && sim.admitted("w2"))
        #expect(sim.s.queueUsage("a")?.allocated.gpu == 6)
        // a's parent becomes its own child: both loop, and each keeps only its own usage.
        sim.s.setQueue("a", spec: queue(parent: "b", deserved: 8))
        #expect(sim.s.queueUsage("a")?.allocated.gpu == 2)
        #expect(sim.s.queueUsage("b")?.allocated.gpu == 4)
        sim.add("w3", queue: "b", gpu: 1)
        sim.cycle()
        #expect(!sim.admitted("w3"))
        #expect(sim.reason("w3")?.message.contains("loops") == true)
        sim.finish("w1"); sim.finish("w2")
        #expect(sim.s.queueUsage("a")?.allocated.gpu == 0)
        #expect(sim.s.queueUsage("b")?.allocated.gpu == 0)
        // A queue hanging below the loop is inactive too.
        sim.s.setQueue("c", spec: queue(parent: "a", deserved: 8))
        sim.add("w4", queue: "c", gpu: 1)
        sim.cycle()
        #expect(!sim.admitted("w4"))
        // Broken again: everything adds up from zero.
        sim.s.setQueue("a", spec: queue(deserved: 8))
        sim.cycle()
        #expect(sim.admitted("w3") && sim.admitted("w4"))
        #expect(sim.s.queueUsage("a")?.allocated.gpu == 2)
        for q in ["a", "b", "c"] { #expect((sim.s.queueUsage(q)?.allocated.gpu ?? -1) >= 0) }
    }
}

/// Placement through the API with a node named twice in specifiedNodes (validation refuses it
/// in manifests): never the same GPU twice.
struct SpecifiedNodesTwiceTests {
    @Test func aNodeNamedTwiceTakesTwoReplicasOnDistinctGPUs() {
        let sim = Sim()
        sim.s.setNode("small", spec: nodeSpec(gpus: 2))
        sim.s.setNode("big", spec: nodeSpec(gpus: 4))
        sim.s.setQueue("q", spec: queue())
        sim.add("two-on-small", queue: "q", gpu: 2, replicas: 2, nodes: ["small", "small"])
        sim.add("two-on-big", queue: "q", gpu: 2, replicas: 2, nodes: ["big", "big"])
        sim.cycle()
        #expect(!sim.admitted("two-on-small"))
        #expect(sim.s.nodeUsage("small")?.freeGPUs == [0, 1])
        #expect(sim.s.assignments(wkey("two-on-big"))?.map(\.gpus) == [[0, 1], [2, 3]])
        #expect(sim.s.nodeUsage("big")?.freeGPUs == [])
    }
}

/// Quota sums saturate instead of trapping; once something leaves a saturated sum, the queue
/// usage is recounted, so it is exact again (and later decisions see the right usage).
struct SaturationTests {
    /// Two holds of one key, each near the limit: releasing them recounts once, never
    /// subtracting a hold the recount already left out.
    @Test func releasingSeveralSaturatingHoldsLeavesExactUsage() {
        let sim = Sim.oneQueue(nodes: 2)
        var huge = res(0); huge["cpu"] = Quantity(milli: 9_000_000_000_000_000_000)
        let req = WorkloadRequest(queue: "q", created: 1, resources: huge)
        #expect(sim.s.hold(wkey("h"), req, assignments: [ReplicaAssignment(rank: 0, node: "n0", gpus: [])]))
        #expect(sim.s.hold(wkey("h"), req, assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [])]))
        var one = res(0); one["cpu"] = Quantity(units: 1)
        sim.s.setWorkload(wkey("one"), WorkloadRequest(queue: "q", created: 2, resources: one))
        sim.cycle()
        #expect(sim.admitted("one"))
        sim.s.setActive(wkey("h"), false)
        #expect(sim.s.queueUsage("q")?.allocated.amounts["cpu"]?.milli == 1000)
    }

    @Test func aSaturatedQueueSumIsExactAgainWhenTheHugeWorkloadLeaves() throws {
        let sim = Sim.oneQueue(nodes: 1)
        var small = res(0); small["example.com/foo"] = Quantity(units: 1)
        var huge = res(0); huge["example.com/foo"] = Quantity(milli: 9_000_000_000_000_000_000)
        sim.s.setWorkload(wkey("small"), WorkloadRequest(queue: "q", created: 1, resources: small))
        sim.s.setWorkload(wkey("huge"), WorkloadRequest(queue: "q", created: 2, replicas: 2, resources: huge))
        sim.cycle()
        #expect(sim.admitted("small") && sim.admitted("huge"))
        #expect(sim.s.queueUsage("q")?.allocated.amounts["example.com/foo"]?.milli == Int64.max)
        sim.finish("huge")
        #expect(sim.s.queueUsage("q")?.allocated.amounts["example.com/foo"]?.milli == 1000)
        // The resource becomes managed: the quota check sees the exact usage.
        var q = queue(); q.deserved = small; q.deserved["example.com/foo"] = Quantity(units: 2)
        sim.s.setQueue("q", spec: q)
        sim.s.setWorkload(wkey("one-more"), WorkloadRequest(queue: "q", created: 3, resources: small))
        sim.s.setWorkload(wkey("too-many"), WorkloadRequest(queue: "q", created: 4, resources: small))
        sim.cycle()
        #expect(sim.admitted("one-more"))
        #expect(!sim.admitted("too-many"))
    }
}
