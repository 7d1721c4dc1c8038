import Foundation
import GantryAPI
import ControllerRuntime
import Controllers
import Scheduler
import DirectorySource

/// The benchmark's cluster, in memory: the same queue tree, nodes and workload mix as the
/// generated files.
enum AdmissionBench {
    static func queueSpecs() -> [(String, QueueSpec)] {
        var out: [(String, QueueSpec)] = []
        var root = QueueSpec(); root.deserved["gpu"] = Quantity(units: 8000)
        out.append(("root", root))
        for m in 0..<9 { var q = QueueSpec(); q.parent = "root"; q.deserved["gpu"] = Quantity(units: 880); out.append(("mid-\(m)", q)) }
        for l in 0..<90 {
            var q = QueueSpec(); q.parent = "mid-\(l % 9)"
            q.deserved["gpu"] = Quantity(units: 88); q.guarantee["gpu"] = Quantity(units: 8); q.capability = ResourceList(["gpu": Quantity(units: 400)])
            out.append(("leaf-\(l)", q))
        }
        return out
    }

    static func nodeSpec(pool: Int) -> NodeSpec {
        var n = NodeSpec()
        n.resourcePool = "pool-\(pool)"; n.gpuType = "H100"
        n.capacity = ResourceList(["gpu": Quantity(units: 8), "cpu": Quantity(units: 128), "memory": Quantity(milli: (Int64(1) << 40) * 1000)])
        return n
    }

    static func request(_ i: Int, created: Int64) -> WorkloadRequest {
        var r = ResourceList()
        r["gpu"] = Quantity(units: Int64(1 << (i % 4))); r["cpu"] = Quantity(units: 16); r["memory"] = Quantity(milli: (Int64(64) << 30) * 1000)
        return WorkloadRequest(queue: "leaf-\(i % 90)", priority: i % 3, created: created, replicas: 1 + i % 4, resources: r)
    }

    /// Full pass over `n` pending workloads, then `rounds` incremental cycles (one admitted
    /// workload finishes, the next is admitted).
    static func run(n: Int, rounds: Int, say: (String) -> Void) {
        let s = SchedulerState()
        for (name, q) in queueSpecs() { s.setQueue(name, spec: q) }
        for p in 0..<10 { for k in 0..<100 { s.setNode("node-\(p)-\(k)", spec: nodeSpec(pool: p)) } }
        let keys = (0..<n).map { ObjectKey(.workload, namespace: "team-\($0 % 20)", name: "wl-\($0)") }
        let t0 = monotonicSeconds()
        for i in 0..<n { s.setWorkload(keys[i], request(i, created: Int64(i / 100))) }
        let t1 = monotonicSeconds()
        var full = s.cycle(now: 1e6)
        var cycles = 1
        while s.needsCycle {
            let more = s.cycle(now: 1e6)
            cycles += 1
            full.events += more.events; full.decisions += more.decisions; full.attempts += more.attempts
            if more.attempts == 0 { break }
        }
        let t2 = monotonicSeconds()
        let preempted = full.events.filter { if case .preempted = $0 { return true }; return false }.count
        say(String(format: "admission, full pass (scheduler only): %d pending, 1000 nodes x 8 GPUs, 100 queues in 3 levels: %.3f s (adding them %.3f s); %d cycles, %d admitted (%d preemptions), %d decisions, %d attempts; %.0f decisions/s",
                   n, t2 - t1, t1 - t0, cycles, s.admittedCount, preempted, full.decisions, full.attempts, Double(full.decisions) / (t2 - t1)))
        var rng = SplitMix64(seed: 42)
        var times: [Double] = []
        var admittedNext = 0
        var admittedKeys = keys.filter { s.isAdmitted($0) }
        for _ in 0..<rounds {
            guard !admittedKeys.isEmpty else { break }
            let j = Int(rng.next() % UInt64(admittedKeys.count))
            let k = admittedKeys.remove(at: j)
            let c0 = monotonicSeconds()
            s.finish(k)
            var r = s.cycle(now: 1e6)
            while s.needsCycle && r.attempts > 0 { r = s.cycle(now: 1e6) }
            times.append((monotonicSeconds() - c0) * 1000)
            for e in r.events { if case .admitted(let key, _, _, _) = e { admittedKeys.append(key); admittedNext += 1 } }
        }
        times.sort()
        say(String(format: "admission, incremental cycle (one finishes, the next admitted; %d rounds, %d admitted): median %.2f ms, p99 %.2f ms, max %.2f ms",
                   times.count, admittedNext, times[times.count / 2], times[min(times.count - 1, Int(Double(times.count) * 0.99))], times.last ?? 0))
    }

