import GantryAPI

extension SchedulerState {
    /// Orders pending workloads: priority (high first), creation time, then namespace/name.
    /// Reads the compact `order` array, not the entries: an entry is about 300 bytes, and
    /// reading one per comparison of a binary search over 100,000 missed the cache each time.
    @inline(__always) func before(_ a: Int32, _ b: Int32) -> Bool {
        let i = Int(a), j = Int(b)
        let (oa, ob) = order.withUnsafeBufferPointer { ($0[i], $0[j]) }
        if oa.priority != ob.priority { return oa.priority > ob.priority }
        if oa.created != ob.created { return oa.created < ob.created }
        if let d = PendingOrder.decides(oa, ob) { return d }
        return workloads[i].key < workloads[j].key
    }

    func sortPending(_ q: Int) {
        guard !queues[q].sorted else { return }
        queues[q].pending.sort(by: before)
        queues[q].sorted = true
    }

    func addPending(_ id: Int) {
        let q = workloads[id].queue
        let i32 = Int32(id)
        if queues[q].sorted, let last = queues[q].pending.last, before(i32, last) {
            // Insert in place when the list is small enough; else sort before the next cycle
            // (so also during a bulk load: one sort per queue, over its own entries only).
            if !bulkPending && queues[q].pending.count < 4096 {
                var lo = 0, hi = queues[q].pending.count
                while lo < hi { let mid = (lo + hi) / 2; if before(queues[q].pending[mid], i32) { lo = mid + 1 } else { hi = mid } }
                queues[q].pending.insert(i32, at: lo)
            } else {
                queues[q].pending.append(i32); queues[q].sorted = false
            }
        } else {
            queues[q].pending.append(i32)
        }
        queues[q].epoch += 1
        queues[q].repsValid = false
        queues[q].positionsDirty = true
        touchedQueues.insert(q)
    }

    func removePending(_ id: Int) {
        let q = workloads[id].queue
        let i32 = Int32(id)
        if queues[q].sorted {
            var lo = 0, hi = queues[q].pending.count
            while lo < hi { let mid = (lo + hi) / 2; if before(queues[q].pending[mid], i32) { lo = mid + 1 } else { hi = mid } }
            if lo < queues[q].pending.count, queues[q].pending[lo] == i32 { queues[q].pending.remove(at: lo) }
            else if let j = queues[q].pending.firstIndex(of: i32) { queues[q].pending.remove(at: j) }
        } else if let j = queues[q].pending.firstIndex(of: i32) {
            queues[q].pending.remove(at: j)
        }
        queues[q].epoch += 1
        queues[q].repsValid = false
        queues[q].positionsDirty = true
        touchedQueues.insert(q)
    }

    /// The request as kept: its resources live in the per-replica vector instead.
    func stripped(_ r: WorkloadRequest) -> WorkloadRequest {
        var x = r
        x.resources = ResourceList()
        return x
    }

    func vectors(_ r: WorkloadRequest) -> (per: [Int64], total: [Int64], gpus: Int) {
        let per = slots.vector(r.resources)
        var total: [Int64] = []
        total.add(per, times: Int64(r.replicas))
        return (interned(per), interned(total), Int(r.resources.gpu))
    }

    /// One shared copy of each distinct resource vector: 100,000 workloads of a few request
    /// shapes keep a few arrays between them instead of two each (copy-on-write keeps a later
    /// change to one entry's vector private). The pool is dropped when it grows past
    /// `vectorPoolLimit` (many distinct requests): entries keep their arrays either way.
    func interned(_ v: [Int64]) -> [Int64] {
        if vectorPool.count >= SchedulerState.vectorPoolLimit { vectorPool = [] }
        return vectorPool.insert(v).memberAfterInsert
    }

