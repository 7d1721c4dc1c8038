import GantryAPI

/// What the scheduler needs of a Workload: the admission inputs of its spec.
public struct WorkloadRequest: Sendable, Equatable {
    public var queue: String
    public var priority: Int
    /// Creation time (seconds); orders the queue after priority.
    public var created: Int64
    public var replicas: Int
    /// Per replica.
    public var resources: ResourceList
    public var gpuType: String?
    public var specifiedNodes: [String]

    public init(queue: String, priority: Int = 0, created: Int64 = 0, replicas: Int = 1, resources: ResourceList, gpuType: String? = nil, specifiedNodes: [String] = []) {
        self.queue = queue; self.priority = priority; self.created = created; self.replicas = replicas
        self.resources = resources; self.gpuType = gpuType; self.specifiedNodes = specifiedNodes
    }

    public init(_ spec: WorkloadSpec, created: Int64) {
        self.init(queue: spec.queue, priority: spec.priority, created: created, replicas: spec.replicas,
                  resources: spec.resources, gpuType: spec.gpuType, specifiedNodes: spec.specifiedNodes)
    }

    /// True when a change from `self` to `o` invalidates an admission (anything but priority).
    /// The scheduler keeps requests without `resources` and compares those as vectors itself.
    public func needsReadmission(_ o: WorkloadRequest) -> Bool {
        queue != o.queue || replicas != o.replicas || resources != o.resources || gpuType != o.gpuType || specifiedNodes != o.specifiedNodes
    }
}

/// Why a pending workload waits (the Admitted=False condition's reason and message).
public struct WaitReason: Sendable, Equatable {
    public var reason: String
    public var message: String
    public init(_ reason: String, _ message: String) { self.reason = reason; self.message = message }
}

/// Something a cycle or a state change did to a workload that deserves an event.
public enum SchedulerEvent: Sendable, Equatable {
    /// Quota reserved and replicas placed.
    case admitted(ObjectKey, queue: String, assignments: [ReplicaAssignment], waitedSeconds: Double)
    /// Evicted to make room for `by`; reason `InQueue` (priority) or `Reclaimed` (quota reclaim).
    case preempted(ObjectKey, by: ObjectKey, reason: String, message: String)
    /// Admission withdrawn because its placement is no longer valid (node removed, spec changed).
    case evicted(ObjectKey, reason: String, message: String)
}

/// The outcome of one admission cycle.
public struct CycleResult: Sendable {
    public var events: [SchedulerEvent] = []
    /// Pending workloads whose wait reason changed.
    public var waiting: [(ObjectKey, WaitReason)] = []
    /// Pending workloads whose queue position changed (nil: no longer pending).
    public var positions: [(ObjectKey, Int?)] = []
    /// Queues, nodes and pools whose usage or counts may have changed.
    public var queues: Set<String> = []
    public var nodes: Set<String> = []
    public var pools: Set<String> = []
    /// Workloads examined (admission attempts, not counting those skipped as dominated).
    public var attempts = 0
    /// Pending workloads given a decision (admitted, or a reason to wait).
    public var decisions = 0
    public var admitted: Int { events.reduce(0) { if case .admitted = $1 { return $0 + 1 }; return $0 } }
    public init() {}
}

/// A queue's usage for its status.
public struct QueueUsage: Sendable, Equatable {
    public var allocated = ResourceList()
    public var borrowed = ResourceList()
    public var pending = 0
    public var admitted = 0
}

/// A node's usage for its status.
public struct NodeUsage: Sendable, Equatable {
    public var allocated = ResourceList()
    public var workloads = 0
    public var freeGPUs: [Int] = []
}
