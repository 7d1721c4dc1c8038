import GantryAPI

/// The admission state of the whole cluster: nodes and their free GPU indices, the queue tree
/// and its usage, pending and admitted workloads. Pure: no I/O, no clock (cycles take the time
/// as an argument), not thread-safe (the owner serialises access). Changes come in one object
/// at a time; `cycle` admits, places and preempts.
public final class SchedulerState {
    public internal(set) var slots = ResourceSlots()

    // MARK: Nodes
    struct NodeEntry {
        var name: String
        var pool: String?
        var gpuType: String?
        var vendor: GPUVendor
        var schedulable: Bool
        /// Capacity per slot; `limited` marks the slots the node names (gpu is always limited).
        var capacity: [Int64]
        var limited: [Bool]
        var gpuCount: Int
        var allocated: [Int64] = []
        /// Per GPU index, how many placements use it: an admission, a hold of stopping
        /// processes, and a nomination waiting for those processes may share one.
        var gpuUsed: [Int32]
        var freeGPUs: Int
        /// Workload id -> replicas placed here.
        var workloads: [Int32: Int] = [:]
        var present = true
    }
    var nodes: [NodeEntry] = []
    var nodeIndex: [String: Int] = [:]
    /// Eligible node lists by (pool, gpuType) requirement; cleared when nodes change.
    var eligibleCache: [EligibleKey: [Int]] = [:]
    struct EligibleKey: Hashable { var pool: String?; var gpuType: String? }

    // MARK: Queues
    struct QueueEntry {
        var name: String
        var spec: QueueSpec?
        var valid = true
        var parent: Int?
        var children: [Int] = []
        var root: Int = 0
        /// Leaf first, root last.
        var path: [Int] = []
        var inactive: WaitReason?
        var pool: String?
        var deserved: [Int64] = []
        var guarantee: [Int64] = []
        var capability: [Int64] = []
        var capNamed: [Bool] = []
        /// Per root: slots some queue of the tree names in deserved or guarantee.
        var managed: [Bool] = []
        var own: [Int64] = []
        var used: [Int64] = []
        /// own + sum of children's demand; demand = max(inner, guarantee).
        var inner: [Int64] = []
        var demand: [Int64] = []
        var pending: [Int32] = []
        var sorted = true
        var admitted = 0
        var admittedSet = Set<Int32>()
        /// Bumped when the queue gains a pending workload or its spec changes.
        var epoch = 1
        var triedEpoch = 0
        var triedGlobal = 0
        var positionsDirty = false
        /// The workloads the last full pass attempted (each failed, with its kind); every
        /// other pending workload was dominated by one of them. While they still fail the
        /// same way and the queue has not changed, the rest need no look.
        var reps: [(id: Int32, kind: ReasonKind)] = []
        var repsValid = false
    }
    var queues: [QueueEntry] = []
    var queueIndex: [String: Int] = [:]
    /// Bumped whenever capacity is released or nodes/queues change: every queue is worth a retry.
    var globalEpoch = 1

