import GantryAPI
import StateStore
import KubeClient
import KubeMode

/// Pure translations from API objects to the rows the CLI renders (no I/O; tested apart).
enum KubeReaderRows {
    /// `apiVersion` and `kind` when the server left them out of a GET.
    static func withTypeMeta(_ v: Value, kind: Kind) -> Value {
        guard case .object(var members) = v else { return v }
        if v["kind"] == nil { members.insert(.init("kind", .string(kind.rawValue)), at: 0) }
        if v["apiVersion"] == nil { members.insert(.init("apiVersion", .string(gantryAPIVersion)), at: 0) }
        return .object(members)
    }

    /// A custom resource as a stored row: the object without status (and without
    /// managedFields, noise for a reader), the status apart (nil while none is written).
    /// The spec is the decoded one, with defaults, as directory mode stores it (the raw
    /// spec when it does not decode).
    static func row(_ v: Value, kind: Kind, server: String) -> ObjectRow? {
        guard case .object(let members) = v, let name = v["metadata"]?["name"]?.stringValue, !name.isEmpty else { return nil }
        let namespace = kind.isNamespaced ? (v["metadata"]?["namespace"]?.stringValue ?? "") : ""
        var decodedSpec: Value?
        if case .object(let obj, _) = KubeObjects.decode(v, kind: kind, fieldValidation: .ignore) { decodedSpec = obj.spec.toValue() }
        var object: [Value.Member] = []
        var status: Value?
        for m in members {
            switch m.key {
            case "status": status = m.value
            case "spec": object.append(.init("spec", decodedSpec ?? m.value))
            case "metadata":
                if case .object(let meta) = m.value { object.append(.init("metadata", .object(meta.filter { $0.key != "managedFields" }))) } else { object.append(m) }
            default: object.append(m)
            }
        }
        if let s = status, s == .null || s.members?.isEmpty == true { status = nil }
        let sm = KubeObjects.ServerMeta(v)
        let key = ObjectKey(kind, namespace: namespace, name: name)
        let source = "\(KubeObjects.display(kind, v)) (\(server))"
        return ObjectRow(key: key, uid: sm.uid, generation: sm.generation, specHash: "", objectHash: "", creationTime: sm.creation.seconds,
                         source: source, objectJSON: JSON.encode(.object(object)), statusJSON: status.map { JSON.encode($0) })
    }

    static func sorted(_ rows: [ObjectRow]) -> [ObjectRow] { rows.sorted { $0.key < $1.key } }

    /// Whether Gantry reported an event (its component, or an object of gantry.dev).
    static func fromGantry(_ e: Value) -> Bool {
        e["source"]?["component"]?.stringValue == KubeObjects.component || e["reportingComponent"]?.stringValue == KubeObjects.component
            || (e["involvedObject"]?["apiVersion"]?.stringValue ?? "").hasPrefix("gantry.dev/")
    }

    /// A core/v1 Event as the events table's row: times from first/lastTimestamp, else
    /// eventTime, else the creation time; count at least 1.
    static func eventRow(_ e: Value) -> StateReader.EventRow? {
        guard let name = e["metadata"]?["name"]?.stringValue else { return nil }
        func time(_ keys: [String]) -> Double? {
            for k in keys {
                if let s = e[k]?.stringValue, let t = Timestamp(rfc3339: s) { return Double(t.seconds) }
                if k == "creationTimestamp", let s = e["metadata"]?["creationTimestamp"]?.stringValue, let t = Timestamp(rfc3339: s) { return Double(t.seconds) }
            }
            return nil
        }
        let first = time(["firstTimestamp", "eventTime", "creationTimestamp"]) ?? 0
        let last = time(["lastTimestamp", "eventTime", "firstTimestamp", "creationTimestamp"]) ?? first
        let inv = e["involvedObject"]
        let count = e["count"]?.intValue.map { Int(clamping: max(1, $0)) } ?? 1
        return StateReader.EventRow(name: name, kind: inv?["kind"]?.stringValue ?? "", namespace: inv?["namespace"]?.stringValue ?? "",
                                    objName: inv?["name"]?.stringValue ?? "", type: e["type"]?.stringValue ?? "Normal",
                                    reason: e["reason"]?.stringValue ?? "", message: e["message"]?.stringValue ?? "",
                                    count: count, first: first, last: last)
    }

