import Foundation
import GantryAPI
import Synchronization

/// A change an informer saw, in the order the server reported it. `updated` carries the
/// cached object before and after.
public enum InformerEvent: Sendable {
    case added(Value)
    case updated(old: Value, new: Value)
    case deleted(Value)
}

/// Keeps a cache of one resource type (optionally one namespace and selectors) in step
/// with the API server, client-go style: LIST (paged) then WATCH from the list's
/// resourceVersion with bookmarks; re-watch from the last resourceVersion when the server
/// ends a stream; relist on 410 (plain or as an ERROR event) and diff the relist against
/// the cache so handlers still see every add, update and delete; reconnect with backoff
/// (800 ms doubling to 30 s, jittered). Handlers run in order on the informer's own
/// delivery thread, after the cache already holds the change. `resync` > 0 re-delivers
/// every cached object as `updated(old: o, new: o)` at that period.
public final class Informer: Sendable {
    public let client: KubeClient
    public let resource: GroupVersionResource
    public let namespace: String?
    public let labelSelector: String?
    public let fieldSelector: String?
    public let resync: Double
    public let name: String

    let backoffInitial: Double
    let backoffCap: Double
    /// Server-side watch timeout; nil = random 300..599 s as client-go.
    let watchTimeoutSeconds: Int?

    private struct State {
        var cache: [String: Value] = [:]
        var handlers: [@Sendable (InformerEvent) -> Void] = []
        var started = false
        var currentWatch: WatchCancel?
        var resourceVersion = ""
        var lastError: KubeError?
    }
    private let state = Mutex(State())
    private let stopped = WatchCancel()
    private let synced = Atomic<Bool>(false)
    private let relists = Atomic<Int>(0)
    private let delivery: DispatchQueue

    public convenience init(client: KubeClient, resource: GroupVersionResource, namespace: String? = nil, labelSelector: String? = nil,
                            fieldSelector: String? = nil, resync: Double = 0, name: String) {
        self.init(client: client, resource: resource, namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector,
                  resync: resync, name: name, backoffInitial: 0.8, backoffCap: 30, watchTimeoutSeconds: nil)
    }

    init(client: KubeClient, resource: GroupVersionResource, namespace: String?, labelSelector: String?, fieldSelector: String?,
         resync: Double, name: String, backoffInitial: Double, backoffCap: Double, watchTimeoutSeconds: Int?) {
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.resync = resync
        self.name = name
        self.backoffInitial = backoffInitial
        self.backoffCap = backoffCap
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.delivery = DispatchQueue(label: "gantry.informer.\(name)")
    }

    /// Adds a handler; call before `start` (later calls are ignored).
    public func addHandler(_ h: @escaping @Sendable (InformerEvent) -> Void) {
        state.withLock { s in if !s.started { s.handlers.append(h) } }
    }

    /// Starts the list/watch thread; a second call does nothing.
    public func start() {
        let first = state.withLock { s -> Bool in
            if s.started { return false }
            s.started = true
            return true
        }
        guard first, !stopped.isCancelled else { return }
        let thread = Thread { [self] in run() }
        thread.name = "informer-\(name)"
        thread.start()
        if resync > 0 { scheduleResync() }
    }

    /// Stops watching (within about a second) and delivers nothing more. Final.
    public func stop() {
        stopped.cancel()
        let w = state.withLock { $0.currentWatch }
        w?.cancel()
    }

    /// True once the first list is in the cache and its events were delivered to handlers.
    public var hasSynced: Bool { synced.load(ordering: .acquiring) }

    /// Waits up to `timeout` seconds for `hasSynced`.
    public func waitForSync(timeout: Double) -> Bool {
        let end = monotonicNow() + timeout
        while !hasSynced {
            if monotonicNow() >= end || stopped.isCancelled { return hasSynced }
            usleep(5_000)
        }
        return true
    }

    /// The cached objects (no particular order).
    public func list() -> [Value] { state.withLock { Array($0.cache.values) } }

    /// The cached object, by namespace (nil for cluster-scoped) and name.
    public func get(namespace: String?, name: String) -> Value? {
        let key = Informer.key(namespace: namespace, name: name)
        return state.withLock { $0.cache[key] }
    }

    /// The resourceVersion the informer would resume watching from (the last list, event
    /// or bookmark seen); empty before the first list.
    public var lastSyncResourceVersion: String { state.withLock { $0.resourceVersion } }

    /// The last list or watch failure (nil after a successful list), for diagnostics.
    public var lastError: KubeError? { state.withLock { $0.lastError } }

    /// How many times the informer listed (1 + relists), for tests and metrics.
    public var listCount: Int { relists.load(ordering: .relaxed) }

    static func key(namespace: String?, name: String) -> String {
        if let namespace, !namespace.isEmpty { return namespace + "/" + name }
        return name
    }

    static func key(of object: Value) -> String? {
        guard let meta = object["metadata"], let name = meta["name"]?.stringValue else { return nil }
        return key(namespace: meta["namespace"]?.stringValue, name: name)
    }

    static func resourceVersion(of object: Value) -> String? {
        object["metadata"]?["resourceVersion"]?.stringValue
    }

