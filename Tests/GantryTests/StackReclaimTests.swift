import Testing
import Foundation
@testable import GantryAPI
@testable import ControllerRuntime
@testable import Controllers

/// The reclaim scenario of the issue, through the whole controller stack.
struct StackReclaimTests {
    static let cluster = (1...4).map { "apiVersion: gantry.dev/v1alpha1\nkind: Node\nmetadata: {name: n\($0)}\nspec: {resourcePool: p, capacity: {gpu: 8}}\n" }
        .joined(separator: "---\n") + "---\napiVersion: gantry.dev/v1alpha1\nkind: ResourcePool\nmetadata: {name: p}\n"
    static let queues = """
        apiVersion: gantry.dev/v1alpha1
        kind: Queue
        metadata: {name: org}
        spec: {resourcePool: p, deserved: {gpu: 32}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Queue
        metadata: {name: team-a}
        spec: {parent: org, deserved: {gpu: 16}, capability: {gpu: 24}, reclaimable: true}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Queue
        metadata: {name: team-b}
        spec: {parent: org, deserved: {gpu: 16}, guarantee: {gpu: 8}}

        """
    static func job(_ name: String, queue: String, replicas: Int) -> String {
        "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name), namespace: ml}\nspec:\n  type: PyTorchJob\n  queue: \(queue)\n  command: train\n  replicas: \(replicas)\n  resources: {gpu: 8}\n"
    }
    static func key(_ name: String) -> ObjectKey { ObjectKey(.workload, namespace: "ml", name: name) }

    /// A cycle's statuses made in parallel (as the first pass of a load makes them) are the
    /// statuses made one by one: the same manifests (workloads admitted, waiting for quota,
    /// for room, too large for any node, suspended, invalid) in two stacks, byte for byte.
    @Test(arguments: [1, 2, 3])
    func statusesMadeInParallelEqualThoseMadeOneByOne(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var docs: [String] = []
        for i in 0..<300 {
            let gpu = [1, 2, 4, 8, 16][Int(rng.next() % 5)]
            let extra = rng.next() % 10 == 0 ? "  suspend: true\n" : rng.next() % 10 == 0 ? "  replicas: 0\n" : ""
            docs.append("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: w\(i), namespace: ml}\nspec:\n  queue: \(["team-a", "team-b", "nowhere"][Int(rng.next() % 3)])\n"
                + "  command: train\n  priority: \(rng.next() % 4)\n  replicas: \(1 + rng.next() % 2)\n  resources: {gpu: \(gpu)}\n" + extra)
        }
        func statuses(parallelFrom: Int) -> [String] {
            var h = StackHarness()
            h.admission.parallelStatusesFrom = parallelFrom
            h.apply("cluster.yaml", Self.cluster)
            h.apply("queues.yaml", Self.queues)
            h.apply("workloads.yaml", docs.joined(separator: "---\n"))
            h.startAll()
            h.advance(5)
            return h.persistence.objects.keys.sorted().map { "\($0): " + (h.inventory.statuses.json($0) ?? "-") }
        }
        let one = statuses(parallelFrom: 1_000_000), parallel = statuses(parallelFrom: 2)
        #expect(one.count == 300 + 4 + 1 + 3)
        #expect(one.contains { $0.contains("\"phase\":\"Running\"") } && one.contains { $0.contains("\"queuePosition\":") })
        for (a, b) in zip(one, parallel) where a != b { Issue.record("\(a)\nagainst\n\(b)"); break }
        #expect(one.count == parallel.count)
    }