    // MARK: Workloads
    struct WorkloadEntry {
        var key: ObjectKey
        var request: WorkloadRequest
        var queue: Int
        var perReplica: [Int64]
        var total: [Int64]
        var gpusPerReplica: Int
        var admitted = false
        var assignments: [ReplicaAssignment] = []
        var nodeIdx: [Int] = []
        /// Admission order, for choosing the most recently admitted victims.
        var admittedAt = 0.0
        var admittedSeq = 0
        var reason: WaitReason?
        var reasonKind: ReasonKind?
        var position: Int?
        var shape: Int32 = 0
        /// Workloads that preempted this one; it never preempts them in turn.
        var preemptedBy = Set<ObjectKey>()
        /// While non-empty the workload is *nominated*: its placement and quota are reserved
        /// (counted as admitted, so nothing else takes them) but it is not admitted until the
        /// processes of these victims it preempted are gone.
        var awaiting: [ObjectKey] = []
        /// The holds whose quota this nomination took over (each hold belongs to at most one).
        var handedOver: [HoldRef] = []
        var present = true
    }
    /// Quota and GPUs still held by processes of a withdrawn admission (preempted, evicted,
    /// stopped or deleted) until the runtime says they are gone.
    struct Hold {
        var queue: Int
        var per: [Int64]
        var total: [Int64]
        var assignments: [ReplicaAssignment]
        var nodeIdx: [Int]
        var id: Int32
        /// False once a preemptor's nomination took over the quota and non-GPU resources:
        /// the hold then keeps only the GPU indices its processes still use.
        var counted = true
        /// The per-replica GPU amount taken out of `per` (and the nodes' allocation) while a
        /// nomination has it; put back if the nomination ends before the hold does.
        var handedGPU: Int64 = 0
    }
    var holds: [ObjectKey: [Hold]] = [:]
    struct HoldRef: Equatable { var key: ObjectKey; var id: Int32 }
    /// Nominated workloads (see `WorkloadEntry.awaiting`).
    var nominated = Set<Int32>()
    /// Workloads whose processes run: a withdrawn admission of one becomes a hold.
    var active = Set<ObjectKey>()
    var nextHoldID: Int32 = -1
    /// What kind of wait a reason describes; a reason is rebuilt only when its kind changes.
    enum ReasonKind: Equatable {
        case inactive, quota(QuotaFailure), noMatchingNode, noRoom, strict(head: Int32), preempting
    }
    /// Interned admission shapes (per-replica request, replicas, gpuType, specified nodes,
    /// priority): a workload whose shape dominates one that just failed fails too.
    struct Shape: Hashable {
        var per: [Int64]
        var replicas: Int
        var gpuType: String?
        var specifiedNodes: [String]
        var priority: Int
    }
    var shapes: [Shape] = []
    var shapeIndex: [Shape: Int32] = [:]
    /// Per shape, the (cycle, queue) stamp of the verdict below, and the verdict: the index of
    /// the failure that dominates it, or -1.
    var shapeStamp: [Int] = []
    var shapeVerdict: [Int32] = []
    var stamp = 0
    var waitChanges: [(ObjectKey, WaitReason)] = []
    /// Wait messages already built, by what they say: workloads that wait for the same
    /// reason share one string (kept by their entries and statuses) instead of holding a copy
    /// each, and the first pass builds a few hundred of them instead of one per pending
    /// workload (about 5 % of that pass).
    var messages: [MessageKey: String] = [:]
    struct MessageKey: Hashable {
        var failure: Int8, queue: Int32, slot: Int32, waiting: Int32
        var amount: Int64, limit: Int64
    }
    /// Interned per-replica and total vectors of the workloads (see `interned`).
    var vectorPool = Set<[Int64]>()
    static let vectorPoolLimit = 4096

    /// Makes room for `n` more workloads at once (the initial load knows how many come):
    /// the entries' array then never doubles, with its old copy alive, under 100,000 of them.
    public func reserveWorkloads(_ n: Int) {
        guard n > 0 else { return }
        workloads.reserveCapacity(workloads.count + n)
        order.reserveCapacity(order.count + n)
        workloadIndex.reserveCapacity(workloadIndex.count + n)
    }
    var positionChanges: [(ObjectKey, Int?)] = []
    var workloads: [WorkloadEntry] = []
    /// Set during a bulk load (the initial sync, while admission is paused): a workload
    /// added out of order is appended and its queue sorted once before the next cycle,
    /// instead of a binary search over every queue's list at once (a cache miss per step).
    public var bulkPending = false
    /// The sort fields of `workloads`, index for index (see `PendingOrder`).
    var order: [PendingOrder] = []
    var workloadIndex: [ObjectKey: Int32] = [:]
    var freeIDs: [Int32] = []
    var seq = 0
    var pendingEvents: [SchedulerEvent] = []
    var touchedQueues = Set<Int>(), touchedNodes = Set<Int>()

    public init() {}

    // MARK: - Nodes

