import Foundation
import GantryAPI

/// The replica lifecycle as a pure, level-based state machine: given what a workload should
/// be doing (the spec in force, its admission) and what its replicas are doing (the `Run`),
/// at a time, it decides what to do now. It reads no clock, touches no lock, calls no
/// runtime: `Admission` (Lifecycle.swift) gathers the input under its lock and carries out
/// the actions in the order given (runtime calls through its outbox, after the lock).
enum ReplicaLifecycle {
    /// What the lifecycle looks at, as plain values.
    struct Input {
        /// The current dispatch and its observed replicas (nil: none).
        var run: Run?
        /// The spec in force, its `suspend` already the effective one (an override applied; an
        /// invalid spec counts as suspended). nil: the workload is deleted.
        var spec: WorkloadSpec?
        /// Whether the workload finished with the generation in force.
        var finished = false
        /// The placement of its admission (nil: not admitted).
        var admitted: [ReplicaAssignment]?
        /// `status.startTime` in seconds (the deadline runs from it).
        var startTime: Double?
        /// Whether its gang is being replaced after a spec change.
        var updating = false
        /// SIGTERM, then SIGKILL after this many seconds.
        var gracePeriod: Double
        var now: Double
    }

    /// A change to `status` the lifecycle asks for (applied with the time of writing).
    enum StatusChange: Equatable {
        /// The gang is being stopped (`alive` replicas still up) for `stop`.
        case stopping(Run.Stop, alive: Int)
        /// The gang stopped after its admission was withdrawn.
        case stoppedAfterPreemption
        /// The old gang is gone after a spec change; the new one waits to start.
        case awaitingNewSpec
        /// Dispatch `dispatch` of `replicas` replicas starts (after a failure: `retry`).
        case dispatched(dispatch: Int, replicas: Int, retry: Bool, spendsRetry: Bool, updating: Bool)
        /// The workload finished (at `generation`, when known): quota released.
        case finished(generation: Int64?, phase: WorkloadPhase, reason: String, message: String)
        /// Every one of `replicas` replicas runs.
        case running(replicas: Int)
        /// A replica ended and it (or its gang) restarts: `message`, Running False for `reason`.
        case restarting(message: String, reason: String)

        func apply(to s: inout WorkloadStatus, now ts: Timestamp) {
            switch self {
            case .stopping(let stop, let alive):
                switch stop {
                case .specChanged:
                    s.phase = .updating
                    s.message = "the spec changed: stopping \(alive) replica\(alive == 1 ? "" : "s") to restart with the new spec"
                case .retry(let after, _, let spends):
                    s.phase = .pending
                    s.message = alive > 0 ? "\(after); stopping the gang to restart it" : "\(after); restarting the gang after a backoff"
                    if !spends { s.message += " (an infrastructure fault: maxRetry not spent)" }
                    s.conditions.set(type: ConditionType.running, status: "False", reason: spends ? Reason.replicaRestarting : Reason.infrastructureFailure, message: s.message, now: ts, generation: s.observedGeneration)
                case .failed(_, let m):
                    s.message = "failing: \(m); stopping \(alive) replica\(alive == 1 ? "" : "s")"
                case .deadline:
                    s.message = "timeout reached: stopping \(alive) replica\(alive == 1 ? "" : "s")"
                case .preempted:
                    if s.phase == .pending { s.message = "admission withdrawn: stopping \(alive) replica\(alive == 1 ? "" : "s"); quota is released once they are gone" }
                case .suspended, .deleted:
                    break
                }
            case .stoppedAfterPreemption:
                s.startTime = nil
                s.conditions.set(type: ConditionType.running, status: "False", reason: "Stopped", message: "replicas stopped after losing the admission", now: ts, generation: s.observedGeneration)
            case .awaitingNewSpec:
                s.phase = .updating
                s.message = "the spec changed: waiting to start the new replicas"
            case .dispatched(let n, let count, let retry, let spendsRetry, let updating):
                s.dispatchCount = n
                if retry && spendsRetry { s.retryCount += 1 }
                if !retry && !updating { s.startTime = nil }
                s.phase = updating ? .updating : .pending
                s.endTime = nil
                s.message = updating ? "the spec changed: restarting \(count) replicas with the new spec" : "starting \(count) replica\(count == 1 ? "" : "s") (dispatch \(n))"
                s.conditions.set(type: ConditionType.running, status: "False", reason: retry ? Reason.replicaRestarting : "Starting", message: s.message, now: ts, generation: s.observedGeneration)
            case .finished(let gen, let phase, let reason, let message):
                if let gen { s.observedGeneration = gen }
                s.phase = phase
                s.message = message
                s.endTime = ts
                s.queuePosition = nil
                s.admissionQueue = nil; s.admission = []
                s.conditions.set(type: ConditionType.admitted, status: "False", reason: reason, message: "finished; quota released", now: ts, generation: s.observedGeneration)
                s.conditions.set(type: ConditionType.running, status: "False", reason: reason, message: message, now: ts, generation: s.observedGeneration)
                s.conditions.set(type: ConditionType.finished, status: "True", reason: reason, message: message, now: ts, generation: s.observedGeneration)
            case .running(let n):
                s.phase = .running
                if s.startTime == nil { s.startTime = ts }
                s.message = "\(n)/\(n) replicas running"
                s.conditions.set(type: ConditionType.running, status: "True", reason: Reason.allReplicasRunning, message: s.message, now: ts, generation: s.observedGeneration)
            case .restarting(let message, let reason):
                s.message = message
                s.conditions.set(type: ConditionType.running, status: "False", reason: reason, message: s.message, now: ts, generation: s.observedGeneration)
            }
        }
    }

