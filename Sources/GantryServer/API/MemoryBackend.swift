import Foundation
import Synchronization
import GantryAPI

/// An in-memory `APIBackend`: for tests, the dashboard's browser test and demos. Writes
/// follow the ownership rules (a manifest-owned object cannot be updated or deleted: 409
/// naming its file; stop/resume work on any workload). Logs can grow and end while a
/// reader follows them.
public final class MemoryBackend: APIBackend {
    /// A replica's log: the workload and the rank.
    public struct LogKey: Hashable, Sendable {
        public var key: ObjectKey
        public var rank: Int
        public init(_ key: ObjectKey, rank: Int) { self.key = key; self.rank = rank }
    }

    struct State {
        var objects: [ObjectKey: APIObject] = [:]
        var order: [ObjectKey] = []
        var history: [APIObject] = []
        var events: [EventRecord] = []
        var metrics: [MetricSeries] = []
        var logs: [LogKey: MemoryLog] = [:]
        var nextUID = 1
        /// `list` answers by kind, dropped whenever an object changes.
        var lists: [Kind: [APIObject]] = [:]
        /// The change feed: the newest `feedKept` changes, numbered from 1.
        var feed: [FeedChange] = []
        var seq: Int64 = 0
        var feedKept = 1000

        /// Records a change of `key` in the feed (under the same lock as the change).
        mutating func changed(_ key: ObjectKey, _ op: String) {
            lists = [:]
            seq += 1
            feed.append(FeedChange(seq: seq, key: key, op: op))
            if feed.count > max(feedKept, 1) { feed.removeFirst(feed.count - max(feedKept, 1)) }
        }
    }

    let state: Mutex<State>
    let clock: @Sendable () -> Double
    public let mode: String

    public init(objects: [APIObject] = [], events: [EventRecord] = [], logs: [LogKey: String] = [:], metrics: [MetricSeries] = [],
                history: [APIObject] = [], mode: String = "directory",
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        var s = State()
        for o in objects where s.objects[o.key] == nil {
            s.objects[o.key] = o
            s.order.append(o.key)
            s.changed(o.key, "object")
        }
        s.events = events
        s.metrics = metrics
        s.history = history
        let t = clock()
        for (k, text) in logs {
            let log = MemoryLog()
            log.append(text, at: t)
            log.end()
            s.logs[k] = log
        }
        state = Mutex(s)
        self.clock = clock
        self.mode = mode
    }

    public func now() -> Double { clock() }

    /// The same array until the objects change (so a query's index of it is reused).
    public func list(_ kind: Kind) -> [APIObject] {
        state.withLock { s in
            if let cached = s.lists[kind] { return cached }
            let l = s.order.compactMap { s.objects[$0] }.filter { $0.key.kind == kind }
            s.lists[kind] = l
            return l
        }
    }

    public func get(_ key: ObjectKey) -> APIObject? { state.withLock { $0.objects[key] } }

    /// Adds or replaces an object as is (tests: set a status, add a manifest-owned object).
    public func put(_ object: APIObject) {
        state.withLock { s in
            if s.objects[object.key] == nil { s.order.append(object.key) }
            s.objects[object.key] = object
            s.changed(object.key, "object")
        }
    }

    /// Removes an object as a delete would, whoever owns it (tests).
    public func remove(_ key: ObjectKey) {
        state.withLock { s in
            guard s.objects.removeValue(forKey: key) != nil else { return }
            s.order.removeAll { $0 == key }
            s.changed(key, "delete")
        }
    }

    /// How many changes the feed keeps (older ones are pruned: a watch from before them gets 410).
    public func setFeedKept(_ n: Int) {
        state.withLock { s in
            s.feedKept = max(n, 1)
            if s.feed.count > s.feedKept { s.feed.removeFirst(s.feed.count - s.feedKept) }
        }
    }

    public func feedHead() throws(APIError) -> Int64? { state.withLock { $0.seq } }

    public func feedSnapshot(_ kind: Kind) throws(APIError) -> FeedSnapshot? {
        state.withLock { s in FeedSnapshot(head: s.seq, items: s.order.compactMap { s.objects[$0] }.filter { $0.key.kind == kind }) }
    }

    public func changes(after seq: Int64, limit: Int) throws(APIError) -> [FeedChange]? {
        state.withLock { s -> [FeedChange]? in
            if seq == s.seq { return [] }
            // A position it never reached, or one whose next change is pruned.
            guard seq >= 0, seq < s.seq, let first = s.feed.first, first.seq <= seq + 1 else { return nil }
            let from = Int(seq + 1 - first.seq)
            let n = min(max(limit, 1), s.feed.count - from)
            return Array(s.feed[from..<(from + n)])
        }
    }

    public func record(_ event: EventRecord) { state.withLock { $0.events.append(event) } }

    public func addMetrics(_ series: MetricSeries) { state.withLock { $0.metrics.append(series) } }