    /// Adds, changes (nil spec: removes) a node. `ready` false keeps it out of placement.
    /// Admissions whose placement the change invalidates (node gone, GPUs beyond the new
    /// capacity, pool or gpuType no longer matching) are withdrawn and the workloads requeued.
    public func setNode(_ name: String, spec: NodeSpec?, ready: Bool = true) {
        globalEpoch += 1
        eligibleCache = [:]
        if let i = nodeIndex[name] { touchedNodes.insert(i) }
        guard let spec else {
            guard let i = nodeIndex[name], nodes[i].present else { return }
            for id in nodes[i].workloads.keys.sorted() where id >= 0 { evict(Int(id), reason: "NodeRemoved", message: "node \"\(name)\" was removed; the workload waits to be placed again") }
            nodes[i].present = false
            nodes[i].schedulable = false
            return
        }
        var limited: [Bool] = []
        let cap = slots.vector(spec.capacity, named: &limited)
        if limited.isEmpty { limited = [true] } else { limited[ResourceSlots.gpu] = true }
        // Validation allows 1,024 GPUs per node; the bound keeps the index table small regardless.
        let gpus = Int(max(0, min(spec.capacity.gpu, 1 << 16)))
        if let i = nodeIndex[name] {
            var n = nodes[i]
            n.present = true
            n.pool = spec.resourcePool; n.gpuType = spec.gpuType; n.vendor = spec.gpuVendor
            n.schedulable = ready && !spec.unschedulable
            n.capacity = cap; n.limited = limited; n.gpuCount = gpus
            if n.gpuUsed.count < gpus { n.gpuUsed.append(contentsOf: repeatElement(0, count: gpus - n.gpuUsed.count)) }
            nodes[i] = n
            // Placements that no longer hold: GPU indices beyond capacity.
            for id in nodes[i].workloads.keys.sorted() where id >= 0 {
                let w = workloads[Int(id)]
                let beyond = w.assignments.contains { $0.node == name && $0.gpus.contains { $0 >= gpus } }
                if beyond { evict(Int(id), reason: "NodeChanged", message: "node \"\(name)\" now has \(gpus) GPUs; the workload's GPU indices are gone and it waits to be placed again") }
            }
            recountFree(i)
        } else {
            let n = NodeEntry(name: name, pool: spec.resourcePool, gpuType: spec.gpuType, vendor: spec.gpuVendor,
                              schedulable: ready && !spec.unschedulable, capacity: cap, limited: limited, gpuCount: gpus,
                              gpuUsed: Array(repeating: 0, count: gpus), freeGPUs: gpus)
            nodes.append(n)
            nodeIndex[name] = nodes.count - 1
            touchedNodes.insert(nodes.count - 1)
        }
    }

    func recountFree(_ i: Int) {
        var free = 0
        for g in 0..<nodes[i].gpuCount where nodes[i].gpuUsed[g] == 0 { free += 1 }
        nodes[i].freeGPUs = free
    }

    public var nodeNames: [String] { nodes.filter(\.present).map(\.name) }

    public func nodeUsage(_ name: String) -> NodeUsage? {
        guard let i = nodeIndex[name], nodes[i].present else { return nil }
        let n = nodes[i]
        var u = NodeUsage()
        u.allocated = slots.list(n.allocated)
        u.workloads = n.workloads.count
        u.freeGPUs = (0..<n.gpuCount).filter { n.gpuUsed[$0] == 0 }
        return u
    }

    /// Nodes and GPUs of a pool in use (any replica placed), for ResourcePool status.
    public func poolUsage(_ pool: String) -> (nodes: Int64, gpus: Int64) {
        var ns: Int64 = 0, gs: Int64 = 0
        for n in nodes where n.present && n.pool == pool && !n.workloads.isEmpty {
            ns += 1; gs += at(n.allocated, ResourceSlots.gpu) / 1000
        }
        return (ns, gs)
    }

    // MARK: - Queues

    func queueID(_ name: String) -> Int {
        if let i = queueIndex[name] { return i }
        var q = QueueEntry(name: name)
        q.inactive = WaitReason(Reason.queueNotFound, "queue \"\(name)\" does not exist")
        q.path = [queues.count]; q.root = queues.count
        queues.append(q)
        queueIndex[name] = queues.count - 1
        return queues.count - 1
    }

    /// Adds, changes or (nil) removes a Queue object. `valid` false: the spec did not validate.
    public func setQueue(_ name: String, spec: QueueSpec?, valid: Bool = true) {
        let i = queueID(name)
        queues[i].spec = spec
        queues[i].valid = valid
        rebuildTree()
    }

