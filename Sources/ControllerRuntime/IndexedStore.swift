import Synchronization
import Foundation

/// The in-memory cache of objects: a map by key plus secondary indexes (e.g. workloads by
/// queue). Index functions return the index values an object is filed under; lookups by
/// index value are O(matches). Safe to use from any thread.
public final class IndexedStore<Key: Hashable & Sendable, Object: Sendable>: @unchecked Sendable {
    public typealias IndexFunc = @Sendable (Object) -> [String]
    struct State {
        var objects: [Key: Object] = [:]
        var indexes: [String: [String: Set<Key>]] = [:]
    }
    let indexers: [String: IndexFunc]
    // Guarded by `lock`.
    private var st = State()
    private let lock = RWLock()
    /// Bumped on every change (readers that cache a view of all objects compare it).
    public let version = Atomic<Int>(0)

    public init(indexers: [String: IndexFunc] = [:]) { self.indexers = indexers }

    public func get(_ key: Key) -> Object? { lock.read { st.objects[key] } }
    public var count: Int { lock.read { st.objects.count } }

    /// Every object for which `include` is true (a scan of the whole map under the read lock).
    public func values(where include: (Object) -> Bool) -> [Object] {
        lock.read { st.objects.values.filter(include) }
    }

    /// Keys filed under `value` by the index `name`.
    public func keys(index name: String, value: String) -> Set<Key> { lock.read { st.indexes[name]?[value] ?? [] } }
    public func objects(index name: String, value: String) -> [Object] {
        lock.read { (st.indexes[name]?[value] ?? []).compactMap { st.objects[$0] } }
    }

    /// Inserts or replaces; returns the previous object.
    @discardableResult
    public func upsert(_ key: Key, _ object: Object) -> Object? {
        defer { version.add(1, ordering: .relaxed) }
        return lock.write {
            let old = st.objects.updateValue(object, forKey: key)
            for (name, f) in indexers {
                let newValues = f(object)
                if let old {
                    let oldValues = f(old)
                    if oldValues == newValues { continue }
                    for v in oldValues { st.indexes[name]?[v]?.remove(key); if st.indexes[name]?[v]?.isEmpty == true { st.indexes[name]?[v] = nil } }
                }
                for v in newValues { st.indexes[name, default: [:]][v, default: []].insert(key) }
            }
            return old
        }
    }

    /// Atomically reads, changes and writes one object; returns the new value, or nil if absent.
    @discardableResult
    public func update(_ key: Key, _ change: (inout Object) -> Void) -> Object? {
        defer { version.add(1, ordering: .relaxed) }
        return lock.write {
            guard var obj = st.objects[key] else { return nil }
            let oldValues = indexers.mapValues { $0(obj) }
            change(&obj)
            st.objects[key] = obj
            for (name, f) in indexers {
                // `oldValues[name]!` cannot fail: oldValues maps every indexer name, just above.
                let nv = f(obj), ov = oldValues[name]!
                if nv == ov { continue }
                for v in ov { st.indexes[name]?[v]?.remove(key); if st.indexes[name]?[v]?.isEmpty == true { st.indexes[name]?[v] = nil } }
                for v in nv { st.indexes[name, default: [:]][v, default: []].insert(key) }
            }
            return obj
        }
    }

    @discardableResult
    public func delete(_ key: Key) -> Object? {
        defer { version.add(1, ordering: .relaxed) }
        return lock.write {
            guard let old = st.objects.removeValue(forKey: key) else { return nil }
            for (name, f) in indexers {
                for v in f(old) { st.indexes[name]?[v]?.remove(key); if st.indexes[name]?[v]?.isEmpty == true { st.indexes[name]?[v] = nil } }
            }
            return old
        }
    }
}
