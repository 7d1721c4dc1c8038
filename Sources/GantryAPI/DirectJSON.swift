/// JSON text of objects and statuses written straight to bytes, without building a `Value`
/// tree first: the state writer encodes every object and status of a 100,000-workload load
/// with these. The output is byte for byte what `JSON.encode(x.toValue())` gives (the tests
/// compare the two), so stored rows and hashes do not change.
public struct JSONWriter {
    public var bytes: [UInt8] = []
    /// Whether the next member or element of the open container needs a comma first.
    var comma = false

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    // MARK: containers

    mutating func beginObject() { bytes.append(UInt8(ascii: "{")); comma = false }
    mutating func endObject() { bytes.append(UInt8(ascii: "}")); comma = true }
    mutating func beginArray() { bytes.append(UInt8(ascii: "[")); comma = false }
    mutating func endArray() { bytes.append(UInt8(ascii: "]")); comma = true }

    /// A member's key (and the comma before it when needed); its value follows.
    mutating func key(_ k: String) {
        if comma { bytes.append(UInt8(ascii: ",")) }
        JSON.writeString(k, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
        comma = false
    }
    /// Before an array element.
    mutating func element() {
        if comma { bytes.append(UInt8(ascii: ",")) }
        comma = false
    }

    // MARK: scalars

    mutating func string(_ s: String) { JSON.writeString(s, into: &bytes); comma = true }
    mutating func bool(_ b: Bool) { bytes.append(contentsOf: (b ? "true" : "false").utf8); comma = true }
    mutating func null() { bytes.append(contentsOf: "null".utf8); comma = true }
    mutating func int(_ v: Int64) {
        comma = true
        if v == .min { bytes.append(contentsOf: String(v).utf8); return }
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        var n = 0, t = m
        repeat { n += 1; t /= 10 } while t > 0
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: n))
        var i = start + n - 1
        repeat { bytes[i] = UInt8(truncatingIfNeeded: m % 10) &+ 0x30; m /= 10; i -= 1 } while m > 0
    }
    mutating func int(_ v: Int) { int(Int64(v)) }
    mutating func timestamp(_ t: Timestamp) { t.writeRFC3339(into: &bytes); comma = true }

    // MARK: members, with ObjectBuilder's rules (nil left out; empty strings left out unless said)

    mutating func member(_ k: String, _ s: String?, omitEmpty: Bool = true) {
        guard let s, !(omitEmpty && s.isEmpty) else { return }
        key(k); string(s)
    }
    mutating func member(_ k: String, _ v: Int?) { if let v { key(k); int(v) } }
    mutating func member(_ k: String, int64 v: Int64) { key(k); int(v) }
    mutating func member(_ k: String, _ b: Bool) { key(k); bool(b) }
    mutating func member(_ k: String, _ t: Timestamp?) { if let t { key(k); timestamp(t) } }

    /// A string map with sorted keys (`Value.stringMap`).
    mutating func stringMap(_ map: [String: String]) {
        beginObject()
        for k in map.keys.sorted() { key(k); string(map[k] ?? "") }
        endObject()
    }

    mutating func intArray(_ xs: [Int]) {
        beginArray()
        for x in xs { element(); int(x) }
        endArray()
    }
}

extension Timestamp {
    /// `rfc3339` as bytes, without the intermediate strings.
    func writeRFC3339(into out: inout [UInt8]) {
        let r = seconds % 86400
        let days = seconds / 86400 - (r < 0 ? 1 : 0), secs = r < 0 ? r + 86400 : r
        let (y, m, d) = Timestamp.civil(fromDays: days)
        guard y >= 1000 && y <= 9999 else { out.append(contentsOf: "\"".utf8); out.append(contentsOf: rfc3339.utf8); out.append(contentsOf: "\"".utf8); return }
        func p2(_ v: Int64) { out.append(UInt8(truncatingIfNeeded: v / 10) &+ 0x30); out.append(UInt8(truncatingIfNeeded: v % 10) &+ 0x30) }
        out.append(UInt8(ascii: "\""))
        p2(y / 100); p2(y % 100)
        out.append(UInt8(ascii: "-")); p2(m); out.append(UInt8(ascii: "-")); p2(d)
        out.append(UInt8(ascii: "T")); p2(secs / 3600); out.append(UInt8(ascii: ":")); p2(secs % 3600 / 60)
        out.append(UInt8(ascii: ":")); p2(secs % 60); out.append(UInt8(ascii: "Z"))
        out.append(UInt8(ascii: "\""))
    }
}

