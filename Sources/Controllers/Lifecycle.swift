import Foundation
import GantryAPI
import ControllerRuntime
import Scheduler
import StateStore

/// Settings of the replica lifecycle.
public struct LifecycleOptions: Sendable {
    /// SIGTERM, then SIGKILL after this many seconds.
    public var gracePeriod = 30.0
    /// Restart backoff: `base * 2^n`, at most `cap` seconds.
    public var backoffBase = 1.0
    public var backoffCap = 60.0
    /// A service replica that ran this long before it failed restarts without backoff.
    public var backoffReset = 600.0
    /// GANTRY_SPEC_DIR for replicas (absolute).
    public var specDir = ""
    /// The environment every replica starts from (the daemon's own, as Slurm passes it on).
    public var baseEnv: [String: String] = [:] {
        didSet { baseEnvLines = baseEnv.sorted { $0.key < $1.key }.map { ($0.key, "\($0.key)=\($0.value)") } }
    }
    /// `baseEnv` as `NAME=value` lines sorted by name, made once (not per replica start).
    private(set) var baseEnvLines: [(name: String, line: String)] = []
    /// The name a replica goes by in status (kube mode: its Pod's name); nil:
    /// `<workload>-worker-<rank>`.
    public var replicaName: (@Sendable (ObjectKey, WorkloadType?, Int) -> String)?
    /// Whether replicas are local processes with pids and GPU indices worth reporting (not
    /// Pods: their GPU indices are the device plugin's, so status shows a count).
    public var reportsPIDs = true
    /// `--run-as`: the account replicas of the spec directory's manifests run as (nil: the
    /// daemon's own). See `RunAs`.
    public var runAs: String?
    /// Whether the daemon runs as root (then a workload written through the API with no
    /// account mapped is refused, never run as root).
    public var daemonIsRoot = geteuid() == 0
    public init() {}
}

/// One dispatch (gang start) of a workload and its replicas.
struct Run: Equatable {
    enum RepState { case starting, running, exited, lost, waiting }
    struct Rep: Equatable {
        var rank: Int
        var node: String
        var gpus: [Int]
        var attempt = 0
        var pid: Int32?
        var start: Double?
        var end: Double?
        var code: Int32?
        var signal: Int32 = 0
        var state = RepState.starting
        var restartAt: Double?
        var alive: Bool { state == .starting || state == .running }
    }
    /// Why the gang is being stopped; what happens once its processes are gone.
    enum Stop: Equatable {
        case preempted, suspended, deleted, specChanged, deadline, failed(reason: String, message: String)
        /// Restart the gang after a failure (`after`), not before `until`; `spends`: the
        /// restart counts against maxRetry (not after an infrastructure fault).
        case retry(after: String, until: Double, spends: Bool)
    }
    var dispatch: Int
    var specHash: String
    var assignments: [ReplicaAssignment]
    var port: Int
    var reps: [Rep]
    var stopping: Stop?
    var termAt: Double?
    var killed = false
    var announced = false

    var anyAlive: Bool { reps.contains { $0.alive } }
    func ref(_ key: ObjectKey, _ rep: Rep) -> ReplicaRef { ReplicaRef(key: key, dispatch: dispatch, rank: rep.rank, attempt: rep.attempt) }
    var allRunning: Bool { reps.allSatisfy { $0.state == .running } }
}

extension Admission {
    // MARK: Inputs

    /// A runtime event (from the runtime's thread).
    public func runtimeEvent(_ e: RuntimeEvent) {
        // What a replica that ended printed last, for failure messages: read before the lock.
        var lines: [String]?
        switch e {
        case .exited(let r, let code, let sig, _) where code != 0 || sig != 0: lines = runtime?.tail(r.key, rank: r.rank, lines: 5)
        case .lost(let r, _): lines = runtime?.tail(r.key, rank: r.rank, lines: 5)
        default: break
        }
        locked {
            if let lines { tails[e.ref] = lines }
            handle(e)
            evaluateRun(e.ref.key)
            tails[e.ref] = nil
        }
    }

