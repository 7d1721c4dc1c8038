import Foundation
import GantryAPI
import Scheduler

/// Fuzz target over the scheduler: the bytes are a program of operations on one
/// `SchedulerState` (nodes added, changed, cordoned and removed; queues with random parents,
/// quotas, strategies and states; workloads added, changed, removed, requeued and finished;
/// processes marked running or gone; holds and restored admissions; cycles). A model kept
/// beside the scheduler, through its public API only, tracks what must be admitted and held,
/// and after every operation the scheduler's answers are compared with it:
///
/// - every admission has its replicas and GPUs per replica, on present nodes, GPU indices
///   within capacity, and no GPU index is given twice (admissions and holds together);
/// - node usage (free GPU indices, allocated resources, workload count) and queue usage
///   (allocated, admitted, pending) equal what the model recomputes from scratch;
/// - pending order and positions follow priority, creation time, then name.
///
/// After a cycle, for the admissions that cycle made: the queue was active; the nodes were
/// schedulable, in the queue's pool, of the asked gpuType, the specified nodes in order; no
/// node resource it names, no queue capability, no `disableOversell` deserved and no tree's
/// deserved share (with guarantees counted as used) is exceeded where the new admission
/// added to it; and no two workloads preempt each other.
public enum SchedulerFuzz {
    /// The findings still open, which the seed replay in the tests steers around; drop an
    /// entry when its bug is fixed.
    public static let knownOpen: Set<String> = []

    public static func check(_ bytes: [UInt8], avoid: Set<String> = envAvoid) -> String? {
        let h = SchedulerHarness(bytes, avoid: avoid)
        do { try h.run() } catch { return (error as? Violation)?.message ?? "\(error)" }
        return nil
    }
}

struct Violation: Error { var message: String }

/// Values a fuzzed quantity takes (milli-units): zero, small, typical, and the largest a
/// manifest accepts (about 9.2e15 units).
let maxMilli: Int64 = 9_200_000_000_000_000_000

/// Known findings the generators steer around while they are open, so a fuzzing run keeps
/// exploring instead of hitting them again: `GANTRY_FUZZ_AVOID=node-gpus,overflow`.
/// - `node-gpus`: nodes with more than 1,024 GPUs (invalid specs reach `setNode`, which
///   allocates a flag per GPU).
/// - `overflow`: quantities near the largest a manifest accepts (sums and products overflow).
/// - `empty-request`: workloads without any resources (placement traps on them).
public let envAvoid: Set<String> = {
    guard let v = getenv("GANTRY_FUZZ_AVOID") else { return [] }
    return Set(String(cString: v).split(separator: ",").map(String.init))
}()

/// `GANTRY_FUZZ_TRACE=1`: every operation and event on stderr, to read a failing input.
let tracing = getenv("GANTRY_FUZZ_TRACE") != nil
func trace(_ s: @autoclosure () -> String) { if tracing { FileHandle.standardError.write(Data((s() + "\n").utf8)) } }

final class SchedulerHarness {
    var input: FuzzInput
    let s = SchedulerState()

    // The model.
    let nodeNames = ["n0", "n1", "n2", "n3", "n4", "n5"]
    let queueNames = ["q0", "q1", "q2", "q3", "q4", "q5"]
    let pools = ["p0", "p1"]
    let gpuTypes = ["H100", "A100"]
    var nodes: [String: (spec: NodeSpec, ready: Bool)] = [:]
    var queues: [String: (spec: QueueSpec, valid: Bool)] = [:]
    /// Queue names the scheduler has an entry for (declared, named as a parent or by a workload).
    var knownQueues = Set<String>()
    var requests: [ObjectKey: WorkloadRequest] = [:]
    struct Admission { var request: WorkloadRequest; var assignments: [ReplicaAssignment] }
    var admitted: [ObjectKey: Admission] = [:]
    struct Held { var key: ObjectKey; var request: WorkloadRequest; var assignments: [ReplicaAssignment] }
    var holds: [Held] = []
    var active = Set<ObjectKey>()
    /// [victim, preemptor] pairs while the victim's record lives.
    var preemptions = Set<[ObjectKey]>()
    var now = 1000.0
    /// Resource names some request asked near the Int64 limit for (see `untainted`).
    var tainted = Set<String>()
    var clock: Int64 = 0
    /// The program started from `standardCluster`.
    var standard = false

