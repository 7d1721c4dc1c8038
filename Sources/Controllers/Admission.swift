import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import Scheduler

/// Admission: owns the scheduler state and every workload status derived from it. Reconcilers
/// feed it object changes (`syncWorkload`, `syncQueue`, `syncNode`); a cycle runs when
/// something relevant changed, batching changes that arrive together, on its own thread.
/// Each cycle's decisions are written under the same lock as the state they came from, so a
/// status never goes back to an older decision.
public final class Admission: @unchecked Sendable {
    let lock = NSLock()
    let state = SchedulerState()
    let inventory: Inventory
    let statuses: StatusCache
    let events: EventRecorder
    let clock: any Clock
    let metrics: Metrics
    /// Valid workloads whose status needs writing at the next cycle (new, or spec changed).
    var dirty = Set<ObjectKey>()
    var paused = false
    /// Workloads whose restore and adoption wait for the end of the initial load.
    var deferredRestores = Set<ObjectKey>()
    var kicked = false
    var stopped = false
    let wake = NSCondition()
    /// After the first trigger, wait while more keep coming (each within the quiet window),
    /// at most the gathering limit: both set by `gathering` from the last round's length,
    /// between `minimumWindow` and `batchWindow`, and up to `maxBatch`.
    public var batchWindow = 0.002
    public var maxBatch = 0.02
    public var minimumWindow = 0.0005
    /// How long the cycles of the last round took, in microseconds, without the actions after
    /// them (set by `runCycles`, read by the loop's thread).
    let lastRoundMicros = Atomic<Int>(0)
    var thread: Thread?

    // The replica lifecycle (Lifecycle.swift), under the same lock. No runtime: admission only.
    let runtime: (any ReplicaRuntime)?
    let options: LifecycleOptions
    /// What each workload was last synced with: its generation and whether it is suspended
    /// in effect (an override applied; an invalid spec counts as suspended). The spec itself
    /// is read from the inventory when needed (`specEntry`), not copied 100,000 times.
    struct Synced { var gen: Int64; var suspend: Bool }
    var synced: [ObjectKey: Synced] = [:]
    /// Workloads whose gang is being replaced after a spec change (phase Updating until the
    /// new replicas all run, through a new admission when the change needs one).
    var updating = Set<ObjectKey>()
    /// Workloads finished with the generation they finished at.
    var finishedGen: [ObjectKey: Int64] = [:]
    var runs: [ObjectKey: Run] = [:]
    var recovered: [ObjectKey: RecoveredDispatch] = [:]
    /// When each workload next needs a look (grace periods, deadlines, backoffs, TTLs).
    var timers: [ObjectKey: Double] = [:]
    /// Where due timers come back from (set by the daemon); nil: the tick fires them.
    var timerQueue: WorkQueue<ObjectKey>?
    var ttlDue: [ObjectKey: Double] = [:]
    var ttlScheduled = Set<ObjectKey>()
    /// Queue positions not yet written: with many pending workloads every admission moves
    /// all of them, so positions are written at most every `positionInterval` seconds.
    var deferredPositions: [ObjectKey: Int?] = [:]
    var lastPositionFlush = 0.0
    public var positionInterval = 0.5
    /// Replicas of runs that ended, until metrics collection has read their last lines.
    var endedRuns: [(ObjectKey, Int)] = []
    /// Consecutive infrastructure faults per workload (the backoff of its restarts; they do
    /// not count against maxRetry). Cleared once its gang runs.
    var infraFailures: [ObjectKey: Int] = [:]
    /// Nodes under pressure after an infrastructure fault (NodePressure.swift): they admit
    /// nothing new until a probe succeeds or a replica starts there.
    var pressure: [String: NodePressure] = [:]
    /// Whether each node is ready as its reconciler last said (pressure aside).
    var nodeReady: [String: Bool] = [:]
    var nextProbe = 0.0

    // Metrics handles.
    let cycles: Histogram
    let attemptsTotal: Counter
    let dispatchedTotal: Counter
    let succeededTotal: Counter
    let failedTotal: Counter

