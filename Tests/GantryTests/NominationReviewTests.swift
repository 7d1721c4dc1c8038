import Testing
@testable import GantryAPI
@testable import Scheduler
import ControllerRuntime

/// Adversarial cases of nominations: the same victim awaited through two paths, nominations
/// that end early, holds with CPU still in use, node shrink and growth.
struct NominationEdgeTests {
    /// Sum of gpuUsed over a node (every placement, hold and nomination counts its GPUs once).
    func used(_ sim: Sim, _ node: String) -> [Int32] { sim.s.nodes[sim.s.nodeIndex[node]!].gpuUsed }

    /// A nomination whose `awaiting` names the same key twice (it inherited the key from a
    /// nominated victim and also preempted that key's new admission) lifts that key's holds
    /// twice when it is itself a candidate: vacate stops at 0, occupy does not, and the GPUs
    /// are counted once too often for good.
    @Test func duplicateAwaitedKeyLeaksGPUs() {
        let sim = Sim.oneQueue(nodes: 2)
        sim.add("low", queue: "q", gpu: 8, priority: -1)
        sim.add("filler", queue: "q", gpu: 8, priority: 5)
        sim.cycle()
        #expect(sim.admitted("low") && sim.admitted("filler"))
        sim.s.setActive(wkey("low"), true)
        sim.add("mid", queue: "q", gpu: 8, priority: 0)
        sim.cycle()
        #expect(sim.s.nomination(wkey("mid")) != nil)
        // Capacity comes back elsewhere: low is admitted again while its old processes stop.
        sim.finish("filler")
        sim.cycle()
        #expect(sim.admitted("low"))
        // high needs both nodes: it takes mid's nomination and low's new admission.
        sim.add("high", queue: "q", gpu: 8, replicas: 2, priority: 2)
        sim.cycle()
        #expect(sim.s.nomination(wkey("high")) != nil)
        #expect(sim.s.workloads[Int(sim.s.workloadIndex[wkey("high")]!)].awaiting.count == 1) // low once, though reached twice
        // top takes high's nomination.
        sim.add("top", queue: "q", gpu: 8, replicas: 2, priority: 3)
        sim.cycle()
        #expect(sim.s.nomination(wkey("top")) != nil)
        // low's processes go; top is admitted; then everything finishes.
        sim.s.setActive(wkey("low"), false)
        sim.cycle()
        #expect(sim.admitted("top"))
        for n in ["top", "high", "mid", "low"] { sim.finish(n) }
        sim.cycle()
        #expect(used(sim, "n0") == Array(repeating: 0, count: 8), "n0 gpuUsed \(used(sim, "n0"))")
        #expect(used(sim, "n1") == Array(repeating: 0, count: 8), "n1 gpuUsed \(used(sim, "n1"))")
        #expect(sim.s.nodeUsage("n0")?.freeGPUs.count == 8)
        #expect(sim.s.nodeUsage("n0")?.workloads == 0)
        // And a new 2x8 workload fits again.
        sim.add("after", queue: "q", gpu: 8, replicas: 2)
        sim.cycle()
        #expect(sim.admitted("after"))
    }