    /// Appends text to a replica's log (creating it), stamped with the clock's time.
    public func appendLog(_ key: ObjectKey, rank: Int, _ text: String) {
        let log = state.withLock { s -> MemoryLog in
            if let l = s.logs[LogKey(key, rank: rank)] { return l }
            let l = MemoryLog(); s.logs[LogKey(key, rank: rank)] = l; return l
        }
        log.append(text, at: clock())
    }

    /// The replica ended: followers return once they have read everything.
    public func endLog(_ key: ObjectKey, rank: Int) {
        state.withLock { $0.logs[LogKey(key, rank: rank)] }?.end()
    }

    public func create(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject {
        let t = clock()
        let result: Result<APIObject, APIError> = state.withLock { s in
            if let existing = s.objects[object.key] {
                if case .manifest(let file) = existing.owner {
                    return .failure(.conflict("\(object.key.kind.singular) \(object.key.qualifiedName) is declared in \(file); edit that file instead"))
                }
                return .failure(.conflict("\(object.key.kind.singular) \(object.key.qualifiedName) already exists"))
            }
            var o = object
            o.meta.uid = "mem-\(s.nextUID)"
            s.nextUID += 1
            o.meta.generation = 1
            o.meta.creationTimestamp = Timestamp(secondsSince1970: t)
            o.source = SourceRef(file: apiSourcePrefix + "\(object.key.kind.plural)/\(object.key.namespace.isEmpty ? "" : object.key.namespace + "/")\(object.key.name).yaml", line: 1, index: 0)
            let created = APIObject(object: o, status: MemoryBackend.initialStatus(o, at: t), owner: .api)
            s.objects[o.key] = created
            s.order.append(o.key)
            s.changed(o.key, "object")
            return .success(created)
        }
        return try result.get()
    }

    public func update(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject {
        let result: Result<APIObject, APIError> = state.withLock { s in
            guard var existing = s.objects[object.key] else { return .failure(.notFound("\(object.key.kind.singular) \(object.key.qualifiedName) not found")) }
            if let e = MemoryBackend.readOnly(existing) { return .failure(e) }
            var o = object
            o.meta.uid = existing.object.meta.uid
            o.meta.creationTimestamp = existing.object.meta.creationTimestamp
            o.source = existing.object.source
            let changed = o.spec != existing.object.spec || o.meta.labels != existing.object.meta.labels || o.meta.annotations != existing.object.meta.annotations
            let (g, over) = existing.object.meta.generation.addingReportingOverflow(changed ? 1 : 0)
            o.meta.generation = over ? existing.object.meta.generation : g
            existing.object = o
            s.objects[o.key] = existing
            s.changed(o.key, "object")
            return .success(existing)
        }
        return try result.get()
    }

    public func delete(_ key: ObjectKey, by: Principal) throws(APIError) {
        let t = clock()
        let result: Result<Void, APIError> = state.withLock { s in
            guard var existing = s.objects[key] else { return .failure(.notFound("\(key.kind.singular) \(key.qualifiedName) not found")) }
            if let e = MemoryBackend.readOnly(existing) { return .failure(e) }
            s.objects[key] = nil
            s.order.removeAll { $0 == key }
            s.changed(key, "delete")
            if key.kind == .workload {
                existing.deletedAt = Timestamp(secondsSince1970: t)
                s.history.append(existing)
            }
            return .success(())
        }
        try result.get()
    }

    public func setSuspended(_ key: ObjectKey, _ suspend: Bool, by: Principal) throws(APIError) {
        let t = clock()
        let result: Result<Void, APIError> = state.withLock { s in
            guard var existing = s.objects[key] else { return .failure(.notFound("\(key.kind.singular) \(key.qualifiedName) not found")) }
            guard key.kind == .workload else { return .failure(.badRequest("only workloads can be stopped or resumed")) }
            var st = existing.status?.workload ?? WorkloadStatus()
            st.override = SuspendOverride(suspend: suspend, generation: existing.object.meta.generation, at: Timestamp(secondsSince1970: t), by: by.user)
            if suspend { st.phase = .stopped; st.message = "stopped by \(by.user)" } else if st.phase == .stopped { st.phase = .pending; st.message = "" }
            existing.status = .workload(st)
            s.objects[key] = existing
            s.changed(key, "status")
            return .success(())
        }
        try result.get()
    }

    public func events(_ filter: EventFilter) throws(APIError) -> [EventRecord] {
        let all = state.withLock { $0.events }
        var out = all.filter { e in
            (filter.kind.map { $0.rawValue == e.kind } ?? true)
                && (filter.namespace.map { $0 == e.namespace } ?? true)
                && (filter.name.map { $0 == e.name } ?? true)
                && (filter.since.map { e.lastTimestamp >= $0 } ?? true)
                && (filter.until.map { e.lastTimestamp <= $0 } ?? true)
        }
        out.sort { $0.lastTimestamp < $1.lastTimestamp }
        if let limit = filter.limit, limit >= 0, out.count > limit { out = Array(out.suffix(limit)) }
        return out
    }

    public func log(_ key: ObjectKey, rank: Int) throws(APIError) -> any LogReader {
        guard let log = state.withLock({ $0.logs[LogKey(key, rank: rank)] }) else {
            throw .notFound("no log for replica \(rank) of \(key.qualifiedName)")
        }
        return MemoryLogReader(log: log, clock: clock)
    }

    public func metrics(prefix: String, start: Double, end: Double) throws(APIError) -> [MetricSeries] {
        state.withLock { $0.metrics }.filter { $0.name.hasPrefix(prefix) }.map { s in
            MetricSeries(name: s.name, samples: s.samples.filter { $0.ts >= start && $0.ts <= end })
        }
    }

    public func history(limit: Int) throws(APIError) -> [APIObject] {
        let h = state.withLock { $0.history }
        return Array(h.sorted { ($0.deletedAt ?? Timestamp(seconds: 0)) > ($1.deletedAt ?? Timestamp(seconds: 0)) }.prefix(max(limit, 0)))
    }

    static func readOnly(_ o: APIObject) -> APIError? {
        switch o.owner {
        case .manifest(let file):
            return .conflict("\(o.key.kind.singular) \(o.key.qualifiedName) is declared in \(file); edit that file instead")
        case .system:
            return .conflict("\(o.key.kind.singular) \(o.key.qualifiedName) is managed by the system")
        case .api, .cluster:
            return nil
        }
    }

    static func initialStatus(_ o: ManifestObject, at t: Double) -> ObjectStatus {
        switch o.spec {
        case .workload:
            var w = WorkloadStatus()
            w.creationTime = Timestamp(secondsSince1970: t)
            w.message = "waiting to be admitted"
            return .workload(w)
        case .queue(let q):
            var s = QueueStatus(); s.deserved = q.deserved; s.state = q.state
            return .queue(s)
        case .node(let n):
            var s = NodeStatus(); s.capacity = n.capacity
            return .node(s)
        case .resourcePool:
            return .resourcePool(ResourcePoolStatus())
        }
    }
}

/// A log that grows until it ends; readers wait on its condition.
// @unchecked: every stored property is read and written only with `cond` locked (an
// NSCondition because followers wait for lines).
final class MemoryLog: @unchecked Sendable {
    private let cond = NSCondition()
    private var lines: [(time: Double, text: String)] = []
    private var ended = false

    func append(_ text: String, at t: Double) {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) + "\n" }
        if text.hasSuffix("\n") { parts.removeLast() } else if var last = parts.popLast() { last.removeLast(); if !last.isEmpty { parts.append(last) } }
        cond.lock()
        lines.append(contentsOf: parts.map { (t, $0) })
        cond.broadcast()
        cond.unlock()
    }

