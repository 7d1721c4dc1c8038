import Foundation
import Synchronization
import GantryAPI
import GantryServer
import ControllerRuntime
import StateStore
import Controllers

/// The HTTP API's backend in directory mode. Reads come from the daemon's memory (the
/// inventory and the status cache) and, for events, metrics and history, from the state
/// database through read-only connections. Writes never touch the user's spec directory:
/// objects created or patched through the API are files in `<stateDir>/api-manifests`, written
/// atomically (temp file, fsync, rename or link, fsync of the directory) before the request is
/// answered, and read back by a directory source like the spec directory's, so they survive
/// restarts and `kill -9`. An object a user's manifest declares is the user's.
public final class DirectoryBackend: APIBackend {
    public let mode = "directory"
    let inventory: Inventory
    let layers: ManifestLayers
    let overrides: Overrides
    let events: EventRecorder
    let queue: WorkQueue<ObjectKey>
    let clock: any Clock
    let stateDir: String
    /// The daemon-owned manifest directory.
    public let apiDir: String
    /// How long a write waits for the directory source to bring the object into force.
    let applyTimeout: Double
    let readers = Mutex<[ReaderBox]>([])
    /// The Unix account API-created workloads of a request without a token (no tokens file,
    /// loopback only) run as: `--run-as`, else the daemon's own account unless that is root.
    /// nil: no annotation, and the lifecycle refuses to run such a workload as root.
    let anonymousRunAs: String?
    /// Writes wait for the initial sync: before it, a user manifest not read yet could be
    /// missed by the ownership check.
    public let ready = Atomic<Bool>(false)
    /// Keys with a write in progress: one write per object at a time (a delete and a patch
    /// racing could otherwise rename the file back after the delete answered).
    let writing = Mutex<Set<ObjectKey>>([])
    /// Whether the daemon runs as root (an API workload without an account would run as root).
    let daemonIsRoot = geteuid() == 0

    final class ReaderBox: @unchecked Sendable {
        // Used by one request at a time: taken from the pool, returned after.
        let reader: StateReader
        init(_ r: StateReader) { reader = r }
    }

    /// The state store's `settledGeneration` (nil: lists come from memory only).
    let settled: (@Sendable () -> UInt64?)?
    /// Workload pages answered through the state database's workload index (tests, logs).
    public let indexPages = Atomic<Int>(0)

    /// When a list page is read through the workload index.
    public enum IndexPages: Sendable {
        /// Whenever the index can answer the query exactly and the store has every change.
        case always
        /// Only when the in-memory list was built and would have to be rebuilt first
        /// (something changed since): a warm list answers a page in a scan of compact columns,
        /// faster than the index's COUNT of a filter matching most workloads (at 20,000:
        /// p50 8 ms in memory against 20–23 ms through the index for 15,000 matches), while
        /// a rebuild costs 50–100 ms at 100,000. With no list built yet the first list builds it.
        case whenMemoryIsStale
        case never
    }
    let indexPagesPolicy: IndexPages

    public init(inventory: Inventory, layers: ManifestLayers, overrides: Overrides, events: EventRecorder, queue: WorkQueue<ObjectKey>,
                clock: any Clock, stateDir: String, applyTimeout: Double = 5, anonymousRunAs: String? = nil,
                settled: (@Sendable () -> UInt64?)? = nil, indexPages: IndexPages = .whenMemoryIsStale) {
        self.indexPagesPolicy = indexPages
        self.anonymousRunAs = anonymousRunAs
        self.settled = settled
        self.inventory = inventory; self.layers = layers; self.overrides = overrides; self.events = events; self.queue = queue
        self.clock = clock; self.stateDir = stateDir; self.applyTimeout = applyTimeout
        apiDir = DirectoryBackend.apiDir(stateDir)
    }

    public static func apiDir(_ stateDir: String) -> String { stateDir + "/api-manifests" }

    public func now() -> Double { clock.now() }

    // MARK: reads