    public init(inventory: Inventory, clock: any Clock, metrics: Metrics, runtime: (any ReplicaRuntime)? = nil, options: LifecycleOptions = LifecycleOptions()) {
        self.inventory = inventory; self.statuses = inventory.statuses; self.events = inventory.events
        self.clock = clock; self.metrics = metrics
        self.runtime = runtime; self.options = options
        cycles = metrics.histogram("gantry_admission_cycle_duration_seconds")
        attemptsTotal = metrics.counter("gantry_admission_attempts_total")
        dispatchedTotal = metrics.counter("gantry_dispatched_workloads_total")
        succeededTotal = metrics.counter("gantry_finished_workloads_total", ["phase": "Succeeded"])
        failedTotal = metrics.counter("gantry_finished_workloads_total", ["phase": "Failed"])
    }

    /// Runs `f` under the lock, then performs the runtime actions it decided, outside the lock.
    func locked<T>(_ f: () throws -> T) rethrows -> T {
        lock.lock()
        holder.store(UInt(pthread_self()), ordering: .relaxed)
        defer { performActions() }
        defer {
            holder.store(0, ordering: .relaxed)
            lock.unlock()
        }
        return try f()
    }

    /// The thread in `locked`, for `heldByCurrentThread`.
    let holder = Atomic<UInt>(0)
    /// Whether the calling thread is inside `locked` (tests check that no runtime call is made
    /// under the lock).
    public var heldByCurrentThread: Bool { holder.load(ordering: .relaxed) == UInt(pthread_self()) }

    // MARK: Runtime actions (decided under the lock, performed outside it)

    /// What the lifecycle asks of the runtime; performed in the order decided.
    enum RuntimeAction {
        case prepare(ObjectKey, DispatchIntent)
        case launch(ReplicaLaunch)
        case signal(ReplicaRef, force: Bool)
        case forget(ObjectKey, keepDispatch: Int?, files: Bool)
    }
    /// Decided, not yet performed (under `lock`).
    var outbox: [RuntimeAction] = []
    /// Held by the one thread performing actions, so they run in the order they were decided.
    let performing = NSLock()
    /// Rendezvous ports found outside the lock, for the next dispatches (under `lock`).
    var ports: [Int] = []
    /// The last lines of replicas that ended, read outside the lock for failure messages.
    var tails: [ReplicaRef: [String]] = [:]

    func act(_ a: RuntimeAction) { outbox.append(a) }

    /// Performs queued runtime actions. A thread that finds another performing leaves its
    /// actions to it (that one looks again after letting go).
    func performActions() {
        guard let runtime else { return }
        while performing.try() {
            while true {
                lock.lock()
                let batch = outbox
                outbox = []
                let needPort = ports.count < 4
                lock.unlock()
                if needPort {
                    let p = runtime.freePort()
                    lock.lock(); ports.append(p); lock.unlock()
                }
                if batch.isEmpty { break }
                var grouped = 0   // actions before this index whose dispatches are journaled
                for (n, a) in batch.enumerated() {
                    switch a {
                    case .prepare(let k, let intent):
                        if n < grouped { continue }
                        let group = Admission.dispatchGroup(batch, from: n)
                        if group.count > 1 {
                            runtime.prepare(group.intents)
                            grouped = n + group.count
                        } else {
                            runtime.prepare(k, intent)
                        }
                    case .launch(let l): runtime.launch(l)
                    case .signal(let r, let force): runtime.signal(r, force: force)
                    case .forget(let k, let keep, let files): runtime.forget(k, keepDispatch: keep, files: files)
                    }
                }
            }
            performing.unlock()
            lock.lock()
            let more = !outbox.isEmpty
            lock.unlock()
            if !more { return }
        }
    }

