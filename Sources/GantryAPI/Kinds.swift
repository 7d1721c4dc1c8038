/// The `apiVersion` every Gantry manifest carries.
public let gantryAPIVersion = "gantry.dev/v1alpha1"

public enum QueueingStrategy: String, Sendable, CaseIterable { case bestEffortFIFO = "BestEffortFIFO", strictFIFO = "StrictFIFO" }
public enum QueueState: String, Sendable, CaseIterable { case open = "Open", closed = "Closed" }

/// Queue spec (SPEC.md "Queue"). `capability` nil means unlimited.
public struct QueueSpec: Sendable, Equatable {
    public var parent: String?
    public var description: String = ""
    public var resourcePool: String?
    public var deserved = ResourceList()
    public var guarantee = ResourceList()
    public var capability: ResourceList?
    public var reclaimable = true
    public var disableOversell = false
    public var queueingStrategy = QueueingStrategy.bestEffortFIFO
    public var state = QueueState.open
    public init() {}
}

public enum WorkloadType: String, Sendable, CaseIterable {
    case pytorchJob = "PyTorchJob", mpiJob = "MPIJob", job = "Job", deployment = "Deployment", statefulSet = "StatefulSet", authoring = "Authoring"
    /// PyTorchJob, MPIJob and Job run to completion; the others are services.
    public var runsToCompletion: Bool { self == .pytorchJob || self == .mpiJob || self == .job }
}

/// Workload spec (SPEC.md "Workload"); defaults applied by the decoder.
public struct WorkloadSpec: Sendable, Equatable {
    public var displayName: String = ""
    public var description: String = ""
    public var type = WorkloadType.job
    public var queue = "default"
    public var priority: Int = 0
    /// The name the user wrote (`high`), if a name rather than a number.
    public var priorityName: String?
    public var image: String = ""
    public var command: String = ""
    public var entryPoint: String = ""
    public var args: [String] = []
    public var env: [String: String] = [:]
    public var replicas: Int = 1
    public var resources = ResourceList()
    public var gpuType: String?
    public var specifiedNodes: [String] = []
    public var timeout: Int = 0
    public var maxRetry: Int = 0
    public var ttlSecondsAfterFinished: Int?
    public var suspend = false
    public init() {}

    public static let priorityNames: [String: Int] = ["low": -1, "normal": 0, "high": 1, "highest": 2]

    /// GPUs over all replicas (saturating: a huge per-replica count times replicas does not trap).
    public var totalGPUs: Int64 { let (t, over) = resources.gpu.multipliedReportingOverflow(by: Int64(replicas)); return over ? .max : t }

    /// The shell command line a replica runs: `command` or decoded `entryPoint`, then `args`.
    public var effectiveCommand: String {
        var c = command
        if c.isEmpty, !entryPoint.isEmpty, let d = Base64.decode(entryPoint) { c = String(decoding: d, as: UTF8.self) }
        for a in args { c += " " + shellQuote(a) }
        return c
    }
}

func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) }) { return s }
    return "'" + s.replacingAll("'", with: "'\\''") + "'"
}

extension String {
    func replacingAll(_ a: String, with b: String) -> String { split(separator: a, omittingEmptySubsequences: false).joined(separator: b) }
}

public enum GPUVendor: String, Sendable, CaseIterable { case nvidia, amd }

/// Node spec (directory mode). `capacity.gpu` is the count of GPU indices 0..<gpu.
public struct NodeSpec: Sendable, Equatable {
    public var resourcePool: String?
    public var capacity = ResourceList()
    public var gpuType: String?
    public var gpuVendor = GPUVendor.nvidia
    public var unschedulable = false
    public init() {}
}

public struct ResourcePoolSpec: Sendable, Equatable {
    public var description: String = ""
    public init() {}
}

