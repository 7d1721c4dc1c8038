import GantryAPI
import ControllerRuntime

/// Dispatches a key to the reconciler of its kind.
public struct KindRouter: Reconciler {
    public let workloads: WorkloadReconciler
    public let queues: QueueReconciler
    public let nodes: NodeReconciler
    public let pools: ResourcePoolReconciler

    public init(inventory: Inventory, clock: any Clock) {
        workloads = WorkloadReconciler(inventory: inventory, clock: clock)
        queues = QueueReconciler(inventory: inventory, clock: clock)
        nodes = NodeReconciler(inventory: inventory, clock: clock)
        pools = ResourcePoolReconciler(inventory: inventory, clock: clock)
    }

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        switch key.kind {
        case .workload: return try workloads.reconcile(key)
        case .queue: return try queues.reconcile(key)
        case .node: return try nodes.reconcile(key)
        case .resourcePool: return try pools.reconcile(key)
        }
    }
}

/// Workload status before admission exists: phase, the Admitted condition with the reason the
/// workload waits (InvalidSpec, QueueNotFound, QueueClosed, WaitingForQuota), Stopped when
/// suspended. `queuePosition` belongs to the queue's reconcile and is left as it is.
public struct WorkloadReconciler: Reconciler {
    let inventory: Inventory
    let clock: any Clock

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        guard let obj = inventory.current(key), let spec = obj.spec.workload else { return .done }
        let now = clock.timestamp
        let gen = obj.meta.generation
        let queueObj = inventory.desired.get(ObjectKey(.queue, name: spec.queue))
        inventory.statuses.update(key, initial: { .workload(WorkloadStatus()) }) { status in
            var s = status.workload ?? WorkloadStatus()
            s.creationTime = obj.meta.creationTimestamp
            s.observedGeneration = gen
            if !obj.invalid.isEmpty {
                s.phase = .pending
                s.queuePosition = nil
                s.message = "invalid spec: " + obj.invalid.map(\.description).joined(separator: "; ")
                s.conditions.set(type: ConditionType.admitted, status: "False", reason: Reason.invalidSpec, message: s.message, now: now, generation: gen)
            } else if spec.suspend {
                s.phase = .stopped
                s.queuePosition = nil
                s.message = "suspended (spec.suspend is true)"
                s.conditions.set(type: ConditionType.admitted, status: "False", reason: Reason.stopped, message: s.message, now: now, generation: gen)
                s.conditions.set(type: ConditionType.finished, status: "True", reason: Reason.stopped, message: s.message, now: now, generation: gen)
                if s.endTime == nil { s.endTime = now }
            } else {
                s.phase = .pending
                s.endTime = nil
                s.conditions.remove(type: ConditionType.finished)
                let (reason, message): (String, String)
                if queueObj == nil {
                    (reason, message) = (Reason.queueNotFound, "queue \"\(spec.queue)\" does not exist")
                } else if queueObj?.spec.queue?.state == .closed {
                    (reason, message) = (Reason.queueClosed, "queue \"\(spec.queue)\" is Closed and admits nothing new")
                } else if let q = queueObj, !q.invalid.isEmpty {
                    (reason, message) = (Reason.waitingForQuota, "queue \"\(spec.queue)\" has an invalid spec")
                } else {
                    (reason, message) = (Reason.waitingForQuota, "waiting for quota in queue \"\(spec.queue)\" (\(spec.totalGPUs) GPUs over \(spec.replicas) replicas)")
                }
                s.message = message
                s.conditions.set(type: ConditionType.admitted, status: "False", reason: reason, message: message, now: now, generation: gen)
            }
            status = .workload(s)
        }
        return .done
    }
}

/// Queue order and counts. Orders the queue's pending workloads (priority, then creation
/// time, then name) and writes each one's `queuePosition`; writes the Queue's own status
/// (state, quota, counts, an `Active` condition) when the Queue object exists. Keys for queue
/// names that have no Queue object still order their workloads.
public struct QueueReconciler: Reconciler {
    let inventory: Inventory
    let clock: any Clock

