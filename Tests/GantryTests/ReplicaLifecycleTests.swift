import Testing
import Foundation
@testable import GantryAPI
@testable import Controllers

/// Table tests over the pure replica lifecycle (`ReplicaLifecycle`): each case is an input
/// (the spec in force, the admission, the observed run, the time) and the exact run and
/// actions it must decide.
@Suite(.timeLimit(.minutes(1)))
struct ReplicaLifecycleTests {
    typealias A = ReplicaLifecycle.Action

    /// One row: a decision over `step`, and what it must give.
    struct Case: Sendable, CustomTestStringConvertible {
        enum Step: Sendable {
            case decide(ReplicaLifecycle.Input)
            case ended(ReplicaLifecycle.Ending)
            case started(Run)
        }
        var name: String
        var step: Step
        var run: Run?
        var actions: [A]
        var testDescription: String { name }
    }

    static let grace = 30.0
    static let t0 = 1_000.0
    static let two = [ReplicaAssignment(rank: 0, node: "n1", gpus: [0]), ReplicaAssignment(rank: 1, node: "n1", gpus: [1])]

    static func job(_ type: WorkloadType = .pytorchJob, replicas: Int = 2, maxRetry: Int = 2, timeout: Int = 0, suspend: Bool = false) -> WorkloadSpec {
        var s = WorkloadSpec()
        s.type = type
        s.command = "python train.py"
        s.replicas = replicas
        s.maxRetry = maxRetry
        s.timeout = timeout
        s.suspend = suspend
        return s
    }

    /// A run of `spec` on `assignments`, every replica in `state` (started at t0 - 10).
    static func run(_ spec: WorkloadSpec, _ assignments: [ReplicaAssignment] = two, _ state: Run.RepState = .running) -> Run {
        var r = Run(dispatch: 1, specHash: Admission.specHash(spec), assignments: assignments, port: 29500,
                    reps: assignments.map { Run.Rep(rank: $0.rank, node: $0.node, gpus: $0.gpus) })
        for i in r.reps.indices {
            r.reps[i].state = state
            r.reps[i].pid = Int32(100 + i)
            r.reps[i].start = t0 - 10
            if state == .exited { r.reps[i].code = 0; r.reps[i].end = t0 - 1 }
        }
        r.announced = true
        return r
    }

    static func input(_ spec: WorkloadSpec?, _ run: Run?, admitted: [ReplicaAssignment]? = two, now: Double = t0,
                      startTime: Double? = t0 - 10, finished: Bool = false, updating: Bool = false) -> ReplicaLifecycle.Input {
        ReplicaLifecycle.Input(run: run, spec: spec, finished: finished, admitted: admitted, startTime: startTime,
                               updating: updating, gracePeriod: grace, now: now)
    }

    static func ending(_ run: Run, rank: Int, code: Int32, spec: WorkloadSpec?, lost: String? = nil, fault: String? = nil,
                       retryCount: Int = 0, infraFailures: Int = 0, now: Double = t0) -> ReplicaLifecycle.Ending {
        ReplicaLifecycle.Ending(run: run, rank: rank, code: code, signal: 0, lostMessage: lost, fault: fault, spec: spec,
                                retryCount: retryCount, infraFailures: infraFailures, lastLines: "; last output: boom",
                                backoffBase: 1, backoffCap: 60, backoffReset: 600, now: now)
    }

    static func with(_ r: Run, _ f: (inout Run) -> Void) -> Run { var r = r; f(&r); return r }

    /// SIGTERM (or SIGKILL) to every replica of a 2-replica run at attempt 0.
    static func signals(force: Bool) -> [A] {
        [.signal(dispatch: 1, rank: 0, attempt: 0, force: force), .signal(dispatch: 1, rank: 1, attempt: 0, force: force)]
    }

