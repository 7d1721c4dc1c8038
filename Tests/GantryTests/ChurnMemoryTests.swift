import Testing
import Foundation
@testable import ControllerRuntime
@testable import Controllers
@testable import GantryAPI

/// What the daemon remembers per object goes with the object (issue 12: RSS rose from 26 to
/// 38 MB over a 10-minute churn of 2,716 workloads).
@Suite(.timeLimit(.minutes(1))) struct ChurnMemoryTests {
    @Test func deletedWorkloadsLeaveNothingInTheEventRecorder() {
        var h = Harness()
        h.cluster(nodes: ["n1"])
        let before = h.inventory.events.rememberedObjects
        for i in 0..<40 {
            h.apply("w\(i).yaml", workloadYAML("w\(i)"))
            h.remove("w\(i).yaml")
        }
        #expect(h.events.all.filter { $0.reason == "Deleted" }.count == 40)
        // Each workload recorded events (created, admitted, deleted); none of it stays.
        #expect(h.inventory.events.rememberedObjects <= before + 1)
    }

    @Test func eventRecorderStateIsCappedAndStillFiltersSpam() {
        let sink = EventCollector()
        let rec = EventRecorder(sink: sink, clock: ManualClock(), cacheLimit: 100)
        for i in 0..<1000 { rec.normal(InvolvedObject(kind: "Workload", namespace: "ns", name: "w\(i)"), "Created", "created") }
        #expect(rec.rememberedObjects <= 100)
        // A noisy object keeps its bucket: burst 25, then dropped.
        let noisy = InvolvedObject(kind: "Workload", namespace: "ns", name: "noisy")
        var written = 0
        for i in 0..<40 where rec.warning(noisy, "Failed", "attempt \(i % 3)") != nil { written += 1 }
        #expect(written == 25)
        // Identical events still aggregate into one record.
        #expect(sink.all.filter { $0.involved == noisy }.map(\.name).count == 25)
        #expect(Set(sink.all.filter { $0.involved == noisy }.map(\.name)).count == 3)
    }
}
