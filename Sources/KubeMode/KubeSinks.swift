import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import Controllers
import KubeClient

/// A small pool of threads taking keys from a coalescing set: a key marked again while
/// queued is written once, with its latest value; a key is never written by two threads at once.
final class KeyedWriter<Key: Hashable & Sendable>: @unchecked Sendable {
    struct State {
        var queued: [Key] = []
        var pending = Set<Key>()
        var busy = Set<Key>()
        var again = Set<Key>()
        /// Keys to try again at a time (the earliest asked for).
        var delayed: [Key: Double] = [:]
        var nextDue = Double.infinity
        var stopped = false
    }
    let state = Mutex(State())
    let cond = NSCondition()
    let write: @Sendable (Key) -> Double?
    let name: String
    /// A key marked is written this long after its first mark, so that changes arriving
    /// together (a new workload queued, admitted and dispatched) are one write.
    let batch: Double

    /// `write` returns nil when done, or a delay after which the key is tried again.
    init(name: String, threads: Int, batch: Double = 0, write: @escaping @Sendable (Key) -> Double?) {
        self.name = name; self.write = write; self.batch = batch
        for i in 0..<max(1, threads) {
            let t = Thread { [weak self] in self?.run() }
            t.name = "\(name)-\(i)"
            t.start()
        }
    }

    func mark(_ k: Key) {
        let added = state.withLock { st -> Bool in
            if st.busy.contains(k) { st.again.insert(k); return false }
            if st.pending.contains(k) { return false }
            if batch > 0 || st.delayed[k] != nil {
                // Written at the end of the batch window (or sooner if it already waits for
                // a later retry: a new change does not wait behind a throttled one). A
                // sleeping thread is woken only when this is the earliest due time.
                let at = monotonicSeconds() + batch
                st.delayed[k] = min(st.delayed[k] ?? .infinity, at)
                let earliest = at < st.nextDue
                st.nextDue = min(st.nextDue, at)
                return earliest
            }
            st.pending.insert(k)
            st.queued.append(k)
            return true
        }
        if added { cond.lock(); cond.signal(); cond.unlock() }
    }

    func drop(_ k: Key) {
        state.withLock { st in
            if st.pending.remove(k) != nil { st.queued.removeAll { $0 == k } }
            st.again.remove(k)
            st.delayed[k] = nil
        }
    }

    var idle: Bool { state.withLock { $0.queued.isEmpty && $0.busy.isEmpty && $0.delayed.isEmpty } }

    func stop() {
        state.withLock { $0.stopped = true }
        cond.lock(); cond.broadcast(); cond.unlock()
    }

    func run() {
        while true {
            let k: Key? = state.withLock { st in
                if st.stopped { return nil }
                let now = monotonicSeconds()
                // (Also when nothing is delayed any more, e.g. the key was dropped: the due time
                // must not stay in the past, or idle threads wake every 2 ms.)
                if now >= st.nextDue {
                    let due = st.delayed.filter { $0.value <= now }.map(\.key)
                    for d in due { st.delayed[d] = nil }
                    st.nextDue = st.delayed.values.min() ?? .infinity
                    for d in due where !st.pending.contains(d) && !st.busy.contains(d) { st.pending.insert(d); st.queued.append(d) }
                }
                guard !st.queued.isEmpty else { return nil }
                let k = st.queued.removeFirst()
                st.pending.remove(k)
                st.busy.insert(k)
                return k
            }
            guard let k else {
                if state.withLock({ $0.stopped }) { return }
                let wait = state.withLock { min(0.1, max(0.002, $0.nextDue - monotonicSeconds())) }
                cond.lock(); _ = cond.wait(until: Date().addingTimeInterval(wait)); cond.unlock()
                continue
            }
            let retry = write(k)
            let requeue = state.withLock { st -> Bool in
                st.busy.remove(k)
                let marked = st.again.remove(k) != nil
                if let retry {
                    // Marked during the write: a new change, written after the batch window
                    // rather than behind the retry (as `mark` does for a key waiting to retry).
                    let at = monotonicSeconds() + (marked ? min(retry, batch) : retry)
                    st.delayed[k] = min(st.delayed[k] ?? .infinity, at)
                    st.nextDue = min(st.nextDue, at)
                }
                guard marked, retry == nil, st.pending.insert(k).inserted else { return false }
                st.queued.append(k)
                return true
            }
            if requeue { cond.lock(); cond.signal(); cond.unlock() }
        }
    }
}

