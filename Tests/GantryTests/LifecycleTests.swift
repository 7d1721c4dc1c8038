import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import ControllerRuntime
@testable import Controllers

/// Records what the lifecycle asks of a runtime; tests play the runtime's events back.
final class FakeRuntime: ReplicaRuntime, @unchecked Sendable {
    struct State {
        var launches: [ReplicaLaunch] = []
        var signals: [(ReplicaRef, Bool)] = []
        var intents: [(ObjectKey, DispatchIntent)] = []
        var forgotten: [(ObjectKey, Int?, Bool)] = []
        var port = 29500
        var reportedStarted = Set<ReplicaRef>()
        var probeFault: InfrastructureFault?
        var probes = 0
    }
    let s = Mutex(State())
    var recovered: [ObjectKey: RecoveredDispatch] = [:]
    /// Whether the calling thread holds the admission lock; calls made under it are recorded.
    var underLock: (@Sendable () -> Bool)?
    let callsUnderLock = Mutex<[String]>([])
    func check(_ call: String) { if underLock?() == true { callsUnderLock.withLock { $0.append(call) } } }
    func start(_ handler: @escaping @Sendable (RuntimeEvent) -> Void) {}
    func prepare(_ key: ObjectKey, _ intent: DispatchIntent) { check("prepare"); s.withLock { $0.intents.append((key, intent)) } }
    func launch(_ l: ReplicaLaunch) { check("launch"); s.withLock { $0.launches.append(l) } }
    func signal(_ ref: ReplicaRef, force: Bool) { check("signal"); s.withLock { $0.signals.append((ref, force)) } }
    func forget(_ key: ObjectKey, keepDispatch: Int?, files: Bool) { check("forget"); s.withLock { $0.forgotten.append((key, keepDispatch, files)) } }
    func tail(_ key: ObjectKey, rank: Int, lines: Int) -> [String] { check("tail"); return ["boom at rank \(rank)"] }
    func workdir(_ key: ObjectKey) -> String { "/work/\(key.namespace)/\(key.name)" }
    func recover() -> [ObjectKey: RecoveredDispatch] { recovered }
    func freePort() -> Int { check("freePort"); return s.withLock { $0.port += 1; return $0.port } }
    func probe() -> InfrastructureFault? { check("probe"); return s.withLock { $0.probes += 1; return $0.probeFault } }

    var launches: [ReplicaLaunch] { s.withLock { $0.launches } }
    var signals: [(ReplicaRef, Bool)] { s.withLock { $0.signals } }
    var forgotten: [(ObjectKey, Int?, Bool)] { s.withLock { $0.forgotten } }
}

extension ReplicaLaunch {
    func env(_ name: String) -> String? { env.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } }
}

/// A harness with a fake runtime: one pool of 8-GPU nodes, queue "research" (8 GPUs).
struct LifeHarness {
    var h: Harness
    let rt = FakeRuntime()

