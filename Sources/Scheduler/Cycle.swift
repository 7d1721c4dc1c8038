import GantryAPI

extension SchedulerState {
    /// Dominant-resource share: the largest used/deserved over the managed resources. A queue
    /// using something it has no deserved share of sorts after every queue that does not.
    func share(_ q: Int) -> Double {
        var s = 0.0
        for r in 0..<queues[q].managed.count where queues[q].managed[r] {
            let u = at(queues[q].used, r), d = at(queues[q].deserved, r)
            if d > 0 { s = max(s, Double(u) / Double(d)) } else if u > 0 { s = max(s, 1e9 + Double(u)) }
        }
        return s
    }

    struct Failure {
        var shape: Int32
        var kind: ReasonKind
    }

    /// True when any queue has pending workloads worth another attempt.
    public var needsCycle: Bool {
        queues.contains { q in !q.pending.isEmpty && (q.triedEpoch != q.epoch || (q.inactive == nil && q.triedGlobal != globalEpoch)) }
            || nominated.contains { id in workloads[Int(id)].awaiting.contains { holds[$0] == nil } }
    }

    /// Nominations whose victims' processes are all gone become admissions.
    func promoteNominated(now: Double, result: inout CycleResult) {
        guard !nominated.isEmpty else { return }
        for id32 in nominated.sorted() {
            let id = Int(id32)
            workloads[id].awaiting.removeAll { holds[$0] == nil }
            guard workloads[id].awaiting.isEmpty else { continue }
            clearNomination(id)
            workloads[id].reason = nil
            workloads[id].reasonKind = nil
            workloads[id].admittedAt = now
            let w = workloads[id]
            touchedQueues.insert(w.queue)
            result.events.append(.admitted(w.key, queue: queues[w.queue].name, assignments: w.assignments, waitedSeconds: max(0, now - Double(w.request.created))))
        }
    }