    let avoid: Set<String>
    init(_ bytes: [UInt8], avoid: Set<String>) { input = FuzzInput(bytes); self.avoid = avoid }

    func fail(_ m: String) -> Violation { Violation(message: m) }

    func run() throws {
        // Half the programs start from a small cluster where admission and preemption are
        // likely: 3 nodes of 8 GPUs, a root queue with two children that borrow and reclaim.
        if input.bool() { standard = true; try standardCluster() }
        var steps = 0
        while !input.isAtEnd && steps < 400 {
            steps += 1
            var op = input.pick(16)
            // On the small cluster, mostly workloads and cycles: it stays a cluster.
            if standard && op < 6 && input.pick(4) != 0 { op = 6 + input.pick(3) * 3 }
            switch op {
            case 0, 1: setNode()
            case 2: removeNode()
            case 3, 4: setQueue()
            case 5: removeQueue()
            case 6, 7, 8: setWorkload()
            case 9: removeWorkload()
            case 10: setActive()
            case 11: requeue()
            case 12: finish()
            case 13: if input.bool() { try hold() } else { try restore() }
            default: try cycle()
            }
            try observeWithdrawals()
            try checkState()
        }
        // End with cycles until nothing is worth another attempt, as the controller does.
        for _ in 0..<4 {
            let attempts = try cycle()
            try checkState()
            if attempts == 0 || !s.needsCycle { break }
        }
    }

    func standardCluster() throws {
        for (i, name) in nodeNames.prefix(3).enumerated() {
            var n = NodeSpec()
            n.capacity["gpu"] = Quantity(units: 8)
            n.capacity["cpu"] = Quantity(units: 64)
            n.gpuType = i < 2 ? "H100" : "A100"
            nodes[name] = (n, true)
            s.setNode(name, spec: n, ready: true)
        }
        var root = QueueSpec()
        root.deserved["gpu"] = Quantity(units: 24)
        var a = QueueSpec(), b = QueueSpec()
        a.parent = "q0"; b.parent = "q0"
        a.deserved["gpu"] = Quantity(units: 12); b.deserved["gpu"] = Quantity(units: 12)
        a.guarantee["gpu"] = Quantity(units: 4)
        b.capability = ResourceList(["gpu": Quantity(units: 20)])
        b.reclaimable = input.bool()
        for (name, q) in [("q0", root), ("q1", a), ("q2", b)] {
            queues[name] = (q, true)
            knownQueues.insert(name)
            s.setQueue(name, spec: q, valid: true)
        }
        try checkState()
    }

    // MARK: - Generators

    func quantity(whole: Bool) -> Quantity {
        switch input.pick(10) {
        case 0: return .zero
        case 1, 2: return Quantity(units: 1)
        case 3: return Quantity(units: 2)
        case 4: return Quantity(units: 4)
        case 5: return Quantity(units: 8)
        case 6: return Quantity(units: Int64(input.byte()))
        case 7: return whole ? Quantity(units: Int64(input.uint16())) : Quantity(milli: Int64(input.uint16()) * 10)
        case 8:
            if avoid.contains("overflow") { return Quantity(units: 1 << 20) }
            return whole ? Quantity(units: maxMilli / 1000) : Quantity(milli: maxMilli)
        default: return Quantity(milli: Int64(input.byte()) << (avoid.contains("overflow") ? 20 : 40))
        }
    }

    /// A resource list: none, gpu only, cpu/memory, an extended resource, in any mix.
    func resources(gpuChoices: Bool = true) -> ResourceList {
        let mask = input.byte()
        var r = ResourceList()
        if mask & 1 != 0 { r["gpu"] = quantity(whole: true) }
        if mask & 2 != 0 { r["cpu"] = quantity(whole: false) }
        if mask & 4 != 0 { r["memory"] = quantity(whole: false) }
        if mask & 8 != 0 { r["example.com/fpga"] = quantity(whole: true) }
        return r
    }

    func workloadKey() -> ObjectKey {
        let i = input.pick(12)
        return ObjectKey(.workload, namespace: i < 9 ? "default" : "team", name: "w\(i)")
    }

    func queueRef() -> String {
        if standard && input.pick(4) != 0 { return input.bool() ? "q1" : "q2" }
        let i = input.pick(8)
        return i < queueNames.count ? queueNames[i] : "missing"
    }