    init(nodes: [String] = ["n1"], grace: Double = 30) {
        var o = LifecycleOptions()
        o.gracePeriod = grace
        o.specDir = "/spec"
        o.baseEnv = ["PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "7"]
        h = Harness(runtime: rt, options: o)
        let admission = h.admission
        rt.underLock = { admission.heldByCurrentThread }
        h.cluster(nodes: nodes)
    }

    func key(_ name: String) -> ObjectKey { ObjectKey(.workload, namespace: "team-a", name: name) }
    func status(_ name: String) -> WorkloadStatus? { h.workload(name) }
    func launches(_ name: String) -> [ReplicaLaunch] { rt.launches.filter { $0.ref.key.name == name } }
    func signals(_ name: String) -> [(ReplicaRef, Bool)] { rt.signals.filter { $0.0.key.name == name } }

    /// Reports every launched-but-unreported replica of `name` as started.
    func startAll(_ name: String) {
        for l in launches(name) where rt.s.withLock({ $0.reportedStarted.insert(l.ref).inserted }) {
            h.admission.runtimeEvent(.started(l.ref, pid: Int32(1000 + l.ref.rank), at: h.clock.now()))
        }
        h.drain()
    }

    /// The newest attempt of each rank of the newest dispatch exits with `code` (per rank).
    func exit(_ name: String, _ codes: [Int: Int32]) {
        let ls = launches(name)
        guard let d = ls.map(\.ref.dispatch).max() else { Issue.record("\(name) was never launched: nothing can exit"); return }
        for (rank, code) in codes.sorted(by: { $0.key < $1.key }) {
            guard let ref = ls.filter({ $0.ref.dispatch == d && $0.ref.rank == rank }).map(\.ref).max(by: { $0.attempt < $1.attempt }) else {
                Issue.record("\(name) has no rank \(rank) in dispatch \(d): it cannot exit"); continue
            }
            h.admission.runtimeEvent(.exited(ref, code: code, signal: code > 128 ? code - 128 : 0, at: h.clock.now()))
        }
        h.drain()
    }

    func advance(_ s: Double) { h.clock.advance(by: s); h.admission.tick(); h.drain() }
    func queueGPUs() -> Int64 { h.inventory.statuses.get(ObjectKey(.queue, name: "research"))?.queue?.allocated.gpu ?? -1 }
    func events(_ reason: String, _ name: String) -> [EventRecord] { h.events.all.filter { $0.reason == reason && $0.involved.name == name } }
    func node(_ name: String) -> NodeStatus? { h.inventory.statuses.get(ObjectKey(.node, name: name))?.node }

    /// The newest attempt of `rank` of the newest dispatch could not start: an infrastructure fault.
    func infraFail(_ name: String, rank: Int, _ fault: InfrastructureFault) {
        let ls = launches(name)
        guard let d = ls.map(\.ref.dispatch).max(), let ref = ls.filter({ $0.ref.dispatch == d && $0.ref.rank == rank }).map(\.ref).max(by: { $0.attempt < $1.attempt }) else { return }
        h.admission.runtimeEvent(.infrastructureFailed(ref, fault))
        h.drain()
    }
}

@Suite(.timeLimit(.minutes(1))) struct LifecycleTests {
    /// The admission loop's gathering follows the cost of its cycles: cheap cycles (the
    /// steady state of short workloads, a replica ending every few milliseconds) run within
    /// about a millisecond of a trigger, however steadily triggers come; dear ones gather up
    /// to the quiet window and the cap, so cycles never take more than about a third of the
    /// loop. (A fixed 2 ms quiet window, extended to 20 ms while triggers kept coming, left
    /// freed GPUs idle 5 ms on median between a replica's end and the next admission.)
    @Test func theAdmissionLoopGathersTriggersForTwiceItsLastRound() {
        func g(_ d: Double) -> (quiet: Double, limit: Double) { Admission.gathering(lastRound: d, minimum: 0.0005, window: 0.002, max: 0.02) }
        #expect(g(0) == (0.0005, 0.0005))
        #expect(g(0.0004) == (0.0008, 0.0008))
        #expect(g(0.003) == (0.002, 0.006))
        #expect(g(0.05) == (0.002, 0.02))
        for d in stride(from: 0.0, through: 0.03, by: 0.0007) {
            let x = g(d)
            #expect(x.quiet >= 0.0005 && x.quiet <= 0.002 && x.limit >= x.quiet && x.limit <= 0.02)
            // Whatever the loop waits is at least twice the round, until the cap.
            #expect(x.limit >= min(0.02, 2 * d))
        }
    }

    @Test func gangRunsWithItsEnvironmentAndSucceeds() throws {
        var t = LifeHarness(nodes: ["n1", "n2"])
        t.h.apply("w.yaml", workloadYAML("w", gpu: 4, extra: "  type: PyTorchJob\n  replicas: 2\n  command: python train.py\n  args: [--lr, \"0.1 x\"]\n  env: {NCCL_DEBUG: INFO, RANK: \"99\"}"))
        let ls = t.launches("w")
        try #require(ls.count == 2)
        #expect(ls.map { $0.env("RANK") } == ["0", "1"])
        #expect(ls.allSatisfy { $0.env("WORLD_SIZE") == "2" && $0.env("MASTER_ADDR") == "127.0.0.1" && $0.env("LOCAL_RANK") == "0" })
        #expect(Set(ls.map { $0.env("MASTER_PORT") }).count == 1 && ls[0].env("MASTER_PORT") != nil)
        #expect(ls.allSatisfy { $0.env("NCCL_DEBUG") == "INFO" && $0.env("PATH") == "/usr/bin:/bin" && $0.env("GANTRY_SPEC_DIR") == "/spec" })
        #expect(ls.allSatisfy { $0.env("GANTRY_WORKLOAD") == "w" && $0.env("GANTRY_NAMESPACE") == "team-a" && $0.env("GANTRY_QUEUE") == "research" })
        // Both on one 8-GPU node (bin-packing): GPUs 0-3 and 4-7; the daemon's own value is replaced.
        #expect(ls.map { $0.env("CUDA_VISIBLE_DEVICES") } == ["0,1,2,3", "4,5,6,7"])
        #expect(ls[0].command == "python train.py --lr '0.1 x'")
        #expect(t.status("w")?.phase == .pending)
        #expect(t.status("w")?.dispatchCount == 1)
        t.startAll("w")
        #expect(t.status("w")?.phase == .running)
        #expect(t.status("w")?.conditions.get(ConditionType.running)?.reason == Reason.allReplicasRunning)
        #expect(t.status("w")?.replicas.map(\.pid) == [1000, 1001])
        #expect(t.events("Started", "w").count == 1)
        t.exit("w", [0: 0])
        #expect(t.status("w")?.phase == .running)   // rank 1 still runs
        #expect(t.queueGPUs() == 8)
        t.exit("w", [1: 0])
        let s = t.status("w")
        #expect(s?.phase == .succeeded)
        #expect(s?.conditions.get(ConditionType.finished)?.reason == Reason.succeeded)
        #expect(s?.endTime != nil && s?.admission.isEmpty == true)
        #expect(t.queueGPUs() == 0)
        #expect(t.events("Succeeded", "w").count == 1)
        // A resync does not run it again.
        t.h.apply("other.yaml", workloadYAML("other", gpu: 1))
        t.h.queue.add(t.key("w")); t.h.drain()
        #expect(t.launches("w").count == 2)
        #expect(t.status("w")?.phase == .succeeded)
    }

    /// A full state disk is not the workload's failure: the gang restarts with backoff and
    /// maxRetry 0 is not spent, the event and message name errno and path, the node gets
    /// DiskPressure and admits nothing new until a replica starts there or a probe succeeds.
    @Test func infrastructureFaultRestartsWithoutSpendingRetriesAndPressuresTheNode() {
        var t = LifeHarness()
        let wd = "/state/work/team-a/w"
        t.h.apply("w.yaml", workloadYAML("w", gpu: 2, extra: "  replicas: 2\n  maxRetry: 0"))
        #expect(t.launches("w").count == 2)
        t.startAll("w")
        t.infraFail("w", rank: 1, InfrastructureFault(errno: ENOSPC, op: "mkdir", path: wd))
        // The rest of the gang is stopped, as for a retry; nothing failed.
        #expect(t.signals("w").map { $0.0.rank } == [0])
        let ev = t.events(Reason.infrastructureFailure, "w")
        #expect(ev.count == 1)
        #expect(ev.first?.message.contains("mkdir \(wd): No space left on device (errno 28)") == true)
        #expect(ev.first?.message.contains("maxRetry not spent") == true)
        #expect(t.status("w")?.message.contains("(errno 28)") == true && t.status("w")?.message.contains(wd) == true)
        #expect(t.status("w")?.conditions.get(ConditionType.running)?.reason == Reason.infrastructureFailure)
        // The node is under DiskPressure: a new workload that fits is not admitted.
        let cond = t.node("n1")?.conditions.get(ConditionType.diskPressure)
        #expect(cond?.status == "True" && cond?.message.contains(wd) == true)
        #expect(t.node("n1")?.phase == ConditionType.diskPressure)
        #expect(t.h.events.all.contains { $0.reason == ConditionType.diskPressure && $0.involved.name == "n1" })
        t.h.apply("x.yaml", workloadYAML("x", gpu: 2))
        #expect(t.launches("x").isEmpty)
        #expect(t.h.admitted("x")?.status == "False")
        #expect(t.h.admitted("x")?.reason == Reason.noFittingNodes)   // the queue has room: the node is why
        // Rank 0 goes; after the backoff the gang starts again, retry not counted.
        t.exit("w", [0: 143])
        #expect(t.launches("w").count == 2)
        t.advance(1.1)
        #expect(t.launches("w").count == 4)
        #expect(t.status("w")?.phase == .pending && t.status("w")?.retryCount == 0 && t.status("w")?.dispatchCount == 2)
        // It fails again the same way: still no retry spent, a longer backoff (2 s).
        t.infraFail("w", rank: 0, InfrastructureFault(errno: ENOSPC, op: "record", path: "/state/replicas/r.rec"))
        t.infraFail("w", rank: 1, InfrastructureFault(errno: ENOSPC, op: "record", path: "/state/replicas/r.rec"))
        t.advance(1.1)
        #expect(t.launches("w").count == 4)
        #expect(t.status("w")?.phase != .failed)
        // A probe that still fails keeps the pressure (probes run every 10 s).
        t.rt.s.withLock { $0.probeFault = InfrastructureFault(errno: ENOSPC, op: "statvfs", path: "/state") }
        t.advance(1)
        #expect(t.launches("w").count == 6 && t.status("w")?.retryCount == 0)
        t.advance(10)
        #expect(t.rt.s.withLock { $0.probes } >= 1)
        #expect(t.node("n1")?.conditions.get(ConditionType.diskPressure)?.status == "True")
        #expect(t.launches("x").isEmpty)
        // Space is back: the next probe relieves the node and the waiting workload is admitted.
        t.rt.s.withLock { $0.probeFault = nil }
        t.advance(10)
        #expect(t.node("n1")?.conditions.get(ConditionType.diskPressure)?.status == "False")
        #expect(t.node("n1")?.phase == "Ready")
        #expect(t.launches("x").count == 1)
        t.startAll("w")
        #expect(t.status("w")?.phase == .running && t.status("w")?.retryCount == 0)
        // A fault of the replica's own (exit 1) still fails it at maxRetry 0.
        t.exit("w", [0: 1])
        t.exit("w", [1: 143])
        #expect(t.status("w")?.phase == .failed)
        #expect(t.status("w")?.conditions.get(ConditionType.finished)?.reason == Reason.failed)
    }

    /// A replica that starts on a node under pressure relieves it without waiting for a probe.
    @Test func aReplicaStartingOnAPressuredNodeRelievesIt() {
        var t = LifeHarness()
        t.h.apply("w.yaml", workloadYAML("w", gpu: 4))
        t.infraFail("w", rank: 0, InfrastructureFault(errno: EMFILE, op: "pipe", path: ""))
        #expect(t.node("n1")?.conditions.get(ConditionType.resourcePressure)?.status == "True")
        #expect(t.events(Reason.infrastructureFailure, "w").first?.message.contains("Too many open files (errno 24)") == true)
        t.h.apply("x.yaml", workloadYAML("x", gpu: 2))
        #expect(t.launches("x").isEmpty && t.h.admitted("x")?.reason == Reason.noFittingNodes)
        t.advance(1.1)
        #expect(t.launches("w").count == 2 && t.status("w")?.retryCount == 0)
        t.startAll("w")
        #expect(t.node("n1")?.conditions.get(ConditionType.resourcePressure)?.status == "False")
        #expect(t.launches("x").count == 1)
        #expect(t.rt.s.withLock { $0.probes } == 0)
    }

    @Test func amdNodesGetHIPAndROCRDevices() {
        var t = LifeHarness(nodes: [])
        t.h.apply("n.yaml", nodeYAML("mi", extra: "  gpuVendor: amd"))
        t.h.apply("w.yaml", workloadYAML("w", gpu: 2))
        let l = t.launches("w").first
        #expect(l?.env("HIP_VISIBLE_DEVICES") == "0,1" && l?.env("ROCR_VISIBLE_DEVICES") == "0,1")
        #expect(l?.env("CUDA_VISIBLE_DEVICES") == nil)
    }

    @Test func failureRestartsTheGangWithBackoffThenFails() {
        var t = LifeHarness()
        t.h.apply("w.yaml", workloadYAML("w", gpu: 4, extra: "  replicas: 2\n  maxRetry: 1"))
        t.startAll("w")
        t.exit("w", [1: 3])
        // The rest of the gang is stopped; quota stays while rank 0 still runs.
        #expect(t.signals("w").map { $0.0.rank } == [0])
        #expect(t.status("w")?.conditions.get(ConditionType.running)?.reason == Reason.replicaRestarting)
        #expect(t.events("Restarting", "w").first?.message.contains("boom at rank 1") == true)
        t.exit("w", [0: 143])
        #expect(t.launches("w").count == 2)      // backoff: not yet
        #expect(t.queueGPUs() == 8)
        t.advance(1.1)
        #expect(t.launches("w").count == 4)
        #expect(t.status("w")?.dispatchCount == 2 && t.status("w")?.retryCount == 1)
        t.startAll("w")
        t.exit("w", [0: 1])
        t.exit("w", [1: 143])
        let s = t.status("w")
        #expect(s?.phase == .failed)
        #expect(s?.conditions.get(ConditionType.finished)?.reason == Reason.retryLimitExceeded)
        #expect(t.queueGPUs() == 0)
        #expect(t.events(Reason.retryLimitExceeded, "w").count == 1)
        #expect(t.launches("w").count == 4)
    }

    /// Decisions under the admission lock, runtime calls after it is released: dispatch (port,
    /// prepare, launch), failure (tail), restart, stop (signals), deletion and TTL (forget).
    @Test func noRuntimeCallIsMadeUnderTheAdmissionLock() {
        var t = LifeHarness(grace: 5)
        t.h.apply("w.yaml", workloadYAML("w", gpu: 4, extra: "  replicas: 2\n  maxRetry: 1"))
        t.startAll("w")
        t.exit("w", [1: 3])
        t.exit("w", [0: 143])
        t.advance(1.1)
        t.startAll("w")
        t.h.apply("w.yaml", workloadYAML("w", gpu: 4, extra: "  replicas: 2\n  maxRetry: 1\n  suspend: true"))
        t.advance(6)
        t.exit("w", [0: 137, 1: 137])
        t.h.apply("x.yaml", workloadYAML("x", extra: "  ttlSecondsAfterFinished: 1"))
        t.startAll("x")
        t.exit("x", [0: 0])
        t.advance(2)
        t.h.remove("w.yaml")
        #expect(t.rt.launches.count >= 5 && t.rt.signals.count >= 2 && t.rt.forgotten.count >= 2)
        #expect(t.rt.callsUnderLock.withLock { $0 }.isEmpty, "runtime calls made under the admission lock: \(t.rt.callsUnderLock.withLock { $0 })")
    }

    @Test func stopSendsSIGTERMThenSIGKILLAndHoldsQuotaUntilGone() {
        var t = LifeHarness(grace: 30)
        t.h.apply("w.yaml", workloadYAML("w", gpu: 8))
        t.startAll("w")
        t.h.apply("w.yaml", workloadYAML("w", gpu: 8, extra: "  suspend: true"))
        #expect(t.status("w")?.phase == .stopped)
        #expect(t.signals("w").map(\.1) == [false])
        t.advance(29)
        #expect(t.signals("w").map(\.1) == [false])
        t.advance(2)
        #expect(t.signals("w").map(\.1) == [false, true])
        // Another workload cannot take the GPUs while the stopped one still runs.
        t.h.apply("x.yaml", workloadYAML("x", gpu: 8))
        #expect(t.launches("x").isEmpty)
        #expect(t.queueGPUs() == 8)
        t.exit("w", [0: 137])
        #expect(t.launches("x").count == 1)
        #expect(t.events("Stopped", "w").count == 1)
        // Resume: it waits behind x now.
        t.h.apply("w.yaml", workloadYAML("w", gpu: 8))
        #expect(t.status("w")?.phase == .pending && t.status("w")?.queuePosition == 0)
    }

    @Test func timeoutEndsTheRunAsDeadlineExceeded() {
        var t = LifeHarness(grace: 5)
        t.h.apply("w.yaml", workloadYAML("w", extra: "  timeout: 10\n  maxRetry: 3"))
        t.startAll("w")
        t.advance(9)
        #expect(t.signals("w").isEmpty)
        t.advance(2)
        #expect(t.signals("w").count == 1)
        t.exit("w", [0: 143])
        #expect(t.status("w")?.phase == .failed)
        #expect(t.status("w")?.conditions.get(ConditionType.finished)?.reason == Reason.deadlineExceeded)
        #expect(t.launches("w").count == 1)   // a timeout is not retried
    }

    @Test func servicesRestartAFailedReplicaWithCappedBackoff() {
        var t = LifeHarness()
        t.h.apply("s.yaml", workloadYAML("s", extra: "  type: Deployment\n  replicas: 2\n  maxRetry: 0"))
        t.startAll("s")
        var delays: [Double] = []
        for _ in 0..<4 {
            t.exit("s", [1: 1])
            #expect(t.status("s")?.phase == .running)
            #expect(t.status("s")?.conditions.get(ConditionType.running)?.reason == Reason.replicaRestarting)
            let before = t.launches("s").count
            var waited = 0.0
            while t.launches("s").count == before && waited < 100 { t.advance(0.5); waited += 0.5 }
            delays.append(waited)
            t.startAll("s")
        }
        #expect(delays == [1, 2, 4, 8])
        #expect(t.launches("s").last?.ref.attempt == 4 && t.launches("s").last?.env("GANTRY_RESTART") == "4")
        #expect(t.signals("s").isEmpty)   // rank 0 was never touched
        #expect(t.status("s")?.replicas.first { $0.rank == 1 }?.restarts == 4)
        t.exit("s", [0: 0])   // even exit 0 restarts a service
        t.advance(1)
        #expect(t.launches("s").filter { $0.ref.rank == 0 }.count == 2)
    }

    @Test func preemptionStopsTheVictimAndWaitsForItsGPUs() {
        var t = LifeHarness(grace: 30)
        t.h.apply("low.yaml", workloadYAML("low", priority: "low", gpu: 8))
        t.startAll("low")
        t.h.apply("high.yaml", workloadYAML("high", priority: "high", gpu: 8))
        #expect(t.signals("low").count == 1)
        #expect(t.status("low")?.conditions.get(ConditionType.preempted)?.reason == Reason.inQueue)
        #expect(t.status("low")?.phase == .pending)
        #expect(t.launches("high").isEmpty)
        #expect(t.status("high")?.message.contains("waiting for the workloads it preempted to stop") == true)
        t.exit("low", [0: 143])
        #expect(t.launches("high").count == 1)
        #expect(t.launches("high").first?.env("CUDA_VISIBLE_DEVICES") == "0,1,2,3,4,5,6,7")
        #expect(t.status("low")?.retryCount == 0 && t.status("low")?.queuePosition == 0)
        // Once high is done, low runs again (a new dispatch, not a retry).
        t.startAll("high")
        t.exit("high", [0: 0])
        #expect(t.launches("low").count == 2 && t.status("low")?.dispatchCount == 2 && t.status("low")?.retryCount == 0)
    }

    @Test func specChangeRestartsTheGangAsUpdating() {
        var t = LifeHarness()
        t.h.apply("w.yaml", workloadYAML("w", extra: "  type: Deployment\n  command: serve --v1"))
        t.startAll("w")
        t.h.apply("w.yaml", workloadYAML("w", extra: "  type: Deployment\n  command: serve --v2"))
        #expect(t.status("w")?.phase == .updating)
        #expect(t.signals("w").count == 1)
        t.exit("w", [0: 143])
        #expect(t.launches("w").last?.command == "serve --v2")
        #expect(t.status("w")?.phase == .updating && t.status("w")?.dispatchCount == 2)
        t.startAll("w")
        #expect(t.status("w")?.phase == .running)
        // A priority change alone restarts nothing.
        t.h.apply("w.yaml", workloadYAML("w", priority: "high", extra: "  type: Deployment\n  command: serve --v2"))
        #expect(t.signals("w").count == 1)
        // More GPUs: admitted again (beside the old GPU, still held while the old replica
        // stops), Updating throughout, started only once the old one is gone.
        t.h.apply("w.yaml", workloadYAML("w", priority: "high", gpu: 4, extra: "  type: Deployment\n  command: serve --v2"))
        #expect(t.status("w")?.phase == .updating)
        #expect(t.signals("w").count == 2)
        #expect(t.queueGPUs() == 5)
        let before = t.launches("w").count
        #expect(before == 2)
        t.exit("w", [0: 143])
        #expect(t.queueGPUs() == 4)
        #expect(t.launches("w").last?.env("CUDA_VISIBLE_DEVICES") == "1,2,3,4")
        #expect(t.status("w")?.phase == .updating)
        t.startAll("w")
        #expect(t.status("w")?.phase == .running && t.status("w")?.dispatchCount == 3)
    }

    @Test func deletionStopsReplicasThenRemovesRecordsAndFiles() {
        var t = LifeHarness()
        t.h.apply("w.yaml", workloadYAML("w", gpu: 8))
        t.startAll("w")
        t.h.remove("w.yaml")
        #expect(t.signals("w").count == 1)
        #expect(!t.rt.forgotten.contains { $0.0.name == "w" && $0.1 == nil })
        #expect(t.queueGPUs() == 8)
        t.exit("w", [0: 143])
        #expect(t.rt.forgotten.contains { $0.0.name == "w" && $0.1 == nil && $0.2 })
        #expect(t.queueGPUs() == 0)
    }

    @Test func deletingAFinishedWorkloadRemovesItsFiles() {
        var t = LifeHarness()
        t.h.apply("w.yaml", workloadYAML("w"))
        t.startAll("w")
        t.exit("w", [0: 0])
        #expect(!t.rt.forgotten.contains { $0.0.name == "w" && $0.1 == nil })
        t.h.remove("w.yaml")
        #expect(t.rt.forgotten.contains { $0.0.name == "w" && $0.1 == nil && $0.2 })
    }

    @Test func ttlRemovesLogsAfterTheRunFinished() {
        var t = LifeHarness()
        t.h.apply("w.yaml", workloadYAML("w", extra: "  ttlSecondsAfterFinished: 60"))
        t.startAll("w")
        t.exit("w", [0: 0])
        #expect(!t.rt.forgotten.contains { $0.0.name == "w" && $0.2 })
        t.advance(59)
        #expect(!t.rt.forgotten.contains { $0.0.name == "w" && $0.2 })
        t.advance(2)
        #expect(t.rt.forgotten.contains { $0.0.name == "w" && $0.1 == nil && $0.2 })
        #expect(t.status("w")?.phase == .succeeded)   // the status stays
    }

    @Test func recoveredDispatchesAreAdoptedExactlyOnce() {
        // Restart after kill -9: a finished gang reports once; a running one is not started again.
        let rt = FakeRuntime()
        var h = Harness(runtime: rt)
        let done = ObjectKey(.workload, namespace: "team-a", name: "done"), live = ObjectKey(.workload, namespace: "team-a", name: "live")
        func rec(_ key: ObjectKey, node: String, gpus: [Int], exit: Int32?) -> RecoveredDispatch {
            var r = RecoveredReplica(ref: ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0))
            r.pid = 4242; r.start = h.clock.now() - 5
            if let e = exit { r.exit = (e, 0, h.clock.now() - 1) }
            return RecoveredDispatch(intent: DispatchIntent(dispatch: 1, specHash: Admission.specHash(workloadSpec(gpu: 4)), masterPort: 1234, at: h.clock.now() - 6,
                                                          assignments: [ReplicaAssignment(rank: 0, node: node, gpus: gpus)]), replicas: [0: r])
        }
        h.admission.setRecovered([done: rec(done, node: "n1", gpus: [0, 1, 2, 3], exit: 0), live: rec(live, node: "n1", gpus: [4, 5, 6, 7], exit: nil)])
        h.cluster(nodes: ["n1"])
        h.apply("w.yaml", workloadYAML("done", gpu: 4) + "---\n" + workloadYAML("live", gpu: 4))
        #expect(rt.launches.isEmpty)
        #expect(h.workload("done")?.phase == .succeeded)
        #expect(h.workload("live")?.dispatchCount == 1)
        #expect(h.workload("live")?.admission.first?.gpus == [4, 5, 6, 7])
        #expect(h.events.all.filter { $0.reason == "Succeeded" }.count == 1)
        h.queue.add(done); h.drain()
        #expect(h.events.all.filter { $0.reason == "Succeeded" }.count == 1)
        h.admission.runtimeEvent(.exited(ReplicaRef(key: live, dispatch: 1, rank: 0, attempt: 0), code: 0, signal: 0, at: h.clock.now()))
        h.drain()
        #expect(h.workload("live")?.phase == .succeeded)
        #expect(rt.launches.isEmpty)
    }

