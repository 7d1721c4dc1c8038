import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import ControllerRuntime
@testable import DirectorySource
@testable import YAMLCodec
@testable import Controllers

/// Every event the recorder lets through, one write per occurrence (a repeat that only bumps
/// `count` is written again, so counting writes counts occurrences).
final class StackEventLog: EventSink, @unchecked Sendable {
    let records = Mutex<[EventRecord]>([])
    func write(_ e: EventRecord) { records.withLock { $0.append(e) } }
    var all: [EventRecord] { records.withLock { $0 } }
    var count: Int { records.withLock { $0.count } }
    func since(_ i: Int) -> [EventRecord] { records.withLock { Array($0[min(i, $0.count)...]) } }
}

/// A replica runtime whose processes do only what the test says: a launched replica lives
/// (holding its node's GPUs) until the test reports its exit, SIGTERM or not. Signals are only
/// noted; a SIGKILL'd replica is reported gone by the harness after the step that killed it.
final class StackRuntime: ReplicaRuntime, @unchecked Sendable {
    struct Proc {
        var launch: ReplicaLaunch
        var node: String
        var gpus: [Int]
        var started = false
        var exited = false
        var terminated = false
        var killed = false
    }
    struct State {
        var procs: [ReplicaRef: Proc] = [:]
        var order: [ReplicaRef] = []
        var port = 30000
        var kills = 0
    }
    let s = Mutex(State())

    func start(_ handler: @escaping @Sendable (RuntimeEvent) -> Void) {}
    func prepare(_ key: ObjectKey, _ intent: DispatchIntent) {}
    func launch(_ l: ReplicaLaunch) {
        func env(_ name: String) -> String? { l.env.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } }
        let node = env("GANTRY_NODE") ?? ""
        let devices = env("CUDA_VISIBLE_DEVICES") ?? env("HIP_VISIBLE_DEVICES") ?? ""
        let gpus = devices.split(separator: ",").compactMap { Int($0) }
        s.withLock { st in
            if st.procs[l.ref] == nil { st.order.append(l.ref) }
            st.procs[l.ref] = Proc(launch: l, node: node, gpus: gpus)
        }
    }
    func signal(_ ref: ReplicaRef, force: Bool) {
        s.withLock { st in
            guard var p = st.procs[ref], !p.exited else { return }
            if force { p.killed = true; st.kills += 1 } else { p.terminated = true }
            st.procs[ref] = p
        }
    }
    func forget(_ key: ObjectKey, keepDispatch: Int?, files: Bool) {}
    func tail(_ key: ObjectKey, rank: Int, lines: Int) -> [String] { [] }
    func workdir(_ key: ObjectKey) -> String { "/work/\(key.namespace)/\(key.name)" }
    func recover() -> [ObjectKey: RecoveredDispatch] { [:] }
    func freePort() -> Int { s.withLock { $0.port += 1; return $0.port } }

    /// Replicas launched and not reported exited, in launch order.
    var live: [(ReplicaRef, Proc)] { s.withLock { st in st.order.compactMap { r in st.procs[r].flatMap { $0.exited ? nil : (r, $0) } } } }
    var launchCount: Int { s.withLock { $0.order.count } }
    var kills: Int { s.withLock { $0.kills } }
    func launches(_ name: String) -> [ReplicaLaunch] { s.withLock { st in st.order.filter { $0.key.name == name }.compactMap { st.procs[$0]?.launch } } }
    func procs(_ name: String) -> [Proc] { s.withLock { st in st.order.filter { $0.key.name == name }.compactMap { st.procs[$0] } } }
    func mark(_ ref: ReplicaRef, started: Bool = false, exited: Bool = false) {
        s.withLock { st in
            if started { st.procs[ref]?.started = true }
            if exited { st.procs[ref]?.exited = true }
        }
    }
}