    static var cases: [Case] {
        var cases: [Case] = []
        let spec = job()
        let running = run(spec)

        // The gang runs as admitted: nothing to do.
        cases.append(Case(name: "gang all running", step: .decide(input(spec, running)), run: running, actions: []))

        // The last replica of the gang starts: Running, announced once; not while some still start.
        let fresh = with(running) { $0.announced = false }
        cases.append(Case(name: "whole gang started is announced", step: .started(fresh), run: running,
                          actions: [.clearInfraFailures, .setUpdating(false),
                                    .event(warning: false, reason: "Started", message: "all 2 replicas running (dispatch 1): rank 0 pid 100, rank 1 pid 101"),
                                    .status(.running(replicas: 2)), .writeReplicas(running)]))
        cases.append(Case(name: "gang started again is not announced twice", step: .started(running), run: running,
                          actions: [.clearInfraFailures, .setUpdating(false), .status(.running(replicas: 2)), .writeReplicas(running)]))
        let half = with(fresh) { $0.reps[1].state = .starting }
        cases.append(Case(name: "gang partly started waits", step: .started(half), run: half, actions: [.writeReplicas(half)]))

        // Admitted, no run yet: the gang starts; finished with this spec: nothing starts.
        cases.append(Case(name: "admitted without a run starts the gang", step: .decide(input(spec, nil)), run: nil,
                          actions: [.startGang(two, retry: false, spendsRetry: false, updating: false)]))
        cases.append(Case(name: "finished workload does not start again", step: .decide(input(spec, nil, finished: true)), run: nil, actions: []))

        // A replica failed with retries left: the gang is marked to restart after 2^retries s, spending a retry.
        let failedOne = with(running) { r in
            r.reps[1].state = .exited; r.reps[1].code = 1; r.reps[1].end = t0
            r.stopping = .retry(after: "replica rank 1 exited with code 1", until: t0 + 2, spends: true)
        }
        cases.append(Case(name: "replica failed with retries left", step: .ended(ending(running, rank: 1, code: 1, spec: spec, retryCount: 1)),
                          run: failedOne,
                          actions: [.event(warning: true, reason: "Restarting", message: "replica rank 1 exited with code 1; restarting the gang in 2s (retry 2 of 2); last output: boom"),
                                    .status(.restarting(message: "replica rank 1 exited with code 1; restarting the gang (retry 2 of 2)", reason: Reason.replicaRestarting)),
                                    .writeReplicas(failedOne)]))
        // ... then the rest of the gang gets SIGTERM, and a look after the grace period.
        let terminating = with(failedOne) { $0.termAt = t0 }
        cases.append(Case(name: "gang marked to retry is stopped", step: .decide(input(spec, failedOne)), run: terminating,
                          actions: [.signal(dispatch: 1, rank: 0, attempt: 0, force: false),
                                    .status(.stopping(failedOne.stopping ?? .deleted, alive: 1)),
                                    .requeueAt(t0 + grace), .writeReplicas(terminating)]))
        // ... once down, it waits for its backoff, then starts again spending the retry.
        let down = with(terminating) { $0.reps[0].state = .exited; $0.reps[0].code = 143; $0.reps[0].end = t0 + 1 }
        cases.append(Case(name: "gang down waits for its backoff", step: .decide(input(spec, down, now: t0 + 1)), run: down,
                          actions: [.setActive(false), .requeueAt(t0 + 2), .status(.stopping(down.stopping ?? .deleted, alive: 0))]))
        cases.append(Case(name: "gang down restarts after its backoff", step: .decide(input(spec, down, now: t0 + 2)), run: nil,
                          actions: [.setActive(false), .retire(down), .writeReplicas(down),
                                    .startGang(two, retry: true, spendsRetry: true, updating: false)]))

        // Retries exhausted: the gang is marked failed, and finishes Failed once down.
        let exhausted = with(running) { r in
            r.reps[1].state = .exited; r.reps[1].code = 1; r.reps[1].end = t0
            r.stopping = .failed(reason: Reason.retryLimitExceeded, message: "replica rank 1 exited with code 1; no retries left (maxRetry 2); last output: boom")
        }
        cases.append(Case(name: "retries exhausted", step: .ended(ending(running, rank: 1, code: 1, spec: spec, retryCount: 2)),
                          run: exhausted, actions: [.writeReplicas(exhausted)]))
        let exhaustedDown = with(exhausted) { $0.reps[0].state = .exited; $0.reps[0].code = 143; $0.termAt = t0 }
        cases.append(Case(name: "retries exhausted finishes Failed", step: .decide(input(spec, exhaustedDown)), run: nil,
                          actions: [.setActive(false), .retire(exhaustedDown),
                                    .finish(exhaustedDown, phase: .failed, reason: Reason.retryLimitExceeded,
                                            message: "replica rank 1 exited with code 1; no retries left (maxRetry 2); last output: boom")]))
        // A replica of a job that exits 0 waits for the others; all 0: Succeeded.
        cases.append(Case(name: "replica exits 0", step: .ended(ending(running, rank: 0, code: 0, spec: spec)),
                          run: with(running) { $0.reps[0].state = .exited; $0.reps[0].code = 0; $0.reps[0].end = t0 },
                          actions: [.writeReplicas(with(running) { $0.reps[0].state = .exited; $0.reps[0].code = 0; $0.reps[0].end = t0 })]))
        let succeeded = run(spec, two, .exited)
        cases.append(Case(name: "all exited 0 succeeds", step: .decide(input(spec, succeeded)), run: nil,
                          actions: [.setActive(false), .retire(succeeded),
                                    .finish(succeeded, phase: .succeeded, reason: Reason.succeeded, message: "all 2 replicas exited 0 after 10s")]))

        // A service replica restarts alone, its backoff capped (attempt 10: 2^10 s capped at 60 s).
        let svc = job(.deployment, replicas: 1)
        let svcRun = with(run(svc, [two[0]])) { $0.reps[0].attempt = 10 }
        let svcWaiting = with(svcRun) { r in
            r.reps[0].state = .waiting; r.reps[0].code = 1; r.reps[0].end = t0; r.reps[0].restartAt = t0 + 60
        }
        cases.append(Case(name: "service replica restart with capped backoff", step: .ended(ending(svcRun, rank: 0, code: 1, spec: svc)),
                          run: svcWaiting,
                          actions: [.requeueAt(t0 + 60),
                                    .event(warning: true, reason: "Restarting", message: "replica rank 0 exited with code 1; restarting it in 60s; last output: boom"),
                                    .status(.restarting(message: "replica rank 0 exited with code 1; restarting in 60s", reason: Reason.replicaRestarting)),
                                    .writeReplicas(svcWaiting)]))
        // A service replica that ran longer than backoffReset restarts after the base backoff.
        let longRun = with(svcRun) { $0.reps[0].start = t0 - 700 }
        let longWaiting = with(longRun) { r in
            r.reps[0].state = .waiting; r.reps[0].code = 1; r.reps[0].end = t0; r.reps[0].restartAt = t0 + 1
        }
        cases.append(Case(name: "service replica that ran long restarts after the base backoff", step: .ended(ending(longRun, rank: 0, code: 1, spec: svc)),
                          run: longWaiting,
                          actions: [.requeueAt(t0 + 1),
                                    .event(warning: true, reason: "Restarting", message: "replica rank 0 exited with code 1; restarting it in 1s; last output: boom"),
                                    .status(.restarting(message: "replica rank 0 exited with code 1; restarting in 1s", reason: Reason.replicaRestarting)),
                                    .writeReplicas(longWaiting)]))
        cases.append(Case(name: "service replica waits for its backoff", step: .decide(input(svc, svcWaiting, admitted: [two[0]], now: t0 + 59)),
                          run: svcWaiting, actions: [.requeueAt(t0 + 60)]))
        let relaunched = with(svcWaiting) { r in
            r.reps[0].attempt = 11; r.reps[0].state = .starting; r.reps[0].restartAt = nil
            r.reps[0].pid = nil; r.reps[0].code = nil; r.reps[0].end = nil
        }
        cases.append(Case(name: "service replica restarts after its backoff", step: .decide(input(svc, svcWaiting, admitted: [two[0]], now: t0 + 60)),
                          run: relaunched, actions: [.launch(index: 0), .setActive(true), .writeReplicas(relaunched)]))

        // Suspended while running: SIGTERM, then SIGKILL after the grace period, then Stopped.
        let suspended = job(suspend: true)
        let stopping = with(running) { $0.stopping = .suspended; $0.termAt = t0 }
        cases.append(Case(name: "suspended while running gets SIGTERM", step: .decide(input(suspended, running)), run: stopping,
                          actions: signals(force: false) + [.status(.stopping(.suspended, alive: 2)), .requeueAt(t0 + grace), .writeReplicas(stopping)]))
        cases.append(Case(name: "suspended still running within the grace period", step: .decide(input(suspended, stopping, now: t0 + grace - 1)), run: stopping,
                          actions: [.requeueAt(t0 + grace), .writeReplicas(stopping)]))
        let killed = with(stopping) { $0.killed = true }
        cases.append(Case(name: "suspended still running after the grace period gets SIGKILL", step: .decide(input(suspended, stopping, now: t0 + grace)), run: killed,
                          actions: signals(force: true) + [.event(warning: true, reason: "Killed", message: "2 replicas still running 30s after SIGTERM; sent SIGKILL"),
                                                           .writeReplicas(killed)]))
        let suspendedDown = with(killed) { r in for i in r.reps.indices { r.reps[i].state = .exited; r.reps[i].code = 137 } }
        cases.append(Case(name: "suspended gang down is Stopped", step: .decide(input(suspended, suspendedDown, admitted: nil)), run: nil,
                          actions: [.setActive(false), .retire(suspendedDown), .setUpdating(false),
                                    .event(warning: false, reason: "Stopped", message: "replicas stopped (suspended)"), .writeReplicas(suspendedDown)]))

        // Timeout: a deadline ahead is looked at then; reached, the gang stops and fails.
        let timed = job(timeout: 50)
        let timedRun = run(timed)
        cases.append(Case(name: "deadline ahead is requeued", step: .decide(input(timed, timedRun)), run: timedRun, actions: [.requeueAt(t0 + 40)]))
        let deadlined = with(timedRun) { $0.stopping = .deadline; $0.termAt = t0 + 40 }
        cases.append(Case(name: "deadline reached stops the gang", step: .decide(input(timed, timedRun, now: t0 + 40)), run: deadlined,
                          actions: signals(force: false) + [.status(.stopping(.deadline, alive: 2)), .requeueAt(t0 + 40 + grace), .writeReplicas(deadlined)]))
        let deadlinedDown = with(deadlined) { r in for i in r.reps.indices { r.reps[i].state = .exited; r.reps[i].code = 143 } }
        cases.append(Case(name: "deadline reached finishes DeadlineExceeded", step: .decide(input(timed, deadlinedDown, now: t0 + 41)), run: nil,
                          actions: [.setActive(false), .retire(deadlinedDown),
                                    .finish(deadlinedDown, phase: .failed, reason: Reason.deadlineExceeded, message: "ran longer than its timeout of 50s; replicas stopped")]))

        // A lost replica: not the workload's failure, backoff by consecutive faults, maxRetry unspent.
        let lost = with(running) { r in
            r.reps[1].state = .lost; r.reps[1].code = -1; r.reps[1].end = t0
            r.stopping = .retry(after: "replica rank 1 was lost: its supervisor vanished", until: t0 + 4, spends: false)
        }
        cases.append(Case(name: "lost replica restarts the gang without spending a retry",
                          step: .ended(ending(running, rank: 1, code: -1, spec: spec, lost: "its supervisor vanished", retryCount: 2, infraFailures: 2)),
                          run: lost,
                          actions: [.setInfraFailures(3),
                                    .event(warning: true, reason: Reason.infrastructureFailure, message: "replica rank 1 was lost: its supervisor vanished; not the workload's failure: restarting the gang in 4s (maxRetry not spent)"),
                                    .status(.restarting(message: "replica rank 1 was lost: its supervisor vanished; restarting the gang (an infrastructure fault: maxRetry not spent)", reason: Reason.infrastructureFailure)),
                                    .writeReplicas(lost)]))
        let lostDown = with(lost) { $0.reps[0].state = .exited; $0.reps[0].code = 143; $0.termAt = t0 }
        cases.append(Case(name: "lost replica's gang restarts unspent", step: .decide(input(spec, lostDown, now: t0 + 4)), run: nil,
                          actions: [.setActive(false), .retire(lostDown), .writeReplicas(lostDown),
                                    .startGang(two, retry: true, spendsRetry: false, updating: false)]))

        // Preempted (admission withdrawn): stop, then wait to be admitted again.
        let preempted = with(running) { $0.stopping = .preempted; $0.termAt = t0 }
        cases.append(Case(name: "preempted gang is stopped", step: .decide(input(spec, running, admitted: nil)), run: preempted,
                          actions: signals(force: false) + [.status(.stopping(.preempted, alive: 2)), .requeueAt(t0 + grace), .writeReplicas(preempted)]))
        let preemptedDown = with(preempted) { r in for i in r.reps.indices { r.reps[i].state = .exited; r.reps[i].code = 143 } }
        cases.append(Case(name: "preempted gang down waits for an admission", step: .decide(input(spec, preemptedDown, admitted: nil)), run: nil,
                          actions: [.setActive(false), .retire(preemptedDown),
                                    .event(warning: false, reason: "Stopped", message: "replicas stopped; the workload waits to be admitted again"),
                                    .writeReplicas(preemptedDown), .status(.stoppedAfterPreemption)]))

        // The spec changed: the old gang stops (Updating) and the new one starts on the admission.
        var changed = spec
        changed.command = "python train.py --lr 0.1"
        let updating = with(running) { $0.stopping = .specChanged; $0.termAt = t0 }
        cases.append(Case(name: "spec change stops the gang", step: .decide(input(changed, running)), run: updating,
                          actions: [.setUpdating(true)] + signals(force: false) + [.status(.stopping(.specChanged, alive: 2)), .requeueAt(t0 + grace), .writeReplicas(updating)]))
        let updatingDown = with(updating) { r in for i in r.reps.indices { r.reps[i].state = .exited; r.reps[i].code = 143 } }
        cases.append(Case(name: "spec change starts the new gang", step: .decide(input(changed, updatingDown, updating: true)), run: nil,
                          actions: [.setActive(false), .retire(updatingDown), .writeReplicas(updatingDown), .status(.awaitingNewSpec),
                                    .startGang(two, retry: false, spendsRetry: false, updating: true)]))

        // Deleted: stop, then forget its records and files.
        let deleted = with(running) { $0.stopping = .deleted; $0.termAt = t0 }
        cases.append(Case(name: "deleted workload is stopped", step: .decide(input(nil, running, admitted: nil)), run: deleted,
                          actions: signals(force: false) + [.status(.stopping(.deleted, alive: 2)), .requeueAt(t0 + grace), .writeReplicas(deleted)]))
        let deletedDown = with(deleted) { r in for i in r.reps.indices { r.reps[i].state = .exited; r.reps[i].code = 143 } }
        cases.append(Case(name: "deleted workload's gang down is forgotten with its files", step: .decide(input(nil, deletedDown, admitted: nil)), run: nil,
                          actions: [.setActive(false), .retire(deletedDown), .setUpdating(false), .forget(keepDispatch: nil, files: true)]))
        return cases
    }

