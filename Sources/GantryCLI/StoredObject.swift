import GantryAPI
import StateStore

/// A stored object parsed back for display: its row, object JSON and status JSON as values.
struct StoredObject {
    var row: ObjectRow
    var object: Value
    var status: Value?

    init(_ row: ObjectRow) {
        self.row = row
        object = (try? JSON.parse(row.objectJSON)) ?? .object([])
        status = row.statusJSON.flatMap { try? JSON.parse($0) }
    }

    var key: ObjectKey { row.key }
    var spec: Value { object["spec"] ?? .object([]) }
    var metadata: Value { object["metadata"] ?? .object([]) }
    var labels: [String: String] {
        var out: [String: String] = [:]
        for m in metadata["labels"]?.members ?? [] { out[m.key] = m.value.stringValue ?? "" }
        return out
    }
    var creation: Timestamp { Timestamp(seconds: row.creationTime) }
    var phase: String { status?["phase"]?.stringValue ?? "" }
    var priority: Int64 {
        if let i = spec["priority"]?.intValue { return i }
        if let s = spec["priority"]?.stringValue { return Int64(WorkloadSpec.priorityNames[s] ?? 0) }
        return 0
    }
    var replicas: Int64 { spec["replicas"]?.intValue ?? 1 }
    var gpusPerReplica: Int64 {
        guard let g = spec["resources"]?["gpu"] else { return 0 }
        if let i = g.intValue { return i }
        if let s = g.stringValue, let q = try? Quantity.parse(s) { return q.milli / 1000 }
        return 0
    }
    var totalGPUs: Int64 { let (t, over) = gpusPerReplica.multipliedReportingOverflow(by: replicas); return over ? .max : t }

    /// The whole object with status, as `-o yaml|json` prints it.
    var full: Value {
        guard case .object(var members) = object else { return object }
        members.append(.init("status", status ?? .object([])))
        return .object(members)
    }
}