    /// What the lifecycle decided, in the order to carry it out.
    enum Action: Equatable {
        /// Mark (or unmark) the workload as being replaced after a spec change.
        case setUpdating(Bool)
        /// SIGTERM (`force` false) or SIGKILL one replica of the run.
        case signal(dispatch: Int, rank: Int, attempt: Int, force: Bool)
        /// Launch the replica at this index of the resulting run (a service restart).
        case launch(index: Int)
        /// Start a new gang (dispatch) on these assignments.
        case startGang([ReplicaAssignment], retry: Bool, spendsRetry: Bool, updating: Bool)
        /// Whether the workload's replicas hold their GPUs (false: release them).
        case setActive(Bool)
        /// Forget the workload's dispatch records (and its files).
        case forget(keepDispatch: Int?, files: Bool)
        /// Finish the workload with this ended run: quota back, phase, event, TTL.
        case finish(Run, phase: WorkloadPhase, reason: String, message: String)
        /// Write `status.replicas` from this run.
        case writeReplicas(Run)
        case status(StatusChange)
        case event(warning: Bool, reason: String, message: String)
        /// Look again at this time (absolute seconds, the clock of `Input.now`).
        case requeueAt(Double)
        /// The run is over: its replicas' last lines go to metrics collection.
        case retire(Run)
        /// The workload's count of consecutive infrastructure faults is now this.
        case setInfraFailures(Int)
        /// Its gang runs: the count of consecutive infrastructure faults starts over.
        case clearInfraFailures
    }

    struct Output: Equatable {
        /// The run after the decision (nil: none; a `startGang` action makes the next one).
        var run: Run?
        var actions: [Action] = []
    }

