import Foundation
import GantryAPI

/// Read-only access to a state directory for the CLI; works while the daemon runs (WAL).
public final class StateReader {
    let db: SQLiteDB

    public init(directory: String) throws {
        let path = StateStore.databasePath(directory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("no state database at \(path): start the daemon (gantry run --state-dir \(directory)) or pass --state-dir")
        }
        db = try SQLiteDB(path: path, readOnly: true)
        try StateCheck.verify(db, allowEmpty: false)
    }

    /// Ends whatever read is still open on this connection: a reader kept between requests (the
    /// API's pool, a `get -w` loop) then holds no WAL snapshot that checkpoints would wait for.
    public func endReads() { db.endReads() }

    /// Whether a statement of this reader is part-way through its rows (an open snapshot).
    public var holdsSnapshot: Bool { db.hasActiveStatement }

    static let objectSelect = """
        SELECT o.kind, o.namespace, o.name, o.uid, o.generation, o.spec_hash, o.object_hash, o.creation_time, o.source, o.object, s.status, o.updated_at
        FROM objects o LEFT JOIN statuses s ON s.kind=o.kind AND s.namespace=o.namespace AND s.name=o.name
        """

    /// `objectSelect`'s columns driven by the workload index: CROSS JOIN keeps `wl_index` the
    /// outer loop, so filters and ORDER BY use its indexes and LIMIT stops the scan early.
    static let pageSelect = """
        SELECT o.kind, o.namespace, o.name, o.uid, o.generation, o.spec_hash, o.object_hash, o.creation_time, o.source, o.object, s.status, o.updated_at
        FROM wl_index w CROSS JOIN objects o ON o.kind='Workload' AND o.namespace=w.namespace AND o.name=w.name
        LEFT JOIN statuses s ON s.kind=o.kind AND s.namespace=o.namespace AND s.name=o.name
        """

    /// Stored objects of a kind (all namespaces when `namespace` is nil), with JSON text.
    public func objects(kind: Kind, namespace: String? = nil, name: String? = nil) throws -> [ObjectRow] {
        var sql = StateReader.objectSelect + " WHERE o.kind=?"
        var args: [SQLValue] = [.text(kind.rawValue)]
        if let namespace, kind.isNamespaced { sql += " AND o.namespace=?"; args.append(.text(namespace)) }
        if let name { sql += " AND o.name=?"; args.append(.text(name)) }
        sql += " ORDER BY o.namespace, o.name"
        return try StateReader.rows(db.prepare(sql).bind(args))
    }

    /// Stored workloads that name `queue` (spec.queue), any namespace.
    public func workloads(queue: String) throws -> [ObjectRow] {
        if try hasWorkloadIndex() {
            // The index keeps queues lower-cased: read those rows, keep the exact matches
            // (SQLite's JSON reader: parsing each object in Swift cost more than the rest).
            let sql = StateReader.pageSelect + " WHERE w.queue=? AND (CASE WHEN json_valid(o.object) THEN json_extract(o.object, '$.spec.queue') END)=? ORDER BY w.queue, w.namespace, w.name"
            return try StateReader.rows(db.prepare(sql).bind([.text(queue.lowercased()), .text(queue)]))
        }
        let sql = StateReader.objectSelect + " WHERE o.kind='Workload' AND json_extract(o.object, '$.spec.queue')=? ORDER BY o.namespace, o.name"
        return try StateReader.rows(db.prepare(sql).bind([.text(queue)]))
    }

    private var indexKnown: Bool?
    /// Whether the database holds a complete workload index (a version-1 database not yet
    /// opened by a newer daemon does not: callers then read the objects themselves).
    public func hasWorkloadIndex() throws -> Bool {
        if let k = indexKnown { return k }
        let k = try db.hasWorkloadIndex()
        indexKnown = k
        return k
    }

