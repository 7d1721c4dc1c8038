import Testing
import Foundation
@testable import GantryAPI
@testable import ControllerRuntime
@testable import Controllers
@testable import Scheduler

// MARK: - The model: what the test declared, so it can say what must happen

/// A resource request or quota, in the units the manifests use (gpu, cpu cores, memory Gi).
struct StackAmounts: Equatable {
    var gpu: Int?
    var cpu: Int?
    var memory: Int?
    subscript(_ r: String) -> Int? {
        switch r { case "gpu": gpu; case "cpu": cpu; default: memory }
    }
    var yaml: String {
        var parts: [String] = []
        if let gpu { parts.append("gpu: \(gpu)") }
        if let cpu { parts.append("cpu: \(cpu)") }
        if let memory { parts.append("memory: \(memory)Gi") }
        return "{" + parts.joined(separator: ", ") + "}"
    }
    static let names = ["gpu", "cpu", "memory"]
}

struct StackQueue {
    var parent: String?
    var pool: String?
    var deserved: StackAmounts?
    var guarantee: StackAmounts?
    var capability: StackAmounts?
    var reclaimable: Bool?
    var disableOversell: Bool?
    var strict: Bool?
    var closed: Bool?

    func yaml(_ name: String) -> String {
        var y = "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: \(name)}\nspec:\n  description: random\n"
        if let parent { y += "  parent: \(parent)\n" }
        if let pool { y += "  resourcePool: \(pool)\n" }
        if let deserved { y += "  deserved: \(deserved.yaml)\n" }
        if let guarantee { y += "  guarantee: \(guarantee.yaml)\n" }
        if let capability { y += "  capability: \(capability.yaml)\n" }
        if let reclaimable { y += "  reclaimable: \(reclaimable)\n" }
        if let disableOversell { y += "  disableOversell: \(disableOversell)\n" }
        if let strict { y += "  queueingStrategy: \(strict ? "StrictFIFO" : "BestEffortFIFO")\n" }
        if let closed { y += "  state: \(closed ? "Closed" : "Open")\n" }
        return y
    }
}

struct StackNode {
    var pool: String?
    var gpus: Int
    var gpuType: String?
    var cpu: Int?
    var memory: Int?
    var amd = false
    var unschedulable: Bool?

    func yaml(_ name: String) -> String {
        var y = "apiVersion: gantry.dev/v1alpha1\nkind: Node\nmetadata: {name: \(name)}\nspec:\n"
        if let pool { y += "  resourcePool: \(pool)\n" }
        y += "  capacity: \(StackAmounts(gpu: gpus, cpu: cpu, memory: memory).yaml)\n"
        if let gpuType { y += "  gpuType: \(gpuType)\n" }
        if amd { y += "  gpuVendor: amd\n" }
        if let unschedulable { y += "  unschedulable: \(unschedulable)\n" }
        return y
    }
}

/// A workload with any subset of its optional fields (nil: left out of the manifest).
struct StackWorkload {
    var queue: String?
    var priority: String?
    var type: WorkloadType?
    var replicas: Int?
    var resources: StackAmounts?
    var emptyResources = false
    var gpuType: String?
    var specifiedNodes: [String]?
    var timeout: Int?
    var maxRetry: Int?
    var ttl: Int?
    var suspend: Bool?
    var env: Bool?
    var args: Bool?
    var entryPoint = false
    var command = "echo hi"

    var effectiveQueue: String { queue ?? "default" }
    var effectiveType: WorkloadType { type ?? .job }
    var effectiveReplicas: Int { specifiedNodes.map(\.count) ?? replicas ?? 1 }
    var suspended: Bool { suspend ?? false }
    func per(_ r: String) -> Int { resources?[r] ?? 0 }

    func yaml(_ key: ObjectKey) -> String {
        var y = "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(key.name)\(key.namespace == "default" && key.name.count % 2 == 0 ? "" : ", namespace: \(key.namespace)")}\nspec:\n"
        if entryPoint { y += "  entryPoint: \(Data(command.utf8).base64EncodedString())\n" } else { y += "  command: \"\(command)\"\n" }
        if let queue { y += "  queue: \(queue)\n" }
        if let priority { y += "  priority: \(priority)\n" }
        if let type { y += "  type: \(type.rawValue)\n" }
        if let replicas, specifiedNodes == nil { y += "  replicas: \(replicas)\n" }
        if emptyResources { y += "  resources: {}\n" }
        if var r = resources?.yaml {
            if let gpuType { r = String(r.dropLast()) + (r == "{}" ? "" : ", ") + "gpuType: \(gpuType)}" }
            y += "  resources: \(r)\n"
        }
        if let specifiedNodes { y += "  specifiedNodes: [\(specifiedNodes.joined(separator: ", "))]\n" }
        if let timeout { y += "  timeout: \(timeout)\n" }
        if let maxRetry { y += "  maxRetry: \(maxRetry)\n" }
        if let ttl { y += "  ttlSecondsAfterFinished: \(ttl)\n" }
        if let suspend { y += "  suspend: \(suspend)\n" }
        if env == true { y += "  env: {STEP: \"1\"}\n" }
        if args == true { y += "  args: [--flag, \"a b\"]\n" }
        return y
    }
}

