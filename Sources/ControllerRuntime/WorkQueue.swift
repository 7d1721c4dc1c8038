import Foundation
import Synchronization

/// A client-go style work queue. A key is queued at most once; a key being processed is
/// never handed to a second worker (an add while processing marks it dirty, and `done`
/// queues it again). `addAfter` keeps the earliest ready time. After `shutDown`, queued keys
/// still drain, delayed ones are dropped, and `get` then returns nil.
public final class WorkQueue<Key: Hashable & Sendable>: @unchecked Sendable {
    // All mutable state is guarded by `cond`.
    private let cond = NSCondition()
    private var queue: [Key] = []
    private var head = 0
    private var dirty = Set<Key>()
    private var processing = Set<Key>()
    private var waiting: [Key: Double] = [:]
    private var heap: [(at: Double, key: Key)] = []
    private var enqueuedAt: [Key: Double] = [:]
    private var shuttingDown = false

    public let name: String
    public let clock: any Clock
    public let rateLimiter: RateLimiter<Key>
    let adds: Counter?, retries: Counter?, depth: Gauge?, waitTime: Histogram?

    public init(name: String, clock: any Clock, rateLimiter: RateLimiter<Key>? = nil, metrics: Metrics? = nil) {
        self.name = name; self.clock = clock
        self.rateLimiter = rateLimiter ?? RateLimiter(clock: clock)
        adds = metrics?.counter("workqueue_adds_total", ["name": name])
        retries = metrics?.counter("workqueue_retries_total", ["name": name])
        depth = metrics?.gauge("workqueue_depth", ["name": name])
        waitTime = metrics?.histogram("workqueue_queue_duration_seconds", ["name": name])
    }

    public func add(_ key: Key) {
        cond.lock(); defer { cond.unlock() }
        addLocked(key)
    }

    /// Adds many keys under one lock acquisition, with one clock reading and one wake-up of
    /// the workers (a signal per key woke a worker per key, each to wait for this lock).
    public func add<S: Sequence>(contentsOf keys: S) where S.Element == Key {
        cond.lock(); defer { cond.unlock() }
        let now = clock.now()
        var added = 0
        for k in keys where addLocked(k, now: now, signal: false) { added += 1 }
        if added == 1 { cond.signal() } else if added > 1 { cond.broadcast() }
    }

    @discardableResult
    private func addLocked(_ key: Key, now: Double? = nil, signal: Bool = true) -> Bool {
        guard !shuttingDown else { return false }
        adds?.inc()
        guard dirty.insert(key).inserted else { return false }
        if processing.contains(key) { return false }
        queue.append(key)
        enqueuedAt[key] = now ?? clock.now()
        if signal { cond.signal() }
        return true
    }

    public func addAfter(_ key: Key, _ delay: Double) {
        if delay <= 0 { add(key); return }
        cond.lock(); defer { cond.unlock() }
        guard !shuttingDown else { return }
        let at = clock.now() + delay
        if let existing = waiting[key], existing <= at { return }
        waiting[key] = at
        heapPush((at, key))
        cond.signal()
    }

    /// Re-adds after the rate limiter's delay for this key.
    public func addRateLimited(_ key: Key) {
        retries?.inc()
        addAfter(key, rateLimiter.when(key))
    }

    public func forget(_ key: Key) { rateLimiter.forget(key) }

    /// Blocks until a key is ready; nil once shut down and drained.
    public func get() -> Key? { getBatch(max: 1, share: 1)?.first }

    /// Blocks until a key is ready, then takes it and, when many are ready, more: up to
    /// `max` keys and no more than a `share`-th of those ready, so a short queue still goes
    /// one key per worker. nil once shut down and drained. Every key taken is processing
    /// until its own `done`.
    public func getBatch(max: Int, share: Int) -> [Key]? {
        cond.lock(); defer { cond.unlock() }
        while true {
            promoteDueLocked()
            if let keys = popBatchLocked(max: max, share: share) { return keys }
            if shuttingDown { return nil }
            if let next = heap.first {
                let wait = next.at - clock.now()
                if wait > 0 { _ = cond.wait(until: Date(timeIntervalSinceNow: Swift.min(wait, 1))) }
            } else {
                cond.wait()
            }
        }
    }

    /// `getBatch` without blocking: nil when no key is ready.
    public func tryGetBatch(max: Int, share: Int = 1) -> [Key]? {
        cond.lock(); defer { cond.unlock() }
        promoteDueLocked()
        return popBatchLocked(max: max, share: share)
    }