    /// A new dispatch: every replica starting, in rank order, under the spec's hash.
    @Test func newRunStartsEveryReplica() {
        let spec = Self.job()
        let r = ReplicaLifecycle.newRun(dispatch: 4, spec: spec, assignments: Self.two.reversed(), port: 29600)
        #expect(r.dispatch == 4 && r.port == 29600 && r.specHash == Admission.specHash(spec) && r.assignments == Self.two.reversed())
        #expect(r.reps.map(\.rank) == [0, 1] && r.reps.allSatisfy { $0.state == .starting && $0.attempt == 0 } && r.stopping == nil)
    }

    @Test(arguments: cases)
    func decision(_ c: Case) {
        let out: ReplicaLifecycle.Output
        switch c.step {
        case .decide(let input): out = ReplicaLifecycle.decide(input)
        case .ended(let e): out = ReplicaLifecycle.replicaEnded(e)
        case .started(let r): out = ReplicaLifecycle.replicaStarted(r, reportsPIDs: true)
        }
        #expect(out.run == c.run, "\(c.name): run")
        #expect(out.actions == c.actions, "\(c.name): actions")
        // Level-based: deciding again on the same observed state, later, never starts or
        // signals anything twice while the decision it made is still in force.
        if case .decide(var input) = c.step, let run = out.run {
            input.run = run
            let again = ReplicaLifecycle.decide(input)
            let starts = again.actions.filter { if case .startGang = $0 { return true }; if case .launch = $0 { return true }; return false }
            #expect(starts.isEmpty, "\(c.name): started again \(starts)")
            let terms = again.actions.filter { if case .signal(_, _, _, false) = $0 { return true }; return false }
            #expect(terms.isEmpty || run.termAt == nil, "\(c.name): SIGTERM twice \(terms)")
        }
    }