    /// Timers: grace periods, deadlines, backoffs, TTLs. Called every 100 ms by the daemon
    /// (and by tests after moving the clock).
    public func tick() {
        // A probe of the runtime does I/O: decided under the lock, done outside it.
        let probe = locked { probeDue(now: clock.now()) }
        let fault = probe ? runtime?.probe() : nil
        locked {
            if probe { applyProbe(fault, now: clock.now()) }
            flushPositions()
            // With a timer queue the timers come back through it (`timerDue`); the tick fires
            // them only without one (tests that move a manual clock).
            guard timerQueue == nil else { return }
            let now = clock.now()
            for k in timers.filter({ $0.value <= now }).map(\.key) { fireTimer(k, now: now) }
        }
    }

    func fireTimer(_ k: ObjectKey, now: Double) {
        timers[k] = nil
        if let expired = ReplicaLifecycle.expire(ttlDue: ttlDue[k], now: now) {
            ttlDue[k] = nil
            perform(k, [expired])
            Log.info("finished workload's logs and working directory removed (ttlSecondsAfterFinished)", ["key": k.description])
        }
        evaluateRun(k)
    }

    /// Lifecycle timers (grace periods, deadlines, backoffs, TTLs) come back through `queue`
    /// as delayed adds (a reconcile with requeueAfter) instead of the tick.
    public func useTimerQueue(_ queue: WorkQueue<ObjectKey>) {
        locked {
            timerQueue = queue
            let now = clock.now()
            for (k, t) in timers { queue.addAfter(k, max(0, t - now)) }
        }
    }

    /// The timer queue's reconcile: fires the workload's timer if it is due; the delay until
    /// its next one, if any.
    public func timerDue(_ key: ObjectKey) -> Double? {
        locked {
            guard let t = timers[key] else { return nil }
            let now = clock.now()
            if t > now { return t - now }
            fireTimer(key, now: now)
            return timers[key].map { max(0.001, $0 - now) }
        }
    }

    func schedule(_ key: ObjectKey, at t: Double) {
        if let cur = timers[key], cur <= t { return }
        timers[key] = t
        timerQueue?.addAfter(key, max(0, t - clock.now()))
    }

    // MARK: Recovery

    /// Runs found in the state directory at start-up; each is adopted when its workload is
    /// first synced, and `adoptOrphans` stops those whose workload is gone.
    public func setRecovered(_ r: [ObjectKey: RecoveredDispatch]) {
        // Rendezvous ports for the first dispatches, found here rather than under the lock.
        let fresh = runtime.map { rt in (0..<4).map { _ in rt.freePort() } } ?? []
        locked { ports += fresh }
        // The last lines of replicas that ended while the daemon was down, read before the lock.
        var lines: [ReplicaRef: [String]] = [:]
        for rec in r.values {
            for rep in rec.replicas.values where rep.lost || rep.fault != nil || rep.exit.map({ $0.code != 0 || $0.signal != 0 }) == true {
                if let t = runtime?.tail(rep.ref.key, rank: rep.ref.rank, lines: 5), !t.isEmpty { lines[rep.ref] = t }
            }
        }
        locked { recovered = r; tails.merge(lines) { $1 } }
    }

