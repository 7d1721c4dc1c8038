import GantryAPI
import Synchronization

/// Workloads with the fields the list filters and sorts read, laid out in columns.
///
/// A workload's spec and status live in heap boxes, so a filter over 100,000 workloads spends
/// most of its time waiting for memory; columns make every later query a scan of compact
/// arrays. Build one per snapshot of the workload list (rebuild when it changes) and pass it
/// to `WorkloadQuery.apply(_:)`/`matching(_:)`/`count(_:)`. `apply([APIObject])` reuses the
/// index of the same array storage when it has one (`shared`), else builds one with the
/// columns its query needs: a backend that hands out the same array until the list changes
/// gets the fast path for free. Immutable; Sendable.
public final class WorkloadIndex: Sendable {
    public let items: [APIObject]
    let columns: Columns
    let phase: [UInt8]
    let type: [UInt8]
    let priority: [Int64]
    let gpus: [Int64]
    let replicas: [Int64]
    /// Seconds since the epoch; `missing` when not set.
    let created: [Int64]
    let started: [Int64]
    let completed: [Int64]
    let name: [String]
    let namespace: [String]
    let queue: [String]
    let user: [String]
    let description: [String]
    /// Labels of row i: labelKeys/labelValues[labelStart[i]..<labelStart[i + 1]] (flat, so a
    /// selector scans contiguous memory instead of hashing into a dictionary per row).
    let labelStart: [Int32]
    let labelKeys: [String]
    let labelValues: [String]

    static let missing = Int64.min

    struct Columns: OptionSet, Sendable {
        let rawValue: Int
        static let phase = Columns(rawValue: 1 << 0), type = Columns(rawValue: 1 << 1), priority = Columns(rawValue: 1 << 2)
        static let gpus = Columns(rawValue: 1 << 3), replicas = Columns(rawValue: 1 << 4), created = Columns(rawValue: 1 << 5)
        static let started = Columns(rawValue: 1 << 6), completed = Columns(rawValue: 1 << 7), queue = Columns(rawValue: 1 << 8)
        static let user = Columns(rawValue: 1 << 9), description = Columns(rawValue: 1 << 10), labels = Columns(rawValue: 1 << 11)
        static let all = Columns(rawValue: (1 << 12) - 1)
        static let spec: Columns = [.type, .priority, .gpus, .replicas, .queue, .description]
        static let status: Columns = [.phase, .started, .completed]
    }

    /// Every column.
    public convenience init(_ items: [APIObject]) { self.init(items, columns: .all) }

    /// Only `columns` (name and namespace always: the tie-breakers of every sort).
    init(_ items: [APIObject], columns: Columns) {
        self.items = items
        self.columns = columns
        self.storage = items.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let n = items.count, c = columns
        var phase: [UInt8] = [], type: [UInt8] = [], priority: [Int64] = [], gpus: [Int64] = [], replicas: [Int64] = []
        var created: [Int64] = [], started: [Int64] = [], completed: [Int64] = []
        var name: [String] = [], namespace: [String] = [], queue: [String] = [], user: [String] = [], description: [String] = []
        var labelStart: [Int32] = [], labelKeys: [String] = [], labelValues: [String] = []
        name.reserveCapacity(n); namespace.reserveCapacity(n)
        if c.contains(.phase) { phase.reserveCapacity(n) }
        if c.contains(.type) { type.reserveCapacity(n) }
        if c.contains(.priority) { priority.reserveCapacity(n) }
        if c.contains(.gpus) { gpus.reserveCapacity(n) }
        if c.contains(.replicas) { replicas.reserveCapacity(n) }
        if c.contains(.created) { created.reserveCapacity(n) }
        if c.contains(.started) { started.reserveCapacity(n) }
        if c.contains(.completed) { completed.reserveCapacity(n) }
        if c.contains(.queue) { queue.reserveCapacity(n) }
        if c.contains(.user) { user.reserveCapacity(n) }
        if c.contains(.description) { description.reserveCapacity(n) }
        if c.contains(.labels) { labelStart.reserveCapacity(n + 1); labelStart.append(0) }
        let needSpec = !c.isDisjoint(with: .spec), needStatus = !c.isDisjoint(with: .status)
        items.withUnsafeBufferPointer { buf in
            for i in 0..<buf.count {
                name.append(buf[i].object.meta.name); namespace.append(buf[i].object.meta.namespace)
                if c.contains(.created) { created.append(buf[i].object.meta.creationTimestamp.seconds) }
                if c.contains(.user) { user.append(buf[i].object.meta.annotations[APIObject.submitterAnnotation] ?? "") }
                if c.contains(.labels) {
                    for (k, v) in buf[i].object.meta.labels { labelKeys.append(k); labelValues.append(v) }
                    labelStart.append(Int32(clamping: labelKeys.count))
                }
                if needSpec {
                    if case .workload(let w) = buf[i].object.spec {
                        if c.contains(.type) { type.append(WorkloadIndex.typeIndex(w.type)) }
                        if c.contains(.priority) { priority.append(Int64(w.priority)) }
                        if c.contains(.gpus) { gpus.append(w.totalGPUs) }
                        if c.contains(.replicas) { replicas.append(Int64(w.replicas)) }
                        if c.contains(.queue) { queue.append(w.queue) }
                        if c.contains(.description) { description.append(w.description) }
                    } else {
                        if c.contains(.type) { type.append(0) }
                        if c.contains(.priority) { priority.append(0) }
                        if c.contains(.gpus) { gpus.append(0) }
                        if c.contains(.replicas) { replicas.append(0) }
                        if c.contains(.queue) { queue.append("") }
                        if c.contains(.description) { description.append("") }
                    }
                }
                if needStatus {
                    if case .workload(let s)? = buf[i].status {
                        if c.contains(.phase) { phase.append(WorkloadIndex.phaseIndex(s.phase)) }
                        if c.contains(.started) { started.append(s.startTime?.seconds ?? WorkloadIndex.missing) }
                        if c.contains(.completed) { completed.append(s.endTime?.seconds ?? WorkloadIndex.missing) }
                    } else {
                        if c.contains(.phase) { phase.append(0) }
                        if c.contains(.started) { started.append(WorkloadIndex.missing) }
                        if c.contains(.completed) { completed.append(WorkloadIndex.missing) }
                    }
                }
            }
        }
        self.phase = phase; self.type = type; self.priority = priority; self.gpus = gpus; self.replicas = replicas
        self.created = created; self.started = started; self.completed = completed
        self.name = name; self.namespace = namespace; self.queue = queue; self.user = user; self.description = description
        self.labelStart = labelStart; self.labelKeys = labelKeys; self.labelValues = labelValues
    }

