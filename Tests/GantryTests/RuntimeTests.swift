import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import ControllerRuntime

@Suite(.timeLimit(.minutes(1))) struct WorkQueueTests {
    func makeQueue(_ clock: ManualClock = ManualClock()) -> WorkQueue<String> { WorkQueue(name: "t", clock: clock) }

    @Test func dedupsQueuedKeys() {
        let q = makeQueue()
        q.add("a"); q.add("b"); q.add("a")
        #expect(q.count == 2)
        #expect(q.tryGet() == "a")
        #expect(q.tryGet() == "b")
        #expect(q.tryGet() == nil)
    }

    @Test func keyBeingProcessedIsNotHandedOutAgain() {
        let q = makeQueue()
        q.add("a")
        let k = q.tryGet()
        #expect(k == "a")
        q.add("a")                 // arrives while "a" is processed
        #expect(q.tryGet() == nil) // not given to a second worker
        q.done("a")                // now it is re-queued once
        #expect(q.tryGet() == "a")
        q.done("a")
        #expect(q.tryGet() == nil)
    }

    @Test func addAfterKeepsTheEarliestTime() {
        let clock = ManualClock()
        let q = makeQueue(clock)
        q.addAfter("a", 10)
        q.addAfter("a", 5)
        q.addAfter("a", 20)
        clock.advance(by: 4.9)
        #expect(q.tryGet() == nil)
        clock.advance(by: 0.2)
        #expect(q.tryGet() == "a")
        q.done("a")
        clock.advance(by: 30)
        #expect(q.tryGet() == nil)   // the superseded later entries do not fire again
    }

    @Test func shutdownDrainsQueuedKeysThenStops() {
        let q = makeQueue()
        q.add("a"); q.add("b")
        q.addAfter("c", 100)
        q.shutDown()
        q.add("d")                   // ignored after shutdown
        #expect(q.get() == "a")
        #expect(q.get() == "b")
        #expect(q.get() == nil)
    }

    @Test func blockingGetWakesOnAdd() async {
        let q = WorkQueue<String>(name: "t", clock: SystemClock())
        let got = Mutex<String?>(nil)
        let t = Thread { got.withLock { $0 = q.get() } }
        t.start()
        q.add("x")
        #expect(poll(timeout: 5) { got.withLock { $0 } != nil }, "the blocked get returned")
        #expect(got.withLock { $0 } == "x")
        q.shutDown()
    }

    @Test func controllerNeverRunsOneKeyConcurrently() throws {
        // Many workers, one hot key re-added constantly: the reconciler must never overlap.
        final class Probe: Reconciler, @unchecked Sendable {
            let inFlight = Atomic<Int>(0), maxSeen = Atomic<Int>(0), calls = Atomic<Int>(0)
            func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
                let n = inFlight.add(1, ordering: .relaxed).newValue
                if n > maxSeen.load(ordering: .relaxed) { maxSeen.store(n, ordering: .relaxed) }
                usleep(200)
                _ = inFlight.subtract(1, ordering: .relaxed)
                _ = calls.add(1, ordering: .relaxed)
                return .done
            }
        }
        let probe = Probe()
        let q = WorkQueue<ObjectKey>(name: "t", clock: SystemClock())
        let c = Controller(name: "t", queue: q, reconciler: probe, workers: 8, metrics: nil)
        c.start()
        let key = ObjectKey(.queue, name: "hot")
        for _ in 0..<500 { q.add(key); usleep(20) }
        let idle = poll(timeout: 10) { q.isIdle() }
        q.shutDown()
        #expect(c.wait(timeout: 5))
        try #require(idle, "the queue drained")
        #expect(probe.maxSeen.load(ordering: .relaxed) == 1)
        // The key came back while it was being reconciled, more than once: the case under test.
        #expect(probe.calls.load(ordering: .relaxed) > 1)
    }

    @Test func errorsRequeueWithBackoffAndSuccessForgets() throws {
        final class Flaky: Reconciler, @unchecked Sendable {
            let failuresLeft = Atomic<Int>(3)
            func reconcile(_ key: ObjectKey) throws -> ReconcileResult {
                if failuresLeft.subtract(1, ordering: .relaxed).newValue >= 0 { throw StoreLike("transient") }
                return .done
            }
        }
        struct StoreLike: Error { let m: String; init(_ m: String) { self.m = m } }
        Log.setSink { _ in }
        defer { Log.setSink(nil) }
        let clock = ManualClock()
        let q = WorkQueue<ObjectKey>(name: "t", clock: clock)
        let c = Controller(name: "t", queue: q, reconciler: Flaky(), workers: 1, metrics: nil)
        let key = ObjectKey(.node, name: "n")
        q.add(key)
        #expect(c.processNext())                       // fails: retry in 5 ms
        #expect(q.isDelayed(key).map { ($0 - clock.now()) * 1000 }?.rounded() == 5)
        clock.advance(by: 0.005)
        #expect(c.processNext())                       // fails: 10 ms
        #expect(q.isDelayed(key).map { ($0 - clock.now()) * 1000 }?.rounded() == 10)
        clock.advance(by: 0.01)
        #expect(c.processNext())                       // fails: 20 ms
        clock.advance(by: 0.02)
        #expect(c.processNext())                       // succeeds
        #expect(q.rateLimiter.failures(key) == 0)
        #expect(q.isDelayed(key) == nil)
    }

    @Test func requeueAfterSchedulesTheKey() {
        struct Later: Reconciler { func reconcile(_ key: ObjectKey) throws -> ReconcileResult { ReconcileResult(requeueAfter: 30) } }
        let clock = ManualClock()
        let q = WorkQueue<ObjectKey>(name: "t", clock: clock)
        let c = Controller(name: "t", queue: q, reconciler: Later(), workers: 1, metrics: nil)
        let key = ObjectKey(.queue, name: "q")
        q.add(key)
        #expect(c.processNext())
        #expect(!c.processNext())
        clock.advance(by: 30)
        #expect(c.processNext())
    }
}

