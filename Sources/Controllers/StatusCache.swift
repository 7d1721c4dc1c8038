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

    public init(persistence: any StatePersistence, shards: Int = 16) {
        self.persistence = persistence
        self.shards = (0..<max(1, shards)).map { _ in Shard() }
    }

    func shard(_ key: ObjectKey) -> Shard {
        var h = Hasher()
        h.combine(key.name)
        h.combine(key.namespace)
        return shards[Int(UInt(bitPattern: h.finalize()) % UInt(shards.count))]
    }

    public func get(_ key: ObjectKey) -> ObjectStatus? { shard(key).m.withLock { $0[key] } }
    public var count: Int { shards.reduce(0) { n, s in n + s.m.withLock { $0.count } } }

    /// Seeds a status restored from the state store (not marked dirty).
    public func restore(_ key: ObjectKey, _ status: ObjectStatus) { shard(key).m.withLock { $0[key] = status } }

    /// Applies `change` to the current status (or `initial()` when there is none).
    /// Returns true when the status changed.
    @discardableResult
    public func update(_ key: ObjectKey, initial: () -> ObjectStatus, _ change: (inout ObjectStatus) -> Void) -> Bool {
        let changed: Bool = shard(key).m.withLock { m in
            let old = m[key]
            var s = old ?? initial()
            change(&s)
            if s == old { return false }
            m[key] = s
            return true
        }
        if changed { persistence.markStatusDirty(key) }
        return changed
    }

    public func remove(_ key: ObjectKey) { _ = shard(key).m.withLock { $0.removeValue(forKey: key) } }

    /// The stored JSON form of a status, for the state writer.
    public func json(_ key: ObjectKey) -> String? {
        guard let s = get(key) else { return nil }
        return JSON.encode(s.toValue())
    }
}