extension ResourceList {
    /// `toValue()` (whole numbers as integers, the rest as their text), members only.
    func writeMembers(_ w: inout JSONWriter) {
        for n in names {
            guard let q = amounts[n] else { continue }
            w.key(n)
            if let i = Int64(q.text) { w.int(i) } else { w.string(q.text) }
        }
    }
    func write(_ w: inout JSONWriter) { w.beginObject(); writeMembers(&w); w.endObject() }
    /// `toCanonicalValue()`.
    func writeCanonical(_ w: inout JSONWriter) {
        w.beginObject()
        for n in names {
            guard let q = amounts[n] else { continue }
            w.key(n)
            if let i = q.wholeUnits { w.int(i) } else { w.string(q.text) }
        }
        w.endObject()
    }
}

extension ObjectMeta {
    public func writeJSON(_ w: inout JSONWriter, kind: Kind, source: SourceRef?) {
        w.beginObject()
        w.member("name", name)
        if kind.isNamespaced { w.member("namespace", namespace) }
        w.member("uid", uid)
        w.member("generation", int64: generation)
        w.key("creationTimestamp"); w.timestamp(creationTimestamp)
        if !labels.isEmpty { w.key("labels"); w.stringMap(labels) }
        if let source {
            var ann = annotations
            ann["gantry.dev/source"] = source.description
            w.key("annotations"); w.stringMap(ann)
        } else if !annotations.isEmpty {
            w.key("annotations"); w.stringMap(annotations)
        }
        w.endObject()
    }
}

extension WorkloadSpec {
    public func writeJSON(_ w: inout JSONWriter) {
        w.beginObject()
        w.member("displayName", displayName)
        w.member("description", description)
        w.member("type", type.rawValue)
        w.member("queue", queue)
        w.key("priority")
        if let priorityName { w.string(priorityName) } else { w.int(priority) }
        w.member("image", image)
        w.member("command", command)
        w.member("entryPoint", entryPoint)
        if !args.isEmpty {
            w.key("args"); w.beginArray()
            for a in args { w.element(); w.string(a) }
            w.endArray()
        }
        if !env.isEmpty { w.key("env"); w.stringMap(env) }
        w.member("replicas", replicas)
        if !resources.isEmpty || gpuType != nil {
            w.key("resources"); w.beginObject()
            resources.writeMembers(&w)
            if let gpuType { w.key("gpuType"); w.string(gpuType) }
            w.endObject()
        }
        if !specifiedNodes.isEmpty {
            w.key("specifiedNodes"); w.beginArray()
            for n in specifiedNodes { w.element(); w.string(n) }
            w.endArray()
        }
        w.member("timeout", timeout)
        w.member("maxRetry", maxRetry)
        w.member("ttlSecondsAfterFinished", ttlSecondsAfterFinished)
        w.member("suspend", suspend)
        w.endObject()
    }
}

extension QueueSpec {
    public func writeJSON(_ w: inout JSONWriter) {
        w.beginObject()
        w.member("parent", parent)
        w.member("description", description)
        w.member("resourcePool", resourcePool)
        if !deserved.isEmpty { w.key("deserved"); deserved.write(&w) }
        if !guarantee.isEmpty { w.key("guarantee"); guarantee.write(&w) }
        if let capability { w.key("capability"); capability.write(&w) }
        w.member("reclaimable", reclaimable)
        w.member("disableOversell", disableOversell)
        w.member("queueingStrategy", queueingStrategy.rawValue)
        w.member("state", state.rawValue)
        w.endObject()
    }
}

extension NodeSpec {
    public func writeJSON(_ w: inout JSONWriter) {
        w.beginObject()
        w.member("resourcePool", resourcePool)
        w.key("capacity"); capacity.write(&w)
        w.member("gpuType", gpuType)
        w.member("gpuVendor", gpuVendor.rawValue)
        w.member("unschedulable", unschedulable)
        w.endObject()
    }
}

extension ObjectSpec {
    public func writeJSON(_ w: inout JSONWriter) {
        switch self {
        case .queue(let s): s.writeJSON(&w)
        case .workload(let s): s.writeJSON(&w)
        case .node(let s): s.writeJSON(&w)
        case .resourcePool(let s): w.beginObject(); w.member("description", s.description); w.endObject()
        }
    }
}

extension ManifestObject {
    /// The stored object JSON (`toValue()` encoded) and, within it, the spec's JSON.
    public func storedJSON() -> (object: String, spec: String) {
        var w = JSONWriter(capacity: 768)
        w.beginObject()
        w.member("apiVersion", gantryAPIVersion)
        w.member("kind", spec.kind.rawValue)
        w.key("metadata"); meta.writeJSON(&w, kind: spec.kind, source: source)
        w.key("spec")
        let specStart = w.bytes.count
        spec.writeJSON(&w)
        let specEnd = w.bytes.count
        w.endObject()
        let spec = w.bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[specStart..<specEnd]), as: UTF8.self) }
        return (w.text, spec)
    }
}

