import GantryAPI

/// Seed 000's create request (a GPU platform's workload body) translated into a Gantry
/// Workload manifest value, with a map from the manifest's field paths back to the body's
/// (so decoder errors name what the user wrote). See `CreateRequest` for the fields.
enum SeedWorkloadRequest {
    static func translate(_ members: [Value.Member], namespace: String) throws(APIError) -> (Value, [String: String]) {
        var name: String?, displayName: String?, queue: String?, workspace: String?
        var spec: [Value.Member] = [], resources: [Value.Member] = []
        var labels: Value?, annotations: Value?
        // Seed fields sit at the top of the body: spec.X is X unless mapped otherwise.
        var paths: [String: String] = ["spec": ""]
        var replicas: (Value, String)?
        var specifiedNodes = false

        func string(_ v: Value, _ field: String) throws(APIError) -> String {
            guard let s = v.stringValue else { throw APIError.badRequest("\(field): expected a string, got \(JSON.encode(v).prefix(40))", field: field) }
            return s
        }
        func put(_ key: String, _ v: Value, from field: String) {
            spec.removeAll { $0.key == key }
            spec.append(.init(key, v)); paths["spec." + key] = field
        }
        func resource(_ key: String, _ v: Value, from field: String) {
            resources.removeAll { $0.key == key }
            resources.append(.init(key, v)); paths["spec.resources." + key] = field
        }
        func type(_ v: Value, _ field: String) throws(APIError) {
            let s = try string(v, field)
            guard let t = WorkloadType.allCases.first(where: { $0.rawValue.lowercased() == s.lowercased() }) else {
                throw APIError.badRequest("\(field): unknown workload type \"\(s.prefix(40))\"; expected \(WorkloadType.allCases.map(\.rawValue).joined(separator: ", "))", field: field)
            }
            put("type", .string(t.rawValue), from: field)
        }

        for m in members {
            let k = m.key, v = m.value
            if v == .null { continue }
            switch k {
            case "name", "workloadId": name = try string(v, k)
            case "displayName": displayName = try string(v, k); put("displayName", v, from: k)
            case "description": put("description", v, from: k)
            case "queue": queue = try string(v, k); paths["spec.queue"] = k
            case "workspaceId", "workspace": workspace = try string(v, k); if queue == nil { paths["spec.queue"] = k }
            case "namespace":
                guard try string(v, k) == namespace else {
                    throw APIError.badRequest("namespace is \(JSON.encode(v).prefix(80)) but the path's namespace is \"\(namespace)\"", field: k)
                }
            case "groupVersionKind":
                guard let g = v.members else { throw APIError.badRequest("groupVersionKind must be an object {kind, version}", field: k) }
                for e in g {
                    switch e.key {
                    case "kind": try type(e.value, "groupVersionKind.kind")
                    case "version", "group": continue
                    default: throw APIError.badRequest("groupVersionKind.\(e.key.prefix(40)): unknown field; expected kind, version", field: "groupVersionKind.\(e.key.prefix(40))")
                    }
                }
            case "type", "kind": try type(v, k)
            case "image", "entryPoint", "command", "args", "timeout", "maxRetry", "ttlSecondsAfterFinished", "suspend":
                put(k, v, from: k)
            case "specifiedNodes":
                if let a = v.arrayValue, a.isEmpty { continue }
                specifiedNodes = true; put(k, v, from: k)
            case "priority": put("priority", try priority(v, field: k), from: k)
            case "env", "envs": put("env", v, from: k)
            case "replica", "replicas", "instances": replicas = (v, k)
            case "resource", "resources":
                guard let r = v.members else { throw APIError.badRequest("\(k) must be an object such as {\"cpu\": \"32\", \"gpu\": \"8\", \"memory\": \"256Gi\", \"replica\": 1}", field: k) }
                for e in r where e.value != .null {
                    switch e.key {
                    case "replica", "replicas", "instances": replicas = (e.value, "\(k).\(e.key)")
                    case "gpuType", "gpuModel", "gpuProduct": resource("gpuType", e.value, from: "\(k).\(e.key)")
                    case "gpus", "nvidia.com/gpu": resource("gpu", e.value, from: "\(k).\(e.key)")
                    case "mem": resource("memory", e.value, from: "\(k).\(e.key)")
                    default: resource(e.key, e.value, from: "\(k).\(e.key)")
                    }
                }
            case "cpu", "gpu", "memory", "ephemeral-storage": resource(k, v, from: k)
            case "gpus", "gpuCount": resource("gpu", v, from: k)
            case "gpuType", "gpuModel": resource("gpuType", v, from: k)
            case "labels", "customerLabels": labels = v; paths["metadata.labels"] = k
            case "annotations": annotations = v; paths["metadata.annotations"] = k
            case "isSupervised", "isTolerateAll":
                guard v.boolValue == true else { continue }
                throw APIError.badRequest("\(k): Gantry has no such setting; leave it false or out", field: k)
            case "clusterId", "userId", "userName":
                throw APIError.badRequest("\(k): not accepted; Gantry has one cluster per daemon and records the submitter from the token", field: k)
            default:
                throw APIError.badRequest("unknown field \"\(k.prefix(60))\" in a seed-shaped workload body; use Gantry's shape (apiVersion, kind, metadata, spec) for anything else", field: String(k.prefix(60)))
            }
        }
        if let q = queue ?? workspace { put("queue", .string(q), from: paths["spec.queue"] ?? "queue") }
        if let (v, from) = replicas, !specifiedNodes { put("replicas", v, from: from) }
        if !resources.isEmpty { spec.append(.init("resources", .object(resources))); paths["spec.resources"] = members.contains { $0.key == "resources" } ? "resources" : "resource" }

        let finalName: String
        if let name {
            guard ManifestDecoder.isDNS1123Label(name) else {
                throw APIError.badRequest("invalid name \"\(name.prefix(80))\": must be \(ManifestDecoder.dns1123Label)", field: members.contains { $0.key == "name" } ? "name" : "workloadId")
            }
            finalName = name
        } else if let d = displayName, let n = dnsLabel(from: d) {
            finalName = n
        } else {
            throw APIError.badRequest("missing; give name (\(ManifestDecoder.dns1123Label)) or a displayName to make one from", field: "name")
        }
        paths["metadata.name"] = name != nil ? "name" : "displayName"
        var meta: [Value.Member] = [.init("name", .string(finalName)), .init("namespace", .string(namespace))]
        if let labels { meta.append(.init("labels", labels)) }
        if let annotations { meta.append(.init("annotations", annotations)) }
        let v: Value = .object([.init("apiVersion", .string(gantryAPIVersion)), .init("kind", .string(Kind.workload.rawValue)),
                                .init("metadata", .object(meta)), .init("spec", .object(spec))])
        return (v, paths)
    }

