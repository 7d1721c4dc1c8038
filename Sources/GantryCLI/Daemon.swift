import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import StateStore
import DirectorySource
import Controllers
import YAMLCodec
import CShim

/// Options of `gantry run`.
public struct DaemonOptions: Sendable {
    public var specDir = "Manifests/examples"
    public var stateDir = ".gantry-state"
    public var workers = 4
    public var resync = 300.0
    public var eventTTL = 86400.0
    public var debounce = 0.01
    public var maxFileSize = 16 << 20
    /// What unknown fields in manifests are (`--field-validation`).
    public var fieldValidation = FieldValidation.strict
    /// GPUs of the local node (used while no Node is declared); nil: discover.
    public var localGPUs: Int?
    /// Largest log kept per replica (bytes; 0: no cap).
    public var maxLogSize = 64 << 20
    /// SIGTERM, then SIGKILL after this many seconds.
    public var gracePeriod = 30.0
    /// GPU metrics sampling period (seconds; 0: off).
    public var metricsInterval = 15.0
    /// The replica supervisor command; nil: `gantry-shim` next to the binary, else `gantry shim`.
    public var shim: [String]?
    /// `--run-as USER`: the Unix account replicas of the spec directory's manifests run as
    /// (nil: the daemon's own). API-written workloads run as their submitter's account.
    public var runAs: String?
    /// False (`--runtime none`): admit only, start nothing (capacity planning, benchmarks).
    public var runReplicas = true
    public var logFormat = Log.Format.text
    public var logLevel = Log.Level.info
    /// `--metrics-addr`: where /healthz, /readyz and /metrics are served; nil: off.
    public var metricsAddress: String?
    /// `--listen`: where the HTTP API, the dashboard and the probes are served; nil: off.
    public var listenAddress: String?
    /// `--tokens`: the API's bearer tokens; nil: no auth, loopback addresses only.
    public var tokensFile: String?
    /// `--history-retention`: how long deleted workloads stay listed by `?deleted=true`.
    public var historyRetention = 7 * 86400.0
    /// The longest API watch stream (`--watch-max-seconds`).
    public var watchMaxSeconds = 1800
    public init() {}
}

/// The daemon in directory mode: state store, inventory, work queue and workers, directory
/// source; SIGTERM/SIGINT shut down gracefully (finish in-flight reconciles, flush state,
/// exit 0), a second signal exits at once.
public final class Daemon: @unchecked Sendable {
    let options: DaemonOptions
    let stopSignal = DispatchSemaphore(value: 0)
    let signals = Atomic<Int>(0)
    var sources: [DispatchSourceSignal] = []
    /// Called on the first signal (cancels the directory scan).
    struct Hook: Sendable { let f: @Sendable () -> Void }
    let onSignal = Mutex<Hook?>(nil)

    public init(options: DaemonOptions) { self.options = options }