    func adopt(_ key: ObjectKey) {
        guard recovered[key] != nil else { return }
        // The placement must be checked against every node: wait for the end of the load.
        if paused { deferredRestores.insert(key); return }
        guard let rec = recovered.removeValue(forKey: key) else { return }
        let now = clock.now()
        let alive = rec.intent.assignments.contains { a in rec.replicas[a.rank].map { $0.exit == nil && !$0.lost && $0.fault == nil } ?? true }
        if !state.isAdmitted(key) && synced[key] != nil {
            let known = (statuses.get(key)?.workload?.dispatchCount ?? 0) >= rec.intent.dispatch
            if !known {
                // The daemon died between starting the dispatch and storing its status: the
                // dispatch stands, with the admission it was started under.
                if state.contains(key) { _ = state.restoreAdmission(key, assignments: rec.intent.assignments, admittedAt: now) }
            } else {
                // The admission was withdrawn (preempted, stopped) before the restart: a
                // dispatch that is over is history; live replicas keep their GPUs until stopped.
                guard alive else { return }
                if state.contains(key), state.restoreAdmission(key, assignments: rec.intent.assignments, admittedAt: now) {
                    state.setActive(key, true)
                    state.requeue(key, reason: "AdmissionLost", message: "replicas found running after a restart without an admission; they are stopped and the workload waits to be admitted again")
                }
            }
        }
        if alive, !state.contains(key), let spec = specEntry(key)?.spec {
            // Suspended (or made invalid) while the daemon was down: its replicas are
            // stopped below, and keep their GPUs until they are gone.
            state.hold(key, WorkloadRequest(spec, created: 0), assignments: rec.intent.assignments)
        } else if alive, !state.contains(key), specEntry(key) == nil {
            // Deleted while the daemon was down: stopped by adoptOrphans; until its replicas
            // are gone, their GPUs are taken.
            state.holdGPUs(key, assignments: rec.intent.assignments)
        }
        var run = Run(dispatch: rec.intent.dispatch, specHash: rec.intent.specHash, assignments: rec.intent.assignments, port: rec.intent.masterPort, reps: [])
        for a in rec.intent.assignments.sorted(by: { $0.rank < $1.rank }) {
            var rep = Run.Rep(rank: a.rank, node: a.node, gpus: a.gpus)
            if let r = rec.replicas[a.rank] {
                rep.attempt = r.ref.attempt
                rep.pid = r.pid; rep.start = r.start
                if let x = r.exit {
                    rep.state = .exited; rep.code = x.code; rep.signal = x.signal; rep.end = x.end
                } else if r.lost || r.fault != nil {
                    rep.state = .lost; rep.code = -1; rep.end = now
                } else {
                    rep.state = r.pid != nil ? .running : .starting
                }
            }
            run.reps.append(rep)
        }
        run.announced = run.allRunning || run.reps.contains { $0.start != nil }
        if run.anyAlive { state.setActive(key, true) }
        runs[key] = run
        updateStatus(key) { s in s.dispatchCount = max(s.dispatchCount, run.dispatch) }
        Log.info("re-attached to a dispatch recorded before the restart", ["key": key.description, "dispatch": String(run.dispatch), "alive": String(run.reps.filter(\.alive).count), "replicas": String(run.reps.count)])
        // Replicas that ended while the daemon was down count now, once.
        // In the order they ended: the first failure is the one reported.
        for rep in run.reps.filter({ !$0.alive }).sorted(by: { ($0.end ?? 0, $0.rank) < ($1.end ?? 0, $1.rank) }) {
            let ref = run.ref(key, rep)
            if let f = rec.replicas[rep.rank]?.fault {
                replicaEnded(key, ref, code: -1, signal: 0, lostMessage: nil, fault: f)
            } else if rep.state == .lost {
                replicaEnded(key, ref, code: -1, signal: 0, lostMessage: "its supervisor vanished while the daemon was down")
            } else {
                replicaEnded(key, ref, code: rep.code ?? -1, signal: rep.signal, lostMessage: nil)
            }
        }
        tails = tails.filter { $0.key.key != key }
    }

    /// Stops the recovered runs of workloads that no longer exist (deleted while the daemon
    /// was down). Call after the initial load.
    public func adoptOrphans() {
        locked {
            for key in Array(recovered.keys) {
                adopt(key)
                evaluateRun(key)
            }
        }
    }

    // MARK: Events

