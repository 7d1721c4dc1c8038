import GantryAPI
import KubeClient
import Controllers

/// Translations between Kubernetes API objects and Gantry's model: the gantry.dev custom
/// resources decode with the same decoder as manifest files (the API server's metadata in
/// force), core Nodes become Gantry nodes.
public enum KubeObjects {
    public static let finalizer = "gantry.dev/cleanup"
    public static let labelWorkload = "gantry.dev/workload"
    public static let labelRank = "gantry.dev/rank"
    public static let labelDispatch = "gantry.dev/dispatch"
    public static let labelAttempt = "gantry.dev/attempt"
    public static let labelPool = "gantry.dev/resource-pool"
    public static let annotationIntent = "gantry.dev/dispatch-intent"
    public static let gpuProductLabel = "nvidia.com/gpu.product"
    public static let component = "gantry"

    public static func resource(_ kind: Kind) -> GroupVersionResource? {
        switch kind {
        case .workload: .workloads
        case .queue: .queues
        case .resourcePool: .resourcePools
        case .node: nil
        }
    }

    /// The API path of a Gantry object (nil for Nodes, which are core objects here).
    public static func path(_ key: ObjectKey, subresource: String? = nil) -> String? {
        if key.kind == .node { return GroupVersionResource.nodes.path(name: key.name, subresource: subresource) }
        return resource(key.kind)?.path(namespace: key.kind.isNamespaced ? key.namespace : nil, name: key.name, subresource: subresource)
    }

    /// What error messages name instead of a file: `Workload team-a/llama`.
    public static func display(_ kind: Kind, _ v: Value) -> String {
        let m = v["metadata"]
        let name = m?["name"]?.stringValue ?? "?"
        if let ns = m?["namespace"]?.stringValue, !ns.isEmpty { return "\(kind.rawValue) \(ns)/\(name)" }
        return "\(kind.rawValue) \(name)"
    }

