import GantryAPI

/// What the HTTP API reads and writes, in either mode: the directory-mode daemon (its
/// inventory, status cache, state store and a daemon-owned manifest directory) or the
/// kube-mode controller (its informer caches and API calls). Handlers decide in plain values
/// and call these; implementations may block on I/O but never under a lock others wait on.
public protocol APIBackend: Sendable {
    /// "directory" or "kube".
    var mode: String { get }
    /// Every object of a kind, any order (the handlers filter, sort and page).
    func list(_ kind: Kind) -> [APIObject]
    func get(_ key: ObjectKey) -> APIObject?
    /// Creates an object (already decoded and validated; metadata.uid/generation/creation
    /// are assigned by the backend). 409 when it exists (naming the user's file when a
    /// manifest declares it).
    func create(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject
    /// Replaces the labels, annotations and spec of an existing object written through the
    /// API; 409 naming the file when a user's manifest owns it; 404 when missing.
    func update(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject
    /// Deletes an object written through the API (a manifest-owned one: 409 naming the file).
    func delete(_ key: ObjectKey, by: Principal) throws(APIError)
    /// Stop (true) or resume (false) a workload; works for manifest-owned workloads too (an
    /// override, as `gantry stop` sets).
    func setSuspended(_ key: ObjectKey, _ suspend: Bool, by: Principal) throws(APIError)
    /// Events, oldest first; nil arguments match everything; `limit` keeps the newest.
    func events(_ filter: EventFilter) throws(APIError) -> [EventRecord]
    /// A replica's log (the newest run of `rank`); 404 when there is none.
    func log(_ key: ObjectKey, rank: Int) throws(APIError) -> any LogReader
    /// Metric samples of every series whose name starts with `prefix`, in [start, end].
    /// Series names: `<ns>/<workload>/<metric>{rank=N}` (training) and
    /// `<ns>/<workload>/gpu_utilization_percent{gpu=N}` (GPU: gpu_utilization_percent,
    /// gpu_memory_used_mib, gpu_power_watts).
    func metrics(prefix: String, start: Double, end: Double) throws(APIError) -> [MetricSeries]
    /// Workloads deleted or finished that are kept in history (`?deleted=true`); newest first.
    func history(limit: Int) throws(APIError) -> [APIObject]
    /// Seconds since the epoch (injectable in tests).
    func now() -> Double
    /// The page of a workload list answered without filtering every workload in memory (a
    /// store's index), or nil when this backend cannot answer `query` so: the handler then
    /// applies it to `list(.workload)`. Must equal that answer (items, order, totalCount,
    /// continue) and see every write answered before.
    func workloadPage(_ query: WorkloadQuery) -> WorkloadPage?
    /// The newest sequence number of the change feed (the `metadata.resourceVersion` a list
    /// answer carries), or nil when this backend keeps no feed (a watch then answers 501).
    /// Every change stored after this call gets a larger number, and every change numbered up
    /// to it is visible to `list` and `get` called after it: read it before the data.
    func feedHead() throws(APIError) -> Int64?
    /// The changes numbered after `seq`, oldest first, at most `limit`; nil when the feed no
    /// longer holds every change after `seq` (pruned, a feed started afresh, or a `seq` it
    /// never reached): the watch answers 410 Expired and the client lists again.
    func changes(after seq: Int64, limit: Int) throws(APIError) -> [FeedChange]?
    /// `list(kind)` together with the feed head it is exactly consistent with (every change up
    /// to the head shows in the items, none after it), or nil when the backend cannot read
    /// both at one state now (writes in flight): a watch then falls back to the head read
    /// before the list (at least once, never lost) and retries no more than briefly.
    func feedSnapshot(_ kind: Kind) throws(APIError) -> FeedSnapshot?
    /// Whether what a list reads now is exactly as of feed position `rv` (nothing stored since,
    /// and nothing in memory not yet stored): a later page of a list may then be cut by offset.
    func listUnchanged(since rv: Int64) throws(APIError) -> Bool
}

extension APIBackend {
    public func workloadPage(_ query: WorkloadQuery) -> WorkloadPage? { nil }
    public func feedHead() throws(APIError) -> Int64? { nil }
    public func changes(after seq: Int64, limit: Int) throws(APIError) -> [FeedChange]? { nil }
    public func feedSnapshot(_ kind: Kind) throws(APIError) -> FeedSnapshot? { nil }
    public func listUnchanged(since rv: Int64) throws(APIError) -> Bool { try feedHead() == rv }
}

/// The objects of a kind at one position of the change feed (see `APIBackend.feedSnapshot`).
public struct FeedSnapshot: Sendable {
    public var head: Int64
    public var items: [APIObject]
    public init(head: Int64, items: [APIObject]) { self.head = head; self.items = items }
}

/// One entry of a backend's change feed: an object, its status, or its deletion stored
/// under `seq` (numbers increase by one per change). It names the object, not its content:
/// a watch reads the object's current form.
public struct FeedChange: Sendable, Equatable {
    public var seq: Int64
    public var key: ObjectKey
    /// "object", "status" or "delete".
    public var op: String
    public init(seq: Int64, key: ObjectKey, op: String) { self.seq = seq; self.key = key; self.op = op }
}

/// An object as the API shows it.
public struct APIObject: Sendable {
    public var object: ManifestObject
    public var status: ObjectStatus?
    public var owner: Owner
    /// Set on workloads deleted (kept in history).
    public var deletedAt: Timestamp?
    public init(object: ManifestObject, status: ObjectStatus?, owner: Owner, deletedAt: Timestamp? = nil) {
        self.object = object; self.status = status; self.owner = owner; self.deletedAt = deletedAt
    }
    public var key: ObjectKey { object.key }
    /// The user who created it through the API (annotation `gantry.dev/submitter`), or "".
    public var submitter: String { object.meta.annotations[APIObject.submitterAnnotation] ?? "" }
    public static let submitterAnnotation = "gantry.dev/submitter"
    /// The Unix account replicas of an API-created workload run as (directory mode).
    public static let runAsAnnotation = "gantry.dev/run-as"
}

/// Who declares an object: a user's manifest file (read-only through the API), the API
/// (the daemon-owned directory), or the cluster (kube mode: every object is an API object).
public enum Owner: Sendable, Equatable {
    case manifest(file: String)
    case api
    case cluster
    case system
    public var name: String {
        switch self { case .manifest: "manifest"; case .api: "api"; case .cluster: "cluster"; case .system: "system" }
    }
}

/// An error in the API's one JSON shape:
/// `{"error": {"status": 404, "code": "NotFound", "message": "...", "field": "spec.replicas"}}`.
public struct APIError: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var message: String
    public var field: String?
    public init(_ status: Int, _ code: String, _ message: String, field: String? = nil) {
        self.status = status; self.code = code; self.message = message; self.field = field
    }
    public static func badRequest(_ message: String, field: String? = nil) -> APIError { APIError(400, "BadRequest", message, field: field) }
    public static func notFound(_ message: String) -> APIError { APIError(404, "NotFound", message) }
    public static func conflict(_ message: String) -> APIError { APIError(409, "Conflict", message) }
    public static func forbidden(_ message: String) -> APIError { APIError(403, "Forbidden", message) }
    public static func unauthorized(_ message: String) -> APIError { APIError(401, "Unauthorized", message) }
    public static func unavailable(_ message: String) -> APIError { APIError(503, "Unavailable", message) }
    public static func `internal`(_ message: String) -> APIError { APIError(500, "Internal", message) }

    public func toValue() -> Value {
        var e: [Value.Member] = [.init("status", .int(Int64(status))), .init("code", .string(code)), .init("message", .string(message))]
        if let field { e.append(.init("field", .string(field))) }
        return .object([.init("error", .object(e))])
    }
}

public enum Role: Int, Sendable, Comparable, CaseIterable {
    case viewer = 0, editor = 1, admin = 2
    public static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
    public var name: String { switch self { case .viewer: "viewer"; case .editor: "editor"; case .admin: "admin" } }
}

/// The caller of a request, from its bearer token.
public struct Principal: Sendable, Equatable {
    public var user: String
    public var role: Role
    /// Namespaces the token may act in; nil: all.
    public var namespaces: [String]?
    /// The Unix account an API-created replica runs as (directory mode); nil: no mapping.
    public var unixUser: String?
    public init(user: String, role: Role, namespaces: [String]? = nil, unixUser: String? = nil) {
        self.user = user; self.role = role; self.namespaces = namespaces; self.unixUser = unixUser
    }
    public func may(namespace: String) -> Bool { namespaces.map { $0.contains(namespace) || $0.contains("*") } ?? true }
    /// No tokens file (loopback only): everyone is an admin called "anonymous".
    public static let anonymous = Principal(user: "anonymous", role: .admin)
}

public struct EventFilter: Sendable, Equatable {
    public var kind: Kind?
    public var namespace: String?
    public var name: String?
    /// Only events whose message names this replica (`<workload>-worker-<rank>` / rank N).
    public var since: Double?
    public var until: Double?
    public var limit: Int?
    public init(kind: Kind? = nil, namespace: String? = nil, name: String? = nil, since: Double? = nil, until: Double? = nil, limit: Int? = nil) {
        self.kind = kind; self.namespace = namespace; self.name = name; self.since = since; self.until = until; self.limit = limit
    }
}

public struct EventRecord: Sendable, Equatable {
    public var type: String
    public var reason: String
    public var message: String
    public var kind: String
    public var namespace: String
    public var name: String
    public var count: Int
    public var firstTimestamp: Double
    public var lastTimestamp: Double
    public init(type: String, reason: String, message: String, kind: String, namespace: String, name: String, count: Int, firstTimestamp: Double, lastTimestamp: Double) {
        self.type = type; self.reason = reason; self.message = message; self.kind = kind; self.namespace = namespace; self.name = name
        self.count = count; self.firstTimestamp = firstTimestamp; self.lastTimestamp = lastTimestamp
    }
}

public struct MetricSeries: Sendable, Equatable {
    public var name: String
    /// (seconds since the epoch, value), oldest first.
    public var samples: [Sample]
    public struct Sample: Sendable, Equatable {
        public var ts: Double
        public var value: Double
        public init(ts: Double, value: Double) { self.ts = ts; self.value = value }
    }
    public init(name: String, samples: [Sample]) { self.name = name; self.samples = samples }
}

/// A replica's output. `read` calls `emit` with chunks of whole lines (the last chunk may lack
/// its newline when the log ends without one) and returns when the log is read (follow:
/// also when the replica has ended and everything is read) or when `emit` returns false.
public protocol LogReader: Sendable {
    func read(_ options: LogOptions, emit: ([UInt8]) -> Bool) throws(APIError)
}

public struct LogOptions: Sendable, Equatable {
    /// The last N lines only.
    public var tail: Int?
    /// Only lines written in the last N seconds.
    public var sinceSeconds: Int?
    /// Prefix each line with an RFC 3339 time (when the supervisor read it).
    public var timestamps = false
    public var follow = false
    /// Stop after this many bytes (nil: no limit).
    public var limitBytes: Int?
    public init(tail: Int? = nil, sinceSeconds: Int? = nil, timestamps: Bool = false, follow: Bool = false, limitBytes: Int? = nil) {
        self.tail = tail; self.sinceSeconds = sinceSeconds; self.timestamps = timestamps; self.follow = follow; self.limitBytes = limitBytes
    }
}