    func handle(_ e: RuntimeEvent) {
        let key = e.ref.key
        guard let (run, i) = runs[key]?.applying(e, now: clock.now()) else { return }
        runs[key] = run
        switch e {
        case .started:
            // A replica that starts on a node under pressure shows the fault is over there.
            if pressure[run.reps[i].node] != nil { relievePressure(run.reps[i].node, because: "a replica started there") }
            replicaStarted(key)
        case .exited(let ref, let code, let signal, _):
            replicaEnded(key, ref, code: code, signal: signal, lostMessage: nil)
        case .lost(let ref, let message):
            replicaEnded(key, ref, code: -1, signal: 0, lostMessage: message)
        case .infrastructureFailed(let ref, let fault):
            replicaEnded(key, ref, code: -1, signal: 0, lostMessage: nil, fault: fault)
        }
    }

    func replicaStarted(_ key: ObjectKey) {
        guard let run = runs[key] else { return }
        let out = ReplicaLifecycle.replicaStarted(run, reportsPIDs: options.reportsPIDs)
        runs[key] = out.run
        perform(key, out.actions)
    }

    /// A replica ended (exited, lost, or could not start for an infrastructure fault): decide
    /// what the gang does. A lost replica (its supervisor died) and an infrastructure fault are
    /// not the workload's failure: the gang restarts with backoff and maxRetry is not spent.
    func replicaEnded(_ key: ObjectKey, _ ref: ReplicaRef, code: Int32, signal: Int32, lostMessage: String?, fault: InfrastructureFault? = nil) {
        guard let run = runs[key], let rep = run.reps.first(where: { $0.rank == ref.rank }) else { return }
        if let fault { notePressure(rep.node, fault) }
        let out = ReplicaLifecycle.replicaEnded(ReplicaLifecycle.Ending(
            run: run, rank: ref.rank, code: code, signal: signal, lostMessage: lostMessage, fault: fault.map { "\($0)" },
            spec: specEntry(key)?.spec, retryCount: statuses.get(key)?.workload?.retryCount ?? 0,
            infraFailures: infraFailures[key, default: 0], lastLines: lastLines(key, ref.rank),
            backoffBase: options.backoffBase, backoffCap: options.backoffCap, backoffReset: options.backoffReset, now: clock.now()))
        runs[key] = out.run
        perform(key, out.actions)
    }

    func lastLines(_ key: ObjectKey, _ rank: Int) -> String {
        // Read outside the lock when the replica's end was reported (`runtimeEvent`, `setRecovered`).
        guard let lines = tails.first(where: { $0.key.key == key && $0.key.rank == rank })?.value, !lines.isEmpty else { return "" }
        return "; last output: " + lines.map { String($0.prefix(200)) }.joined(separator: " | ")
    }

    static func seconds(_ d: Double) -> String { d.isFinite && abs(d) < 1e15 && d == d.rounded() ? "\(Int(d))s" : String(format: "%.1fs", d) }

    // MARK: The state machine

    /// Brings a workload's processes in line with what it should be doing: the decision is
    /// `ReplicaLifecycle.decide` (pure); this gathers its input and carries out its actions.
    func evaluateRun(_ key: ObjectKey) {
        guard runtime != nil else { return }
        guard runs[key] != nil || state.isAdmitted(key) else { return }
        let entry = specEntry(key)
        let input = ReplicaLifecycle.Input(
            run: runs[key], spec: entry?.spec, finished: entry.map { isFinished(key, $0.gen) } ?? false,
            admitted: state.assignments(key), startTime: statuses.get(key)?.workload?.startTime.map { Double($0.seconds) },
            updating: updating.contains(key), gracePeriod: options.gracePeriod, now: clock.now())
        let out = ReplicaLifecycle.decide(input)
        runs[key] = out.run
        perform(key, out.actions)
    }

