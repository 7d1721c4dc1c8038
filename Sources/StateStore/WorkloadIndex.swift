import GantryAPI

/// The fields of a stored workload that `get workloads` filters and sorts on, derived from
/// its object JSON exactly as the CLI derives them (`StoredObject`), so a page read through
/// the index equals the page cut from the whole table.
public struct WorkloadFields: Sendable, Equatable {
    public var queue: String
    public var type: String
    public var priority: Int64
    public var gpus: Int64
    public var displayName: String
    public var labels: [(key: String, value: String)]

    public static func == (a: WorkloadFields, b: WorkloadFields) -> Bool {
        a.queue == b.queue && a.type == b.type && a.priority == b.priority && a.gpus == b.gpus && a.displayName == b.displayName
            && a.labels.map(\.key) == b.labels.map(\.key) && a.labels.map(\.value) == b.labels.map(\.value)
    }

    public init(object: Value) {
        let spec = object["spec"] ?? .object([])
        queue = spec["queue"]?.stringValue ?? ""
        type = spec["type"]?.stringValue ?? ""
        priority = WorkloadFields.priority(spec: spec)
        gpus = WorkloadFields.totalGPUs(spec: spec)
        displayName = spec["displayName"]?.stringValue ?? ""
        var seen = Set<String>()
        var labels: [(key: String, value: String)] = []
        // A repeated key keeps its last value, as a dictionary built in order does.
        for m in (object["metadata"]?["labels"]?.members ?? []).reversed() where seen.insert(m.key).inserted {
            labels.append((m.key, m.value.stringValue ?? ""))
        }
        self.labels = labels.reversed()
    }

    /// The same fields from the typed spec the object JSON is encoded from (no parsing):
    /// the JSON carries `priorityName` when set, else the number; the GPU quantity's whole
    /// units; labels as a map.
    public init(spec: WorkloadSpec, labels: [String: String]) {
        queue = spec.queue
        type = spec.type.rawValue
        priority = spec.priorityName.map { Int64(WorkloadSpec.priorityNames[$0] ?? 0) } ?? Int64(spec.priority)
        gpus = WorkloadFields.total(spec.resources.gpu, Int64(spec.replicas))
        displayName = spec.displayName
        self.labels = labels.keys.sorted().map { ($0, labels[$0] ?? "") }
    }

    /// `spec.priority`: a number, or a priority name (`high`); 0 otherwise.
    public static func priority(spec: Value) -> Int64 {
        if let i = spec["priority"]?.intValue { return i }
        if let s = spec["priority"]?.stringValue { return Int64(WorkloadSpec.priorityNames[s] ?? 0) }
        return 0
    }

    /// GPUs per replica times replicas (saturating).
    public static func totalGPUs(spec: Value) -> Int64 {
        var per: Int64 = 0
        if let g = spec["resources"]?["gpu"] {
            if let i = g.intValue { per = i } else if let s = g.stringValue, let q = try? Quantity.parse(s) { per = q.milli / 1000 }
        }
        return total(per, spec["replicas"]?.intValue ?? 1)
    }

    /// `per` times `replicas`, saturating.
    static func total(_ per: Int64, _ replicas: Int64) -> Int64 {
        let (t, over) = per.multipliedReportingOverflow(by: replicas)
        return over ? ((per < 0) != (replicas < 0) ? .min : .max) : t
    }
}

/// How `get workloads` pages are sorted.
public enum WorkloadSort: String, Sendable, CaseIterable {
    case name, creationTime, priority, gpus
}