    public var count: Int { items.count }

    /// The address of `items`' storage: an array that shares it is this very array (the index
    /// keeps the storage alive, and shared storage is copied before any write).
    let storage: UInt

    /// Lists at least this long are cached by `shared`.
    static let cacheThreshold = 1024
    private static let recent = Mutex<[WorkloadIndex]>([])

    /// The index of `items` from the last two lists indexed when it is the same storage and
    /// has `columns`; else a new one (with the columns the cached one had too), remembered.
    static func shared(_ items: [APIObject], columns: Columns) -> WorkloadIndex {
        guard items.count >= cacheThreshold else { return WorkloadIndex(items, columns: columns) }
        let key = items.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let cached = recent.withLock { r in r.first { $0.storage == key && $0.count == items.count } }
        if let cached, cached.columns.isSuperset(of: columns) { return cached }
        let index = WorkloadIndex(items, columns: columns.union(cached?.columns ?? []))
        recent.withLock { r in
            r.removeAll { $0.storage == key }
            r.insert(index, at: 0)
            if r.count > 2 { r.removeLast(r.count - 2) }
        }
        return index
    }

    /// Position in `WorkloadPhase.allCases` (a workload without status: 0, Pending).
    static func phaseIndex(_ p: WorkloadPhase) -> UInt8 {
        switch p { case .pending: 0; case .running: 1; case .succeeded: 2; case .failed: 3; case .stopped: 4; case .updating: 5 }
    }
    /// Position in `WorkloadType.allCases`.
    static func typeIndex(_ t: WorkloadType) -> UInt8 {
        switch t { case .pytorchJob: 0; case .mpiJob: 1; case .job: 2; case .deployment: 3; case .statefulSet: 4; case .authoring: 5 }
    }

    /// The value of label `key` on row i.
    func label(_ i: Int, _ key: String) -> String? {
        var j = Int(labelStart[i])
        let end = Int(labelStart[i + 1])
        while j < end {
            if labelKeys[j] == key { return labelValues[j] }
            j += 1
        }
        return nil
    }

    func string(_ f: WorkloadQuery.StringField, _ i: Int) -> String {
        switch f {
        case .name: name[i]
        case .namespace: namespace[i]
        case .queue: queue[i]
        case .user: user[i]
        case .description: description[i]
        }
    }
    func number(_ f: WorkloadQuery.NumberField, _ i: Int) -> Int64 {
        switch f {
        case .priority: priority[i]
        case .gpus: gpus[i]
        case .replicas: replicas[i]
        }
    }
    func date(_ f: WorkloadQuery.DateField, _ i: Int) -> Int64 {
        switch f {
        case .createdAt: created[i]
        case .startedAt: started[i]
        case .completedAt: completed[i]
        }
    }
}