    /// Carries out the lifecycle's actions in order (under the lock; runtime calls go to the
    /// outbox, performed after it).
    func perform(_ key: ObjectKey, _ actions: [ReplicaLifecycle.Action]) {
        for a in actions {
            switch a {
            case .setUpdating(let on):
                if on { updating.insert(key) } else { updating.remove(key) }
            case .signal(let dispatch, let rank, let attempt, let force):
                if runtime != nil { act(.signal(ReplicaRef(key: key, dispatch: dispatch, rank: rank, attempt: attempt), force: force)) }
            case .launch(let i):
                if let run = runs[key], run.reps.indices.contains(i), let spec = specEntry(key)?.spec { launch(key, spec, run, rank: i) }
            case .startGang(let assignments, let retry, let spends, let upd):
                if let spec = specEntry(key)?.spec { dispatch(key, spec, assignments, retry: retry, spendsRetry: spends, updating: upd) }
            case .setActive(let on):
                if state.setActive(key, on) { kick() }
            case .forget(let keep, let files):
                act(.forget(key, keepDispatch: keep, files: files))
            case .finish(let run, let phase, let reason, let message):
                finish(key, run: run, phase: phase, reason: reason, message: message)
            case .writeReplicas(let run):
                writeReplicas(key, run: run)
            case .status(let change):
                let ts = clock.timestamp
                updateStatus(key) { s in change.apply(to: &s, now: ts) }
            case .event(let warning, let reason, let message):
                if warning { events.warning(InvolvedObject(key), reason, message) } else { events.normal(InvolvedObject(key), reason, message) }
            case .requeueAt(let t):
                schedule(key, at: t)
            case .retire(let run):
                if endedRuns.count < 100_000 { endedRuns += run.reps.map { (key, $0.rank) } }
            case .setInfraFailures(let n):
                infraFailures[key] = n
            case .clearInfraFailures:
                infraFailures[key] = nil
            }
        }
    }

    func isFinished(_ key: ObjectKey, _ gen: Int64) -> Bool { finishedGen[key] == gen }

    /// The spec in force: the inventory's, with the synced suspend value (overrides applied).
    func specEntry(_ key: ObjectKey) -> (spec: WorkloadSpec, gen: Int64)? {
        guard let sy = synced[key], var spec = inventory.desired.get(key)?.spec.workload else { return nil }
        spec.suspend = sy.suspend
        return (spec, sy.gen)
    }

    /// Starts every replica of a gang.
    func dispatch(_ key: ObjectKey, _ spec: WorkloadSpec, _ assignments: [ReplicaAssignment], retry: Bool, spendsRetry: Bool, updating: Bool) {
        guard runtime != nil else { return }
        let now = clock.now()
        let prev = statuses.get(key)?.workload
        let n = (prev?.dispatchCount ?? 0) + 1
        var run = ReplicaLifecycle.newRun(dispatch: n, spec: spec, assignments: assignments, port: takePort())
        let sorted = assignments.sorted { $0.rank < $1.rank }
        if case .refused(let why) = runAsDecision(key) {
            // Nothing starts and nothing is journaled: the gang is down at once, failed.
            for i in run.reps.indices { run.reps[i].state = .exited }
            run.stopping = .failed(reason: RunAs.refusedReason, message: "not started: " + why)
            runs[key] = run
            state.setActive(key, true)
            updateStatus(key) { s in ReplicaLifecycle.StatusChange.dispatched(dispatch: n, replicas: run.reps.count, retry: retry, spendsRetry: spendsRetry, updating: updating).apply(to: &s, now: clock.timestamp) }
            schedule(key, at: now)
            return
        }
        runs[key] = run
        state.setActive(key, true)
        act(.prepare(key, DispatchIntent(dispatch: n, specHash: run.specHash, masterPort: run.port, at: now, assignments: sorted)))
        act(.forget(key, keepDispatch: n, files: false))
        for i in run.reps.indices { launch(key, spec, run, rank: i) }
        let ts = clock.timestamp
        let change = ReplicaLifecycle.StatusChange.dispatched(dispatch: n, replicas: run.reps.count, retry: retry, spendsRetry: spendsRetry, updating: updating)
        updateStatus(key) { s in change.apply(to: &s, now: ts) }
        writeReplicas(key)
        dispatchedTotal.inc()
    }