/// The controller stack as the daemon wires it (inventory, reconcilers, admission with the
/// replica lifecycle) over in-memory persistence, a manual clock and `StackRuntime`, fed
/// manifests through the real decoder and manifest index. Nothing runs by itself: `drain`
/// reconciles and runs admission cycles until both are quiet.
struct StackHarness {
    let clock = ManualClock()
    let persistence = MemoryPersistence()
    let queue: WorkQueue<ObjectKey>
    let inventory: Inventory
    let admission: Admission
    let controller: Controller
    let events = StackEventLog()
    let rt = StackRuntime()
    var index = ManifestIndex()
    /// Keys a reconcile takes at once (1: one by one), as a worker does from a long queue.
    var batch = 1

    init(grace: Double = 30) {
        queue = WorkQueue(name: "stack", clock: clock)
        let statuses = StatusCache(persistence: persistence)
        // No spam filter or aggregation worth the name: every event reaches the log.
        let recorder = EventRecorder(sink: events, clock: clock, burst: 1_000_000, refillSeconds: 1, similarLimit: 1_000_000)
        inventory = Inventory(persistence: persistence, statuses: statuses, queue: queue, events: recorder, clock: clock)
        var o = LifecycleOptions()
        o.gracePeriod = grace
        o.specDir = "/spec"
        admission = Admission(inventory: inventory, clock: clock, metrics: Metrics(), runtime: rt, options: o)
        controller = Controller(name: "stack", queue: queue, reconciler: KindRouter(inventory: inventory, admission: admission, clock: clock), workers: 1, metrics: nil)
        let inv = inventory
        persistence.objectProvider = { inv.row(for: $0) }
        Log.setSink { _ in }
    }

    mutating func apply(_ path: String, _ yaml: String) {
        inventory.apply(index.update(ManifestFile.decode(path: path, bytes: Array(yaml.utf8))))
        drain()
    }
    mutating func remove(_ path: String) { inventory.apply(index.remove(path: path)); drain() }

    func drain() {
        repeat {
            while controller.processNext(batch: batch) {}
            admission.runCycles()
        } while queue.count > 0
    }

    func started(_ ref: ReplicaRef) {
        if StackRun.trace { print("  started \(ref)") }
        rt.mark(ref, started: true)
        admission.runtimeEvent(.started(ref, pid: Int32(1000 + ref.rank), at: clock.now()))
        drain()
    }
    func exited(_ ref: ReplicaRef, _ code: Int32) {
        if StackRun.trace { print("  exited \(ref) code \(code)") }
        rt.mark(ref, exited: true)
        admission.runtimeEvent(.exited(ref, code: code, signal: code > 128 ? code - 128 : 0, at: clock.now()))
        drain()
    }
    /// Moves the clock, fires due timers, then lets SIGKILL'd replicas go (SIGKILL cannot be ignored).
    func advance(_ seconds: Double) {
        if StackRun.trace { print("  advance \(seconds)s") }
        clock.advance(by: seconds)
        admission.tick()
        drain()
        reapKilled()
    }
    @discardableResult
    func reapKilled() -> Int {
        let killed = rt.live.filter { $0.1.killed }
        for (ref, _) in killed { exited(ref, 137) }
        return killed.count
    }
    /// Reports every live, not yet started replica (of `name`, or all) as started.
    func startAll(_ name: String? = nil) {
        for (ref, p) in rt.live where !p.started && (name == nil || ref.key.name == name) { started(ref) }
    }
    /// The newest live replicas of `name` exit with `code`.
    func exitAll(_ name: String, _ code: Int32) {
        for (ref, _) in rt.live where ref.key.name == name { exited(ref, code) }
    }

    func status(_ key: ObjectKey) -> WorkloadStatus? { inventory.statuses.get(key)?.workload }
    func queueStatus(_ name: String) -> QueueStatus? { inventory.statuses.get(ObjectKey(.queue, name: name))?.queue }
    func events(_ reason: String, _ name: String) -> [EventRecord] { events.all.filter { $0.reason == reason && $0.involved.name == name } }
}