    // MARK: - Operations

    func setNode() {
        let name = input.element(nodeNames)
        var spec = NodeSpec()
        spec.capacity = resources()
        if input.pick(4) != 0 {
            // Most nodes have a usual GPU count; a few a large one (invalid specs reach the
            // scheduler too, as not-ready nodes).
            spec.capacity["gpu"] = Quantity(units: Int64(input.element([0, 1, 2, 4, 8, 8, 16, 1024])))
        }
        if avoid.contains("node-gpus"), spec.capacity.gpu > 1024 { spec.capacity["gpu"] = Quantity(units: 1024) }
        spec.resourcePool = input.pick(3) == 0 ? nil : input.element(pools)
        spec.gpuType = input.pick(3) == 0 ? nil : input.element(gpuTypes)
        spec.unschedulable = input.pick(5) == 0
        let ready = input.pick(6) != 0
        nodes[name] = (spec, ready)
        trace("setNode \(name) \(spec) ready=\(ready)")
        s.setNode(name, spec: spec, ready: ready)
    }

    func removeNode() {
        let name = input.element(nodeNames)
        nodes[name] = nil
        trace("removeNode \(name)")
        s.setNode(name, spec: nil)
    }

    func setQueue() {
        let name = input.element(queueNames)
        var q = QueueSpec()
        let p = input.pick(16)
        q.parent = p < queueNames.count ? queueNames[p] : (p == 6 ? "missing" : nil)
        q.resourcePool = input.pick(4) == 0 ? input.element(pools + ["p9"]) : nil
        let lists = input.byte()
        if lists & 1 != 0 { q.deserved = resources() }
        if lists & 2 != 0 { q.guarantee = resources() }
        if lists & 4 != 0 { q.capability = resources() }
        q.reclaimable = input.pick(3) != 0
        q.disableOversell = input.pick(4) == 0
        q.queueingStrategy = input.pick(3) == 0 ? .strictFIFO : .bestEffortFIFO
        q.state = input.pick(10) == 0 ? .closed : .open
        let valid = input.pick(16) != 0
        queues[name] = (q, valid)
        knownQueues.insert(name)
        if let parent = q.parent { knownQueues.insert(parent) }
        trace("setQueue \(name) \(q) valid=\(valid)")
        s.setQueue(name, spec: q, valid: valid)
    }

    func removeQueue() {
        let name = input.element(queueNames)
        queues[name] = nil
        knownQueues.insert(name)
        trace("removeQueue \(name)")
        s.setQueue(name, spec: nil)
    }

    func request() -> WorkloadRequest {
        clock += Int64(input.pick(3))
        var r = WorkloadRequest(queue: queueRef(), priority: input.pick(4) - 1, created: clock, replicas: 1, resources: resources())
        if avoid.contains("empty-request") && r.resources.isEmpty { r.resources["cpu"] = .zero }
        if standard && input.bool() {
            // Gangs that fill the small cluster: queues compete, preempt and reclaim.
            r.resources = ResourceList(["gpu": Quantity(units: Int64(input.element([1, 2, 4, 8])))])
            r.replicas = 1 + input.pick(3)
            return r
        }
        switch input.pick(8) {
        case 0, 1, 2, 3: r.replicas = 1
        case 4: r.replicas = 2
        case 5: r.replicas = 1 + input.pick(8)
        case 6: r.replicas = 10_000
        default: r.replicas = 1 + input.uint16() % 10_000
        }
        if input.pick(4) == 0 { r.gpuType = input.element(gpuTypes + ["B200"]) }
        if input.pick(5) == 0 {
            // Distinct names, as validation requires (the scheduler itself does not check:
            // a node listed twice gets both replicas on the same GPUs).
            let n = 1 + input.pick(3)
            var names: [String] = []
            for _ in 0..<n {
                let name = input.pick(8) < nodeNames.count ? input.element(nodeNames) : "ghost"
                if !names.contains(name) { names.append(name) }
            }
            r.specifiedNodes = names
            r.replicas = names.count
        }
        return r
    }

    func setWorkload() {
        let key = workloadKey()
        var r = request()
        // A priority-only change keeps an admission: make that common.
        if let old = requests[key], input.pick(3) == 0 {
            let p = r.priority
            r = old; r.priority = p
        }
        requests[key] = r
        taint(r)
        knownQueues.insert(r.queue)
        trace("setWorkload \(key) \(r)")
        s.setWorkload(key, r)
    }