    /// The double lift can also free, in a simulation, GPUs a third nomination (not a
    /// candidate) holds: two nominations end up on the same GPUs and both are admitted.
    @Test func doubleLiftGivesAGPUTwice() {
        let sim = Sim.oneQueue(nodes: 4)
        sim.add("v", queue: "q", gpu: 8, priority: -1)
        sim.cycle()
        for i in 1...3 { sim.add("f\(i)", queue: "q", gpu: 8, priority: 10) }
        sim.cycle()
        #expect(sim.s.assignments(wkey("v"))?.first?.node == "n0")
        sim.s.setActive(wkey("v"), true)
        sim.add("y", queue: "q", gpu: 8, priority: 5)
        sim.cycle()
        #expect(sim.s.nomination(wkey("y"))?.first?.node == "n0")
        sim.finish("f1"); sim.cycle()                    // v admitted again on n1, old processes on n0
        #expect(sim.s.assignments(wkey("v"))?.first?.node == "n1")
        sim.add("m", queue: "q", gpu: 8, priority: 0)
        sim.cycle()
        #expect(sim.s.nomination(wkey("m"))?.first?.node == "n1")
        sim.finish("f2"); sim.cycle()                    // v admitted a third time, on n2
        #expect(sim.s.assignments(wkey("v"))?.first?.node == "n2")
        sim.add("n", queue: "q", gpu: 8, replicas: 2, priority: 1)
        sim.cycle()
        #expect(sim.s.nomination(wkey("n")) != nil)      // awaiting [v, v]
        sim.add("p", queue: "q", gpu: 8, replicas: 2, priority: 4)
        sim.cycle()
        let y = sim.s.nomination(wkey("y")) ?? [], p = sim.s.nomination(wkey("p")) ?? []
        let shared = Set(y.map(\.node)).intersection(p.map(\.node))
        #expect(shared.isEmpty, "y and p both reserve \(shared)")
        sim.s.setActive(wkey("v"), false)
        sim.cycle()
        let ya = sim.s.assignments(wkey("y")) ?? [], pa = sim.s.assignments(wkey("p")) ?? []
        let both = Set(ya.map(\.node)).intersection(pa.map(\.node))
        #expect(both.isEmpty, "y \(ya) and p \(pa) admitted on the same GPUs of \(both)")
    }

    /// A nomination that ends without being promoted (deleted, suspended, spec changed, node
    /// gone) leaves the victims' holds uncounted: their processes still run, but their queue
    /// no longer pays for them, so the victim comes back past its capability.
    @Test func endedNominationLeavesHoldsUncounted() {
        let sim = NominationTests().reclaimCase()
        sim.add("b-job", queue: "team-b", gpu: 8, replicas: 2)
        sim.cycle()
        #expect(sim.s.nomination(wkey("b-job")) != nil)
        sim.s.setWorkload(wkey("b-job"), nil)     // deleted (or suspended) while a-borrow stops
        // a-borrow's processes still run on 8 GPUs: team-a uses 24.
        #expect(sim.s.queueUsage("team-a")?.allocated.gpu == 24)
        sim.cycle()
        // Admitted again on another node while its old processes run: 32 GPUs in use by a
        // queue whose capability is 24.
        #expect(!sim.admitted("a-borrow"), "a-borrow re-admitted while its processes still run: team-a past capability 24")
    }

    /// transferHold drops the victim's CPU/memory from the node while its processes still run:
    /// a CPU-only workload lands on CPU still in use.
    @Test func transferredHoldFreesCPUStillInUse() {
        let sim = Sim()
        sim.s.setNode("n0", spec: nodeSpec(gpus: 8, cpu: "64"))
        sim.s.setQueue("q", spec: queue())
        sim.s.setWorkload(wkey("low"), WorkloadRequest(queue: "q", priority: -1, created: 1, resources: res(8, cpu: "60")))
        sim.cycle()
        sim.s.setActive(wkey("low"), true)
        sim.s.setWorkload(wkey("high"), WorkloadRequest(queue: "q", priority: 1, created: 2, resources: res(8, cpu: "4")))
        sim.cycle()
        #expect(sim.s.nomination(wkey("high")) != nil)
        // low's 60 CPUs are still in use.
        sim.s.setWorkload(wkey("cpu"), WorkloadRequest(queue: "q", priority: 0, created: 3, resources: res(0, cpu: "50")))
        sim.cycle()
        #expect(!sim.admitted("cpu"), "50 CPUs admitted on a 64-CPU node where low's processes still use 60")
    }

