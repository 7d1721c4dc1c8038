import GantryAPI
import StateStore

/// What reconcilers and the inventory need from durable storage. The daemon uses
/// `StateStore`; tests may use `MemoryPersistence`.
public protocol StatePersistence: Sendable {
    /// The object changed; its row is fetched from the inventory when written.
    func markObjectDirty(_ key: ObjectKey)
    func deleteObject(_ key: ObjectKey)
    func markStatusDirty(_ key: ObjectKey)
    func markStatusesDirty(_ keys: [ObjectKey])
}

extension StatePersistence {
    public func markStatusesDirty(_ keys: [ObjectKey]) { for k in keys { markStatusDirty(k) } }
}

extension StateStore: StatePersistence {}

/// Records writes in memory (tests).
public final class MemoryPersistence: StatePersistence, @unchecked Sendable {
    private let lock = NSLockLike()
    private var _objects: [ObjectKey: ObjectRow] = [:]
    private var _dirty: [ObjectKey] = []
    /// Builds rows for `markObjectDirty` (set to the inventory's `row(for:)`).
    nonisolated(unsafe) public var objectProvider: (@Sendable (ObjectKey) -> ObjectRow?)?
    public init() {}
    public func markObjectDirty(_ key: ObjectKey) {
        let row = objectProvider?(key)
        lock.with { _objects[key] = row }
    }
    public func deleteObject(_ key: ObjectKey) { lock.with { _objects[key] = nil } }
    public func markStatusDirty(_ key: ObjectKey) { lock.with { _dirty.append(key) } }
    public var objects: [ObjectKey: ObjectRow] { lock.with { _objects } }
    /// Keys marked dirty since the last call.
    public func takeDirty() -> [ObjectKey] { lock.with { let d = _dirty; _dirty = []; return d } }
}

import Foundation
final class NSLockLike: @unchecked Sendable {
    let l = NSLock()
    func with<T>(_ f: () throws -> T) rethrows -> T { l.lock(); defer { l.unlock() }; return try f() }
}
