/// Turns one parsed document into a `ManifestObject`, applying defaults and validation.
///
/// Outcomes: `.object` (possibly with `invalid` errors when the identity is sound but the
/// spec is not), or `.rejected` when the document cannot be identified (not a mapping, unknown
/// apiVersion or kind, bad name). Unknown fields are errors, warnings or ignored by
/// `fieldValidation` (see `FieldValidation`); `status` is ignored.
public struct ManifestDecoder {
    public enum Outcome: Sendable {
        case object(ManifestObject, warnings: [FieldError])
        case rejected([FieldError])
    }

    public let file: String
    public var fieldValidation: FieldValidation
    var errors: [FieldError] = []
    var warnings: [FieldError] = []
    /// Labels and resource lists already decoded from this file: an equal one shares their
    /// storage (the documents of one file often repeat them), so each is kept once.
    var internedLabels = Set<[String: String]>()
    var internedResources: [[String]: ResourceList] = [:]

    public init(file: String, fieldValidation: FieldValidation = .strict) { self.file = file; self.fieldValidation = fieldValidation }

    public static let dns1123Label = "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"

    public static func isDNS1123Label(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 63 else { return false }
        func ok(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }
        guard ok(b.first!), ok(b.last!) else { return false }
        return b.allSatisfy { ok($0) || $0 == UInt8(ascii: "-") }
    }

    /// Decodes one document. `index` is its position in the file, `line` the line it starts on.
    public mutating func decode(_ root: SourceNode, index: Int) -> Outcome {
        errors = []; warnings = []
        guard let top = mapping(root, "") else { return .rejected(errors) }
        var apiVersion: String?, kindName: String?, kindLine = root.line
        var metaNode: SourceNode?, specNode: SourceNode?
        var unknownTop: [(String, SourceNode)] = []
        for (key, value) in top {
            switch key {
            case "apiVersion": apiVersion = string(value, "apiVersion")
            case "kind": kindName = string(value, "kind"); kindLine = value.line
            case "metadata": metaNode = value
            case "spec": specNode = value
            case "status": break   // written by Gantry only; ignored on input
            default: unknownTop.append((key, value))
            }
        }
        // Reported once the kind is known: a spec field written at the top gets a hint.
        for (key, value) in unknownTop { unknown(key, "", value, .top, kind: kindName.flatMap(Kind.init(rawValue:))) }
        guard let kindName else { fail(root, "kind", "missing; expected one of Queue, Workload, Node, ResourcePool"); return .rejected(errors) }
        guard let kind = Kind(rawValue: kindName) else {
            errors.append(FieldError(file: file, line: kindLine, path: "kind", message: "unknown kind \"\(kindName)\"; expected one of Queue, Workload, Node, ResourcePool"))
            return .rejected(errors)
        }
        guard let apiVersion else { fail(root, "apiVersion", "missing; expected \"\(gantryAPIVersion)\""); return .rejected(errors) }
        guard apiVersion == gantryAPIVersion else {
            fail(top.first { $0.0 == "apiVersion" }?.1 ?? root, "apiVersion", "unknown apiVersion \"\(apiVersion)\" for kind \(kindName); expected \"\(gantryAPIVersion)\"")
            return .rejected(errors)
        }
        guard let metaNode else { fail(root, "metadata", "missing; metadata.name is required"); return .rejected(errors) }
        guard let meta = decodeMeta(metaNode, kind: kind) else { return .rejected(errors) }
        let source = SourceRef(file: file, line: root.line, index: index)
        let spec: ObjectSpec
        let specRoot = specNode.flatMap { $0.isNull ? nil : $0 }
        switch kind {
        case .queue: spec = .queue(decodeQueue(specRoot))
        case .workload: spec = .workload(decodeWorkload(specRoot))
        case .node: spec = .node(decodeNode(specRoot))
        case .resourcePool: spec = .resourcePool(decodePool(specRoot))
        }
        if specRoot == nil && (kind == .workload) { fail(root, "spec", "missing; a Workload needs at least spec.command (or entryPoint or image)") }
        var obj = ManifestObject(meta: meta, spec: spec, source: source)
        obj.invalid = errors
        return .object(obj, warnings: warnings)
    }

