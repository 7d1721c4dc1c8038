import Foundation
import GantryAPI

/// What a reconcile asks of the queue: nothing (forget), or to come back after a delay.
public struct ReconcileResult: Sendable, Equatable {
    public var requeueAfter: Double?
    public init(requeueAfter: Double? = nil) { self.requeueAfter = requeueAfter }
    public static let done = ReconcileResult()
}

/// An error that retrying cannot fix; the key is not re-queued.
public struct TerminalError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A reconcile function for one controller.
public protocol Reconciler: Sendable {
    func reconcile(_ key: ObjectKey) throws -> ReconcileResult
    /// Reconciles several keys, each as `reconcile` would, one result per key in order. A
    /// reconciler overrides it to share work between them (one lock hold for a batch).
    func reconcile(batch keys: [ObjectKey]) -> [Result<ReconcileResult, any Error>]
}

extension Reconciler {
    public func reconcile(batch keys: [ObjectKey]) -> [Result<ReconcileResult, any Error>] {
        keys.map { k in Result { try reconcile(k) } }
    }
}

/// Runs `workers` threads that take keys from the queue and reconcile them, mapping the
/// outcome to the queue action of controller-runtime (error -> rate-limited re-add unless
/// terminal; requeueAfter -> forget + addAfter; success -> forget).
public final class Controller: Sendable {
    public let name: String
    public let queue: WorkQueue<ObjectKey>
    let reconciler: any Reconciler
    let workers: Int
    let group = DispatchGroup()
    /// Per-kind metric handles, looked up once.
    struct KindMetrics: Sendable {
        let success, requeueAfter, error, errors: Counter
        let reconcileTime, workTime: Histogram
    }
    let kindMetrics: [Kind: KindMetrics]

    public init(name: String, queue: WorkQueue<ObjectKey>, reconciler: any Reconciler, workers: Int, metrics: Metrics?) {
        self.name = name; self.queue = queue; self.reconciler = reconciler; self.workers = max(1, workers)
        var km: [Kind: KindMetrics] = [:]
        if let m = metrics {
            for k in Kind.allCases {
                let c = k.singular
                km[k] = KindMetrics(success: m.counter("controller_runtime_reconcile_total", ["controller": c, "result": "success"]),
                                    requeueAfter: m.counter("controller_runtime_reconcile_total", ["controller": c, "result": "requeue_after"]),
                                    error: m.counter("controller_runtime_reconcile_total", ["controller": c, "result": "error"]),
                                    errors: m.counter("controller_runtime_reconcile_errors_total", ["controller": c]),
                                    reconcileTime: m.histogram("controller_runtime_reconcile_time_seconds", ["controller": c]),
                                    workTime: m.histogram("workqueue_work_duration_seconds", ["name": queue.name]))
            }
        }
        kindMetrics = km
    }

    public func start() {
        for i in 0..<workers {
            group.enter()
            let t = Thread { [self] in
                self.workerLoop()
                self.group.leave()
            }
            t.name = "\(name)-worker-\(i)"
            t.stackSize = 4 << 20
            t.start()
        }
    }

    /// Waits for the workers to finish after the queue is shut down; false on timeout.
    public func wait(timeout: Double) -> Bool { group.wait(timeout: .now() + timeout) == .success }

    /// Processes one key if one is ready; for tests driving the controller by hand.
    @discardableResult
    public func processNext() -> Bool { processNext(batch: 1) }

    /// Most keys a worker takes at once, when the queue holds many (a large apply, the
    /// initial load): their reconciles then share one lock hold instead of contending for it
    /// key by key. A short queue still goes one key per worker. Not more: with 256, the
    /// admission lock was held long enough per batch to slow 1,000 trivial workloads by
    /// 10-15 % (the admission and runtime threads waited behind it), and 32 made the load's
    /// reconcile phase no slower.
    public static let maxBatch = 32

    /// Processes up to `max` ready keys as one batch, if any is ready; for tests driving the
    /// controller by hand.
    @discardableResult
    public func processNext(batch max: Int) -> Bool {
        guard let keys = queue.tryGetBatch(max: max) else { return false }
        process(keys)
        return true
    }

    func workerLoop() {
        while let keys = queue.getBatch(max: Controller.maxBatch, share: workers) { process(keys) }
    }

    /// One key alone (its reconcile timed on its own), several as a batch.
    func process(_ keys: [ObjectKey]) {
        if keys.count == 1 { handle(keys[0]) } else { handle(batch: keys) }
    }

    func handle(_ key: ObjectKey) {
        let start = monotonicSeconds()
        let outcome = Result { try reconciler.reconcile(key) }
        finish(key, outcome, seconds: monotonicSeconds() - start)
        queue.done(key)
    }

    func handle(batch keys: [ObjectKey]) {
        let start = monotonicSeconds()
        let outcomes = reconciler.reconcile(batch: keys)
        // Each key is charged its share of the batch's time.
        let each = (monotonicSeconds() - start) / Double(keys.count)
        for (i, key) in keys.enumerated() {
            // A reconciler that answers too few results leaves the rest to be retried.
            finish(key, i < outcomes.count ? outcomes[i] : .failure(BatchShortfall()), seconds: each)
        }
        queue.done(contentsOf: keys)
    }

    struct BatchShortfall: Error, CustomStringConvertible {
        var description: String { "the batch reconcile returned no result for this key" }
    }

    /// Maps an outcome to the queue's action (before `done`) and counts it.
    func finish(_ key: ObjectKey, _ outcome: Result<ReconcileResult, any Error>, seconds d: Double) {
        let m = kindMetrics[key.kind]
        switch outcome {
        case .success(let r):
            if let after = r.requeueAfter, after > 0 {
                queue.forget(key); queue.addAfter(key, after)
                m?.requeueAfter.inc()
            } else {
                queue.forget(key)
                m?.success.inc()
            }
        case .failure(let e as TerminalError):
            Log.error("reconcile failed (terminal)", ["key": key.description, "error": e.description])
            m?.errors.inc(); m?.error.inc()
            queue.forget(key)
        case .failure(let error):
            Log.error("reconcile failed; will retry", ["key": key.description, "error": "\(error)", "retries": "\(queue.rateLimiter.failures(key))"])
            m?.errors.inc(); m?.error.inc()
            queue.addRateLimited(key)
        }
        m?.reconcileTime.observe(d)
        m?.workTime.observe(d)
    }
}