/// The declared cluster, as the test wrote it (only valid specs are written).
struct StackModel {
    var pools = Set<String>()
    var nodes: [String: StackNode] = [:]
    var queues: [String: StackQueue] = [:]
    var workloads: [ObjectKey: StackWorkload] = [:]

    /// The queue and its ancestors, leaf first; nil when one is missing or the chain loops.
    func chain(_ q: String) -> [String]? {
        var out: [String] = []
        var cur: String? = q
        while let c = cur {
            guard queues[c] != nil, !out.contains(c) else { return nil }
            out.append(c)
            cur = queues[c]!.parent
        }
        return out
    }
    func children(_ q: String) -> [String] { queues.filter { $0.value.parent == q }.map(\.key).sorted() }

    /// Deserved as the scheduler takes it: the queue's own amount, else its children's sum.
    func deserved(_ q: String, _ r: String) -> Int {
        if let d = queues[q]?.deserved?[r] { return d }
        return children(q).reduce(0) { $0 + deserved($1, r) }
    }
    func guarantee(_ q: String, _ r: String) -> Int { min(queues[q]?.guarantee?[r] ?? 0, deserved(q, r)) }
    /// max(own usage + children's demand, guarantee), with `total` used by queue `user` only.
    func demand(_ q: String, _ r: String, user: String, total: Int) -> Int {
        let inner = (q == user ? total : 0) + children(q).reduce(0) { $0 + demand($1, r, user: user, total: total) }
        return max(inner, guarantee(q, r))
    }
    func tree(_ root: String) -> [String] { queues.keys.filter { chain($0)?.last == root }.sorted() }
    func managed(_ root: String, _ r: String) -> Bool {
        tree(root).contains { queues[$0]!.deserved?[r] != nil || queues[$0]!.guarantee?[r] != nil }
    }

    /// Whether a workload would be admitted if it were alone in the cluster: its queue chain
    /// exists, is open and has a pool that exists; its total fits every capability, every
    /// disableOversell share and its tree's share next to the other queues' guarantees; and
    /// its replicas fit the empty, schedulable nodes it may use. Conservative: when in doubt, false.
    func fitsAlone(_ w: StackWorkload) -> Bool {
        guard !w.suspended, let path = chain(w.effectiveQueue), let root = path.last else { return false }
        guard path.allSatisfy({ queues[$0]!.closed != true }) else { return false }
        let pool = path.lazy.compactMap { self.queues[$0]!.pool }.first
        if let pool, !pools.contains(pool) { return false }
        let n = w.effectiveReplicas
        for r in StackAmounts.names where w.per(r) > 0 {
            let total = w.per(r) * n
            for a in path {
                if let cap = queues[a]!.capability?[r], total > cap { return false }
                if queues[a]!.disableOversell == true && managed(root, r) && total > deserved(a, r) { return false }
            }
            if managed(root, r) && demand(root, r, user: w.effectiveQueue, total: total) > deserved(root, r) { return false }
        }
        func eligible(_ name: String) -> Bool {
            guard let node = nodes[name], node.unschedulable != true else { return false }
            if let p = node.pool, !pools.contains(p) { return false }
            if let pool, node.pool != pool { return false }
            if let t = w.gpuType, node.gpuType != t { return false }
            return true
        }
        func fit(_ name: String) -> Int {
            let node = nodes[name]!
            var k = n
            if w.per("gpu") > 0 { k = min(k, node.gpus / w.per("gpu")) }
            if w.per("cpu") > 0, let c = node.cpu { k = min(k, c / w.per("cpu")) }
            if w.per("memory") > 0, let m = node.memory { k = min(k, m / w.per("memory")) }
            return k
        }
        if let sn = w.specifiedNodes { return sn.allSatisfy { eligible($0) && fit($0) >= 1 } }
        return nodes.keys.filter(eligible).reduce(0) { $0 + fit($1) } >= n
    }
}

// MARK: - The randomized test
//
// Each seed builds a random cluster (pools, nodes, a queue tree with any subset of deserved,
// guarantee and capability), then takes 120-240 random steps through the real decoder,
// inventory, reconcilers, admission and lifecycle: workloads added (any subset of optional
// fields, down to only a command), edited, suspended, resumed and deleted; replicas started
// and exiting 0 or 1; replicas told to stop exiting only when a later step says so (or on
// SIGKILL after the grace period); nodes cordoned, resized, removed and added; queues and
// pools changed. After every step `check` runs. Then arrivals stop and `liveness` drains.

