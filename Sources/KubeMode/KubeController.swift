import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import Controllers
import KubeClient
import DirectorySource

/// Kube mode: the same inventory, work queue, reconcilers, admission and scheduler as
/// directory mode, fed by informers; status as `/status` merge patches, events as core/v1
/// Events, replicas as Pods. With leader election only the leader reconciles; a standby keeps
/// its informer caches warm and takes over from them.
public final class KubeController: @unchecked Sendable {
    public struct Options: Sendable {
        public var workers = 4
        public var fieldValidation = FieldValidation.strict
        public var gracePeriod = 30.0
        public var leaderElect = false
        public var leaseNamespace = "gantry-system"
        public var leaseName = "gantry-controller"
        public var identity = ""
        public var leaseDuration = 15.0, renewDeadline = 10.0, retryPeriod = 2.0
        /// Start nothing (admission only), as `--runtime none` in directory mode.
        public var runReplicas = true
        public var statusWriters = 4
        /// For log lines: the API server's address.
        public var server = ""
        /// Called when the Lease is lost: the process exits (the Deployment restarts it, and
        /// it stands by); tests replace it.
        public var onLostLease: @Sendable () -> Void = { _exit(1) }
        public init() {}
    }

    /// Where informer events go: nowhere before leading (the caches stay warm), buffered while
    /// the initial state is built from the caches, then straight to the inventory.
    final class Relay: @unchecked Sendable {
        enum Mode { case standby, buffering, live }
        let state = Mutex<(mode: Mode, buffer: [(Kind?, InformerEvent)])>((.standby, []))
        /// Closures are kept in a struct: a Mutex over a bare function type re-wraps it in a
        /// reabstraction thunk on every access, and calls get slower with every call.
        struct Deliver: Sendable { let f: @Sendable (Kind?, InformerEvent) -> Void }
        let deliver = Mutex<Deliver?>(nil)
        func event(_ kind: Kind?, _ e: InformerEvent) {
            let live: Bool = state.withLock { st in
                switch st.mode {
                case .standby: return false
                case .buffering: st.buffer.append((kind, e)); return false
                case .live: return true
                }
            }
            if live { deliver.withLock { $0 }?.f(kind, e) }
        }
    }

    public let client: KubeClient
    public let options: Options
    public let workloads: Informer, queues: Informer, pools: Informer, nodes: Informer, pods: Informer
    /// gantry.dev Nodes (directory mode's kind): each gets one Warning and is otherwise ignored.
    public let gantryNodes: Informer
    let warnedNodes = Mutex<Set<String>>([])
    let relay = Relay()
    let clock = SystemClock()
    public let metrics = Metrics()
    /// Set once the informers have listed everything.
    public let synced = Atomic<Bool>(false)
    public let leading = Atomic<Bool>(false)
    /// Set once the leader's initial sync is done (admission running).
    public let active = Atomic<Bool>(false)
    let stopFlag = Atomic<Bool>(false)
    /// Set when `run` has returned.
    public let finished = Atomic<Bool>(false)
    /// Stop without releasing the Lease (tests: a leader that dies).
    let abandoned = Atomic<Bool>(false)
    let stopSignal = DispatchSemaphore(value: 0)
    var elector: LeaderElector?
    /// Called from the controller's loop about every 100 ms (liveness and readiness probes).
    public var onTick: @Sendable () -> Void {
        get { tickHook.withLock { $0 }.f }
        set { tickHook.withLock { $0 = Hook(f: newValue) } }
    }
    struct Hook: Sendable { let f: @Sendable () -> Void }
    let tickHook = Mutex<Hook>(Hook(f: {}))
    func beat() { tickHook.withLock { $0 }.f() }

    // Built when leading.
    struct Stack {
        var queue: WorkQueue<ObjectKey>
        var inventory: Inventory
        var admission: Admission
        var controller: Controller
        var statusWriter: KubeStatusWriter
        var eventSink: KubeEventSink
        var runtime: PodRuntime?
        var finalizers: KeyedWriter<ObjectKey>
        var timers: (WorkQueue<ObjectKey>, Controller)?
    }
    let stack = Mutex<Stack?>(nil)
    /// What was last handed to the inventory per object (status-only changes are not).
    let forwarded = Mutex<[ObjectKey: String]>([:])
    /// Workloads being deleted: their finalizer goes once their Pods are gone.
    let deleting = Mutex<Set<ObjectKey>>([])

