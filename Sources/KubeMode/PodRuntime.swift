import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import Controllers
import StateStore
import KubeClient

/// Replicas as Pods (kube mode): one Pod per replica, bound to the admitted node, owned by its
/// Workload; a headless Service per workload gives rank 0 a DNS name for MASTER_ADDR.
///
/// Calls from the admission (under its lock) only record intent and queue API calls; worker
/// threads make the calls. What the Pods do arrives from the Pod informer and is reported as
/// runtime events: Running -> started; Succeeded/Failed -> exited with the container's code;
/// a Pod that was told to stop -> exited when it is gone (so quota is released only then); a
/// Pod deleted by someone else -> lost.
public final class PodRuntime: ReplicaRuntime, @unchecked Sendable {
    public static let masterPort = 29500
    public static let containerName = "worker"

    public struct Options: Sendable {
        /// Seconds a stopped Pod is given (its terminationGracePeriodSeconds).
        public var gracePeriod = 30.0
        public var workers = 4
        public init() {}
    }

    /// What the runtime needs to know about workloads and nodes, from the inventory.
    public struct Lookup: Sendable {
        public var uid: @Sendable (ObjectKey) -> String?
        public var spec: @Sendable (ObjectKey) -> WorkloadSpec?
        public var vendor: @Sendable (String) -> GPUVendor
        /// Puts the cleanup finalizer on a workload before its first Pods are created; nil when
        /// it is there (or cannot be), else a delay to try again after.
        public var finalizer: (@Sendable (ObjectKey) -> Double?)?
        public init(uid: @escaping @Sendable (ObjectKey) -> String?, spec: @escaping @Sendable (ObjectKey) -> WorkloadSpec?, vendor: @escaping @Sendable (String) -> GPUVendor,
                    finalizer: (@Sendable (ObjectKey) -> Double?)? = nil) {
            self.uid = uid; self.spec = spec; self.vendor = vendor; self.finalizer = finalizer
        }
    }

    enum Action: Sendable {
        case finalizer(ObjectKey)
        case service(ObjectKey)
        case create(ReplicaLaunch, DispatchIntent?)
        case delete(ReplicaRef, force: Bool)
        /// A Pod by name and uid: a later Pod of the same name is not this one.
        case deletePod(namespace: String, name: String, uid: String?, force: Bool)
        case deleteService(ObjectKey)
    }

    struct Reported: Sendable { var started = false; var ended = false }

    struct State {
        var handler: (@Sendable (RuntimeEvent) -> Void)?
        var intents: [ObjectKey: DispatchIntent] = [:]
        var reported: [ReplicaRef: Reported] = [:]
        var stopping = Set<ReplicaRef>()
        /// The refs in `reported` and `stopping` by workload, so forgetting one is not a scan.
        var refsByKey: [ObjectKey: Set<ReplicaRef>] = [:]
        /// The Pods in the informer's cache by workload and name (kept from its events).
        var podsByKey: [ObjectKey: [String: Value]] = [:]

        mutating func note(_ r: ReplicaRef) { refsByKey[r.key, default: []].insert(r) }
        mutating func index(_ pod: Value, _ ref: ReplicaRef, gone: Bool) {
            guard let name = pod["metadata"]?["name"]?.stringValue else { return }
            if gone {
                podsByKey[ref.key]?[name] = nil
                if podsByKey[ref.key]?.isEmpty == true { podsByKey[ref.key] = nil }
            } else {
                podsByKey[ref.key, default: [:]][name] = pod
            }
        }
        var tails: [ObjectKey: [Int: [String]]] = [:]
        var queue: [(key: ObjectKey, action: Action, notBefore: Double)] = []
        var busy = Set<ObjectKey>()
        var stopped = false
    }

    let client: KubeClient
    let pods: Informer
    let lookup: Lookup
    let options: Options
    let state = Mutex(State())
    let wake = NSCondition()
    var threads: [Thread] = []
    public let apiCalls = Atomic<Int>(0)