    /// Which account the workload's replicas run as now (`RunAs`).
    func runAsDecision(_ key: ObjectKey) -> RunAs.Decision {
        guard let obj = inventory.desired.get(key) else { return .account(nil) }
        return RunAs.decide(obj, daemonRunAs: options.runAs, daemonIsRoot: options.daemonIsRoot)
    }

    func launch(_ key: ObjectKey, _ spec: WorkloadSpec, _ run: Run, rank i: Int) {
        guard let runtime else { return }
        let rep = run.reps[i]
        let user: String?
        switch runAsDecision(key) {
        case .account(let u): user = u
        case .refused(let why):
            // A restart after the account mapping went away: this replica does not start and
            // the gang fails (`decide` stops the others).
            guard var cur = runs[key], cur.reps.indices.contains(i) else { return }
            cur.reps[i].state = .exited
            if cur.stopping == nil { cur.stopping = .failed(reason: RunAs.refusedReason, message: "replica rank \(rep.rank) not started: " + why) }
            runs[key] = cur
            schedule(key, at: clock.now())
            return
        }
        let ref = ReplicaRef(key: key, dispatch: run.dispatch, rank: rep.rank, attempt: rep.attempt)
        let vendor = inventory.desired.get(ObjectKey(.node, name: rep.node))?.spec.node?.gpuVendor ?? .nvidia
        let env = Admission.replicaEnv(key, spec, rank: rep.rank, world: run.reps.count, port: run.port, gpus: rep.gpus, vendor: vendor,
                                       node: rep.node, dispatch: run.dispatch, attempt: rep.attempt, options: options, workdir: runtime.workdir(key))
        let header = "[gantry] \(clock.timestamp.description) dispatch \(run.dispatch) rank \(rep.rank)\(rep.attempt > 0 ? " restart \(rep.attempt)" : "") on \(rep.node) GPUs [\(rep.gpus.map(String.init).joined(separator: ","))]"
        act(.launch(ReplicaLaunch(ref: ref, command: spec.effectiveCommand, env: env, header: header, user: user)))
    }

    /// The environment of a replica (SPEC.md): the daemon's, the user's `env`, then Gantry's.
    public static func replicaEnv(_ key: ObjectKey, _ spec: WorkloadSpec, rank: Int, world: Int, port: Int, gpus: [Int], vendor: GPUVendor,
                                  node: String, dispatch: Int, attempt: Int, options: LifecycleOptions, workdir: String) -> [String] {
        // What the replica's own settings make of the daemon's environment: `set` replaces or
        // adds, `drop` removes; the daemon's (pre-sorted) lines are merged in around them.
        var set = spec.env
        var drop: Set<String> = []
        let devices = gpus.map(String.init).joined(separator: ",")
        let gantry: KeyValuePairs<String, String> = [
            "GANTRY_WORKLOAD": key.name, "GANTRY_NAMESPACE": key.namespace, "GANTRY_QUEUE": spec.queue,
            "GANTRY_SPEC_DIR": options.specDir, "GANTRY_WORK_DIR": workdir, "GANTRY_NODE": node,
            "GANTRY_DISPATCH": String(dispatch), "GANTRY_RESTART": String(attempt), "GANTRY_REPLICA": "\(key.name)-worker-\(rank)",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": String(port), "WORLD_SIZE": String(world),
            "RANK": String(rank), "NODE_RANK": String(rank), "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
        ]
        for (k, v) in gantry { set[k] = v }
        let unset: [String]
        switch vendor {
        case .nvidia:
            set["CUDA_VISIBLE_DEVICES"] = devices
            unset = ["HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"]
        case .amd:
            set["HIP_VISIBLE_DEVICES"] = devices; set["ROCR_VISIBLE_DEVICES"] = devices
            unset = ["CUDA_VISIBLE_DEVICES"]
        }
        for k in unset { set[k] = nil; drop.insert(k) }
        // Both lists sorted by name, the names unique: the merge is sorted by name as a whole.
        let own = set.sorted { $0.key < $1.key }
        var out: [String] = []
        out.reserveCapacity(options.baseEnvLines.count + own.count)
        var i = 0
        for (name, line) in options.baseEnvLines where set[name] == nil && !drop.contains(name) {
            while i < own.count && own[i].key < name { out.append("\(own[i].key)=\(own[i].value)"); i += 1 }
            out.append(line)
        }
        while i < own.count { out.append("\(own[i].key)=\(own[i].value)"); i += 1 }
        return out
    }