private func writeConditions(_ c: [Condition], _ w: inout JSONWriter) {
    w.key("conditions"); w.beginArray()
    for x in c {
        w.element(); w.beginObject()
        w.key("type"); w.string(x.type)
        w.key("status"); w.string(x.status)
        w.key("reason"); w.string(x.reason)
        w.key("message"); w.string(x.message)
        w.key("lastTransitionTime"); w.timestamp(x.lastTransitionTime)
        w.member("observedGeneration", int64: x.observedGeneration)
        w.endObject()
    }
    w.endArray()
}

extension WorkloadStatus {
    public func writeJSON(_ w: inout JSONWriter) {
        w.beginObject()
        w.member("phase", phase.rawValue)
        w.member("message", message)
        w.member("queuePosition", queuePosition)
        if let q = admissionQueue {
            w.key("admission"); w.beginObject()
            w.key("queue"); w.string(q)
            w.key("replicas"); w.beginArray()
            for a in admission {
                w.element(); w.beginObject()
                w.key("rank"); w.int(a.rank)
                w.key("node"); w.string(a.node)
                w.key("gpus"); w.intArray(a.gpus)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        if !replicas.isEmpty {
            w.key("replicas"); w.beginArray()
            for r in replicas {
                w.element(); w.beginObject()
                w.member("name", r.name); w.member("rank", r.rank); w.member("node", r.node); w.member("phase", r.phase)
                w.key("gpus"); w.intArray(r.gpus)
                w.member("gpuCount", r.gpuCount)
                w.member("pid", r.pid); w.member("startTime", r.startTime)
                w.key("exitCode")
                if let e = r.exitCode { w.int(e) } else { w.null() }
                w.member("restarts", r.restarts)
                w.endObject()
            }
            w.endArray()
        }
        if let o = override {
            w.key("override"); w.beginObject()
            w.key("suspend"); w.bool(o.suspend)
            w.key("generation"); w.int(o.generation)
            w.key("at"); w.timestamp(o.at)
            w.key("by"); w.string(o.by)
            w.endObject()
        }
        w.member("dispatchCount", dispatchCount)
        w.member("retryCount", retryCount)
        w.key("creationTime"); w.timestamp(creationTime)
        w.member("startTime", startTime)
        w.member("endTime", endTime)
        w.member("observedGeneration", int64: observedGeneration)
        writeConditions(conditions, &w)
        w.endObject()
    }
}

extension QueueStatus {
    public func writeJSON(_ w: inout JSONWriter) {
        w.beginObject()
        w.member("state", state.rawValue)
        w.key("deserved"); deserved.writeCanonical(&w)
        w.key("allocated"); allocated.writeCanonical(&w)
        w.key("borrowed"); borrowed.writeCanonical(&w)
        w.member("pending", pending)
        w.member("admitted", admitted)
        w.member("running", running)
        w.member("observedGeneration", int64: observedGeneration)
        writeConditions(conditions, &w)
        w.endObject()
    }
}

extension NodeStatus {
    public func writeJSON(_ w: inout JSONWriter) {
        w.beginObject()
        w.member("phase", phase)
        w.key("capacity"); capacity.writeCanonical(&w)
        w.key("allocated"); allocated.writeCanonical(&w)
        w.member("workloads", workloads)
        w.member("observedGeneration", int64: observedGeneration)
        writeConditions(conditions, &w)
        w.endObject()
    }
}

extension ResourcePoolStatus {
    public func writeJSON(_ w: inout JSONWriter) {
        w.beginObject()
        w.member("phase", phase)
        w.key("nodeCount"); w.beginObject(); w.member("total", int64: nodeCount.total); w.member("used", int64: nodeCount.used); w.endObject()
        w.key("gpuCount"); w.beginObject(); w.member("total", int64: gpuCount.total); w.member("used", int64: gpuCount.used); w.endObject()
        w.member("observedGeneration", int64: observedGeneration)
        writeConditions(conditions, &w)
        w.endObject()
    }
}

extension ObjectStatus {
    public func writeJSON(_ w: inout JSONWriter) {
        switch self {
        case .queue(let s): s.writeJSON(&w)
        case .workload(let s): s.writeJSON(&w)
        case .node(let s): s.writeJSON(&w)
        case .resourcePool(let s): s.writeJSON(&w)
        }
    }
    /// `JSON.encode(toValue())`, written directly.
    public var jsonText: String {
        var w = JSONWriter(capacity: 512)
        writeJSON(&w)
        return w.text
    }
}