    public init(client: KubeClient, pods: Informer, lookup: Lookup, options: Options = Options()) {
        self.client = client; self.pods = pods; self.lookup = lookup; self.options = options
    }

    // MARK: Names

    /// `<workload>-worker-<rank>`; rank 0 of a PyTorchJob is `<workload>-master-0`, as the
    /// Kubeflow training operator names it.
    public static func podName(_ key: ObjectKey, rank: Int, type: WorkloadType?) -> String {
        if type == .pytorchJob && rank == 0 { return "\(key.name)-master-0" }
        return "\(key.name)-worker-\(rank)"
    }

    /// A DNS label for the Pod's hostname (the Pod name when it fits).
    static func hostname(_ pod: String, rank: Int) -> String {
        if pod.utf8.count <= 63 { return pod }
        return "r\(rank)-" + fnv1a(pod)
    }

    /// The headless Service of a workload: its name when that is a DNS-1035 label.
    public static func serviceName(_ key: ObjectKey) -> String {
        if let f = key.name.unicodeScalars.first, f.properties.isLowercase, key.name.utf8.count <= 63 { return key.name }
        return "w-" + String(key.name.prefix(40)) + "-" + String(fnv1a(key.name).prefix(8))
    }

    static func ref(of pod: Value) -> ReplicaRef? {
        let m = pod["metadata"]
        let labels = KubeObjects.stringMap(m?["labels"])
        guard let ns = m?["namespace"]?.stringValue, let w = labels[KubeObjects.labelWorkload],
              let d = labels[KubeObjects.labelDispatch].flatMap({ Int($0) }), let r = labels[KubeObjects.labelRank].flatMap({ Int($0) }),
              d >= 0, d < 1 << 40, r >= 0, r < 1 << 20 else { return nil }
        let a = labels[KubeObjects.labelAttempt].flatMap { Int($0) } ?? 0
        guard a >= 0, a < 1 << 30 else { return nil }
        return ReplicaRef(key: ObjectKey(.workload, namespace: ns, name: w), dispatch: d, rank: r, attempt: a)
    }

    // MARK: ReplicaRuntime

    public func start(_ handler: @escaping @Sendable (RuntimeEvent) -> Void) {
        state.withLock { $0.handler = handler }
        for i in 0..<max(1, options.workers) {
            let t = Thread { [weak self] in self?.work() }
            t.name = "gantry-pods-\(i)"
            t.start()
            threads.append(t)
        }
        // Pods already in the cache when leading began: report what they show now.
        for p in pods.list() { podEvent(.added(p)) }
    }

