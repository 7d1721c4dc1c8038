import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import ControllerRuntime
@testable import Controllers
@testable import KubeMode

/// Review of the replica lifecycle's refactor into a pure core (through `Admission`: the glue
/// that gathers the input and performs the actions) and of the status writer's batch window
/// (KeyedWriter, Sources/KubeMode/KubeSinks.swift).
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

    /// A service replica's end, through `Admission`: one event, the status message, the
    /// replica Restarting, relaunched at the end of its backoff as attempt 1 (what the code
    /// before the pure core did, message for message).
    @Test func serviceReplicaEndThroughAdmissionKeepsItsMessagesAndBackoff() {
        var t = LifeHarness()
        t.h.apply("s.yaml", workloadYAML("s", extra: "  type: Deployment\n  replicas: 2"))
        t.startAll("s")
        t.exit("s", [1: 1])
        let ev = t.events("Restarting", "s")
        #expect(ev.count == 1 && ev.first?.count == 1 && ev.first?.type == .warning)
        #expect(ev.first?.message == "replica rank 1 exited with code 1; restarting it in 1s; last output: boom at rank 1")
        #expect(t.status("s")?.message == "replica rank 1 exited with code 1; restarting in 1s")
        #expect(t.status("s")?.conditions.get(ConditionType.running)?.reason == Reason.replicaRestarting)
        #expect(t.status("s")?.replicas.map(\.phase) == ["Running", "Restarting"])
        t.advance(0.9)
        #expect(t.launches("s").count == 2)
        t.advance(0.1)
        #expect(t.launches("s").count == 3)
        #expect(t.launches("s").last?.ref.attempt == 1 && t.launches("s").last?.header.contains("rank 1 restart 1 on n1") == true)
        #expect(t.status("s")?.replicas.map(\.phase) == ["Running", "Starting"])
        t.startAll("s")
        #expect(t.events("Started", "s").count == 1)   // announced once per dispatch
    }

    /// A spec change through `Admission`: SIGTERM once, SIGKILL at the end of the grace
    /// period (one Killed event), the stopping message; once the old replica is gone the new
    /// dispatch is prepared, its older records forgotten (keeping dispatch 2) and launched.
    @Test func specChangeThroughAdmissionKeepsGracePeriodAndCallOrder() {
        var t = LifeHarness(grace: 30)
        t.h.apply("w.yaml", workloadYAML("w", extra: "  type: Deployment\n  command: serve --v1"))
        t.startAll("w")
        t.h.apply("w.yaml", workloadYAML("w", extra: "  type: Deployment\n  command: serve --v2"))
        #expect(t.signals("w").map(\.1) == [false])
        #expect(t.status("w")?.phase == .updating)
        #expect(t.status("w")?.message == "the spec changed: stopping 1 replica to restart with the new spec")
        #expect(t.status("w")?.replicas.map(\.phase) == ["Terminating"])
        t.advance(29.9)
        #expect(t.signals("w").map(\.1) == [false])
        t.advance(0.1)
        #expect(t.signals("w").map(\.1) == [false, true])
        #expect(t.events("Killed", "w").map(\.message) == ["1 replica still running 30s after SIGTERM; sent SIGKILL"])
        t.advance(60)
        #expect(t.signals("w").count == 2 && t.events("Killed", "w").first?.count == 1)
        let intentsBefore = t.rt.s.withLock { $0.intents.count }
        let forgottenBefore = t.rt.forgotten.count
        t.exit("w", [0: 137])
        #expect(t.rt.s.withLock { $0.intents.count } == intentsBefore + 1)
        #expect(t.rt.forgotten.count == forgottenBefore + 1 && t.rt.forgotten.last?.1 == 2 && t.rt.forgotten.last?.2 == false)
        #expect(t.launches("w").last?.ref.dispatch == 2 && t.launches("w").last?.command == "serve --v2")
        #expect(t.status("w")?.phase == .updating && t.status("w")?.dispatchCount == 2 && t.status("w")?.retryCount == 0)
        #expect(t.status("w")?.message == "the spec changed: restarting 1 replicas with the new spec")
        #expect(t.rt.callsUnderLock.withLock { $0 }.isEmpty)
    }
}