    func removeWorkload() {
        let key = workloadKey()
        if requests.removeValue(forKey: key) != nil { forget(key) }
        trace("removeWorkload \(key)")
        s.setWorkload(key, nil)
    }

    func finish() {
        let key = workloadKey()
        if input.bool() { setActive(key, false) }   // its processes are gone first
        if requests.removeValue(forKey: key) != nil { forget(key) }
        trace("finish \(key)")
        s.finish(key)
    }

    /// A removed workload's own record (and what preempted it) goes.
    func forget(_ key: ObjectKey) {
        preemptions = preemptions.filter { $0[0] != key }
    }

    func setActive() {
        setActive(workloadKey(), input.bool())
    }

    func setActive(_ key: ObjectKey, _ on: Bool) {
        trace("setActive \(key) \(on)")
        let released = s.setActive(key, on)
        if on { active.insert(key); return }
        active.remove(key)
        let had = holds.contains { $0.key == key }
        holds.removeAll { $0.key == key }
        if released != had { pendingViolation = "setActive(\(key), false) returned \(released) with holds \(had)" }
    }
    var pendingViolation: String?

    func requeue() {
        let key = workloadKey()
        trace("requeue \(key)")
        s.requeue(key, reason: "Fuzz", message: "requeued by the fuzzer")
    }

    func assignments(count: Int, gpus: Int) -> [ReplicaAssignment] {
        (0..<count).map { rank in
            let node = input.pick(8) < nodeNames.count ? input.element(nodeNames) : "ghost"
            let start = input.pick(10) - 1
            let g = input.pick(4) == 0 ? gpus + input.pick(3) - 1 : gpus
            return ReplicaAssignment(rank: rank, node: node, gpus: (0..<max(0, g)).map { start + $0 * (1 + input.pick(2)) })
        }
    }

    /// Whether the scheduler must take a recorded placement: nodes present, GPU indices
    /// within capacity and free, none twice.
    func placementIsFree(_ a: [ReplicaAssignment]) -> Bool {
        var taken = usedGPUs()
        for r in a {
            guard let n = nodes[r.node] else { return false }
            let cap = Self.gpuIndices(n.spec)
            for g in r.gpus {
                guard g >= 0, g < cap, taken[r.node, default: []].insert(g).inserted else { return false }
            }
        }
        return true
    }

    func hold() throws {
        let key = workloadKey()
        let r = request()
        let a = assignments(count: min(r.replicas, 3), gpus: Int(min(r.resources.gpu, 8)))
        let expect = placementIsFree(a)
        taint(r)
        let ok = s.hold(key, r, assignments: a)
        trace("hold \(key) \(r) \(a) -> \(ok)")
        if ok != expect { throw fail("hold(\(key)) returned \(ok), expected \(expect) for \(a)") }
        if ok {
            knownQueues.insert(r.queue)
            holds.append(Held(key: key, request: r, assignments: a))
            active.insert(key)
        }
    }

    func restore() throws {
        let key = workloadKey()
        guard let r = requests[key] else { return }
        let a = assignments(count: min(r.replicas, 3) + (input.pick(4) == 0 ? 1 : 0), gpus: Int(min(r.resources.gpu, 8)))
        let expect = admitted[key] == nil && a.count == r.replicas && a.allSatisfy { Int64($0.gpus.count) == r.resources.gpu } && placementIsFree(a)
        let ok = s.restoreAdmission(key, assignments: a, admittedAt: now)
        trace("restoreAdmission \(key) \(a) -> \(ok)")
        if ok != expect { throw fail("restoreAdmission(\(key)) returned \(ok), expected \(expect) for \(a)") }
        if ok { admitted[key] = Admission(request: r, assignments: a) }
    }

    // MARK: - Cycles