    /// One admission cycle. Queues are taken furthest below their deserved share first; each
    /// takes its pending workloads in order until one is admitted (then the shares are
    /// compared again) or none is left. BestEffortFIFO skips a workload that does not fit;
    /// StrictFIFO stops at it. A workload that does not fit may preempt (see `preempt`).
    /// Queues with nothing new since their last attempt are skipped.
    public func cycle(now: Double) -> CycleResult {
        var result = CycleResult()
        promoteNominated(now: now, result: &result)
        var heap = QueueHeap()
        for q in queues.indices where !queues[q].pending.isEmpty {
            sortPending(q)
            if let inactive = queues[q].inactive {
                if queues[q].triedEpoch != queues[q].epoch {
                    for id in queues[q].pending { setReason(Int(id), .inactive, inactive) }
                    result.decisions += queues[q].pending.count
                    queues[q].triedEpoch = queues[q].epoch
                }
                continue
            }
            if queues[q].triedEpoch == queues[q].epoch && queues[q].triedGlobal == globalEpoch { continue }
            heap.push(share(q), queues[q].name, q)
        }
        var cursor = [Int: Int]()
        var pastFailures: [Int: ([Failure], [Int: Int])] = [:]
        var deferred = Set<Int>()
        while let q = heap.pop() {
            if cursor[q] == nil && queues[q].repsValid && queues[q].triedEpoch == queues[q].epoch {
                // Nothing changed in this queue: try the workloads that failed last time.
                var same = true, admittedOne = false
                for (id32, kind) in queues[q].reps {
                    let id = Int(id32)
                    guard workloads[id].present, !workloads[id].admitted, workloads[id].queue == q else { same = false; break }
                    result.attempts += 1
                    if admit(id, now: now, result: &result) { admittedOne = true; same = false; break }
                    if workloads[id].reasonKind != kind { same = false; break }
                }
                if same {
                    queues[q].triedGlobal = globalEpoch
                    continue
                }
                queues[q].repsValid = false
                if admittedOne { cursor[q] = 0; heap.push(share(q), queues[q].name, q); continue }
            }
            stamp += 1
            // Failures earlier in this cycle still dominate: room only shrinks within a cycle.
            var (failures, failedIDs) = pastFailures[q] ?? ([], [:])
            var i = cursor[q] ?? 0
            var admittedOne = false, deferredNow = false
            let strict = queues[q].spec?.queueingStrategy == .strictFIFO
            while i < queues[q].pending.count {
                let id = Int(queues[q].pending[i])
                let shape = Int(workloads[id].shape)
                if shapeStamp[shape] != stamp {
                    shapeStamp[shape] = stamp
                    shapeVerdict[shape] = Int32(dominatingFailure(shape, failures))
                }
                let verdict = Int(shapeVerdict[shape])
                if verdict >= 0 {
                    setReason(id, failures[verdict].kind, nil)
                    result.decisions += 1
                    i += 1
                    continue
                }
                // A workload that would borrow waits while queues below their share have
                // workloads to try (Kueue's "non-borrowing first"): borrowing first and
                // being reclaimed at once is churn.
                if !deferred.contains(q), !withinDeserved(q, workloads[id].total), heap.items.contains(where: { $0.share < 1 }) {
                    deferred.insert(q)
                    deferredNow = true
                    break
                }
                result.attempts += 1
                result.decisions += 1
                if admit(id, now: now, result: &result) {
                    admittedOne = true
                    break
                }
                // A failed admit always leaves a fresh reason (a nomination counts as admitted).
                let kind = workloads[id].reasonKind ?? .noRoom
                failures.append(Failure(shape: Int32(shape), kind: kind))
                failedIDs[shape] = id
                shapeVerdict[shape] = Int32(failures.count - 1)
                i += 1
                if strict {
                    let head = Int32(id)
                    let msg = "waiting behind \(workloads[id].key.qualifiedName), the head of StrictFIFO queue \"\(queues[q].name)\""
                    while i < queues[q].pending.count {
                        setReason(Int(queues[q].pending[i]), .strict(head: head), WaitReason(Reason.waitingForQuota, msg))
                        result.decisions += 1
                        i += 1
                    }
                }
            }
            cursor[q] = i
            pastFailures[q] = (failures, failedIDs)
            if deferredNow {
                heap.push(2 + share(q), queues[q].name, q)
            } else if admittedOne {
                heap.push(share(q), queues[q].name, q)
            } else {
                queues[q].triedEpoch = queues[q].epoch
                queues[q].triedGlobal = globalEpoch
                if i >= queues[q].pending.count {
                    queues[q].reps = failures.map { f in (Int32(failedIDs[Int(f.shape)] ?? -1), f.kind) }
                    queues[q].repsValid = !queues[q].reps.contains { $0.id < 0 }
                }
            }
        }
        for q in queues.indices where queues[q].positionsDirty {
            queues[q].positionsDirty = false
            sortPending(q)
            for (pos, id32) in queues[q].pending.enumerated() where workloads[Int(id32)].position != pos {
                workloads[Int(id32)].position = pos
                positionChanges.append((workloads[Int(id32)].key, pos))
            }
        }
        result.events = pendingEvents + result.events
        pendingEvents = []
        result.waiting = waitChanges; waitChanges = []
        result.positions = positionChanges; positionChanges = []
        for q in touchedQueues { result.queues.insert(queues[q].name) }
        for n in touchedNodes {
            result.nodes.insert(nodes[n].name)
            if let p = nodes[n].pool { result.pools.insert(p) }
        }
        touchedQueues = []; touchedNodes = []
        return result
    }

    /// The first failure whose shape this shape dominates (asks at least as much per replica,
    /// as many replicas or more, same gpuType and no specified nodes, no higher priority).
    func dominatingFailure(_ shape: Int, _ failures: [Failure]) -> Int {
        let s = shapes[shape]
        for (j, f) in failures.enumerated() {
            if Int(f.shape) == shape { return j }
            let o = shapes[Int(f.shape)]
            if s.specifiedNodes.isEmpty && o.specifiedNodes.isEmpty && s.gpuType == o.gpuType && s.replicas >= o.replicas
                && s.priority <= o.priority && s.per.dominates(o.per) { return j }
        }
        return -1
    }