    public init(client: KubeClient, options: Options) {
        self.client = client; self.options = options
        workloads = Informer(client: client, resource: .workloads, name: "workloads")
        queues = Informer(client: client, resource: .queues, name: "queues")
        pools = Informer(client: client, resource: .resourcePools, name: "resourcepools")
        nodes = Informer(client: client, resource: .nodes, name: "nodes")
        pods = Informer(client: client, resource: .pods, labelSelector: KubeObjects.labelWorkload, name: "pods")
        gantryNodes = Informer(client: client, resource: .gantryNodes, name: "gantry-nodes")
        let relay = self.relay
        workloads.addHandler { relay.event(.workload, $0) }
        queues.addHandler { relay.event(.queue, $0) }
        pools.addHandler { relay.event(.resourcePool, $0) }
        nodes.addHandler { relay.event(.node, $0) }
        pods.addHandler { relay.event(nil, $0) }
        gantryNodes.addHandler { [weak self] e in
            if case .added(let v) = e, self?.active.load(ordering: .relaxed) == true { self?.warnIgnoredNode(v) }
        }
    }

    public var ready: Bool { synced.load(ordering: .relaxed) && (active.load(ordering: .relaxed) || (options.leaderElect && !leading.load(ordering: .relaxed))) }

    public func stop() {
        stopFlag.store(true, ordering: .relaxed)
        stopSignal.signal()
    }

    /// Stops as a killed process would: nothing more is done, and the Lease is left to expire.
    public func abandon() {
        abandoned.store(true, ordering: .relaxed)
        elector?.stop()
        stop()
    }

    /// The informers the initial sync waits for (the gantry.dev Node informer is not one: its
    /// CRD may not be installed, and nothing depends on it).
    var informers: [Informer] { [workloads, queues, pools, nodes, pods] }

    /// Runs until `stop()`; returns the exit status.
    public func run() -> Int32 {
        defer { finished.store(true, ordering: .relaxed) }
        for i in informers { i.start() }
        gantryNodes.start()
        Log.info("kube mode: listing and watching", ["server": options.server])
        var waited = 0.0
        while !informers.allSatisfy(\.hasSynced) {
            if stopFlag.load(ordering: .relaxed) { shutdown(); return 0 }
            _ = stopSignal.wait(timeout: .now() + 0.05)
            beat()
            waited += 0.05
            if waited.truncatingRemainder(dividingBy: 10) < 0.05 && waited > 1 {
                for i in informers where !i.hasSynced {
                    if let e = i.lastError {
                        let hint = e.code == 404 && i.resource.group == "gantry.dev" ? " (are the CRDs installed? kubectl apply -k Manifests/crds)" : e.code == 403 ? " (RBAC: see deploy/rbac.yaml)" : ""
                        Log.error("cannot list \(i.name)\(hint)", ["error": e.description])
                    } else {
                        Log.info("waiting for the first list", ["informer": i.name])
                    }
                }
            }
        }
        synced.store(true, ordering: .relaxed)
        Log.info("caches synced", ["workloads": String(workloads.list().count), "queues": String(queues.list().count),
                                   "resourcePools": String(pools.list().count), "nodes": String(nodes.list().count), "pods": String(pods.list().count)])
        if options.leaderElect {
            let elector = LeaderElector(client: client, namespace: options.leaseNamespace, name: options.leaseName, identity: options.identity,
                                        leaseDuration: options.leaseDuration, renewDeadline: options.renewDeadline, retryPeriod: options.retryPeriod)
            self.elector = elector
            Log.info("standing by for the lease", ["lease": "\(options.leaseNamespace)/\(options.leaseName)", "identity": options.identity])
            elector.start(onStartedLeading: { [self] in
                Log.info("became the leader", ["identity": options.identity])
                leading.store(true, ordering: .relaxed)
                stopSignal.signal()
            }, onStoppedLeading: { [self] in
                guard !stopFlag.load(ordering: .relaxed) else { return }
                Log.error("lost the lease: exiting so that a restart stands by again", ["identity": options.identity])
                active.store(false, ordering: .relaxed)
                // Another replica leads now; acting on would run replicas twice.
                options.onLostLease()
                stop()
            })
            while !leading.load(ordering: .relaxed) {
                if stopFlag.load(ordering: .relaxed) { shutdown(); return 0 }
                _ = stopSignal.wait(timeout: .now() + 0.1)
                beat()
            }
        } else {
            leading.store(true, ordering: .relaxed)
        }
        if stopFlag.load(ordering: .relaxed) { shutdown(); return 0 }
        lead()
        var lastCheck = 0.0
        while !stopFlag.load(ordering: .relaxed) {
            _ = stopSignal.wait(timeout: .now() + 0.1)
            beat()
            guard let s = stack.withLock({ $0 }) else { continue }
            s.admission.tick()
            let now = clock.now()
            if now - lastCheck >= 1 {
                lastCheck = now
                checkDeleting()
            }
        }
        shutdown()
        return 0
    }