    private func popBatchLocked(max: Int, share: Int) -> [Key]? {
        let ready = queue.count - head
        guard ready > 0 else { return nil }
        let n = Swift.max(1, Swift.min(max, ready / Swift.max(1, share)))
        var keys: [Key] = []
        keys.reserveCapacity(n)
        for _ in 0..<n { keys.append(popLocked()) }
        return keys
    }

    /// The next ready key without blocking (due delayed keys count as ready), or nil.
    public func tryGet() -> Key? { tryGetBatch(max: 1)?.first }

    public func done(_ key: Key) {
        cond.lock(); defer { cond.unlock() }
        doneLocked(key)
    }

    /// `done` for each key, under one lock acquisition.
    public func done<S: Sequence>(contentsOf keys: S) where S.Element == Key {
        cond.lock(); defer { cond.unlock() }
        for k in keys { doneLocked(k) }
    }

    private func doneLocked(_ key: Key) {
        processing.remove(key)
        if dirty.contains(key) {
            queue.append(key)
            enqueuedAt[key] = clock.now()
            cond.signal()
        }
    }

    public func shutDown() {
        cond.lock(); defer { cond.unlock() }
        shuttingDown = true
        waiting.removeAll(); heap.removeAll()
        cond.broadcast()
    }

    /// Shuts down without draining: queued and delayed keys are dropped; keys being processed
    /// finish. For a daemon whose queued work is recomputed at its next start anyway.
    public func shutDownNow() {
        cond.lock(); defer { cond.unlock() }
        shuttingDown = true
        waiting.removeAll(); heap.removeAll()
        queue.removeAll(); head = 0
        dirty.removeAll(); enqueuedAt.removeAll()
        cond.broadcast()
    }

    /// Keys ready to be processed.
    public var count: Int { cond.lock(); defer { cond.unlock() }; return queue.count - head }
    public func isIdle() -> Bool { cond.lock(); defer { cond.unlock() }; return queue.count - head == 0 && processing.isEmpty }
    public func isDelayed(_ key: Key) -> Double? { cond.lock(); defer { cond.unlock() }; return waiting[key] }

    private func popLocked() -> Key {
        let key = queue[head]
        head += 1
        if head > 1024 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        processing.insert(key)
        dirty.remove(key)
        if let t = enqueuedAt.removeValue(forKey: key), let waitTime { waitTime.observe(clock.now() - t) }
        depth?.set(Double(queue.count - head))
        releaseDrainedStorage()
        return key
    }

    /// Once a big backlog (the initial load's 100,000 keys) has drained, its storage goes
    /// back: Swift's arrays, sets and dictionaries keep their capacity when emptied, and these
    /// three held about 33 MB after a 100,000-workload load for the rest of the run.
    private func releaseDrainedStorage() {
        let big = WorkQueue.releaseCapacity
        if head == queue.count && queue.capacity > big { queue = []; head = 0 }
        if dirty.isEmpty && dirty.capacity > big { dirty = [] }
        if enqueuedAt.isEmpty && enqueuedAt.capacity > big { enqueuedAt = [:] }
    }

    /// Storage above this many elements is released when it empties.
    static var releaseCapacity: Int { 4096 }

    /// Capacity of the queue's storage (ready keys, dirty set, enqueue times): for tests.
    public var storageCapacity: Int {
        cond.lock(); defer { cond.unlock() }
        return queue.capacity + dirty.capacity + enqueuedAt.capacity
    }

    private func promoteDueLocked() {
        guard !heap.isEmpty else { return }
        let now = clock.now()
        while let top = heap.first, top.at <= now {
            heapPop()
            guard waiting[top.key] == top.at else { continue }  // superseded by an earlier time
            waiting.removeValue(forKey: top.key)
            addLocked(top.key)
        }
    }

    private func heapPush(_ e: (at: Double, key: Key)) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p].at <= heap[i].at { break }
            heap.swapAt(p, i); i = p
        }
    }

    /// Callers check the heap is not empty (`heap.first`), so removeLast cannot fail.
    private func heapPop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && heap[l].at < heap[m].at { m = l }
            if r < heap.count && heap[r].at < heap[m].at { m = r }
            if m == i { break }
            heap.swapAt(i, m); i = m
        }
    }
}
