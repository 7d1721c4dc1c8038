import GantryAPI

// OWNER: query helper.

/// JSON forms of objects.
public enum ObjectView {
    /// The whole object, any kind: {"apiVersion","kind","metadata","spec","status","owner"}
    /// (+ "source": "file:line" for manifest-owned, + "deletedAt" for history entries).
    /// `status` is left out when the object has none yet.
    public static func object(_ o: APIObject) -> Value {
        let kind = o.object.spec.kind
        var b = ObjectBuilder()
        b.set("apiVersion", gantryAPIVersion)
        b.set("kind", kind.rawValue)
        b.set("metadata", o.object.meta.toValue(kind: kind, source: nil))
        b.set("spec", o.object.spec.toValue())
        b.set("status", o.status?.toValue())
        b.set("owner", o.owner.name)
        if case .manifest = o.owner { b.set("source", o.object.source.description) }
        b.set("deletedAt", o.deletedAt?.rfc3339)
        return b.value
    }

    /// A workload's flat summary with only `fields` (seed 004's field list and Gantry's:
    /// id, name, namespace, type, queue, status, phase, priority, gpus, replicas, user,
    /// description, displayName, image, command, args, env, labels, annotations, acceptTime,
    /// createdAt, startTime, startedAt, finishTime, completedAt, message, queuePosition,
    /// resources, runtime, distributedRuntime, owner); unknown field: 400 naming it.
    ///
    /// Values: id = uid; status = phase (a workload without status is Pending); gpus = GPUs
    /// over all replicas; user = the submitter ("" when not created through the API);
    /// command = spec.command or the decoded entryPoint; times are RFC 3339 or null;
    /// runtime = the replica of a one-replica workload (null otherwise or before it runs),
    /// distributedRuntime = the replicas of a multi-replica one (null otherwise).
    public static func fields(_ o: APIObject, _ fields: [String]) throws(APIError) -> Value {
        var members: [Value.Member] = []
        members.reserveCapacity(fields.count)
        for f in fields {
            guard let v = field(f, of: o) else {
                throw APIError.badRequest("unknown field \"\(f.prefix(40))\"; expected some of \(workloadFields.joined(separator: ", "))", field: "fields")
            }
            members.append(.init(f, v))
        }
        return .object(members)
    }

    public static let workloadFields: [String] = [
        "id", "uid", "name", "namespace", "kind", "type", "queue", "status", "phase", "priority", "gpus", "replicas", "user", "description",
        "displayName", "image", "command", "entryPoint", "args", "env", "labels", "annotations", "acceptTime", "createdAt", "startTime",
        "startedAt", "finishTime", "completedAt", "message", "queuePosition", "resources", "runtime", "distributedRuntime", "owner",
        "source", "deletedAt", "generation", "suspend", "timeout", "maxRetry",
    ]

    /// The default summary columns (what `fields` lists when a client asks for a summary).
    public static let summaryFields = ["name", "namespace", "type", "queue", "phase", "priority", "gpus", "replicas", "user", "createdAt", "startedAt", "completedAt"]

    /// One field's value; nil for a name not in `workloadFields`.
    public static func field(_ f: String, of o: APIObject) -> Value? {
        let meta = o.object.meta
        let spec = o.object.spec.workload ?? WorkloadSpec()
        let status = o.status?.workload
        func time(_ t: Timestamp?) -> Value { t.map { .string($0.rfc3339) } ?? .null }
        switch f {
        case "id", "uid": return .string(meta.uid)
        case "name": return .string(meta.name)
        case "namespace": return .string(meta.namespace)
        case "kind": return .string(o.object.spec.kind.rawValue)
        case "type": return .string(spec.type.rawValue)
        case "queue": return .string(spec.queue)
        case "status", "phase": return .string((status?.phase ?? .pending).rawValue)
        case "priority": return .int(Int64(spec.priority))
        case "gpus": return .int(spec.totalGPUs)
        case "replicas": return .int(Int64(spec.replicas))
        case "user": return .string(o.submitter)
        case "description": return .string(spec.description)
        case "displayName": return .string(spec.displayName)
        case "image": return .string(spec.image)
        case "command":
            if spec.command.isEmpty, !spec.entryPoint.isEmpty, let d = Base64.decode(spec.entryPoint), let s = String(validating: d, as: UTF8.self) { return .string(s) }
            return .string(spec.command)
        case "entryPoint": return .string(spec.entryPoint)
        case "args": return .array(spec.args.map { .string($0) })
        case "env": return .stringMap(spec.env)
        case "labels": return .stringMap(meta.labels)
        case "annotations": return .stringMap(meta.annotations)
        case "acceptTime", "createdAt": return .string(meta.creationTimestamp.rfc3339)
        case "startTime", "startedAt": return time(status?.startTime)
        case "finishTime", "completedAt": return time(status?.endTime)
        case "message": return .string(status?.message ?? "")
        case "queuePosition": return status?.queuePosition.map { .int(Int64($0)) } ?? .null
        case "resources":
            var res = spec.resources.toValue().members ?? []
            if let t = spec.gpuType { res.append(.init("gpuType", .string(t))) }
            return .object(res)
        case "runtime":
            guard spec.replicas == 1, let r = status?.replicas.first else { return .null }
            return replica(r)
        case "distributedRuntime":
            guard spec.replicas > 1, let rs = status?.replicas, !rs.isEmpty else { return .null }
            return .array(rs.map(replica))
        case "owner": return .string(o.owner.name)
        case "source":
            if case .manifest = o.owner { return .string(o.object.source.description) }
            return .null
        case "deletedAt": return time(o.deletedAt)
        case "generation": return .int(meta.generation)
        case "suspend": return .bool(spec.suspend)
        case "timeout": return .int(Int64(spec.timeout))
        case "maxRetry": return .int(Int64(spec.maxRetry))
        default: return nil
        }
    }