    /// Group commit: the run of actions from `start` made only of dispatches (their journal
    /// line, the launches of their replicas, dropping their older records) — `count` actions,
    /// `intents` their dispatches in order. Journaling all of them first, in one write and one
    /// fsync, keeps each dispatch durable before its replicas start; a signal or a workload's
    /// final forget (which journals a `forget` line) ends the run, so no journal line moves
    /// past another of the same workload.
    static func dispatchGroup(_ batch: [RuntimeAction], from start: Int) -> (count: Int, intents: [(ObjectKey, DispatchIntent)]) {
        var intents: [(ObjectKey, DispatchIntent)] = []
        var end = start
        scan: while end < batch.count {
            switch batch[end] {
            case .prepare(let k, let i): intents.append((k, i))
            case .launch: break
            case .forget(_, let keep, _) where keep != nil: break
            default: break scan
            }
            end += 1
        }
        return (end - start, intents)
    }

    /// A rendezvous port for a new dispatch (under the lock): one found earlier outside it.
    func takePort() -> Int {
        if !ports.isEmpty { return ports.removeFirst() }
        return runtime?.freePort() ?? 0
    }

    // MARK: Inputs

    /// A Workload changed (nil: deleted). Invalid and suspended workloads leave the scheduler
    /// (releasing any quota) and get their status here; the others wait for the next cycle.
    public func syncWorkload(_ key: ObjectKey, _ obj: ManifestObject?, override: SuspendOverride? = nil) {
        locked { syncWorkloadLocked(key, obj, override: override) }
    }

    /// `syncWorkload` for each, in order, under one hold of the lock (a worker's batch).
    public func syncWorkloads(_ items: [(key: ObjectKey, object: ManifestObject?, override: SuspendOverride?)]) {
        locked { for i in items { syncWorkloadLocked(i.key, i.object, override: i.override) } }
    }

    func syncWorkloadLocked(_ key: ObjectKey, _ obj: ManifestObject?, override: SuspendOverride?) {
        let current = statuses.get(key)?.workload
        if obj != nil, current?.override != override { updateStatus(key) { $0.override = override } }
        guard let obj, let spec = obj.spec.workload else {
            state.setWorkload(key, nil)
            dirty.remove(key)
            synced[key] = nil
            finishedGen[key] = nil
            ttlDue[key] = nil; ttlScheduled.remove(key)
            adopt(key)
            if runs[key] == nil {
                // Nothing runs: its records, logs and working directory go now.
                act(.forget(key, keepDispatch: nil, files: true))
            } else {
                evaluateRun(key)
            }
            kick()
            return
        }
        let now = clock.timestamp
        let gen = obj.meta.generation
        synced[key] = Synced(gen: gen, suspend: spec.suspend || !obj.invalid.isEmpty)
        // A stored finished status (after a restart) counts as finished with its generation;
        // a finished workload whose spec changed since runs again, from retry 0.
        if finishedGen[key] == nil, runs[key] == nil, let st = current, st.phase == .succeeded || st.phase == .failed {
            finishedGen[key] = st.observedGeneration
        }
        if let fg = finishedGen[key], fg != gen {
            finishedGen[key] = nil
            updateStatus(key) { s in s.retryCount = 0; s.startTime = nil }
        }
        if !obj.invalid.isEmpty || spec.suspend {
            state.setWorkload(key, nil)
            dirty.remove(key)
            adopt(key)
            defer { evaluateRun(key) }
            statuses.update(key, initial: { .workload(WorkloadStatus()) }) { status in
                var s = status.workload ?? WorkloadStatus()
                s.creationTime = obj.meta.creationTimestamp
                s.observedGeneration = gen
                s.queuePosition = nil
                s.admissionQueue = nil; s.admission = []
                if !obj.invalid.isEmpty {
                    s.phase = .pending
                    s.message = "invalid spec: " + obj.invalid.map(\.description).joined(separator: "; ")
                    s.conditions.set(type: ConditionType.admitted, status: "False", reason: Reason.invalidSpec, message: s.message, now: now, generation: gen)
                } else {
                    s.phase = .stopped
                    s.message = "suspended (spec.suspend is true)"
                    s.conditions.set(type: ConditionType.admitted, status: "False", reason: Reason.stopped, message: s.message, now: now, generation: gen)
                    s.conditions.set(type: ConditionType.finished, status: "True", reason: Reason.stopped, message: s.message, now: now, generation: gen)
                    if s.endTime == nil { s.endTime = now }
                }
                status = .workload(s)
            }
            kick()
            return
        }
        if isFinished(key, gen) {
            // Finished with this spec: it stays finished (a changed spec runs it again).
            state.setWorkload(key, nil)
            recovered[key] = nil
            if let ttl = spec.ttlSecondsAfterFinished, !ttlScheduled.contains(key), let end = current?.endTime {
                ttlScheduled.insert(key)
                scheduleTTL(key, endedAt: Double(end.seconds), ttl: ttl)
            }
            return
        }
        let request = WorkloadRequest(spec, created: obj.meta.creationTimestamp.seconds)
        let known = state.contains(key)
        state.setWorkload(key, request)
        if !known { restoreAdmission(key, queue: spec.queue) }
        adopt(key)
        dirty.insert(key)
        evaluateRun(key)
        kick()
    }