    /// Recomputes parents, paths, inherited pools, effective quotas and usage of every queue.
    func rebuildTree() {
        globalEpoch += 1
        // A parent named but not declared gets an entry, so its children are inactive, not roots.
        for p in queues.compactMap({ $0.spec?.parent }) { _ = queueID(p) }
        let n = queues.count
        for i in 0..<n {
            queues[i].children = []; queues[i].parent = nil; queues[i].inactive = nil
            queues[i].epoch += 1; queues[i].positionsDirty = true
            touchedQueues.insert(i)
        }
        for i in 0..<n {
            if let p = queues[i].spec?.parent, let pi = queueIndex[p] {
                queues[i].parent = pi
                queues[pi].children.append(i)
            }
        }
        // Queues on a parent loop: their path stops at themselves, so usage adds up along
        // paths that form a forest (the same paths `account` walks).
        var onLoop = [Bool](repeating: false, count: n)
        for i in 0..<n {
            var seen: Set<Int> = [i]
            var cur = queues[i].parent
            while let c = cur, seen.insert(c).inserted { cur = queues[c].parent }
            if cur == i { onLoop[i] = true }
        }
        for i in 0..<n {
            var path = [i]
            var seen: Set<Int> = [i]
            var cur = queues[i].parent
            var inactive: WaitReason?
            if queues[i].spec == nil { inactive = WaitReason(Reason.queueNotFound, "queue \"\(queues[i].name)\" does not exist") }
            else if !queues[i].valid { inactive = WaitReason(Reason.waitingForQuota, "queue \"\(queues[i].name)\" has an invalid spec") }
            while let c = cur {
                if onLoop[i] || !seen.insert(c).inserted {
                    inactive = inactive ?? WaitReason(Reason.waitingForQuota, "queue \"\(queues[i].name)\" is not active: its parent chain loops through \"\(queues[c].name)\"")
                    break
                }
                if queues[c].spec == nil {
                    inactive = inactive ?? WaitReason(Reason.waitingForQuota, "queue \"\(queues[i].name)\" is not active: parent queue \"\(queues[c].name)\" does not exist")
                    break
                }
                if !queues[c].valid {
                    inactive = inactive ?? WaitReason(Reason.waitingForQuota, "queue \"\(queues[i].name)\" is not active: parent queue \"\(queues[c].name)\" has an invalid spec")
                }
                path.append(c)
                if onLoop[c] {
                    inactive = inactive ?? WaitReason(Reason.waitingForQuota, "queue \"\(queues[i].name)\" is not active: its parent chain loops through \"\(queues[c].name)\"")
                    break
                }
                cur = queues[c].parent
            }
            if inactive == nil, queues[i].spec?.state == .closed {
                inactive = WaitReason(Reason.queueClosed, "queue \"\(queues[i].name)\" is Closed and admits nothing new")
            }
            queues[i].inactive = inactive
            queues[i].path = path
            queues[i].root = path[path.count - 1]   // path starts with i: never empty
            queues[i].pool = path.lazy.compactMap { self.queues[$0].spec?.resourcePool }.first
        }
        // Children as the paths see them (a queue on a loop is nobody's child).
        for i in 0..<n { queues[i].children = [] }
        for i in 0..<n where queues[i].path.count > 1 { queues[queues[i].path[1]].children.append(i) }
        // Quotas: explicit, or for a parent that names no deserved amount, its children's sum.
        var named: [[Bool]] = Array(repeating: [], count: n)
        for i in 0..<n {
            let s = queues[i].spec ?? QueueSpec()
            var dn: [Bool] = [], gn: [Bool] = [], cn: [Bool] = []
            queues[i].deserved = slots.vector(s.deserved, named: &dn)
            queues[i].guarantee = slots.vector(s.guarantee, named: &gn)
            queues[i].capability = s.capability.map { slots.vector($0, named: &cn) } ?? []
            queues[i].capNamed = cn
            named[i] = dn
            var m = dn
            for (k, g) in gn.enumerated() where g { if m.count <= k { m.append(contentsOf: repeatElement(false, count: k + 1 - m.count)) }; m[k] = true }
            queues[i].managed = m
        }
        let R = slots.count
        // Children's sums, bottom-up by depth.
        let order = (0..<n).sorted { queues[$0].path.count > queues[$1].path.count }
        for i in order {
            for r in 0..<R where !at(named[i], r) && !queues[i].children.isEmpty {
                var sum: Int64 = 0
                for c in queues[i].children { sum = sat(sum, at(queues[c].deserved, r)) }
                if sum != 0 { queues[i].deserved.add(r, sum) }
            }
            for r in 0..<R where at(queues[i].guarantee, r) > at(queues[i].deserved, r) {
                queues[i].guarantee[r] = at(queues[i].deserved, r)
            }
        }
        // Managed slots per tree.
        var treeManaged: [Int: [Bool]] = [:]
        for i in 0..<n {
            var m = treeManaged[queues[i].root] ?? Array(repeating: false, count: R)
            for r in 0..<R where at(queues[i].managed, r) { m[r] = true }
            treeManaged[queues[i].root] = m
        }
        for i in 0..<n { queues[i].managed = treeManaged[queues[i].root] ?? [] }
        recountUsage()
    }

