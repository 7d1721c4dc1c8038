/// Condition types and reasons (SPEC.md).
public enum ConditionType {
    public static let admitted = "Admitted", running = "Running", preempted = "Preempted", finished = "Finished"
    public static let ready = "Ready", valid = "Valid"
    /// Node conditions set while an infrastructure fault lasts (the node admits nothing new):
    /// `DiskPressure` for ENOSPC/EDQUOT, `ResourcePressure` for EMFILE/ENFILE/EAGAIN/ENOMEM.
    public static let diskPressure = "DiskPressure", resourcePressure = "ResourcePressure"
}
public enum Reason {
    public static let quotaReserved = "QuotaReserved", waitingForQuota = "WaitingForQuota", queueNotFound = "QueueNotFound"
    public static let queueClosed = "QueueClosed", noFittingNodes = "NoFittingNodes", invalidSpec = "InvalidSpec"
    public static let allReplicasRunning = "AllReplicasRunning", replicaRestarting = "ReplicaRestarting"
    public static let inQueue = "InQueue", reclaimed = "Reclaimed"
    public static let succeeded = "Succeeded", failed = "Failed", deadlineExceeded = "DeadlineExceeded"
    public static let retryLimitExceeded = "RetryLimitExceeded", stopped = "Stopped"
    /// A replica could not be started or supervised for a reason outside it (a full disk, no
    /// file descriptors, a failed fork, a supervisor that died): restarted, maxRetry unspent.
    public static let infrastructureFailure = "InfrastructureFailure"
}

public enum WorkloadPhase: String, Sendable, CaseIterable {
    case pending = "Pending", running = "Running", succeeded = "Succeeded", failed = "Failed", stopped = "Stopped", updating = "Updating"
}

/// One replica's assignment: rank -> node and GPU indices.
public struct ReplicaAssignment: Sendable, Equatable {
    public var rank: Int
    public var node: String
    public var gpus: [Int]
    public init(rank: Int, node: String, gpus: [Int]) { self.rank = rank; self.node = node; self.gpus = gpus }
}

/// A running (or finished) replica as reported in status.
public struct ReplicaStatus: Sendable, Equatable {
    public var name: String
    public var rank: Int
    public var node: String
    public var phase: String
    public var gpus: [Int]
    public var pid: Int?
    public var startTime: Timestamp?
    public var exitCode: Int?
    public var restarts: Int
    /// The GPU count when the indices are not Gantry's to tell (kube mode: the device plugin
    /// picks them); `gpus` is empty then.
    public var gpuCount: Int?
    public init(name: String, rank: Int, node: String, phase: String, gpus: [Int], pid: Int? = nil, startTime: Timestamp? = nil, exitCode: Int? = nil, restarts: Int = 0, gpuCount: Int? = nil) {
        self.name = name; self.rank = rank; self.node = node; self.phase = phase; self.gpus = gpus
        self.pid = pid; self.startTime = startTime; self.exitCode = exitCode; self.restarts = restarts; self.gpuCount = gpuCount
    }
}

/// A suspend value set with `gantry stop`/`gantry resume`, in force while the manifest keeps
/// `generation`.
public struct SuspendOverride: Sendable, Equatable {
    public var suspend: Bool
    public var generation: Int64
    public var at: Timestamp
    public var by: String
    public init(suspend: Bool, generation: Int64, at: Timestamp, by: String) { self.suspend = suspend; self.generation = generation; self.at = at; self.by = by }
}

public struct WorkloadStatus: Sendable, Equatable {
    public var phase = WorkloadPhase.pending
    public var override: SuspendOverride?
    public var message = ""
    public var queuePosition: Int?
    public var admissionQueue: String?
    public var admission: [ReplicaAssignment] = []
    public var replicas: [ReplicaStatus] = []
    public var dispatchCount = 0
    public var retryCount = 0
    public var creationTime = Timestamp(seconds: 0)
    public var startTime: Timestamp?
    public var endTime: Timestamp?
    public var observedGeneration: Int64 = 0
    public var conditions: [Condition] = []
    public init() {}
}

public struct QueueStatus: Sendable, Equatable {
    public var state = QueueState.open
    public var deserved = ResourceList()
    public var allocated = ResourceList()
    public var borrowed = ResourceList()
    public var pending = 0
    public var admitted = 0
    public var running = 0
    public var observedGeneration: Int64 = 0
    public var conditions: [Condition] = []
    public init() {}
}

public struct NodeStatus: Sendable, Equatable {
    public var phase = "Ready"
    public var capacity = ResourceList()
    public var allocated = ResourceList()
    public var workloads = 0
    public var observedGeneration: Int64 = 0
    public var conditions: [Condition] = []
    public init() {}
}

public struct UsedTotal: Sendable, Equatable {
    public var total: Int64 = 0
    public var used: Int64 = 0
    public init(total: Int64 = 0, used: Int64 = 0) { self.total = total; self.used = used }
}

public struct ResourcePoolStatus: Sendable, Equatable {
    public var phase = "Running"
    public var nodeCount = UsedTotal()
    public var gpuCount = UsedTotal()
    public var observedGeneration: Int64 = 0
    public var conditions: [Condition] = []
    public init() {}
}

/// The status Gantry writes for an object, one case per kind.
public indirect enum ObjectStatus: Sendable, Equatable {
    case queue(QueueStatus)
    case workload(WorkloadStatus)
    case node(NodeStatus)
    case resourcePool(ResourcePoolStatus)

    public var workload: WorkloadStatus? { if case .workload(let w) = self { return w }; return nil }
    public var queue: QueueStatus? { if case .queue(let q) = self { return q }; return nil }
    public var node: NodeStatus? { if case .node(let n) = self { return n }; return nil }
    public var resourcePool: ResourcePoolStatus? { if case .resourcePool(let p) = self { return p }; return nil }
    public var conditions: [Condition] {
        switch self {
        case .queue(let s): s.conditions
        case .workload(let s): s.conditions
        case .node(let s): s.conditions
        case .resourcePool(let s): s.conditions
        }
    }
}