/// What the runs did, over all seeds: each must have happened for the test to mean anything.
struct StackTally {
    var steps = 0, admitted = 0, preempted = 0, reclaimed = 0, waitedForVictims = 0, slowVictimExits = 0, killed = 0
    var exits0 = 0, exits1 = 0, suspends = 0, resumes = 0, cordons = 0, nodeRemovals = 0, commandOnly = 0, livenessChecked = 0
}

struct StackPropertyTests {
    static let queueNames = ["default", "org", "team-a", "team-b", "q1", "q2"]
    static let nodeNames = ["n1", "n2", "n3", "n4", "n5"]
    static let poolNames = ["p1", "p2"]

    /// Seeds 1...32, or only `GANTRY_STACK_SEED` when set (to replay one failure; the stack
    /// iterates hashed sets, so set SWIFT_DETERMINISTIC_HASHING=1 too for the same run twice).
    static var seeds: [UInt64] {
        if let s = ProcessInfo.processInfo.environment["GANTRY_STACK_SEED"], let v = UInt64(s) { return [v] }
        return Array(1...32)
    }

    @Test func randomStepsOverTheWholeStackKeepTheInvariantsAndEveryFittingWorkloadIsAdmitted() {
        var tally = StackTally()
        for seed in Self.seeds {
            // Unbuffered, so a trap's output still says which seed it was.
            FileHandle.standardError.write(Data("stack property run: seed \(seed) (replay: SWIFT_DETERMINISTIC_HASHING=1 GANTRY_STACK_SEED=\(seed) GANTRY_STACK_TRACE=1)\n".utf8))
            var run = StackRun(seed: seed)
            run.run(&tally)
        }
        if Self.seeds.count > 1 {
            #expect(tally.admitted > 0 && tally.preempted > 0 && tally.reclaimed > 0 && tally.waitedForVictims > 0, "\(tally)")
            #expect(tally.slowVictimExits > 0 && tally.killed > 0 && tally.exits0 > 0 && tally.exits1 > 0, "\(tally)")
            #expect(tally.suspends > 0 && tally.resumes > 0 && tally.cordons > 0 && tally.nodeRemovals > 0, "\(tally)")
            #expect(tally.commandOnly > 0 && tally.livenessChecked > 0, "\(tally)")
        }
    }
}

/// One seeded run: random steps, an invariant check after each, then the liveness phase.
struct StackRun {
    let seed: UInt64
    var rng: SplitMix64
    var h = StackHarness(grace: 30)
    var m = StackModel()
    var nextName = 0
    var eventCursor = 0
    /// (victim, preemptor) pairs preempted since the preemptor was last admitted, edited or deleted.
    var pairs = Set<[String]>()
    /// What the last step did, for failure messages (and printed with GANTRY_STACK_TRACE=1).
    var did = ""
    /// Capability and share limits hold for what the scheduler admits under the quotas in
    /// force; once a queue changed mid-run (a quota lowered keeps what is admitted), usage may
    /// stay above a new limit, so those two checks stop there. Odd seeds never change queues.
    var queuesSettled = false
    var quotaChecked = true
    static let trace = ProcessInfo.processInfo.environment["GANTRY_STACK_TRACE"] != nil

    init(seed: UInt64) {
        self.seed = seed
        rng = SplitMix64(seed: seed)
        // A third of the seeds reconcile one key at a time; the others in batches, as the
        // daemon's workers take a long queue.
        h.batch = seed % 3 == 0 ? 1 : 2 + Int(seed % 61)
        // Half the seeds make a cycle's statuses in parallel, as the first pass of a load does.
        h.admission.parallelStatusesFrom = seed % 2 == 0 ? 2 : 2048
    }

    mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    mutating func maybe<T>(_ p: Double, _ make: (inout StackRun) -> T) -> T? { chance(p) ? make(&self) : nil }

    // MARK: Generators

    mutating func amounts(gpu: ClosedRange<Int>) -> StackAmounts {
        var a = StackAmounts()
        a.gpu = maybe(0.9) { $0.int(gpu) }
        a.cpu = maybe(0.2) { $0.int(1...8) * 16 }
        return a
    }