    // MARK: metadata

    mutating func decodeMeta(_ node: SourceNode, kind: Kind) -> ObjectMeta? {
        guard let m = mapping(node, "metadata") else { return nil }
        var name: String?, namespace: String?, nameNode = node
        var labels: [String: String] = [:], annotations: [String: String] = [:]
        for (key, value) in m {
            switch key {
            case "name": name = string(value, "metadata.name"); nameNode = value
            case "namespace": namespace = string(value, "metadata.namespace")
            case "labels": labels = stringMap(value, "metadata.labels", validateKeys: true)
            case "annotations": annotations = stringMap(value, "metadata.annotations", validateKeys: false)
            // Metadata owned by the source (the API server in kube mode): read from the object there, never from a manifest.
            case "uid", "generation", "creationTimestamp", "resourceVersion", "managedFields", "finalizers", "ownerReferences", "generateName",
                 "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink": break
            default: unknown(key, "metadata", value, .metadata)
            }
        }
        guard let name else { fail(node, "metadata.name", "missing; every object needs a name"); return nil }
        guard ManifestDecoder.isDNS1123Label(name) else {
            fail(nameNode, "metadata.name", "invalid name \"\(name.prefix(80))\": must be \(ManifestDecoder.dns1123Label)")
            return nil
        }
        var ns = ""
        if kind.isNamespaced {
            ns = namespace ?? "default"
            if !ManifestDecoder.isDNS1123Label(ns) {
                fail(m.first { $0.0 == "namespace" }?.1 ?? node, "metadata.namespace", "invalid namespace \"\(ns.prefix(80))\": must be \(ManifestDecoder.dns1123Label)")
                return nil
            }
        } else if let namespace, !namespace.isEmpty {
            warn(m.first { $0.0 == "namespace" }!.1, "metadata.namespace", "\(kind.rawValue) is cluster-scoped; namespace \"\(namespace)\" is ignored")
        }
        for (k, v) in labels where v.count > 63 {
            fail(node, "metadata.labels.\(k)", "label value longer than 63 characters")
        }
        var meta = ObjectMeta(name: name, namespace: ns)
        meta.labels = intern(labels); meta.annotations = annotations
        return meta
    }

    // MARK: kinds

    mutating func decodeQueue(_ node: SourceNode?) -> QueueSpec {
        var s = QueueSpec()
        guard let node, let m = mapping(node, "spec") else { return s }
        for (key, v) in m {
            let p = "spec." + key
            switch key {
            case "parent": s.parent = refName(v, p)
            case "description": s.description = string(v, p) ?? ""
            case "resourcePool": s.resourcePool = refName(v, p)
            case "deserved": s.deserved = resources(v, p)
            case "guarantee": s.guarantee = resources(v, p)
            case "capability": s.capability = resources(v, p)
            case "reclaimable": s.reclaimable = bool(v, p) ?? true
            case "disableOversell": s.disableOversell = bool(v, p) ?? false
            case "queueingStrategy": s.queueingStrategy = enumValue(v, p, QueueingStrategy.self) ?? .bestEffortFIFO
            case "state": s.state = enumValue(v, p, QueueState.self) ?? .open
            default: unknown(key, "spec", v, .queueSpec)
            }
        }
        for name in s.guarantee.names where s.guarantee[name] > s.deserved[name] && s.deserved.amounts[name] != nil {
            fail(node, "spec.guarantee.\(name)", "guarantee \(s.guarantee[name]) exceeds deserved \(s.deserved[name])")
        }
        if let cap = s.capability {
            for name in cap.names {
                if s.deserved[name] > cap[name] { fail(node, "spec.deserved.\(name)", "deserved \(s.deserved[name]) exceeds capability \(cap[name])") }
                if s.guarantee[name] > cap[name] { fail(node, "spec.guarantee.\(name)", "guarantee \(s.guarantee[name]) exceeds capability \(cap[name])") }
            }
        }
        return s
    }