    /// What in a spec changes the processes (a change restarts the gang).
    static func specHash(_ s: WorkloadSpec) -> String {
        var t = "\(s.type.rawValue)\u{1}\(s.image)\u{1}\(s.effectiveCommand)\u{1}\(s.replicas)\u{1}"
        for (k, v) in s.env.sorted(by: { $0.key < $1.key }) { t += "\(k)=\(v)\u{1}" }
        for (k, v) in s.resources.amounts.sorted(by: { $0.key < $1.key }) { t += "\(k)=\(v.milli)\u{1}" }
        return fnv1a(t)
    }

    /// Finishes a run: quota back, phase, conditions, event; the TTL clock starts.
    func finish(_ key: ObjectKey, run: Run, phase: WorkloadPhase, reason: String, message: String) {
        state.finish(key)
        dirty.remove(key)
        kick()
        let ts = clock.timestamp
        if phase == .succeeded { events.normal(InvolvedObject(key), reason, message) } else { events.warning(InvolvedObject(key), reason, message) }
        if phase == .succeeded { succeededTotal.inc() } else { failedTotal.inc() }
        writeReplicas(key, run: run)
        let entry = specEntry(key)
        finishedGen[key] = entry?.gen
        let change = ReplicaLifecycle.StatusChange.finished(generation: entry?.gen, phase: phase, reason: reason, message: message)
        updateStatus(key) { s in change.apply(to: &s, now: ts) }
        if let ttl = entry?.spec.ttlSecondsAfterFinished { scheduleTTL(key, endedAt: Double(ts.seconds), ttl: ttl) }
    }

    func scheduleTTL(_ key: ObjectKey, endedAt: Double, ttl: Int) {
        let due = endedAt + Double(ttl)
        ttlDue[key] = due
        schedule(key, at: due)
    }

    // MARK: Status

    func updateStatus(_ key: ObjectKey, _ change: (inout WorkloadStatus) -> Void) {
        guard inventory.desired.get(key) != nil else { return }
        statuses.update(key, initial: { .workload(WorkloadStatus()) }) { status in
            var s = status.workload ?? WorkloadStatus()
            change(&s)
            status = .workload(s)
        }
    }

    /// Writes `status.replicas` from a run (the current one when nil).
    func writeReplicas(_ key: ObjectKey, run given: Run? = nil) {
        guard let run = given ?? runs[key] else { return }
        let stopping = run.stopping != nil
        let type = options.replicaName == nil ? nil : specEntry(key)?.spec.type
        let list = run.reps.map { r -> ReplicaStatus in
            var phase: String
            switch r.state {
            case .starting: phase = "Starting"
            case .running: phase = stopping ? "Terminating" : "Running"
            case .waiting: phase = "Restarting"
            case .lost: phase = "Lost"
            case .exited: phase = r.code == 0 ? "Succeeded" : "Failed"
            }
            return ReplicaStatus(name: options.replicaName?(key, type, r.rank) ?? "\(key.name)-worker-\(r.rank)", rank: r.rank, node: r.node, phase: phase,
                                 gpus: options.reportsPIDs ? r.gpus : [],
                                 pid: options.reportsPIDs ? r.pid.map(Int.init) : nil,
                                 startTime: r.start.map { Timestamp(secondsSince1970: $0) }, exitCode: r.code.map(Int.init), restarts: r.attempt,
                                 gpuCount: options.reportsPIDs ? nil : r.gpus.count)
        }
        updateStatus(key) { s in s.replicas = list }
    }
}
