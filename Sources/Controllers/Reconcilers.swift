import GantryAPI
import ControllerRuntime
import Scheduler

/// Dispatches a key to the reconciler of its kind.
public struct KindRouter: Reconciler {
    public let workloads: WorkloadReconciler
    public let queues: QueueReconciler
    public let nodes: NodeReconciler
    public let pools: ResourcePoolReconciler

    public init(inventory: Inventory, admission: Admission, clock: any Clock, overrides: Overrides = Overrides()) {
        workloads = WorkloadReconciler(inventory: inventory, admission: admission, overrides: overrides)
        queues = QueueReconciler(inventory: inventory, admission: admission, clock: clock)
        nodes = NodeReconciler(inventory: inventory, admission: admission, clock: clock)
        pools = ResourcePoolReconciler(inventory: inventory, admission: admission, clock: clock)
    }

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        switch key.kind {
        case .workload: return try workloads.reconcile(key)
        case .queue: return try queues.reconcile(key)
        case .node: return try nodes.reconcile(key)
        case .resourcePool: return try pools.reconcile(key)
        }
    }

    /// Runs of workloads go to admission as one batch; other kinds one by one, in order.
    public func reconcile(batch keys: [ObjectKey]) -> [Result<ReconcileResult, any Error>] {
        var out: [Result<ReconcileResult, any Error>] = []
        out.reserveCapacity(keys.count)
        var i = 0
        while i < keys.count {
            var j = i
            while j < keys.count && keys[j].kind == .workload { j += 1 }
            if j > i {
                out += workloads.reconcile(batch: Array(keys[i..<j]))
                i = j
            } else {
                let k = keys[i]
                out.append(Result { try reconcile(k) })
                i += 1
            }
        }
        return out
    }
}

/// Workloads: hands each change to admission, which owns the workload's status (the
/// Admitted condition and its reason, position, admission, Stopped when suspended).
public struct WorkloadReconciler: Reconciler {
    let inventory: Inventory
    let admission: Admission
    let overrides: Overrides

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        let (obj, override) = overrides.apply(inventory.current(key), events: inventory.events)
        admission.syncWorkload(key, obj, override: override)
        return .done
    }

    public func reconcile(batch keys: [ObjectKey]) -> [Result<ReconcileResult, any Error>] {
        let items = keys.map { key in
            let (obj, override) = overrides.apply(inventory.current(key), events: inventory.events)
            return (key: key, object: obj, override: override)
        }
        admission.syncWorkloads(items)
        return keys.map { _ in .success(.done) }
    }
}

/// Queues: hands each change to admission (tree, quota, state), and writes the spec-derived
/// part of the Queue status (state, deserved share, an `Active` condition). Admission writes
/// the usage part (allocated, borrowed, pending, admitted).
public struct QueueReconciler: Reconciler {
    let inventory: Inventory
    let admission: Admission
    let clock: any Clock

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        let now = clock.timestamp
        let obj = inventory.current(key)
        admission.syncQueue(key.name, obj)
        guard let obj, let spec = obj.spec.queue else { return .done }
        let gen = obj.meta.generation
        let deserved = admission.withState { $0.effectiveDeserved(key.name) } ?? spec.deserved
        inventory.statuses.update(key, initial: { .queue(QueueStatus()) }) { status in
            var s = status.queue ?? QueueStatus()
            s.state = spec.state
            s.deserved = deserved
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

/// Node status: phase (Ready, SchedulingDisabled when cordoned, NotReady when invalid or its
/// pool is missing) and capacity; admission writes the allocation. Only ready nodes take
/// new replicas.
public struct NodeReconciler: Reconciler {
    let inventory: Inventory
    let admission: Admission
    let clock: any Clock

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        guard let obj = inventory.current(key), let spec = obj.spec.node else {
            admission.syncNode(key.name, nil, ready: false)
            return .done
        }
        let poolMissing = spec.resourcePool.map { inventory.desired.get(ObjectKey(.resourcePool, name: $0)) == nil } ?? false
        admission.syncNode(key.name, obj, ready: obj.invalid.isEmpty && !poolMissing)
        let now = clock.timestamp, gen = obj.meta.generation
        let pressure = admission.nodePressure(key.name)
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
                // DiskPressure or ResourcePressure (NodePressure.swift) while it lasts.
                if let pressure, !spec.unschedulable { s.phase = pressure }
            }
            status = .node(s)
        }
        return .done
    }
}

/// ResourcePool status: node and GPU totals of the nodes that name the pool, and how many
/// of them hold admitted replicas.
public struct ResourcePoolReconciler: Reconciler {
    let inventory: Inventory
    let admission: Admission
    let clock: any Clock

    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        guard let obj = inventory.current(key) else { return .done }
        let nodes = inventory.desired.objects(index: Inventory.byPool, value: key.name).filter { $0.invalid.isEmpty }
        let gen = obj.meta.generation, now = clock.timestamp
        var gpus: Int64 = 0
        for n in nodes { gpus += n.spec.node?.capacity.gpu ?? 0 }
        let (usedNodes, usedGPUs) = admission.poolUsage(key.name)
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

/// The replica lifecycle's timers: a workload key comes back when its grace period,
/// deadline, backoff or TTL is due, and again after the next one (requeueAfter).
public struct LifecycleTimerReconciler: Reconciler {
    let admission: Admission
    public init(admission: Admission) { self.admission = admission }
    public func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
        ReconcileResult(requeueAfter: admission.timerDue(key))
    }
}