    mutating func decodeWorkload(_ node: SourceNode?) -> WorkloadSpec {
        var s = WorkloadSpec()
        guard let node, let m = mapping(node, "spec") else { return s }
        var replicasSet = false, replicasNode = node
        for (key, v) in m {
            let p = "spec." + key
            switch key {
            case "displayName": s.displayName = string(v, p) ?? ""
            case "description": s.description = string(v, p) ?? ""
            case "type", "kind": s.type = enumValue(v, p, WorkloadType.self) ?? .job
            case "queue": s.queue = refName(v, p) ?? "default"
            case "priority":
                if case .scalar(let t, let plain) = v.content, plain, let i = Int(t) {
                    s.priority = i
                } else if case .scalar(let t, _) = v.content, let i = WorkloadSpec.priorityNames[t.lowercased()] {
                    s.priority = i; s.priorityName = t.lowercased()
                } else if !v.isNull {
                    fail(v, p, "expected an integer or one of low, normal, high, highest, got \(v.typeName)")
                }
            case "image": s.image = string(v, p) ?? ""
            case "command":
                // A list form (`[python, train.py]`) is joined into a shell line.
                if case .sequence = v.content { s.command = stringList(v, p).map(shellQuote).joined(separator: " ") } else { s.command = string(v, p) ?? "" }
            case "entryPoint":
                s.entryPoint = string(v, p) ?? ""
                if !s.entryPoint.isEmpty {
                    if let d = Base64.decode(s.entryPoint) {
                        if String(validating: d, as: UTF8.self) == nil { fail(v, p, "base64 decodes to bytes that are not UTF-8 text") }
                    } else { fail(v, p, "not valid base64 (entryPoint is the base64 of a command line; use spec.command for plain text)") }
                }
            case "args": s.args = stringList(v, p, scalarsAsText: true)
            case "env": s.env = envMap(v, p)
            case "replicas": if let r = int(v, p, min: 1, max: 10_000) { s.replicas = r; replicasSet = true; replicasNode = v }
            case "resources":
                (s.resources, s.gpuType) = workloadResources(v, p)
                s.resources = intern(s.resources)
            case "specifiedNodes": s.specifiedNodes = stringList(v, p).filter { n in
                if ManifestDecoder.isDNS1123Label(n) || isNodeName(n) { return true }
                fail(v, p, "invalid node name \"\(n.prefix(80))\""); return false
            }
            case "timeout": s.timeout = int(v, p, min: 0, max: Int(Int32.max)) ?? 0
            case "maxRetry": s.maxRetry = int(v, p, min: 0, max: 1000) ?? 0
            case "ttlSecondsAfterFinished": s.ttlSecondsAfterFinished = int(v, p, min: 0, max: Int(Int32.max))
            case "suspend": s.suspend = bool(v, p) ?? false
            default: unknown(key, "spec", v, .workloadSpec)
            }
        }
        if !s.specifiedNodes.isEmpty {
            if Set(s.specifiedNodes).count != s.specifiedNodes.count { fail(node, "spec.specifiedNodes", "lists a node more than once") }
            if replicasSet && s.replicas != s.specifiedNodes.count {
                fail(replicasNode, "spec.replicas", "is \(s.replicas) but specifiedNodes names \(s.specifiedNodes.count) nodes; with specifiedNodes, replicas must equal their count (or be left out)")
            }
            s.replicas = s.specifiedNodes.count
        }
        if !s.command.isEmpty && !s.entryPoint.isEmpty { fail(node, "spec.entryPoint", "set either command or entryPoint, not both") }
        if s.command.isEmpty && s.entryPoint.isEmpty && s.image.isEmpty { fail(node, "spec.command", "missing; set command (or entryPoint, or image in kube mode)") }
        if s.type == .authoring && s.replicas != 1 { fail(replicasNode, "spec.replicas", "an Authoring workload has exactly 1 replica") }
        return s
    }

    func isNodeName(_ s: String) -> Bool {
        // DNS-1123 subdomain: labels joined by dots, at most 253.
        s.count <= 253 && s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { ManifestDecoder.isDNS1123Label(String($0)) }
    }