    /// A Queue changed (nil: deleted). `valid` false when its spec did not validate.
    public func syncQueue(_ name: String, _ obj: ManifestObject?) {
        locked {
            state.setQueue(name, spec: obj?.spec.queue, valid: obj?.invalid.isEmpty ?? true)
            kick()
        }
    }

    /// A Node changed (nil: deleted). Only ready nodes take new replicas.
    public func syncNode(_ name: String, _ obj: ManifestObject?, ready: Bool) {
        locked {
            nodeReady[name] = obj == nil ? nil : ready
            if obj == nil { pressure[name] = nil }
            state.setNode(name, spec: obj?.spec.node, ready: ready && pressure[name] == nil)
            kick()
        }
    }

    /// Restart: adopts the admission recorded before, if it still holds. During the initial
    /// load (paused) this waits for `resume`, when every node and queue is known: workers
    /// reconcile kinds in any order, and a placement checked before its node arrived would
    /// be refused while its replicas still run.
    func restoreAdmission(_ key: ObjectKey, queue: String) {
        if paused {
            // Only a stored admission is restored (none is recorded while paused): a load into
            // an empty store defers nothing, and the first pass does not walk 100,000 keys.
            if statuses.get(key)?.workload?.admission.isEmpty == false { deferredRestores.insert(key) }
            return
        }
        guard state.contains(key), !state.isAdmitted(key), let st = statuses.get(key)?.workload, st.admissionQueue == queue, !st.admission.isEmpty else { return }
        let at = Double(st.conditions.get(ConditionType.admitted)?.lastTransitionTime.seconds ?? 0)
        if !state.restoreAdmission(key, assignments: st.admission, admittedAt: at) {
            Log.warn("an admission recorded before the restart no longer holds; the workload waits again", ["key": key.description])
            events.warning(InvolvedObject(key), "AdmissionLost", "the placement recorded before the restart no longer holds (a node or GPU changed); the workload waits to be admitted again")
        }
    }

    /// The restores and adoptions held back during the initial load, oldest admission first.
    func runDeferredRestores() {
        guard !deferredRestores.isEmpty else { return }
        let keys = deferredRestores
        deferredRestores = []
        func admittedAt(_ k: ObjectKey) -> Int64 { statuses.get(k)?.workload?.conditions.get(ConditionType.admitted)?.lastTransitionTime.seconds ?? Int64.max }
        let ordered = keys.map { ($0, admittedAt($0)) }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        for (key, _) in ordered {
            if let q = specEntry(key)?.spec.queue { restoreAdmission(key, queue: q) }
            adopt(key)
            dirty.insert(key)
            evaluateRun(key)
        }
    }

    // MARK: Cycles

    /// Holds cycles back (the initial load), so the first pass sees everything at once.
    public func pause() { locked { paused = true; state.bulkPending = true } }

