import Foundation
import Testing
import Synchronization
import GantryAPI
import KubeClient
import KubeTestServer
@testable import GantryCLI

/// A test API server holding a small cluster as the kube-mode controller leaves it
/// (Workloads with statuses, a Queue, a ResourcePool, Nodes, Events, Pods), and a
/// kubeconfig pointing at it, for the `gantry` binary run with `--kube`.
final class KubeCLIFixture: @unchecked Sendable {
    static let token = "kubecli-token"
    let server: TestAPIServer
    let dir: String
    let kubeconfig: String

    init(namespace: String = "team-a") throws {
        server = try TestAPIServer(token: KubeCLIFixture.token)
        dir = try makeTemporaryDirectory("gantry-kubecli-")
        kubeconfig = dir + "/kubeconfig"
        try KubeCLIFixture.kubeconfigText(server: server.baseURL, namespace: namespace).write(toFile: kubeconfig, atomically: true, encoding: .utf8)
    }

    deinit {
        server.stop()
        removeTree(dir)
    }

    static func kubeconfigText(server: String, namespace: String) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: test
          cluster: {server: "\(server)"}
        contexts:
        - name: test
          context: {cluster: test, user: tester, namespace: \(namespace)}
        current-context: test
        users:
        - name: tester
          user: {token: \(token)}
        """
    }

    /// `gantry ARGS --kube --kubeconfig F`: exit status and output (stdout and stderr).
    func cli(_ args: [String], timeout: Double = 30) -> (Int32, String) {
        runCLI(args + ["--kube", "--kubeconfig", kubeconfig], timeout: timeout)
    }

    func put(_ path: String, _ json: String) throws { server.put(path, try JSON.parse(json)) }

    static let ago = Timestamp(seconds: Int64(Date().timeIntervalSince1970) - 600).rfc3339

    func populate() throws {
        let ready = #"[{"type":"Ready","status":"True","lastTransitionTime":"\#(KubeCLIFixture.ago)"}]"#
        try put("/api/v1/nodes/n1", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"nvidia.com/gpu.product":"NVIDIA-A100-SXM4-80GB","gantry.dev/resource-pool":"pool-a"}},"status":{"allocatable":{"nvidia.com/gpu":"8","cpu":"64","memory":"512Gi"},"conditions":\#(ready)}}"#)
        try put("/api/v1/nodes/n2", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n2"},"spec":{"unschedulable":true},"status":{"allocatable":{"nvidia.com/gpu":"4"},"conditions":\#(ready)}}"#)
        try put("/api/v1/nodes/n3", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n3"},"status":{"allocatable":{"nvidia.com/gpu":"2"},"conditions":[{"type":"Ready","status":"False","message":"kubelet stopped posting node status"}]}}"#)
        try put("/apis/gantry.dev/v1alpha1/resourcepools/pool-a", #"{"apiVersion":"gantry.dev/v1alpha1","kind":"ResourcePool","metadata":{"name":"pool-a"},"spec":{},"status":{"phase":"Running","nodeCount":{"total":1,"used":1},"gpuCount":{"total":8,"used":4},"observedGeneration":1,"conditions":[]}}"#)
        try put("/apis/gantry.dev/v1alpha1/queues/research", #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"research"},"spec":{"deserved":{"gpu":8}},"status":{"state":"Open","deserved":{"gpu":8},"allocated":{"gpu":4,"cpu":2},"borrowed":{},"pending":1,"admitted":1,"running":1,"observedGeneration":1,"conditions":[]}}"#)
        let admitted = #"{"type":"Admitted","status":"True","reason":"Admitted","message":"admitted to queue research","lastTransitionTime":"\#(KubeCLIFixture.ago)","observedGeneration":1}"#
        try put("/apis/gantry.dev/v1alpha1/namespaces/team-a/workloads/train", #"""
            {"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"train","namespace":"team-a","labels":{"team":"a"}},
             "spec":{"queue":"research","priority":5,"image":"busybox","command":"echo hi","replicas":2,"resources":{"gpu":2,"cpu":1}},
             "status":{"phase":"Running","admission":{"queue":"research","replicas":[{"rank":0,"node":"n1","gpus":[]},{"rank":1,"node":"n1","gpus":[]}]},
                       "replicas":[{"name":"train-worker-0","rank":0,"node":"n1","phase":"Running","gpus":[],"restarts":0}],
                       "dispatchCount":1,"retryCount":0,"observedGeneration":1,"conditions":[\#(admitted)]}}
            """#)
        try put("/apis/gantry.dev/v1alpha1/namespaces/team-b/workloads/wait", #"""
            {"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"wait","namespace":"team-b"},
             "spec":{"queue":"research","image":"busybox","command":"true","resources":{"gpu":8}},
             "status":{"phase":"Pending","queuePosition":0,"observedGeneration":1,
                       "conditions":[{"type":"Admitted","status":"False","reason":"InsufficientQuota","message":"needs gpu=8","lastTransitionTime":"\#(KubeCLIFixture.ago)","observedGeneration":1}]}}
            """#)
        // Gantry's event about train, and a kubelet's event about its Pod.
        try put("/api/v1/namespaces/team-a/events/train.17a", #"""
            {"apiVersion":"v1","kind":"Event","metadata":{"name":"train.17a","namespace":"team-a"},
             "involvedObject":{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","namespace":"team-a","name":"train"},
             "reason":"Admitted","message":"admitted to queue research on n1","type":"Normal","count":2,
             "firstTimestamp":"\#(KubeCLIFixture.ago)","lastTimestamp":"\#(KubeCLIFixture.ago)","source":{"component":"gantry"},"reportingComponent":"gantry"}
            """#)
        try put("/api/v1/namespaces/team-a/events/train-worker-0.17b", #"""
            {"apiVersion":"v1","kind":"Event","metadata":{"name":"train-worker-0.17b","namespace":"team-a"},
             "involvedObject":{"apiVersion":"v1","kind":"Pod","namespace":"team-a","name":"train-worker-0"},
             "reason":"Pulled","message":"image pulled","type":"Normal","count":1,
             "firstTimestamp":"\#(KubeCLIFixture.ago)","lastTimestamp":"\#(KubeCLIFixture.ago)","source":{"component":"kubelet"}}
            """#)
        try put("/api/v1/namespaces/default/events/research.17c", #"""
            {"apiVersion":"v1","kind":"Event","metadata":{"name":"research.17c","namespace":"default"},
             "involvedObject":{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","name":"research"},
             "reason":"QueueReady","message":"queue open","type":"Normal","count":1,
             "firstTimestamp":"\#(KubeCLIFixture.ago)","lastTimestamp":"\#(KubeCLIFixture.ago)","source":{"component":"gantry"}}
            """#)
        for rank in 0..<2 {
            try put("/api/v1/namespaces/team-a/pods/train-worker-\(rank)", #"""
                {"apiVersion":"v1","kind":"Pod","metadata":{"name":"train-worker-\#(rank)","namespace":"team-a",
                 "labels":{"gantry.dev/workload":"train","gantry.dev/rank":"\#(rank)","gantry.dev/dispatch":"1"}},
                 "spec":{"nodeName":"n1","containers":[{"name":"worker","image":"busybox"}]},"status":{"phase":"Running"}}
                """#)
        }
    }
}

/// The lines of `output` whose first cells are `cells` (split at runs of spaces).
func tableRow(_ output: String, _ cells: [String]) -> [String]? {
    for line in output.split(separator: "\n") {
        let c = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if c.count >= cells.count && Array(c.prefix(cells.count)) == cells { return c }
    }
    return nil
}

func headerCells(_ output: String) -> [String] {
    // Headers are single words except events' "LAST SEEN".
    (output.split(separator: "\n").first.map(String.init) ?? "").components(separatedBy: "   ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct KubeCLITests {
    @Test func getPrintsTheDirectoryModeTables() throws {
        let f = try KubeCLIFixture()
        try f.populate()

        let (rc, wl) = f.cli(["get", "workloads", "-A"])
        #expect(rc == 0, "\(wl)")
        #expect(headerCells(wl) == ["NAMESPACE", "NAME", "TYPE", "QUEUE", "PRIORITY", "PHASE", "GPUS", "QUEUE-POS", "NODES", "AGE"])
        #expect(tableRow(wl, ["team-a", "train"])?.prefix(9) == ["team-a", "train", "Job", "research", "5", "Running", "4", "-", "n1"])
        #expect(tableRow(wl, ["team-b", "wait"])?.prefix(9) == ["team-b", "wait", "Job", "research", "0", "Pending", "8", "0", "-"])

        // Without -n: the kubeconfig context's namespace.
        let (rc2, mine) = f.cli(["get", "wl"])
        #expect(rc2 == 0)
        #expect(headerCells(mine).first == "NAME")
        #expect(tableRow(mine, ["train"]) != nil && !mine.contains("wait"), "\(mine)")

        let (rc3, q) = f.cli(["get", "queues"])
        #expect(rc3 == 0, "\(q)")
        #expect(headerCells(q) == ["NAME", "STATE", "DESERVED", "ALLOCATED", "BORROWED", "PENDING", "ADMITTED", "AGE"])
        #expect(tableRow(q, ["research"])?.prefix(7) == ["research", "Open", "gpu=8", "gpu=4,cpu=2", "-", "1", "1"])

        // Nodes: capacity from allocatable, allocation summed from the admissions (2 replicas x 2 GPUs).
        let (rc4, n) = f.cli(["get", "nodes"])
        #expect(rc4 == 0, "\(n)")
        #expect(headerCells(n) == ["NAME", "STATUS", "POOL", "GPU-TYPE", "CAPACITY-GPU", "ALLOCATED-GPU", "WORKLOADS", "AGE"])
        #expect(tableRow(n, ["n1"])?.prefix(7) == ["n1", "Ready", "pool-a", "A100-80GB", "8", "4", "1"] || tableRow(n, ["n1"])?[4...6] == ["8", "4", "1"], "\(n)")
        #expect(tableRow(n, ["n2"])?[1] == "SchedulingDisabled")
        #expect(tableRow(n, ["n2"])?[4...6] == ["4", "0", "0"])
        #expect(tableRow(n, ["n3"])?[1] == "NotReady")

        let (rc5, p) = f.cli(["get", "resourcepools"])
        #expect(rc5 == 0)
        #expect(tableRow(p, ["pool-a"])?.prefix(6) == ["pool-a", "Running", "1", "1", "8", "4"], "\(p)")

        // -o json: the object and its status, as directory mode prints them.
        let (rc6, js) = f.cli(["get", "wl", "train", "-o", "json"])
        #expect(rc6 == 0)
        let v = try JSON.parse(js)
        #expect(v["kind"]?.stringValue == "Workload")
        #expect(v["status"]?["phase"]?.stringValue == "Running")
        #expect(v["metadata"]?["uid"]?.stringValue?.isEmpty == false)

        let (rc7, missing) = f.cli(["get", "wl", "nope"])
        #expect(rc7 == 1)
        #expect(missing.contains("workload \"nope\" not found in namespace team-a"))
    }

    @Test func describeAndEventsShowGantrysEvents() throws {
        let f = try KubeCLIFixture()
        try f.populate()
        let (rc, d) = f.cli(["describe", "workload", "train", "-n", "team-a"])
        #expect(rc == 0, "\(d)")
        for expected in ["Name:                   train", "Namespace:              team-a", "Queue:                  research", "Replicas:               2",
                         "Total GPUs:             4", "  Phase:                Running", "Admission (queue research):", "Labels:                 team=a"] {
            #expect(d.contains(expected), "missing \(expected) in\n\(d)")
        }
        #expect(tableRow(d, ["Admitted", "Normal"]) == nil)   // the Events table is TYPE REASON ...
        #expect(tableRow(d, ["Normal", "Admitted"])?.contains("2") == true, "\(d)")

        let (rcq, dq) = f.cli(["describe", "queue", "research"])
        #expect(rcq == 0, "\(dq)")
        #expect(dq.contains("Pending Workloads (admission order): 1"))
        #expect(tableRow(dq, ["0", "team-b/wait"]) != nil, "\(dq)")
        #expect(tableRow(dq, ["Normal", "QueueReady"]) != nil, "cluster-scoped objects' events are in default: \(dq)")

        let (rc2, e) = f.cli(["events", "--for", "workload/team-a/train"])
        #expect(rc2 == 0, "\(e)")
        #expect(headerCells(e) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"])
        #expect(tableRow(e, ["10m", "Normal", "Admitted", "workload/team-a/train", "2"]) != nil, "\(e)")
        #expect(!e.contains("Pulled"))

        // Every event of Gantry, none of the kubelet's.
        let (rc3, all) = f.cli(["events"])
        #expect(rc3 == 0)
        #expect(all.contains("workload/team-a/train") && all.contains("queue/research"))
        #expect(!all.contains("Pulled"), "\(all)")
    }

    @Test func stopAndResumePatchSpecSuspend() throws {
        let f = try KubeCLIFixture()
        try f.populate()
        let path = GroupVersionResource.workloads.path(namespace: "team-a", name: "train")
        let (rc, o) = f.cli(["stop", "train", "-n", "team-a"])
        #expect(rc == 0, "\(o)")
        #expect(o.contains("spec.suspend=true"))
        #expect(f.server.object(path)?["spec"]?["suspend"]?.boolValue == true)
        #expect(f.server.object(path)?["status"]?["phase"]?.stringValue == "Running", "status untouched")
        #expect(f.server.requestLog.contains { $0.hasPrefix("PATCH \(path)") })

        let (rc2, o2) = f.cli(["resume", "workload", "train"])
        #expect(rc2 == 0, "\(o2)")
        #expect(o2.contains("spec.suspend=false"))
        #expect(f.server.object(path)?["spec"]?["suspend"]?.boolValue == false)

        let (rc3, o3) = f.cli(["stop", "nope", "-n", "team-a"])
        #expect(rc3 == 1)
        #expect(o3.contains("workload \"nope\" not found in namespace team-a"))
    }

    @Test func logsPrintThePodLog() throws {
        let f = try KubeCLIFixture()
        try f.populate()
        f.server.appendPodLog(namespace: "team-a", name: "train-worker-0", "hello\nworld\n")
        f.server.appendPodLog(namespace: "team-a", name: "train-worker-1", "from rank 1\n")
        let (rc, o) = f.cli(["logs", "train", "-n", "team-a"])
        #expect(rc == 0)
        #expect(o == "hello\nworld\n")
        #expect(f.server.requestLog.contains { $0.contains("/pods/train-worker-0/log?container=worker") })
        let (rc2, o2) = f.cli(["logs", "train", "--replica", "1"])
        #expect(rc2 == 0)
        #expect(o2 == "from rank 1\n")
        let (rc3, o3) = f.cli(["logs", "train", "--tail", "1"])
        #expect(rc3 == 0)
        #expect(o3 == "world\n")
        let (rc4, o4) = f.cli(["logs", "train", "--replica", "2"])
        #expect(rc4 == 1)
        #expect(o4.contains("has 2 replicas"))
        let (rc5, o5) = f.cli(["logs", "wait", "-n", "team-b"])
        #expect(rc5 == 1)
        #expect(o5.contains("no Pod for team-b/wait rank 0"), "\(o5)")
    }

    @Test func logsFollowPrintsNewLinesOnceUntilThePodFinishes() throws {
        let f = try KubeCLIFixture()
        try f.populate()
        f.server.appendPodLog(namespace: "team-a", name: "train-worker-0", "one\ntwo\n")
        let result = Mutex<(Int32, String)?>(nil)
        let t = Thread { [f] in
            let r = f.cli(["logs", "train", "-f"])
            result.withLock { $0 = r }
        }
        t.start()
        let logPath = "/api/v1/namespaces/team-a/pods/train-worker-0/log"
        // The first read, then a poll from the last line's time.
        #expect(poll(timeout: 20) { f.server.requestLog.contains { $0.hasPrefix("GET \(logPath)") && $0.contains("sinceTime=") } })
        f.server.appendPodLog(namespace: "team-a", name: "train-worker-0", "three\n")
        f.server.setPodPhase(namespace: "team-a", name: "train-worker-0", phase: "Succeeded")
        #expect(poll(timeout: 20) { result.withLock { $0 } != nil })
        let (rc, out) = result.withLock { $0 } ?? (-1, "")
        #expect(rc == 0)
        #expect(out == "one\ntwo\nthree\n", "\(out)")
    }

    @Test func clusterProblemsAreOneLineAndExitOne() throws {
        let f = try KubeCLIFixture()
        try f.populate()
        // No kubeconfig.
        let (rc, o) = runCLI(["get", "wl", "--kube", "--kubeconfig", f.dir + "/missing"])
        #expect(rc == 1)
        #expect(o.hasPrefix("gantry: kubeconfig: ") && o.split(separator: "\n").count == 1, "\(o)")
        // Forbidden.
        f.server.failNext("GET", pathPrefix: "/apis/gantry.dev/v1alpha1/queues", status: 403, count: 1)
        let (rc2, o2) = f.cli(["get", "queues"])
        #expect(rc2 == 1)
        #expect(o2.hasPrefix("gantry: forbidden (403)") && o2.split(separator: "\n").count == 1, "\(o2)")
        // Wrong credentials.
        let bad = f.dir + "/bad"
        try KubeCLIFixture.kubeconfigText(server: f.server.baseURL, namespace: "x").replacingOccurrences(of: KubeCLIFixture.token, with: "wrong")
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let (rc3, o3) = runCLI(["get", "nodes", "--kube", "--kubeconfig", bad])
        #expect(rc3 == 1)
        #expect(o3.contains("401") && o3.split(separator: "\n").count == 1, "\(o3)")
        // Unreachable.
        f.server.stop()
        let (rc4, o4) = f.cli(["get", "wl", "-A"])
        #expect(rc4 == 1)
        #expect(o4.hasPrefix("gantry: cannot reach the API server at \(f.server.baseURL)") && o4.split(separator: "\n").count == 1, "\(o4)")
        // Kube flags without --kube.
        let (rc5, o5) = runCLI(["get", "wl", "--kubeconfig", bad])
        #expect(rc5 == 2)
        #expect(o5.contains("--kubeconfig and --context go with --kube"))
    }

    @Test func getWatchPollsTheCluster() throws {
        let f = try KubeCLIFixture()
        try f.populate()
        let result = Mutex<ProcessOutcome?>(nil)
        let t = Thread { [f] in
            let r = runProcess(DaemonUnderTest.binary, ["get", "wl", "-w", "--kube", "--kubeconfig", f.kubeconfig], timeout: 6, recordTimeout: false)
            result.withLock { $0 = r }
        }
        t.start()
        let list = "/apis/gantry.dev/v1alpha1/namespaces/team-a/workloads"
        #expect(poll(timeout: 10) { f.server.requestLog.filter { $0.hasPrefix("GET \(list)?") }.count >= 2 }, "polls again")
        var w = try #require(f.server.object(list + "/train"))
        w = try JSON.parse(JSON.encode(w).replacingOccurrences(of: #""phase":"Running","admission""#, with: #""phase":"Succeeded","admission""#))
        f.server.put(list + "/train", w)
        #expect(poll(timeout: 15) { result.withLock { $0 } != nil })
        let out = result.withLock { $0 }?.output ?? ""
        #expect(tableRow(out, ["train", "Job", "research", "5", "Running"]) != nil, "\(out)")
        #expect(tableRow(out, ["train", "Job", "research", "5", "Succeeded"]) != nil, "\(out)")
    }

    /// What the kube-mode controller writes renders: phases, admissions, node allocation,
    /// the controller's events, and stop through spec.suspend.
    @Test func theControllersStatusRendersAndStopSuspendsTheWorkload() throws {
        let fake = try TestAPIServer()
        let k = try KubeCluster(fake)
        defer { k.shutdown() }
        let dir = try makeTemporaryDirectory("gantry-kubecli-")
        defer { removeTree(dir) }
        let kubeconfig = dir + "/kubeconfig"
        try KubeCLIFixture.kubeconfigText(server: fake.baseURL, namespace: "default").write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        func cli(_ args: [String]) -> (Int32, String) { runCLI(args + ["--kube", "--kubeconfig", kubeconfig]) }
        try k.node("n1", gpus: 8)
        try k.queue("q", #"{"deserved":{"gpu":8}}"#)
        try k.workload("team-a", "llama", #"{"type":"PyTorchJob","queue":"q","image":"pytorch:2","command":"python train.py","replicas":2,"resources":{"gpu":2}}"#)
        k.startController(grace: 1)
        #expect(poll(timeout: 20) { k.podNames("team-a", workload: "llama").count == 2 })
        k.setPods("team-a", workload: "llama", phase: "Running")
        #expect(poll(timeout: 10) { k.phase("team-a", "llama") == "Running" })

        let (rc, wl) = cli(["get", "wl", "-A"])
        #expect(rc == 0)
        #expect(tableRow(wl, ["team-a", "llama"])?.prefix(9) == ["team-a", "llama", "PyTorchJob", "q", "0", "Running", "4", "-", "n1"], "\(wl)")
        let (_, nodes) = cli(["get", "nodes"])
        #expect(tableRow(nodes, ["n1"])?.prefix(7) == ["n1", "Ready", "-", "A100", "8", "4", "1"], "\(nodes)")
        #expect(poll(timeout: 10) { cli(["events", "--for", "workload/team-a/llama"]).1.contains("Started") })
        let (_, d) = cli(["describe", "wl", "llama", "-n", "team-a"])
        #expect(d.contains("Admission (queue q):") && d.contains("llama-worker-1"), "\(d)")

        let (rc2, _) = cli(["stop", "llama", "-n", "team-a"])
        #expect(rc2 == 0)
        // The controller deletes the Pods; the kubelet stand-in (the test) lets them go.
        #expect(poll(timeout: 20) { k.reapDeletedPods("team-a"); return k.pods("team-a", workload: "llama").isEmpty })
        #expect(poll(timeout: 10) { k.phase("team-a", "llama") == "Stopped" })
        #expect(tableRow(cli(["get", "wl", "llama", "-n", "team-a"]).1, ["llama"])?[4] == "Stopped")
    }

    @Test func logCursorPrintsEachLineOnce() {
        var c = LogCursor()
        #expect(c.fresh("2026-01-15T10:31:00.5Z a\n2026-01-15T10:31:00.5Z b\n2026-01-15T10:31:01Z c\n") == ["a", "b", "c"])
        #expect(c.sinceTime == "2026-01-15T10:31:01Z")
        // The next read repeats the last second; a second line at the same instant is new.
        #expect(c.fresh("2026-01-15T10:31:01Z c\n2026-01-15T10:31:01Z d\n2026-01-15T10:31:02.000000001Z e\n") == ["d", "e"])
        #expect(c.fresh("2026-01-15T10:31:02.000000001Z e\n") == [])
        #expect(c.fresh("no stamp\n") == ["no stamp"])
    }

    @Test func nodeUsageSumsAdmittedReplicas() throws {
        let w = try JSON.parse(#"[{"metadata":{"name":"a","namespace":"x"},"spec":{"resources":{"gpu":2,"memory":"1Gi"}},"status":{"admission":{"replicas":[{"rank":0,"node":"n1"},{"rank":1,"node":"n2"},{"rank":2,"node":"n1"}]}}},{"metadata":{"name":"b","namespace":"x"},"spec":{"resources":{"gpu":"9223372036854775807"}},"status":{"admission":{"replicas":[{"rank":0,"node":"n1"}]}}},{"metadata":{"name":"c","namespace":"x"},"spec":{"resources":{"gpu":1}},"status":{}}]"#)
        let u = KubeReaderRows.nodeUsage(w.arrayValue ?? [])
        #expect(u["n1"]?.workloads == 2)
        #expect(u["n2"]?.allocated.gpu == 2)
        #expect(u["n2"]?.allocated["memory"] == Quantity(units: 1 << 30))
        #expect(u["n2"]?.workloads == 1)
        #expect(u["n3"] == nil)
    }
}