    mutating func decodeNode(_ node: SourceNode?) -> NodeSpec {
        var s = NodeSpec()
        guard let node, let m = mapping(node, "spec") else { return s }
        for (key, v) in m {
            let p = "spec." + key
            switch key {
            case "resourcePool": s.resourcePool = refName(v, p)
            case "capacity": s.capacity = resources(v, p)
            case "gpuType": s.gpuType = string(v, p)
            case "gpuVendor": s.gpuVendor = enumValue(v, p, GPUVendor.self, caseInsensitive: true) ?? .nvidia
            case "unschedulable": s.unschedulable = bool(v, p) ?? false
            default: unknown(key, "spec", v, .nodeSpec)
            }
        }
        if s.capacity.gpu > 1024 { fail(node, "spec.capacity.gpu", "at most 1024 GPUs per node") }
        return s
    }

    mutating func decodePool(_ node: SourceNode?) -> ResourcePoolSpec {
        var s = ResourcePoolSpec()
        guard let node, let m = mapping(node, "spec") else { return s }
        for (key, v) in m {
            switch key {
            case "description": s.description = string(v, "spec.description") ?? ""
            default: unknown(key, "spec", v, .poolSpec)
            }
        }
        return s
    }

    // MARK: field helpers

    mutating func fail(_ node: SourceNode, _ path: String, _ message: String) {
        errors.append(FieldError(file: file, line: node.line, path: path, message: message))
    }
    mutating func warn(_ node: SourceNode, _ path: String, _ message: String) {
        warnings.append(FieldError(file: file, line: node.line, path: path, message: message))
    }

    /// Mapping entries with string keys; duplicate keys are errors.
    mutating func mapping(_ node: SourceNode, _ path: String) -> [(String, SourceNode)]? {
        guard case .mapping(let entries) = node.content else {
            fail(node, path.isEmpty ? "(document)" : path, "expected a mapping, got \(node.typeName)")
            return nil
        }
        var out: [(String, SourceNode)] = []
        out.reserveCapacity(entries.count)
        // A manifest's mappings are small: a look back through the keys taken is cheaper
        // than hashing each into a set (about a tenth of decoding a workload).
        var seen: Set<String>? = entries.count > 16 ? Set(minimumCapacity: entries.count) : nil
        for e in entries {
            guard case .scalar(let k, _) = e.key.content else { fail(e.key, path, "mapping keys must be scalars"); continue }
            let duplicate = seen == nil ? out.contains { $0.0 == k } : seen?.insert(k).inserted == false
            if duplicate { fail(e.key, path.isEmpty ? k : path + "." + k, "duplicate key"); continue }
            out.append((k, e.value))
        }
        return out
    }

    mutating func string(_ node: SourceNode, _ path: String) -> String? {
        guard case .scalar(let s, let plain) = node.content else { fail(node, path, "expected a string, got \(node.typeName)"); return nil }
        if plain && node.isNull { return nil }
        return s
    }

    mutating func refName(_ node: SourceNode, _ path: String) -> String? {
        guard let s = string(node, path) else { return nil }
        if !ManifestDecoder.isDNS1123Label(s) { fail(node, path, "invalid name \"\(s.prefix(80))\": must be \(ManifestDecoder.dns1123Label)"); return nil }
        return s
    }

    mutating func int(_ node: SourceNode, _ path: String, min: Int, max: Int) -> Int? {
        guard case .scalar(let s, let plain) = node.content, plain, !node.isNull else {
            if node.isNull { return nil }
            fail(node, path, "expected an integer, got \(node.typeName)"); return nil
        }
        guard let v = Int(s) else { fail(node, path, "expected an integer, got \(node.typeName)"); return nil }
        if v < min { fail(node, path, "must be at least \(min), got \(v)"); return nil }
        if v > max { fail(node, path, "must be at most \(max), got \(v)"); return nil }
        return v
    }