    /// Metadata the API server owns.
    public struct ServerMeta: Sendable, Equatable {
        public var uid = ""
        public var resourceVersion = ""
        public var generation: Int64 = 1
        public var creation = Timestamp(seconds: 0)
        public var deleting = false
        public var finalizers: [String] = []
        public init() {}
        public init(_ v: Value) {
            let m = v["metadata"]
            uid = m?["uid"]?.stringValue ?? ""
            resourceVersion = m?["resourceVersion"]?.stringValue ?? ""
            generation = max(1, m?["generation"]?.intValue ?? 1)
            creation = m?["creationTimestamp"]?.stringValue.flatMap { Timestamp(rfc3339: $0) } ?? Timestamp(seconds: 0)
            deleting = m?["deletionTimestamp"].map { $0 != .null } ?? false
            finalizers = m?["finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
    }

    public enum Decoded: Sendable {
        case object(ManifestObject, warnings: [FieldError])
        case rejected([FieldError])
    }

    /// A gantry.dev object from the API. In kube mode a Workload needs `spec.image`.
    public static func decode(_ v: Value, kind: Kind, fieldValidation: FieldValidation) -> Decoded {
        let file = display(kind, v)
        var decoder = ManifestDecoder(file: file, fieldValidation: fieldValidation)
        switch decoder.decode(SourceNode(value: v), index: 0) {
        case .rejected(let errors): return .rejected(errors)
        case .object(var obj, let warnings):
            guard obj.spec.kind == kind else {
                return .rejected([FieldError(file: file, line: 0, path: "kind", message: "expected \(kind.rawValue), got \(obj.spec.kind.rawValue)")])
            }
            let sm = ServerMeta(v)
            obj.meta.uid = sm.uid.isEmpty ? "kube-\(obj.key.description)" : sm.uid
            obj.meta.generation = sm.generation
            obj.meta.creationTimestamp = sm.creation
            obj.source = SourceRef(file: file, line: 0, index: 0)
            if let w = obj.spec.workload, w.image.isEmpty {
                obj.invalid.append(FieldError(file: file, line: 0, path: "spec.image", message: "required in kube mode: the container image the replicas' Pods run"))
            }
            return .object(obj, warnings: warnings)
        }
    }

    /// A core Node as a Gantry node: GPUs from allocatable `nvidia.com/gpu` / `amd.com/gpu`,
    /// cpu and memory from allocatable, gpuType from `nvidia.com/gpu.product`, the pool from
    /// `gantry.dev/resource-pool`; unschedulable when cordoned, tainted NoSchedule/NoExecute,
    /// or not Ready.
    public static func node(_ v: Value) -> ManifestObject? {
        guard let name = v["metadata"]?["name"]?.stringValue, !name.isEmpty else { return nil }
        let labels = stringMap(v["metadata"]?["labels"])
        var spec = NodeSpec()
        let alloc = v["status"]?["allocatable"] ?? v["status"]?["capacity"]
        func quantity(_ k: String) -> Quantity? {
            guard let raw = alloc?[k] else { return nil }
            let text: String
            switch raw {
            case .string(let s): text = s
            case .int(let i): text = String(i)
            default: return nil
            }
            return try? Quantity.parse(text)
        }
        if let g = quantity("nvidia.com/gpu"), g.milli > 0 {
            spec.gpuVendor = .nvidia; spec.capacity["gpu"] = Quantity(milli: g.milli - g.milli % 1000)
        } else if let g = quantity("amd.com/gpu"), g.milli > 0 {
            spec.gpuVendor = .amd; spec.capacity["gpu"] = Quantity(milli: g.milli - g.milli % 1000)
        } else {
            spec.capacity["gpu"] = .zero
        }
        if let c = quantity("cpu") { spec.capacity["cpu"] = c }
        if let m = quantity("memory") { spec.capacity["memory"] = m }
        if let product = labels[gpuProductLabel], !product.isEmpty {
            spec.gpuType = LocalNode.gpuType(fromName: product.replacingOccurrences(of: "-", with: " "))
        }
        spec.resourcePool = labels[labelPool].flatMap { $0.isEmpty ? nil : $0 }
        var unschedulable = v["spec"]?["unschedulable"]?.boolValue ?? false
        for t in v["spec"]?["taints"]?.arrayValue ?? [] {
            let effect = t["effect"]?.stringValue ?? ""
            // The node.kubernetes.io/* taints mirror the node's conditions and spec.unschedulable,
            // which are read directly (a cluster without a node lifecycle controller leaves
            // not-ready on every new Node, even once it reports Ready).
            if (t["key"]?.stringValue ?? "").hasPrefix("node.kubernetes.io/") { continue }
            if effect == "NoSchedule" || effect == "NoExecute" { unschedulable = true }
        }
        let ready = (v["status"]?["conditions"]?.arrayValue ?? []).first { $0["type"]?.stringValue == "Ready" }
        if ready?["status"]?.stringValue != "True" { unschedulable = true }
        spec.unschedulable = unschedulable
        var meta = ObjectMeta(name: name)
        meta.labels = labels
        let sm = ServerMeta(v)
        meta.uid = sm.uid.isEmpty ? "kube-node-\(name)" : sm.uid
        meta.creationTimestamp = sm.creation
        // A Node's generation does not follow its allocatable or conditions: count changes here.
        meta.generation = 1
        var obj = ManifestObject(meta: meta, spec: .node(spec), source: SourceRef(file: "Node \(name)", line: 0, index: 0))
        if !ManifestDecoder.isDNS1123Label(name) && name.count > 253 {
            obj.invalid.append(FieldError(file: "Node \(name)", line: 0, path: "metadata.name", message: "name too long"))
        }
        return obj
    }

    public static func stringMap(_ v: Value?) -> [String: String] {
        var out: [String: String] = [:]
        for m in v?.members ?? [] { if let s = m.value.stringValue { out[m.key] = s } }
        return out
    }

    /// A JSON merge patch (RFC 7386) that turns `old` into `new`: changed keys set, removed
    /// keys null, lists replaced whole.
    public static func mergePatch(from old: Value?, to new: Value) -> Value? {
        guard case .object(let nm)? = Optional(new), case .object(let om)? = old else { return old == new ? nil : new }
        var out: [Value.Member] = []
        var oldByKey: [String: Value] = [:]
        for m in om { oldByKey[m.key] = m.value }
        var seen = Set<String>()
        for m in nm {
            seen.insert(m.key)
            if let o = oldByKey[m.key] {
                if o == m.value { continue }
                if case .object = o, case .object = m.value {
                    if let p = mergePatch(from: o, to: m.value) { out.append(Value.Member(m.key, p)) }
                } else {
                    out.append(Value.Member(m.key, m.value))
                }
            } else if m.value != .null {
                out.append(Value.Member(m.key, m.value))
            }
        }
        for m in om where !seen.contains(m.key) && m.value != .null { out.append(Value.Member(m.key, .null)) }
        return out.isEmpty ? nil : .object(out)
    }
}
