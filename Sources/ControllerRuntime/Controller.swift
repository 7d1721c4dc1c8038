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
    let metrics: Metrics?
    let group = DispatchGroup()

    public init(name: String, queue: WorkQueue<ObjectKey>, reconciler: any Reconciler, workers: Int, metrics: Metrics?) {
        self.name = name; self.queue = queue; self.reconciler = reconciler; self.workers = max(1, workers); self.metrics = metrics
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
        let kindLabel = key.kind.singular
        do {
            let r = try reconciler.reconcile(key)
            if let after = r.requeueAfter, after > 0 {
                queue.forget(key); queue.addAfter(key, after)
                metrics?.inc("controller_runtime_reconcile_total", ["controller": kindLabel, "result": "requeue_after"])
            } else {
                queue.forget(key)
                metrics?.inc("controller_runtime_reconcile_total", ["controller": kindLabel, "result": "success"])
            }
        } catch let e as TerminalError {
            Log.error("reconcile failed (terminal)", ["key": key.description, "error": e.description])
            metrics?.inc("controller_runtime_reconcile_errors_total", ["controller": kindLabel])
            metrics?.inc("controller_runtime_reconcile_total", ["controller": kindLabel, "result": "error"])
            queue.forget(key)
        } catch {
            Log.error("reconcile failed; will retry", ["key": key.description, "error": "\(error)", "retries": "\(queue.rateLimiter.failures(key))"])
            metrics?.inc("controller_runtime_reconcile_errors_total", ["controller": kindLabel])
            metrics?.inc("controller_runtime_reconcile_total", ["controller": kindLabel, "result": "error"])
            queue.addRateLimited(key)
        }
        let d = monotonicSeconds() - start
        metrics?.observe("controller_runtime_reconcile_time_seconds", ["controller": kindLabel], d)
        metrics?.observe("workqueue_work_duration_seconds", ["name": queue.name], d)
        queue.done(key)
    }
}