    mutating func bool(_ node: SourceNode, _ path: String) -> Bool? {
        if node.isNull { return nil }
        if case .scalar(let s, let plain) = node.content, plain {
            switch s { case "true", "True", "TRUE": return true; case "false", "False", "FALSE": return false; default: break }
        }
        fail(node, path, "expected true or false, got \(node.typeName)")
        return nil
    }

    mutating func enumValue<E: RawRepresentable & CaseIterable>(_ node: SourceNode, _ path: String, _: E.Type, caseInsensitive: Bool = false) -> E? where E.RawValue == String {
        guard let s = string(node, path) else { return nil }
        if let e = E(rawValue: s) { return e }
        // A different case is accepted; where case matters by convention, with a warning.
        if let e = E.allCases.first(where: { $0.rawValue.lowercased() == s.lowercased() }) {
            if !caseInsensitive { warn(node, path, "\"\(s)\" matched \"\(e.rawValue)\" ignoring case") }
            return e
        }
        fail(node, path, "unknown value \"\(s.prefix(60))\"; expected one of \(E.allCases.map { $0.rawValue }.joined(separator: ", "))")
        return nil
    }

    mutating func stringList(_ node: SourceNode, _ path: String, scalarsAsText: Bool = false) -> [String] {
        if node.isNull { return [] }
        guard case .sequence(let items) = node.content else { fail(node, path, "expected a list, got \(node.typeName)"); return [] }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            if case .scalar(let s, _) = item.content { out.append(s) } else { fail(item, "\(path)[\(i)]", "expected a string, got \(item.typeName)") }
        }
        return out
    }

    mutating func stringMap(_ node: SourceNode, _ path: String, validateKeys: Bool) -> [String: String] {
        if node.isNull { return [:] }
        guard let m = mapping(node, path) else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in m {
            guard case .scalar(let s, _) = v.content else { fail(v, "\(path).\(k)", "expected a string, got \(v.typeName)"); continue }
            if validateKeys && !isQualifiedName(k) { fail(v, "\(path).\(k)", "invalid label key"); continue }
            out[k] = v.isNull ? "" : s
        }
        return out
    }

    func isQualifiedName(_ k: String) -> Bool {
        // Over the UTF-8 bytes, without splitting or copying: every accepted byte is ASCII,
        // so the byte count is the character count of any name that passes.
        var text = k
        return text.withUTF8 { b in
            var slash = -1
            for i in 0..<b.count where b[i] == UInt8(ascii: "/") {
                if slash >= 0 { return false }
                slash = i
            }
            let start = slash + 1
            guard b.count - start > 0, b.count - start <= 63 else { return false }
            if slash >= 0 && !isNodeName(String(decoding: UnsafeBufferPointer(rebasing: b[0..<slash]), as: UTF8.self)) { return false }
            func an(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) }
            guard an(b[start]), an(b[b.count - 1]) else { return false }
            for i in start..<b.count {
                let c = b[i]
                if !(an(c) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")) { return false }
            }
            return true
        }
    }

    mutating func envMap(_ node: SourceNode, _ path: String) -> [String: String] {
        if node.isNull { return [:] }
        // Accept a mapping {NAME: value} or a Kubernetes-style list [{name, value}].
        var out: [String: String] = [:]
        func add(_ k: String, _ v: String, _ n: SourceNode) {
            let ok = !k.isEmpty && k.utf8.allSatisfy { c in (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") } && !(k.first!.isNumber)
            if ok { out[k] = v } else { fail(n, "\(path).\(k)", "invalid environment variable name") }
        }
        if case .sequence(let items) = node.content {
            for (i, item) in items.enumerated() {
                guard let m = mapping(item, "\(path)[\(i)]") else { continue }
                for (k, v) in m where k != "name" && k != "value" { unknown(k, "\(path)[\(i)]", v, .envEntry) }
                guard let nameNode = m.first(where: { $0.0 == "name" })?.1, let name = string(nameNode, "\(path)[\(i)].name") else { fail(item, "\(path)[\(i)].name", "missing"); continue }
                let valueNode = m.first(where: { $0.0 == "value" })?.1
                var value = ""
                if let valueNode, case .scalar(let s, _) = valueNode.content, !valueNode.isNull { value = s }
                add(name, value, item)
            }
            return out
        }
        guard let m = mapping(node, path) else { return [:] }
        for (k, v) in m {
            guard case .scalar(let s, _) = v.content else { fail(v, "\(path).\(k)", "expected a string, got \(v.typeName)"); continue }
            add(k, v.isNull ? "" : s, v)
        }
        return out
    }

    mutating func quantity(_ node: SourceNode, _ path: String, whole: Bool) -> Quantity? {
        guard case .scalar(let s, _) = node.content, !node.isNull else {
            if node.isNull { return nil }
            fail(node, path, "expected a quantity such as 8, 500m or 64Gi, got \(node.typeName)"); return nil
        }
        let q: Quantity
        do { q = try Quantity.parse(s) } catch {
            switch error {
            case .malformed: fail(node, path, "malformed quantity \"\(s.prefix(40))\"; expected a number with an optional suffix (m, k, M, G, T, Ki, Mi, Gi, Ti, ...)")
            case .tooLarge: fail(node, path, "quantity \"\(s.prefix(40))\" is too large")
            case .tooPrecise: fail(node, path, "quantity \"\(s.prefix(40))\" is finer than a thousandth (1m)")
            }
            return nil
        }
        if q.milli < 0 { fail(node, path, "must not be negative, got \(s)"); return nil }
        if whole && q.milli % 1000 != 0 { fail(node, path, "expected a whole number, got \(s)"); return nil }
        return q
    }

    func isResourceName(_ k: String) -> Bool { isQualifiedName(k) }

    mutating func resources(_ node: SourceNode, _ path: String) -> ResourceList {
        if node.isNull { return ResourceList() }
        if case .sequence = node.content { resourceListGiven(node, path); return ResourceList() }
        guard let m = mapping(node, path) else { return ResourceList() }
        var r = ResourceList()
        for (k, v) in m {
            guard isResourceName(k) else { fail(v, "\(path).\(k)", "invalid resource name"); continue }
            guard ManifestDecoder.isKnownResourceName(k) else { unknown(k, path, v, .resourceList); continue }
            if let q = quantity(v, "\(path).\(k)", whole: k == "gpu" || k.hasSuffix("/gpu")) { r[k] = q }
        }
        return r
    }

    mutating func intern(_ m: [String: String]) -> [String: String] {
        if m.isEmpty { return m }
        if let i = internedLabels.firstIndex(of: m) { return internedLabels[i] }
        internedLabels.insert(m)
        return m
    }

    /// Keyed by names and texts (not by `==`, which compares amounts only: `1Gi` and
    /// `1073741824` are equal but print differently).
    mutating func intern(_ r: ResourceList) -> ResourceList {
        if r.isEmpty { return r }
        var key: [String] = []
        key.reserveCapacity(r.amounts.count * 2)
        for n in r.names { key.append(n); key.append(r.amounts[n]?.text ?? "") }
        if let known = internedResources[key] { return known }
        internedResources[key] = r
        return r
    }

    mutating func workloadResources(_ node: SourceNode, _ path: String) -> (ResourceList, String?) {
        if node.isNull { return (ResourceList(), nil) }
        if case .sequence = node.content { resourceListGiven(node, path); return (ResourceList(), nil) }
        guard let m = mapping(node, path) else { return (ResourceList(), nil) }
        var r = ResourceList(), gpuType: String?
        for (k, v) in m {
            if k == "gpuType" { gpuType = string(v, "\(path).gpuType"); continue }
            if k == "replica" || k == "replicas" { fail(v, "\(path).\(k)", "replicas belong in spec.replicas"); continue }
            guard isResourceName(k) else { fail(v, "\(path).\(k)", "invalid resource name"); continue }
            guard ManifestDecoder.isKnownResourceName(k) else { unknown(k, path, v, .workloadResources); continue }
            if let q = quantity(v, "\(path).\(k)", whole: k == "gpu" || k.hasSuffix("/gpu")) { r[k] = q }
        }
        return (r, gpuType)
    }
}