    public func run() -> Int32 {
        Log.configure(level: options.logLevel, format: options.logFormat)
        // Two malloc arenas: with the default (8 per core) memory freed in one thread's arena
        // is not reused by the others, and the 100,000-workload load peaks ~15 MB higher.
        _ = g_limit_malloc_arenas(2)
        // Big transient collections of the load (decoded chunks, 100,000-entry sets and arrays)
        // are mmapped and go back to the kernel when freed instead of fragmenting the heap.
        _ = g_malloc_mmap_threshold(256 << 10)
        let started = monotonicSeconds()
        let clock = SystemClock()
        let store: StateStore
        do { store = try StateStore(directory: options.stateDir) } catch {
            Log.error("cannot start", ["error": "\(error)"])
            errOut("gantry: \(error)")
            return 1
        }
        installSignalHandlers()
        // Orphaned descendants of replicas re-parent here, not to PID 1, and are reaped.
        _ = g_prctl_set_child_subreaper()
        let metrics = Metrics()
        let probes: ProbeServer?
        do { probes = try options.metricsAddress.map { try ProbeServer(address: $0, metrics: metrics) } } catch {
            Log.error("cannot start", ["error": "--metrics-addr: \(error)"])
            errOut("gantry: --metrics-addr: \(error)")
            return 1
        }
        if let probes, let a = options.metricsAddress { Log.info("serving probes and metrics", ["address": a, "port": String(probes.port)]) }
        let queue = WorkQueue<ObjectKey>(name: "gantry", clock: clock, metrics: metrics)
        let events = EventRecorder(sink: store, clock: clock)
        let statuses = StatusCache(persistence: store)
        store.statusProvider = { statuses.json($0) }
        let inventory = Inventory(persistence: store, statuses: statuses, queue: queue, events: events, clock: clock)
        // The user's spec directory and the API's directory feed the inventory; the user's wins.
        let layers = ManifestLayers(downstream: inventory, current: { inventory.desired.get($0)?.source }, events: events)
        store.objectProvider = { inventory.row(for: $0) }
        do {
            let rows = try store.loadObjects()
            inventory.restore(rows)
            if !rows.isEmpty { Log.info("restored state", ["objects": String(rows.count), "stateDir": options.stateDir]) }
        } catch {
            Log.error("cannot read the state database", ["error": "\(error)"])
            errOut("gantry: \(error)")
            return 1
        }
        let overrides = Overrides(sql: { store.enqueueSQL($0, $1) })
        do { overrides.load(try store.loadOverrides()) } catch {
            Log.error("cannot read the state database", ["error": "\(error)"])
            errOut("gantry: \(error)")
            return 1
        }
        store.startWriter()
        inventory.setLocalNode(LocalNode.make(localGPUs: options.localGPUs))
        var env = ProcessInfo.processInfo.environment
        env["GANTRY_STATE_DIR"] = nil
        var runtime: ProcessRuntime?
        if options.runReplicas {
            do {
                let shim = options.shim ?? ProcessRuntime.defaultShim()
                runtime = try ProcessRuntime(stateDir: options.stateDir, shim: shim, maxLogSize: options.maxLogSize, baseEnv: env)
                if let problem = ProcessRuntime.accountSupervisorProblem(shim) { Log.warn(problem, ["shim": shim[0]]) }
            } catch {
                Log.error("cannot start", ["error": "\(error)"])
                errOut("gantry: \(error)")
                return 1
            }
        } else {
            Log.info("--runtime none: workloads are admitted but not started")
        }
        var lifecycle = LifecycleOptions()
        lifecycle.gracePeriod = options.gracePeriod
        lifecycle.specDir = URL(fileURLWithPath: options.specDir).standardizedFileURL.path
        lifecycle.baseEnv = env
        lifecycle.runAs = options.runAs
        let admission = Admission(inventory: inventory, clock: clock, metrics: metrics, runtime: runtime, options: lifecycle)
        let recovered = runtime?.recover() ?? [:]
        if !recovered.isEmpty { Log.info("found replica records of an earlier run", ["workloads": String(recovered.count)]) }
        admission.setRecovered(recovered)
        admission.pause()
        admission.start()
        let controller = Controller(name: "gantry", queue: queue, reconciler: KindRouter(inventory: inventory, admission: admission, clock: clock, overrides: overrides), workers: options.workers, metrics: metrics)
        controller.start()
        // Lifecycle timers (grace periods, deadlines, backoffs, TTLs) come back through a queue.
        let timerQueue = WorkQueue<ObjectKey>(name: "lifecycle", clock: clock, metrics: metrics)
        let timerController = Controller(name: "lifecycle", queue: timerQueue, reconciler: LifecycleTimerReconciler(admission: admission), workers: 1, metrics: metrics)
        admission.useTimerQueue(timerQueue)
        timerController.start()

        var sourceOptions = DirectorySource.Options()
        sourceOptions.resync = options.resync
        sourceOptions.debounce = options.debounce
        sourceOptions.maxDebounce = max(options.debounce * 10, 0.1)
        sourceOptions.maxFileSize = options.maxFileSize
        sourceOptions.fieldValidation = options.fieldValidation
        // A state directory inside the spec directory holds no manifests of the user's (API
        // objects, replicas' working directories): never read it as such.
        sourceOptions.excludeDirectories = [options.stateDir]
        let source = DirectorySource(root: options.specDir, options: sourceOptions, sink: layers.user, clock: clock)
        // Objects written through the HTTP API: a daemon-owned directory, watched the same way.
        let apiDir = DirectoryBackend.apiDir(options.stateDir)
        try? FileManager.default.createDirectory(atPath: apiDir, withIntermediateDirectories: true)
        let apiSource = DirectorySource(root: apiDir, options: sourceOptions, sink: layers.apiLayer, clock: clock)
        Log.info("starting", ["specDir": options.specDir, "stateDir": options.stateDir, "workers": String(options.workers), "pid": String(getpid())])
        onSignal.withLock { $0 = Hook(f: { source.cancel(); apiSource.cancel() }) }
        if signals.load(ordering: .relaxed) > 0 { source.cancel(); apiSource.cancel() }
        let api: (ProbeServer, DirectoryBackend)?
        do {
            api = try startAPI(inventory: inventory, layers: layers, overrides: overrides, events: events, queue: queue, clock: clock, metrics: metrics,
                               settled: { store.settledGeneration() })
        } catch {
            Log.error("cannot start", ["error": "--listen: \(error)"])
            errOut("gantry: --listen: \(error)")
            queue.shutDown(); _ = controller.wait(timeout: 5); store.close()
            return 1
        }
        let servers = [probes, api?.0].compactMap { $0 }
        inventory.beginBulk()
        // Into an empty store, the workload index's secondary indexes are built once at the end.
        do { try store.beginBulkLoad() } catch { Log.warn("cannot defer the workload index's indexes", ["error": "\(error)"]) }
        do { try apiSource.start(); try source.start() } catch {
            Log.error("cannot start", ["error": "\(error)"])
            errOut("gantry: \(error)")
            queue.shutDown(); _ = controller.wait(timeout: 5); store.close()
            return 1
        }
        // A scan cut short by a signal has not seen everything: infer no deletions from it.
        let removed = source.cancelled || apiSource.cancelled ? 0 : inventory.dropUnseenRestored()
        admission.reserveWorkloads(inventory.desired.count)
        inventory.endBulk()
        let scanned = monotonicSeconds()
        // While the workers reconcile (and this thread would wait): the objects committed and
        // the workload index's indexes built, before the first statuses.
        do { try store.indexLoadedObjects() } catch { Log.warn("cannot build the workload index's indexes yet; retried at the end of the load", ["error": "\(error)"]) }
        let indexed = monotonicSeconds()

        // Initial sync: every object reconciled and its status stored.
        while !queue.isIdle() && signals.load(ordering: .relaxed) == 0 { servers.forEach { $0.beat() }; usleep(2000) }
        if signals.load(ordering: .relaxed) > 0 {
            Log.info("initial sync interrupted by a signal", ["objects": String(inventory.desired.count)])
        } else {
            let reconciled = monotonicSeconds()
            // The first admission pass, over everything loaded.
            let pass = admission.resume()
            try? store.flush()
            let flushed = monotonicSeconds()
            do { try store.endBulkLoad() } catch { Log.error("cannot build the workload index's indexes", ["error": "\(error)"]) }
            let now = monotonicSeconds()
            func secs(_ v: Double) -> String { String(format: "%.3f", v) }
            func micros(_ a: borrowing Atomic<Int>) -> String { secs(Double(a.load(ordering: .relaxed)) / 1e6) }
            // What the load freed stays with the process otherwise (tens of MB at 100,000
            // workloads); before ready, so the walk over the heap does not stall the first edits.
            _ = g_malloc_trim()
            Log.info("initial sync complete", ["objects": String(inventory.desired.count), "removedWhileDown": String(removed),
                                               "seconds": secs(now - started), "scanSeconds": secs(scanned - started),
                                               "decodeSeconds": micros(source.loadMicros), "applySeconds": micros(source.applyMicros),
                                               "reconcileSeconds": secs(reconciled - scanned), "admissionSeconds": secs(pass.seconds),
                                               "admitted": String(pass.admitted), "flushSeconds": secs(flushed - reconciled - pass.seconds), "indexSeconds": secs(indexed - scanned), "endSeconds": secs(now - flushed),
                                               "writerSeconds": micros(store.commitSeconds), "batches": String(store.commits.load(ordering: .relaxed)),
                                               "buildSeconds": micros(store.buildMicros), "checkpoints": String(store.checkpoints.load(ordering: .relaxed)),
                                               "checkpointSeconds": micros(store.checkpointMicros)])
            servers.forEach { $0.setReady() }
            api?.1.ready.store(true, ordering: .releasing)
        }

        // Replicas: stop what belongs to workloads deleted while the daemon was down, then
        // follow the supervisors.
        admission.adoptOrphans()
        runtime?.start { admission.runtimeEvent($0) }
        let runMetrics = runtime.map { RunMetrics(admission: admission, runtime: $0, store: { store.enqueueSQL($0, $1) }) }

        var lastExpiry = 0.0, lastTraining = 0.0, lastGPU = 0.0
        while stopSignal.wait(timeout: .now() + 0.1) == .timedOut {
            servers.forEach { $0.beat() }
            admission.tick()
            applyControlRequests(inventory: inventory, overrides: overrides, queue: queue, events: events, clock: clock)
            let now = clock.now()
            if now - lastTraining >= 1 {
                lastTraining = now
                runMetrics?.collectTraining()
            }
            if let runMetrics, options.metricsInterval > 0 && now - lastGPU >= options.metricsInterval {
                lastGPU = now
                DispatchQueue.global().async { runMetrics.sampleGPUs() }
            }
            if now - lastExpiry > 60 {
                lastExpiry = now
                store.expireEvents(before: now - options.eventTTL)
                store.enqueueSQL("DELETE FROM history WHERE deleted_at < ?", [.double(now - options.historyRetention)])
                store.enqueueSQL("DELETE FROM metrics WHERE ts < ?", [.double(now - 7 * 86400)])
            }
        }
        Log.info("shutting down: finishing in-flight reconciles; replicas keep running under their supervisors")
        servers.forEach { $0.setNotReady("shutting down") }
        let t0 = monotonicSeconds()
        runtime?.stop()
        source.stop()
        apiSource.stop()
        admission.stop()
        // In-flight reconciles finish; queued keys are dropped (recomputed at the next start).
        queue.shutDownNow()
        timerQueue.shutDownNow()
        _ = timerController.wait(timeout: 2)
        if !controller.wait(timeout: 7) { Log.warn("workers did not finish in time; exiting anyway") }
        servers.forEach { $0.stop() }
        store.close()
        // The write-ahead log's upkeep: the longest TRUNCATE checkpoint is the longest the
        // writer was held off by one (gantry-bench --churn reports it).
        Log.info("state store closed", ["checkpoints": String(store.checkpoints.load(ordering: .relaxed)),
                                        "checkpointSeconds": String(format: "%.3f", Double(store.checkpointMicros.load(ordering: .relaxed)) / 1e6),
                                        "truncations": String(store.truncations.load(ordering: .relaxed)),
                                        "truncationsReadersBlocked": String(store.busyTruncations.load(ordering: .relaxed)),
                                        "longestTruncateMs": String(format: "%.1f", Double(store.maxTruncateMicros.load(ordering: .relaxed)) / 1e3),
                                        "writerPageCacheMB": String(format: "%.1f", Double(store.writerCacheBytes) / 1e6)])
        Log.info("stopped", ["seconds": String(format: "%.3f", monotonicSeconds() - t0)])
        // Everything is committed and closed; exiting here skips freeing the caches one object
        // at a time, which takes seconds with 100,000 objects.
        _exit(0)
    }

