import Foundation
import GantryAPI
import ControllerRuntime

/// Items made in order on a thread of their own and handed to the caller in that order,
/// at most `ahead` of them waiting: the state writer's SQL for one chunk of a batch runs
/// while the rows of the next chunk are built.
final class BuildPipeline<T: Sendable>: @unchecked Sendable {
    private let cond = NSCondition()
    // Guarded by `cond`.
    private var items: [T] = []
    private var finished = false
    private var cancelled = false
    private let ahead: Int

    /// Starts `produce`, which calls its argument with each item in order and stops early
    /// when that returns false (the consumer cancelled).
    init(ahead: Int = 2, _ produce: @escaping @Sendable (_ emit: (T) -> Bool) -> Void) {
        self.ahead = max(1, ahead)
        let t = Thread { [self] in
            produce { item in self.put(item) }
            cond.lock(); finished = true; cond.broadcast(); cond.unlock()
        }
        t.name = "state-build"
        t.start()
    }

    private func put(_ item: T) -> Bool {
        cond.lock(); defer { cond.unlock() }
        while items.count >= ahead && !cancelled { cond.wait() }
        if cancelled { return false }
        items.append(item)
        cond.broadcast()
        return true
    }

    /// The next item, waiting for it; nil once the producer is done and everything was taken.
    func next() -> T? {
        cond.lock(); defer { cond.unlock() }
        while items.isEmpty && !finished { cond.wait() }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        cond.broadcast()
        return item
    }

    /// Stops the producer at its next item and waits until it has returned.
    func cancel() {
        cond.lock(); defer { cond.unlock() }
        cancelled = true
        items = []
        cond.broadcast()
        while !finished { cond.wait() }
    }
}

/// One batch's object rows (with a workload's index fields) and status JSON, in key order,
/// in chunks: all objects first, then the statuses.
final class BatchSource {
    typealias Row = (ObjectRow, WorkloadFields?)?
    typealias StatusJSON = (ObjectKey, String?)
    enum Chunk: Sendable { case objects([Row]), statuses([StatusJSON]) }

    /// Keys in a batch from which its rows are built on another thread, in chunks of `chunkSize`.
    static let pipelineMinimum = 2048, chunkSize = 1024

    private var ready: [Chunk] = []
    private let pipeline: BuildPipeline<Chunk>?

    init(objectKeys: [ObjectKey], statusKeys: [ObjectKey], pipelineMinimum: Int = BatchSource.pipelineMinimum, chunkSize: Int = BatchSource.chunkSize,
         objectProvider: (@Sendable (ObjectKey) -> ObjectRow?)?, statusProvider: (@Sendable (ObjectKey) -> String?)?) {
        if objectKeys.count + statusKeys.count < pipelineMinimum {
            pipeline = nil
            if !objectKeys.isEmpty { ready.append(.objects(parallelMap(objectKeys, minimum: 512) { BatchSource.row($0, objectProvider) })) }
            if !statusKeys.isEmpty { ready.append(.statuses(parallelMap(statusKeys, minimum: 512) { ($0, statusProvider?($0)) })) }
            return
        }
        pipeline = BuildPipeline { emit in
            let n = max(1, chunkSize)
            for lo in stride(from: 0, to: objectKeys.count, by: n) {
                let chunk = objectKeys[lo..<min(objectKeys.count, lo + n)].map { BatchSource.row($0, objectProvider) }
                if !emit(.objects(chunk)) { return }
            }
            for lo in stride(from: 0, to: statusKeys.count, by: n) {
                let chunk = statusKeys[lo..<min(statusKeys.count, lo + n)].map { ($0, statusProvider?($0)) }
                if !emit(.statuses(chunk)) { return }
            }
        }
    }

    static func row(_ k: ObjectKey, _ provider: (@Sendable (ObjectKey) -> ObjectRow?)?) -> Row {
        guard let row = provider?(k) else { return nil }
        guard k.kind == .workload else { return (row, nil) }
        return (row, row.fields ?? WorkloadFields(object: (try? JSON.parse(row.objectJSON)) ?? .object([])))
    }

    private func take() -> Chunk? {
        if !ready.isEmpty { return ready.removeFirst() }
        return pipeline?.next()
    }

    /// The next chunk of object rows; nil once they are all taken.
    func nextObjects() -> [Row]? {
        guard let c = take() else { return nil }
        if case .objects(let rows) = c { return rows }
        ready.insert(c, at: 0)
        return nil
    }

    /// The next chunk of status JSON (after the objects); nil once they are all taken.
    func nextStatuses() -> [StatusJSON]? {
        while let c = take() {
            if case .statuses(let list) = c { return list }
        }
        return nil
    }

    /// Stops building (the batch failed, or is done).
    func cancel() { pipeline?.cancel() }
}
