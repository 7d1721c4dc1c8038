import Foundation
import GantryAPI
import Glibc
import Synchronization

/// An in-process stand-in for kube-apiserver for tests and benchmarks: plain HTTP/1.1 on
/// 127.0.0.1 (ephemeral port, keep-alive, one thread per connection), any resource under
/// `/api/v1` and `/apis/{group}/{version}`, with the storage, watch and error semantics of
/// the real server (see ObjectStore) and hooks to misbehave on purpose.
///
/// Choices where a real cluster depends on other components: no garbage collection of owned
/// objects; Pods deleted with a grace period while bound and not finished keep a
/// deletionTimestamp until the kubelet stand-in (`runKubelet`) ticks, or a test finishes
/// them with `setPodPhase(... "Succeeded"/"Failed")` or `remove`; a grace-0, unbound or
/// finished Pod goes at once. Create drops `status` of custom resources (groups other
/// than core) and gives a Pod without a phase `status.phase: Pending`. Namespaces need not
/// exist; LIST always serves the newest state (its resourceVersion parameters are
/// ignored); PATCH takes merge-patch and json-patch only (strategic merge and apply get
/// 415). The watch history keeps `historyLimit` events; a continue token or watch from
/// before it gets 410.
///
/// `stop()` closes every socket and waits for every thread it started; call it (`defer`).
public final class TestAPIServer: Sendable {
    struct FailRule: Sendable {
        var method: String
        var pathPrefix: String
        var status: Int
        var remaining: Int
    }

    struct KubeletConfig: Sendable {
        var autoRun: Bool
        var exitCode: Int32?
    }

    struct Control: Sendable {
        var store = ObjectStore()
        var stopped = false
        var connections: [Int: Socket] = [:]
        var nextConnection = 1
        var failRules: [FailRule] = []
        var log: [String] = []
        var counts: [String: Int] = [:]
        var watch410AsEvent = true
        var splitWatchChunks = false
        var bookmarkInterval = 1.0
        var kubelet: KubeletConfig? = nil
        var kubeletStarted = false
        var kubeletRunSeconds = 0.2
        var retryAfterSeconds: Int? = 1
        var responseDelay = 0.0
        var podLogs: [StoreKey: [PodLogLine]] = [:]
    }

