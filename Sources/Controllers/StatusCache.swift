import Synchronization
import GantryAPI

/// The statuses Gantry last computed, by key. Every change goes through `update`, which runs
/// the change under one lock and marks the key dirty in persistence only if the status
/// actually differs, so status is written only when it changed.
public final class StatusCache: Sendable {
    let map = Mutex<[ObjectKey: ObjectStatus]>([:])
    let persistence: any StatePersistence

    public init(persistence: any StatePersistence) { self.persistence = persistence }

    public func get(_ key: ObjectKey) -> ObjectStatus? { map.withLock { $0[key] } }
    public var count: Int { map.withLock { $0.count } }

    /// Seeds a status restored from the state store (not marked dirty).
    public func restore(_ key: ObjectKey, _ status: ObjectStatus) { map.withLock { $0[key] = status } }

    /// Applies `change` to the current status (or `initial()` when there is none).
    /// Returns true when the status changed.
    @discardableResult
    public func update(_ key: ObjectKey, initial: () -> ObjectStatus, _ change: (inout ObjectStatus) -> Void) -> Bool {
        let changed: Bool = map.withLock { m in
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

    public func remove(_ key: ObjectKey) { _ = map.withLock { $0.removeValue(forKey: key) } }

    /// The stored JSON form of a status, for the state writer.
    public func json(_ key: ObjectKey) -> String? {
        guard let s = get(key) else { return nil }
        return JSON.encode(s.toValue())
    }
}
