import Foundation

/// A reader-writer lock (pthread_rwlock) for read-mostly shared state: many concurrent
/// readers, one writer at a time. The lock lives on the heap, so the class may be shared.
public final class RWLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    public init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }
    deinit { pthread_rwlock_destroy(lock); lock.deallocate() }
    public func read<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock); defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
    public func write<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock); defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
