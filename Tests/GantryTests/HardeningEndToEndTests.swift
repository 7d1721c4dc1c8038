import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore

/// Regressions found by trying Gantry as a new user would, through the real binary.
@Suite(.serialized, .timeLimit(.minutes(2))) struct HardeningEndToEndTests {
    func phase(_ d: DaemonUnderTest, _ name: String) -> String? { d.status(.workload, name)?["phase"]?.stringValue }

    /// The smallest manifests a new user writes: a Queue with `spec: {}` (or only a GPU share)
    /// and a Workload whose spec is only a command. It runs (no GPUs), and the daemon lives,
    /// also across a restart.
    @Test(arguments: ["spec: {}", "spec: {deserved: {gpu: 8}}"])
    func aWorkloadWithOnlyACommandRuns(queueSpec: String) throws {
        let d = try DaemonUnderTest()
        defer { try? FileManager.default.removeItem(atPath: (d.spec as NSString).deletingLastPathComponent) }
        d.write("queue.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: default}\n\(queueSpec)\n")
        d.write("hello.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: hello}\nspec:\n  command: \"echo hi\"\n")
        let done = d.wait(20) { phase(d, "hello") == "Succeeded" }
        #expect(done, "phase \(phase(d, "hello") ?? "none"); log:\n\(d.log)")
        #expect(d.process.isRunning, "the daemon died:\n\(d.log)")
        let (rc, logs) = runCLI(["logs", "hello", "--state-dir", d.state])
        #expect(rc == 0 && logs.contains("hi"))
        // Two more without resources, one with several replicas, next to the first.
        d.write("more.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: three}\nspec:\n  command: \"echo $RANK\"\n  replicas: 3\n")
        #expect(d.wait(20) { phase(d, "three") == "Succeeded" })
        #expect(d.terminate() == 0)
        let d2 = try DaemonUnderTest(reusing: d)
        d2.write("later.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: later}\nspec:\n  command: \"true\"\n")
        #expect(d2.wait(20) { phase(d2, "later") == "Succeeded" })
        #expect(d2.process.isRunning)
        #expect(d2.terminate() == 0)
    }

    /// The reclaim case with real processes that take a second to stop: the reclaiming
    /// workload runs once the victim is gone, and the victim waits until it is done.
    @Test func reclaimedGPUsGoToTheReclaimingWorkload() throws {
        let d = try DaemonUnderTest(extra: ["--grace-period", "20s"])
        defer {
            _ = d.terminate()
            d.killReplicas()
            try? FileManager.default.removeItem(atPath: (d.spec as NSString).deletingLastPathComponent)
        }
        // The same cluster and queue tree as the stack-level scenario (StackReclaimTests).
        d.write("nodes.yaml", StackReclaimTests.cluster)
        d.write("queues.yaml", StackReclaimTests.queues)
        // Victims take about a second to stop after SIGTERM.
        let slow = jsonQuote("trap 'sleep 1; exit 143' TERM; while true; do sleep 0.1; done")
        func job(_ name: String, _ queue: String, replicas: Int, command: String) -> String {
            "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name)}\nspec:\n  queue: \(queue)\n  replicas: \(replicas)\n  resources: {gpu: 8}\n  command: \(command)\n"
        }
        d.write("a-big.yaml", job("a-big", "team-a", replicas: 2, command: slow))
        #expect(d.wait(20) { phase(d, "a-big") == "Running" })
        d.write("a-borrow.yaml", job("a-borrow", "team-a", replicas: 1, command: slow))
        #expect(d.wait(20) { phase(d, "a-borrow") == "Running" })
        let gate = NSTemporaryDirectory() + "gantry-gate-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: gate) }
        // b-job runs until the test opens the gate, so the victim's wait can be observed.
        d.write("b-job.yaml", job("b-job", "team-b", replicas: 2, command: jsonQuote("while [ ! -e \(gate) ]; do sleep 0.1; done")))
        let ran = d.wait(30) { phase(d, "b-job") == "Running" }
        #expect(ran, "b-job never ran; a-borrow: \(phase(d, "a-borrow") ?? "none"); b-job: \(d.status(.workload, "b-job")?["message"]?.stringValue ?? "")")
        try #require(ran)
        let preempted = d.events().filter { $0.reason == "Preempted" }
        #expect(preempted.map(\.objName) == ["a-borrow"], "\(preempted.map(\.message))")
        #expect(preempted.first?.message.contains("b-job") == true)
        // While b-job runs, the victim waits and nothing else was stopped.
        for _ in 0..<10 {
            #expect(phase(d, "a-borrow") == "Pending")
            #expect(phase(d, "a-big") == "Running")
            usleep(100_000)
        }
        let gpus = Set((d.status(.workload, "b-job")?["admission"]?["replicas"]?.arrayValue ?? []).compactMap { $0["node"]?.stringValue })
        #expect(gpus.count == 2)
        FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(d.wait(20) { phase(d, "b-job") == "Succeeded" })
        // Then the victim is admitted again (team-a may borrow once more) and runs.
        #expect(d.wait(20) { phase(d, "a-borrow") == "Running" })
        #expect(d.events().filter { $0.reason == "Preempted" }.count == 1)
    }
}