    /// Brings a workload's replicas in line with what it should be doing: stop them (and
    /// escalate to SIGKILL after the grace period), restart service replicas whose backoff
    /// is over, release the quota once they are gone, finish it, or start a dispatch.
    static func decide(_ input: Input) -> Output {
        var out = Output(run: input.run)
        let now = input.now
        var updating = input.updating
        guard var run = input.run else {
            if let spec = input.spec, !spec.suspend, let a = input.admitted, !input.finished {
                out.actions.append(.startGang(a, retry: false, spendsRetry: false, updating: updating))
            }
            return out
        }
        let waiting = run.reps.contains { $0.state == .waiting }
        if run.stopping == nil && (run.anyAlive || waiting) {
            run.stopping = stopReason(run, input, &out.actions)
            if run.stopping == .specChanged {
                updating = true
                out.actions.append(.setUpdating(true))
            }
        }
        if run.anyAlive {
            if run.stopping != nil { stopAlive(&run, input, &out.actions) } else { restartDue(&run, input, &out.actions) }
            out.run = run
            return out
        }
        if run.stopping == nil && waiting {
            // Service replicas waiting for their restart.
            restartDue(&run, input, &out.actions)
            out.run = run
            return out
        }
        // The gang is down: release what was held, then act on why it stopped.
        out.actions.append(.setActive(false))
        let stop = run.stopping
        if let stop, case .retry(_, let until, _) = stop, now < until, let spec = input.spec, !spec.suspend, input.admitted == run.assignments {
            out.actions.append(.requeueAt(until))
            out.actions.append(.status(.stopping(stop, alive: 0)))
            out.run = run
            return out
        }
        out.run = nil
        out.actions.append(.retire(run))
        guard let spec = input.spec, stop != .deleted else {
            out.actions.append(.setUpdating(false))
            out.actions.append(.forget(keepDispatch: nil, files: true))
            return out
        }
        switch stop {
        case .deleted?:
            return out
        case .suspended?:
            out.actions.append(.setUpdating(false))
            out.actions.append(.event(warning: false, reason: "Stopped", message: "replicas stopped (suspended)"))
            out.actions.append(.writeReplicas(run))
            return out
        case .preempted?:
            out.actions.append(.event(warning: false, reason: "Stopped", message: "replicas stopped; the workload waits to be admitted again"))
            out.actions.append(.writeReplicas(run))
            out.actions.append(.status(.stoppedAfterPreemption))
        case .failed(let reason, let message)?:
            out.actions.append(.finish(run, phase: .failed, reason: reason, message: message))
            return out
        case .deadline?:
            out.actions.append(.finish(run, phase: .failed, reason: Reason.deadlineExceeded, message: "ran longer than its timeout of \(spec.timeout)s; replicas stopped"))
            return out
        case nil:
            // Everything exited on its own: a run-to-completion gang that succeeded.
            if run.reps.allSatisfy({ $0.state == .exited && $0.code == 0 }) {
                let started = run.reps.compactMap(\.start).min() ?? now
                out.actions.append(.finish(run, phase: .succeeded, reason: Reason.succeeded,
                                           message: "all \(run.reps.count) replica\(run.reps.count == 1 ? "" : "s") exited 0 after \(Admission.seconds((now - started) * 10 .rounded() / 10))"))
                return out
            }
            out.actions.append(.writeReplicas(run))
        case .specChanged?:
            out.actions.append(.writeReplicas(run))
            out.actions.append(.status(.awaitingNewSpec))
        case .retry?:
            out.actions.append(.writeReplicas(run))
        }
        // Start again right away when the admission still holds (spec change, retry).
        guard !spec.suspend, let a = input.admitted else { return out }
        var retry = false, spends = false
        if case .retry(_, _, let s)? = stop { retry = true; spends = s }
        out.actions.append(.startGang(a, retry: retry, spendsRetry: spends, updating: updating))
        return out
    }

    /// Why a gang that runs (or waits to restart a replica) must stop now, if it must; a
    /// deadline still to come is asked to be looked at then.
    static func stopReason(_ run: Run, _ input: Input, _ actions: inout [Action]) -> Run.Stop? {
        guard let spec = input.spec else { return .deleted }
        if spec.suspend { return .suspended }
        if Admission.specHash(spec) != run.specHash { return .specChanged }
        if input.admitted != run.assignments { return .preempted }
        if let d = deadline(spec, startTime: input.startTime) {
            if input.now >= d { return .deadline }
            actions.append(.requeueAt(d))
        }
        return nil
    }

    /// When the run must end: its first start plus `timeout` (nil: no timeout).
    static func deadline(_ spec: WorkloadSpec, startTime: Double?) -> Double? {
        guard spec.timeout > 0, let st = startTime else { return nil }
        return st + Double(spec.timeout)
    }

    /// Stops the live replicas of a gang: SIGTERM once, SIGKILL after the grace period.
    static func stopAlive(_ run: inout Run, _ input: Input, _ actions: inout [Action]) {
        let now = input.now
        let alive = run.reps.filter(\.alive)
        if let termAt = run.termAt {
            if !run.killed && now >= termAt + input.gracePeriod {
                run.killed = true
                for r in alive { actions.append(.signal(dispatch: run.dispatch, rank: r.rank, attempt: r.attempt, force: true)) }
                actions.append(.event(warning: true, reason: "Killed", message: "\(alive.count) replica\(alive.count == 1 ? "" : "s") still running \(Admission.seconds(input.gracePeriod)) after SIGTERM; sent SIGKILL"))
            }
        } else {
            run.termAt = now
            for r in alive { actions.append(.signal(dispatch: run.dispatch, rank: r.rank, attempt: r.attempt, force: false)) }
            if let stop = run.stopping { actions.append(.status(.stopping(stop, alive: alive.count))) }
        }
        if !run.killed, let termAt = run.termAt { actions.append(.requeueAt(termAt + input.gracePeriod)) }
        actions.append(.writeReplicas(run))
    }

