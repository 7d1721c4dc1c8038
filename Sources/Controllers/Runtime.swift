import Glibc
import GantryAPI
import GantryShim

/// One start of one replica: the workload, its dispatch (gang start) number, the rank, and
/// the attempt within the dispatch (a service replica restarted alone gets a new attempt).
public struct ReplicaRef: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var key: ObjectKey
    public var dispatch: Int
    public var rank: Int
    public var attempt: Int
    public init(key: ObjectKey, dispatch: Int, rank: Int, attempt: Int) {
        self.key = key; self.dispatch = dispatch; self.rank = rank; self.attempt = attempt
    }
    public static func < (a: ReplicaRef, b: ReplicaRef) -> Bool {
        (a.key, a.dispatch, a.rank, a.attempt) < (b.key, b.dispatch, b.rank, b.attempt)
    }
    public var description: String { "\(key.qualifiedName) dispatch \(dispatch) rank \(rank) attempt \(attempt)" }
}

/// What is written down before a dispatch starts, so a restarted daemon knows the gang even
/// if it died before any replica recorded its start.
public struct DispatchIntent: Sendable, Equatable {
    public var dispatch: Int
    public var specHash: String
    public var masterPort: Int
    public var at: Double
    public var assignments: [ReplicaAssignment]
    public init(dispatch: Int, specHash: String, masterPort: Int, at: Double, assignments: [ReplicaAssignment]) {
        self.dispatch = dispatch; self.specHash = specHash; self.masterPort = masterPort; self.at = at; self.assignments = assignments
    }
}

/// One replica process to start.
public struct ReplicaLaunch: Sendable {
    public var ref: ReplicaRef
    public var command: String
    /// The complete environment, `NAME=value`.
    public var env: [String]
    public var header: String
    /// The Unix account it runs as (`RunAs`); nil: the daemon's own.
    public var user: String?
    public init(ref: ReplicaRef, command: String, env: [String], header: String, user: String? = nil) {
        self.ref = ref; self.command = command; self.env = env; self.header = header; self.user = user
    }
}

/// A replica could not be started or supervised for a reason outside it: what failed
/// (`op`: mkdir, open, pipe, spawn, record, supervise), on which path, with which errno (0:
/// unknown, as when a supervisor vanished).
public struct InfrastructureFault: Sendable, Equatable, CustomStringConvertible {
    public var errno: Int32
    public var op: String
    public var path: String
    /// Said instead of the errno text when there is no errno.
    public var detail: String
    public init(errno: Int32, op: String, path: String, detail: String = "") {
        self.errno = errno; self.op = op; self.path = path; self.detail = detail
    }

    /// `mkdir /state/work/ns/w: No space left on device (errno 28)`.
    public var description: String {
        let what = path.isEmpty ? op : "\(op) \(path)"
        guard errno != 0 else { return detail.isEmpty ? what : "\(what): \(detail)" }
        return "\(what): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    public init(_ f: RecordedFault) { self.init(errno: f.errno, op: f.op, path: f.path) }

    /// The node condition the fault puts in force while it lasts, if any.
    public var pressure: String? {
        switch errno {
        case ENOSPC, EDQUOT: ConditionType.diskPressure
        case EMFILE, ENFILE, EAGAIN, ENOMEM: ConditionType.resourcePressure
        default: nil
        }
    }
}

/// What the runtime reports about replicas, from its own thread.
public enum RuntimeEvent: Sendable, Equatable {
    case started(ReplicaRef, pid: Int32, at: Double)
    case exited(ReplicaRef, code: Int32, signal: Int32, at: Double)
    /// Its supervisor vanished without recording an exit (or it never started).
    case lost(ReplicaRef, message: String)
    /// It could not be started or supervised for a reason outside it (its supervisor recorded
    /// the fault, or the supervisor itself could not be started).
    case infrastructureFailed(ReplicaRef, InfrastructureFault)

    public var ref: ReplicaRef {
        switch self { case .started(let r, _, _), .exited(let r, _, _, _), .lost(let r, _), .infrastructureFailed(let r, _): r }
    }
}

/// A replica found at start-up in the records of the newest dispatch.
public struct RecoveredReplica: Sendable, Equatable {
    public var ref: ReplicaRef
    public var pid: Int32?
    public var start: Double?
    /// Nil while it runs (or is still starting).
    public var exit: (code: Int32, signal: Int32, end: Double)?
    public var lost = false
    /// Its supervisor recorded an infrastructure fault instead of starting it.
    public var fault: InfrastructureFault?
    public init(ref: ReplicaRef) { self.ref = ref }
    public static func == (a: RecoveredReplica, b: RecoveredReplica) -> Bool {
        a.ref == b.ref && a.pid == b.pid && a.start == b.start && a.lost == b.lost && a.fault == b.fault
            && a.exit?.code == b.exit?.code && a.exit?.signal == b.exit?.signal && a.exit?.end == b.exit?.end
    }
}

public struct RecoveredDispatch: Sendable, Equatable {
    public var intent: DispatchIntent
    /// The newest attempt of each rank that has a record.
    public var replicas: [Int: RecoveredReplica]
    public init(intent: DispatchIntent, replicas: [Int: RecoveredReplica]) { self.intent = intent; self.replicas = replicas }
}

/// Starts, signals and forgets replica processes. `ProcessRuntime` runs local processes under
/// `gantry-shim`; tests use a fake. Events arrive through the handler given to `start`, never
/// from inside a call (callers hold locks).
public protocol ReplicaRuntime: AnyObject, Sendable {
    /// Begins delivering events.
    func start(_ handler: @escaping @Sendable (RuntimeEvent) -> Void)
    /// Records a dispatch durably before its replicas start.
    func prepare(_ key: ObjectKey, _ intent: DispatchIntent)
    /// Records several dispatches durably, in order, before any of their replicas start
    /// (one fsync for all where the runtime can).
    func prepare(_ batch: [(ObjectKey, DispatchIntent)])
    /// Starts one replica. A program that cannot start is reported as an exit with code 127;
    /// a supervisor that cannot start, as an infrastructure failure.
    func launch(_ launch: ReplicaLaunch)
    /// SIGTERM (or SIGKILL with `force`) to the replica's process group.
    func signal(_ ref: ReplicaRef, force: Bool)
    /// Drops the workload's records of dispatches before `keepDispatch` (all of them when nil),
    /// and with `files` also its logs and working directory.
    func forget(_ key: ObjectKey, keepDispatch: Int?, files: Bool)
    /// The last lines a replica printed (for failure events).
    func tail(_ key: ObjectKey, rank: Int, lines: Int) -> [String]
    /// The working directory of a workload (created on demand).
    func workdir(_ key: ObjectKey) -> String
    /// The newest dispatch recorded for each workload, read at start-up.
    func recover() -> [ObjectKey: RecoveredDispatch]
    /// A free TCP port on 127.0.0.1 for a gang's rendezvous.
    func freePort() -> Int
    /// Checks that replicas could start now (ProcessRuntime: a small file written and
    /// fsync'd in the state directory); the fault when not. Called outside any lock.
    func probe() -> InfrastructureFault?
}

extension ReplicaRuntime {
    public func probe() -> InfrastructureFault? { nil }
}

extension ReplicaRuntime {
    public func prepare(_ batch: [(ObjectKey, DispatchIntent)]) {
        for (k, i) in batch { prepare(k, i) }
    }
}