    static func replica(_ r: ReplicaStatus) -> Value {
        var b = ObjectBuilder()
        b.set("name", r.name)
        b.set("rank", r.rank)
        b.set("node", .string(r.node))
        b.set("gpus", .array(r.gpus.map { .int(Int64($0)) }))
        b.set("gpuCount", .int(Int64(r.gpuCount ?? r.gpus.count)))
        b.set("phase", .string(r.phase))
        b.set("exitCode", r.exitCode.map { Value.int(Int64($0)) } ?? .null)
        b.set("restarts", r.restarts)
        b.set("startTime", r.startTime.map { Value.string($0.rfc3339) } ?? .null)
        b.set("pid", r.pid.map { Value.int(Int64($0)) } ?? .null)
        return b.value
    }

    /// The replica hierarchy of a workload (seed 001): {"workload": {...summary}, "replicas":
    /// [{"name","rank","node","gpus","gpuCount","phase","exitCode","restarts","startTime","pid"}]}.
    /// Ranks without a replica status yet are listed from the admission (phase "Admitted")
    /// or, before admission, as "Pending" with node "".
    public static func hierarchy(_ o: APIObject) -> Value {
        let spec = o.object.spec.workload ?? WorkloadSpec()
        let status = o.status?.workload
        var summary = ObjectBuilder()
        summary.set("kind", o.object.spec.kind.rawValue)
        summary.set("name", .string(o.object.meta.name))
        summary.set("namespace", .string(o.object.meta.namespace))
        summary.set("uid", .string(o.object.meta.uid))
        summary.set("type", .string(spec.type.rawValue))
        summary.set("phase", .string((status?.phase ?? .pending).rawValue))
        summary.set("replicas", spec.replicas)
        summary.set("gpus", .int(spec.totalGPUs))
        summary.set("queue", .string(spec.queue))
        var byRank: [Int: ReplicaStatus] = [:]
        for r in status?.replicas ?? [] where byRank[r.rank] == nil { byRank[r.rank] = r }
        var admitted: [Int: ReplicaAssignment] = [:]
        for a in status?.admission ?? [] where admitted[a.rank] == nil { admitted[a.rank] = a }
        var ranks = Set(byRank.keys).union(admitted.keys)
        for r in 0..<max(0, min(spec.replicas, 10_000)) { ranks.insert(r) }
        let replicas: [Value] = ranks.sorted().map { rank in
            if let r = byRank[rank] { return replica(r) }
            let a = admitted[rank]
            let gpus = a?.gpus ?? []
            return replica(ReplicaStatus(name: "\(o.object.meta.name)-worker-\(rank)", rank: rank, node: a?.node ?? "",
                                         phase: a == nil ? "Pending" : "Admitted", gpus: gpus,
                                         gpuCount: gpus.isEmpty ? Int(clamping: spec.resources.gpu) : gpus.count))
        }
        return .object([.init("workload", summary.value), .init("replicas", .array(replicas))])
    }
}

/// Seed 002's telemetry: workload counts and GPU allocation grouped by queue, phase, type,
/// namespace or pool: {"groupBy":"queue","groups":[{"key":"q1","workloads":3,"gpus":8,
/// "allocatedGPUs":8,"phases":{"Running":2,"Pending":1}}]}. 400 for another groupBy.
///
/// `gpus` sums what the workloads ask for; `allocatedGPUs` what admitted, unfinished ones
/// hold (their admission's GPU indices, or their request where the indices are not known).
/// A workload's pool is that of the nodes its admission placed it on ("" before admission).
/// Groups are sorted by key; "totals" sums them. groupBy ignores case; seed names
/// (CurrentNodepools, nodepool) mean pool.
public enum Telemetry {
    public static let groupings = ["queue", "phase", "type", "namespace", "pool"]