    /// Adds or changes a workload that can be admitted (valid, not suspended), or removes it
    /// (nil: deleted, suspended or invalid), releasing its quota and GPUs. A change of
    /// anything but priority withdraws an admission and requeues the workload.
    public func setWorkload(_ key: ObjectKey, _ request: WorkloadRequest?) {
        if let id32 = workloadIndex[key] {
            let id = Int(id32)
            guard let request else { removeWorkload(id); return }
            let old = workloads[id].request
            let per = slots.vector(request.resources)
            let samePer = per == workloads[id].perReplica
            guard old != stripped(request) || !samePer else { return }
            if workloads[id].admitted {
                if old.priority != request.priority { workloads[id].shape = shapeID(request, per: workloads[id].perReplica) }
                if old.needsReadmission(stripped(request)) || !samePer {
                    evict(id, reason: "SpecChanged", message: "the spec changed (queue, replicas, resources, gpuType or specifiedNodes); the workload is admitted again with the new spec")
                    removePending(id)
                    set(id, request)
                    addPending(id)
                } else {
                    workloads[id].request = stripped(request)
                    order[id] = PendingOrder(key, request)
                }
            } else {
                removePending(id)
                set(id, request)
                addPending(id)
            }
            return
        }
        guard let request else { return }
        let id: Int
        let q = queueID(request.queue)
        let (per, total, g) = vectors(request)
        var entry = WorkloadEntry(key: key, request: stripped(request), queue: q, perReplica: per, total: total, gpusPerReplica: g)
        entry.shape = shapeID(request, per: per)
        if let f = freeIDs.popLast() {
            id = Int(f); workloads[id] = entry; order[id] = PendingOrder(key, request)
        } else {
            id = workloads.count; workloads.append(entry); order.append(PendingOrder(key, request))
        }
        workloadIndex[key] = Int32(id)
        addPending(id)
    }

    func shapeID(_ r: WorkloadRequest, per: [Int64]) -> Int32 {
        var p = per
        while p.last == 0 { p.removeLast() }
        let s = Shape(per: p, replicas: r.replicas, gpuType: r.gpuType, specifiedNodes: r.specifiedNodes, priority: r.priority)
        if let i = shapeIndex[s] { return i }
        shapes.append(s); shapeStamp.append(0); shapeVerdict.append(-1)
        shapeIndex[s] = Int32(shapes.count - 1)
        return Int32(shapes.count - 1)
    }

    func set(_ id: Int, _ request: WorkloadRequest) {
        let (per, total, g) = vectors(request)
        workloads[id].shape = shapeID(request, per: per)
        workloads[id].request = stripped(request)
        order[id] = PendingOrder(workloads[id].key, request)
        workloads[id].queue = queueID(request.queue)
        workloads[id].perReplica = per; workloads[id].total = total; workloads[id].gpusPerReplica = g
        workloads[id].reason = nil
        workloads[id].reasonKind = nil
    }

    func removeWorkload(_ id: Int) {
        if workloads[id].admitted { withdraw(id); globalEpoch += 1 } else { removePending(id) }
        if workloads[id].position != nil { workloads[id].position = nil }
        workloadIndex[workloads[id].key] = nil
        workloads[id].present = false
        workloads[id].assignments = []
        freeIDs.append(Int32(id))
    }

    /// Re-adopts an admission recorded before a restart. Refused (false) when the placement
    /// no longer holds: a node gone, a GPU index beyond capacity or already taken. Quota is
    /// not checked again: what was admitted stays admitted.
    @discardableResult
    public func restoreAdmission(_ key: ObjectKey, assignments: [ReplicaAssignment], admittedAt: Double) -> Bool {
        guard let id32 = workloadIndex[key], !workloads[Int(id32)].admitted else { return false }
        let id = Int(id32)
        guard assignments.count == workloads[id].request.replicas, assignments.allSatisfy({ $0.gpus.count == workloads[id].gpusPerReplica }),
              let nodeIdx = freePlacement(assignments) else { return false }
        removePending(id)
        commit(id, assignments: assignments, nodeIdx: nodeIdx, now: admittedAt)
        return true
    }

    /// Reserves quota and GPUs for an admission.
    func commit(_ id: Int, assignments: [ReplicaAssignment], nodeIdx: [Int], now: Double) {
        seq += 1
        workloads[id].admitted = true
        workloads[id].assignments = assignments
        workloads[id].nodeIdx = nodeIdx
        workloads[id].admittedAt = now
        workloads[id].admittedSeq = seq
        workloads[id].reason = nil
        workloads[id].reasonKind = nil
        if workloads[id].position != nil { workloads[id].position = nil; positionChanges.append((workloads[id].key, nil)) }
        acquire(id)
    }

    /// Takes the quota and GPUs of an admission (inverse of `release`).
    func acquire(_ id: Int) {
        workloads[id].admitted = true
        occupy(workloads[id].perReplica, workloads[id].assignments, workloads[id].nodeIdx, as: Int32(id))
        account(workloads[id].queue, workloads[id].total, sign: 1)
        queues[workloads[id].queue].admitted += 1
        queues[workloads[id].queue].admittedSet.insert(Int32(id))
    }

