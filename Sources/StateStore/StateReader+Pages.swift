import CSQLite
import GantryAPI

extension StateReader {
    /// `get workloads -o name`'s output for `q`: one line per workload, `prefix` then its
    /// name, copied from the index's rows into one buffer (at 100,000 workloads, building a
    /// key and a string per row cost several times the query); nil when the database has no
    /// workload index.
    public func workloadNameLines(_ q: WorkloadPageQuery, prefix: String) throws -> [UInt8]? {
        guard try hasWorkloadIndex() else { return nil }
        let (sql, args) = try pageSQL(q, select: "SELECT w.namespace, w.name FROM wl_index w")
        let st = try db.prepare(sql).bind(args)
        let head = Array(prefix.utf8)
        var out: [UInt8] = []
        while try st.step() {
            out += head
            if let p = sqlite3_column_text(st.s, 1) {
                out += UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(st.s, 1)))
            }
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }
}

/// A workload of a queue as `describe queue` shows it: its index fields and status JSON.
public struct QueueMemberRow: Sendable {
    public var key: ObjectKey
    public var priority: Int64
    public var gpus: Int64
    public var creationTime: Int64
    public var statusJSON: String?
}

extension StateReader {
    /// The workloads whose spec.queue is exactly `queue`, by namespace and name, with the
    /// index's priority and GPU total (what `workloads(queue:)` callers parse each object
    /// for); nil when the database has no workload index.
    public func queueMembers(_ queue: String) throws -> [QueueMemberRow]? {
        guard try hasWorkloadIndex() else { return nil }
        let st = try db.prepare("""
            SELECT w.namespace, w.name, w.priority, w.gpus, w.created, s.status
            FROM wl_index w CROSS JOIN objects o ON o.kind='Workload' AND o.namespace=w.namespace AND o.name=w.name
            LEFT JOIN statuses s ON s.kind='Workload' AND s.namespace=w.namespace AND s.name=w.name
            WHERE w.queue=? AND (CASE WHEN json_valid(o.object) THEN json_extract(o.object, '$.spec.queue') END)=?
            ORDER BY w.queue, w.namespace, w.name
            """).bind([.text(queue.lowercased()), .text(queue)])
        var out: [QueueMemberRow] = []
        while try st.step() {
            out.append(QueueMemberRow(key: ObjectKey(.workload, namespace: st.text(0), name: st.text(1)), priority: st.int(2), gpus: st.int(3),
                                      creationTime: st.int(4), statusJSON: st.isNull(5) ? nil : st.text(5)))
        }
        return out
    }
}

extension StateReader {
    /// The keys of a page and how many workloads match `q` in all (offset and limit aside),
    /// read in one read transaction (one snapshot); nil when the database has no workload index.
    public func workloadKeysAndCount(_ q: WorkloadPageQuery) throws -> (keys: [ObjectKey], total: Int)? {
        guard try hasWorkloadIndex() else { return nil }
        try db.exec("BEGIN")
        defer { try? db.exec("COMMIT") }
        guard let keys = try workloadKeys(q) else { return nil }
        // A short page is the last: the count is what precedes it plus what it holds.
        if let limit = q.limit, keys.count < limit, !keys.isEmpty || q.offset == 0 {
            return (keys, max(q.offset, 0) + keys.count)
        }
        var all = q
        all.limit = nil; all.offset = 0; all.descending = false; all.tiesAscending = false; all.sort = .name
        // The count's own plan: no sort to walk, so the most selective filter's index.
        let (sql, args) = try pageSQL(all, select: "SELECT 1 FROM wl_index w")
        let st = try db.prepare("SELECT count(*) FROM (" + sql + ")").bind(args)
        _ = try st.step()
        return (keys, Int(clamping: st.int(0)))
    }
}