    /// Seed 000's priority: 0 (normal), 1 (high), 2 (highest), as a number, a numeric string
    /// or a name (low, normal, high, highest).
    static func priority(_ v: Value, field: String) throws(APIError) -> Value {
        if let i = v.intValue ?? v.stringValue.flatMap({ Int64($0) }) {
            guard (0...2).contains(i) else { throw APIError.badRequest("\(field): \(i) is out of range; expected 0 (normal), 1 (high) or 2 (highest)", field: field) }
            return .int(i)
        }
        if let s = v.stringValue, WorkloadSpec.priorityNames[s.lowercased()] != nil { return .string(s.lowercased()) }
        throw APIError.badRequest("\(field): expected 0 (normal), 1 (high), 2 (highest) or a name (low, normal, high, highest), got \(JSON.encode(v).prefix(40))", field: field)
    }

    /// A display name made into a DNS label: lower-cased, other characters to '-', runs of
    /// '-' collapsed, trimmed, at most 63 characters; nil when nothing is left.
    static func dnsLabel(from s: String) -> String? {
        var out: [UInt8] = []
        for c in s.lowercased().utf8 {
            let ok = (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            if ok { out.append(c) } else if out.last != UInt8(ascii: "-") { out.append(UInt8(ascii: "-")) }
        }
        while out.first == UInt8(ascii: "-") { out.removeFirst() }
        if out.count > 63 { out = Array(out.prefix(63)) }
        while out.last == UInt8(ascii: "-") { out.removeLast() }
        return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
    }
}