    func shutdown() {
        Log.info("shutting down: replicas keep running as Pods")
        if let s = stack.withLock({ $0 }) {
            s.runtime?.stop()
            s.admission.stop()
            s.queue.shutDownNow()
            s.timers?.0.shutDownNow()
            _ = s.timers?.1.wait(timeout: 2)
            _ = s.controller.wait(timeout: 5)
            // Statuses and events still queued get a moment to go out (not after a simulated crash).
            let deadline = monotonicSeconds() + (abandoned.load(ordering: .relaxed) ? 0 : 3)
            while (!s.statusWriter.idle || !s.eventSink.idle) && monotonicSeconds() < deadline { usleep(20_000) }
            s.statusWriter.stop(); s.eventSink.stop(); s.finalizers.stop()
        }
        for i in informers { i.stop() }
        gantryNodes.stop()
        if !abandoned.load(ordering: .relaxed) { elector?.release() }
    }

    // MARK: Leading

    func lead() {
        let t0 = monotonicSeconds()
        let queue = WorkQueue<ObjectKey>(name: "gantry", clock: clock, metrics: metrics)
        let statusWriter = KubeStatusWriter(client: client, threads: options.statusWriters)
        let invBox = Mutex<Inventory?>(nil)
        let eventSink = KubeEventSink(client: client, host: ProcessInfo.processInfo.hostName, instance: options.identity) { o in
            guard let kind = Kind(rawValue: o.kind) else { return nil }
            return invBox.withLock { $0 }?.desired.get(ObjectKey(kind, namespace: o.namespace, name: o.name))?.meta.uid
        }
        let events = EventRecorder(sink: eventSink, clock: clock)
        let statuses = StatusCache(persistence: statusWriter)
        statusWriter.setProvider { statuses.get($0)?.toValue() }
        let inventory = Inventory(persistence: statusWriter, statuses: statuses, queue: queue, events: events, clock: clock)
        invBox.withLock { $0 = inventory }
        var runtime: PodRuntime?
        if options.runReplicas {
            let lookup = PodRuntime.Lookup(
                uid: { inventory.desired.get($0)?.meta.uid },
                spec: { inventory.desired.get($0)?.spec.workload },
                vendor: { inventory.desired.get(ObjectKey(.node, name: $0))?.spec.node?.gpuVendor ?? .nvidia },
                finalizer: { [weak self] key in self?.writeFinalizer(key) })
            var ro = PodRuntime.Options()
            ro.gracePeriod = options.gracePeriod
            runtime = PodRuntime(client: client, pods: pods, lookup: lookup, options: ro)
        }
        var lifecycle = LifecycleOptions()
        lifecycle.gracePeriod = options.gracePeriod
        lifecycle.specDir = ""
        lifecycle.baseEnv = [:]
        lifecycle.reportsPIDs = false
        lifecycle.replicaName = { key, type, rank in PodRuntime.podName(key, rank: rank, type: type) }
        let admission = Admission(inventory: inventory, clock: clock, metrics: metrics, runtime: runtime, options: lifecycle)
        let controller = Controller(name: "gantry", queue: queue, reconciler: KindRouter(inventory: inventory, admission: admission, clock: clock), workers: options.workers, metrics: metrics)
        let finalizers = KeyedWriter<ObjectKey>(name: "gantry-finalizers", threads: 1) { [weak self] k in self?.writeFinalizer(k) }
        stack.withLock { $0 = Stack(queue: queue, inventory: inventory, admission: admission, controller: controller, statusWriter: statusWriter,
                                    eventSink: eventSink, runtime: runtime, finalizers: finalizers) }

        // From here informer events wait in the relay's buffer.
        relay.state.withLock { $0.mode = .buffering }
        // Statuses as the API server holds them: the admissions of a previous leader stand.
        var changes: [ManifestChange] = []
        for (kind, inf) in [(Kind.queue, queues), (.resourcePool, pools), (.workload, workloads)] {
            for v in inf.list() {
                changes += convert(kind, v, statusWriter: statusWriter, statuses: statuses, restoring: true)
            }
        }
        for v in nodes.list() { changes += convert(.node, v, statusWriter: statusWriter, statuses: statuses, restoring: true) }
        let recovered = runtime?.recover() ?? [:]
        if !recovered.isEmpty { Log.info("found Pods of earlier dispatches", ["workloads": String(recovered.count)]) }
        admission.setRecovered(recovered)
        admission.pause()
        admission.start()
        controller.start()
        let timerQueue = WorkQueue<ObjectKey>(name: "lifecycle", clock: clock, metrics: metrics)
        let timerController = Controller(name: "lifecycle", queue: timerQueue, reconciler: LifecycleTimerReconciler(admission: admission), workers: 1, metrics: metrics)
        admission.useTimerQueue(timerQueue)
        timerController.start()
        stack.withLock { $0?.timers = (timerQueue, timerController) }
        inventory.beginBulk()
        inventory.apply(changes)
        inventory.endBulk()
        while !queue.isIdle() && !stopFlag.load(ordering: .relaxed) { usleep(2000) }
        let pass = admission.resume()
        admission.adoptOrphans()
        runtime?.start { admission.runtimeEvent($0) }
        // Live: buffered events first, in order.
        relay.deliver.withLock { $0 = Relay.Deliver(f: { [weak self] kind, e in self?.liveEvent(kind, e) }) }
        while true {
            let batch: [(Kind?, InformerEvent)] = relay.state.withLock { st in
                let b = st.buffer; st.buffer = []
                if b.isEmpty { st.mode = .live }
                return b
            }
            if batch.isEmpty { break }
            for (k, e) in batch { liveEvent(k, e) }
        }
        active.store(true, ordering: .relaxed)
        for v in gantryNodes.list() { warnIgnoredNode(v) }
        Log.info("initial sync complete", ["objects": String(inventory.desired.count), "admitted": String(pass.admitted),
                                           "seconds": String(format: "%.3f", monotonicSeconds() - t0)])
    }

