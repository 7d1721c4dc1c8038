import Testing
import Foundation
import Synchronization
import ControllerRuntime
@testable import KubeMode

/// Review of the status writer's batch window (KeyedWriter, Sources/KubeMode/KubeSinks.swift).
@Suite(.timeLimit(.minutes(1)))
struct LifecycleReviewTests {
    final class WriterBox: @unchecked Sendable { var writer: KeyedWriter<String>? }

    /// A change marked while the key is being written, when that write is throttled (a
    /// position-only change, retried in 30 s), is a new change: like one marked after the
    /// write, it must not wait behind the throttle.
    @Test func keyedWriterChangeDuringThrottledWriteIsNotHeldBehindTheThrottle() {
        let calls = Atomic<Int>(0)
        let box = WriterBox()
        let w = KeyedWriter<String>(name: "review-throttle", threads: 2, batch: 0.05) { k in
            let n = calls.add(1, ordering: .relaxed).newValue
            if n == 1 {
                box.writer?.mark(k)   // a new change arrives while this write is in flight
                return 30             // this write was throttled
            }
            return nil
        }
        box.writer = w
        defer { w.stop() }
        w.mark("a")
        #expect(poll(timeout: 3) { calls.load(ordering: .relaxed) >= 2 }, "the change marked during the throttled write waits the whole throttle")
    }

    /// A key dropped (its object deleted) inside its batch window leaves no due time behind:
    /// otherwise the writer's threads wake every 2 ms until some other key is marked.
    @Test func keyedWriterDropLeavesNoStaleDueTime() {
        let w = KeyedWriter<String>(name: "review-drop", threads: 2, batch: 0.05) { _ in nil }
        defer { w.stop() }
        w.mark("gone")
        w.drop("gone")
        #expect(poll(timeout: 1) { w.state.withLock { $0.delayed.isEmpty && $0.nextDue == .infinity } },
                "the dropped key's due time stays: idle threads spin every 2 ms")
    }

    /// Sanity of the batch window: marks within it are one write; a key marked again and
    /// again is still written (no starvation: the earliest due time is kept).
    @Test func keyedWriterBatchesAndDoesNotStarve() {
        let calls = Atomic<Int>(0)
        let w = KeyedWriter<String>(name: "review-batch", threads: 2, batch: 0.05) { _ in calls.add(1, ordering: .relaxed); return nil }
        defer { w.stop() }
        let start = Date()
        // Marked continuously for 0.3 s: written within the window of the first mark, not after the marks stop.
        var writtenWhileMarking = false
        while Date().timeIntervalSince(start) < 0.3 {
            w.mark("k")
            if calls.load(ordering: .relaxed) > 0 { writtenWhileMarking = true }
            usleep(2_000)
        }
        #expect(writtenWhileMarking)
        #expect(poll(timeout: 1) { w.idle })
    }
}