    func end() { cond.lock(); ended = true; cond.broadcast(); cond.unlock() }

    /// Lines from `index` on, and whether the log has ended; waits up to `wait` seconds for
    /// new lines when there are none.
    func lines(from index: Int, wait: Double) -> (lines: [(time: Double, text: String)], ended: Bool) {
        cond.lock(); defer { cond.unlock() }
        if wait > 0 && index >= lines.count && !ended { _ = cond.wait(until: Date(timeIntervalSinceNow: wait)) }
        let from = min(max(index, 0), lines.count)
        return (Array(lines[from...]), ended)
    }
}

struct MemoryLogReader: LogReader {
    let log: MemoryLog
    let clock: @Sendable () -> Double

    func read(_ options: LogOptions, emit: ([UInt8]) -> Bool) throws(APIError) {
        var (first, ended) = log.lines(from: 0, wait: 0)
        var index = first.count
        if let s = options.sinceSeconds {
            let cutoff = clock() - Double(max(s, 0))
            first = first.filter { $0.time >= cutoff }
        }
        if let t = options.tail { first = Array(first.suffix(max(t, 0))) }
        var budget = options.limitBytes ?? Int.max
        func send(_ lines: [(time: Double, text: String)]) -> Bool {
            guard !lines.isEmpty else { return true }
            var out: [UInt8] = []
            for l in lines {
                if options.timestamps { out.append(contentsOf: Array((Timestamp(secondsSince1970: l.time).rfc3339 + " ").utf8)) }
                out.append(contentsOf: Array(l.text.utf8))
            }
            if out.count >= budget {
                _ = emit(Array(out.prefix(max(budget, 0))))
                budget = 0
                return false
            }
            budget -= out.count
            return emit(out)
        }
        guard send(first), options.follow else { return }
        while !ended {
            let next = log.lines(from: index, wait: 0.2)
            index += next.lines.count
            ended = next.ended
            if next.lines.isEmpty {
                if !ended && !emit([]) { return }   // an empty write tells whether the client is still there
                continue
            }
            guard send(next.lines) else { return }
        }
    }
}