    /// An informer object as an inventory change; nil when nothing the controllers read changed.
    func convert(_ kind: Kind, _ v: Value, statusWriter: KubeStatusWriter, statuses: StatusCache, restoring: Bool) -> [ManifestChange] {
        if kind == .node {
            guard let obj = KubeObjects.node(v) else { return [] }
            let sig = JSON.encode(obj.spec.toValue()) + "|" + obj.meta.labels.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            guard remember(obj.key, sig) else { return [] }
            return [.upsert(obj)]
        }
        let sm = KubeObjects.ServerMeta(v)
        guard let name = v["metadata"]?["name"]?.stringValue else { return [] }
        let ns = kind.isNamespaced ? (v["metadata"]?["namespace"]?.stringValue ?? "default") : ""
        let key = ObjectKey(kind, namespace: ns, name: name)
        statusWriter.observed(key, v["status"], resourceVersion: sm.resourceVersion)
        if restoring, let st = v["status"], st != .null, st != .object([]) {
            statuses.restore(key, ObjectStatus.from(st, kind: kind))
        }
        if kind == .workload && sm.deleting {
            deleting.withLock { _ = $0.insert(key) }
            guard remember(key, "deleting") else { return [] }
            return [.delete(key)]
        }
        let sig = "\(sm.generation)|\(sm.uid)|" + JSON.encode(v["metadata"]?["labels"] ?? .null) + JSON.encode(v["metadata"]?["annotations"] ?? .null)
        guard remember(key, sig) else { return [] }
        let file = KubeObjects.display(kind, v)
        switch KubeObjects.decode(v, kind: kind, fieldValidation: options.fieldValidation) {
        case .object(let obj, let warnings):
            // The report of the object's "file" (its name here) is cleared when it decodes cleanly.
            return [.fileReport(file: file, fatal: nil, errors: [], warnings: warnings), .upsert(obj)]
        case .rejected(let errors):
            return [.fileReport(file: file, fatal: errors.first, errors: Array(errors.dropFirst()), warnings: [])]
        }
    }

    /// Records what was forwarded; false when it is the same as last time.
    func remember(_ key: ObjectKey, _ sig: String) -> Bool {
        forwarded.withLock { f in
            if f[key] == sig { return false }
            f[key] = sig
            return true
        }
    }