    /// Queue usage (own, used, inner, demand) from scratch: the admitted workloads and the
    /// holds that count. Sums saturate, so this is also how a saturated sum is made exact
    /// again once something leaves it (`account`).
    func recountUsage() {
        let n = queues.count
        let order = (0..<n).sorted { queues[$0].path.count > queues[$1].path.count }
        for i in 0..<n { queues[i].own = []; queues[i].used = []; queues[i].inner = []; queues[i].demand = [] }
        for w in workloads where w.present && w.admitted {
            queues[w.queue].own.add(w.total)
        }
        for hs in holds.values { for h in hs where h.counted { queues[h.queue].own.add(h.total) } }
        for i in order {
            var inner = queues[i].own
            var used = queues[i].own
            for c in queues[i].children where queues[c].parent == i {
                inner.add(queues[c].demand); used.add(queues[c].used)
            }
            queues[i].inner = inner
            queues[i].used = used
            var d = inner
            for r in 0..<max(d.count, queues[i].guarantee.count) { let g = at(queues[i].guarantee, r); if g > at(d, r) { d.add(r, g - at(d, r)) } }
            queues[i].demand = d
        }
    }

    public func queueUsage(_ name: String) -> QueueUsage? {
        guard let i = queueIndex[name] else { return nil }
        let q = queues[i]
        var u = QueueUsage()
        u.allocated = slots.list(q.used)
        var b: [Int64] = []
        for r in 0..<q.used.count where at(q.managed, r) && at(q.used, r) > at(q.deserved, r) { b.add(r, at(q.used, r) - at(q.deserved, r)) }
        u.borrowed = slots.list(b)
        u.pending = q.pending.count
        u.admitted = q.admitted - nominated.reduce(0) { $0 + (workloads[Int($1)].queue == i ? 1 : 0) }
        return u
    }

    /// The effective deserved share (explicit, or the children's sum) of a queue.
    public func effectiveDeserved(_ name: String) -> ResourceList? { queueIndex[name].map { slots.list(queues[$0].deserved) } }

    /// Pending workloads of a queue in admission order.
    public func pendingOrder(_ name: String) -> [ObjectKey] {
        guard let i = queueIndex[name] else { return [] }
        sortPending(i)
        return queues[i].pending.map { workloads[Int($0)].key }
    }

    // MARK: - Usage accounting

    /// Adds (sign 1) or removes (-1) a workload's total to its queue and every ancestor,
    /// keeping `demand = max(own + children's demand, guarantee)` along the path.
    func account(_ q: Int, _ total: [Int64], sign: Int64) {
        let path = queues[q].path
        // Taking from a saturated sum cannot be done by subtraction: recount instead (the
        // callers have already taken the workload or hold out of what the recount sees).
        if sign < 0 {
            for r in 0..<total.count where total[r] != 0 {
                if at(queues[q].own, r) == .max || path.contains(where: { at(queues[$0].used, r) == .max || at(queues[$0].inner, r) == .max || at(queues[$0].demand, r) == .max }) {
                    recountUsage()
                    for a in path { touchedQueues.insert(a) }
                    return
                }
            }
        }
        queues[q].own.add(total, times: sign)
        for r in 0..<total.count where total[r] != 0 {
            var delta = total[r] * sign
            for a in path {
                queues[a].used.add(r, total[r] * sign)
                if delta != 0 {
                    queues[a].inner.add(r, delta)
                    let nd = max(at(queues[a].inner, r), at(queues[a].guarantee, r))
                    delta = sat(nd, -at(queues[a].demand, r))
                    queues[a].demand.add(r, delta)
                }
            }
        }
        for a in path { touchedQueues.insert(a) }
    }