    /// The events that turn `old` into `new` (a relist): adds, updates of objects whose
    /// resourceVersion changed, deletes of objects gone.
    static func diff(old: [String: Value], new: [String: Value]) -> [InformerEvent] {
        var events: [InformerEvent] = []
        for (k, n) in new.sorted(by: { $0.key < $1.key }) {
            if let o = old[k] {
                if resourceVersion(of: o) != resourceVersion(of: n) || (resourceVersion(of: n) == nil && o != n) {
                    events.append(.updated(old: o, new: n))
                }
            } else {
                events.append(.added(n))
            }
        }
        for (k, o) in old.sorted(by: { $0.key < $1.key }) where new[k] == nil { events.append(.deleted(o)) }
        return events
    }

    // MARK: the list/watch loop

    private func run() {
        let path = resource.path(namespace: namespace)
        var backoff = Backoff(initial: backoffInitial, cap: backoffCap)
        var rv: String?
        while !stopped.isCancelled {
            guard let from = rv else {
                do {
                    let listed = try client.list(path, labelSelector: labelSelector, fieldSelector: fieldSelector)
                    relists.add(1, ordering: .relaxed)
                    replace(with: listed.items, resourceVersion: listed.resourceVersion)
                    rv = listed.resourceVersion
                    backoff.reset()
                } catch {
                    state.withLock { $0.lastError = error }
                    pause(backoff.next())
                }
                continue
            }
            let cancel = WatchCancel()
            let proceed = state.withLock { s -> Bool in
                if stopped.isCancelled { return false }
                s.currentWatch = cancel
                return true
            }
            guard proceed else { break }
            let started = monotonicNow()
            var delivered = false
            var mustRelist = false
            var failure: KubeError?
            var last = from
            do {
                try client.watch(path, resourceVersion: from, labelSelector: labelSelector, fieldSelector: fieldSelector,
                                 timeoutSeconds: watchTimeoutSeconds ?? (300 + Int.random(in: 0..<300)), cancel: cancel) { event in
                    switch event {
                    case .added(let o), .modified(let o):
                        upsert(o)
                        if let r = Informer.resourceVersion(of: o), !r.isEmpty { last = r }
                        delivered = true
                    case .deleted(let o):
                        remove(o)
                        if let r = Informer.resourceVersion(of: o), !r.isEmpty { last = r }
                        delivered = true
                    case .bookmark(let r):
                        if !r.isEmpty { last = r; setResourceVersion(r) }
                    case .error(let e):
                        if e.code == 410 { mustRelist = true } else { failure = e }
                        cancel.cancel()
                    }
                }
            } catch {
                if error.code == 410 { mustRelist = true } else { failure = error }
            }
            state.withLock { $0.currentWatch = nil }
            rv = last
            if stopped.isCancelled { break }
            if mustRelist {
                rv = nil
                continue
            }
            if let failure {
                state.withLock { $0.lastError = failure }
                // Transport trouble: re-watch from where we were; an HTTP error: relist.
                if failure.code != 0 { rv = nil }
                pause(backoff.next())
                continue
            }
            // The server ended the stream (its timeout): re-watch at once unless it keeps
            // closing immediately.
            if delivered || monotonicNow() - started > 1 { backoff.reset() } else { pause(backoff.next()) }
        }
    }

    private func pause(_ seconds: Double) {
        let end = monotonicNow() + seconds
        while !stopped.isCancelled, monotonicNow() < end { usleep(20_000) }
    }

    private func setResourceVersion(_ rv: String) { state.withLock { $0.resourceVersion = rv } }

    private func replace(with items: [Value], resourceVersion: String) {
        var fresh: [String: Value] = [:]
        fresh.reserveCapacity(items.count)
        for item in items { if let k = Informer.key(of: item) { fresh[k] = item } }
        let events = state.withLock { s -> [InformerEvent] in
            let events = Informer.diff(old: s.cache, new: fresh)
            s.cache = fresh
            s.resourceVersion = resourceVersion
            s.lastError = nil
            return events
        }
        deliver(events)
        if !synced.load(ordering: .relaxed) {
            delivery.async { [self] in synced.store(true, ordering: .releasing) }
        }
    }

    private func upsert(_ object: Value) {
        guard let k = Informer.key(of: object) else { return }
        let old = state.withLock { s -> Value? in
            let old = s.cache[k]
            s.cache[k] = object
            if let r = Informer.resourceVersion(of: object), !r.isEmpty { s.resourceVersion = r }
            return old
        }
        deliver([old.map { .updated(old: $0, new: object) } ?? .added(object)])
    }

    private func remove(_ object: Value) {
        guard let k = Informer.key(of: object) else { return }
        let old = state.withLock { s -> Value? in
            if let r = Informer.resourceVersion(of: object), !r.isEmpty { s.resourceVersion = r }
            return s.cache.removeValue(forKey: k)
        }
        deliver([.deleted(old ?? object)])
    }

    private func deliver(_ events: [InformerEvent]) {
        guard !events.isEmpty else { return }
        let handlers = state.withLock { $0.handlers }
        guard !handlers.isEmpty else { return }
        delivery.async { [self] in
            for e in events {
                if stopped.isCancelled { return }
                for h in handlers { h(e) }
            }
        }
    }

    private func scheduleResync() {
        delivery.asyncAfter(deadline: .now() + resync) { [self] in
            guard !stopped.isCancelled else { return }
            if hasSynced {
                let (objects, handlers) = state.withLock { (Array($0.cache.values), $0.handlers) }
                for o in objects { for h in handlers { h(.updated(old: o, new: o)) } }
            }
            scheduleResync()
        }
    }
}