    func liveEvent(_ kind: Kind?, _ e: InformerEvent) {
        guard let s = stack.withLock({ $0 }) else { return }
        guard let kind else {
            s.runtime?.podEvent(e)
            // A Pod gone: a deleted workload may be ready to let go.
            if case .deleted = e { checkDeleting() }
            return
        }
        switch e {
        case .added(let v), .updated(_, let v):
            let changes = convert(kind, v, statusWriter: s.statusWriter, statuses: s.inventory.statuses, restoring: false)
            if !changes.isEmpty { s.inventory.apply(changes) }
        case .deleted(let v):
            let key: ObjectKey
            if kind == .node {
                guard let n = v["metadata"]?["name"]?.stringValue else { return }
                key = ObjectKey(.node, name: n)
            } else {
                guard let n = v["metadata"]?["name"]?.stringValue else { return }
                key = ObjectKey(kind, namespace: kind.isNamespaced ? (v["metadata"]?["namespace"]?.stringValue ?? "default") : "", name: n)
            }
            _ = forwarded.withLock { $0.removeValue(forKey: key) }
            deleting.withLock { _ = $0.remove(key) }
            s.statusWriter.deleteObject(key)
            s.inventory.apply([.delete(key)])
        }
    }

    /// A gantry.dev Node in a cluster: one Warning event per object (by uid), then ignored.
    func warnIgnoredNode(_ v: Value) {
        guard let name = v["metadata"]?["name"]?.stringValue else { return }
        let uid = v["metadata"]?["uid"]?.stringValue ?? name
        guard let sink = stack.withLock({ $0?.eventSink }), warnedNodes.withLock({ $0.insert(uid).inserted }) else { return }
        Log.warn("ignored a gantry.dev Node: in kube mode the nodes are the cluster's Nodes", ["node": name])
        let now = clock.now()
        let nanos = UInt64(max(0, min(now, 1e10)) * 1e6)
        let record = EventRecord(name: "\(name).\(String(nanos, radix: 16))", involved: InvolvedObject(kind: "Node", name: name), type: .warning,
                                 reason: "NodeIgnored", message: "Gantry's Node kind is for directory mode; in kube mode the nodes are the cluster's Nodes (GPUs from allocatable nvidia.com/gpu or amd.com/gpu, the pool from the label gantry.dev/resource-pool). This object is ignored.",
                                 count: 1, firstTimestamp: now, lastTimestamp: now)
        sink.post(record, apiVersion: gantryAPIVersion, uid: uid)
    }

    // MARK: Finalizers

    /// Adds (before the workload's first Pods: PodRuntime asks) or removes (once its Pods are
    /// gone) the cleanup finalizer of one workload, from the cached object; a conflict (stale
    /// resourceVersion) is retried from the next cached version. Workloads that never ran
    /// carry none: nothing has to be cleaned up before they go.
    func writeFinalizer(_ key: ObjectKey) -> Double? {
        guard let v = workloads.get(namespace: key.namespace, name: key.name), let path = KubeObjects.path(key) else { return nil }
        let sm = KubeObjects.ServerMeta(v)
        var list = sm.finalizers
        if sm.deleting {
            guard list.contains(KubeObjects.finalizer), podsOf(key).isEmpty else { return nil }
            list.removeAll { $0 == KubeObjects.finalizer }
        } else {
            guard !list.contains(KubeObjects.finalizer) else { return nil }
            list.append(KubeObjects.finalizer)
        }
        let patch: Value = .object([Value.Member("metadata", .object([
            Value.Member("resourceVersion", .string(sm.resourceVersion)),
            Value.Member("finalizers", .array(list.map { .string($0) })),
        ]))])
        do throws(KubeError) { _ = try client.patch(path, patch, type: .merge) } catch {
            if error.code == 404 { return nil }
            if error.code == 409 { return 0.2 }
            if error.isTransient { return 1 }
            Log.warn("cannot write the cleanup finalizer", ["key": key.description, "error": error.description])
            return nil
        }
        if sm.deleting { Log.info("replicas gone: finalizer removed", ["key": key.description]) }
        return nil
    }

    func podsOf(_ key: ObjectKey) -> [Value] {
        if let rt = stack.withLock({ $0?.runtime }) { return rt.pods(of: key) }
        return pods.list().filter { p in
            p["metadata"]?["namespace"]?.stringValue == key.namespace && KubeObjects.stringMap(p["metadata"]?["labels"])[KubeObjects.labelWorkload] == key.name
        }
    }

    func checkDeleting() {
        guard let s = stack.withLock({ $0 }) else { return }
        for key in deleting.withLock({ Array($0) }) {
            guard let v = workloads.get(namespace: key.namespace, name: key.name) else {
                deleting.withLock { _ = $0.remove(key) }
                continue
            }
            if KubeObjects.ServerMeta(v).finalizers.contains(KubeObjects.finalizer) && podsOf(key).isEmpty { s.finalizers.mark(key) }
        }
    }
}
