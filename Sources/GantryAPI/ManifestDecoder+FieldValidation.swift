/// What the decoder does with a field it does not know, as kubectl's field validation:
/// `strict` makes the object invalid (an error naming the file, line and field), `warn`
/// applies the object without the field and reports a warning, `ignore` drops it silently.
/// Fields known from the seed APIs' request shapes get a message naming the Gantry field
/// to use instead; near misses get a did-you-mean.
public enum FieldValidation: String, Sendable, CaseIterable {
    case strict = "Strict", warn = "Warn", ignore = "Ignore"

    /// Parses a flag value, ignoring case (`Strict`, `strict`, `STRICT`).
    public init?(flag: String) {
        guard let v = FieldValidation.allCases.first(where: { $0.rawValue.lowercased() == flag.lowercased() }) else { return nil }
        self = v
    }
}

extension ManifestDecoder {
    /// The level of a manifest a key was found at: what it is checked against.
    enum FieldLevel {
        case top, metadata, queueSpec, workloadSpec, nodeSpec, poolSpec
        /// `spec.resources` of a Workload (resource names plus `gpuType`).
        case workloadResources
        /// deserved, guarantee, capability, capacity.
        case resourceList
        /// An entry of a list-form `spec.env`.
        case envEntry

        var known: [String] {
            switch self {
            case .top: return ["apiVersion", "kind", "metadata", "spec", "status"]
            case .metadata: return ["name", "namespace", "labels", "annotations"]
            case .queueSpec: return ["parent", "description", "resourcePool", "deserved", "guarantee", "capability", "reclaimable",
                                     "disableOversell", "queueingStrategy", "state"]
            case .workloadSpec: return ["displayName", "description", "type", "queue", "priority", "image", "command", "entryPoint", "args",
                                        "env", "replicas", "resources", "specifiedNodes", "timeout", "maxRetry", "ttlSecondsAfterFinished", "suspend"]
            case .nodeSpec: return ["resourcePool", "capacity", "gpuType", "gpuVendor", "unschedulable"]
            case .poolSpec: return ["description"]
            case .workloadResources: return ManifestDecoder.standardResources + ["gpuType"]
            case .resourceList: return ManifestDecoder.standardResources
            case .envEntry: return ["name", "value"]
            }
        }

        static func spec(of kind: Kind) -> FieldLevel {
            switch kind {
            case .queue: return .queueSpec
            case .workload: return .workloadSpec
            case .node: return .nodeSpec
            case .resourcePool: return .poolSpec
            }
        }
    }

    /// Resource names without a domain prefix that Gantry accepts (Kubernetes' standard
    /// names plus `gpu`); any other name needs a prefix (`example.com/fpga`).
    static let standardResources = ["gpu", "cpu", "memory", "ephemeral-storage", "storage", "pods"]

    static func isKnownResourceName(_ k: String) -> Bool {
        k.utf8.contains(UInt8(ascii: "/")) || standardResources.contains(k) || k.hasPrefix("hugepages-")
    }

    /// Reports an unknown field at `path` (by the field validation mode). The message names
    /// the Gantry field to use for shapes pasted from the seed APIs, else the closest known
    /// field of that level.
    mutating func unknown(_ key: String, _ parent: String, _ node: SourceNode, _ level: FieldLevel, kind: Kind? = nil) {
        guard fieldValidation != .ignore else { return }
        var message = "unknown field \"\(key.prefix(60))\""
        if let hint = ManifestDecoder.seedHint(key, level, kind: kind) {
            message += "; " + hint
        } else if let near = ManifestDecoder.nearest(key, among: level.known) {
            message += "; did you mean \"\(near)\"?"
        } else if level == .top, let kind, let near = ManifestDecoder.nearest(key, among: FieldLevel.spec(of: kind).known) {
            message += "; did you mean spec.\(near)? (spec fields go under spec)"
        } else if level == .workloadResources || level == .resourceList {
            message += "; a resource is gpu, cpu, memory, ephemeral-storage, pods, hugepages-SIZE, or an extended resource with a domain prefix such as example.com/\(key.prefix(40))"
        }
        let error = FieldError(file: file, line: node.line, path: parent.isEmpty ? key : parent + "." + key, message: message)
        if fieldValidation == .strict { errors.append(error) } else { warnings.append(error) }
    }