    func view(_ obj: ManifestObject) -> APIObject {
        var status = inventory.statuses.get(obj.key)
        if case .workload(var w)? = status, let o = overrides.get(obj.key), o.generation == obj.meta.generation {
            w.override = o
            status = .workload(w)
        }
        return APIObject(object: obj, status: status, owner: DirectoryBackend.owner(obj.source))
    }

    static func owner(_ ref: SourceRef) -> Owner {
        if ref.isAPIOwned { return .api }
        if ref.file == LocalNode.sourceFile { return .system }
        return .manifest(file: ref.description)
    }

    /// The last list of each kind with the versions of what it was built from: while nothing
    /// changed, the same array comes back (the query's index of it is reused too).
    struct Cached { var versions: (Int, Int, Int); var items: [APIObject] }
    let cache = Mutex<[Kind: Cached]>([:])

    func currentVersions() -> (Int, Int, Int) {
        (inventory.desired.version.load(ordering: .acquiring), inventory.statuses.version.load(ordering: .acquiring),
         overrides.version.load(ordering: .acquiring))
    }

    public func list(_ kind: Kind) -> [APIObject] {
        let versions = currentVersions()
        if let c = cache.withLock({ $0[kind] }), c.versions == versions { return c.items }
        let items = inventory.desired.values { $0.spec.kind == kind }.map(view)
        cache.withLock { $0[kind] = Cached(versions: versions, items: items) }
        return items
    }

    public func get(_ key: ObjectKey) -> APIObject? { inventory.desired.get(key).map(view) }

    /// A workload page whose keys and totalCount come from the state database's workload
    /// index (the CLI's page query) and whose objects and statuses come from memory: no list
    /// of every workload is built or filtered. Only while the database holds every change made
    /// in memory (nothing between a change and its dirty mark, nothing pending or being
    /// written in the store, the same before and after the query); else, and for queries the
    /// index cannot answer exactly (`WorkloadQuery.indexQuery`), nil: the list from memory.
    public func workloadPage(_ query: WorkloadQuery) -> WorkloadPage? {
        guard let settled, indexPagesPolicy != .never, let iq = query.indexQuery else { return nil }
        if indexPagesPolicy == .whenMemoryIsStale {
            guard let c = cache.withLock({ $0[.workload] }), c.versions != currentVersions() else { return nil }
        }
        // In this order: a change finished before the request began is marked in the store
        // by the time the counters read 0, so the store is either still writing it (nil) or
        // has committed it.
        guard memoryStored, let before = settled() else { return nil }
        let pq = DirectoryBackend.pageQuery(iq)
        // try? flattens: nil also when the database has no workload index yet.
        guard let read = try? withReader({ r in try r.workloadKeysAndCount(pq) }), settled() == before else { return nil }
        let (keys, total) = read
        guard let page = query.page(keys: keys, totalCount: total, object: { k in inventory.desired.get(k).map(view) }),
              // Each item, as memory has it now, passes the filters (the index keeps some fields
              // lower-cased; a change racing this read): else the answer from memory.
              page.items.allSatisfy({ query.matches($0) }) else { return nil }
        indexPages.add(1, ordering: .relaxed)
        return page
    }

    static func pageQuery(_ iq: WorkloadIndexQuery) -> WorkloadPageQuery {
        var q = WorkloadPageQuery()
        q.namespace = iq.namespace
        q.phases = iq.phases ?? []
        q.types = iq.types ?? []
        q.queues = iq.queues ?? []
        q.nameOnlyContains = iq.nameContains
        q.selectors = iq.labels.map { ($0.key, $0.op, $0.value) }
        q.numbers = iq.numbers.map { ($0.field, $0.op, $0.value) }
        q.createdFrom = iq.createdFrom
        q.createdTo = iq.createdTo
        switch iq.sort {
        case .namespaceName: q.sort = .name
        case .createdAt: q.sort = .creationTime
        case .priority: q.sort = .priority
        case .gpus: q.sort = .gpus
        }
        q.descending = iq.descending
        q.tiesAscending = true
        q.offset = iq.offset
        q.limit = iq.limit
        return q
    }