@Suite(.timeLimit(.minutes(1))) struct RateLimiterTests {
    @Test func exponentialPerKeyCapped() {
        let clock = ManualClock()
        let r = RateLimiter<String>(clock: clock, burst: 1_000_000)
        let delays = (0..<5).map { _ in r.when("k") }
        #expect(delays.map { ($0 * 1000).rounded() } == [5, 10, 20, 40, 80])
        for _ in 0..<30 { _ = r.when("k") }
        #expect(r.when("k") == 1000)
        #expect(r.when("other") == 0.005)
        r.forget("k")
        #expect(r.when("k") == 0.005)
    }

    @Test func overallTokenBucketLimitsBursts() {
        let clock = ManualClock()
        let r = RateLimiter<Int>(clock: clock, qps: 10, burst: 100)
        for i in 0..<100 { #expect(r.when(i) == 0.005) }
        // The 101st distinct key in the same instant waits for a token: 0.1 s at 10/s.
        #expect(abs(r.when(1000) - 0.1) < 1e-9)
        clock.advance(by: 10)
        #expect(r.when(2000) == 0.005)
    }
}

final class EventCollector: EventSink, @unchecked Sendable {
    let events = Mutex<[EventRecord]>([])
    func write(_ e: EventRecord) { events.withLock { $0.append(e) } }
    var all: [EventRecord] { events.withLock { $0 } }
}

@Suite(.timeLimit(.minutes(1))) struct EventRecorderTests {
    let obj = InvolvedObject(kind: "Workload", namespace: "a", name: "w")

    @Test func identicalEventsBumpCount() throws {
        let clock = ManualClock(), sink = EventCollector()
        let r = EventRecorder(sink: sink, clock: clock)
        r.warning(obj, "Failed", "exit 1")
        clock.advance(by: 5)
        let second = try #require(r.warning(obj, "Failed", "exit 1"))
        #expect(second.count == 2)
        #expect(second.name == sink.all.first?.name)
        #expect(second.lastTimestamp - second.firstTimestamp == 5)
    }

    @Test func similarEventsAggregateAfterTen() {
        let clock = ManualClock(), sink = EventCollector()
        let r = EventRecorder(sink: sink, clock: clock)
        for i in 0..<10 { r.warning(obj, "Failed", "attempt \(i)") }
        let names = Set(sink.all.map(\.name))
        #expect(names.count == 10)
        let agg = r.warning(obj, "Failed", "attempt 10")
        #expect(agg?.message.hasPrefix("(combined from similar events)") == true)
        let agg2 = r.warning(obj, "Failed", "attempt 11")
        #expect(agg2?.name == agg?.name)
        #expect(agg2?.count == 2)
    }

    @Test func spamFilterDropsPastBurstAndRefills() {
        let clock = ManualClock(), sink = EventCollector()
        let r = EventRecorder(sink: sink, clock: clock)
        var written = 0
        for _ in 0..<40 { if r.normal(obj, "Tick", "same") != nil { written += 1 } }
        #expect(written == 25)
        #expect(r.normal(InvolvedObject(kind: "Queue", name: "q"), "Tick", "other object") != nil)
        clock.advance(by: 300)
        #expect(r.normal(obj, "Tick", "same") != nil)
        #expect(r.normal(obj, "Tick", "same") == nil)
    }
}

@Suite(.timeLimit(.minutes(1))) struct IndexedStoreTests {
    @Test func maintainsIndexesOnUpdateAndDelete() {
        let s = IndexedStore<String, (String, Int)>(indexers: ["group": { [$0.0] }])
        s.upsert("a", ("x", 1)); s.upsert("b", ("x", 2)); s.upsert("c", ("y", 3))
        #expect(s.keys(index: "group", value: "x") == ["a", "b"])
        s.upsert("b", ("y", 2))
        #expect(s.keys(index: "group", value: "x") == ["a"])
        #expect(s.keys(index: "group", value: "y") == ["b", "c"])
        s.update("a") { $0.0 = "z" }
        #expect(s.keys(index: "group", value: "x").isEmpty)
        s.delete("c")
        #expect(s.keys(index: "group", value: "y") == ["b"])
        #expect(s.count == 2)
    }
}

struct RepeatedFailureLogTests {
    /// The first failure is logged, repeats within the interval are counted, not logged; the
    /// next line carries the count; a success after failures is reported once.
    @Test func logsTheFirstFailureThenOncePerIntervalAndTheRecovery() {
        var l = RepeatedFailureLog(interval: 30)
        #expect(l.success() == nil)
        #expect(l.failure(now: 100) == 0)
        var logged = 0
        for i in 1...299 { if l.failure(now: 100 + Double(i) * 0.1) != nil { logged += 1 } }   // ten a second for 30 s
        #expect(logged == 0)
        #expect(l.failure(now: 130.5) == 299)
        #expect(l.failure(now: 131) == nil)
        #expect(l.success() == 302)
        #expect(l.success() == nil)
        #expect(l.failure(now: 132) == 0)   // a new streak is logged at once
    }
}