    enum QuotaFailure: Equatable {
        case capability(queue: Int, slot: Int)
        case oversell(queue: Int, slot: Int)
        case cohort(root: Int, slot: Int)
    }

    /// Whether `total` more fits the quota of queue `q` and its ancestors.
    func quotaFailure(_ q: Int, _ total: [Int64]) -> QuotaFailure? {
        let path = queues[q].path
        let root = queues[q].root
        let managed = queues[q].managed
        for r in 0..<total.count where total[r] > 0 {
            let x = total[r]
            var delta = x
            let isManaged = at(managed, r)
            for a in path {
                let used = sat(at(queues[a].used, r), x)
                if at(queues[a].capNamed, r) && used > at(queues[a].capability, r) { return .capability(queue: a, slot: r) }
                if isManaged {
                    if queues[a].spec?.disableOversell == true && used > at(queues[a].deserved, r) { return .oversell(queue: a, slot: r) }
                    if delta != 0 {
                        let nd = max(sat(at(queues[a].inner, r), delta), at(queues[a].guarantee, r))
                        delta = sat(nd, -at(queues[a].demand, r))
                    }
                }
            }
            if isManaged && sat(at(queues[root].demand, r), delta) > at(queues[root].deserved, r) { return .cohort(root: root, slot: r) }
        }
        return nil
    }

    func message(_ f: QuotaFailure, _ w: WorkloadEntry) -> String {
        // Everything the message is made of (a queue's name never changes with its index).
        let key: MessageKey
        switch f {
        case .capability(let a, let r):
            key = MessageKey(failure: 0, queue: Int32(a), slot: Int32(r), waiting: Int32(w.queue), amount: at(w.total, r), limit: at(queues[a].capability, r))
        case .oversell(let a, let r):
            key = MessageKey(failure: 1, queue: Int32(a), slot: Int32(r), waiting: -1, amount: at(w.total, r), limit: at(queues[a].deserved, r))
        case .cohort(let root, let r):
            key = MessageKey(failure: 2, queue: Int32(root), slot: Int32(r), waiting: Int32(w.queue), amount: at(w.total, r),
                             limit: root == w.queue ? at(queues[root].deserved, r) : 0)
        }
        if let m = messages[key] { return m }
        if messages.count >= 4096 { messages.removeAll(keepingCapacity: true) }
        let m = buildMessage(f, w)
        messages[key] = m
        return m
    }

    func buildMessage(_ f: QuotaFailure, _ w: WorkloadEntry) -> String {
        let qname = queues[w.queue].name
        switch f {
        case .capability(let a, let r):
            let amt = amountText(at(w.total, r), slot: r), cap = amountText(at(queues[a].capability, r), slot: r)
            return a == w.queue
                ? "\(amt) \(slots.names[r]) would take queue \"\(qname)\" past its capability of \(cap)"
                : "\(amt) \(slots.names[r]) would take parent queue \"\(queues[a].name)\" past its capability of \(cap)"
        case .oversell(let a, let r):
            return "\(amountText(at(w.total, r), slot: r)) \(slots.names[r]) would take queue \"\(queues[a].name)\" past its deserved \(amountText(at(queues[a].deserved, r), slot: r)) (disableOversell)"
        case .cohort(let root, let r):
            let amt = amountText(at(w.total, r), slot: r)
            if root == w.queue {
                return "\(amt) \(slots.names[r]) does not fit the deserved \(amountText(at(queues[root].deserved, r), slot: r)) of queue \"\(qname)\" next to what it uses (a queue without a parent has no cohort to borrow from)"
            }
            return "\(amt) \(slots.names[r]) is not available to queue \"\(qname)\": the quota of its cohort \"\(queues[root].name)\" is in use or guaranteed to other queues"
        }
    }
}