    func withReader<T>(_ body: (StateReader) throws -> T) throws(APIError) -> T {
        let box: ReaderBox
        if let b = readers.withLock({ $0.popLast() }) { box = b } else {
            do { box = ReaderBox(try StateReader(directory: stateDir)) } catch { throw .unavailable("cannot read the state database: \(error)") }
        }
        do {
            let v = try body(box.reader)
            // A pooled reader goes back with no snapshot open, so it never holds a checkpoint off.
            box.reader.endReads()
            readers.withLock { if $0.count < 8 { $0.append(box) } }
            return v
        } catch {
            throw .internal("reading the state database: \(error)")
        }
    }

    // MARK: change feed (the state store's `changes` table)

    /// The store's settled generation and the feed head read under it: while the generation
    /// stays the same, nothing was committed, so a watch at that head reads no SQL.
    let feedSeen = Mutex<(generation: UInt64, head: Int64)?>(nil)
    /// Feed reads that ran SQL (tests: a watch's cost follows the changes, not the workloads).
    public let feedReads = Atomic<Int>(0)
    /// Changes read from the feed in all.
    public let feedRowsRead = Atomic<Int>(0)

    /// Before the initial sync, memory may lack objects the store holds from the last run (a
    /// list would then be behind its own resourceVersion): 503, so a list carries none then.
    public func feedHead() throws(APIError) -> Int64? {
        guard ready.load(ordering: .acquiring) else { throw .unavailable("the daemon is still reading its manifests; list and watch again in a moment") }
        let before = settled?()
        if let before, let seen = feedSeen.withLock({ $0 }), seen.generation == before { return seen.head }
        feedReads.add(1, ordering: .relaxed)
        let head = try withReader { try $0.lastChangeSeq() }
        if let before, settled?() == before { feedSeen.withLock { $0 = (before, head) } }
        return head
    }

    /// Only while memory and the store agree (as `workloadPage` checks): no change between
    /// memory and its dirty mark, nothing pending or being written in the store, and the same
    /// settled generation before and after reading the head and the list.
    public func feedSnapshot(_ kind: Kind) throws(APIError) -> FeedSnapshot? {
        guard let settled else { return nil }
        guard memoryStored, let before = settled(), let head = try feedHead() else { return nil }
        let items = list(kind)
        guard memoryStored, settled() == before else { return nil }
        return FeedSnapshot(head: head, items: items)
    }

    /// Whether no change is between memory and its dirty mark in the store (objects and
    /// statuses): with the store's settled generation, whether memory and the store agree.
    var memoryStored: Bool {
        inventory.unpersisted.load(ordering: .sequentiallyConsistent) == 0 && inventory.statuses.unpersisted.load(ordering: .sequentiallyConsistent) == 0
    }