    /// Sets a pending workload's wait reason; the message is built only when the kind changes
    /// (from `reason`, or from the kind and the workload's own request).
    func setReason(_ id: Int, _ kind: ReasonKind, _ reason: WaitReason?) {
        if workloads[id].reasonKind == kind, kind != .inactive || workloads[id].reason == reason { return }
        let r = reason ?? makeReason(id, kind)
        workloads[id].reasonKind = kind
        guard workloads[id].reason != r else { return }
        workloads[id].reason = r
        waitChanges.append((workloads[id].key, r))
    }

    func makeReason(_ id: Int, _ kind: ReasonKind) -> WaitReason {
        let w = workloads[id]
        switch kind {
        case .quota(let f): return WaitReason(Reason.waitingForQuota, message(f, w))
        case .noMatchingNode, .noRoom:
            if case .failure(let f) = place(id) {
                switch f {
                case .noMatchingNode(let m), .noRoom(let m): return WaitReason(Reason.noFittingNodes, m)
                }
            }
            return WaitReason(Reason.noFittingNodes, "no room on the nodes for \(w.request.replicas) replicas of \(describe(w)) (\(constraints(w)))")
        case .strict(let head):
            return WaitReason(Reason.waitingForQuota, "waiting behind \(workloads[Int(head)].key.qualifiedName), the head of StrictFIFO queue \"\(queues[w.queue].name)\"")
        case .inactive: return queues[w.queue].inactive ?? WaitReason(Reason.waitingForQuota, "queue is not active")
        case .preempting: return WaitReason(Reason.waitingForQuota, "waiting for the workloads it preempted to stop")
        }
    }

    /// Tries to admit one pending workload: quota, then placement, then preemption.
    func admit(_ id: Int, now: Double, result: inout CycleResult) -> Bool {
        let q = workloads[id].queue
        var failure: ReasonKind
        var waitReason: WaitReason?
        if let f = quotaFailure(q, workloads[id].total) {
            failure = .quota(f)
        } else {
            switch place(id) {
            case .success(let p):
                removePending(id)
                commit(id, assignments: p.assignments, nodeIdx: p.nodeIdx, now: now)
                result.events.append(.admitted(workloads[id].key, queue: queues[q].name, assignments: p.assignments, waitedSeconds: max(0, now - Double(workloads[id].request.created))))
                return true
            case .failure(.noMatchingNode(let m)):
                failure = .noMatchingNode; waitReason = WaitReason(Reason.noFittingNodes, m)
            case .failure(.noRoom(let m)):
                failure = .noRoom; waitReason = WaitReason(Reason.noFittingNodes, m)
            }
        }
        if failure != .noMatchingNode, preempt(id, now: now, result: &result) { return true }
        setReason(id, failure, waitReason)
        return false
    }

    // MARK: - Preemption

    /// Whether queue `q` stays within its deserved share with `total` more (reclaim is only
    /// for a queue that is owed what it asks).
    func withinDeserved(_ q: Int, _ total: [Int64]) -> Bool {
        for r in 0..<total.count where total[r] > 0 && at(queues[q].managed, r) {
            if sat(at(queues[q].used, r), total[r]) > at(queues[q].deserved, r) { return false }
        }
        return true
    }

    /// Whether an admitted workload of queue `v` may be reclaimed for a workload of queue `q`
    /// asking `total`: same tree; below their lowest common ancestor, the preemptor's side
    /// stays within deserved; the victim's own queue borrows one of the resources asked for,
    /// and every queue from it up to (not including) the common ancestor is reclaimable.
    func reclaimable(victimQueue v: Int, for q: Int, _ total: [Int64]) -> Bool {
        guard v != q, queues[v].root == queues[q].root else { return false }
        let qPath = queues[q].path
        let vPath = queues[v].path
        guard let lca = vPath.first(where: { qPath.contains($0) }) else { return false }
        if vPath.first == lca { return false }   // the victim's queue is an ancestor of the preemptor's
        for a in qPath { if a == lca { break }; if !withinDeserved(a, total) { return false } }
        for a in vPath {
            if a == lca { break }
            guard queues[a].spec?.reclaimable ?? true else { return false }
        }
        for r in 0..<total.count where total[r] > 0 && at(queues[v].managed, r) {
            if at(queues[v].used, r) > at(queues[v].deserved, r) { return true }
        }
        return false
    }