    /// Restarts service replicas whose backoff has passed; the next backoff to end is asked
    /// to be looked at then.
    static func restartDue(_ run: inout Run, _ input: Input, _ actions: inout [Action]) {
        guard input.spec != nil else { return }
        var changed = false
        for i in run.reps.indices where run.reps[i].state == .waiting {
            guard let at = run.reps[i].restartAt else { continue }
            if at > input.now { actions.append(.requeueAt(at)); continue }
            run.reps[i].attempt += 1
            run.reps[i].state = .starting
            run.reps[i].restartAt = nil
            run.reps[i].pid = nil; run.reps[i].code = nil; run.reps[i].end = nil; run.reps[i].signal = 0
            actions.append(.launch(index: i))
            changed = true
        }
        if changed {
            actions.append(.setActive(true))
            actions.append(.writeReplicas(run))
        }
    }

    /// A finished workload's TTL (`ttlSecondsAfterFinished`) due at `ttlDue`: at `now`, its
    /// logs and working directory go (nil: not yet, or none).
    static func expire(ttlDue: Double?, now: Double) -> Action? {
        guard let t = ttlDue, t <= now else { return nil }
        return .forget(keepDispatch: nil, files: true)
    }

    /// A new dispatch's run: every replica starting, ranks in order.
    static func newRun(dispatch n: Int, spec: WorkloadSpec, assignments: [ReplicaAssignment], port: Int) -> Run {
        let sorted = assignments.sorted { $0.rank < $1.rank }
        return Run(dispatch: n, specHash: Admission.specHash(spec), assignments: assignments, port: port,
                   reps: sorted.map { Run.Rep(rank: $0.rank, node: $0.node, gpus: $0.gpus) })
    }

    // MARK: A replica started

    /// A replica of the run started: once the whole gang runs (and is not being stopped) the
    /// workload is Running, announced once per dispatch.
    static func replicaStarted(_ run: Run, reportsPIDs: Bool) -> Output {
        var run = run
        var actions: [Action] = []
        if run.allRunning && run.stopping == nil {
            actions.append(.clearInfraFailures)
            actions.append(.setUpdating(false))
            let first = !run.announced
            run.announced = true
            let pids = run.reps.map { reportsPIDs ? "rank \($0.rank) pid \($0.pid ?? 0)" : "rank \($0.rank) on \($0.node)" }.joined(separator: ", ")
            if first { actions.append(.event(warning: false, reason: "Started", message: "all \(run.reps.count) replica\(run.reps.count == 1 ? "" : "s") running (dispatch \(run.dispatch)): \(pids)")) }
            actions.append(.status(.running(replicas: run.reps.count)))
        }
        actions.append(.writeReplicas(run))
        return Output(run: run, actions: actions)
    }

    // MARK: A replica ended

    /// A replica that ended: how, and what is known when it did.
    struct Ending {
        /// The run it belongs to, and the replica's rank in it.
        var run: Run
        var rank: Int
        var code: Int32
        var signal: Int32
        /// Set when the replica was lost (its supervisor died).
        var lostMessage: String?
        /// Set (its description) when it could not be started or supervised for an
        /// infrastructure fault.
        var fault: String?
        /// The spec in force (nil: deleted).
        var spec: WorkloadSpec?
        /// `status.retryCount`.
        var retryCount = 0
        /// Consecutive infrastructure faults of the workload so far.
        var infraFailures = 0
        /// What it printed last, as a message suffix ("" when nothing is known).
        var lastLines = ""
        var backoffBase: Double
        var backoffCap: Double
        var backoffReset: Double
        var now: Double
    }

    /// Records a replica's end in its run and decides what the gang does: a service replica
    /// restarts alone with capped exponential backoff; a run-to-completion gang restarts after
    /// a failure while retries are left (a lost replica or an infrastructure fault is not the
    /// workload's failure: backoff by consecutive faults, maxRetry not spent), or fails. The
    /// stop itself is `decide`'s (level-based) once the run carries its `stopping`.
    static func replicaEnded(_ e: Ending) -> Output {
        var run = e.run
        var actions: [Action] = []
        guard let i = run.reps.firstIndex(where: { $0.rank == e.rank }) else { return Output(run: run) }
        decideEnded(&run, i, e, &actions)
        // status.replicas last, whatever was decided.
        actions.append(.writeReplicas(run))
        return Output(run: run, actions: actions)
    }