    @discardableResult
    func cycle() throws -> Int {
        now += Double(1 + input.pick(100))
        let before = admitted
        let nominatedBefore = Set(requests.keys.filter { s.nomination($0) != nil })
        var promoted = Set<ObjectKey>()   // traced: promoted nominations skip the new-admission checks
        let result = s.cycle(now: now)
        trace("cycle \(now): \(result.events)")
        var new: [ObjectKey: [ReplicaAssignment]] = [:]
        for e in result.events {
            switch e {
            case .admitted(let k, let q, let a, _):
                guard let r = requests[k] else { throw fail("admitted \(k), which is not a workload") }
                if admitted[k] != nil { throw fail("admitted \(k) twice") }
                if q != r.queue { throw fail("\(k) admitted to queue \(q), asked for \(r.queue)") }
                admitted[k] = Admission(request: r, assignments: a)
                // A promoted nomination was placed and counted when it was nominated.
                if nominatedBefore.contains(k) { promoted.insert(k) } else { new[k] = a }
            case .preempted(let v, let by, _, _):
                if preemptions.contains([by, v]) { throw fail("\(v) and \(by) preempt each other") }
                preemptions.insert([v, by])
                // A nomination taken by a higher-priority workload was never admitted.
                guard let adm = admitted[v] else {
                    if nominatedBefore.contains(v) { continue }
                    throw fail("preempted \(v), which was not admitted")
                }
                withdrawn(v, adm)
                new[v] = nil
            case .evicted:
                break   // seen when it happened (setNode, setWorkload, requeue)
            }
        }
        for (k, adm) in admitted where s.assignments(k) != adm.assignments {
            throw fail("after the cycle \(k) has \(String(describing: s.assignments(k))), events say \(adm.assignments)")
        }
        if !promoted.isEmpty { trace("  promoted \(promoted.sorted())") }
        for (k, a) in new { try checkNewAdmission(k, a, before: before) }
        try checkQuotaAfterCycle(new)
        return result.attempts
    }

    /// An admission withdrawn: its quota and GPUs become a hold while its processes run.
    func withdrawn(_ key: ObjectKey, _ adm: Admission) {
        trace("  withdrawn \(key) active=\(active.contains(key))")
        admitted[key] = nil
        if active.contains(key) { holds.append(Held(key: key, request: adm.request, assignments: adm.assignments)) }
    }

    /// Admissions withdrawn outside cycles (node removed or shrunk, spec changed, requeue,
    /// removal): taken from what the scheduler reports.
    func observeWithdrawals() throws {
        if let v = pendingViolation { throw fail(v) }
        for (k, adm) in admitted {
            let now = s.assignments(k)
            if now == nil { withdrawn(k, adm) } else if now != adm.assignments { throw fail("\(k)'s assignments changed outside a cycle") }
        }
        // A change that needs readmission must withdraw; a priority change must not.
        for (k, adm) in admitted {
            guard let r = requests[k] else { throw fail("\(k) removed but still admitted") }
            if r.queue != adm.request.queue || r.replicas != adm.request.replicas || r.gpuType != adm.request.gpuType
                || r.specifiedNodes != adm.request.specifiedNodes || nonzero(r.resources) != nonzero(adm.request.resources) {
                throw fail("\(k) changed its request but kept its admission")
            }
            admitted[k]?.request.priority = r.priority
        }
    }

    func nonzero(_ r: ResourceList) -> [String: Int64] {
        var m: [String: Int64] = [:]
        for (k, q) in r.amounts where q.milli != 0 { m[k] = q.milli }
        return m
    }

    // MARK: - Checks

    func usedGPUs() -> [String: Set<Int>] {
        var used: [String: Set<Int>] = [:]
        for adm in admitted.values { for a in adm.assignments { used[a.node, default: []].formUnion(a.gpus) } }
        for h in holds { for a in h.assignments { used[a.node, default: []].formUnion(a.gpus) } }
        return used
    }

    /// The queue path (leaf first) the scheduler accounts usage along: ancestors with a spec,
    /// stopping at a loop or an undeclared parent.
    func path(_ q: String) -> [String] {
        var p = [q]
        var seen: Set<String> = [q]
        var cur = queues[q]?.spec.parent
        while let c = cur, seen.insert(c).inserted, let e = queues[c] {
            p.append(c)
            cur = e.spec.parent
        }
        return p
    }

    /// Whether following parents from `q` comes back to `q`.
    func onLoop(_ q: String) -> Bool {
        var seen = Set<String>()
        var cur = queues[q]?.spec.parent
        while let c = cur, seen.insert(c).inserted {
            if c == q { return true }
            cur = queues[c]?.spec.parent
        }
        return false
    }