    let state = Mutex(Control())
    let listener: Socket
    let liveThreads = Atomic<Int>(0)
    let token: String?
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts listening on 127.0.0.1 with an ephemeral port. With `token`, every request
    /// must carry `Authorization: Bearer <token>` or gets 401.
    public init(token: String? = nil) throws {
        self.token = token
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ServerError(message: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 256) == 0 else {
            let m = String(cString: strerror(errno))
            close(fd)
            throw ServerError(message: "bind/listen on 127.0.0.1: \(m)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        listener = Socket(fd: fd)
        spawn { [self] in acceptLoop() }
    }

    /// An error starting the server.
    public struct ServerError: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    func spawn(_ body: @escaping @Sendable () -> Void) {
        liveThreads.add(1, ordering: .sequentiallyConsistent)
        let t = Thread { [self] in
            body()
            liveThreads.subtract(1, ordering: .sequentiallyConsistent)
        }
        t.stackSize = 8 << 20
        t.start()
    }

    /// Closes the listener, every connection and watch, stops the kubelet stand-in and
    /// waits (up to 10 s) until every thread of this server has ended. Idempotent.
    public func stop() {
        let (sockets, wakers) = state.withLock { c -> ([Socket], [Waker]) in
            c.stopped = true
            return (Array(c.connections.values), c.store.watchers.values.map(\.waker))
        }
        listener.shutdown()
        for s in sockets { s.shutdown() }
        for w in wakers { w.signal() }
        let end = Date().addingTimeInterval(10)
        while liveThreads.load(ordering: .sequentiallyConsistent) > 0 && Date() < end { usleep(1000) }
        listener.close()
    }

    /// Runs `body` on the state under the lock, then wakes the watch streams it queued
    /// events for (outside the lock).
    func mutate<R: Sendable>(_ body: (inout Control) -> R) -> R {
        let (r, wakes) = state.withLock { c -> (R, [Waker]) in
            let r = body(&c)
            let w = c.store.wakes
            c.store.wakes = []
            return (r, w)
        }
        var seen = Set<ObjectIdentifier>()
        for w in wakes where seen.insert(ObjectIdentifier(w)).inserted { w.signal() }
        return r
    }

    /// `mutate` for bodies that fail with an APIError.
    func apply<R: Sendable>(_ body: (inout Control) throws(APIError) -> R) throws(APIError) -> R {
        let r: Result<R, APIError> = mutate { c in
            do throws(APIError) { return .success(try body(&c)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    // MARK: Direct access

    /// The stored object at an object path, e.g. `/api/v1/namespaces/ns/pods/p`.
    public func object(_ path: String) -> Value? {
        guard let p = ResourcePath(path), p.name != nil else { return nil }
        return state.withLock { c in c.store.collections[p.collection]?[p.key] }
    }

    /// The stored objects of a collection path in key order; without a namespace in the
    /// path, those of every namespace.
    public func objects(_ collectionPath: String) -> [Value] {
        guard let p = ResourcePath(collectionPath) else { return [] }
        return state.withLock { c in c.store.items(p).map(\.1) }
    }

    /// Creates or replaces the object at `path` as given (status included), setting uid,
    /// creationTimestamp, resourceVersion and generation like the server does; watches see it.
    public func put(_ path: String, _ obj: Value) {
        guard let p = ResourcePath(path), p.name != nil else { return }
        mutate { (c: inout Control) in c.store.putDirect(p, obj) }
    }

    /// Removes the object at `path` now, finalizers or not (a DELETED event).
    public func remove(_ path: String) {
        guard let p = ResourcePath(path), p.name != nil else { return }
        mutate { (c: inout Control) in c.store.removeDirect(p) }
    }

    // MARK: Fault injection and observation

    /// Ends every open watch stream abruptly (no terminating chunk), now.
    public func dropWatches() {
        let sockets = mutate { (c: inout Control) -> [Socket] in
            var out: [Socket] = []
            for (id, w) in c.store.watchers where !w.dropped {
                c.store.watchers[id]?.dropped = true
                out.append(w.socket)
            }
            return out
        }
        for s in sockets { s.abort() }
    }

    /// Resets every open client connection now (keep-alive and watch alike), as a server
    /// restart or a load balancer would; the server keeps listening.
    public func dropConnections() {
        let sockets = mutate { (c: inout Control) -> [Socket] in
            for id in Array(c.store.watchers.keys) { c.store.watchers[id]?.dropped = true }
            return Array(c.connections.values)
        }
        for s in sockets { s.abort() }
    }

    /// Seconds each request waits before it is answered (0, the default, for none), to
    /// exercise client timeouts. Watches wait before their response headers.
    public var responseDelay: Double {
        get { state.withLock { $0.responseDelay } }
        set { state.withLock { $0.responseDelay = min(3600, max(0, newValue)) } }
    }

    /// Forgets the watch history: a watch from any resourceVersion older than the current
    /// one gets 410 Expired (as an ERROR event or an HTTP 410, per `watch410AsEvent`).
    public func expireWatchHistory() {
        mutate { (c: inout Control) in c.store.expireHistory() }
    }

    /// true (the default, like kube-apiserver's watch cache): an expired watch gets 200 and
    /// one ERROR event with a 410 Status; false: an HTTP 410 Status response.
    public var watch410AsEvent: Bool {
        get { state.withLock { $0.watch410AsEvent } }
        set { state.withLock { $0.watch410AsEvent = newValue } }
    }

    /// Watch events written as many 7-byte chunks, each its own write.
    public var splitWatchChunks: Bool {
        get { state.withLock { $0.splitWatchChunks } }
        set { state.withLock { $0.splitWatchChunks = newValue } }
    }

    /// Seconds between BOOKMARK events on watches that allow them (default 1).
    public var bookmarkInterval: Double {
        get { state.withLock { $0.bookmarkInterval } }
        set { state.withLock { $0.bookmarkInterval = max(0.01, newValue) } }
    }

    /// How many events the watch history keeps at least (default 10,000; trimmed in batches
    /// of a quarter of that); a watch from an older resourceVersion gets 410.
    public var historyLimit: Int {
        get { state.withLock { $0.store.historyLimit } }
        set { state.withLock { $0.store.historyLimit = min(10_000_000, max(1, newValue)) } }
    }

    /// Sends a BOOKMARK now on every watch that allows bookmarks.
    public func sendBookmarks() {
        mutate { (c: inout Control) in
            for (id, w) in c.store.watchers where !w.dropped {
                c.store.watchers[id]?.bookmarkRequested = true
                c.store.wakes.append(w.waker)
            }
        }
    }

    /// Watch streams open now (registered and not yet ended).
    public var activeWatchCount: Int { state.withLock { c in c.store.watchers.values.filter { !$0.dropped }.count } }

    /// Threads of this server still running (accept loop, connections, kubelet); 0 after `stop()`.
    public var liveThreadCount: Int { liveThreads.load(ordering: .sequentiallyConsistent) }
    /// Client connections open now.
    public var openConnectionCount: Int { state.withLock { $0.connections.count } }

    /// The current global resourceVersion.
    public var resourceVersion: String { state.withLock { String($0.store.rv) } }

    /// The next `count` requests with this method (`*` for any) whose path starts with
    /// `pathPrefix` fail with `status` and a matching Status body (429s carry Retry-After:
    /// `retryAfterSeconds`). A failed request does nothing else.
    public func failNext(_ method: String, pathPrefix: String, status: Int, count: Int) {
        state.withLock { $0.failRules.append(FailRule(method: method.uppercased(), pathPrefix: pathPrefix, status: status, remaining: count)) }
    }

    /// The Retry-After header (seconds) on injected 429 responses; nil sends none.
    public var retryAfterSeconds: Int? {
        get { state.withLock { $0.retryAfterSeconds } }
        set { state.withLock { $0.retryAfterSeconds = newValue } }
    }

    /// Every request as "METHOD target" (target with its query), in arrival order (the
    /// last half million or more once a million have been logged).
    public var requestLog: [String] { state.withLock { $0.log } }
    /// Requests per method since the last reset.
    public var requestCounts: [String: Int] { state.withLock { $0.counts } }
    /// How many logged requests have this method and a target starting with `prefix`.
    public func requestCount(_ method: String, prefix: String = "/") -> Int {
        state.withLock { c in c.log.filter { $0.hasPrefix(method.uppercased() + " " + prefix) }.count }
    }
    public func resetRequestLog() { state.withLock { $0.log = []; $0.counts = [:] } }
}