    /// A filtered, sorted page of workloads read through the workload index: the same rows,
    /// in the same order, as filtering and sorting every stored workload; nil when the
    /// database has no index yet.
    public func workloadPage(_ q: WorkloadPageQuery) throws -> [ObjectRow]? {
        guard try hasWorkloadIndex() else { return nil }
        if let limit = q.limit, limit <= 1000 {
            // A page: its keys from the index alone, then just those objects, so no object is
            // read for a row the filters or the page cut drop.
            guard let keys = try workloadKeys(q) else { return nil }
            let one = try db.prepare(StateReader.objectSelect + " WHERE o.kind='Workload' AND o.namespace=? AND o.name=?")
            var out: [ObjectRow] = []
            out.reserveCapacity(keys.count)
            for k in keys { out += try StateReader.rows(one.bind([.text(k.namespace), .text(k.name)])) }
            return out
        }
        return try StateReader.rows(pageStatement(q, select: StateReader.pageSelect))
    }

    /// The keys of `workloadPage`'s rows, read from the index alone (`get -o name`).
    public func workloadKeys(_ q: WorkloadPageQuery) throws -> [ObjectKey]? {
        guard try hasWorkloadIndex() else { return nil }
        let st = try pageStatement(q, select: "SELECT w.namespace, w.name FROM wl_index w")
        var out: [ObjectKey] = []
        while try st.step() { out.append(ObjectKey(.workload, namespace: st.text(0), name: st.text(1))) }
        return out
    }

    /// How a page is read: by walking the sort order's index and checking the filters on the
    /// way (stops after offset + limit matches), or by reading the rows a filter's index
    /// selects and sorting them. SQLite's statistics for `wl_index` are refreshed only when
    /// the writer idles (at most every 5 minutes) and may be missing or stale (taken while
    /// most phases were still ''); without them SQLite guesses that an equality on phase,
    /// queue or namespace selects a few rows and sorts them, which at 100,000 pending
    /// workloads looks up and sorts 100,000 rows for a page of 50. The reader counts, up to
    /// `sortScanAbove`, the rows each indexed filter (phase, queue, namespace) selects, each
    /// in its own index, and picks the plan with unary `+` (which keeps SQLite from using an
    /// index for a term): when the most selective filter selects fewer rows, its index is
    /// read and they are sorted; otherwise the sort index is walked, where at least
    /// `sortScanAbove` of N rows match, so a page of L at offset O walks about
    /// (O + L) × N / `sortScanAbove` index entries at most (phase, queue and namespace are
    /// checked in the index itself), never more than N.
    public enum PagePlan: Sendable, Equatable {
        case sortIndex
        /// Read the rows the index of this column (phase, queue, namespace) selects; sort them.
        case filterIndex(String)
    }

    /// Rows an indexed filter may select before a page walks the sort index instead.
    public var sortScanAbove = 2000

    /// The plan `pageStatement` uses for `q` (tests and EXPLAIN QUERY PLAN).
    public func pagePlan(_ q: WorkloadPageQuery) throws -> PagePlan {
        var terms: [(column: String, values: [String])] = []
        for (column, values) in [("phase", q.phases), ("queue", q.queues)] where !values.isEmpty {
            terms.append((column, values.sorted().map { $0.lowercased() }))
        }
        // Name order with a namespace: the primary key is both the filter and the order.
        if let ns = q.namespace, q.sort != .name { terms.append(("namespace", [ns])) }
        var best: (column: String, count: Int64)?
        for t in terms {
            let sql = "SELECT count(*) FROM (SELECT 1 FROM wl_index WHERE \(t.column) IN ("
                + Array(repeating: "?", count: t.values.count).joined(separator: ",") + ") LIMIT ?)"
            let st = try db.prepare(sql).bind(t.values.map { .text($0) } + [.int(Int64(sortScanAbove))])
            _ = try st.step()
            let n = st.int(0)
            if n < (best?.count ?? Int64(sortScanAbove)) { best = (t.column, n) }
        }
        return best.map { .filterIndex($0.column) } ?? .sortIndex
    }