    /// Whether a workload of queue `q` may be admitted: declared, valid, open, parents
    /// declared and valid, no loop.
    func isActive(_ q: String) -> Bool {
        guard let e = queues[q], e.valid, e.spec.state == .open else { return false }
        var seen: Set<String> = [q]
        var cur = e.spec.parent
        while let c = cur {
            guard seen.insert(c).inserted, let pe = queues[c], pe.valid else { return false }
            cur = pe.spec.parent
        }
        return true
    }

    func effectivePool(_ q: String) -> String? { path(q).lazy.compactMap { self.queues[$0]?.spec.resourcePool }.first }

    func total(_ r: WorkloadRequest) -> [String: Int64] {
        var t: [String: Int64] = [:]
        for (k, q) in r.resources.amounts { t[k] = Self.satMul(q.milli, Int64(r.replicas)) }
        return t
    }

    func add(_ into: inout [String: Int64], _ v: [String: Int64], times k: Int64 = 1) {
        for (n, x) in v where x != 0 { into[n, default: 0] = Self.sat(into[n, default: 0], Self.satMul(x, k)) }
    }

    /// The scheduler saturates sums instead of trapping; a sum that saturated is not exact
    /// afterwards, so resources whose amounts ever came near the limit are not compared.
    /// The GPU indices the scheduler keeps for a node: validation allows 1,024; the scheduler
    /// bounds its table at 65,536 whatever reaches it.
    static func gpuIndices(_ spec: NodeSpec) -> Int { Int(max(0, min(spec.capacity.gpu, 1 << 16))) }
    static func sat(_ a: Int64, _ b: Int64) -> Int64 { let (r, o) = a.addingReportingOverflow(b); return o ? (b > 0 ? .max : .min) : r }
    static func satMul(_ a: Int64, _ b: Int64) -> Int64 { let (r, o) = a.multipliedReportingOverflow(by: b); return o ? ((a < 0) == (b < 0) ? .max : .min) : r }
    /// Below 2^54 milli-units, a program's at most 400 operations cannot add up past Int64.
    func taint(_ r: WorkloadRequest) { for (name, x) in total(r) where x >= 1 << 54 { tainted.insert(name) } }
    func untainted(_ m: [String: Int64]) -> [String: Int64] { m.filter { !tainted.contains($0.key) && $0.value != 0 } }

    /// True while some workload holds a nomination (preempted victims still stopping): its
    /// placement and quota are reserved and invisible to the public admission view, so the
    /// usage comparisons wait until it is promoted or ends.
    func anyNomination() -> Bool { requests.keys.contains { s.nomination($0) != nil } }

    func milli(_ r: ResourceList) -> [String: Int64] {
        var m: [String: Int64] = [:]
        for (k, q) in r.amounts where q.milli != 0 { m[k] = q.milli }
        return m
    }