    /// Frees quota and GPUs of an admitted workload (it keeps its assignments for a restore).
    func release(_ id: Int) {
        workloads[id].admitted = false   // before `account`, which may recount from the admitted
        vacate(workloads[id].perReplica, workloads[id].assignments, workloads[id].nodeIdx, as: Int32(id))
        account(workloads[id].queue, workloads[id].total, sign: -1)
        queues[workloads[id].queue].admitted -= 1
        queues[workloads[id].queue].admittedSet.remove(Int32(id))
    }

    /// Marks GPUs and resources of a placement taken on its nodes, counted under `id` (a
    /// workload id, or a negative hold id).
    func occupy(_ per: [Int64], _ assignments: [ReplicaAssignment], _ nodeIdx: [Int], as id: Int32) {
        for (a, n) in zip(assignments, nodeIdx) {
            nodes[n].allocated.add(per)
            for g in a.gpus where g >= 0 && g < nodes[n].gpuUsed.count {
                if nodes[n].gpuUsed[g] == 0 && g < nodes[n].gpuCount { nodes[n].freeGPUs -= 1 }
                nodes[n].gpuUsed[g] += 1
            }
            nodes[n].workloads[id, default: 0] += 1
            touchedNodes.insert(n)
        }
    }

    /// The inverse of `occupy` (GPU indices beyond a shrunken node are skipped).
    func vacate(_ per: [Int64], _ assignments: [ReplicaAssignment], _ nodeIdx: [Int], as id: Int32) {
        for (a, n) in zip(assignments, nodeIdx) {
            nodes[n].allocated.add(per, times: -1)
            for g in a.gpus where g >= 0 && g < nodes[n].gpuUsed.count && nodes[n].gpuUsed[g] > 0 {
                nodes[n].gpuUsed[g] -= 1
                if nodes[n].gpuUsed[g] == 0 && g < nodes[n].gpuCount { nodes[n].freeGPUs += 1 }
            }
            if let c = nodes[n].workloads[id], c > 1 { nodes[n].workloads[id] = c - 1 } else { nodes[n].workloads[id] = nil }
            touchedNodes.insert(n)
        }
    }

    /// The node indices of a recorded placement when all of it is free now: nodes present,
    /// GPU indices within capacity, unused, none given twice. Nil otherwise.
    func freePlacement(_ assignments: [ReplicaAssignment]) -> [Int]? {
        var nodeIdx: [Int] = []
        var seen: [Int: Set<Int>] = [:]
        for a in assignments {
            guard let n = nodeIndex[a.node], nodes[n].present else { return nil }
            for g in a.gpus {
                guard g >= 0, g < nodes[n].gpuCount, at(nodes[n].gpuUsed, g) == 0, seen[n, default: []].insert(g).inserted else { return nil }
            }
            nodeIdx.append(n)
        }
        return nodeIdx
    }

    func newHoldID() -> Int32 {
        let hid = nextHoldID
        nextHoldID = nextHoldID == Int32.min ? -1 : nextHoldID - 1
        return hid
    }

    /// Withdraws an admission and puts the workload back in its queue.
    func evict(_ id: Int, reason: String, message: String) {
        guard workloads[id].admitted else { return }
        // A nomination loses its reservation the same way (and says why).
        withdraw(id)
        workloads[id].assignments = []; workloads[id].nodeIdx = []
        globalEpoch += 1
        addPending(id)
        pendingEvents.append(.evicted(workloads[id].key, reason: reason, message: message))
    }

    /// Ends a nomination (the workload is admitted, withdrawn or gone). `recount`: the holds
    /// it took over are nobody's now and count against their queue again.
    func clearNomination(_ id: Int, recount: Bool = false) {
        guard nominated.remove(Int32(id)) != nil else { return }
        if recount {
            for r in workloads[id].handedOver {
                guard var hs = holds[r.key], let j = hs.firstIndex(where: { $0.id == r.id }), !hs[j].counted else { continue }
                hs[j].counted = true
                account(hs[j].queue, hs[j].total, sign: 1)
                // Its GPUs count in the nodes' allocation again too.
                if hs[j].handedGPU != 0 {
                    for n in hs[j].nodeIdx { nodes[n].allocated.add(ResourceSlots.gpu, hs[j].handedGPU); touchedNodes.insert(n) }
                    hs[j].per.add(ResourceSlots.gpu, hs[j].handedGPU)
                    hs[j].handedGPU = 0
                }
                holds[r.key] = hs
            }
        }
        workloads[id].awaiting = []
        workloads[id].handedOver = []
    }