    /// The same, through the admission controller: statuses, positions, queue, node and pool
    /// usage written to the in-memory status cache (what the daemon's cycle does).
    static func runWithStatus(n: Int, rounds: Int, say: (String) -> Void) {
        let clock = ManualClock()
        let persistence = MemoryPersistence()
        let statuses = StatusCache(persistence: persistence)
        let queue = WorkQueue<ObjectKey>(name: "bench", clock: clock)
        let inventory = Inventory(persistence: persistence, statuses: statuses, queue: queue, events: EventRecorder(sink: NullSink(), clock: clock), clock: clock)
        let admission = Admission(inventory: inventory, clock: clock, metrics: Metrics())
        admission.pause()
        var changes: [ManifestChange] = []
        for (name, q) in queueSpecs() { changes.append(.upsert(ManifestObject(meta: ObjectMeta(name: name), spec: .queue(q), source: SourceRef(file: "q", line: 1, index: 0)))) }
        for p in 0..<10 { for k in 0..<100 { changes.append(.upsert(ManifestObject(meta: ObjectMeta(name: "node-\(p)-\(k)"), spec: .node(nodeSpec(pool: p)), source: SourceRef(file: "n", line: 1, index: 0)))) } }
        for i in 0..<n {
            var w = WorkloadSpec()
            let r = request(i, created: 0)
            w.queue = r.queue; w.priority = r.priority; w.replicas = r.replicas; w.resources = r.resources; w.command = "true"
            changes.append(.upsert(ManifestObject(meta: ObjectMeta(name: "wl-\(i)", namespace: "team-\(i % 20)"), spec: .workload(w), source: SourceRef(file: "w", line: 1, index: 0))))
        }
        inventory.beginBulk()
        inventory.apply(changes)
        for (name, _) in queueSpecs() { admission.syncQueue(name, inventory.desired.get(ObjectKey(.queue, name: name))) }
        for p in 0..<10 { for k in 0..<100 { let key = ObjectKey(.node, name: "node-\(p)-\(k)"); admission.syncNode(key.name, inventory.desired.get(key), ready: true) } }
        let keys = (0..<n).map { ObjectKey(.workload, namespace: "team-\($0 % 20)", name: "wl-\($0)") }
        for k in keys { admission.syncWorkload(k, inventory.desired.get(k)) }
        let pass = admission.resume()
        say(String(format: "admission, full pass with every status written (controller): %.3f s; %d admitted, %d decisions; %.0f decisions/s",
                   pass.seconds, pass.admitted, pass.decisions, Double(pass.decisions) / pass.seconds))
        var admittedKeys = admission.withState { s in keys.filter { s.isAdmitted($0) } }
        var rng = SplitMix64(seed: 7)
        var times: [Double] = []
        for _ in 0..<rounds {
            guard !admittedKeys.isEmpty else { break }
            let k = admittedKeys.remove(at: Int(rng.next() % UInt64(admittedKeys.count)))
            let c0 = monotonicSeconds()
            admission.syncWorkload(k, nil)   // finished: quota and GPUs go back
            admission.runCycles()
            times.append((monotonicSeconds() - c0) * 1000)
        }
        times.sort()
        say(String(format: "admission, incremental cycle with status writes (%d rounds): median %.2f ms, p99 %.2f ms",
                   times.count, times[times.count / 2], times[min(times.count - 1, Int(Double(times.count) * 0.99))]))
    }
}

struct NullSink: EventSink { func write(_ event: EventRecord) {} }
