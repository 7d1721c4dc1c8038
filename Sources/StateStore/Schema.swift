/// The state database's schema. Version 1 holds what issue 2 writes (objects with status,
/// events) and the tables later parts fill (replica records, overrides, metric samples).
/// Version 2 adds the workload index (`wl_index`, `wl_labels`: the fields `get` filters and
/// sorts on, kept by the writer in the same transaction as the object and status rows) and
/// the change feed (`changes`). A version-1 database is migrated when the daemon opens it
/// (`StateStore.migrate`); readers fall back to scanning until `meta.workload_index` is set.
enum Schema {
    static let version = 2
    /// Change-feed rows kept: a watcher further behind re-reads its whole selection.
    static let changesKept: Int64 = 65536
    static let statements: [String] = [
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS objects(
          kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
          uid TEXT NOT NULL, generation INTEGER NOT NULL, spec_hash TEXT NOT NULL, object_hash TEXT NOT NULL,
          creation_time INTEGER NOT NULL, source TEXT NOT NULL,
          object TEXT NOT NULL, updated_at REAL NOT NULL)
        """,
        "CREATE UNIQUE INDEX IF NOT EXISTS objects_key ON objects(kind, namespace, name)",
        // Status apart from the object, so frequent status writes do not rewrite the spec.
        """
        CREATE TABLE IF NOT EXISTS statuses(
          kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, updated_at REAL NOT NULL,
          PRIMARY KEY(kind, namespace, name)) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS events(
          name TEXT PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL, obj_name TEXT NOT NULL,
          type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, count INTEGER NOT NULL,
          first_ts REAL NOT NULL, last_ts REAL NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS events_obj ON events(kind, namespace, obj_name)",
        "CREATE INDEX IF NOT EXISTS events_last ON events(last_ts)",
        """
        CREATE TABLE IF NOT EXISTS replicas(
          namespace TEXT NOT NULL, workload TEXT NOT NULL, rank INTEGER NOT NULL, dispatch INTEGER NOT NULL,
          node TEXT NOT NULL, gpus TEXT NOT NULL, pid INTEGER, start_time REAL, end_time REAL, exit_code INTEGER,
          state TEXT NOT NULL, log_path TEXT, PRIMARY KEY(namespace, workload, rank, dispatch))
        """,
        """
        CREATE TABLE IF NOT EXISTS overrides(
          kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
          generation INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY(kind, namespace, name, field))
        """,
        "CREATE TABLE IF NOT EXISTS metrics(series TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS metrics_series ON metrics(series, ts)",
        // One sample per series and time: metric lines read again after a restart are not doubled.
        "CREATE UNIQUE INDEX IF NOT EXISTS metrics_point ON metrics(series, ts)",
        // Deleted workloads as they were last stored (object and status), for the API's
        // `?deleted=true`; kept for the daemon's --history-retention.
        """
        CREATE TABLE IF NOT EXISTS history(
          namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL, deleted_at REAL NOT NULL,
          object TEXT NOT NULL, status TEXT, PRIMARY KEY(namespace, name, uid))
        """,
        "CREATE INDEX IF NOT EXISTS history_deleted ON history(deleted_at)",
        // One row per stored workload: what filters and sorts read, lower-cased where the CLI
        // compares without case. `phase` follows the status row; the rest follow the object row.
        """
        CREATE TABLE IF NOT EXISTS wl_index(
          namespace TEXT NOT NULL, name TEXT NOT NULL, queue TEXT NOT NULL, phase TEXT NOT NULL DEFAULT '',
          type TEXT NOT NULL, priority INTEGER NOT NULL, gpus INTEGER NOT NULL, created INTEGER NOT NULL,
          name_lc TEXT NOT NULL, display_lc TEXT NOT NULL,
          PRIMARY KEY(namespace, name)) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS wl_labels(
          namespace TEXT NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
          PRIMARY KEY(namespace, name, key)) WITHOUT ROWID
        """,
        // The change feed: one row per stored object, status or delete, in commit order. No
        // AUTOINCREMENT (a write per insert): pruning keeps the newest rows, so seq never goes back.
        """
        CREATE TABLE IF NOT EXISTS changes(
          seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, op TEXT NOT NULL)
        """,
    ] + workloadIndexes.map(\.create)

    /// The workload index's secondary indexes. Every open creates those missing, so a
    /// database left without them (a crash during an initial load, which builds them at its
    /// end: `StateStore.beginBulkLoad`) is indexed again before anything reads it.
    static let workloadIndexes: [(name: String, create: String)] = [
        ("wl_index_queue", "CREATE INDEX IF NOT EXISTS wl_index_queue ON wl_index(queue, namespace, name)"),
        ("wl_index_phase", "CREATE INDEX IF NOT EXISTS wl_index_phase ON wl_index(phase, namespace, name)"),
        // Sort orders; phase and queue ride along so a filter on them is checked in the index.
        ("wl_index_priority", "CREATE INDEX IF NOT EXISTS wl_index_priority ON wl_index(priority, namespace, name, phase, queue)"),
        ("wl_index_gpus", "CREATE INDEX IF NOT EXISTS wl_index_gpus ON wl_index(gpus, namespace, name, phase, queue)"),
        ("wl_index_created", "CREATE INDEX IF NOT EXISTS wl_index_created ON wl_index(created, namespace, name, phase, queue)"),
    ]
}