    /// Restart with the workload reconciled before its node (workers take kinds in any order):
    /// the recorded dispatch is adopted at the end of the initial load, not refused because
    /// the node was not known yet, and nothing is started a second time beside it.
    @Test func adoptionWaitsForTheNodesOfTheInitialLoad() {
        let rt = FakeRuntime()
        var h = Harness(runtime: rt)
        let live = ObjectKey(.workload, namespace: "team-a", name: "live")
        var r = RecoveredReplica(ref: ReplicaRef(key: live, dispatch: 1, rank: 0, attempt: 0))
        r.pid = 4242; r.start = h.clock.now() - 5
        let intent = DispatchIntent(dispatch: 1, specHash: Admission.specHash(workloadSpec(gpu: 4)), masterPort: 1234, at: h.clock.now() - 6,
                                    assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [4, 5, 6, 7])])
        h.admission.setRecovered([live: RecoveredDispatch(intent: intent, replicas: [0: r])])
        h.admission.pause()
        h.apply("w.yaml", workloadYAML("live", gpu: 4))
        h.cluster(nodes: ["n1"])
        h.admission.resume()
        h.drain()
        #expect(rt.launches.isEmpty)
        #expect(h.workload("live")?.dispatchCount == 1)
        #expect(h.workload("live")?.admission.first?.gpus == [4, 5, 6, 7])
        #expect(!h.events.all.contains { $0.reason == "AdmissionLost" })
        h.admission.runtimeEvent(.exited(ReplicaRef(key: live, dispatch: 1, rank: 0, attempt: 0), code: 0, signal: 0, at: h.clock.now()))
        h.drain()
        #expect(h.workload("live")?.phase == .succeeded)
        #expect(rt.launches.isEmpty)
    }

    /// Restart: replicas still running for a workload deleted while the daemon was down keep
    /// their GPUs until they are gone; the first admission pass puts nothing on them.
    @Test func replicasOfAWorkloadDeletedWhileDownKeepTheirGPUs() throws {
        let rt = FakeRuntime()
        var h = Harness(runtime: rt)
        let gone = ObjectKey(.workload, namespace: "team-a", name: "gone")
        var r = RecoveredReplica(ref: ReplicaRef(key: gone, dispatch: 1, rank: 0, attempt: 0))
        r.pid = 4242; r.start = h.clock.now() - 5
        let intent = DispatchIntent(dispatch: 1, specHash: "x", masterPort: 1234, at: h.clock.now() - 6,
                                    assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0, 1, 2, 3, 4, 5, 6, 7])])
        h.admission.setRecovered([gone: RecoveredDispatch(intent: intent, replicas: [0: r])])
        h.admission.pause()
        h.cluster(nodes: ["n1"])
        h.apply("w.yaml", workloadYAML("next", gpu: 8))
        h.admission.resume()
        h.drain()
        // The orphan is being stopped, and its GPUs are not given to "next" meanwhile.
        #expect(rt.signals.contains { $0.0.key == gone })
        #expect(h.workload("next")?.phase == .pending)
        #expect(rt.launches.isEmpty)
        h.admission.runtimeEvent(.exited(ReplicaRef(key: gone, dispatch: 1, rank: 0, attempt: 0), code: 143, signal: 0, at: h.clock.now()))
        h.drain()
        let launch = try #require(rt.launches.first)
        #expect(launch.ref.key.name == "next")
        #expect(h.workload("next")?.admission.first?.gpus == [0, 1, 2, 3, 4, 5, 6, 7])
    }

    /// After a restart, a replica whose supervisor recorded a fault (or vanished) while the
    /// daemon was down restarts the gang without spending maxRetry 0.
    @Test func recoveredInfrastructureFaultsDoNotSpendRetries() {
        let rt = FakeRuntime()
        var h = Harness(runtime: rt)
        let full = ObjectKey(.workload, namespace: "team-a", name: "full"), gone = ObjectKey(.workload, namespace: "team-a", name: "gone")
        func rec(_ key: ObjectKey, gpus: [Int], fault: InfrastructureFault?) -> RecoveredDispatch {
            var r = RecoveredReplica(ref: ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0))
            if let fault { r.fault = fault } else { r.lost = true; r.pid = 4242; r.start = h.clock.now() - 5 }
            return RecoveredDispatch(intent: DispatchIntent(dispatch: 1, specHash: Admission.specHash(workloadSpec(gpu: 4)), masterPort: 1234, at: h.clock.now() - 6,
                                                          assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: gpus)]), replicas: [0: r])
        }
        let f = InfrastructureFault(errno: ENOSPC, op: "open", path: "/state/logs/team-a/full.0.log")
        h.admission.setRecovered([full: rec(full, gpus: [0, 1, 2, 3], fault: f), gone: rec(gone, gpus: [4, 5, 6, 7], fault: nil)])
        h.cluster(nodes: ["n1"])
        h.apply("w.yaml", workloadYAML("full", gpu: 4) + "---\n" + workloadYAML("gone", gpu: 4))
        #expect(h.workload("full")?.phase == .pending && h.workload("gone")?.phase == .pending)
        #expect(h.events.all.contains { $0.reason == Reason.infrastructureFailure && $0.involved.name == "full" && $0.message.contains("/state/logs/team-a/full.0.log: No space left on device (errno 28)") })
        #expect(h.events.all.contains { $0.reason == Reason.infrastructureFailure && $0.involved.name == "gone" && $0.message.contains("vanished while the daemon was down") })
        #expect(h.inventory.statuses.get(ObjectKey(.node, name: "n1"))?.node?.conditions.get(ConditionType.diskPressure)?.status == "True")
        h.clock.advance(by: 1.1); h.admission.tick(); h.drain()
        #expect(Set(rt.launches.map(\.ref.key.name)) == ["full", "gone"])
        #expect(h.workload("full")?.retryCount == 0 && h.workload("gone")?.retryCount == 0)
        #expect(h.workload("full")?.dispatchCount == 2 && h.workload("gone")?.dispatchCount == 2)
    }

    @Test func replicasFoundRunningForASuspendedWorkloadKeepTheirGPUsUntilGone() {
        let rt = FakeRuntime()
        var h = Harness(runtime: rt)
        let key = ObjectKey(.workload, namespace: "team-a", name: "s")
        var r = RecoveredReplica(ref: ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0))
        r.pid = 4242; r.start = h.clock.now() - 5
        h.admission.setRecovered([key: RecoveredDispatch(intent: DispatchIntent(dispatch: 1, specHash: "x", masterPort: 1, at: h.clock.now() - 6,
                                                                                assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: Array(0..<8))]), replicas: [0: r])])
        h.cluster(nodes: ["n1"])
        h.apply("s.yaml", workloadYAML("s", gpu: 8, extra: "  suspend: true"))
        #expect(h.workload("s")?.phase == .stopped)
        #expect(rt.signals.map(\.0.key) == [key])
        h.apply("x.yaml", workloadYAML("x", gpu: 8))
        #expect(rt.launches.isEmpty)   // the GPUs are still in use
        h.admission.runtimeEvent(.exited(ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0), code: 143, signal: 15, at: h.clock.now()))
        h.drain()
        #expect(rt.launches.map(\.ref.key.name) == ["x"])
    }

    @Test func overridesHoldUntilTheManifestChanges() throws {
        var t = LifeHarness()
        t.h.apply("w.yaml", workloadYAML("w", extra: "  type: Deployment"))
        t.startAll("w")
        let gen = try #require(t.h.inventory.desired.get(t.key("w"))).meta.generation
        t.h.overrides.set(t.key("w"), SuspendOverride(suspend: true, generation: gen, at: t.h.clock.timestamp, by: "gantry stop"))
        t.h.queue.add(t.key("w")); t.h.drain()
        #expect(t.status("w")?.phase == .stopped)
        #expect(t.status("w")?.override?.by == "gantry stop")
        #expect(t.signals("w").count == 1)
        t.exit("w", [0: 143])
        // Resume by override: runs again.
        t.h.overrides.set(t.key("w"), SuspendOverride(suspend: false, generation: gen, at: t.h.clock.timestamp, by: "gantry resume"))
        t.h.queue.add(t.key("w")); t.h.drain()
        #expect(t.launches("w").count == 2)
        // The manifest changes (suspend: true in the file): the file wins and the override goes.
        t.startAll("w")
        t.h.apply("w.yaml", workloadYAML("w", extra: "  type: Deployment\n  suspend: true"))
        #expect(t.h.overrides.get(t.key("w")) == nil)
        #expect(t.status("w")?.phase == .stopped && t.status("w")?.override == nil)
        #expect(t.h.events.all.contains { $0.reason == "OverrideCleared" })
    }
}

func workloadSpec(gpu: Int64) -> WorkloadSpec {
    var s = WorkloadSpec()
    s.queue = "research"
    s.command = "true"
    s.resources = ResourceList()
    s.resources.amounts["gpu"] = Quantity(milli: gpu * 1000)
    return s
}