    /// Inheriting a key transfers that key's newest hold even when it is a counted hold of an
    /// unrelated withdrawal (not the one the nominated victim waited for): its quota vanishes
    /// while its GPUs stay taken.
    @Test func inheritedKeyTransfersAnUnrelatedHold() {
        let sim = Sim.oneQueue(nodes: 2)
        sim.add("low", queue: "q", gpu: 8, priority: -1)
        sim.add("filler", queue: "q", gpu: 8, priority: 5)
        sim.cycle()
        sim.s.setActive(wkey("low"), true)
        sim.add("mid", queue: "q", gpu: 8, priority: 0)
        sim.cycle()
        #expect(sim.s.nomination(wkey("mid")) != nil)
        sim.finish("filler")
        sim.cycle()
        #expect(sim.admitted("low"))              // on n1, old processes still on n0
        sim.s.requeue(wkey("low"), reason: "NodeChanged", message: "x")   // counted hold on n1
        #expect(sim.s.queueUsage("q")?.allocated.gpu == 16)              // mid 8 + low's hold 8
        sim.add("high", queue: "q", gpu: 8, priority: 2)
        sim.cycle()
        #expect(sim.s.nomination(wkey("high")) != nil)
        // high (8) on n0 + low's counted hold (8, n1) still running.
        #expect(sim.s.queueUsage("q")?.allocated.gpu == 16, "usage \(String(describing: sim.s.queueUsage("q")?.allocated.gpu))")
    }

    /// Holds: shrink a node under a nomination and its awaited hold, grow it back (holds.)
    @Test func shrinkAndGrowUnderANomination() {
        let sim = Sim.oneQueue(nodes: 1)
        sim.add("keep", queue: "q", gpu: 4, priority: 5)
        sim.add("low", queue: "q", gpu: 4, priority: -1)
        sim.cycle()
        #expect(sim.s.assignments(wkey("low"))?.first?.gpus == [4, 5, 6, 7])
        sim.s.setActive(wkey("low"), true)
        sim.add("high", queue: "q", gpu: 4, priority: 1)
        sim.cycle()
        #expect(sim.s.nomination(wkey("high"))?.first?.gpus == [4, 5, 6, 7])
        sim.s.setNode("n0", spec: nodeSpec(gpus: 4))
        #expect(sim.s.nomination(wkey("high")) == nil)
        #expect(sim.s.nodeUsage("n0")?.freeGPUs == [])
        sim.s.setNode("n0", spec: nodeSpec(gpus: 8))
        #expect(sim.s.nodeUsage("n0")?.freeGPUs == [])     // low's processes still on 4..7
        sim.cycle()
        #expect(!sim.admitted("high"))
        sim.s.setActive(wkey("low"), false)
        sim.cycle()
        #expect(sim.admitted("high"))
        #expect(sim.s.assignments(wkey("high"))?.first?.gpus == [4, 5, 6, 7])
        sim.finish("high"); sim.finish("keep"); sim.finish("low")
        #expect(used(sim, "n0") == Array(repeating: 0, count: 8))
        #expect(sim.s.nodeUsage("n0")?.freeGPUs.count == 8)
    }
}