    /// Fields of the seed APIs' request shapes (000: a GPU platform's workload, 003: a
    /// cloud training job and queue, 004: a job scheduler's job) and what to write instead.
    static func seedHint(_ key: String, _ level: FieldLevel, kind: Kind?) -> String? {
        switch level {
        case .top, .workloadSpec, .queueSpec, .nodeSpec, .poolSpec:
            switch key {
            case "name", "namespace", "labels", "annotations":
                return level == .top ? "use metadata.\(key)" : "use metadata.\(key), not spec.\(key)"
            default: break
            }
            guard level == .workloadSpec || (level == .top && kind == .workload) || (level == .queueSpec && key == "parentQueue") else { return nil }
            switch key {
            case "resource":
                return "did you mean \"resources\"? spec.resources is a map per replica such as {gpu: 8, cpu: \"32\", memory: 256Gi}; the replica count goes in spec.replicas"
            case "groupVersionKind":
                return "use apiVersion: \(gantryAPIVersion) and kind: Workload; the workload's own kind (PyTorchJob, Deployment, ...) goes in spec.type"
            case "envs":
                return "use spec.env, a map {NAME: value} (a list of {name, value} is accepted too)"
            case "flavour", "flavor":
                return "use spec.resources, a map per replica such as {gpu: 8, cpu: \"32\", memory: 256Gi} (a flavour's mem is memory; scalarResources such as nvidia.com/gpu: 8 become gpu: 8), and spec.resources.gpuType to ask for a GPU model"
            case "members":
                return "a Gantry workload is one gang of identical replicas: use spec.replicas for the total count (rank 0 is the master) and spec.type (PyTorchJob, MPIJob) for the framework"
            case "schedulingPolicy":
                return "use spec.queue and spec.priority"
            case "framework", "jobFramework":
                return "use spec.type (PyTorchJob, MPIJob, Job, Deployment, StatefulSet, Authoring)"
            case "jobSpec":
                return "its fields (command, image, replicas, resources, env) go directly under spec"
            case "workspaceId":
                return "Gantry has no workspaces; use metadata.namespace"
            case "parentQueue":
                return "use spec.parent"
            default: return nil
            }
        case .workloadResources, .resourceList:
            return key == "mem" ? "use memory" : nil
        case .metadata, .envEntry:
            return nil
        }
    }

    /// The known field equal to `key` ignoring case, else the closest within a small edit
    /// distance (1 for keys under 6 characters, else 2); nil when none is that close or `key`
    /// is empty.
    static func nearest(_ key: String, among known: [String]) -> String? {
        guard !key.isEmpty else { return nil }
        let lower = key.lowercased()
        if let same = known.first(where: { $0.lowercased() == lower }) { return same }
        let limit = key.count < 6 ? 1 : 2
        let a = Array(lower.unicodeScalars)
        var best: (name: String, distance: Int)?
        for k in known {
            let b = Array(k.lowercased().unicodeScalars)
            guard abs(a.count - b.count) <= limit else { continue }
            let d = editDistance(a, b)
            if d <= limit && d < (best?.distance ?? Int.max) { best = (k, d) }
        }
        return best?.name
    }

    /// Levenshtein distance (insertions, deletions, substitutions).
    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    /// A resource map written as a list of `{name, quantity}` (as seed 003 has it): an error
    /// that shows the map to write instead.
    mutating func resourceListGiven(_ node: SourceNode, _ path: String) {
        guard case .sequence(let items) = node.content else { return }
        var pairs: [String] = []
        for item in items.prefix(8) {
            guard case .mapping(let entries) = item.content else { continue }
            var name: String?, quantity: String?
            for e in entries {
                guard case .scalar(let k, _) = e.key.content, case .scalar(let v, _) = e.value.content else { continue }
                if k == "name" { name = String(v.prefix(60)) } else if k == "quantity" || k == "value" { quantity = String(v.prefix(20)) }
            }
            if let name, let quantity { pairs.append("\(name): \(quantity)") }
        }
        var message = "expected a map such as {gpu: 8, cpu: \"32\", memory: 256Gi}, got a list; write each {name, quantity} entry as NAME: QUANTITY"
        if !pairs.isEmpty { message += ", here \(path.split(separator: ".").last ?? ""): {\(pairs.joined(separator: ", "))\(items.count > 8 ? ", ..." : "")}" }
        fail(node, path, message)
    }
}