    /// Any subset of deserved/guarantee/capability, valid (guarantee <= deserved <= capability).
    mutating func randomQueue(_ name: String) -> StackQueue {
        var q = StackQueue()
        let others = m.queues.keys.filter { $0 != name }.sorted()
        if !others.isEmpty && chance(0.6) { q.parent = pick(others) }
        if chance(0.2) { q.pool = pick(StackPropertyTests.poolNames) }
        if chance(0.7) {
            let d = amounts(gpu: 0...32)
            if chance(0.5) { q.guarantee = StackAmounts(gpu: d.gpu.map { int(0...$0) }, cpu: d.cpu.map { int(0...$0) }) }
            if chance(0.4) {
                var c = StackAmounts(gpu: d.gpu.map { $0 + int(0...16) } ?? int(0...40), cpu: d.cpu.map { $0 + 16 })
                if chance(0.1) { c.gpu = nil }
                q.capability = c
            }
            q.deserved = d
        } else if chance(0.3) {
            q.capability = StackAmounts(gpu: int(0...40))
        }
        // Guarantee only with a deserved share of the same resource, so the spec stays valid.
        if let g = q.guarantee {
            q.guarantee = StackAmounts(gpu: q.deserved?.gpu == nil ? nil : g.gpu, cpu: q.deserved?.cpu == nil ? nil : g.cpu)
        }
        if let c = q.capability, let g = q.guarantee {
            q.guarantee = StackAmounts(gpu: g.gpu.map { min($0, c.gpu ?? $0) }, cpu: g.cpu.map { min($0, c.cpu ?? $0) })
        }
        if let c = q.capability, let d = q.deserved {
            q.deserved = StackAmounts(gpu: d.gpu.map { min($0, c.gpu ?? $0) }, cpu: d.cpu.map { min($0, c.cpu ?? $0) })
        }
        q.reclaimable = maybe(0.5) { $0.chance(0.7) }
        q.disableOversell = maybe(0.2) { $0.chance(0.5) }
        q.strict = maybe(0.2) { $0.chance(0.5) }
        q.closed = maybe(0.15) { $0.chance(0.4) }
        return q
    }

    mutating func randomNode() -> StackNode {
        var n = StackNode(gpus: pick([0, 4, 8, 8, 8]))
        if chance(0.7) { n.pool = pick(StackPropertyTests.poolNames) }
        n.gpuType = maybe(0.8) { $0.chance(0.8) ? "H100" : "A100" }
        n.cpu = maybe(0.3) { $0.int(2...8) * 16 }
        n.memory = maybe(0.2) { $0.int(1...4) * 256 }
        n.amd = chance(0.1)
        n.unschedulable = maybe(0.2) { $0.chance(0.3) }
        return n
    }

    mutating func randomWorkload() -> StackWorkload {
        var w = StackWorkload()
        if chance(0.15) { return w }   // only a command
        if m.queues["team-a"]?.parent == "org" && m.queues["team-b"]?.parent == "org" && chance(0.4) {
            // Traffic for the reclaim case: whole-node gangs in the two teams.
            w.queue = chance(0.5) ? "team-a" : "team-b"
            w.type = pick([.pytorchJob, .job, .deployment])
            w.replicas = int(1...2)
            w.resources = StackAmounts(gpu: pick([4, 8, 8]))
            w.priority = maybe(0.3) { $0.pick(["low", "high"]) }
            return w
        }
        let known = m.queues.keys.sorted()
        w.queue = maybe(0.85) { $0.chance(0.9) && !known.isEmpty ? $0.pick(known) : $0.pick(StackPropertyTests.queueNames) }
        w.priority = maybe(0.5) { $0.pick(["-1", "0", "1", "2", "low", "high", "highest"]) }
        w.type = maybe(0.6) { $0.pick([WorkloadType.pytorchJob, .mpiJob, .job, .job, .deployment, .statefulSet, .authoring]) }
        if w.type != .authoring { w.replicas = maybe(0.6) { $0.int(1...3) } }
        if chance(0.05) { w.emptyResources = true } else {
            w.resources = maybe(0.85) { r in
                var a = StackAmounts(gpu: r.maybe(0.9) { $0.pick([0, 1, 2, 4, 8, 8]) })
                a.cpu = r.maybe(0.15) { $0.pick([1, 8, 32]) }
                a.memory = r.maybe(0.1) { $0.pick([16, 128]) }
                return a
            }
            if w.resources != nil { w.gpuType = maybe(0.15) { $0.pick(["H100", "A100"]) } }
        }
        if w.type != .authoring && chance(0.05) { w.specifiedNodes = [pick(StackPropertyTests.nodeNames)] }
        w.timeout = maybe(0.1) { $0.pick([0, 60, 300]) }
        w.maxRetry = maybe(0.3) { $0.int(0...2) }
        w.ttl = maybe(0.1) { $0.pick([0, 60]) }
        w.suspend = maybe(0.1) { $0.chance(0.3) }
        w.env = maybe(0.2) { _ in true }
        w.args = maybe(0.1) { _ in true }
        w.entryPoint = chance(0.1)
        return w
    }