    func checkState() throws {
        if let v = pendingViolation { throw fail(v) }
        // Admissions: shape, nodes, GPU indices.
        var seen: [String: Set<Int>] = [:]
        for (k, adm) in admitted.sorted(by: { $0.key < $1.key }) {
            guard s.isAdmitted(k), let r = requests[k] else { throw fail("\(k) admitted in the model only") }
            if adm.assignments.count != r.replicas { throw fail("\(k) has \(adm.assignments.count) of \(r.replicas) replicas placed") }
            for a in adm.assignments {
                if Int64(a.gpus.count) != r.resources.gpu { throw fail("\(k) replica \(a.rank) has \(a.gpus.count) GPUs, asked \(r.resources.gpu)") }
                guard let n = nodes[a.node] else { throw fail("\(k) placed on \(a.node), which is not present") }
                for g in a.gpus {
                    if g < 0 || Int64(g) >= n.spec.capacity.gpu { throw fail("\(k) has GPU \(a.node)/\(g) beyond its \(n.spec.capacity.gpu)") }
                    if !seen[a.node, default: []].insert(g).inserted { throw fail("GPU \(a.node)/\(g) given twice (\(k))") }
                }
            }
        }
        for h in holds {
            for a in h.assignments {
                for g in a.gpus where !seen[a.node, default: []].insert(g).inserted {
                    throw fail("GPU \(a.node)/\(g) of the stopping \(h.key) given again")
                }
            }
        }
        for (k, r) in requests {
            if !s.contains(k) { throw fail("\(k) missing from the scheduler") }
            if s.isAdmitted(k) != (admitted[k] != nil) { throw fail("\(k): scheduler says admitted \(s.isAdmitted(k))") }
            if s.queueName(k) != r.queue { throw fail("\(k) in queue \(String(describing: s.queueName(k)))") }
        }
        let nominating = anyNomination()
        // Nodes: free GPU indices, allocated resources, workload count.
        var alloc: [String: [String: Int64]] = [:]
        var count: [String: Int] = [:]
        for adm in admitted.values {
            let per = milli(adm.request.resources)
            for a in adm.assignments { add(&alloc[a.node, default: [:]], per) }
            for n in Set(adm.assignments.map(\.node)) { count[n, default: 0] += 1 }
        }
        for h in holds {
            let per = milli(h.request.resources)
            for a in h.assignments { add(&alloc[a.node, default: [:]], per) }
            for n in Set(h.assignments.map(\.node)) { count[n, default: 0] += 1 }
        }
        for name in nodeNames {
            let u = s.nodeUsage(name)
            guard let n = nodes[name] else {
                if u != nil { throw fail("removed node \(name) still has usage") }
                continue
            }
            guard let u else { throw fail("node \(name) missing") }
            let cap = Self.gpuIndices(n.spec)
            let free = (0..<cap).filter { !(seen[name]?.contains($0) ?? false) }
            if u.freeGPUs != free && !nominating { throw fail("node \(name): free GPUs \(u.freeGPUs), expected \(free)") }
            if nominating { continue }
            if untainted(milli(u.allocated)) != untainted(alloc[name, default: [:]]) {
                throw fail("node \(name): allocated \(milli(u.allocated)), expected \(alloc[name, default: [:]])")
            }
            if u.workloads != count[name, default: 0] && !nominating { throw fail("node \(name): \(u.workloads) workloads, expected \(count[name, default: 0])") }
        }
        // Queues: usage along the tree, counts, order.
        var used: [String: [String: Int64]] = [:]
        var admittedIn: [String: Int] = [:], pendingIn: [String: Int] = [:]
        for adm in admitted.values {
            for a in path(adm.request.queue) { add(&used[a, default: [:]], total(adm.request)) }
            admittedIn[adm.request.queue, default: 0] += 1
        }
        for h in holds { for a in path(h.request.queue) { add(&used[a, default: [:]], total(h.request)) } }
        for (k, r) in requests where admitted[k] == nil { pendingIn[r.queue, default: 0] += 1 }
        for q in knownQueues.sorted() {
            guard let u = s.queueUsage(q) else { throw fail("queue \(q) unknown to the scheduler") }
            // Usage is only kept consistent for declared queues off parent loops: a rebuild
            // sums children into an undeclared parent or around a loop, which admissions,
            // following each queue's path, do not (a finding; such queues have no status).
            if !nominating && queues[q] != nil && !onLoop(q) && untainted(milli(u.allocated)) != untainted(used[q, default: [:]]) {
                throw fail("queue \(q): allocated \(milli(u.allocated)), expected \(used[q, default: [:]])")
            }
            if u.admitted != admittedIn[q, default: 0] { throw fail("queue \(q): \(u.admitted) admitted, expected \(admittedIn[q, default: 0])") }
            if u.pending != pendingIn[q, default: 0] && !nominating { throw fail("queue \(q): \(u.pending) pending, expected \(pendingIn[q, default: 0])") }
            let order = s.pendingOrder(q)
            for (a, b) in zip(order, order.dropFirst()) {
                guard let ra = requests[a], let rb = requests[b] else { throw fail("queue \(q) lists a removed workload") }
                let inOrder = ra.priority != rb.priority ? ra.priority > rb.priority : (ra.created != rb.created ? ra.created < rb.created : a < b)
                if !inOrder { throw fail("queue \(q): \(a) before \(b)") }
            }
        }
    }

