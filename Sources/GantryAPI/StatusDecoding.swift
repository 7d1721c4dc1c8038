/// Reads statuses back from their stored `Value` form (the inverse of `toValue`), so a
/// restarted daemon keeps transition times, counters and assignments.
extension ObjectStatus {
    public static func from(_ v: Value, kind: Kind) -> ObjectStatus {
        switch kind {
        case .workload: return .workload(WorkloadStatus(v))
        case .queue: return .queue(QueueStatus(v))
        case .node: return .node(NodeStatus(v))
        case .resourcePool: return .resourcePool(ResourcePoolStatus(v))
        }
    }
}

private func int(_ v: Value?) -> Int? { v?.intValue.map { Int($0) } }
/// A counter the daemon adds to (dispatches, retries): a damaged row's value is clamped so `+ 1` cannot overflow.
private func counter(_ v: Value?) -> Int { min(max(int(v) ?? 0, 0), Int(Int32.max)) }
private func time(_ v: Value?) -> Timestamp? { v?.stringValue.flatMap { Timestamp(rfc3339: $0) } }
private func ints(_ v: Value?) -> [Int] { v?.arrayValue?.compactMap { $0.intValue.map { Int($0) } } ?? [] }

private func conditions(_ v: Value?) -> [Condition] {
    (v?.arrayValue ?? []).compactMap { c in
        guard let t = c["type"]?.stringValue else { return nil }
        return Condition(type: t, status: c["status"]?.stringValue ?? "Unknown", reason: c["reason"]?.stringValue ?? "",
                         message: c["message"]?.stringValue ?? "", lastTransitionTime: time(c["lastTransitionTime"]) ?? Timestamp(seconds: 0),
                         observedGeneration: c["observedGeneration"]?.intValue ?? 0)
    }
}

private func resources(_ v: Value?) -> ResourceList {
    var r = ResourceList()
    for m in v?.members ?? [] {
        switch m.value {
        case .int(let i): let (milli, over) = i.multipliedReportingOverflow(by: 1000); if !over { r[m.key] = Quantity(milli: milli) }
        case .string(let s): if let q = try? Quantity.parse(s) { r[m.key] = q }
        default: break
        }
    }
    return r
}

private func usedTotal(_ v: Value?) -> UsedTotal { UsedTotal(total: v?["total"]?.intValue ?? 0, used: v?["used"]?.intValue ?? 0) }

extension WorkloadStatus {
    public init(_ v: Value) {
        self.init()
        phase = v["phase"]?.stringValue.flatMap(WorkloadPhase.init(rawValue:)) ?? .pending
        message = v["message"]?.stringValue ?? ""
        queuePosition = int(v["queuePosition"])
        if let a = v["admission"] {
            admissionQueue = a["queue"]?.stringValue
            admission = (a["replicas"]?.arrayValue ?? []).map { ReplicaAssignment(rank: int($0["rank"]) ?? 0, node: $0["node"]?.stringValue ?? "", gpus: ints($0["gpus"])) }
        }
        replicas = (v["replicas"]?.arrayValue ?? []).map { r in
            ReplicaStatus(name: r["name"]?.stringValue ?? "", rank: int(r["rank"]) ?? 0, node: r["node"]?.stringValue ?? "",
                          phase: r["phase"]?.stringValue ?? "", gpus: ints(r["gpus"]), pid: int(r["pid"]), startTime: time(r["startTime"]),
                          exitCode: int(r["exitCode"]), restarts: int(r["restarts"]) ?? 0, gpuCount: int(r["gpuCount"]))
        }
        if let o = v["override"], let sus = o["suspend"]?.boolValue {
            override = SuspendOverride(suspend: sus, generation: o["generation"]?.intValue ?? 0, at: time(o["at"]) ?? Timestamp(seconds: 0), by: o["by"]?.stringValue ?? "")
        }
        dispatchCount = counter(v["dispatchCount"])
        retryCount = counter(v["retryCount"])
        creationTime = time(v["creationTime"]) ?? Timestamp(seconds: 0)
        startTime = time(v["startTime"])
        endTime = time(v["endTime"])
        observedGeneration = v["observedGeneration"]?.intValue ?? 0
        conditions = GantryAPI.conditions(v["conditions"])
    }
}

private func conditionsOf(_ v: Value) -> [Condition] { conditions(v["conditions"]) }

extension QueueStatus {
    public init(_ v: Value) {
        self.init()
        state = v["state"]?.stringValue.flatMap(QueueState.init(rawValue:)) ?? .open
        deserved = resources(v["deserved"]); allocated = resources(v["allocated"]); borrowed = resources(v["borrowed"])
        pending = int(v["pending"]) ?? 0; admitted = int(v["admitted"]) ?? 0; running = int(v["running"]) ?? 0
        observedGeneration = v["observedGeneration"]?.intValue ?? 0
        conditions = conditionsOf(v)
    }
}

extension NodeStatus {
    public init(_ v: Value) {
        self.init()
        phase = v["phase"]?.stringValue ?? "Ready"
        capacity = resources(v["capacity"]); allocated = resources(v["allocated"])
        workloads = int(v["workloads"]) ?? 0
        observedGeneration = v["observedGeneration"]?.intValue ?? 0
        conditions = conditionsOf(v)
    }
}

extension ResourcePoolStatus {
    public init(_ v: Value) {
        self.init()
        phase = v["phase"]?.stringValue ?? "Running"
        nodeCount = usedTotal(v["nodeCount"]); gpuCount = usedTotal(v["gpuCount"])
        observedGeneration = v["observedGeneration"]?.intValue ?? 0
        conditions = conditionsOf(v)
    }
}
