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
        let sql = StateReader.objectSelect + " WHERE o.kind='Workload' AND json_extract(o.object, '$.spec.queue')=? ORDER BY o.namespace, o.name"
        return try StateReader.rows(db.prepare(sql).bind([.text(queue)]))
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