/// Status in kube mode: `/status` merge patches of Workloads, Queues and ResourcePools,
/// written only when the status differs from what the API server holds (the last status
/// read from it or written to it). Gantry's objects themselves are the API server's, so
/// object writes are no-ops; Node status is the kubelet's, never written.
public final class KubeStatusWriter: StatePersistence, @unchecked Sendable {
    let client: KubeClient
    let written = Mutex<[ObjectKey: Value]>([:])
    /// The resourceVersion of each object after our last PATCH (under `written`'s lock order:
    /// always taken inside it): an informer event older than that is not what the server holds.
    let patchedAt = Mutex<[ObjectKey: UInt64]>([:])
    /// In a struct: see KubeController.Relay.Deliver.
    struct Provider: Sendable { let f: @Sendable (ObjectKey) -> Value? }
    let provider = Mutex<Provider?>(nil)
    var writer: KeyedWriter<ObjectKey>!
    public let patches = Atomic<Int>(0)
    public let failures = Atomic<Int>(0)

    public init(client: KubeClient, threads: Int = 4) {
        self.client = client
        writer = KeyedWriter(name: "gantry-status", threads: threads, batch: 0.05) { [weak self] k in self?.write(k) }
    }

    /// Where the current status of a key comes from (the status cache).
    public func setProvider(_ p: @escaping @Sendable (ObjectKey) -> Value?) { provider.withLock { $0 = Provider(f: p) } }

    /// The status the API server holds for an object (from the informer), unless the event
    /// is older than our last PATCH of it (the informer lags behind our own writes).
    public func observed(_ key: ObjectKey, _ status: Value?, resourceVersion: String = "") {
        written.withLock { w in
            if let rv = UInt64(resourceVersion), let mine = patchedAt.withLock({ $0[key] }), rv < mine { return }
            w[key] = status ?? .object([])
        }
    }

    public func markObjectDirty(_ key: ObjectKey) {}
    public func deleteObject(_ key: ObjectKey) {
        writer.drop(key)
        written.withLock { w in _ = w.removeValue(forKey: key); _ = patchedAt.withLock { $0.removeValue(forKey: key) } }
        _ = lastWrite.withLock { $0.removeValue(forKey: key) }
    }
    public func markStatusDirty(_ key: ObjectKey) {
        guard key.kind != .node else { return }
        writer.mark(key)
    }

    public var idle: Bool { writer.idle }
    public func stop() { writer.stop() }

    /// A change of nothing but queue positions is written at most this often per object: every
    /// admission moves every position behind it, and the API server is not to be flooded with
    /// those (the order itself is always current in the controller).
    public var positionInterval = 30.0
    let lastWrite = Mutex<[ObjectKey: Double]>([:])

    func write(_ key: ObjectKey) -> Double? {
        guard let new = provider.withLock({ $0 })?.f(key), let path = KubeObjects.path(key, subresource: "status") else { return nil }
        let old = written.withLock { $0[key] }
        guard let diff = KubeObjects.mergePatch(from: old ?? .object([]), to: new) else { return nil }
        let now = monotonicSeconds()
        if diff.members?.allSatisfy({ $0.key == "queuePosition" }) == true, let last = lastWrite.withLock({ $0[key] }), now - last < positionInterval {
            return positionInterval - (now - last)
        }
        lastWrite.withLock { $0[key] = now }
        do throws(KubeError) {
            let response = try client.patch(path, .object([Value.Member("status", diff)]), type: .merge)
            patches.add(1, ordering: .relaxed)
            let rv = response["metadata"]?["resourceVersion"]?.stringValue.flatMap { UInt64($0) }
            written.withLock { w in
                w[key] = new
                patchedAt.withLock { $0[key] = rv }
            }
            return nil
        } catch {
            if error.code == 404 { return nil }   // gone: nothing to write
            failures.add(1, ordering: .relaxed)
            Log.warn("cannot write status", ["key": key.description, "error": error.description])
            return error.code == 422 || error.code == 400 ? nil : 1
        }
    }
}

/// Events in kube mode: core/v1 Events (the recorder has already aggregated them: a record
/// seen again by name bumps count and lastTimestamp by a patch).
public final class KubeEventSink: EventSink, @unchecked Sendable {
    let client: KubeClient
    let uid: @Sendable (InvolvedObject) -> String?
    let host: String
    let instance: String
    struct State { var latest: [String: EventRecord] = [:]; var created = Set<String>() }
    let state = Mutex(State())
    var writer: KeyedWriter<String>!
    public let writes = Atomic<Int>(0)

    public init(client: KubeClient, host: String, instance: String, uid: @escaping @Sendable (InvolvedObject) -> String?) {
        self.client = client; self.host = host; self.instance = instance; self.uid = uid
        writer = KeyedWriter(name: "gantry-events", threads: 2) { [weak self] n in self?.send(n) }
    }

    public func write(_ event: EventRecord) {
        var event = event
        if event.involved.kind == "File" {
            // A problem with an object's content: in kube mode the "file" is the object
            // (`Workload team-a/x`, KubeObjects.display); the event goes to that object.
            guard let o = KubeEventSink.objectOfDisplayName(event.involved.name) else { return }
            event.involved = o
        }
        state.withLock { st in
            st.latest[event.name] = event
            if st.latest.count > 20000 {
                // Keep the newest half (by last occurrence): older ones are not bumped again.
                let keep = Set(st.latest.sorted { $0.value.lastTimestamp > $1.value.lastTimestamp }.prefix(10000).map(\.key))
                st.latest = st.latest.filter { keep.contains($0.key) }
                st.created = st.created.filter { keep.contains($0) }
            }
        }
        writer.mark(event.name)
    }