    /// Makes room for `n` workloads about to be reconciled (the initial load).
    public func reserveWorkloads(_ n: Int) {
        locked {
            state.reserveWorkloads(n)
            // Grown one doubling at a time, these rehashed every key several times over.
            synced.reserveCapacity(synced.count + n)
            dirty.reserveCapacity(dirty.count + n)
        }
        statuses.reserve(n)
    }

    /// Lets cycles run again and runs the pending ones now; returns the decisions made.
    @discardableResult
    public func resume() -> (admitted: Int, decisions: Int, seconds: Double) {
        locked {
            paused = false
            state.bulkPending = false
            runDeferredRestores()
            // Replicas of workloads deleted while the daemon was down: their GPUs are held
            // (and the replicas stopped) before the first pass admits anything onto them.
            for key in recovered.keys.sorted() where synced[key] == nil {
                adopt(key)
                evaluateRun(key)
            }
        }
        return runCycles()
    }

    func kick() {
        if paused { return }
        wake.lock(); kicked = true; wake.signal(); wake.unlock()
    }

    public func start() {
        let t = Thread { [self] in loop() }
        t.name = "gantry-admission"
        t.start()
        thread = t
    }

    public func stop() { wake.lock(); stopped = true; wake.signal(); wake.unlock() }

    func loop() {
        while true {
            wake.lock()
            while !kicked && !stopped { wake.wait() }
            if stopped { wake.unlock(); return }
            // Batch: wait while triggers keep coming, up to the gathering limit.
            let first = monotonicSeconds()
            let g = Admission.gathering(lastRound: Double(lastRoundMicros.load(ordering: .relaxed)) / 1e6, minimum: minimumWindow, window: batchWindow, max: maxBatch)
            while true {
                kicked = false
                let deadline = Date(timeIntervalSinceNow: g.quiet)
                _ = wake.wait(until: deadline)
                if stopped { wake.unlock(); return }
                if !kicked || monotonicSeconds() - first >= g.limit { break }
            }
            kicked = false
            wake.unlock()
            runCycles()
        }
    }

    /// How the loop gathers triggers, from how long the last round of cycles took (`d`): it
    /// waits for a quiet spell of `2d` (between `minimum` and `window`), and while triggers
    /// keep coming at most `2d` in all (between that and `max`). Cheap cycles (a few queues
    /// changed) then run within a millisecond or so of a replica's end, so its GPU does not
    /// sit idle while a steady stream of starts and ends keeps the window open; dear ones
    /// (many workloads or queues changed) still gather up to `window` and `max`. Rounds of up
    /// to `max / 2` thus take at most about a third of the loop's time; longer ones follow
    /// each other at most `max` apart.
    static func gathering(lastRound d: Double, minimum: Double, window: Double, max: Double) -> (quiet: Double, limit: Double) {
        let quiet = Swift.min(window, Swift.max(minimum, 2 * d))
        return (quiet, Swift.min(max, Swift.max(quiet, 2 * d)))
    }

    /// Runs cycles until nothing is worth another attempt (or a cycle makes no attempt).
    @discardableResult
    public func runCycles() -> (admitted: Int, decisions: Int, seconds: Double) {
        let t0 = monotonicSeconds()
        var admitted = 0, decisions = 0
        // The cycles' own time (not the actions run after the lock), for the loop's gathering.
        var spent = 0.0
        defer { lastRoundMicros.store(Int(spent * 1e6), ordering: .relaxed) }
        locked {
            guard !paused else { return }
            var first = true
            while first || state.needsCycle {
                first = false
                let c0 = monotonicSeconds()
                let r = state.cycle(now: clock.now())
                apply(r)
                let dt = monotonicSeconds() - c0
                cycles.observe(dt)
                spent += dt
                attemptsTotal.inc(r.attempts)
                admitted += r.admitted; decisions += r.decisions
                if r.attempts == 0 && r.events.isEmpty { break }
            }
        }
        return (admitted, decisions, monotonicSeconds() - t0)
    }