    /// Runtime events apply to the current replicas only, and an end only once.
    @Test func runtimeEventsApplyToTheCurrentReplicasOnce() {
        var r = Self.run(Self.job(), Self.two, .starting)
        let ref = ReplicaRef(key: ObjectKey(.workload, namespace: "ml", name: "w"), dispatch: 1, rank: 1, attempt: 0)
        guard let (started, i) = r.applying(.started(ref, pid: 7, at: 5), now: 9) else { Issue.record("start ignored"); return }
        #expect(i == 1 && started.reps[1].state == .running && started.reps[1].pid == 7 && started.reps[1].start == 5)
        #expect(started.reps[0] == r.reps[0])
        r = started
        // Another dispatch, an older attempt, an unknown rank: not this run's.
        #expect(r.applying(.exited(ReplicaRef(key: ref.key, dispatch: 2, rank: 1, attempt: 0), code: 0, signal: 0, at: 6), now: 9) == nil)
        #expect(r.applying(.exited(ReplicaRef(key: ref.key, dispatch: 1, rank: 1, attempt: 1), code: 0, signal: 0, at: 6), now: 9) == nil)
        #expect(r.applying(.exited(ReplicaRef(key: ref.key, dispatch: 1, rank: 5, attempt: 0), code: 0, signal: 0, at: 6), now: 9) == nil)
        guard let (exited, _) = r.applying(.exited(ref, code: 1, signal: 0, at: 6), now: 9) else { Issue.record("exit ignored"); return }
        #expect(exited.reps[1].end == 6)
        guard let (lost, _) = r.applying(.lost(ref, message: "gone"), now: 9) else { Issue.record("loss ignored"); return }
        #expect(lost.reps[1].end == 9)
        // Once ended, a second end is ignored.
        r.reps[1].state = .exited
        #expect(r.applying(.lost(ref, message: "gone"), now: 9) == nil)
    }

