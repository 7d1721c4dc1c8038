import GantryAPI
import YAMLCodec

// OWNER: query helper.

/// Create bodies: JSON or YAML; Gantry's shape (apiVersion/kind/metadata/spec) or seed 000's
/// request shape (translated). `namespace` is the path's (a body naming another: 400).
/// Errors are 400 naming the field.
///
/// Gantry's shape: a missing `apiVersion` or `kind` is taken from the route; another kind,
/// or a `metadata.namespace` other than the path's, is 400. The document is decoded like a
/// manifest with strict field validation (file "request body"); metadata.uid, generation,
/// creationTimestamp and status in the body are ignored (the backend assigns them).
///
/// Seed 000's shape (no apiVersion/kind/metadata/spec; workloads only): name (or
/// workloadId; else displayName made into a DNS label), displayName, description,
/// workspaceId/workspace/queue -> spec.queue, groupVersionKind.kind/type/kind -> spec.type,
/// image, entryPoint (base64), command, args, resource{cpu,gpu,memory,replica,gpuType,...}
/// or top-level cpu/gpu/gpus/memory/gpuType -> spec.resources, replica/replicas/instances
/// -> spec.replicas, priority 0-2 (0 normal, 1 high, 2 highest) or a name, env/envs (map
/// or list of {name,value}), timeout, maxRetry, ttlSecondsAfterFinished, specifiedNodes
/// (replicas then follow their count), suspend, labels/customerLabels, annotations,
/// isSupervised/isTolerateAll (false only). Anything else: 400 naming the field. Decoder
/// errors name the body's field (`resource.cpu`), not the translated one.
///
/// The annotations `gantry.dev/submitter` and `gantry.dev/run-as` are left as the body has
/// them: the API layer overwrites the submitter and decides who may set run-as.
public enum CreateRequest {
    public static func decode(_ body: [UInt8], kind: Kind, namespace: String) throws(APIError) -> ManifestObject {
        let root = try RequestBody.parse(body)
        guard let members = root.members else { throw APIError.badRequest("the body must be an object (a mapping)", field: nil) }
        let keys = Set(members.map(\.key))
        if keys.contains("apiVersion") || keys.contains("metadata") || keys.contains("spec") {
            return try gantry(members, kind: kind, namespace: namespace)
        }
        guard kind == .workload else {
            throw APIError.badRequest("a \(kind.rawValue) body needs Gantry's shape: apiVersion, kind, metadata, spec", field: "apiVersion")
        }
        let (v, paths) = try SeedWorkloadRequest.translate(members, namespace: namespace)
        return try RequestBody.decodeManifest(v, kind: kind, paths: paths)
    }

    static func gantry(_ members: [Value.Member], kind: Kind, namespace: String) throws(APIError) -> ManifestObject {
        var out: [Value.Member] = []
        var sawVersion = false, sawKind = false, sawMeta = false
        for m in members {
            switch m.key {
            case "apiVersion": sawVersion = true; out.append(m)
            case "kind":
                sawKind = true
                guard m.value.stringValue == kind.rawValue else {
                    throw APIError.badRequest("kind is \(JSON.encode(m.value).prefix(40)) but this route creates \(kind.rawValue) objects", field: "kind")
                }
                out.append(m)
            case "metadata":
                sawMeta = true
                guard var meta = m.value.members else { throw APIError.badRequest("metadata must be an object", field: "metadata") }
                if kind.isNamespaced {
                    if let i = meta.firstIndex(where: { $0.key == "namespace" }) {
                        guard meta[i].value.stringValue == namespace else {
                            throw APIError.badRequest("metadata.namespace is \(JSON.encode(meta[i].value).prefix(80)) but the path's namespace is \"\(namespace)\"", field: "metadata.namespace")
                        }
                    } else { meta.append(.init("namespace", .string(namespace))) }
                }
                out.append(.init("metadata", .object(meta)))
            case "status": continue
            default: out.append(m)
            }
        }
        if !sawVersion { out.insert(.init("apiVersion", .string(gantryAPIVersion)), at: 0) }
        if !sawKind { out.insert(.init("kind", .string(kind.rawValue)), at: 1) }
        if !sawMeta { throw APIError.badRequest("missing; metadata.name is required", field: "metadata") }
        return try RequestBody.decodeManifest(.object(out), kind: kind, paths: [:])
    }
}