    /// Writes a cycle's outcome: workload statuses and events, then queue, node and pool usage.
    func apply(_ r: CycleResult) {
        let now = clock.timestamp
        var touched = dirty
        dirty = []
        var preempted: [ObjectKey: (reason: String, message: String)] = [:]
        for e in r.events {
            switch e {
            case .admitted(let key, let queue, let assignments, let waited):
                touched.insert(key)
                metrics.counter("gantry_admitted_workloads_total", ["queue": queue]).inc()
                metrics.histogram("gantry_admission_wait_time_seconds", ["queue": queue]).observe(waited)
                events.normal(InvolvedObject(key), "QuotaReserved", "admitted to queue \"\(queue)\": " + Admission.placementText(assignments))
            case .preempted(let key, let by, let reason, let message):
                touched.insert(key)
                preempted[key] = (reason, message)
                metrics.counter("gantry_preempted_workloads_total", ["queue": inventory.desired.get(key)?.spec.workload?.queue ?? "", "reason": reason]).inc()
                events.normal(InvolvedObject(key), "Preempted", message)
                Log.info("preempted", ["key": key.description, "by": by.description, "reason": reason])
            case .evicted(let key, let reason, let message):
                touched.insert(key)
                events.warning(InvolvedObject(key), reason, message)
            }
        }
        for (k, _) in r.waiting { touched.insert(k) }
        // A workload whose status is written here gets its position with it; the others'
        // positions are deferred (the first pass has 100,000 of each: no map of them all).
        var skipped = Set<ObjectKey>()
        var written: [(key: ObjectKey, object: ManifestObject)] = []
        written.reserveCapacity(touched.count)
        for key in touched {
            guard let sy = synced[key], !sy.suspend, let obj = inventory.desired.get(key), obj.invalid.isEmpty, !isFinished(key, sy.gen) else {
                skipped.insert(key)
                continue
            }
            written.append((key, obj))
        }
        // Each status is made from the scheduler's view of its own workload only (and its
        // run and updating mark, which only its own `evaluateRun` below changes), so the
        // many of a first pass (100,000) are made on every core; the lock held here keeps
        // the state still meanwhile. The runs are evaluated after, in order.
        if written.count >= parallelStatusesFrom {
            let preempted = preempted
            _ = parallelMap(written, minimum: 2) { [self] w in
                writeWorkload(w.key, w.object, now: now, preempted: preempted[w.key])
            }
        } else {
            for w in written { writeWorkload(w.key, w.object, now: now, preempted: preempted[w.key]) }
        }
        for w in written {
            deferredPositions[w.key] = nil   // written with the rest of its status
            evaluateRun(w.key)
        }
        for (k, p) in r.positions where !touched.contains(k) || skipped.contains(k) { deferredPositions[k] = p }
        flushPositions()
        for name in r.queues { writeQueue(name) }
        for name in r.nodes { writeNode(name) }
        for name in r.pools { writePool(name) }
    }

    /// From this many statuses in one cycle's result, they are made in parallel (`apply`;
    /// the seeded stack tests set fewer).
    public var parallelStatusesFrom = 2048

    /// Writes deferred queue positions: a few at once, many at most every `positionInterval`.
    func flushPositions() {
        guard !deferredPositions.isEmpty else { return }
        let now = monotonicSeconds()
        guard deferredPositions.count <= 64 || now - lastPositionFlush >= positionInterval else { return }
        statuses.setQueuePositions(deferredPositions.map { ($0.key, $0.value) })
        deferredPositions = [:]
        lastPositionFlush = now
    }

    static func placementText(_ a: [ReplicaAssignment]) -> String {
        a.map { "rank \($0.rank) -> \($0.node) GPUs [\($0.gpus.map(String.init).joined(separator: ","))]" }.joined(separator: "; ")
    }