    /// The newest hold of a victim gives its quota to the nomination of the workload that
    /// preempted it (whose fit was computed without it); its GPUs and other node resources
    /// stay taken until its processes are gone.
    func transferHold(_ key: ObjectKey) -> HoldRef? {
        guard var hs = holds[key], let last = hs.indices.last, hs[last].counted else { return nil }
        let h = hs[last]
        hs[last].counted = false
        holds[key] = hs   // before `account`, which may recount from the holds that count
        // Its GPUs are the nomination's in `allocated`; its CPU and memory stay the hold's.
        let g = at(h.per, ResourceSlots.gpu)
        if g != 0 {
            for n in h.nodeIdx { nodes[n].allocated.add(ResourceSlots.gpu, -g); touchedNodes.insert(n) }
            hs[last].per[ResourceSlots.gpu] = 0
            hs[last].handedGPU = g
        }
        holds[key] = hs
        account(h.queue, h.total, sign: -1)
        return HoldRef(key: key, id: h.id)
    }

    /// Withdraws an admission for good: the quota and GPUs go back now, or, while the
    /// workload's processes still run, become a hold released by `setActive(key, false)`.
    func withdraw(_ id: Int) {
        let key = workloads[id].key
        // A nomination has no processes of its own on its placement: nothing to hold.
        if nominated.contains(Int32(id)) { clearNomination(id, recount: true); release(id); return }
        guard active.contains(key) else { release(id); return }
        let hid = newHoldID()
        let w = workloads[id], k = Int32(id)
        for n in w.nodeIdx {
            if let c = nodes[n].workloads[k], c > 1 { nodes[n].workloads[k] = c - 1 } else { nodes[n].workloads[k] = nil }
            nodes[n].workloads[hid, default: 0] += 1
            touchedNodes.insert(n)
        }
        queues[w.queue].admitted -= 1
        queues[w.queue].admittedSet.remove(k)
        touchedQueues.insert(w.queue)
        holds[key, default: []].append(Hold(queue: w.queue, per: w.perReplica, total: w.total, assignments: w.assignments, nodeIdx: w.nodeIdx, id: hid))
        workloads[id].admitted = false
    }

    /// Marks whether a workload's processes run. While they do, a withdrawn admission keeps
    /// its quota and GPUs; marking them gone releases what was held.
    /// Returns true when that released a hold (capacity came back).
    @discardableResult
    public func setActive(_ key: ObjectKey, _ on: Bool) -> Bool {
        if on { active.insert(key); return false }
        active.remove(key)
        guard var hs = holds[key] else { return false }
        // One at a time: `account` may recount from the holds still there.
        while let h = hs.popLast() {
            holds[key] = hs.isEmpty ? nil : hs
            vacate(h.per, h.assignments, h.nodeIdx, as: h.id)
            if h.counted {
                account(h.queue, h.total, sign: -1)
                touchedQueues.insert(h.queue)
            }
        }
        globalEpoch += 1
        return true
    }

    /// Withdraws an admission and puts the workload back in its queue (a hold while active).
    public func requeue(_ key: ObjectKey, reason: String, message: String) {
        guard let id = workloadIndex[key] else { return }
        evict(Int(id), reason: reason, message: message)
    }

    /// Holds the quota and GPUs of processes found running for a workload that is not in the
    /// scheduler (suspended while the daemon was down), until `setActive(key, false)`.
    /// Refused (false) when the placement is not free.
    @discardableResult
    public func hold(_ key: ObjectKey, _ request: WorkloadRequest, assignments: [ReplicaAssignment]) -> Bool {
        guard let nodeIdx = freePlacement(assignments) else { return false }
        let q = queueID(request.queue)
        let (per, total, _) = vectors(request)
        let hid = newHoldID()
        occupy(per, assignments, nodeIdx, as: hid)
        account(q, total, sign: 1)
        touchedQueues.insert(q)
        holds[key, default: []].append(Hold(queue: q, per: per, total: total, assignments: assignments, nodeIdx: nodeIdx, id: hid))
        active.insert(key)
        return true
    }

