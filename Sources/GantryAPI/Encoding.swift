/// `Value` forms of objects and statuses: what `-o yaml|json` prints and the store keeps.
extension ObjectMeta {
    public func toValue(kind: Kind, source: SourceRef?) -> Value {
        var b = ObjectBuilder()
        b.set("name", name)
        if kind.isNamespaced { b.set("namespace", namespace) }
        b.set("uid", uid)
        b.set("generation", .int(generation))
        b.set("creationTimestamp", creationTimestamp.rfc3339)
        if !labels.isEmpty { b.set("labels", .stringMap(labels)) }
        var ann = annotations
        if let source { ann["gantry.dev/source"] = source.description }
        if !ann.isEmpty { b.set("annotations", .stringMap(ann)) }
        return b.value
    }
}

extension QueueSpec {
    public func toValue() -> Value {
        var b = ObjectBuilder()
        b.set("parent", parent)
        b.set("description", description)
        b.set("resourcePool", resourcePool)
        if !deserved.isEmpty { b.set("deserved", deserved.toValue()) }
        if !guarantee.isEmpty { b.set("guarantee", guarantee.toValue()) }
        if let capability { b.set("capability", capability.toValue()) }
        b.set("reclaimable", reclaimable)
        b.set("disableOversell", disableOversell)
        b.set("queueingStrategy", queueingStrategy.rawValue)
        b.set("state", state.rawValue)
        return b.value
    }
}

extension WorkloadSpec {
    public func toValue() -> Value {
        var b = ObjectBuilder()
        b.set("displayName", displayName)
        b.set("description", description)
        b.set("type", type.rawValue)
        b.set("queue", queue)
        b.set("priority", priorityName.map { Value.string($0) } ?? .int(Int64(priority)))
        b.set("image", image)
        b.set("command", command)
        b.set("entryPoint", entryPoint)
        if !args.isEmpty { b.set("args", .array(args.map { .string($0) })) }
        if !env.isEmpty { b.set("env", .stringMap(env)) }
        b.set("replicas", replicas)
        var res = resources.toValue().members ?? []
        if let gpuType { res.append(.init("gpuType", .string(gpuType))) }
        if !res.isEmpty { b.set("resources", .object(res)) }
        if !specifiedNodes.isEmpty { b.set("specifiedNodes", .array(specifiedNodes.map { .string($0) })) }
        b.set("timeout", timeout)
        b.set("maxRetry", maxRetry)
        b.set("ttlSecondsAfterFinished", ttlSecondsAfterFinished)
        b.set("suspend", suspend)
        return b.value
    }
}

extension NodeSpec {
    public func toValue() -> Value {
        var b = ObjectBuilder()
        b.set("resourcePool", resourcePool)
        b.set("capacity", capacity.toValue())
        b.set("gpuType", gpuType)
        b.set("gpuVendor", gpuVendor.rawValue)
        b.set("unschedulable", unschedulable)
        return b.value
    }
}

extension ObjectSpec {
    public func toValue() -> Value {
        switch self {
        case .queue(let s): return s.toValue()
        case .workload(let s): return s.toValue()
        case .node(let s): return s.toValue()
        case .resourcePool(let s):
            var b = ObjectBuilder(); b.set("description", s.description); return b.value
        }
    }
}

extension ManifestObject {
    /// The whole object without status: apiVersion, kind, metadata, spec.
    public func toValue() -> Value {
        .object([.init("apiVersion", .string(gantryAPIVersion)), .init("kind", .string(spec.kind.rawValue)),
                 .init("metadata", meta.toValue(kind: spec.kind, source: source)), .init("spec", spec.toValue())])
    }
}

private func conditionsValue(_ c: [Condition]) -> Value { .array(c.map { $0.toValue() }) }

extension WorkloadStatus {
    public func toValue() -> Value {
        var b = ObjectBuilder()
        b.set("phase", phase.rawValue)
        b.set("message", message)
        b.set("queuePosition", queuePosition)
        if let q = admissionQueue {
            b.set("admission", .object([.init("queue", .string(q)), .init("replicas", .array(admission.map {
                .object([.init("rank", .int(Int64($0.rank))), .init("node", .string($0.node)), .init("gpus", .array($0.gpus.map { .int(Int64($0)) }))])
            }))]))
        }
        if !replicas.isEmpty {
            b.set("replicas", .array(replicas.map { r in
                var rb = ObjectBuilder()
                rb.set("name", r.name); rb.set("rank", r.rank); rb.set("node", r.node); rb.set("phase", r.phase)
                rb.set("gpus", .array(r.gpus.map { .int(Int64($0)) }))
                rb.set("gpuCount", r.gpuCount)
                rb.set("pid", r.pid); rb.set("startTime", r.startTime?.rfc3339)
                rb.set("exitCode", r.exitCode.map { Value.int(Int64($0)) } ?? .null)
                rb.set("restarts", r.restarts)
                return rb.value
            }))
        }
        if let o = override {
            b.set("override", .object([.init("suspend", .bool(o.suspend)), .init("generation", .int(o.generation)),
                                       .init("at", .string(o.at.rfc3339)), .init("by", .string(o.by))]))
        }
        b.set("dispatchCount", dispatchCount)
        b.set("retryCount", retryCount)
        b.set("creationTime", creationTime.rfc3339)
        b.set("startTime", startTime?.rfc3339)
        b.set("endTime", endTime?.rfc3339)
        b.set("observedGeneration", .int(observedGeneration))
        b.set("conditions", conditionsValue(conditions))
        return b.value
    }
}

extension QueueStatus {
    public func toValue() -> Value {
        var b = ObjectBuilder()
        b.set("state", state.rawValue)
        b.set("deserved", deserved.toCanonicalValue())
        b.set("allocated", allocated.toCanonicalValue())
        b.set("borrowed", borrowed.toCanonicalValue())
        b.set("pending", pending)
        b.set("admitted", admitted)
        b.set("running", running)
        b.set("observedGeneration", .int(observedGeneration))
        b.set("conditions", conditionsValue(conditions))
        return b.value
    }
}

extension NodeStatus {
    public func toValue() -> Value {
        var b = ObjectBuilder()
        b.set("phase", phase)
        b.set("capacity", capacity.toCanonicalValue())
        b.set("allocated", allocated.toCanonicalValue())
        b.set("workloads", workloads)
        b.set("observedGeneration", .int(observedGeneration))
        b.set("conditions", conditionsValue(conditions))
        return b.value
    }
}

extension ResourcePoolStatus {
    public func toValue() -> Value {
        var b = ObjectBuilder()
        b.set("phase", phase)
        b.set("nodeCount", .object([.init("total", .int(nodeCount.total)), .init("used", .int(nodeCount.used))]))
        b.set("gpuCount", .object([.init("total", .int(gpuCount.total)), .init("used", .int(gpuCount.used))]))
        b.set("observedGeneration", .int(observedGeneration))
        b.set("conditions", conditionsValue(conditions))
        return b.value
    }
}

extension ObjectStatus {
    public func toValue() -> Value {
        switch self {
        case .queue(let s): s.toValue()
        case .workload(let s): s.toValue()
        case .node(let s): s.toValue()
        case .resourcePool(let s): s.toValue()
        }
    }
}