/// Random operations, including ones the scheduler property test does not do (requeue,
/// readmission while processes stop, node shrink/grow/removal/cordon, priority changes),
/// checked against a from-scratch recount of every per-GPU count and bookkeeping table.
struct NominationRecountPropertyTests {
    func recount(_ s: SchedulerState, _ ctx: String) {
        var gpu: [Int: [Int: Int32]] = [:]
        var wl: [Int: [Int32: Int]] = [:]
        func add(_ asg: [ReplicaAssignment], _ idx: [Int], _ id: Int32) {
            for (a, n) in zip(asg, idx) {
                for g in a.gpus { gpu[n, default: [:]][g, default: 0] += 1 }
                wl[n, default: [:]][id, default: 0] += 1
            }
        }
        var admittedPerQueue: [Int: Set<Int32>] = [:]
        for (i, w) in s.workloads.enumerated() where w.present && w.admitted {
            add(w.assignments, w.nodeIdx, Int32(i))
            admittedPerQueue[w.queue, default: []].insert(Int32(i))
        }
        for (k, hs) in s.holds { for h in hs { add(h.assignments, h.nodeIdx, h.id); _ = k } }
        for (n, node) in s.nodes.enumerated() {
            for g in 0..<node.gpuUsed.count {
                #expect(node.gpuUsed[g] == gpu[n]?[g] ?? 0, "\(ctx): \(node.name) gpuUsed[\(g)] = \(node.gpuUsed[g]), recounted \(gpu[n]?[g] ?? 0)")
            }
            let free = (0..<node.gpuCount).filter { node.gpuUsed[$0] == 0 }.count
            #expect(node.freeGPUs == free, "\(ctx): \(node.name) freeGPUs \(node.freeGPUs), recounted \(free)")
            #expect(node.workloads == (wl[n] ?? [:]), "\(ctx): \(node.name) workloads \(node.workloads) recounted \(wl[n] ?? [:])")
        }
        var used: [Int: [Int64]] = [:]
        for w in s.workloads where w.present && w.admitted { for a in s.queues[w.queue].path { used[a, default: []].add(w.total) } }
        for hs in s.holds.values { for h in hs where h.counted { for a in s.queues[h.queue].path { used[a, default: []].add(h.total) } } }
        // Admissions alone stay within capability; a hold counted again when the nomination
        // that took it over ends is real usage and may pass it until its processes are gone.
        var admittedUse: [Int: [Int64]] = [:]
        for w in s.workloads where w.present && w.admitted { for a in s.queues[w.queue].path { admittedUse[a, default: []].add(w.total) } }
        for (i, q) in s.queues.enumerated() {
            for r in 0..<max(q.used.count, used[i]?.count ?? 0) {
                #expect(at(q.used, r) == at(used[i] ?? [], r), "\(ctx): \(q.name) used \(q.used) recounted \(used[i] ?? [])")
                if at(q.capNamed, r) { #expect(at(admittedUse[i] ?? [], r) <= at(q.capability, r), "\(ctx): \(q.name) past capability") }
            }
        }
        for (i, q) in s.queues.enumerated() {
            #expect(q.admittedSet == (admittedPerQueue[i] ?? []), "\(ctx): \(q.name) admittedSet")
            #expect(q.admitted == q.admittedSet.count, "\(ctx): \(q.name) admitted \(q.admitted) vs set \(q.admittedSet.count)")
        }
        for id in s.nominated {
            let w = s.workloads[Int(id)]
            #expect(w.present && w.admitted, "\(ctx): nomination \(id) not admitted/present")
            // A nominated GPU may be shared only with holds of keys it waits for.
            for (a, n) in zip(w.assignments, w.nodeIdx) {
                for g in a.gpus where (gpu[n]?[g] ?? 0) > 1 {
                    let sharers = s.holds.filter { $0.value.contains { h in zip(h.assignments, h.nodeIdx).contains { $0.1 == n && $0.0.gpus.contains(g) } } }.map(\.key)
                    for k in sharers { #expect(w.awaiting.contains(k), "\(ctx): \(w.key) shares \(s.nodes[n].name)/\(g) with \(k) it does not wait for") }
                }
            }
        }
        // Any GPU used by a (non-nominated) admission is used by nothing else.
        for (i, w) in s.workloads.enumerated() where w.present && w.admitted && !s.nominated.contains(Int32(i)) {
            for (a, n) in zip(w.assignments, w.nodeIdx) {
                for g in a.gpus { #expect((gpu[n]?[g] ?? 0) == 1, "\(ctx): admitted \(w.key) shares \(s.nodes[n].name)/\(g)") }
            }
        }
    }

    @Test(arguments: Array(1...48) as [UInt64])
    func fuzz(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let s = SchedulerState()
        for i in 0..<3 { s.setNode("n\(i)", spec: nodeSpec(gpus: 8)) }
        s.setQueue("org", spec: queue(deserved: 24))
        s.setQueue("a", spec: queue(parent: "org", deserved: 12, capability: 20, reclaimable: true))
        s.setQueue("b", spec: queue(parent: "org", deserved: 12, guarantee: 4))
        var live: [ObjectKey] = []
        var t = 0.0
        var reqs: [ObjectKey: WorkloadRequest] = [:]
        for step in 0..<400 {
            let op = Int.random(in: 0..<20, using: &rng)
            switch op {
            case 0..<7:
                let k = wkey("w\(step)")
                let r = WorkloadRequest(queue: ["a", "b"].randomElement(using: &rng)!, priority: Int.random(in: -1...3, using: &rng), created: Int64(step),
                                        replicas: Int.random(in: 1...2, using: &rng), resources: res([1, 2, 4, 8].randomElement(using: &rng)!))
                s.setWorkload(k, r); reqs[k] = r; live.append(k)
            case 7, 8:
                if let k = s.holds.keys.sorted().randomElement(using: &rng) { s.setActive(k, false) }
            case 9 where !live.isEmpty:
                let k = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                s.setActive(k, false); s.finish(k)
            case 10 where !live.isEmpty:
                let k = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                s.setWorkload(k, nil)
            case 11 where !live.isEmpty:
                s.requeue(live.randomElement(using: &rng)!, reason: "R", message: "r")
            case 12 where !live.isEmpty:
                let k = live.randomElement(using: &rng)!
                var r = reqs[k]!; r.priority = Int.random(in: -1...3, using: &rng); reqs[k] = r
                s.setWorkload(k, r)
            case 13 where !live.isEmpty:
                let k = live.randomElement(using: &rng)!
                var r = reqs[k]!; r.replicas = Int.random(in: 1...2, using: &rng); r.resources = res([1, 2, 4].randomElement(using: &rng)!); reqs[k] = r
                s.setWorkload(k, r)
            case 14:
                let n = "n\(Int.random(in: 0..<3, using: &rng))"
                s.setNode(n, spec: nodeSpec(gpus: [4, 6, 8].randomElement(using: &rng)!, cordoned: Int.random(in: 0..<4, using: &rng) == 0))
            case 15:
                let n = "n\(Int.random(in: 0..<3, using: &rng))"
                s.setNode(n, spec: nil)
            default:
                break
            }
            if Int.random(in: 0..<2, using: &rng) == 0 {
                t += 1
                var rounds = 0
                repeat {
                    let r = s.cycle(now: t)
                    for w in s.workloads where w.present && s.isAdmitted(w.key) { s.setActive(w.key, true) }
                    rounds += 1
                    #expect(rounds < 200, "seed \(seed) step \(step): needsCycle loops")
                    if r.attempts == 0 && r.events.isEmpty || rounds >= 200 { break }
                } while s.needsCycle
            }
            recount(s, "seed \(seed) step \(step)")
        }
        // Everything stops: every nomination is promoted, nothing is left held.
        for _ in 0..<50 where !s.holds.isEmpty || !s.nominated.isEmpty {
            for k in s.holds.keys.sorted() { s.setActive(k, false) }
            t += 1; _ = s.cycle(now: t)
        }
        #expect(s.nominated.isEmpty, "seed \(seed): nominations left \(s.nominated)")
        for k in live { s.setActive(k, false); s.finish(k) }
        for k in s.holds.keys.sorted() { s.setActive(k, false) }
        recount(s, "seed \(seed) end")
        for n in s.nodes where n.present { #expect(n.freeGPUs == n.gpuCount, "seed \(seed): \(n.name) \(n.freeGPUs)/\(n.gpuCount) free at the end") }
        for q in s.queues { #expect(q.used.allSatisfy { $0 == 0 }, "seed \(seed): \(q.name) used \(q.used) at the end") }
    }
}