    struct TTLCase: Sendable, CustomTestStringConvertible {
        var due: Double?
        var now: Double
        var expires: Bool
        var testDescription: String { "TTL due \(due.map { String($0) } ?? "never") at \(now): \(expires ? "expires" : "stays")" }
    }

    /// A finished workload's TTL: nothing before it is due; its files go once it is.
    @Test(arguments: [TTLCase(due: nil, now: 10, expires: false), TTLCase(due: 20, now: 10, expires: false),
                      TTLCase(due: 20, now: 20, expires: true), TTLCase(due: 20, now: 25, expires: true)])
    func ttl(_ c: TTLCase) {
        let a = ReplicaLifecycle.expire(ttlDue: c.due, now: c.now)
        #expect(a == (c.expires ? .forget(keepDispatch: nil, files: true) : nil))
    }

    /// Status changes write what the lifecycle promised (messages and conditions).
    @Test func statusChanges() {
        let ts = Timestamp(secondsSince1970: 1_000)
        var s = WorkloadStatus()
        s.phase = .pending
        ReplicaLifecycle.StatusChange.stopping(.preempted, alive: 2).apply(to: &s, now: ts)
        #expect(s.message == "admission withdrawn: stopping 2 replicas; quota is released once they are gone")
        ReplicaLifecycle.StatusChange.stopping(.retry(after: "replica rank 1 was lost: x", until: 0, spends: false), alive: 0).apply(to: &s, now: ts)
        #expect(s.message == "replica rank 1 was lost: x; restarting the gang after a backoff (an infrastructure fault: maxRetry not spent)")
        #expect(s.conditions.get(ConditionType.running)?.reason == Reason.infrastructureFailure)
        ReplicaLifecycle.StatusChange.stopping(.specChanged, alive: 1).apply(to: &s, now: ts)
        #expect(s.phase == .updating && s.message == "the spec changed: stopping 1 replica to restart with the new spec")
        s.startTime = ts
        ReplicaLifecycle.StatusChange.stoppedAfterPreemption.apply(to: &s, now: ts)
        #expect(s.startTime == nil && s.conditions.get(ConditionType.running)?.reason == "Stopped")
        ReplicaLifecycle.StatusChange.restarting(message: "m", reason: Reason.replicaRestarting).apply(to: &s, now: ts)
        #expect(s.message == "m" && s.conditions.get(ConditionType.running)?.status == "False")
        // A retry that spends one counts it and keeps the start time; a first dispatch clears it.
        s.retryCount = 1; s.startTime = ts
        ReplicaLifecycle.StatusChange.dispatched(dispatch: 3, replicas: 2, retry: true, spendsRetry: true, updating: false).apply(to: &s, now: ts)
        #expect(s.retryCount == 2 && s.dispatchCount == 3 && s.startTime == ts && s.phase == .pending)
        #expect(s.message == "starting 2 replicas (dispatch 3)" && s.conditions.get(ConditionType.running)?.reason == Reason.replicaRestarting)
        ReplicaLifecycle.StatusChange.dispatched(dispatch: 4, replicas: 1, retry: true, spendsRetry: false, updating: false).apply(to: &s, now: ts)
        #expect(s.retryCount == 2 && s.message == "starting 1 replica (dispatch 4)")
        ReplicaLifecycle.StatusChange.dispatched(dispatch: 5, replicas: 2, retry: false, spendsRetry: false, updating: false).apply(to: &s, now: ts)
        #expect(s.startTime == nil && s.conditions.get(ConditionType.running)?.reason == "Starting")
        ReplicaLifecycle.StatusChange.running(replicas: 2).apply(to: &s, now: ts)
        #expect(s.phase == .running && s.startTime == ts && s.message == "2/2 replicas running")
        s.admission = Self.two
        ReplicaLifecycle.StatusChange.finished(generation: 7, phase: .failed, reason: Reason.deadlineExceeded, message: "late").apply(to: &s, now: ts)
        #expect(s.phase == .failed && s.observedGeneration == 7 && s.endTime == ts && s.admission.isEmpty)
        #expect(s.conditions.get(ConditionType.finished)?.status == "True" && s.conditions.get(ConditionType.admitted)?.reason == Reason.deadlineExceeded)
    }
}
