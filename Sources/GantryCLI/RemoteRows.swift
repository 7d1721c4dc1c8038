import GantryAPI
import StateStore

/// Pure translations from the API's JSON to the rows the CLI renders (no I/O; tested apart).
enum RemoteRows {
    /// Members of an API object that are not the stored object: its status (kept apart) and
    /// what the API adds (owner, source, deletedAt, a queue's usage, a node's allocation).
    static let apiOnly: Set<String> = ["status", "owner", "source", "deletedAt", "usage", "allocation"]

    /// An API object as a stored row: the object without status, the status apart (nil
    /// while none is written). Source: the manifest's `file:line` when the API says it,
    /// else who owns it and the server.
    static func row(_ v: Value, kind: Kind, server: String) -> ObjectRow? {
        guard case .object(let members) = v, let meta = v["metadata"], let name = meta["name"]?.stringValue, !name.isEmpty else { return nil }
        let namespace = kind.isNamespaced ? (meta["namespace"]?.stringValue ?? "") : ""
        var object: [Value.Member] = []
        var status: Value?
        let source = v["source"]?.stringValue
        for m in members {
            if m.key == "status" { status = m.value } else if m.key == "metadata", let source { object.append(.init("metadata", withSource(m.value, source))) } else if !apiOnly.contains(m.key) { object.append(m) }
        }
        if let s = status, s == .null || s.members?.isEmpty == true { status = nil }
        let creation = meta["creationTimestamp"]?.stringValue.flatMap { Timestamp(rfc3339: $0) }?.seconds ?? 0
        let owner = v["owner"]?.stringValue ?? "api"
        return ObjectRow(key: ObjectKey(kind, namespace: namespace, name: name), uid: meta["uid"]?.stringValue ?? "",
                         generation: meta["generation"]?.intValue ?? 0, specHash: "", objectHash: "", creationTime: creation,
                         source: source ?? "\(owner) (\(server))", objectJSON: JSON.encode(.object(object)), statusJSON: status.map { JSON.encode($0) })
    }

    /// Metadata with the `gantry.dev/source` annotation a state directory's stored object
    /// carries (`file:line` of a manifest-owned object), annotations in key order.
    static func withSource(_ meta: Value, _ source: String) -> Value {
        guard case .object(var members) = meta else { return meta }
        var ann: [String: String] = [:]
        for m in meta["annotations"]?.members ?? [] { ann[m.key] = m.value.stringValue ?? "" }
        ann["gantry.dev/source"] = source
        if let i = members.firstIndex(where: { $0.key == "annotations" }) { members[i].value = .stringMap(ann) } else { members.append(.init("annotations", .stringMap(ann))) }
        return .object(members)
    }

    static func sorted(_ rows: [ObjectRow]) -> [ObjectRow] { rows.sorted { $0.key < $1.key } }

    /// Seconds since the epoch from an RFC 3339 string or a number.
    static func seconds(_ v: Value?) -> Double? {
        guard let v else { return nil }
        return number(v)
    }

    /// The API's Event `{"type","reason","message","kind","namespace","name","count",
    /// "firstTimestamp","lastTimestamp"}` as the events table's row; count at least 1.
    static func eventRow(_ e: Value) -> StateReader.EventRow? {
        guard let reason = e["reason"]?.stringValue else { return nil }
        let kind = e["kind"]?.stringValue ?? "", namespace = e["namespace"]?.stringValue ?? "", name = e["name"]?.stringValue ?? ""
        let first = seconds(e["firstTimestamp"]) ?? seconds(e["lastTimestamp"]) ?? 0
        let last = seconds(e["lastTimestamp"]) ?? first
        let count = e["count"]?.intValue.map { Int(clamping: max(1, $0)) } ?? 1
        return StateReader.EventRow(name: e["id"]?.stringValue ?? StateReader.EventRow.syntheticName(kind: kind, namespace: namespace, name: name, reason: reason, first: first),
                                    kind: kind, namespace: namespace, objName: name, type: e["type"]?.stringValue ?? "Normal",
                                    reason: reason, message: e["message"]?.stringValue ?? "", count: count, first: first, last: last)
    }

    /// The newest sample of each series of a metrics answer
    /// (`{"series":[{"metric","gpu"?,"rank"?,"samples":[[ts,value],...]}]}`), named as the
    /// state directory names series: `PREFIX metric{gpu=N}` or `PREFIX metric{rank=N}`.
    static func latest(_ v: Value, prefix: String) -> [(series: String, ts: Double, value: Double)] {
        var out: [(series: String, ts: Double, value: Double)] = []
        for s in v["series"]?.arrayValue ?? [] {
            guard let metric = s["metric"]?.stringValue, !metric.isEmpty else { continue }
            var label = ""
            if let g = s["gpu"]?.intValue { label = "{gpu=\(g)}" } else if let r = s["rank"]?.intValue { label = "{rank=\(r)}" }
            var newest: (Double, Double)?
            for sample in s["samples"]?.arrayValue ?? [] {
                guard let pair = sample.arrayValue, pair.count >= 2, let ts = number(pair[0]), let value = number(pair[1]) else { continue }
                if newest == nil || ts >= newest?.0 ?? 0 { newest = (ts, value) }
            }
            if let (ts, value) = newest { out.append((prefix + metric + label, ts, value)) }
        }
        return out
    }

    static func number(_ v: Value) -> Double? {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d.isFinite ? d : nil
        case .string(let s): return Timestamp(rfc3339: s).map { Double($0.seconds) } ?? Double(s).flatMap { $0.isFinite ? $0 : nil }
        default: return nil
        }
    }
}