    public static func group(_ workloads: [APIObject], nodes: [APIObject], by: String) throws(APIError) -> Value {
        let g: String
        switch by.lowercased() {
        case "queue": g = "queue"
        case "phase", "status": g = "phase"
        case "type", "kind": g = "type"
        case "namespace": g = "namespace"
        case "pool", "nodepool", "currentnodepools", "resourcepool": g = "pool"
        default:
            throw APIError.badRequest("cannot group by \"\(by.prefix(40))\"; expected one of \(groupings.joined(separator: ", "))", field: "groupBy")
        }
        var poolOf: [String: String] = [:]
        for n in nodes { if let s = n.object.spec.node { poolOf[n.object.meta.name] = s.resourcePool ?? "" } }
        struct Group { var workloads = 0; var gpus: Int64 = 0; var allocated: Int64 = 0; var phases: [String: Int] = [:] }
        var groups: [String: Group] = [:]
        var total = Group()
        for o in workloads {
            let spec = o.object.spec.workload ?? WorkloadSpec()
            let status = o.status?.workload
            let phase = (status?.phase ?? .pending).rawValue
            let key: String
            switch g {
            case "queue": key = spec.queue
            case "phase": key = phase
            case "type": key = spec.type.rawValue
            case "namespace": key = o.object.meta.namespace
            default: key = status?.admission.lazy.compactMap { poolOf[$0.node] }.first ?? ""
            }
            let alloc = allocatedGPUs(spec, status)
            for k in [key, "\u{0}total"] {
                var e = k == key ? (groups[k] ?? Group()) : total
                e.workloads += 1
                e.gpus = e.gpus.addingReportingOverflow(spec.totalGPUs).overflow ? .max : e.gpus + spec.totalGPUs
                e.allocated = e.allocated.addingReportingOverflow(alloc).overflow ? .max : e.allocated + alloc
                e.phases[phase, default: 0] += 1
                if k == key { groups[k] = e } else { total = e }
            }
        }
        func value(_ key: String?, _ e: Group) -> Value {
            var b = ObjectBuilder()
            if let key { b.set("key", .string(key)) }
            b.set("workloads", e.workloads)
            b.set("gpus", .int(e.gpus))
            b.set("allocatedGPUs", .int(e.allocated))
            b.set("phases", .object(e.phases.keys.sorted().map { Value.Member($0, .int(Int64(e.phases[$0] ?? 0))) }))
            return b.value
        }
        return .object([.init("groupBy", .string(g)),
                        .init("groups", .array(groups.keys.sorted().map { value($0, groups[$0] ?? Group()) })),
                        .init("totals", value(nil, total))])
    }

    static func allocatedGPUs(_ spec: WorkloadSpec, _ status: WorkloadStatus?) -> Int64 {
        guard let status, status.admissionQueue != nil, !status.admission.isEmpty else { return 0 }
        switch status.phase {
        case .succeeded, .failed, .stopped: return 0
        default: break
        }
        let indices = status.admission.reduce(0) { $0 + $1.gpus.count }
        if indices > 0 { return Int64(indices) }
        let (t, over) = spec.resources.gpu.multipliedReportingOverflow(by: Int64(status.admission.count))
        return over ? .max : t
    }
}

/// Seed 001's filter metadata: the phases, types, queues, namespaces, users and priorities in use.
/// {"phases":[..],"types":[..],"kinds":[..same as types],"queues":[..],"namespaces":[..],
///  "users":[..],"priorities":[..],"allPhases":[..],"allTypes":[..]} — each sorted, "users"
/// without the empty name; allPhases/allTypes list every value Gantry knows (for dropdowns).
public enum WorkloadMetadata {
    public static func of(_ workloads: [APIObject]) -> Value {
        var phases = Set<String>(), types = Set<String>(), queues = Set<String>(), namespaces = Set<String>(), users = Set<String>()
        var priorities = Set<Int>()
        for o in workloads {
            phases.insert((o.status?.workload?.phase ?? .pending).rawValue)
            namespaces.insert(o.object.meta.namespace)
            if !o.submitter.isEmpty { users.insert(o.submitter) }
            if let s = o.object.spec.workload {
                types.insert(s.type.rawValue); queues.insert(s.queue); priorities.insert(s.priority)
            }
        }
        func strings(_ s: Set<String>) -> Value { .array(s.sorted().map { .string($0) }) }
        return .object([
            .init("phases", strings(phases)), .init("types", strings(types)), .init("kinds", strings(types)),
            .init("queues", strings(queues)), .init("namespaces", strings(namespaces)), .init("users", strings(users)),
            .init("priorities", .array(priorities.sorted().map { .int(Int64($0)) })),
            .init("allPhases", .array(WorkloadPhase.allCases.map { .string($0.rawValue) })),
            .init("allTypes", .array(WorkloadType.allCases.map { .string($0.rawValue) })),
        ])
    }
}