    // MARK: Applying

    static func path(_ key: ObjectKey) -> String { "workloads/\(key.namespace)/\(key.name).yaml" }
    mutating func note(_ s: String) {
        did = did.isEmpty ? s : did + "; " + s
        if Self.trace { print("  seed \(seed): \(s)") }
    }
    mutating func putQueue(_ name: String, _ q: StackQueue?) {
        note(q.map { "queue \(name) " + $0.yaml(name).split(separator: "\n").dropFirst(4).joined(separator: " ") } ?? "delete queue \(name)")
        m.queues[name] = q
        if queuesSettled { quotaChecked = false }
        if let q { h.apply("queues/\(name).yaml", q.yaml(name)) } else { h.remove("queues/\(name).yaml") }
    }
    mutating func putNode(_ name: String, _ n: StackNode?) {
        note(n.map { "node " + $0.yaml(name).split(separator: "\n").dropFirst(2).joined(separator: " ") } ?? "delete node \(name)")
        m.nodes[name] = n
        if let n { h.apply("nodes/\(name).yaml", n.yaml(name)) } else { h.remove("nodes/\(name).yaml") }
    }
    mutating func putPool(_ name: String, _ on: Bool) {
        note("\(on ? "add" : "delete") pool \(name)")
        if on { m.pools.insert(name); h.apply("pools/\(name).yaml", "apiVersion: gantry.dev/v1alpha1\nkind: ResourcePool\nmetadata: {name: \(name)}\n") } else { m.pools.remove(name); h.remove("pools/\(name).yaml") }
    }
    mutating func putWorkload(_ key: ObjectKey, _ w: StackWorkload?) {
        pairs = pairs.filter { !$0.contains(key.qualifiedName) }
        note(w.map { "workload \(key.qualifiedName) " + $0.yaml(key).split(separator: "\n").dropFirst(3).joined(separator: " ") } ?? "delete workload \(key.qualifiedName)")
        m.workloads[key] = w
        if let w { h.apply(Self.path(key), w.yaml(key)) } else { h.remove(Self.path(key)) }
    }

    mutating func setUp() {
        for p in StackPropertyTests.poolNames where chance(0.8) { putPool(p, true) }
        for n in StackPropertyTests.nodeNames.prefix(int(1...5)) { putNode(n, randomNode()) }
        if chance(0.5) {
            // The shape of the issue's reclaim case, beside whatever else comes.
            putQueue("org", StackQueue(deserved: StackAmounts(gpu: 32)))
            putQueue("team-a", StackQueue(parent: "org", deserved: StackAmounts(gpu: 16), capability: StackAmounts(gpu: 24), reclaimable: true))
            putQueue("team-b", StackQueue(parent: "org", deserved: StackAmounts(gpu: 16), guarantee: StackAmounts(gpu: 8)))
            for n in StackPropertyTests.nodeNames.prefix(4) { putNode(n, StackNode(pool: chance(0.5) ? nil : m.pools.first, gpus: 8, gpuType: "H100")) }
        }
        for name in StackPropertyTests.queueNames where m.queues[name] == nil && chance(0.5) { putQueue(name, randomQueue(name)) }
    }

    // MARK: Steps

