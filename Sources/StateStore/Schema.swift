/// The state database's schema. Version 1 holds what issue 2 writes (objects with status,
/// events) and the tables later parts fill (replica records, overrides, metric samples).
enum Schema {
    static let version = 1
    static let statements = [
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
    ]
}