/// A filtered, sorted page of workloads, answered from the workload index. Values of
/// `phases`, `types` and `queues` are compared lower-cased; `nameContains` matches the name or
/// the display name without case; `selectors` are `-l` terms (`=`, `!=`, `exists`, `!exists`).
public struct WorkloadPageQuery: Sendable {
    public var namespace: String?
    public var phases: Set<String> = []
    public var types: Set<String> = []
    public var queues: Set<String> = []
    public var nameContains: String?
    public var selectors: [(key: String, op: String, value: String)] = []
    public var createdFrom: Int64?
    public var createdTo: Int64?
    public var sort: WorkloadSort = .name
    public var descending = false
    /// With `descending`: only the sort key descends, ties stay by namespace then name
    /// ascending (the HTTP API's order; the CLI's descends throughout).
    public var tiesAscending = false
    /// A substring of the name alone (lower-cased), as the HTTP API's `name` filter matches.
    public var nameOnlyContains: String?
    /// `priority`/`gpus` terms: (column, `==`/`!=`/`<=`/`>=`, value).
    public var numbers: [(column: String, op: String, value: Int64)] = []
    public var offset = 0
    public var limit: Int?
    public init() {}
}

extension SQLiteDB {
    /// Whether the workload index is complete (set once a version-1 database is migrated).
    func hasWorkloadIndex() throws -> Bool {
        guard try tableExists("wl_index") else { return false }
        let st = try prepare("SELECT 1 FROM meta WHERE key='workload_index'")
        return try st.step()
    }
}

/// The writer's statements for the workload index and the change feed, prepared once per
/// connection and used only by whoever holds the store's `writing` flag.
final class IndexWriter {
    let db: SQLiteDB
    private var slots: [String: Statement] = [:]
    init(db: SQLiteDB) { self.db = db }

    private func st(_ sql: String) throws -> Statement {
        if let s = slots[sql] { return s }
        let s = try db.prepare(sql)
        slots[sql] = s
        return s
    }

    /// Stores a workload's object fields (not its phase, which follows the status row).
    /// `phase`, when given, is the phase of the status written in the same batch (stored at
    /// once, so the phase's index entries are not written twice).
    func upsert(namespace: String, name: String, creationTime: Int64, fields f: WorkloadFields, phase: String? = nil) throws {
        let up = try st("""
            INSERT INTO wl_index(namespace, name, queue, type, priority, gpus, created, name_lc, display_lc, phase) VALUES(?,?,?,?,?,?,?,?,?,coalesce(?10, ''))
            ON CONFLICT(namespace, name) DO UPDATE SET queue=excluded.queue, type=excluded.type, priority=excluded.priority,
              gpus=excluded.gpus, created=excluded.created, name_lc=excluded.name_lc, display_lc=excluded.display_lc,
              phase=coalesce(?10, phase)
            """)
        up.reset()
        if let phase { up.bind(10, phase) } else { up.bindNull(10) }
        up.bind(1, namespace); up.bind(2, name); up.bind(3, f.queue.lowercased()); up.bind(4, f.type.lowercased())
        up.bind(5, f.priority); up.bind(6, f.gpus); up.bind(7, creationTime); up.bind(8, name.lowercased())
        up.bind(9, f.displayName.lowercased())
        try up.run()
        let del = try st("DELETE FROM wl_labels WHERE namespace=? AND name=?")
        del.reset(); del.bind(1, namespace); del.bind(2, name)
        try del.run()
        if !f.labels.isEmpty {
            let ins = try st("INSERT OR REPLACE INTO wl_labels(namespace, name, key, value) VALUES(?,?,?,?)")
            for (k, v) in f.labels {
                ins.reset(); ins.bind(1, namespace); ins.bind(2, name); ins.bind(3, k); ins.bind(4, v)
                try ins.run()
            }
        }
    }