    /// Releases a candidate victim while simulating a preemption. A nominated candidate has
    /// no processes; the GPUs of the victims it waits for would be its successor's, so they
    /// count as free in the simulation too.
    func simRelease(_ id: Int) {
        release(id)
        if nominated.contains(Int32(id)) { liftHandedOver(id, lift: true) }
    }

    func simAcquire(_ id: Int) {
        if nominated.contains(Int32(id)) { liftHandedOver(id, lift: false) }
        acquire(id)
    }

    /// Takes off (or puts back) the GPUs of the handed-over holds a nomination waits for.
    func liftHandedOver(_ id: Int, lift: Bool) {
        for r in workloads[id].handedOver {
            guard let h = holds[r.key]?.first(where: { $0.id == r.id }) else { continue }
            if lift { vacate(h.per, h.assignments, h.nodeIdx, as: h.id) } else { occupy(h.per, h.assignments, h.nodeIdx, as: h.id) }
        }
    }

    func fits(_ id: Int) -> Bool {
        let w = workloads[id]
        if quotaFailure(w.queue, w.total) != nil { return false }
        if w.gpusPerReplica > 0 && Int64(freeGPUs(for: id)) < satMul(Int64(w.gpusPerReplica), Int64(w.request.replicas)) { return false }
        if case .success = place(id) { return true }
        return false
    }