    public func listUnchanged(since rv: Int64) throws(APIError) -> Bool {
        guard let settled else { return false }
        // Writes in flight (an event, a batch being committed) say nothing yet: wait for a
        // quiet moment briefly, as a watch's snapshot does; a moved head answers at once.
        let until = ProcessInfo.processInfo.systemUptime + 0.5
        while true {
            if memoryStored, let before = settled() {
                guard try feedHead() == rv else { return false }
                if settled() == before { return true }
            }
            if ProcessInfo.processInfo.systemUptime >= until { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    public func changes(after seq: Int64, limit: Int) throws(APIError) -> [FeedChange]? {
        let before = settled?()
        if let before, let seen = feedSeen.withLock({ $0 }), seen.generation == before, seq == seen.head { return [] }
        feedReads.add(1, ordering: .relaxed)
        let rows = try withReader { try $0.changes(after: seq, limit: limit) }
        guard let rows else { return nil }
        feedRowsRead.add(rows.count, ordering: .relaxed)
        // Whole (fewer than asked) and nothing committed meanwhile: the head is known for this generation.
        if let before, rows.count < max(limit, 1), settled?() == before {
            let head = rows.last?.seq ?? seq
            feedSeen.withLock { $0 = (before, head) }
        }
        return rows.map { FeedChange(seq: $0.seq, key: $0.key, op: $0.op) }
    }

    public func events(_ f: EventFilter) throws(APIError) -> [GantryServer.EventRecord] {
        let rows = try withReader { r in
            try r.events(kind: f.kind?.rawValue, namespace: f.namespace, name: f.name, since: f.since, limit: f.until == nil ? f.limit : nil)
        }
        var out = rows.map { e in
            GantryServer.EventRecord(type: e.type, reason: e.reason, message: e.message, kind: e.kind, namespace: e.namespace, name: e.objName,
                                     count: e.count, firstTimestamp: e.first, lastTimestamp: e.last)
        }
        if let until = f.until {
            out.removeAll { $0.lastTimestamp > until }
            if let limit = f.limit, out.count > limit { out.removeFirst(out.count - limit) }
        }
        return out
    }

    public func metrics(prefix: String, start: Double, end: Double) throws(APIError) -> [MetricSeries] {
        let rows = try withReader { try $0.metrics(prefix: prefix, start: start, end: end) }
        var out: [MetricSeries] = []
        for r in rows {
            if out.last?.name != r.series { out.append(MetricSeries(name: r.series, samples: [])) }
            out[out.count - 1].samples.append(.init(ts: r.ts, value: r.value))
        }
        return out
    }

    public func history(limit: Int) throws(APIError) -> [APIObject] {
        let rows = try withReader { try $0.history(limit: limit) }
        return rows.compactMap { r in
            let row = ObjectRow(key: ObjectKey(.workload, namespace: r.namespace, name: r.name), uid: r.uid, generation: 0, specHash: "", objectHash: "",
                                creationTime: 0, source: "", objectJSON: r.objectJSON, statusJSON: r.statusJSON, updatedAt: r.deletedAt)
            guard let obj = Inventory.decodeStoredObject(row) else { return nil }
            let status = r.statusJSON.flatMap { try? JSON.parse($0) }.map { ObjectStatus.from($0, kind: .workload) }
            let owner: Owner = obj.source.isAPIOwned ? .api : .manifest(file: obj.source.description)
            return APIObject(object: obj, status: status, owner: owner, deletedAt: Timestamp(secondsSince1970: r.deletedAt))
        }
    }

    public func log(_ key: ObjectKey, rank: Int) throws(APIError) -> any LogReader {
        guard let obj = get(key) else { throw .notFound("workload \(key.qualifiedName) not found") }
        let replicas = obj.object.spec.workload?.replicas ?? 0
        guard rank >= 0, rank < max(replicas, 1) || obj.status?.workload?.replicas.contains(where: { $0.rank == rank }) == true else {
            throw .notFound("workload \(key.qualifiedName) has no replica \(rank)")
        }
        let path = ProcessRuntime.logPath(stateDir: stateDir, key, rank: rank)
        let inventory = self.inventory
        let clock = self.clock
        // Live (a follow waits for more) while the workload exists and has not finished; a
        // workload just created, with no status yet or one of an older generation, is live.
        return FileLogReader(path: path, times: { LogTimes.load(path: $0) }, now: { clock.now() }, isLive: {
            guard let obj = inventory.desired.get(key) else { return false }
            guard let w = inventory.statuses.get(key)?.workload, w.observedGeneration >= obj.meta.generation else { return true }
            return !(w.phase == .succeeded || w.phase == .failed || w.phase == .stopped)
        })
    }

    // MARK: writes

    /// The file of an object in the API's directory. Names and namespaces are DNS-1123 labels
    /// (what the decoder accepts), so no key can name a path outside it (no "..", no "/").
    func file(_ key: ObjectKey) throws(APIError) -> String {
        guard ManifestDecoder.isDNS1123Label(key.name), !key.kind.isNamespaced || ManifestDecoder.isDNS1123Label(key.namespace) else {
            throw .notFound("\(key.kind.rawValue) \(key.qualifiedName) not found")
        }
        return key.kind.isNamespaced ? "\(apiDir)/\(key.kind.plural)/\(key.namespace)/\(key.name).json" : "\(apiDir)/\(key.kind.plural)/\(key.name).json"
    }

    static func manifestJSON(_ obj: ManifestObject) -> String {
        var meta: [Value.Member] = [.init("name", .string(obj.meta.name))]
        if obj.key.kind.isNamespaced { meta.append(.init("namespace", .string(obj.meta.namespace))) }
        if !obj.meta.labels.isEmpty { meta.append(.init("labels", .stringMap(obj.meta.labels))) }
        var ann = obj.meta.annotations
        ann["gantry.dev/source"] = nil
        if !ann.isEmpty { meta.append(.init("annotations", .stringMap(ann))) }
        let spec = obj.spec.toValue()
        return JSON.encode(.object([.init("apiVersion", .string(gantryAPIVersion)), .init("kind", .string(obj.key.kind.rawValue)),
                                    .init("metadata", .object(meta)), .init("spec", spec)]), pretty: true) + "\n"
    }

    /// The file's owner check: a user's manifest declares the key (409 naming its file).
    func refuseManifestOwned(_ key: ObjectKey, _ verb: String) throws(APIError) {
        guard let cur = inventory.desired.get(key) else { return }
        switch DirectoryBackend.owner(cur.source) {
        case .manifest(let file):
            throw .conflict("\(key.kind.rawValue) \(key.qualifiedName) is declared by the manifest \(file); \(verb) it by editing that file (the API does not write users' manifests)")
        case .system:
            throw .conflict("\(key.kind.rawValue) \(key.qualifiedName) stands for this machine (no Node is declared); declare Nodes in manifests to manage them")
        default: return
        }
    }

    /// Runs `body` as the only write of `key` (409 while another is in progress), after the
    /// initial sync (503 before).
    func exclusiveWrite<T>(_ key: ObjectKey, _ body: () throws(APIError) -> T) throws(APIError) -> T {
        guard ready.load(ordering: .acquiring) else { throw .unavailable("the daemon is still reading its manifests; try again in a moment") }
        guard writing.withLock({ $0.insert(key).inserted }) else {
            throw .conflict("another change of \(key.kind.rawValue) \(key.qualifiedName) is in progress; try again")
        }
        defer { _ = writing.withLock { $0.remove(key) } }
        return try body()
    }

    public func create(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject {
        var object = object
        if object.key.kind == .workload, by == .anonymous, object.meta.annotations[APIObject.runAsAnnotation] == nil, let u = anonymousRunAs {
            object.meta.annotations[APIObject.runAsAnnotation] = u
        }
        if object.key.kind == .workload, daemonIsRoot, object.meta.annotations[APIObject.runAsAnnotation] == nil {
            throw .forbidden("no Unix account is mapped to user \(by.user): the daemon runs as root and never runs an API-created workload as root unless an admin's mapping says so (the tokens file's UNIX_ACCOUNT column, or --run-as without tokens)")
        }
        return try exclusiveWrite(object.key) { () throws(APIError) -> APIObject in try createLocked(object) }
    }

    func createLocked(_ object: ManifestObject) throws(APIError) -> APIObject {
        let key = object.key
        try refuseManifestOwned(key, "change")
        if inventory.desired.get(key) != nil || layers.apiObject(key) != nil {
            throw .conflict("\(key.kind.rawValue) \(key.qualifiedName) already exists")
        }
        try AtomicFile.write(DirectoryBackend.manifestJSON(object), to: try file(key), exclusive: true)
        return try awaitApplied(key) { $0.spec == object.spec && $0.meta.labels == object.meta.labels }
    }

    public func update(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject {
        try exclusiveWrite(object.key) { () throws(APIError) -> APIObject in try updateLocked(object) }
    }

    func updateLocked(_ object: ManifestObject) throws(APIError) -> APIObject {
        let key = object.key
        try refuseManifestOwned(key, "change")
        guard inventory.desired.get(key) != nil || layers.apiObject(key) != nil else { throw .notFound("\(key.kind.rawValue) \(key.qualifiedName) not found") }
        try AtomicFile.write(DirectoryBackend.manifestJSON(object), to: try file(key), exclusive: false)
        return try awaitApplied(key) { $0.spec == object.spec && $0.meta.labels == object.meta.labels && $0.meta.annotations.filter { $0.key != "gantry.dev/source" } == object.meta.annotations.filter { $0.key != "gantry.dev/source" } }
    }

    public func delete(_ key: ObjectKey, by: Principal) throws(APIError) {
        try exclusiveWrite(key) { () throws(APIError) in
            try refuseManifestOwned(key, "delete")
            let path = try file(key)
            guard FileManager.default.fileExists(atPath: path) else { throw .notFound("\(key.kind.rawValue) \(key.qualifiedName) not found") }
            try AtomicFile.remove(path)
            // Until the source has taken it out (or a user's manifest declares it meanwhile).
            let deadline = monotonicSeconds() + applyTimeout
            while let cur = inventory.desired.get(key), cur.source.isAPIOwned, monotonicSeconds() < deadline { usleep(2000) }
        }
    }

    public func setSuspended(_ key: ObjectKey, _ suspend: Bool, by: Principal) throws(APIError) {
        guard let obj = inventory.desired.get(key), obj.spec.workload != nil else { throw .notFound("workload \(key.qualifiedName) not found") }
        let verb = suspend ? "stop" : "resume"
        overrides.set(key, SuspendOverride(suspend: suspend, generation: obj.meta.generation, at: clock.timestamp, by: "\(by.user) (API \(verb))"))
        events.normal(InvolvedObject(key), suspend ? "StopRequested" : "ResumeRequested",
                      "\(verb) through the API by \(by.user): spec.suspend is \(suspend) until the spec changes (no file is rewritten)")
        queue.add(key)
    }

    /// Waits (bounded) until the directory source has brought the written object into force.
    func awaitApplied(_ key: ObjectKey, _ matches: (ManifestObject) -> Bool) throws(APIError) -> APIObject {
        let deadline = monotonicSeconds() + applyTimeout
        while true {
            if let obj = inventory.desired.get(key), obj.source.isAPIOwned, matches(obj) { return view(obj) }
            if monotonicSeconds() >= deadline { break }
            usleep(2000)
        }
        if let obj = layers.apiObject(key) { return view(obj) }
        throw APIError(504, "Timeout", "the object was written to \((try? file(key)) ?? apiDir) but did not come into force within \(Int(applyTimeout)) s; see the daemon's log and the object's events")
    }
}

/// Files written whole or not at all: a temp file beside the target, fsync, then rename (or
/// link, which fails when the target exists), then fsync of the directory.
enum AtomicFile {
    static func write(_ text: String, to path: String, exclusive: Bool) throws(APIError) {
        let dir = (path as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw .internal("cannot create \(dir): \(error)")
        }
        let tmp = "\(dir)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ioError("create", tmp) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { let e = ioError("write", tmp); close(fd); unlink(tmp); throw e }
            done += n
        }
        guard fsync(fd) == 0 else { let e = ioError("fsync", tmp); close(fd); unlink(tmp); throw e }
        close(fd)
        if exclusive {
            let r = link(tmp, path)
            let err = errno
            unlink(tmp)
            if r != 0 {
                if err == EEXIST { throw .conflict("\((path as NSString).lastPathComponent) already exists") }
                errno = err
                throw ioError("link", path)
            }
        } else if rename(tmp, path) != 0 {
            let e = ioError("rename", path); unlink(tmp); throw e
        }
        syncDir(dir)
    }

    static func remove(_ path: String) throws(APIError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw ioError("remove", path) }
        syncDir((path as NSString).deletingLastPathComponent)
    }

    static func syncDir(_ dir: String) {
        let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { fsync(d); close(d) }
    }

    static func ioError(_ op: String, _ path: String) -> APIError {
        let e = errno
        let msg = "cannot \(op) \(path): \(String(cString: strerror(e)))"
        if e == ENOSPC || e == EDQUOT { return APIError(507, "InsufficientStorage", msg) }
        return .internal(msg)
    }
}