    /// The phase of a status JSON the daemon encoded (`{"phase":"Running",...`) read without
    /// parsing; nil for any other shape (SQLite's JSON functions read it then).
    static func leadingPhase(_ json: String) -> String? {
        var json = json
        return json.withUTF8 { buf -> String? in
            let prefix: StaticString = #"{"phase":""#
            let n = prefix.utf8CodeUnitCount
            guard buf.count > n else { return nil }
            let head = UnsafeBufferPointer(start: prefix.utf8Start, count: n)
            for k in 0..<n where buf[k] != head[k] { return nil }
            var end = n
            while end < buf.count && buf[end] != UInt8(ascii: "\"") {
                if buf[end] == UInt8(ascii: "\\") { return nil }
                end += 1
            }
            guard end < buf.count else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: buf[n..<end]), as: UTF8.self).lowercased()
        }
    }

    /// Copies the phase of a workload's status JSON into its index row.
    func setPhase(namespace: String, name: String, statusJSON: String) throws {
        if let phase = IndexWriter.leadingPhase(statusJSON) {
            let up = try st("UPDATE wl_index SET phase=?1 WHERE namespace=?2 AND name=?3 AND phase IS NOT ?1")
            up.reset(); up.bind(1, phase); up.bind(2, namespace); up.bind(3, name)
            try up.run()
            return
        }
        let up = try st("""
            UPDATE wl_index SET phase=p FROM (SELECT CASE WHEN json_valid(?1) AND json_type(?1, '$.phase')='text'
              THEN lower(json_extract(?1, '$.phase')) ELSE '' END AS p) WHERE namespace=?2 AND name=?3 AND phase IS NOT p
            """)
        up.reset(); up.bind(1, statusJSON); up.bind(2, namespace); up.bind(3, name)
        try up.run()
    }

    /// Rows still at the provisional phase (see `StateStore.provisionalPhase`) whose workload
    /// has no status go back to "", the phase of a workload without status.
    func clearProvisionalPhases(_ phase: String) throws {
        let up = try st("""
            UPDATE wl_index SET phase='' WHERE phase=?1
              AND NOT EXISTS (SELECT 1 FROM statuses s WHERE s.kind='Workload' AND s.namespace=wl_index.namespace AND s.name=wl_index.name)
            """)
        up.reset(); up.bind(1, phase)
        try up.run()
    }

    func delete(namespace: String, name: String) throws {
        for sql in ["DELETE FROM wl_index WHERE namespace=? AND name=?", "DELETE FROM wl_labels WHERE namespace=? AND name=?"] {
            let d = try st(sql)
            d.reset(); d.bind(1, namespace); d.bind(2, name)
            try d.run()
        }
    }

    /// Appends one change to the feed.
    func change(_ key: ObjectKey, _ op: String) throws {
        let ins = try st("INSERT INTO changes(kind, namespace, name, op) VALUES(?,?,?,?)")
        ins.reset(); ins.bind(1, key.kind.rawValue); ins.bind(2, key.namespace); ins.bind(3, key.name); ins.bind(4, op)
        try ins.run()
    }

    /// Marks changes written without feed rows (an initial load's): one row that skips a
    /// sequence number, so every reader holding an earlier one finds the feed broken
    /// (`StateReader.changes(after:)` answers nil) and reads its whole selection again.
    /// The row names no object; readers pass over it.
    func feedGap() throws {
        try db.exec("INSERT INTO changes(seq, kind, namespace, name, op) SELECT coalesce(max(seq), 0) + 2, '', '', '', 'gap' FROM changes")
    }

    /// Keeps the newest `Schema.changesKept` changes.
    func pruneChanges(keep: Int64 = Schema.changesKept) throws {
        let d = try st("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?")
        d.reset(); d.bind(1, keep)
        try d.run()
    }

    /// Builds the index of every stored workload (a database written before the index
    /// existed), then marks it complete. Runs inside the caller's transaction.
    func rebuild() throws {
        try db.exec("DELETE FROM wl_index")
        try db.exec("DELETE FROM wl_labels")
        let rows = try db.prepare("""
            SELECT o.namespace, o.name, o.creation_time, o.object, s.status FROM objects o
            LEFT JOIN statuses s ON s.kind=o.kind AND s.namespace=o.namespace AND s.name=o.name WHERE o.kind='Workload'
            """)
        while try rows.step() {
            let ns = rows.text(0), name = rows.text(1)
            let object = (try? JSON.parse(rows.text(3))) ?? .object([])
            try upsert(namespace: ns, name: name, creationTime: rows.int(2), fields: WorkloadFields(object: object))
            if !rows.isNull(4) { try setPhase(namespace: ns, name: name, statusJSON: rows.text(4)) }
        }
        try db.exec("INSERT OR REPLACE INTO meta(key, value) VALUES('workload_index', '1')")
        try db.exec("ANALYZE wl_index")
    }
}