    /// `gantry stop` / `gantry resume` requests left in the state directory by the CLI.
    func applyControlRequests(inventory: Inventory, overrides: Overrides, queue: WorkQueue<ObjectKey>, events: EventRecorder, clock: any Clock) {
        for r in ControlRequests.pending(stateDir: options.stateDir) {
            defer { unlink(r.path) }
            guard r.verb == "stop" || r.verb == "resume", let obj = inventory.desired.get(r.key), obj.spec.workload != nil else {
                Log.warn("ignored a control request", ["request": r.verb, "key": r.key.description, "reason": "no such workload"])
                continue
            }
            let suspend = r.verb == "stop"
            overrides.set(r.key, SuspendOverride(suspend: suspend, generation: obj.meta.generation, at: clock.timestamp, by: "gantry \(r.verb)"))
            events.normal(InvolvedObject(r.key), suspend ? "StopRequested" : "ResumeRequested",
                          "`gantry \(r.verb)`: spec.suspend is \(suspend) until the manifest changes (the file is not rewritten)")
            Log.info("control request applied", ["request": r.verb, "key": r.key.description])
            queue.add(r.key)
        }
    }

    func installSignalHandlers() {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [self] in
                if self.signals.add(1, ordering: .relaxed).newValue > 1 {
                    Log.warn("second signal: exiting now")
                    _exit(2)
                }
                Log.info("signal received", ["signal": sig == SIGTERM ? "SIGTERM" : "SIGINT"])
                self.onSignal.withLock { $0 }?.f()
                self.stopSignal.signal()
            }
            s.resume()
            sources.append(s)
        }
    }
}