    public func stop() {
        state.withLock { $0.stopped = true }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    public func prepare(_ key: ObjectKey, _ intent: DispatchIntent) {
        state.withLock { $0.intents[key] = intent }
        // The finalizer first: the workload's Pods are to be gone before it is.
        if lookup.finalizer != nil { enqueue(key, .finalizer(key)) }
        // One replica needs no rendezvous name: no Service (one API call less per workload).
        if intent.assignments.count > 1 { enqueue(key, .service(key)) }
    }

    public func launch(_ launch: ReplicaLaunch) {
        let intent = state.withLock { $0.intents[launch.ref.key] }
        enqueue(launch.ref.key, .create(launch, intent))
    }

    public func signal(_ ref: ReplicaRef, force: Bool) {
        state.withLock { $0.stopping.insert(ref); $0.note(ref) }
        enqueue(ref.key, .delete(ref, force: force))
    }

    public func forget(_ key: ObjectKey, keepDispatch: Int?, files: Bool) {
        // Pods of older dispatches (all of them when nil) that are over go now.
        let old = pods(of: key).filter { p in
            guard let r = PodRuntime.ref(of: p), r.key == key else { return false }
            return keepDispatch.map { r.dispatch < $0 } ?? true
        }
        for p in old {
            if let n = p["metadata"]?["name"]?.stringValue { enqueue(key, .deletePod(namespace: key.namespace, name: n, uid: p["metadata"]?["uid"]?.stringValue, force: true)) }
        }
        state.withLock { st in
            for r in st.refsByKey[key] ?? [] where !(keepDispatch.map { r.dispatch >= $0 } ?? false) {
                st.reported[r] = nil
                st.stopping.remove(r)
                st.refsByKey[key]?.remove(r)
            }
            if st.refsByKey[key]?.isEmpty == true { st.refsByKey[key] = nil }
            if keepDispatch == nil { st.intents[key] = nil; st.tails[key] = nil }
        }
        if keepDispatch == nil && files { enqueue(key, .deleteService(key)) }
    }

    public func tail(_ key: ObjectKey, rank: Int, lines: Int) -> [String] {
        state.withLock { $0.tails[key]?[rank].map { Array($0.suffix(lines)) } ?? [] }
    }

    public func workdir(_ key: ObjectKey) -> String { "" }

    /// The workload's Pods as the informer last showed them.
    public func pods(of key: ObjectKey) -> [Value] { state.withLock { $0.podsByKey[key].map { Array($0.values) } ?? [] } }

    public func freePort() -> Int { PodRuntime.masterPort }

    /// The newest dispatch of each workload, from the Pods in the cache (call once the Pod
    /// informer has synced): the intent from the Pods' annotation, each rank's Pod state.
    public func recover() -> [ObjectKey: RecoveredDispatch] {
        var out: [ObjectKey: RecoveredDispatch] = [:]
        for p in pods.list() {
            guard let ref = PodRuntime.ref(of: p) else { continue }
            state.withLock { $0.index(p, ref, gone: false) }
            if let have = out[ref.key], have.intent.dispatch > ref.dispatch { continue }
            if out[ref.key].map({ $0.intent.dispatch < ref.dispatch }) ?? true {
                guard let intent = PodRuntime.intent(of: p, dispatch: ref.dispatch) else { continue }
                out[ref.key] = RecoveredDispatch(intent: intent, replicas: [:])
                state.withLock { $0.intents[ref.key] = intent }
            }
            if let have = out[ref.key]?.replicas[ref.rank], have.ref.attempt > ref.attempt { continue }
            var rr = RecoveredReplica(ref: ref)
            let obs = PodRuntime.observe(p)
            rr.start = obs.start
            switch obs.phase {
            case .running: rr.pid = 0
            case .exited(let code, let at): rr.pid = 0; rr.exit = (code, 0, at)
            case .failedToStart(let message):
                rr.exit = (127, 0, obs.start ?? Date().timeIntervalSince1970)
                state.withLock { $0.tails[ref.key, default: [:]][ref.rank] = [message] }
            case .lost: rr.lost = true
            case .pending: break
            }
            if KubeObjects.ServerMeta(p).deleting && rr.exit == nil { state.withLock { st in st.stopping.insert(ref); st.note(ref) } }
            out[ref.key]?.replicas[ref.rank] = rr
        }
        // A rank of the dispatch without a Pod: the controller died before creating it. It is
        // lost (the gang restarts, as after a vanished supervisor), never waited for.
        for (key, rec) in out {
            for a in rec.intent.assignments where rec.replicas[a.rank] == nil {
                var rr = RecoveredReplica(ref: ReplicaRef(key: key, dispatch: rec.intent.dispatch, rank: a.rank, attempt: 0))
                rr.lost = true
                out[key]?.replicas[a.rank] = rr
            }
        }
        return out
    }

    // MARK: Observed Pods

    enum PodPhase: Equatable {
        case pending, running
        case exited(code: Int32, at: Double)
        /// The container could not start (image, config): reported as exit 127.
        case failedToStart(String)
        /// Failed without a container exit (evicted, node lost).
        case lost(String)
    }

    static func observe(_ p: Value) -> (phase: PodPhase, start: Double?) {
        let status = p["status"]
        let start = (status?["startTime"]?.stringValue).flatMap { Timestamp(rfc3339: $0) }.map { Double($0.seconds) }
        let cs = status?["containerStatuses"]?.arrayValue?.first
        let state = cs?["state"]
        let phase = status?["phase"]?.stringValue ?? "Pending"
        if let t = state?["terminated"], (phase == "Succeeded" || phase == "Failed" || state?["running"] == nil) {
            let code = Int32(clamping: t["exitCode"]?.intValue ?? 1)
            let at = (t["finishedAt"]?.stringValue).flatMap { Timestamp(rfc3339: $0) }.map { Double($0.seconds) } ?? Date().timeIntervalSince1970
            return (.exited(code: code, at: at), start)
        }
        switch phase {
        case "Succeeded": return (.exited(code: 0, at: Date().timeIntervalSince1970), start)
        case "Failed":
            let reason = status?["reason"]?.stringValue ?? "Failed"
            let message = status?["message"]?.stringValue ?? ""
            return (.lost("pod \(reason)\(message.isEmpty ? "" : ": \(message)")"), start)
        case "Running": return (.running, start)
        default:
            if let w = state?["waiting"], let reason = w["reason"]?.stringValue,
               ["ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"].contains(reason) {
                let message = w["message"]?.stringValue ?? ""
                return (.failedToStart("\(reason)\(message.isEmpty ? "" : ": \(message)")"), start)
            }
            if state?["running"] != nil { return (.running, start) }
            return (.pending, start)
        }
    }

    /// A change of a Pod Gantry owns, from the Pod informer (through the controller).
    public func podEvent(_ e: InformerEvent) {
        let pod: Value
        var gone = false
        switch e {
        case .added(let p), .updated(_, let p): pod = p
        case .deleted(let p): pod = p; gone = true
        }
        guard let ref = PodRuntime.ref(of: pod) else { return }
        let obs = PodRuntime.observe(pod)
        var events: [RuntimeEvent] = []
        var needTail = false
        var forceDelete = false
        let handler: (@Sendable (RuntimeEvent) -> Void)? = state.withLock { st in
            st.index(pod, ref, gone: gone)
            var r = st.reported[ref] ?? Reported()
            defer { st.reported[ref] = r; st.note(ref) }
            guard !r.ended else { return st.handler }
            let stopping = st.stopping.contains(ref)
            if gone {
                r.ended = true
                if !r.started, case .running = obs.phase { r.started = true }
                switch obs.phase {
                case .exited(let code, let at): events.append(.exited(ref, code: code, signal: 0, at: at))
                default:
                    if stopping { events.append(.exited(ref, code: 143, signal: SIGTERM, at: Date().timeIntervalSince1970)) }
                    else { events.append(.lost(ref, message: "its Pod was deleted")) }
                }
                return st.handler
            }
            switch obs.phase {
            case .pending: break
            case .running:
                if !r.started { r.started = true; events.append(.started(ref, pid: 0, at: obs.start ?? Date().timeIntervalSince1970)) }
            case .exited(let code, let at):
                if stopping {
                    // Told to stop: it is over when the Pod is gone; a terminal Pod can go now.
                    forceDelete = true
                } else {
                    if !r.started { r.started = true; events.append(.started(ref, pid: 0, at: obs.start ?? at)) }
                    r.ended = true
                    needTail = code != 0
                    events.append(.exited(ref, code: code, signal: 0, at: at))
                }
            case .failedToStart(let message):
                if stopping { forceDelete = true } else {
                    r.ended = true
                    st.tails[ref.key, default: [:]][ref.rank] = [message]
                    events.append(.exited(ref, code: 127, signal: 0, at: Date().timeIntervalSince1970))
                }
            case .lost(let message):
                if stopping { forceDelete = true } else {
                    r.ended = true
                    events.append(.lost(ref, message: message))
                }
            }
            return st.handler
        }
        if forceDelete, let n = pod["metadata"]?["name"]?.stringValue { enqueue(ref.key, .deletePod(namespace: ref.key.namespace, name: n, uid: pod["metadata"]?["uid"]?.stringValue, force: true)) }
        if needTail, let n = pod["metadata"]?["name"]?.stringValue {
            // Read before the exit is reported, outside every lock: failure events quote it.
            if let text = try? client.text(GroupVersionResource.pods.path(namespace: ref.key.namespace, name: n, subresource: "log"), query: [("tailLines", "20"), ("container", PodRuntime.containerName)]) {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
                state.withLock { $0.tails[ref.key, default: [:]][ref.rank] = Array(lines.suffix(20)) }
            }
        }
        guard let handler else { return }
        for e in events { handler(e) }
    }

    // MARK: Actions

    func enqueue(_ key: ObjectKey, _ a: Action, after: Double = 0) {
        state.withLock { $0.queue.append((key, a, after > 0 ? monotonicSeconds() + after : 0)) }
        wake.lock(); wake.signal(); wake.unlock()
    }

    func work() {
        while true {
            let next: (ObjectKey, Action)? = state.withLock { st in
                if st.stopped { return nil }
                let now = monotonicSeconds()
                guard let i = st.queue.firstIndex(where: { !st.busy.contains($0.key) && $0.notBefore <= now }) else { return nil }
                let item = st.queue.remove(at: i)
                st.busy.insert(item.key)
                return (item.key, item.action)
            }
            guard let (key, action) = next else {
                if state.withLock({ $0.stopped }) { return }
                wake.lock(); _ = wake.wait(until: Date().addingTimeInterval(0.2)); wake.unlock()
                continue
            }
            let retry = perform(action)
            state.withLock { _ = $0.busy.remove(key) }
            if let retry { enqueue(key, action, after: retry) }
            wake.lock(); wake.broadcast(); wake.unlock()
        }
    }

    /// Does one API call; returns a delay to retry after, or nil when done.
    func perform(_ action: Action) -> Double? {
        apiCalls.add(1, ordering: .relaxed)
        switch action {
        case .finalizer(let key):
            return lookup.finalizer?(key)
        case .service(let key):
            guard let uid = lookup.uid(key) else { return nil }
            let svc = PodRuntime.serviceObject(key, uid: uid)
            do throws(KubeError) { _ = try client.create(GroupVersionResource.services.path(namespace: key.namespace), svc) } catch {
                if error.code == 409 { return nil }
                Log.warn("cannot create the workload's Service", ["key": key.description, "error": error.description])
                return error.isTransient ? 1 : nil
            }
            return nil
        case .create(let launch, let intent):
            let key = launch.ref.key
            let uid = lookup.uid(key)
            let spec = lookup.spec(key)
            guard let uid, let spec else { report(.exited(launch.ref, code: 127, signal: 0, at: Date().timeIntervalSince1970)); return nil }
            let assignment = intent?.assignments.first { $0.rank == launch.ref.rank }
            let pod = PodRuntime.podObject(launch, spec: spec, uid: uid, intent: intent, assignment: assignment,
                                           vendor: assignment.map { lookup.vendor($0.node) } ?? .nvidia, grace: options.gracePeriod)
            let name = PodRuntime.podName(key, rank: launch.ref.rank, type: spec.type)
            do throws(KubeError) {
                _ = try client.create(GroupVersionResource.pods.path(namespace: key.namespace), pod)
                return nil
            } catch {
                if error.code == 409 {
                    // A Pod of that name exists: ours already (a retried call), or an older one
                    // still going away.
                    let existing = try? client.get(GroupVersionResource.pods.path(namespace: key.namespace, name: name))
                    if let existing, PodRuntime.ref(of: existing) == nil {
                        // Not Gantry's (no replica labels): never deleted, and no use waiting.
                        state.withLock { $0.tails[key, default: [:]][launch.ref.rank] = ["a Pod named \(name) exists in \(key.namespace) and is not one of Gantry's replicas"] }
                        report(.exited(launch.ref, code: 127, signal: 0, at: Date().timeIntervalSince1970))
                        return nil
                    }
                    if let existing, let r = PodRuntime.ref(of: existing) {
                        if r == launch.ref { return nil }
                        if r.dispatch > launch.ref.dispatch || (r.dispatch == launch.ref.dispatch && r.attempt > launch.ref.attempt) { return nil }
                        if !KubeObjects.ServerMeta(existing).deleting {
                            let terminal: Bool = { if case .exited = PodRuntime.observe(existing).phase { return true }; return false }()
                            _ = try? client.delete(GroupVersionResource.pods.path(namespace: key.namespace, name: name), gracePeriodSeconds: terminal ? 0 : Int(options.gracePeriod))
                        }
                    }
                    return 0.5
                }
                if error.isTransient { return 1 }
                if error.code == 404 && error.reason == "NotFound" && error.message.contains("namespace") {
                    Log.warn("cannot create a Pod", ["key": key.description, "error": error.description])
                }
                // Refused (invalid, forbidden): the replica could not start.
                Log.warn("cannot create a Pod", ["key": key.description, "pod": name, "error": error.description])
                state.withLock { $0.tails[key, default: [:]][launch.ref.rank] = ["Pod \(name) refused by the API server: \(error.description)"] }
                report(.exited(launch.ref, code: 127, signal: 0, at: Date().timeIntervalSince1970))
                return nil
            }
        case .delete(let ref, let force):
            // A create still queued (or waiting to retry) never happens: the replica is over.
            let dropped = state.withLock { st -> Bool in
                let before = st.queue.count
                st.queue.removeAll { if case .create(let l, _) = $0.action { return l.ref == ref }; return false }
                return st.queue.count != before
            }
            if dropped { report(.exited(ref, code: 143, signal: SIGTERM, at: Date().timeIntervalSince1970)); return nil }
            // The Pod of this replica by its labels when the cache has it (the workload may be
            // gone from the inventory already: no type, so no `-master-0` name from the spec).
            let name = pods(of: ref.key).first { PodRuntime.ref(of: $0) == ref }?["metadata"]?["name"]?.stringValue
                ?? PodRuntime.podName(ref.key, rank: ref.rank, type: lookup.spec(ref.key)?.type)
            let path = GroupVersionResource.pods.path(namespace: ref.key.namespace, name: name)
            var found = pods.get(namespace: ref.key.namespace, name: name)
            if found.flatMap(PodRuntime.ref(of:)) != ref {
                // The cache lags (or holds an older attempt's Pod): ask the server; an error
                // other than 404 is no answer, so try again.
                do throws(KubeError) { found = try client.get(path) } catch {
                    if error.code != 404 { return 1 }
                    found = nil
                }
            }
            guard let pod = found, PodRuntime.ref(of: pod) == ref else {
                // No Pod of this replica: it was refused, or gave way to a newer one. It is over.
                report(.exited(ref, code: 143, signal: SIGTERM, at: Date().timeIntervalSince1970))
                return nil
            }
            var grace = force ? 0 : Int(options.gracePeriod)
            if case .exited = PodRuntime.observe(pod).phase { grace = 0 }
            let uid = pod["metadata"]?["uid"]?.stringValue
            do throws(KubeError) { try client.delete(path, gracePeriodSeconds: grace, preconditionUID: uid) } catch {
                if error.code == 404 { report(.exited(ref, code: 143, signal: SIGTERM, at: Date().timeIntervalSince1970)); return nil }
                if error.code == 409 { return nil }
                return error.isTransient ? 1 : nil
            }
            return nil
        case .deletePod(let ns, let name, let uid, let force):
            do throws(KubeError) { try client.delete(GroupVersionResource.pods.path(namespace: ns, name: name), gracePeriodSeconds: force ? 0 : Int(options.gracePeriod), preconditionUID: uid) } catch {
                if error.code == 404 || error.code == 409 { return nil }
                return error.isTransient ? 1 : nil
            }
            return nil
        case .deleteService(let key):
            do throws(KubeError) { try client.delete(GroupVersionResource.services.path(namespace: key.namespace, name: PodRuntime.serviceName(key))) } catch {
                if error.isTransient { return 1 }
            }
            return nil
        }
    }

    func report(_ e: RuntimeEvent) {
        let h: (@Sendable (RuntimeEvent) -> Void)? = state.withLock { st in
            var r = st.reported[e.ref] ?? Reported()
            if r.ended { return nil }
            if case .exited = e { r.ended = true }
            if case .lost = e { r.ended = true }
            st.reported[e.ref] = r
            st.note(e.ref)
            return st.handler
        }
        h?(e)
    }

    // MARK: Objects

    static func ownerReference(_ key: ObjectKey, uid: String) -> Value {
        .object([Value.Member("apiVersion", .string(gantryAPIVersion)), Value.Member("kind", .string("Workload")),
                 Value.Member("name", .string(key.name)), Value.Member("uid", .string(uid)),
                 Value.Member("controller", .bool(true)), Value.Member("blockOwnerDeletion", .bool(true))])
    }

    static func serviceObject(_ key: ObjectKey, uid: String) -> Value {
        var meta = ObjectBuilder()
        meta.set("name", serviceName(key))
        meta.set("namespace", key.namespace)
        meta.set("labels", Value.stringMap([KubeObjects.labelWorkload: key.name]))
        meta.set("ownerReferences", .array([ownerReference(key, uid: uid)]))
        var spec = ObjectBuilder()
        spec.set("clusterIP", "None")
        spec.set("publishNotReadyAddresses", true)
        spec.set("selector", Value.stringMap([KubeObjects.labelWorkload: key.name]))
        spec.set("ports", .array([.object([Value.Member("name", .string("master")), Value.Member("port", .int(Int64(masterPort)))])]))
        var o = ObjectBuilder()
        o.set("apiVersion", "v1"); o.set("kind", "Service")
        o.set("metadata", meta.value); o.set("spec", spec.value)
        return o.value
    }

    static func intentValue(_ i: DispatchIntent) -> Value {
        var o = ObjectBuilder()
        o.set("dispatch", i.dispatch)
        o.set("specHash", i.specHash)
        o.set("masterPort", i.masterPort)
        o.set("at", .double(i.at))
        o.set("assignments", .array(i.assignments.map { a in
            .object([Value.Member("rank", .int(Int64(a.rank))), Value.Member("node", .string(a.node)), Value.Member("gpus", .array(a.gpus.map { .int(Int64($0)) }))])
        }))
        return o.value
    }

    static func intent(of pod: Value, dispatch: Int) -> DispatchIntent? {
        guard let text = pod["metadata"]?["annotations"]?[KubeObjects.annotationIntent]?.stringValue,
              let v = try? JSON.parse(text), let d = v["dispatch"]?.intValue, d == Int64(dispatch) else { return nil }
        var assignments: [ReplicaAssignment] = []
        for a in v["assignments"]?.arrayValue ?? [] {
            guard let r = a["rank"]?.intValue, r >= 0, r < 1 << 20, let node = a["node"]?.stringValue else { return nil }
            let gpus = (a["gpus"]?.arrayValue ?? []).compactMap { $0.intValue }.filter { $0 >= 0 && $0 < 1 << 16 }.map { Int($0) }
            assignments.append(ReplicaAssignment(rank: Int(r), node: node, gpus: gpus))
        }
        let port = v["masterPort"]?.intValue.map { Int(clamping: $0) } ?? masterPort
        let at: Double = { if case .double(let d)? = v["at"] { return d }; return Double(v["at"]?.intValue ?? 0) }()
        return DispatchIntent(dispatch: dispatch, specHash: v["specHash"]?.stringValue ?? "", masterPort: port, at: at, assignments: assignments)
    }

    /// The Pod of one replica.
    static func podObject(_ launch: ReplicaLaunch, spec: WorkloadSpec, uid: String, intent: DispatchIntent?, assignment: ReplicaAssignment?,
                          vendor: GPUVendor, grace: Double) -> Value {
        let key = launch.ref.key
        let name = podName(key, rank: launch.ref.rank, type: spec.type)
        let svc = serviceName(key)
        let master = hostname(podName(key, rank: 0, type: spec.type), rank: 0)
        let gang = (intent?.assignments.count ?? spec.replicas) > 1
        var env: [Value] = []
        let drop: Set<String> = ["GANTRY_SPEC_DIR", "GANTRY_WORK_DIR", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"]
        for kv in launch.env {
            guard let eq = kv.firstIndex(of: "=") else { continue }
            let k = String(kv[..<eq]); var v = String(kv[kv.index(after: eq)...])
            if drop.contains(k) { continue }
            if k == "MASTER_ADDR" { v = gang ? "\(master).\(svc).\(key.namespace).svc" : "127.0.0.1" }
            if k == "MASTER_PORT" { v = String(masterPort) }
            if k == "GANTRY_REPLICA" { v = name }
            env.append(.object([Value.Member("name", .string(k)), Value.Member("value", .string(v))]))
        }
        var requests = ObjectBuilder(), limits = ObjectBuilder()
        for (n, q) in spec.resources.amounts.sorted(by: { $0.key < $1.key }) where n != "gpu" && q.milli > 0 {
            requests.set(n, .string(q.text)); limits.set(n, .string(q.text))
        }
        let gpus = assignment?.gpus.count ?? Int(spec.resources.gpu)
        if gpus > 0 {
            let res = vendor == .amd ? "amd.com/gpu" : "nvidia.com/gpu"
            requests.set(res, .string(String(gpus))); limits.set(res, .string(String(gpus)))
        }
        var resources = ObjectBuilder()
        if !requests.members.isEmpty { resources.set("requests", requests.value); resources.set("limits", limits.value) }
        var container = ObjectBuilder()
        container.set("name", containerName)
        container.set("image", spec.image)
        container.set("command", .array([.string("/bin/sh"), .string("-c"), .string(launch.command)]))
        container.set("env", .array(env))
        container.set("ports", .array([.object([Value.Member("name", .string("master")), Value.Member("containerPort", .int(Int64(masterPort)))])]))
        if !resources.members.isEmpty { container.set("resources", resources.value) }
        var podSpec = ObjectBuilder()
        // The workload's account (annotation gantry.dev/run-as) as the Pod's security context
        // when it is a numeric uid: a cluster has no user database to look a name up in.
        if let user = launch.user, let uid = Int64(user), uid >= 0 {
            var sc = ObjectBuilder()
            sc.set("runAsUser", .int(uid))
            sc.set("runAsNonRoot", uid != 0)
            podSpec.set("securityContext", sc.value)
        }
        podSpec.set("restartPolicy", "Never")
        if let node = assignment?.node { podSpec.set("nodeName", node) }
        if gang {
            podSpec.set("hostname", hostname(name, rank: launch.ref.rank))
            podSpec.set("subdomain", svc)
        }
        podSpec.set("terminationGracePeriodSeconds", Int(max(0, min(grace, 86400))))
        podSpec.set("enableServiceLinks", false)
        podSpec.set("containers", .array([container.value]))
        var labels: [String: String] = [
            KubeObjects.labelWorkload: key.name, KubeObjects.labelRank: String(launch.ref.rank),
            KubeObjects.labelDispatch: String(launch.ref.dispatch), KubeObjects.labelAttempt: String(launch.ref.attempt),
        ]
        labels["gantry.dev/queue"] = ManifestDecoder.isDNS1123Label(spec.queue) ? spec.queue : nil
        var meta = ObjectBuilder()
        meta.set("name", name)
        meta.set("namespace", key.namespace)
        meta.set("labels", Value.stringMap(labels))
        if let intent { meta.set("annotations", Value.stringMap([KubeObjects.annotationIntent: JSON.encode(intentValue(intent))])) }
        meta.set("ownerReferences", .array([ownerReference(key, uid: uid)]))
        var o = ObjectBuilder()
        o.set("apiVersion", "v1"); o.set("kind", "Pod")
        o.set("metadata", meta.value); o.set("spec", podSpec.value)
        return o.value
    }
}
