import Synchronization
import GantryAPI

/// The statuses Gantry last computed, by key. Every change goes through `update`, which runs
/// the change under one lock and marks the key dirty in persistence only if the status
/// actually differs, so status is written only when it changed.
public final class StatusCache: Sendable {
    /// Sharded by key so workers and the state writer rarely wait on each other.
    final class Shard: Sendable { let m = Mutex<[ObjectKey: ObjectStatus]>([:]) }
    let shards: [Shard]
    let persistence: any StatePersistence
    /// Bumped on every change (readers that cache views of many statuses compare it).
    public let version = Atomic<Int>(0)
    /// Updates between changing a status in memory and marking it dirty in the store (a
    /// reader that serves lists from the store checks this is 0 before the store's state).
    public let unpersisted = Atomic<Int>(0)

    public init(persistence: any StatePersistence, shards: Int = 16) {
        self.persistence = persistence
        self.shards = (0..<max(1, shards)).map { _ in Shard() }
    }

    /// Makes room for `n` more statuses (an initial load's), spread over the shards.
    public func reserve(_ n: Int) {
        let each = n / shards.count + n / (4 * shards.count) + 16
        for s in shards { s.m.withLock { $0.reserveCapacity($0.count + each) } }
    }

    func shard(_ key: ObjectKey) -> Shard { shards[shardIndex(key)] }

    func shardIndex(_ key: ObjectKey) -> Int {
        var h = Hasher()
        h.combine(key.name)
        h.combine(key.namespace)
        return Int(UInt(bitPattern: h.finalize()) % UInt(shards.count))
    }

    public func get(_ key: ObjectKey) -> ObjectStatus? { shard(key).m.withLock { $0[key] } }
    public var count: Int { shards.reduce(0) { n, s in n + s.m.withLock { $0.count } } }

    /// Seeds a status restored from the state store (not marked dirty).
    public func restore(_ key: ObjectKey, _ status: ObjectStatus) {
        shard(key).m.withLock { $0[key] = status }
        version.add(1, ordering: .relaxed)
    }

    /// Applies `change` to the current status (or `initial()` when there is none).
    /// Returns true when the status changed.
    @discardableResult
    public func update(_ key: ObjectKey, initial: () -> ObjectStatus, _ change: (inout ObjectStatus) -> Void) -> Bool {
        unpersisted.add(1, ordering: .sequentiallyConsistent)
        defer { unpersisted.subtract(1, ordering: .sequentiallyConsistent) }
        let changed: Bool = shard(key).m.withLock { m in
            let old = m[key]
            var s = old ?? initial()
            change(&s)
            if s == old { return false }
            m[key] = s
            return true
        }
        if changed { version.add(1, ordering: .relaxed); persistence.markStatusDirty(key) }
        return changed
    }

    /// Sets `queuePosition` of many workloads: one lock per shard, one dirty mark for all.
    public func setQueuePositions(_ changes: [(ObjectKey, Int?)]) {
        var byShard: [[(ObjectKey, Int?)]] = Array(repeating: [], count: shards.count)
        for c in changes { byShard[shardIndex(c.0)].append(c) }
        var dirty: [ObjectKey] = []
        dirty.reserveCapacity(changes.count)
        for (i, list) in byShard.enumerated() where !list.isEmpty {
            shards[i].m.withLock { m in
                for (key, pos) in list {
                    guard case .workload(var s)? = m[key], s.queuePosition != pos else { continue }
                    s.queuePosition = pos
                    m[key] = .workload(s)
                    dirty.append(key)
                }
            }
        }
        if !dirty.isEmpty { version.add(1, ordering: .relaxed) }
        persistence.markStatusesDirty(dirty)
    }

    public func remove(_ key: ObjectKey) {
        _ = shard(key).m.withLock { $0.removeValue(forKey: key) }
        version.add(1, ordering: .relaxed)
    }

    /// The stored JSON form of a status, for the state writer.
    public func json(_ key: ObjectKey) -> String? {
        guard let s = get(key) else { return nil }
        return s.jsonText
    }
}
