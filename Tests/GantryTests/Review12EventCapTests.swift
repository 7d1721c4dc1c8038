import Testing
import Foundation
@testable import ControllerRuntime
@testable import GantryAPI

/// Review of the event recorder's per-object cap: dropping objects to stay under it must not
/// hand a rate-limited (noisy) object a fresh burst.
@Suite(.timeLimit(.minutes(1))) struct Review12EventCapTests {
    @Test func evictionDoesNotRefillANoisyObjectsBucket() {
        let sink = EventCollector()
        let clock = ManualClock()
        let rec = EventRecorder(sink: sink, clock: clock, cacheLimit: 100)
        let noisy = InvolvedObject(kind: "Workload", namespace: "ns", name: "noisy")
        var written = 0
        for i in 0..<40 where rec.warning(noisy, "BackOff", "restart \(i)") != nil { written += 1 }
        #expect(written >= 25 && written <= 26)   // the burst, then dropped
        // Many other objects record one event each over the next minute (a load, a churn).
        for i in 0..<1000 {
            clock.advance(by: 0.06)
            rec.normal(InvolvedObject(kind: "Workload", namespace: "ns", name: "w\(i)"), "Created", "created")
        }
        // One minute on, the noisy object has earned a fraction of a token (one per 5 min).
        var more = 0
        for i in 0..<40 where rec.warning(noisy, "BackOff", "restart again \(i)") != nil { more += 1 }
        #expect(more <= 1)
    }
}