    mutating func step(_ n: Int, _ tally: inout StackTally, arrivals: Bool) {
        let op = int(0...99)
        let keys = m.workloads.keys.sorted()
        let live = h.rt.live
        switch op {
        case 0..<22 where arrivals:
            let ns = chance(0.5) ? "default" : "team-a"
            nextName += 1
            let key = ObjectKey(.workload, namespace: ns, name: "w\(nextName)")
            let w = randomWorkload()
            if w.queue == nil && w.resources == nil && !w.emptyResources { tally.commandOnly += 1 }
            putWorkload(key, w)
        case 22..<30 where !keys.isEmpty:
            let key = pick(keys)
            var w = m.workloads[key]!
            switch int(0...5) {
            case 0: w.priority = pick(["-1", "0", "2", "high"])
            case 1: w.resources = StackAmounts(gpu: pick([1, 2, 4, 8])); w.emptyResources = false
            case 2: if w.specifiedNodes == nil && w.type != .authoring { w.replicas = int(1...3) }
            case 3: w.command = "echo \(n)"
            default:
                w.suspend = !w.suspended
                if w.suspended { tally.suspends += 1 } else { tally.resumes += 1 }
            }
            putWorkload(key, w)
        case 30..<35 where !keys.isEmpty:
            putWorkload(pick(keys), nil)
        case 35..<50:
            let waiting = live.filter { !$0.1.started }
            for (ref, _) in waiting.prefix(int(1...4)) { h.started(ref) }
        case 50..<64:
            let running = live.filter { $0.1.started && !$0.1.terminated && !$0.1.killed }
            if !running.isEmpty {
                let (ref, _) = pick(running)
                let code: Int32 = chance(0.7) ? 0 : 1
                if code == 0 { tally.exits0 += 1 } else { tally.exits1 += 1 }
                h.exited(ref, code)
            }
        case 64..<74:
            // A victim that was slow to stop is gone at last.
            let stopping = live.filter { $0.1.terminated }
            if !stopping.isEmpty {
                tally.slowVictimExits += 1
                h.exited(pick(stopping).0, 143)
            }
        case 74..<84:
            h.advance(pick([0.5, 2, 10, 31, 65]))
        case 84..<88:
            let names = m.nodes.keys.sorted()
            if !names.isEmpty {
                let name = pick(names)
                var node = m.nodes[name]!
                node.unschedulable = !(node.unschedulable ?? false)
                if node.unschedulable == true { tally.cordons += 1 }
                putNode(name, node)
            }
        case 88..<91:
            let name = pick(StackPropertyTests.nodeNames)
            if m.nodes[name] != nil {
                tally.nodeRemovals += 1
                putNode(name, nil)
            } else {
                putNode(name, randomNode())
            }
        case 91..<93:
            let names = m.nodes.keys.sorted()
            if !names.isEmpty {
                let name = pick(names)
                var node = m.nodes[name]!
                node.gpus = pick([0, 4, 8, 16])
                putNode(name, node)
            }
        case 93..<97 where seed % 2 == 0:
            let name = pick(StackPropertyTests.queueNames)
            if m.queues[name] != nil && chance(0.3) { putQueue(name, nil) } else { putQueue(name, randomQueue(name)) }
        case 97..<100:
            let name = pick(StackPropertyTests.poolNames)
            putPool(name, !m.pools.contains(name))
        default:
            break
        }
        h.reapKilled()
    }

    // MARK: Checks

    /// After every step: every workload has a status (and so a phase); a pending one without
    /// an admission says why in Admitted=False; no two live replicas share a GPU; no admission
    /// gives a GPU a live replica of another workload still holds; the scheduler's own
    /// bookkeeping agrees with what it admitted and holds; nothing was admitted past a
    /// capability or its tree's share; queue and node statuses show the scheduler's usage;
    /// nobody is preempted twice by the same preemptor without being admitted in between.
    mutating func check(_ ctx: String, _ tally: inout StackTally) {
        let fresh = h.events.since(eventCursor)
        eventCursor += fresh.count
        var admittedNow = Set<String>()
        for e in fresh {
            let who = "\(e.involved.namespace)/\(e.involved.name)"
            if Self.trace && e.involved.kind == "Workload" { print("    event \(who) \(e.reason): \(e.message.prefix(160))") }
            if e.reason == "QuotaReserved" {
                tally.admitted += 1
                admittedNow.insert(who)
                pairs = pairs.filter { $0[1] != who }
            } else if ["NodeChanged", "NodeRemoved", "SpecChanged"].contains(e.reason) {
                // Its admission or nomination was withdrawn: it starts over.
                pairs = pairs.filter { $0[1] != who }
            } else if e.reason == "Preempted" {
                tally.preempted += 1
                if e.message.contains("reclaims quota") { tally.reclaimed += 1 }
                let by = e.message.components(separatedBy: "preempted by ").dropFirst().first?.split(whereSeparator: { $0 == " " || $0 == "," }).first.map(String.init) ?? "?"
                #expect(!pairs.contains([who, by]), "\(ctx): \(who) preempted twice by \(by) (not admitted in between): \(e.message)")
                pairs.insert([who, by])
            }
        }
        for (key, w) in m.workloads {
            guard let s = h.status(key) else {
                Issue.record("\(ctx): \(key.qualifiedName) has no status")
                continue
            }
            let adm = s.conditions.get(ConditionType.admitted)
            if s.phase == .pending && s.admission.isEmpty {
                #expect(adm?.status == "False" && adm?.reason.isEmpty == false, "\(ctx): pending \(key.qualifiedName) without Admitted=False and a reason: \(String(describing: adm))")
            }
            if !s.admission.isEmpty {
                #expect(adm?.status == "True", "\(ctx): \(key.qualifiedName) has an admission but Admitted is \(adm?.status ?? "missing")")
                #expect(s.admission.count == w.effectiveReplicas || w.suspended, "\(ctx): \(key.qualifiedName) has \(s.admission.count) of \(w.effectiveReplicas) replicas placed")
            }
            if s.message.contains("waiting for the workloads it preempted to stop") { tally.waitedForVictims += 1 }
        }
        // Live processes: no GPU index used twice on a node.
        var used: [String: [Int: ReplicaRef]] = [:]
        for (ref, p) in h.rt.live {
            for g in p.gpus {
                if let other = used[p.node]?[g] {
                    Issue.record("\(ctx): GPU \(p.node)/\(g) used by two live replicas: \(other) and \(ref)")
                }
                used[p.node, default: [:]][g] = ref
            }
        }
        // Admissions: no GPU given twice, none beyond the node, none a live replica of another workload holds.
        var given: [String: [Int: ObjectKey]] = [:]
        for key in m.workloads.keys.sorted() {
            for a in h.status(key)?.admission ?? [] {
                for g in a.gpus {
                    if let other = given[a.node]?[g] { Issue.record("\(ctx): GPU \(a.node)/\(g) admitted to \(other.qualifiedName) and \(key.qualifiedName)") }
                    given[a.node, default: [:]][g] = key
                    if let holder = used[a.node]?[g], holder.key != key {
                        Issue.record("\(ctx): GPU \(a.node)/\(g) admitted to \(key.qualifiedName) while a replica of \(holder.key.qualifiedName) still runs on it")
                    }
                    if let node = m.nodes[a.node] {
                        #expect(g < node.gpus, "\(ctx): \(key.qualifiedName) admitted on \(a.node)/\(g), beyond its \(node.gpus) GPUs")
                    }
                }
            }
        }
        h.admission.withState { s in checkScheduler(s, ctx, admittedNow: quotaChecked ? admittedNow : []) }
        for name in m.queues.keys.sorted() {
            let want = h.admission.withState { $0.queueUsage(name)?.allocated.gpu }
            let have = h.queueStatus(name)?.allocated.gpu
            #expect(want == nil || have == want, "\(ctx): queue \(name) status shows \(have.map(String.init) ?? "nothing") GPUs allocated, the scheduler \(want ?? -1)")
        }
        for name in m.nodes.keys.sorted() {
            let want = h.admission.withState { $0.nodeUsage(name)?.allocated.gpu }
            let have = h.inventory.statuses.get(ObjectKey(.node, name: name))?.node?.allocated.gpu
            #expect(want == nil || have == want, "\(ctx): node \(name) status shows \(have.map(String.init) ?? "nothing") GPUs allocated, the scheduler \(want ?? -1)")
        }
    }