    /// Per node: the resources of the admitted replicas placed on it (each replica holds its
    /// workload's `spec.resources`) and how many workloads have a replica there — what the
    /// scheduler's node usage holds in directory mode.
    static func nodeUsage(_ workloads: [Value]) -> [String: (allocated: ResourceList, workloads: Int)] {
        var allocated: [String: ResourceList] = [:]
        var holders: [String: Set<String>] = [:]
        for w in workloads {
            guard let replicas = w["status"]?["admission"]?["replicas"]?.arrayValue else { continue }
            let perReplica = resources(w["spec"]?["resources"])
            let id = (w["metadata"]?["namespace"]?.stringValue ?? "") + "/" + (w["metadata"]?["name"]?.stringValue ?? "")
            for r in replicas {
                guard let node = r["node"]?.stringValue, !node.isEmpty else { continue }
                allocated[node] = add(allocated[node] ?? ResourceList(), perReplica)
                holders[node, default: []].insert(id)
            }
        }
        var out: [String: (allocated: ResourceList, workloads: Int)] = [:]
        for (node, list) in allocated { out[node] = (list, holders[node]?.count ?? 0) }
        return out
    }

    /// `{gpu: 8, memory: "64Gi"}` as a list; unreadable amounts are left out.
    static func resources(_ v: Value?) -> ResourceList {
        var list = ResourceList()
        for m in v?.members ?? [] {
            let text: String
            switch m.value {
            case .int(let i): text = String(i)
            case .string(let s): text = s
            default: continue
            }
            if let q = try? Quantity.parse(text) { list.amounts[m.key] = q }
        }
        return list
    }

    /// Sum that saturates instead of overflowing (amounts come from the cluster).
    static func add(_ a: ResourceList, _ b: ResourceList) -> ResourceList {
        var r = a
        for (k, v) in b.amounts {
            let (sum, over) = r[k].milli.addingReportingOverflow(v.milli)
            r.amounts[k] = Quantity(milli: over ? (v.milli > 0 ? .max : .min) : sum)
        }
        return r
    }

    /// A Node's status as directory mode writes it: phase (Ready, SchedulingDisabled or
    /// NotReady), capacity, allocated, workloads and a Ready condition.
    static func nodeStatus(_ v: Value, spec: NodeSpec, usage: (allocated: ResourceList, workloads: Int)?, poolMissing: Bool) -> Value {
        var s = NodeStatus()
        s.capacity = spec.capacity
        s.allocated = usage?.allocated ?? ResourceList()
        s.workloads = usage?.workloads ?? 0
        s.observedGeneration = 1
        let ready = (v["status"]?["conditions"]?.arrayValue ?? []).first { $0["type"]?.stringValue == "Ready" }
        let since = ready?["lastTransitionTime"]?.stringValue.flatMap { Timestamp(rfc3339: $0) } ?? KubeObjects.ServerMeta(v).creation
        func set(_ status: String, _ reason: String, _ message: String) {
            s.conditions = [Condition(type: ConditionType.ready, status: status, reason: reason, message: message, lastTransitionTime: since, observedGeneration: 1)]
        }
        if ready?["status"]?.stringValue != "True" {
            s.phase = "NotReady"
            set("False", "NodeNotReady", ready?["message"]?.stringValue ?? "the kubelet does not report the node Ready")
        } else if poolMissing, let pool = spec.resourcePool {
            s.phase = "NotReady"
            set("False", "ResourcePoolNotFound", "resource pool \"\(pool)\" does not exist")
        } else if spec.unschedulable {
            s.phase = "SchedulingDisabled"
            set("True", "Cordoned", "unschedulable: running replicas stay, nothing new lands")
        } else {
            s.phase = "Ready"
            set("True", "NodeReady", "\(spec.capacity.gpu) GPUs")
        }
        return s.toValue()
    }
}