    /// An admission made by a cycle: an active queue, schedulable matching nodes.
    func checkNewAdmission(_ k: ObjectKey, _ a: [ReplicaAssignment], before: [ObjectKey: Admission]) throws {
        guard let r = requests[k] else { return }
        if !isActive(r.queue) { throw fail("\(k) admitted to inactive queue \(r.queue)") }
        let pool = effectivePool(r.queue)
        for (i, x) in a.enumerated() {
            if x.rank != i { throw fail("\(k): replica \(i) has rank \(x.rank)") }
            guard let n = nodes[x.node] else { throw fail("\(k) placed on missing node \(x.node)") }
            if !n.ready || n.spec.unschedulable { throw fail("\(k) placed on unschedulable node \(x.node)") }
            if pool != nil && n.spec.resourcePool != pool { throw fail("\(k) of pool \(pool!) placed on \(x.node) of pool \(String(describing: n.spec.resourcePool))") }
            if let t = r.gpuType, n.spec.gpuType != t { throw fail("\(k) wants \(t), placed on \(x.node) (\(String(describing: n.spec.gpuType)))") }
            if !r.specifiedNodes.isEmpty && r.specifiedNodes[i] != x.node { throw fail("\(k) replica \(i) on \(x.node), specified \(r.specifiedNodes[i])") }
        }
        // Node resources the node names: not past capacity where this admission added.
        var perNode: [String: [String: Int64]] = [:]
        for adm in admitted.values { for x in adm.assignments { add(&perNode[x.node, default: [:]], milli(adm.request.resources)) } }
        for h in holds { for x in h.assignments { add(&perNode[x.node, default: [:]], milli(h.request.resources)) } }
        for x in a {
            guard let n = nodes[x.node] else { continue }
            for (res, q) in n.spec.capacity.amounts where res != "gpu" && r.resources[res].milli > 0 {
                if perNode[x.node]?[res] ?? 0 > q.milli { throw fail("node \(x.node) past its \(res) capacity after admitting \(k)") }
            }
        }
    }

    /// Quota: for every queue and resource an admission of this cycle added to, usage stays
    /// within capability, within deserved under disableOversell, and each tree's demand
    /// (usage or guarantee, whichever is larger, summed up the tree) within the root's share.
    func checkQuotaAfterCycle(_ new: [ObjectKey: [ReplicaAssignment]]) throws {
        guard !new.isEmpty else { return }
        var used: [String: [String: Int64]] = [:]
        var own: [String: [String: Int64]] = [:]
        for adm in admitted.values {
            for a in path(adm.request.queue) { add(&used[a, default: [:]], total(adm.request)) }
            add(&own[adm.request.queue, default: [:]], total(adm.request))
        }
        for h in holds {
            for a in path(h.request.queue) { add(&used[a, default: [:]], total(h.request)) }
            add(&own[h.request.queue, default: [:]], total(h.request))
        }
        for k in new.keys.sorted() {
            guard let r = requests[k] else { continue }
            let t = total(r)
            let p = path(r.queue)
            for a in p {
                guard let e = queues[a] else { continue }
                for (res, x) in t where x > 0 {
                    let u = used[a]?[res] ?? 0
                    if let cap = e.spec.capability, let c = cap.amounts[res], u > c.milli {
                        throw fail("queue \(a) past its capability of \(res) (\(u) > \(c.milli)) after admitting \(k)")
                    }
                    if e.spec.disableOversell, managed(root: p.last!, res), let d = s.effectiveDeserved(a)?[res].milli, u > d {
                        throw fail("queue \(a) (disableOversell) past its deserved \(res) (\(u) > \(d)) after admitting \(k)")
                    }
                }
            }
            // Tree share, only for trees without loops (the check's recursion needs a tree).
            let root = p.last!
            guard queues[root]?.spec.parent == nil else { continue }
            for (res, x) in t where x > 0 && managed(root: root, res) {
                let d = demand(root, res, own: own, depth: 0)
                let share = s.effectiveDeserved(root)?[res].milli ?? 0
                if d > share { throw fail("tree \(root): demand of \(res) \(d) past its deserved \(share) after admitting \(k)") }
            }
        }
    }

    /// A resource is managed in a tree when some declared queue of it names the resource in
    /// deserved or guarantee.
    func managed(root: String, _ res: String) -> Bool {
        queues.contains { name, e in
            path(name).last == root && (e.spec.deserved.amounts[res] != nil || e.spec.guarantee.amounts[res] != nil)
        }
    }

    func demand(_ q: String, _ res: String, own: [String: [String: Int64]], depth: Int) -> Int64 {
        var d = own[q]?[res] ?? 0
        if depth < 16 {
            for (c, e) in queues where e.spec.parent == q && c != q { d = d &+ demand(c, res, own: own, depth: depth + 1) }
        }
        let g = min(queues[q]?.spec.guarantee[res].milli ?? 0, s.effectiveDeserved(q)?[res].milli ?? 0)
        return max(d, g)
    }
}