/// JSON merge patches (RFC 7386) of an object. Workloads: metadata.labels, metadata.annotations,
/// spec.priority, spec.replicas, spec.resources, spec.image, spec.description, spec.timeout,
/// spec.env (anything else: 400 naming it). Queues: metadata.labels/annotations and any spec field.
/// The result is decoded and validated like a manifest.
///
/// Also accepted: `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` equal to the
/// object's (a GET's output sent back), `metadata.uid/generation/creationTimestamp/
/// resourceVersion` (ignored); a different name, namespace or kind: 400. For workloads, seed
/// 000's PATCH shape (top-level priority, replica(s), cpu, gpu, memory, image, description,
/// timeout, env, labels, annotations) is translated. The result keeps the object's uid,
/// generation, creation time and source; annotations are patched as given (the API layer
/// decides about gantry.dev/submitter and gantry.dev/run-as).
public enum ObjectPatch {
    public static let workloadSpecFields = ["priority", "replicas", "resources", "image", "description", "timeout", "env"]

    public static func apply(_ patch: [UInt8], to object: ManifestObject) throws(APIError) -> ManifestObject {
        let kind = object.spec.kind
        guard kind == .workload || kind == .queue else {
            throw APIError.badRequest("\(kind.rawValue) objects cannot be patched through the API", field: "kind")
        }
        let v = try RequestBody.parse(patch)
        let cleaned = try validate(v, for: object)
        var result = try RequestBody.decodeManifest(mergePatch(base(object), cleaned), kind: kind, paths: [:])
        result.meta.uid = object.meta.uid
        result.meta.generation = object.meta.generation
        result.meta.creationTimestamp = object.meta.creationTimestamp
        result.source = object.source
        return result
    }

    /// The object's patchable form: apiVersion, kind, metadata (name, namespace, labels, annotations), spec.
    static func base(_ o: ManifestObject) -> Value {
        var meta = ObjectBuilder()
        meta.set("name", .string(o.meta.name))
        if o.spec.kind.isNamespaced { meta.set("namespace", .string(o.meta.namespace)) }
        if !o.meta.labels.isEmpty { meta.set("labels", .stringMap(o.meta.labels)) }
        if !o.meta.annotations.isEmpty { meta.set("annotations", .stringMap(o.meta.annotations)) }
        return .object([.init("apiVersion", .string(gantryAPIVersion)), .init("kind", .string(o.spec.kind.rawValue)),
                        .init("metadata", meta.value), .init("spec", o.spec.toValue())])
    }

    /// Checks a patch against what may change; returns it without the no-op members.
    static func validate(_ v: Value, for o: ManifestObject) throws(APIError) -> Value {
        guard var members = v.members else { throw APIError.badRequest("a merge patch must be an object", field: nil) }
        let kind = o.spec.kind
        let shaped = members.contains { ["apiVersion", "kind", "metadata", "spec", "status"].contains($0.key) }
        if kind == .workload, !shaped, !members.isEmpty { members = try seedPatch(members) }
        var out: [Value.Member] = []
        for m in members {
            switch m.key {
            case "apiVersion":
                guard m.value.stringValue == gantryAPIVersion else { throw APIError.badRequest("apiVersion cannot be changed", field: "apiVersion") }
            case "kind":
                guard m.value.stringValue == kind.rawValue else { throw APIError.badRequest("kind cannot be changed", field: "kind") }
            case "status":
                throw APIError.badRequest("status is written by Gantry and cannot be patched", field: "status")
            case "metadata":
                if m.value == .null { throw APIError.badRequest("metadata cannot be removed", field: "metadata") }
                guard let meta = m.value.members else { throw APIError.badRequest("metadata must be an object", field: "metadata") }
                var keep: [Value.Member] = []
                for e in meta {
                    switch e.key {
                    case "name":
                        guard e.value.stringValue == o.meta.name else { throw APIError.badRequest("metadata.name cannot be changed (clone the object instead)", field: "metadata.name") }
                    case "namespace":
                        guard !kind.isNamespaced || e.value.stringValue == o.meta.namespace else {
                            throw APIError.badRequest("metadata.namespace cannot be changed (clone the object instead)", field: "metadata.namespace")
                        }
                    case "uid", "generation", "creationTimestamp", "resourceVersion": continue
                    case "labels", "annotations": keep.append(e)
                    default: throw APIError.badRequest("metadata.\(e.key.prefix(60)) cannot be patched; patchable: labels, annotations", field: "metadata.\(e.key.prefix(60))")
                    }
                }
                if !keep.isEmpty { out.append(.init("metadata", .object(keep))) }
            case "spec":
                guard let spec = m.value.members else { throw APIError.badRequest("spec must be an object", field: "spec") }
                if kind == .workload {
                    for e in spec where !workloadSpecFields.contains(e.key) {
                        throw APIError.badRequest("spec.\(e.key.prefix(60)) cannot be patched; patchable: \(workloadSpecFields.map { "spec." + $0 }.joined(separator: ", ")), metadata.labels, metadata.annotations", field: "spec.\(e.key.prefix(60))")
                    }
                }
                out.append(m)
            default:
                throw APIError.badRequest("\(m.key.prefix(60)) cannot be patched; a patch has metadata (labels, annotations) and spec", field: String(m.key.prefix(60)))
            }
        }
        return .object(out)
    }

