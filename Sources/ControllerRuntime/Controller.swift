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
    public func processNext() -> Bool {
        guard let key = queue.tryGet() else { return false }
        handle(key)
        return true
    }

    func workerLoop() {
        while let key = queue.get() { handle(key) }
    }

    func handle(_ key: ObjectKey) {
        let start = monotonicSeconds()
        let m = kindMetrics[key.kind]
        do {
            let r = try reconciler.reconcile(key)
            if let after = r.requeueAfter, after > 0 {
                queue.forget(key); queue.addAfter(key, after)
                m?.requeueAfter.inc()
            } else {
                queue.forget(key)
                m?.success.inc()
            }
        } catch let e as TerminalError {
            Log.error("reconcile failed (terminal)", ["key": key.description, "error": e.description])
            m?.errors.inc(); m?.error.inc()
            queue.forget(key)
        } catch {
            Log.error("reconcile failed; will retry", ["key": key.description, "error": "\(error)", "retries": "\(queue.rateLimiter.failures(key))"])
            m?.errors.inc(); m?.error.inc()
            queue.addRateLimited(key)
        }
        let d = monotonicSeconds() - start
        m?.reconcileTime.observe(d)
        m?.workTime.observe(d)
        queue.done(key)
    }
}