    /// Holds the GPU indices of processes found running for a workload that no longer exists
    /// (deleted while the daemon was down), until `setActive(key, false)`. No quota: its queue
    /// is not known any more. Replicas on nodes that are gone are skipped; an index already
    /// in use is still counted, so it stays taken as long as anything uses it.
    public func holdGPUs(_ key: ObjectKey, assignments: [ReplicaAssignment]) {
        var placed: [ReplicaAssignment] = [], nodeIdx: [Int] = []
        for a in assignments {
            guard let n = nodeIndex[a.node], nodes[n].present else { continue }
            placed.append(ReplicaAssignment(rank: a.rank, node: a.node, gpus: a.gpus.filter { $0 >= 0 && $0 < nodes[n].gpuCount }))
            nodeIdx.append(n)
        }
        guard !placed.isEmpty else { return }
        let hid = newHoldID()
        occupy([], placed, nodeIdx, as: hid)
        holds[key, default: []].append(Hold(queue: -1, per: [], total: [], assignments: placed, nodeIdx: nodeIdx, id: hid, counted: false))
        active.insert(key)
        globalEpoch += 1
    }

    /// The workload finished (or was stopped): its quota and GPUs go back.
    public func finish(_ key: ObjectKey) {
        guard let id = workloadIndex[key] else { return }
        removeWorkload(Int(id))
    }

    public func contains(_ key: ObjectKey) -> Bool { workloadIndex[key] != nil }
    /// Admitted (a nomination still waiting for its victims to stop is not).
    public func isAdmitted(_ key: ObjectKey) -> Bool { workloadIndex[key].map { workloads[Int($0)].admitted && !nominated.contains($0) } ?? false }
    public func assignments(_ key: ObjectKey) -> [ReplicaAssignment]? {
        guard let id = workloadIndex[key], workloads[Int(id)].admitted, !nominated.contains(id) else { return nil }
        return workloads[Int(id)].assignments
    }
    /// The placement reserved for a workload while the victims it preempted stop.
    public func nomination(_ key: ObjectKey) -> [ReplicaAssignment]? {
        guard let id = workloadIndex[key], nominated.contains(id) else { return nil }
        return workloads[Int(id)].assignments
    }
    public func waitReason(_ key: ObjectKey) -> WaitReason? { workloadIndex[key].flatMap { workloads[Int($0)].reason } }
    public func position(_ key: ObjectKey) -> Int? { workloadIndex[key].flatMap { workloads[Int($0)].position } }
    public var pendingCount: Int { queues.reduce(0) { $0 + $1.pending.count } }
    public var admittedCount: Int { queues.reduce(0) { $0 + $1.admitted } - nominated.count }
    /// The queue the workload is admitted to (or waits in).
    public func queueName(_ key: ObjectKey) -> String? { workloadIndex[key].map { queues[workloads[Int($0)].queue].name } }
}

/// A pending workload's sort fields, apart from its entry: priority, creation time, and the
/// first 8 bytes of its namespace and name (big-endian, zero-padded), which order two ASCII
/// keys whenever they differ there; otherwise the keys themselves are compared.
struct PendingOrder {
    var priority: Int
    var created: Int64
    var namespacePrefix: UInt64
    var namePrefix: UInt64
    /// Bytes of the namespace (9: more than 8), and whether namespace and name are all ASCII.
    var namespaceLength: UInt8
    var ascii: Bool

    init(_ key: ObjectKey, _ request: WorkloadRequest) {
        priority = request.priority
        created = request.created
        let (np, nl, na) = PendingOrder.prefix(key.namespace)
        let (mp, _, ma) = PendingOrder.prefix(key.name)
        namespacePrefix = np; namespaceLength = nl; namePrefix = mp; ascii = na && ma
    }

    static func prefix(_ s: String) -> (UInt64, UInt8, Bool) {
        // All of it ASCII, not only the prefix: a combining mark after the eighth byte can
        // join the character before it, and Swift compares the composed character.
        var v: UInt64 = 0, n = 0, ascii = true
        for b in s.utf8 {
            if b >= 0x80 { ascii = false }
            if n < 8 { v |= UInt64(b) << (56 - 8 * UInt64(n)) }
            n += 1
        }
        return (v, UInt8(min(n, 9)), ascii)
    }

    /// Whether a's key sorts before b's (both workload keys), when the prefixes tell; nil
    /// when only the whole keys can. Byte order with zero padding is the strings' order for
    /// ASCII: the first differing byte decides, a string that ends first sorts first.
    @inline(__always) static func decides(_ a: PendingOrder, _ b: PendingOrder) -> Bool? {
        guard a.ascii && b.ascii else { return nil }
        if a.namespacePrefix != b.namespacePrefix { return a.namespacePrefix < b.namespacePrefix }
        // Equal namespaces only when both are whole in their prefixes, of the same length.
        guard a.namespaceLength <= 8, a.namespaceLength == b.namespaceLength else { return nil }
        if a.namePrefix != b.namePrefix { return a.namePrefix < b.namePrefix }
        return nil
    }
}