    /// The scheduler property tests' invariants, from the admitted workloads and holds. Quota
    /// limits are checked where something was admitted in this step: a queue's quota may be
    /// lowered below what it already runs (that keeps what is admitted), never admitted past.
    func checkScheduler(_ s: SchedulerState, _ ctx: String, admittedNow: Set<String>) {
        var gpuSeen: [String: Set<Int>] = [:]
        // GPUs of stopping victims whose quota a nomination took over: only it may share them.
        var handedOver: [String: Set<Int>] = [:]
        var used: [Int: [Int64]] = [:]
        for (k, hs) in s.holds {
            for hold in hs {
                for a in hold.assignments {
                    for g in a.gpus {
                        #expect(gpuSeen[a.node, default: []].insert(g).inserted, "\(ctx): GPU \(a.node)/\(g) of the stopping \(k) given again")
                        if !hold.counted { handedOver[a.node, default: []].insert(g) }
                    }
                }
                if hold.counted { for a in s.queues[hold.queue].path { used[a, default: []].add(hold.total) } }
            }
        }
        var admittedIn = Set<[Int]>()
        // Nominations first: their GPUs may be the handed-over ones, never anyone else's.
        let order = s.workloads.indices.sorted { a, b in s.nominated.contains(Int32(a)) && !s.nominated.contains(Int32(b)) }
        for i in order {
            let w = s.workloads[i]
            guard w.present && w.admitted else { continue }
            let nominated = s.nominated.contains(Int32(i))
            if nominated { #expect(!w.awaiting.isEmpty, "\(ctx): \(w.key) nominated without victims to wait for") }
            #expect(w.assignments.count == w.request.replicas, "\(ctx): \(w.key) has \(w.assignments.count) of \(w.request.replicas) replicas placed")
            for a in w.assignments {
                #expect(a.gpus.count == w.gpusPerReplica, "\(ctx): \(w.key) replica with \(a.gpus.count) GPUs")
                let cap = s.nodes[s.nodeIndex[a.node]!].gpuCount
                for g in a.gpus {
                    #expect(g >= 0 && g < cap, "\(ctx): GPU index \(g) on \(a.node) beyond \(cap)")
                    if nominated && handedOver[a.node, default: []].contains(g) { continue }
                    #expect(gpuSeen[a.node, default: []].insert(g).inserted, "\(ctx): GPU \(a.node)/\(g) given twice")
                }
            }
            for a in s.queues[w.queue].path { used[a, default: []].add(w.total) }
            if admittedNow.contains(w.key.qualifiedName) {
                for a in s.queues[w.queue].path { for r in 0..<w.total.count where w.total[r] > 0 { admittedIn.insert([a, r]) } }
            }
        }
        // A queue that does not exist, or whose parent chain loops, has no well-defined usage:
        // its entry may add up its children although their paths stop below it.
        func illDefined(_ i: Int) -> Bool {
            if s.queues[i].spec == nil { return true }
            var seen: Set<Int> = [i]
            var cur = s.queues[i].parent
            while let c = cur { if !seen.insert(c).inserted { return true }; cur = s.queues[c].parent }
            return false
        }
        for (i, q) in s.queues.enumerated() where !illDefined(i) {
            let u = used[i] ?? []
            for r in 0..<max(u.count, q.used.count) {
                #expect(at(u, r) == at(q.used, r), "\(ctx): queue \(q.name) bookkeeping drifted (\(s.slots.names[r]) \(at(q.used, r)), recomputed \(at(u, r)))")
                if at(q.capNamed, r) && admittedIn.contains([i, r]) {
                    #expect(at(u, r) <= at(q.capability, r), "\(ctx): queue \(q.name) admitted past its capability of \(s.slots.names[r])")
                }
            }
        }
        func demand(_ i: Int, _ r: Int) -> Int64 {
            var own: Int64 = 0
            for w in s.workloads where w.present && w.admitted && w.queue == i { own += at(w.total, r) }
            for hs in s.holds.values { for hold in hs where hold.queue == i && hold.counted { own += at(hold.total, r) } }
            for c in s.queues[i].children { own += demand(c, r) }
            return max(own, at(s.queues[i].guarantee, r))
        }
        for (i, q) in s.queues.enumerated() where q.parent == nil && q.spec != nil {
            for r in 0..<q.managed.count where q.managed[r] && admittedIn.contains([i, r]) {
                #expect(demand(i, r) <= at(q.deserved, r), "\(ctx): tree \(q.name) admitted past its share of \(s.slots.names[r]) or lends a guarantee")
            }
        }
    }

    // MARK: The run

    mutating func run(_ tally: inout StackTally) {
        setUp()
        queuesSettled = true
        let steps = 120 + int(0...120)
        for n in 0..<steps {
            did = ""
            if Self.trace { print("seed \(seed) step \(n)") }
            step(n, &tally, arrivals: true)
            tally.steps += 1
            if Self.trace { print("  queues: " + m.queues.keys.sorted().map { "\($0)<-\(m.queues[$0]!.parent ?? "")" }.joined(separator: " ")) }
            check("seed \(seed) step \(n)", &tally)
        }
        liveness(&tally)
    }

    /// Arrivals stop; services are suspended or deleted (they would hold their quota for ever);
    /// every stopping replica exits, every running one of a run-to-completion workload exits 0,
    /// and the clock moves on, for a bounded number of rounds. Then no workload that would fit
    /// alone in its queue's share may still wait.
    mutating func liveness(_ tally: inout StackTally) {
        for key in m.workloads.keys.sorted() {
            guard var w = m.workloads[key], !w.effectiveType.runsToCompletion, !w.suspended else { continue }
            if chance(0.5) { putWorkload(key, nil) } else { w.suspend = true; putWorkload(key, w) }
        }
        check("seed \(seed) liveness start", &tally)
        for round in 0..<40 {
            h.startAll()
            for (ref, p) in h.rt.live where p.terminated || p.killed { h.exited(ref, p.killed ? 137 : 143) }
            for (ref, p) in h.rt.live where p.started { h.exited(ref, 0) }
            h.advance(20)
            check("seed \(seed) liveness round \(round)", &tally)
        }
        for key in m.workloads.keys.sorted() {
            let w = m.workloads[key]!
            guard let s = h.status(key), s.phase == .pending, s.admission.isEmpty, m.fitsAlone(w) else { continue }
            // A StrictFIFO queue may be blocked for good by a head that does not fit.
            if let q = m.queues[w.effectiveQueue], q.strict == true,
               m.workloads.contains(where: { $0.value.effectiveQueue == w.effectiveQueue && h.status($0.key)?.phase == .pending && !m.fitsAlone($0.value) && !$0.value.suspended }) { continue }
            let adm = s.conditions.get(ConditionType.admitted)
            Issue.record("seed \(seed): after the liveness rounds \(key.qualifiedName) (queue \(w.effectiveQueue), \(w.effectiveReplicas)x\(w.resources?.yaml ?? "{}")) would fit alone but still waits: \(adm?.reason ?? "-"): \(s.message)")
        }
        tally.livenessChecked += 1
        tally.killed += h.rt.kills
    }
}