/// A desired object's spec, one case per kind.
public indirect enum ObjectSpec: Sendable, Equatable {
    case queue(QueueSpec)
    case workload(WorkloadSpec)
    case node(NodeSpec)
    case resourcePool(ResourcePoolSpec)

    public var kind: Kind {
        switch self { case .queue: .queue; case .workload: .workload; case .node: .node; case .resourcePool: .resourcePool }
    }
    public var workload: WorkloadSpec? { if case .workload(let w) = self { return w }; return nil }
    public var queue: QueueSpec? { if case .queue(let q) = self { return q }; return nil }
    public var node: NodeSpec? { if case .node(let n) = self { return n }; return nil }
}

/// Where a document came from: the file (relative to the spec directory), the line of the
/// document's start, and its index in a multi-document file.
public struct SourceRef: Sendable, Equatable {
    public var file: String
    public var line: Int
    public var index: Int
    public init(file: String, line: Int, index: Int) { self.file = file; self.line = line; self.index = index }
    public var description: String { "\(file):\(line)" }
}

/// A desired object as declared in a manifest. `invalid` holds the validation errors of a
/// document whose identity is known but whose spec is not acceptable (reason InvalidSpec).
///
/// A value type kept in one heap box (copy on write): the directory source's index, the
/// inventory and every change in flight share one box per object instead of each holding
/// a copy of its ~130 bytes of fields (at 100,000 workloads that is tens of megabytes).
public struct ManifestObject: Sendable, Equatable {
    /// The fields. Only ever mutated through a uniquely referenced box (`mutable`), so a box
    /// that two values share is never written: immutable once shared, hence Sendable.
    final class Box: @unchecked Sendable {
        var meta: ObjectMeta
        var spec: ObjectSpec
        var source: SourceRef
        var invalid: [FieldError]
        init(meta: ObjectMeta, spec: ObjectSpec, source: SourceRef, invalid: [FieldError]) {
            self.meta = meta; self.spec = spec; self.source = source; self.invalid = invalid
        }
    }
    var box: Box

    public init(meta: ObjectMeta, spec: ObjectSpec, source: SourceRef) {
        box = Box(meta: meta, spec: spec, source: source, invalid: [])
    }

    /// The box, copied first unless this value is its only owner.
    private var mutable: Box {
        mutating get {
            if !isKnownUniquelyReferenced(&box) { box = Box(meta: box.meta, spec: box.spec, source: box.source, invalid: box.invalid) }
            return box
        }
    }

    // `_read`, not `get`: reading `obj.meta.generation` borrows the box's field instead of
    // copying the whole struct (its strings and label maps retained and released each time;
    // about 5 % of the first admission pass).
    public var meta: ObjectMeta {
        _read { yield box.meta }
        set { mutable.meta = newValue }
        _modify { let b = mutable; yield &b.meta }
    }
    public var spec: ObjectSpec {
        _read { yield box.spec }
        set { mutable.spec = newValue }
        _modify { let b = mutable; yield &b.spec }
    }
    public var source: SourceRef {
        _read { yield box.source }
        set { mutable.source = newValue }
        _modify { let b = mutable; yield &b.source }
    }
    public var invalid: [FieldError] {
        _read { yield box.invalid }
        set { mutable.invalid = newValue }
        _modify { let b = mutable; yield &b.invalid }
    }

    public var key: ObjectKey { ObjectKey(box.spec.kind, namespace: box.meta.namespace, name: box.meta.name) }

    public static func == (a: ManifestObject, b: ManifestObject) -> Bool {
        a.box === b.box || (a.box.meta == b.box.meta && a.box.spec == b.box.spec && a.box.source == b.box.source && a.box.invalid == b.box.invalid)
    }
}

/// `SourceRef.file` of objects written through the HTTP API in directory mode (they live in
/// the daemon-owned directory inside the state directory): `@api/<file>`.
public let apiSourcePrefix = "@api/"

extension SourceRef {
    /// Whether the object was written through the HTTP API (not a user's manifest).
    public var isAPIOwned: Bool { file.hasPrefix(apiSourcePrefix) }
}