    /// The statement `pageStatement` runs for `q` (tests and EXPLAIN QUERY PLAN).
    public func pageSQL(_ q: WorkloadPageQuery, select: String = "SELECT w.namespace, w.name FROM wl_index w") throws -> (sql: String, args: [SQLValue]) {
        let plan = try pagePlan(q)
        // `+` on a filter keeps SQLite from choosing that filter's index (only the planned
        // one is left usable); `+` on the ORDER BY terms keeps it from walking the sort index.
        func f(_ column: String) -> String { plan == .filterIndex(column) ? "" : "+" }
        let o = plan == .sortIndex ? "" : "+"
        var sql = select + " WHERE 1=1"
        var args: [SQLValue] = []
        if let ns = q.namespace { sql += " AND \(q.sort == .name ? "" : f("namespace"))w.namespace=?"; args.append(.text(ns)) }
        func oneOf(_ column: String, _ values: Set<String>, _ prefix: String) {
            guard !values.isEmpty else { return }
            sql += " AND \(prefix)w.\(column) IN (" + Array(repeating: "?", count: values.count).joined(separator: ",") + ")"
            args += values.sorted().map { .text($0.lowercased()) }
        }
        oneOf("phase", q.phases, f("phase")); oneOf("type", q.types, "+"); oneOf("queue", q.queues, f("queue"))
        if let nc = q.nameContains {
            sql += " AND (instr(w.name_lc, ?) > 0 OR instr(w.display_lc, ?) > 0)"
            args += [.text(nc.lowercased()), .text(nc.lowercased())]
        }
        if let nc = q.nameOnlyContains {
            sql += " AND instr(w.name_lc, ?) > 0"
            args.append(.text(nc.lowercased()))
        }
        for t in q.numbers {
            guard t.column == "priority" || t.column == "gpus" else { continue }
            let op = t.op == "==" ? "=" : t.op == "!=" ? "!=" : t.op == "<=" ? "<=" : ">="
            sql += " AND +w.\(t.column) \(op) ?"
            args.append(.int(t.value))
        }
        let label = "SELECT 1 FROM wl_labels l WHERE l.namespace=w.namespace AND l.name=w.name AND l.key=?"
        for sel in q.selectors {
            switch sel.op {
            case "=": sql += " AND EXISTS(\(label) AND l.value=?)"; args += [.text(sel.key), .text(sel.value)]
            case "!=": sql += " AND NOT EXISTS(\(label) AND l.value=?)"; args += [.text(sel.key), .text(sel.value)]
            case "exists": sql += " AND EXISTS(\(label))"; args.append(.text(sel.key))
            default: sql += " AND NOT EXISTS(\(label))"; args.append(.text(sel.key))
            }
        }
        if let from = q.createdFrom { sql += " AND w.created >= ?"; args.append(.int(from)) }
        if let to = q.createdTo { sql += " AND w.created <= ?"; args.append(.int(to)) }
        let dir = q.descending ? " DESC" : ""
        let keys: [String]
        switch q.sort {
        // Name order with a namespace filter stays on the primary key either way.
        case .name: keys = q.namespace != nil ? ["w.namespace", "w.name"] : [o + "w.namespace", o + "w.name"]
        case .creationTime: keys = [o + "w.created", o + "w.namespace", o + "w.name"]
        case .priority: keys = [o + "w.priority", o + "w.namespace", o + "w.name"]
        case .gpus: keys = [o + "w.gpus", o + "w.namespace", o + "w.name"]
        }
        if q.tiesAscending && q.sort != .name {
            sql += " ORDER BY " + keys[0] + dir + ", " + keys.dropFirst().joined(separator: ", ")
        } else {
            sql += " ORDER BY " + keys.map { $0 + dir }.joined(separator: ", ")
        }
        sql += " LIMIT ? OFFSET ?"
        args.append(.int(q.limit.map { Int64(max($0, 0)) } ?? -1))
        args.append(.int(Int64(max(q.offset, 0))))
        return (sql, args)
    }

    /// SQLite's EXPLAIN QUERY PLAN of a page's statement, one line per step.
    public func explainPage(_ q: WorkloadPageQuery) throws -> [String] {
        let (sql, args) = try pageSQL(q)
        let st = try db.prepare("EXPLAIN QUERY PLAN " + sql).bind(args)
        var out: [String] = []
        while try st.step() { out.append(st.text(3)) }
        return out
    }

    private func pageStatement(_ q: WorkloadPageQuery, select: String) throws -> Statement {
        let (sql, args) = try pageSQL(q, select: select)
        return try db.prepare(sql).bind(args)
    }

    /// One entry of the change feed: an object, status or delete stored under `seq`.
    public struct Change: Sendable, Equatable {
        public var seq: Int64
        public var key: ObjectKey
        public var op: String
    }