    /// Preemption: a pending workload may evict lower-priority admitted workloads of its own
    /// queue, and, while its queue stays within deserved, workloads of reclaimable queues that
    /// borrow. Candidates are tried lowest priority first, then most recently admitted, until
    /// the preemptor fits; victims not needed after all are then spared (latest first). If
    /// the preemptor would still not fit, nothing is evicted.
    func preempt(_ id: Int, now: Double, result: inout CycleResult) -> Bool {
        let w = workloads[id]
        let q = w.queue
        var cands: [(id: Int, reclaim: Bool)] = []
        // Never evict a workload that once evicted this one: no preemption loops.
        let spared = w.preemptedBy
        for v in queues[q].admittedSet where workloads[Int(v)].request.priority < w.request.priority && !spared.contains(workloads[Int(v)].key) { cands.append((Int(v), false)) }
        if withinDeserved(q, w.total) {
            for o in queues.indices where o != q && !queues[o].admittedSet.isEmpty && reclaimable(victimQueue: o, for: q, w.total) {
                for v in queues[o].admittedSet where !spared.contains(workloads[Int(v)].key) { cands.append((Int(v), true)) }
            }
        }
        if cands.isEmpty { return false }
        // Not even every candidate's GPUs would make room: no need to simulate.
        let needGPUs = Int(satMul(Int64(w.gpusPerReplica), Int64(w.request.replicas)))
        if needGPUs > 0 {
            var possible = freeGPUs(for: id)
            for c in cands where possible < needGPUs { possible = Int(sat(Int64(possible), at(workloads[c.id].total, ResourceSlots.gpu) / 1000)) }
            if possible < needGPUs { return false }
        }
        // Reclaim takes first from workloads whose queue stays at or above its deserved share
        // without them (what was borrowed), so a reclaim does not push the victim's queue
        // below its share and set off reclaims in turn.
        var overshoots = Set<Int>()
        for c in cands where c.reclaim {
            let v = workloads[c.id], vq = v.queue
            for r in 0..<v.total.count where v.total[r] > 0 && at(queues[vq].managed, r) {
                if at(queues[vq].used, r) - v.total[r] < at(queues[vq].deserved, r) { overshoots.insert(c.id); break }
            }
        }
        // Sort on plain keys: overshooting last, lowest priority, most recently admitted.
        var order = cands.indices.map { i -> (Bool, Int, Double, Int, Int) in
            let id = cands[i].id
            return (overshoots.contains(id), workloads[id].request.priority, -workloads[id].admittedAt, -workloads[id].admittedSeq, i)
        }
        order.sort { a, b in
            if a.0 != b.0 { return !a.0 }
            if a.1 != b.1 { return a.1 < b.1 }
            if a.2 != b.2 { return a.2 < b.2 }
            return a.3 < b.3
        }
        cands = order.map { cands[$0.4] }
        var victims: [(id: Int, reclaim: Bool)] = []
        var ok = false
        for c in cands {
            if c.reclaim && !reclaimable(victimQueue: workloads[c.id].queue, for: q, w.total) { continue }
            simRelease(c.id)
            victims.append(c)
            if fits(id) { ok = true; break }
        }
        if !ok {
            for v in victims.reversed() { simAcquire(v.id) }
            return false
        }
        // Spare the victims that are not needed, latest chosen first (the last one is needed).
        var j = victims.count - 2
        while j >= 0 {
            simAcquire(victims[j].id)
            if fits(id) { victims.remove(at: j) } else { simRelease(victims[j].id) }
            j -= 1
        }
        guard case .success(let p) = place(id) else {
            for v in victims { simAcquire(v.id) }
            return false
        }
        // Victims that were nominations hand over what they waited for: the GPUs of their own
        // victims, still stopping, are taken again and the preemptor waits for them instead.
        var inherited: [ObjectKey] = []
        var handedOver: [HoldRef] = []
        for v in victims where nominated.contains(Int32(v.id)) {
            liftHandedOver(v.id, lift: false)
            inherited += workloads[v.id].awaiting
            handedOver += workloads[v.id].handedOver
        }
        let pk = w.key
        // Victims whose processes still run keep their quota and GPUs until they are gone:
        // the preemptor waits for them instead of being placed on GPUs still in use.
        var stopping: [ObjectKey] = []
        for k in inherited where holds[k] != nil && !stopping.contains(k) { stopping.append(k) }
        for v in victims where active.contains(workloads[v.id].key) && !nominated.contains(Int32(v.id)) {
            acquire(v.id)
            withdraw(v.id)
            if !stopping.contains(workloads[v.id].key) { stopping.append(workloads[v.id].key) }
            if let r = transferHold(workloads[v.id].key) { handedOver.append(r) }
        }
        for v in victims {
            // A victim that was itself nominated gives up its reservation (it never ran on it).
            clearNomination(v.id)
            workloads[v.id].assignments = []; workloads[v.id].nodeIdx = []
            workloads[v.id].preemptedBy.insert(pk)
            addPending(v.id)
            let reason = v.reclaim ? Reason.reclaimed : Reason.inQueue
            let msg = v.reclaim
                ? "preempted by \(pk.qualifiedName) (queue \"\(queues[q].name)\" reclaims quota that queue \"\(queues[workloads[v.id].queue].name)\" borrowed)"
                : "preempted by \(pk.qualifiedName), of higher priority (\(w.request.priority)) in queue \"\(queues[q].name)\""
            result.events.append(.preempted(workloads[v.id].key, by: pk, reason: reason, message: msg))
        }
        globalEpoch += 1
        removePending(id)
        commit(id, assignments: p.assignments, nodeIdx: p.nodeIdx, now: now)
        if !stopping.isEmpty {
            // Nominated: the placement and quota are the preemptor's from now on (victims
            // re-admitted only onto what it does not need); it is admitted once they stop.
            workloads[id].awaiting = stopping
            workloads[id].handedOver = handedOver
            nominated.insert(Int32(id))
            setReason(id, .preempting, WaitReason(Reason.waitingForQuota, "waiting for the workloads it preempted to stop: " + stopping.map(\.qualifiedName).joined(separator: ", ")))
            return true
        }
        result.events.append(.admitted(pk, queue: queues[q].name, assignments: p.assignments, waitedSeconds: max(0, now - Double(w.request.created))))
        return true
    }
}

/// A min-heap of queues by (share, name).
struct QueueHeap {
    var items: [(share: Double, name: String, q: Int)] = []
    static func less(_ a: (share: Double, name: String, q: Int), _ b: (share: Double, name: String, q: Int)) -> Bool {
        a.share != b.share ? a.share < b.share : a.name < b.name
    }
    mutating func push(_ share: Double, _ name: String, _ q: Int) {
        items.append((share, name, q))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if QueueHeap.less(items[i], items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }
    mutating func pop() -> Int? {
        guard !items.isEmpty else { return nil }
        let top = items[0].q
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && QueueHeap.less(items[l], items[m]) { m = l }
                if r < items.count && QueueHeap.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
