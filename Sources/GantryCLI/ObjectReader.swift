import GantryAPI
import StateStore

/// What `get`, `describe` and `events` read: stored objects (object JSON without status,
/// status JSON apart), events and metric samples. `StateReader` reads a state directory;
/// `KubeReader` reads a cluster and builds the same rows, so every renderer works unchanged.
protocol ObjectReader {
    /// Objects of a kind ordered by namespace then name: all namespaces when `namespace` is
    /// nil (ignored for cluster-scoped kinds); one object at most when `name` is given.
    func objects(kind: Kind, namespace: String?, name: String?) throws -> [ObjectRow]
    /// Workloads whose `spec.queue` is `queue`, any namespace, ordered by namespace then name.
    func workloads(queue: String) throws -> [ObjectRow]
    /// Events oldest first (by last time, then name); `kind` matches case-insensitively;
    /// `namespace` "" means a cluster-scoped object, nil any; only those last seen after
    /// `since`; the newest `limit`.
    func events(kind: String?, namespace: String?, name: String?, since: Double?, limit: Int?) throws -> [StateReader.EventRow]
    /// The newest sample of every series whose name starts with `prefix` (none in kube mode).
    func latestMetrics(prefix: String) throws -> [(series: String, ts: Double, value: Double)]
}

extension StateReader: ObjectReader {}

/// Where a CLI command reads and acts: a state directory, a cluster (`--kube`), or a
/// daemon's HTTP API (`--server`).
enum Backend {
    case directory(String)
    case kube(KubeReader)
    case remote(RemoteClient)

    func reader() throws -> any ObjectReader {
        switch self {
        case .directory(let dir): return try StateReader(directory: dir)
        case .kube(let k): return k
        case .remote(let c): return RemoteReader(c)
        }
    }

    /// Seconds between polls of `-w`: a state directory is cheap to read, a server less so.
    var pollInterval: Double { if case .directory = self { return 0.5 } else { return 1 } }
}