    static func decideEnded(_ run: inout Run, _ i: Int, _ e: Ending, _ actions: inout [Action]) {
        let now = e.now
        let infra = e.fault != nil || e.lostMessage != nil
        run.reps[i].state = infra ? .lost : .exited
        run.reps[i].code = e.code
        run.reps[i].signal = e.signal
        if run.reps[i].end == nil { run.reps[i].end = now }
        guard run.stopping == nil, let spec = e.spec else { return }
        let what = e.fault.map { "replica rank \(e.rank) could not be started or supervised: \($0)" }
            ?? e.lostMessage.map { "replica rank \(e.rank) was lost: \($0)" }
            ?? "replica rank \(e.rank) exited with code \(e.code)\(e.signal > 0 ? " (signal \(e.signal))" : "")"
        let restartReason = infra ? Reason.infrastructureFailure : Reason.replicaRestarting
        if !spec.type.runsToCompletion {
            // Services: restart this replica alone, with capped exponential backoff.
            let ranFor = now - (run.reps[i].start ?? now)
            let n = ranFor >= e.backoffReset ? 0 : run.reps[i].attempt
            let delay = min(e.backoffCap, e.backoffBase * pow(2, Double(min(n, 30))))
            run.reps[i].state = .waiting
            run.reps[i].restartAt = now + delay
            actions.append(.requeueAt(now + delay))
            actions.append(.event(warning: true, reason: infra ? Reason.infrastructureFailure : "Restarting",
                                      message: "\(what); restarting it in \(Admission.seconds(delay))" + (infra ? "" : e.lastLines)))
            actions.append(.status(.restarting(message: "\(what); restarting in \(Admission.seconds(delay))", reason: restartReason)))
            return
        }
        if e.code == 0 && !infra { return }   // `decide` finishes when all are done
        if infra {
            // Not the workload's failure: restart with backoff (by consecutive faults), maxRetry unspent.
            let n = e.infraFailures
            actions.append(.setInfraFailures(n + 1))
            let delay = min(e.backoffCap, e.backoffBase * pow(2, Double(min(n, 30))))
            run.stopping = .retry(after: what, until: now + delay, spends: false)
            actions.append(.event(warning: true, reason: Reason.infrastructureFailure,
                                      message: "\(what); not the workload's failure: restarting the gang in \(Admission.seconds(delay)) (maxRetry not spent)"))
            actions.append(.status(.restarting(message: "\(what); restarting the gang (an infrastructure fault: maxRetry not spent)", reason: restartReason)))
            return
        }
        let retries = e.retryCount
        if retries < spec.maxRetry {
            let delay = min(e.backoffCap, e.backoffBase * pow(2, Double(retries)))
            run.stopping = .retry(after: what, until: now + delay, spends: true)
            actions.append(.event(warning: true, reason: "Restarting",
                                      message: "\(what); restarting the gang in \(Admission.seconds(delay)) (retry \(retries + 1) of \(spec.maxRetry))" + e.lastLines))
            actions.append(.status(.restarting(message: "\(what); restarting the gang (retry \(retries + 1) of \(spec.maxRetry))", reason: Reason.replicaRestarting)))
        } else {
            let reason = spec.maxRetry > 0 ? Reason.retryLimitExceeded : Reason.failed
            let msg = spec.maxRetry > 0 ? "\(what); no retries left (maxRetry \(spec.maxRetry))" : what
            run.stopping = .failed(reason: reason, message: msg + e.lastLines)
        }
    }
}

extension Run {
    /// The run after a runtime event about one of its replicas, and that replica's index;
    /// nil when the event is not about the current replicas (another dispatch, an older
    /// attempt) or reports the end of one that already ended. A start marks the replica
    /// running; an end records when (`now` for a lost replica or an infrastructure fault) and
    /// leaves the rest to `ReplicaLifecycle.replicaEnded`.
    func applying(_ e: RuntimeEvent, now: Double) -> (Run, Int)? {
        guard dispatch == e.ref.dispatch, let i = reps.firstIndex(where: { $0.rank == e.ref.rank }), reps[i].attempt == e.ref.attempt else { return nil }
        var run = self
        switch e {
        case .started(_, let pid, let at):
            run.reps[i].pid = pid
            run.reps[i].start = at
            if run.reps[i].state == .starting { run.reps[i].state = .running }
        case .exited(_, _, _, let at):
            guard run.reps[i].alive else { return nil }
            run.reps[i].end = at
        case .lost, .infrastructureFailed:
            guard run.reps[i].alive else { return nil }
            run.reps[i].end = now
        }
        return (run, i)
    }
}