    /// Seed 000's PATCH body, as a Gantry merge patch.
    static func seedPatch(_ members: [Value.Member]) throws(APIError) -> [Value.Member] {
        var spec: [Value.Member] = [], resources: [Value.Member] = [], meta: [Value.Member] = []
        for m in members {
            switch m.key {
            case "priority": spec.append(.init("priority", try SeedWorkloadRequest.priority(m.value, field: "priority")))
            case "replica", "replicas", "instances": spec.append(.init("replicas", m.value))
            case "cpu", "gpu", "memory": resources.append(m)
            case "gpus": resources.append(.init("gpu", m.value))
            case "image", "description", "timeout", "env": spec.append(m)
            case "envs": spec.append(.init("env", m.value))
            case "labels", "annotations": meta.append(m)
            default:
                throw APIError.badRequest("\(m.key.prefix(60)) cannot be patched; patchable: priority, replica, cpu, gpu, memory, image, description, timeout, env, labels, annotations (or Gantry's metadata/spec shape)", field: String(m.key.prefix(60)))
            }
        }
        if !resources.isEmpty { spec.append(.init("resources", .object(resources))) }
        var out: [Value.Member] = []
        if !meta.isEmpty { out.append(.init("metadata", .object(meta))) }
        if !spec.isEmpty { out.append(.init("spec", .object(spec))) }
        return out
    }

    /// RFC 7386: objects merge member by member, null removes, anything else replaces.
    public static func mergePatch(_ target: Value, _ patch: Value) -> Value {
        guard case .object(let pm) = patch else { return patch }
        var t = target.members ?? []
        for p in pm {
            let i = t.firstIndex { $0.key == p.key }
            if p.value == .null {
                if let i { t.remove(at: i) }
            } else if let i {
                t[i].value = mergePatch(t[i].value, p.value)
            } else {
                t.append(.init(p.key, mergePatch(.null, p.value)))
            }
        }
        return .object(t)
    }
}

/// :clone bodies: {"name": "new-name", "namespace": "optional", "overrides": {merge patch as above}}
/// (name missing: `<name>-clone-<n>` chosen by the caller with `existing`).
///
/// The copy loses uid, generation, creation time and the annotations gantry.dev/submitter
/// and gantry.dev/run-as (the API layer sets them for the cloning user); its source is
/// "request body". Without a name, the first `<name>-clone-<n>` (n = 1, 2, ...; the base cut
/// so the name stays 63 characters) for which `existing` is false; none free in 1000: 409.
/// Only workloads can be cloned. An empty body is `{}`.
public enum CloneRequest {
    public static func apply(_ body: [UInt8], to object: ManifestObject, existing: (ObjectKey) -> Bool) throws(APIError) -> ManifestObject {
        guard object.spec.kind == .workload else { throw APIError.badRequest("only workloads can be cloned", field: "kind") }
        let v: Value = body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) ? .object([]) : try RequestBody.parse(body)
        guard let members = v.members else { throw APIError.badRequest("a clone body must be an object: {\"name\", \"namespace\", \"overrides\"}", field: nil) }
        var name: String?, namespace = object.meta.namespace, overrides: Value?
        for m in members {
            switch m.key {
            case "name":
                guard let s = m.value.stringValue else { if m.value == .null { continue }; throw APIError.badRequest("name must be a string", field: "name") }
                if !s.isEmpty { name = s }
            case "namespace":
                guard let s = m.value.stringValue else { if m.value == .null { continue }; throw APIError.badRequest("namespace must be a string", field: "namespace") }
                if !s.isEmpty { namespace = s }
            case "overrides":
                if m.value != .null { overrides = m.value }
            default:
                throw APIError.badRequest("unknown field \"\(m.key.prefix(60))\"; a clone body has name, namespace, overrides", field: String(m.key.prefix(60)))
            }
        }
        if let name, !ManifestDecoder.isDNS1123Label(name) {
            throw APIError.badRequest("invalid name \"\(name.prefix(80))\": must be \(ManifestDecoder.dns1123Label)", field: "name")
        }
        guard ManifestDecoder.isDNS1123Label(namespace) else {
            throw APIError.badRequest("invalid namespace \"\(namespace.prefix(80))\": must be \(ManifestDecoder.dns1123Label)", field: "namespace")
        }
        let newName: String
        if let name { newName = name } else {
            guard let n = freeName(object.meta.name, namespace: namespace, existing: existing) else {
                throw APIError.conflict("no free name \(object.meta.name)-clone-N in namespace \(namespace); give a name")
            }
            newName = n
        }
        var copy = object
        copy.meta = ObjectMeta(name: newName, namespace: namespace)
        copy.meta.labels = object.meta.labels
        copy.meta.annotations = object.meta.annotations
        copy.meta.annotations[APIObject.submitterAnnotation] = nil
        copy.meta.annotations[APIObject.runAsAnnotation] = nil
        var base = ObjectPatch.base(copy)
        if let overrides {
            guard overrides.members != nil else { throw APIError.badRequest("overrides must be an object (a merge patch)", field: "overrides") }
            let cleaned: Value
            do { cleaned = try ObjectPatch.validate(overrides, for: copy) } catch {
                var e = error
                e.field = e.field.map { "overrides." + $0 } ?? "overrides"
                throw e
            }
            base = ObjectPatch.mergePatch(base, cleaned)
        }
        return try RequestBody.decodeManifest(base, kind: .workload, paths: [:])
    }

    static func freeName(_ base: String, namespace: String, existing: (ObjectKey) -> Bool) -> String? {
        for n in 1...1000 {
            let suffix = "-clone-\(n)"
            var stem = String(base.prefix(63 - suffix.count))
            while stem.hasSuffix("-") { stem.removeLast() }
            let candidate = stem + suffix
            if !existing(ObjectKey(.workload, namespace: namespace, name: candidate)) { return candidate }
        }
        return nil
    }
}