    /// team-a runs a 2x8 and a borrowing 1x8; a 2x8 arrives in team-b and reclaims the 1x8,
    /// whose replica is slow to stop. Once it is gone, team-b's workload must get the GPUs;
    /// the victim must not take them back, and nobody is preempted twice by the same workload.
    @Test func reclaimedVictimDoesNotTakeBackTheGPUsItsPreemptorWaitsFor() {
        var h = StackHarness(grace: 30)
        h.apply("cluster.yaml", Self.cluster)
        h.apply("queues.yaml", Self.queues)
        h.apply("a-big.yaml", Self.job("a-big", queue: "team-a", replicas: 2))
        h.startAll()
        h.clock.advance(by: 1)
        h.apply("a-small.yaml", Self.job("a-small", queue: "team-a", replicas: 1))
        h.startAll()
        #expect(h.status(Self.key("a-big"))?.phase == .running)
        #expect(h.status(Self.key("a-small"))?.phase == .running)
        #expect(h.queueStatus("team-a")?.allocated.gpu == 24)
        #expect(h.queueStatus("team-a")?.borrowed.gpu == 8)
        let victimGPUs = h.rt.procs("a-small").map { "\($0.node)/\($0.gpus)" }

        h.clock.advance(by: 1)
        h.apply("b-job.yaml", Self.job("b-job", queue: "team-b", replicas: 2))
        // The borrowing 1x8 is reclaimed, not the 2x8 within team-a's share.
        let pre = h.events("Preempted", "a-small")
        #expect(pre.count == 1)
        #expect(pre.first?.message.contains("ml/b-job") == true)
        let cond = h.status(Self.key("a-small"))?.conditions.get(ConditionType.preempted)
        #expect(cond?.status == "True" && cond?.reason == Reason.reclaimed)
        #expect(h.events("Preempted", "a-big").isEmpty)
        #expect(h.rt.procs("a-small").allSatisfy { $0.terminated })
        #expect(h.rt.procs("a-big").allSatisfy { !$0.terminated })
        // The victim is slow: b-job waits for it and starts nothing on GPUs still in use.
        h.advance(10)
        #expect(h.rt.launches("b-job").isEmpty)
        #expect(h.status(Self.key("b-job"))?.message.contains("waiting for the workloads it preempted to stop") == true)

        // The victim's replica is gone.
        h.exitAll("a-small", 143)
        let b = h.status(Self.key("b-job"))
        #expect(b?.conditions.get(ConditionType.admitted)?.status == "True", "b-job: \(b?.message ?? "no status")")
        #expect(h.rt.launches("b-job").count == 2)
        let small = h.status(Self.key("a-small"))
        #expect(small?.phase == .pending && small?.admission.isEmpty == true, "a-small: \(small?.phase.rawValue ?? "-") \(small?.message ?? "")")
        #expect(small?.conditions.get(ConditionType.admitted)?.status == "False")
        #expect(h.rt.launches("a-small").count == 1)
        // The only free GPUs are the 8 never used and the victim's: b-job has the victim's.
        let taken = Set((b?.admission ?? []).map { "\($0.node)/\($0.gpus)" })
        #expect(!victimGPUs.isEmpty && victimGPUs.allSatisfy { taken.contains($0) }, "b-job admitted on \(taken.sorted()), the victim ran on \(victimGPUs)")

        // While b-job runs, the victim stays out: more time and cycles change nothing.
        h.startAll("b-job")
        for _ in 0..<5 { h.advance(20) }
        #expect(h.status(Self.key("b-job"))?.phase == .running)
        #expect(h.rt.launches("a-small").count == 1)
        #expect(h.status(Self.key("a-small"))?.admission.isEmpty == true)
        #expect(h.events("Preempted", "a-small").count == 1)
        #expect(h.events("Preempted", "b-job").isEmpty && h.events("Preempted", "a-big").isEmpty)

        // b-job finishes: the victim is admitted and started again.
        h.exitAll("b-job", 0)
        #expect(h.status(Self.key("b-job"))?.phase == .succeeded)
        #expect(h.rt.launches("a-small").count == 2)
        #expect(h.status(Self.key("a-small"))?.conditions.get(ConditionType.admitted)?.status == "True")
        #expect(h.status(Self.key("a-small"))?.retryCount == 0)
    }
}