    func writeWorkload(_ key: ObjectKey, _ obj: ManifestObject, now: Timestamp, preempted: (reason: String, message: String)?) {
        let gen = obj.meta.generation
        let assignments = state.assignments(key)
        let queue = state.queueName(key)
        let wait = state.waitReason(key)
        let pos = state.position(key)
        statuses.update(key, initial: { .workload(WorkloadStatus()) }) { status in
            var s = status.workload ?? WorkloadStatus()
            s.creationTime = obj.meta.creationTimestamp
            s.observedGeneration = gen
            s.endTime = nil
            s.conditions.remove(type: ConditionType.finished)
            if let assignments {
                if s.phase == .stopped || s.phase == .failed || s.phase == .succeeded { s.phase = .pending }
                s.queuePosition = nil
                s.admissionQueue = queue
                s.admission = assignments
                let nodes = Array(Set(assignments.map(\.node))).sorted()
                let msg = "quota reserved in queue \"\(queue ?? "")\"; \(assignments.count) replica\(assignments.count == 1 ? "" : "s") on \(nodes.joined(separator: ", "))"
                // While replicas run, the message is theirs.
                if runs[key] == nil { s.message = msg }
                s.conditions.set(type: ConditionType.admitted, status: "True", reason: Reason.quotaReserved, message: msg, now: now, generation: gen)
                if let p = s.conditions.get(ConditionType.preempted), p.status == "True" {
                    s.conditions.set(type: ConditionType.preempted, status: "False", reason: p.reason, message: "admitted again after: " + p.message, now: now, generation: gen)
                }
            } else {
                s.phase = updating.contains(key) ? .updating : .pending
                s.admissionQueue = nil
                s.admission = []
                s.queuePosition = pos
                let w = wait ?? WaitReason(Reason.waitingForQuota, "waiting for an admission cycle")
                s.message = w.message
                s.conditions.set(type: ConditionType.admitted, status: "False", reason: w.reason, message: w.message, now: now, generation: gen)
                if let preempted {
                    s.conditions.set(type: ConditionType.preempted, status: "True", reason: preempted.reason, message: preempted.message, now: now, generation: gen)
                }
            }
            status = .workload(s)
        }
    }

    func writeQueue(_ name: String) {
        let key = ObjectKey(.queue, name: name)
        guard inventory.desired.get(key) != nil, let u = state.queueUsage(name) else { return }
        statuses.update(key, initial: { .queue(QueueStatus()) }) { status in
            var s = status.queue ?? QueueStatus()
            s.allocated = u.allocated; s.borrowed = u.borrowed; s.pending = u.pending; s.admitted = u.admitted
            status = .queue(s)
        }
        metrics.gauge("gantry_pending_workloads", ["queue": name]).set(Double(u.pending))
        metrics.gauge("gantry_admitted_active_workloads", ["queue": name]).set(Double(u.admitted))
        // Resources given back read 0 (the sum leaves zero amounts out).
        for r in Set(u.allocated.amounts.keys).union(["gpu", "cpu", "memory"]) {
            metrics.gauge("gantry_queue_resource_usage", ["queue": name, "resource": r]).set(Double(u.allocated[r].milli) / 1000)
        }
    }

    func writeNode(_ name: String) {
        let key = ObjectKey(.node, name: name)
        guard inventory.desired.get(key) != nil, let u = state.nodeUsage(name) else { return }
        statuses.update(key, initial: { .node(NodeStatus()) }) { status in
            var s = status.node ?? NodeStatus()
            s.allocated = u.allocated; s.workloads = u.workloads
            status = .node(s)
        }
    }

    func writePool(_ name: String) {
        let key = ObjectKey(.resourcePool, name: name)
        guard inventory.desired.get(key) != nil else { return }
        let u = state.poolUsage(name)
        statuses.update(key, initial: { .resourcePool(ResourcePoolStatus()) }) { status in
            var s = status.resourcePool ?? ResourcePoolStatus()
            s.nodeCount.used = u.nodes; s.gpuCount.used = u.gpus
            status = .resourcePool(s)
        }
    }

    // MARK: Queries (tests, bench)

    public func withState<T>(_ f: (SchedulerState) -> T) -> T { locked { f(state) } }
    public func poolUsage(_ name: String) -> (nodes: Int64, gpus: Int64) { locked { state.poolUsage(name) } }
}