/// Parsing request bodies and decoding manifests from them.
enum RequestBody {
    static let file = "request body"

    /// JSON (a body starting with `{` or `[`) or one YAML document.
    static func parse(_ body: [UInt8]) throws(APIError) -> Value {
        var i = 0
        if body.count >= 3, body[0] == 0xEF, body[1] == 0xBB, body[2] == 0xBF { i = 3 }
        while i < body.count, body[i] == 0x20 || body[i] == 0x0A || body[i] == 0x0D || body[i] == 0x09 { i += 1 }
        guard i < body.count else { throw APIError.badRequest("the body is empty; send a JSON or YAML object", field: nil) }
        if body[i] == UInt8(ascii: "{") || body[i] == UInt8(ascii: "[") {
            var bytes = Array(body[i...])
            do { return try JSON.parse(bytes: &bytes) } catch {
                throw APIError.badRequest("the body is not valid JSON: \(error.description)", field: nil)
            }
        }
        let docs: [YAMLDocument]
        do { docs = try YAMLParser.parse(body, limits: YAMLLimits(maxNodes: 100_000, maxDepth: 64)) } catch {
            throw APIError.badRequest("the body is not valid YAML: \(error.description)", field: nil)
        }
        let roots = docs.compactMap(\.root)
        guard roots.count == 1, let root = roots.first else {
            throw APIError.badRequest(roots.isEmpty ? "the body is empty" : "the body has \(roots.count) YAML documents; send one", field: nil)
        }
        return root.toValue()
    }

    /// Decodes a manifest-shaped value strictly; errors are 400 naming the field (translated
    /// by `paths`, longest prefix first, for bodies that were translated from another shape).
    static func decodeManifest(_ v: Value, kind: Kind, paths: [String: String]) throws(APIError) -> ManifestObject {
        var decoder = ManifestDecoder(file: file, fieldValidation: .strict)
        let errors: [FieldError]
        switch decoder.decode(SourceNode(value: v, line: 0), index: 0) {
        case .rejected(let e): errors = e
        case .object(var o, _):
            if o.invalid.isEmpty {
                guard o.spec.kind == kind else { throw APIError.badRequest("kind is \(o.spec.kind.rawValue) but this route takes \(kind.rawValue)", field: "kind") }
                o.source = SourceRef(file: file, line: 1, index: 0)
                return o
            }
            errors = o.invalid
        }
        guard let first = errors.first else { throw APIError.badRequest("the body is not a valid \(kind.rawValue)", field: nil) }
        func map(_ p: String) -> String {
            var best: (String, String)?
            for (from, to) in paths where p == from || p.hasPrefix(from + ".") {
                if from.count > (best?.0.count ?? -1) { best = (from, to) }
            }
            guard let (from, to) = best else { return p }
            let rest = p.dropFirst(from.count)
            return to.isEmpty ? String(rest.drop { $0 == "." }) : to + rest
        }
        let message = errors.prefix(10).map { e in e.path.isEmpty ? e.message : "\(map(e.path)): \(e.message)" }.joined(separator: "; ")
        throw APIError.badRequest(message + (errors.count > 10 ? "; and \(errors.count - 10) more" : ""), field: first.path.isEmpty ? nil : map(first.path))
    }
}