    /// The newest change's sequence number (0 when none, or when the database has no feed).
    public func lastChangeSeq() throws -> Int64 {
        guard try db.tableExists("changes") else { return 0 }
        let st = try db.prepare("SELECT coalesce(max(seq), 0) FROM changes")
        _ = try st.step()
        return st.int(0)
    }

    /// Changes after `seq`, oldest first, at most `limit`; nil when the feed no longer holds
    /// every change after `seq` (pruned, or a database started afresh): re-read everything.
    public func changes(after seq: Int64, limit: Int = 10000) throws -> [Change]? {
        guard try db.tableExists("changes") else { return nil }
        let bounds = try db.prepare("SELECT min(seq), max(seq) FROM changes")
        _ = try bounds.step()
        if bounds.isNull(0) { return seq == 0 ? [] : nil }
        let (first, last) = (bounds.int(0), bounds.int(1))
        if last < seq || first > seq &+ 1 { return last == seq ? [] : nil }
        let st = try db.prepare("SELECT seq, kind, namespace, name, op FROM changes WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind([.int(seq), .int(Int64(max(limit, 1)))])
        var out: [Change] = []
        var expected = seq &+ 1
        while try st.step() {
            // Sequence numbers are contiguous: a gap means pruning ran between the bounds read
            // above and this one (each statement sees its own snapshot): read everything again.
            if st.int(0) != expected { return nil }
            expected &+= 1
            guard let kind = Kind(rawValue: st.text(1)) else { continue }
            out.append(Change(seq: st.int(0), key: ObjectKey(kind, namespace: st.text(2), name: st.text(3)), op: st.text(4)))
        }
        return out
    }

    /// The newest sample of every series whose name starts with `prefix`.
    public func latestMetrics(prefix: String) throws -> [(series: String, ts: Double, value: Double)] {
        let st = try db.prepare("SELECT series, max(ts), value FROM metrics WHERE series >= ? AND series < ? GROUP BY series ORDER BY series")
        _ = st.bind([.text(prefix), .text(prefix + "\u{10FFFF}")])
        var out: [(String, Double, Double)] = []
        while try st.step() { out.append((st.text(0), st.double(1), st.double(2))) }
        return out
    }

    /// Samples of one series, oldest first.
    public func metricSeries(_ series: String, limit: Int = 10000) throws -> [(ts: Double, value: Double)] {
        let st = try db.prepare("SELECT ts, value FROM metrics WHERE series=? ORDER BY ts LIMIT ?")
        _ = st.bind([.text(series), .int(Int64(limit))])
        var out: [(Double, Double)] = []
        while try st.step() { out.append((st.double(0), st.double(1))) }
        return out
    }

    /// Samples of every series whose name starts with `prefix` within [start, end], by series then time.
    public func metrics(prefix: String, start: Double, end: Double, limit: Int = 200_000) throws -> [(series: String, ts: Double, value: Double)] {
        let st = try db.prepare("SELECT series, ts, value FROM metrics WHERE series >= ? AND series < ? AND ts >= ? AND ts <= ? ORDER BY series, ts LIMIT ?")
        _ = st.bind([.text(prefix), .text(prefix + "\u{10FFFF}"), .double(start), .double(end), .int(Int64(limit))])
        var out: [(String, Double, Double)] = []
        while try st.step() { out.append((st.text(0), st.double(1), st.double(2))) }
        return out
    }

    /// A deleted workload as last stored: its object and status JSON and when it was deleted.
    public struct HistoryRow: Sendable {
        public var namespace: String, name: String, uid: String, deletedAt: Double, objectJSON: String, statusJSON: String?
    }

    /// Deleted workloads kept in history, newest deletion first.
    public func history(limit: Int) throws -> [HistoryRow] {
        guard try db.tableExists("history") else { return [] }
        let st = try db.prepare("SELECT namespace, name, uid, deleted_at, object, status FROM history ORDER BY deleted_at DESC LIMIT ?")
        _ = st.bind([.int(Int64(max(limit, 0)))])
        var out: [HistoryRow] = []
        while try st.step() {
            out.append(HistoryRow(namespace: st.text(0), name: st.text(1), uid: st.text(2), deletedAt: st.double(3),
                                  objectJSON: st.text(4), statusJSON: st.isNull(5) ? nil : st.text(5)))
        }
        return out
    }

    /// Workloads in a phase (benchmarks).
    public func workloads(inPhase phase: String) throws -> Int {
        let st = try db.prepare("SELECT count(*) FROM statuses WHERE kind='Workload' AND json_extract(status, '$.phase')=?")
        _ = st.bind([.text(phase)])
        _ = try st.step()
        return Int(st.int(0))
    }

    /// Workloads admitted or given a queue position (benchmarks).
    public func decidedWorkloads() throws -> Int {
        let st = try db.prepare("SELECT count(*) FROM statuses WHERE kind='Workload' AND (json_extract(status, '$.admission') IS NOT NULL OR json_extract(status, '$.queuePosition') IS NOT NULL)")
        _ = try st.step()
        return Int(st.int(0))
    }

    public func admittedWorkloads() throws -> Int {
        let st = try db.prepare("SELECT count(*) FROM statuses WHERE kind='Workload' AND json_extract(status, '$.admission') IS NOT NULL")
        _ = try st.step()
        return Int(st.int(0))
    }

    /// Rows of a statement that selects `objectSelect`'s columns; unknown kinds are skipped.
    static func rows(_ st: Statement) throws -> [ObjectRow] {
        var rows: [ObjectRow] = []
        while try st.step() {
            guard let kind = Kind(rawValue: st.text(0)) else { continue }
            rows.append(ObjectRow(key: ObjectKey(kind, namespace: st.text(1), name: st.text(2)), uid: st.text(3), generation: st.int(4),
                                  specHash: st.text(5), objectHash: st.text(6), creationTime: st.int(7), source: st.text(8),
                                  objectJSON: st.text(9), statusJSON: st.isNull(10) ? nil : st.text(10), updatedAt: st.double(11)))
        }
        return rows
    }

    public struct EventRow: Sendable {
        public var name: String, kind: String, namespace: String, objName: String, type: String, reason: String, message: String
        public var count: Int, first: Double, last: Double
        public init(name: String, kind: String, namespace: String, objName: String, type: String, reason: String, message: String,
                    count: Int, first: Double, last: Double) {
            self.name = name; self.kind = kind; self.namespace = namespace; self.objName = objName; self.type = type
            self.reason = reason; self.message = message; self.count = count; self.first = first; self.last = last
        }
    }

    /// Events, oldest first; optionally for one object, and only those last seen after `since`.
    public func events(kind: String? = nil, namespace: String? = nil, name: String? = nil, since: Double? = nil, limit: Int? = nil) throws -> [EventRow] {
        var sql = "SELECT name, kind, namespace, obj_name, type, reason, message, count, first_ts, last_ts FROM events WHERE 1=1"
        var args: [SQLValue] = []
        if let kind { sql += " AND lower(kind)=lower(?)"; args.append(.text(kind)) }
        if let namespace { sql += " AND namespace=?"; args.append(.text(namespace)) }
        if let name { sql += " AND obj_name=?"; args.append(.text(name)) }
        if let since { sql += " AND last_ts > ?"; args.append(.double(since)) }
        if let limit { sql = "SELECT * FROM (\(sql) ORDER BY last_ts DESC, name DESC LIMIT \(limit)) ORDER BY last_ts, name" } else { sql += " ORDER BY last_ts, name" }
        let st = try db.prepare(sql).bind(args)
        // Int(st.int(_:)) here and below cannot fail: Int is 64 bits on the platforms Gantry builds for.
        var out: [EventRow] = []
        while try st.step() {
            out.append(EventRow(name: st.text(0), kind: st.text(1), namespace: st.text(2), objName: st.text(3), type: st.text(4), reason: st.text(5),
                                message: st.text(6), count: Int(st.int(7)), first: st.double(8), last: st.double(9)))
        }
        return out
    }

    /// Rows in the objects table whose status is still missing (for benchmarks and readiness).
    public func counts() throws -> (objects: Int, withStatus: Int) {
        let st = try db.prepare("SELECT (SELECT count(*) FROM objects), (SELECT count(*) FROM statuses)")
        _ = try st.step()
        return (Int(st.int(0)), Int(st.int(1)))
    }
}