    /// The fields that order a pending queue, cheap to sort.
    public struct OrderKey: Comparable, Sendable {
        public var priority: Int
        public var created: Int64
        public var key: ObjectKey
        public init(_ o: ManifestObject) {
            priority = o.spec.workload?.priority ?? 0; created = o.meta.creationTimestamp.seconds; key = o.key
        }
        /// Priority (high first), then creation time, then namespace/name.
        public static func < (a: OrderKey, b: OrderKey) -> Bool {
            if a.priority != b.priority { return a.priority > b.priority }
            if a.created != b.created { return a.created < b.created }
            return a.key < b.key
        }
    }

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        let now = clock.timestamp
        let members = inventory.desired.objects(index: Inventory.byQueue, value: key.name)
        var pending = members.filter { $0.invalid.isEmpty && $0.spec.workload?.suspend == false }.map(OrderKey.init)
        pending.sort()
        var position: [ObjectKey: Int] = [:]
        position.reserveCapacity(pending.count)
        for (i, w) in pending.enumerated() { position[w.key] = i }
        for w in members {
            let pos = position[w.key]
            inventory.statuses.update(w.key, initial: { .workload(WorkloadStatus()) }) { status in
                guard var s = status.workload, s.queuePosition != pos else { return }
                s.queuePosition = pos
                status = .workload(s)
            }
        }
        guard let obj = inventory.current(key), let spec = obj.spec.queue else { return .done }
        let gen = obj.meta.generation
        inventory.statuses.update(key, initial: { .queue(QueueStatus()) }) { status in
            var s = status.queue ?? QueueStatus()
            s.state = spec.state
            s.deserved = spec.deserved
            s.pending = pending.count
            s.observedGeneration = gen
            let (ok, reason, message) = activeCondition(obj, spec)
            s.conditions.set(type: "Active", status: ok ? "True" : "False", reason: reason, message: message, now: now, generation: gen)
            status = .queue(s)
        }
        return .done
    }

    func activeCondition(_ obj: ManifestObject, _ spec: QueueSpec) -> (Bool, String, String) {
        if !obj.invalid.isEmpty { return (false, Reason.invalidSpec, obj.invalid.map(\.description).joined(separator: "; ")) }
        if let parent = spec.parent {
            var seen: Set<String> = [obj.meta.name]
            var cur: String? = parent
            while let c = cur {
                if !seen.insert(c).inserted { return (false, "CycleDetected", "the parent chain of queue \"\(obj.meta.name)\" loops through \"\(c)\"") }
                guard let p = inventory.desired.get(ObjectKey(.queue, name: c)) else {
                    return (false, "ParentNotFound", "parent queue \"\(c)\" does not exist")
                }
                cur = p.spec.queue?.parent
            }
        }
        if let pool = spec.resourcePool, inventory.desired.get(ObjectKey(.resourcePool, name: pool)) == nil {
            return (false, "ResourcePoolNotFound", "resource pool \"\(pool)\" does not exist")
        }
        if spec.state == .closed { return (true, "Closed", "queue is Closed: admits nothing new; admitted workloads go on") }
        return (true, "Ready", "queue can admit workloads")
    }
}

/// Node status: phase (Ready, SchedulingDisabled when cordoned, NotReady when invalid),
/// capacity, allocation (none before admission exists).
public struct NodeReconciler: Reconciler {
    let inventory: Inventory
    let clock: any Clock

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        guard let obj = inventory.current(key), let spec = obj.spec.node else { return .done }
        let now = clock.timestamp, gen = obj.meta.generation
        inventory.statuses.update(key, initial: { .node(NodeStatus()) }) { status in
            var s = status.node ?? NodeStatus()
            s.capacity = spec.capacity
            s.observedGeneration = gen
            if !obj.invalid.isEmpty {
                s.phase = "NotReady"
                s.conditions.set(type: ConditionType.ready, status: "False", reason: Reason.invalidSpec, message: obj.invalid.map(\.description).joined(separator: "; "), now: now, generation: gen)
            } else if let pool = spec.resourcePool, inventory.desired.get(ObjectKey(.resourcePool, name: pool)) == nil {
                s.phase = "NotReady"
                s.conditions.set(type: ConditionType.ready, status: "False", reason: "ResourcePoolNotFound", message: "resource pool \"\(pool)\" does not exist", now: now, generation: gen)
            } else {
                s.phase = spec.unschedulable ? "SchedulingDisabled" : "Ready"
                s.conditions.set(type: ConditionType.ready, status: "True", reason: spec.unschedulable ? "Cordoned" : "NodeReady",
                                 message: spec.unschedulable ? "unschedulable: running replicas stay, nothing new lands" : "\(spec.capacity.gpu) GPUs", now: now, generation: gen)
            }
            status = .node(s)
        }
        return .done
    }
}

/// ResourcePool status: node and GPU totals of the nodes that name the pool.
public struct ResourcePoolReconciler: Reconciler {
    let inventory: Inventory
    let clock: any Clock

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        guard let obj = inventory.current(key) else { return .done }
        let nodes = inventory.desired.objects(index: Inventory.byPool, value: key.name).filter { $0.invalid.isEmpty }
        let gen = obj.meta.generation, now = clock.timestamp
        var gpus: Int64 = 0, usedNodes: Int64 = 0, usedGPUs: Int64 = 0
        for n in nodes {
            gpus += n.spec.node?.capacity.gpu ?? 0
            if let st = inventory.statuses.get(n.key)?.node, st.allocated.gpu > 0 || st.workloads > 0 {
                usedNodes += 1; usedGPUs += st.allocated.gpu
            }
        }
        inventory.statuses.update(key, initial: { .resourcePool(ResourcePoolStatus()) }) { status in
            var s = status.resourcePool ?? ResourcePoolStatus()
            s.phase = "Running"
            s.nodeCount = UsedTotal(total: Int64(nodes.count), used: usedNodes)
            s.gpuCount = UsedTotal(total: gpus, used: usedGPUs)
            s.observedGeneration = gen
            s.conditions.set(type: ConditionType.ready, status: "True", reason: "PoolReady", message: "\(nodes.count) nodes, \(gpus) GPUs", now: now, generation: gen)
            status = .resourcePool(s)
        }
        return .done
    }
}