    public var idle: Bool { writer.idle }
    public func stop() { writer.stop() }

    /// `Workload team-a/x` or `Queue q` back into the object.
    static func objectOfDisplayName(_ d: String) -> InvolvedObject? {
        let parts = d.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2, let kind = Kind(rawValue: parts[0]) else { return nil }
        let nn = parts[1].split(separator: "/", maxSplits: 1).map(String.init)
        if nn.count == 2 { return InvolvedObject(kind: kind.rawValue, namespace: nn[0], name: nn[1]) }
        return InvolvedObject(kind: kind.rawValue, name: parts[1])
    }

    static func namespace(_ o: InvolvedObject) -> String { o.namespace.isEmpty ? "default" : o.namespace }

    /// The Event object. The involved object is a core Node or one of Gantry's kinds, its uid
    /// from the inventory, unless given (a directory-mode Node the inventory does not hold).
    func body(_ e: EventRecord, apiVersion: String? = nil, uid given: String? = nil) -> Value {
        let o = e.involved
        var inv = ObjectBuilder()
        inv.set("apiVersion", apiVersion ?? (o.kind == "Node" ? "v1" : gantryAPIVersion))
        inv.set("kind", o.kind)
        if !o.namespace.isEmpty { inv.set("namespace", o.namespace) }
        inv.set("name", o.name)
        inv.set("uid", given ?? uid(o))
        var meta = ObjectBuilder()
        meta.set("name", KubeEventSink.eventName(e.name))
        meta.set("namespace", KubeEventSink.namespace(o))
        var src = ObjectBuilder()
        src.set("component", KubeObjects.component)
        src.set("host", host)
        var b = ObjectBuilder()
        b.set("apiVersion", "v1"); b.set("kind", "Event")
        b.set("metadata", meta.value)
        b.set("involvedObject", inv.value)
        b.set("reason", e.reason)
        b.set("message", String(e.message.prefix(1024)))
        b.set("type", e.type == .warning ? "Warning" : "Normal")
        b.set("count", e.count)
        b.set("firstTimestamp", Timestamp(secondsSince1970: e.firstTimestamp).rfc3339)
        b.set("lastTimestamp", Timestamp(secondsSince1970: e.lastTimestamp).rfc3339)
        b.set("source", src.value)
        b.set("reportingComponent", KubeObjects.component)
        b.set("reportingInstance", instance)
        return b.value
    }

    /// Creates one Event outside the recorder (no aggregation), off the caller's thread.
    func post(_ e: EventRecord, apiVersion: String, uid: String) {
        let body = body(e, apiVersion: apiVersion, uid: uid), client = self.client
        let path = GroupVersionResource.events.path(namespace: KubeEventSink.namespace(e.involved))
        DispatchQueue.global().async { _ = try? client.create(path, body) }
    }

    /// A valid object name: the recorder's `<object>.<hex>`, lower-cased and trimmed.
    static func eventName(_ n: String) -> String {
        let allowed = n.lowercased().map { c -> Character in (c.isLetter && c.isASCII) || c.isNumber || c == "." || c == "-" ? c : "-" }
        var s = String(allowed.suffix(200))
        while let f = s.first, !(f.isLetter || f.isNumber) { s.removeFirst() }
        return s.isEmpty ? "gantry" : s
    }

    func send(_ name: String) -> Double? {
        guard let e = state.withLock({ $0.latest[name] }) else { return nil }
        let ns = KubeEventSink.namespace(e.involved)
        let created = state.withLock { $0.created.contains(name) }
        do throws(KubeError) {
            if created {
                let patch: Value = .object([Value.Member("count", .int(Int64(e.count))), Value.Member("message", .string(String(e.message.prefix(1024)))),
                                            Value.Member("lastTimestamp", .string(Timestamp(secondsSince1970: e.lastTimestamp).rfc3339))])
                _ = try client.patch(GroupVersionResource.events.path(namespace: ns, name: KubeEventSink.eventName(name)), patch, type: .merge)
            } else {
                _ = try client.create(GroupVersionResource.events.path(namespace: ns), body(e))
                state.withLock { _ = $0.created.insert(name) }
            }
            writes.add(1, ordering: .relaxed)
            return nil
        } catch {
            if error.code == 409 && !created { state.withLock { _ = $0.created.insert(name) }; return 0.01 }
            if error.code == 404 && created { state.withLock { _ = $0.created.remove(name) }; return 0.01 }
            if error.isTransient { return 2 }
            Log.warn("cannot write an event", ["event": name, "error": error.description])
            return nil
        }
    }
}
