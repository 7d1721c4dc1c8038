import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import KubeClient
import KubeMode
import KubeTestServer

/// `gantry-bench --kube`: kube-mode figures against the in-process TestAPIServer (plain HTTP
/// on 127.0.0.1), printed, not asserted:
/// 1. admission throughput: `workloads` Workloads created through the API by several client
///    threads on `nodes` Nodes of 8 GPUs and `queues` Queues, timed from the first create to
///    the last Workload with an Admitted condition (True, or False with a reason and a queue
///    position); once with `runReplicas = false`, once with Pods created;
/// 2. API requests per workload from creation to Succeeded, by verb and resource, from the
///    server's request log (the bench's own creates left out), with the kubelet stand-in;
/// 3. leader failover: the leader abandoned (as after kill -9), time until the standby is
///    active and has admitted a Workload created at that moment;
/// 4. the RSS of `gantry run --kube` as a separate process with every Workload admitted and
///    its Pod Running in its caches.
/// With `serverKubeconfig`, figure 1 (admission only) also runs against that API server.
/// Shared counters and values for the bench's threads (noncopyable Atomic/Mutex cannot be
/// captured by escaping closures directly).
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
    func increment() -> Int { value.add(1, ordering: .relaxed).newValue }
    var current: Int { value.load(ordering: .relaxed) }
}
final class Locked<T: Sendable>: Sendable {
    let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    func with<R: Sendable>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}

/// `x` with `d` decimals.
func fmt(_ x: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", x) }

enum KubeBench {
    struct Config {
        var workloads = 10_000
        var nodes = 1_000
        var queues = 100
        var createThreads = 4
        var leaseSeconds = 15.0
        var requestWorkloads = 200
        var gantry = ""
        var dir = NSTemporaryDirectory() + "gantry-kubebench"
        var serverKubeconfig: String?
        var serverWorkloads = 1_000
        /// Which figures: a set of "1", "1p", "2", "3", "4", "real"; empty = all.
        var only: Set<String> = []
        var qps = 2_000.0
        /// CRDs applied (kubectl apply) before the real-server run, when the directory exists.
        var crds: String? = "Manifests/crds"
    }

    static func want(_ c: Config, _ f: String) -> Bool { c.only.isEmpty || c.only.contains(f) }

    static func run(_ c: Config, say: @escaping (String) -> Void) {
        say("gantry-bench --kube: \(c.workloads) workloads, \(c.nodes) nodes x 8 GPUs, \(c.queues) queues; \(Date()) (2 shared cores)")
        if want(c, "1") { admission(c, runReplicas: false, say: say) }
        if want(c, "1p") { admission(c, runReplicas: true, say: say) }
        if want(c, "2") { requestsPerWorkload(c, say: say) }
        if want(c, "3") { failover(c, say: say) }
        if want(c, "4") { controllerRSS(c, say: say) }
        if want(c, "real"), let kc = c.serverKubeconfig { realServer(c, kubeconfig: kc, say: say) }
        if want(c, "realpre"), let kc = c.serverKubeconfig { realServer(c, kubeconfig: kc, preCreate: true, say: say) }
    }

    // MARK: Cluster content

    static func nodeObject(_ name: String, gpus: Int) -> Value {
        try! JSON.parse(#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"\#(name)","labels":{"nvidia.com/gpu.product":"NVIDIA-A100-SXM4-80GB"}},"status":{"allocatable":{"nvidia.com/gpu":"\#(gpus)","cpu":"64","memory":"512Gi"},"capacity":{"nvidia.com/gpu":"\#(gpus)","cpu":"64","memory":"512Gi"},"conditions":[{"type":"Ready","status":"True"}]}}"#)
    }

    static func queueObject(_ name: String, spec: String) -> Value {
        try! JSON.parse(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"\#(name)"},"spec":\#(spec)}"#)
    }

    /// Workload `i`: namespace team-(i % 20), queue q-(i % queues), `gpus` GPUs per replica.
    static func workloadObject(_ i: Int, queues: Int, gpus: Int, replicas: Int = 1, prefix: String = "wl") -> Value {
        try! JSON.parse(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"\#(prefix)-\#(i)","namespace":"team-\#(i % 20)"},"spec":{"type":"Job","queue":"q-\#(i % max(1, queues))","image":"bench:1","command":"sleep 3600","priority":\#(i % 3),"replicas":\#(replicas),"resources":{"gpu":\#(gpus),"cpu":"4","memory":"16Gi"}}}"#)
    }

    /// 1..8, spread evenly and deterministically over the workloads.
    static func gpusOf(_ i: Int) -> Int { 1 + (i &* 7919) % 8 }

    /// Nodes and queues (and, on a real server, namespaces); each queue deserves an equal
    /// share of the GPUs, lends and borrows.
    static func populate(_ client: KubeClient, nodes: Int, queues: Int, deserved: Int? = nil, namespaces: Bool = false, say: (String) -> Void) {
        let share = deserved ?? max(1, nodes * 8 * 9 / 10 / max(1, queues))
        parallel(4, nodes) { i in
            _ = try? client.create(GroupVersionResource.nodes.path(), nodeObject("node-\(i)", gpus: 8))
            // kube-apiserver's TaintNodesByCondition adds node.kubernetes.io/not-ready on
            // create; the node lifecycle controller (absent here) would lift it once Ready.
            if namespaces { _ = try? client.patch(GroupVersionResource.nodes.path(name: "node-\(i)"), .object([.init("spec", .object([.init("taints", .null)]))])) }
        }
        parallel(4, queues) { i in
            _ = try? client.create(GroupVersionResource.queues.path(), queueObject("q-\(i)", spec: #"{"deserved":{"gpu":\#(share)}}"#))
        }
        if namespaces {
            for n in 0..<20 {
                _ = try? client.create(GroupVersionResource.namespaces.path(), try! JSON.parse(#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-\#(n)"}}"#))
            }
        }
    }

    /// Runs `body(i)` for i in 0..<n on `threads` threads; returns when all are done.
    static func parallel(_ threads: Int, _ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let next = Counter()
        let group = DispatchGroup()
        for _ in 0..<max(1, threads) {
            group.enter()
            Thread {
                while true {
                    let i = next.next()
                    if i >= n { break }
                    body(i)
                }
                group.leave()
            }.start()
        }
        group.wait()
    }

    static func startController(_ client: KubeClient, runReplicas: Bool, leaderElect: Bool = false, identity: String = "bench", lease: Double = 15) -> KubeController {
        var o = KubeController.Options()
        o.workers = 2
        o.runReplicas = runReplicas
        o.leaderElect = leaderElect
        o.identity = identity
        o.leaseNamespace = "gantry-system"
        o.leaseDuration = lease; o.renewDeadline = lease * 2 / 3; o.retryPeriod = max(0.2, lease / 7.5)
        o.onLostLease = {}
        let c = KubeController(client: client, options: o)
        Thread { _ = c.run() }.start()
        return c
    }

    static func stopController(_ c: KubeController) {
        c.stop()
        let end = monotonicSeconds() + 15
        while !c.finished.load(ordering: .relaxed) && monotonicSeconds() < end { usleep(10_000) }
    }

    /// Admission decided: an Admitted condition True, or False with a reason (a queue position
    /// or why not).
    static func decision(_ w: Value) -> (decided: Bool, admitted: Bool) {
        guard let conds = w["status"]?["conditions"]?.arrayValue else { return (false, false) }
        for c in conds where c["type"]?.stringValue == ConditionType.admitted {
            if c["status"]?.stringValue == "True" { return (true, true) }
            if !(c["reason"]?.stringValue ?? "").isEmpty { return (true, false) }
        }
        return (w["status"]?["queuePosition"]?.intValue != nil, false)
    }

    static func wait(_ timeout: Double, _ cond: () -> Bool) -> Bool {
        let end = monotonicSeconds() + timeout
        while monotonicSeconds() < end {
            if cond() { return true }
            usleep(20_000)
        }
        return cond()
    }

    // MARK: 1. Admission throughput

    /// A new, empty in-process API server and a client of it; nil (said why) when it cannot start.
    static func freshServer(_ c: Config, say: (String) -> Void) -> (TestAPIServer, KubeClient)? {
        do {
            let server = try TestAPIServer()
            return (server, try KubeClient(config: KubeConfig(server: server.baseURL), qps: c.qps, burst: Int(c.qps)))
        } catch {
            say("kube: cannot start the test API server: \(error)")
            return nil
        }
    }

    static func admission(_ c: Config, runReplicas: Bool, say: (String) -> Void) {
        guard let (server, client) = freshServer(c, say: say) else { return }
        defer { server.stop() }
        populate(client, nodes: c.nodes, queues: c.queues, say: say)
        let controller = startController(client, runReplicas: runReplicas)
        defer { stopController(controller) }
        guard wait(120, { controller.active.load(ordering: .relaxed) }) else { say("kube: controller not active within 120 s"); return }
        if runReplicas { server.runKubelet(autoRun: true, exitCode: nil) }
        server.resetRequestLog()
        let label = runReplicas ? "admission + Pods" : "admission only (runReplicas = false)"
        let r = createAndWait(c.workloads, threads: c.createThreads, baseURL: server.baseURL, qps: c.qps, queues: c.queues, timeout: 900) {
            server.objects(GroupVersionResource.workloads.path())
        }
        let counts = server.requestCounts
        let pods = server.objects(GroupVersionResource.pods.path()).count
        say("kube 1 [\(label)]: \(r.created) Workloads created by \(c.createThreads) client threads in \(fmt(r.createSeconds)) s (\(fmt(Double(r.created) / max(r.createSeconds, 1e-9), 0)) creates/s); "
            + "all \(r.decided) decided \(fmt(r.seconds)) s after the first create: \(fmt(Double(r.decided) / max(r.seconds, 1e-9), 0)) workloads/s "
            + "(\(r.admitted) admitted, \(r.decided - r.admitted) pending\(runReplicas ? ", \(pods) Pods" : ""))")
        say("    requests to the server during the run (creates included): " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            + "; bench process CPU \(fmt(cpuSeconds(getpid()), 1)) s")
        if r.decided < r.created { say("    only \(r.decided) of \(r.created) decided within the time limit") }
    }

    struct CreateResult { var created = 0, decided = 0, admitted = 0; var createSeconds = 0.0, seconds = 0.0 }

    /// Creates `n` Workloads from `threads` threads (each its own client), polling `list` for
    /// the decisions; the clock starts at the first create.
    static func createAndWait(_ n: Int, threads: Int, baseURL: String, kubeconfig: KubeConfig? = nil, qps: Double, queues: Int, timeout: Double,
                              list: @escaping () -> [Value]) -> CreateResult {
        var r = CreateResult()
        let clients = (0..<max(1, threads)).compactMap { _ in try? KubeClient(config: kubeconfig ?? KubeConfig(server: baseURL), qps: qps, burst: Int(qps)) }
        let created = Counter(), next = Counter(), done = Counter()
        let failures = Locked<[String]>([])
        let t0 = monotonicSeconds()
        let createEnd = Locked<Double>(0)
        for cl in clients {
            Thread {
                while true {
                    let i = next.next()
                    if i >= n { break }
                    do throws(KubeError) {
                        _ = try cl.create(GroupVersionResource.workloads.path(namespace: "team-\(i % 20)"), workloadObject(i, queues: queues, gpus: gpusOf(i)))
                        _ = created.increment()
                    } catch {
                        failures.with { if $0.count < 3 { $0.append("\(error)") } }
                    }
                }
                if done.increment() == clients.count { createEnd.with { $0 = monotonicSeconds() } }
            }.start()
        }
        var last = 0.0
        while monotonicSeconds() - t0 < timeout {
            let finishedCreating = done.current == clients.count
            let items = list()
            var d = 0, a = 0
            for w in items {
                let x = decision(w)
                if x.decided { d += 1 }
                if x.admitted { a += 1 }
            }
            let now = monotonicSeconds()
            if d > r.decided { last = now }
            r.decided = d; r.admitted = a
            if finishedCreating && d >= created.current { break }
            usleep(100_000)
        }
        r.created = created.current
        r.createSeconds = createEnd.with { $0 } - t0
        r.seconds = (last > 0 ? last : monotonicSeconds()) - t0
        for f in failures.with({ $0 }) { FileHandle.standardError.write("create failed: \(f)\n".data(using: .utf8)!) }
        return r
    }

    // MARK: 2. Requests per workload

    /// "VERB resource[/sub]" of one logged request ("METHOD target"); LIST and WATCH for
    /// collection GETs.
    static func category(_ line: String) -> String {
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return line }
        var verb = parts[0]
        let target = parts[1]
        let path = String(target.split(separator: "?", maxSplits: 1).first ?? "")
        let query = target.contains("?") ? String(target.split(separator: "?", maxSplits: 1).last ?? "") : ""
        var segs = path.split(separator: "/").map(String.init)
        if segs.first == "api" { segs.removeFirst(min(2, segs.count)) } else if segs.first == "apis" { segs.removeFirst(min(3, segs.count)) }
        if segs.first == "namespaces", segs.count >= 3 { segs.removeFirst(2) }
        let resource = segs.first ?? path
        let isCollection = segs.count == 1
        let sub = segs.count >= 3 ? "/" + segs[2] : ""
        if verb == "GET" && isCollection { verb = query.contains("watch=true") || query.contains("watch=1") ? "WATCH" : "LIST" }
        var what = resource + sub
        if verb == "PATCH" && resource == "workloads" && sub.isEmpty { what += " (finalizer)" }
        return verb + " " + what
    }

    static func requestsPerWorkload(_ c: Config, say: (String) -> Void) {
        let singles = c.requestWorkloads, pairs = max(0, c.requestWorkloads / 10)
        let total = singles + pairs
        guard let (server, client) = freshServer(c, say: say) else { return }
        defer { server.stop() }
        let gpus = singles + 2 * pairs
        let nodes = (gpus + 7) / 8 + 2
        populate(client, nodes: nodes, queues: 1, deserved: nodes * 8, say: say)
        server.runKubelet(autoRun: true, exitCode: 0)
        server.kubeletRunSeconds = 0.2
        let controller = startController(client, runReplicas: true)
        defer { stopController(controller) }
        guard wait(60, { controller.active.load(ordering: .relaxed) }) else { say("kube: controller not active within 60 s"); return }
        usleep(500_000)
        server.resetRequestLog()
        let t0 = monotonicSeconds()
        parallel(c.createThreads, total) { i in
            let v = i < singles ? workloadObject(i, queues: 1, gpus: 1, prefix: "one") : workloadObject(i, queues: 1, gpus: 1, replicas: 2, prefix: "two")
            _ = try? client.create(GroupVersionResource.workloads.path(namespace: "team-\(i % 20)"), v)
        }
        let allDone = wait(180) {
            server.objects(GroupVersionResource.workloads.path()).filter { $0["status"]?["phase"]?.stringValue == "Succeeded" }.count >= total
        }
        let dt = monotonicSeconds() - t0
        let atSucceeded = server.requestLog
        // What follows Succeeded (the last status and events) settles within a few seconds.
        var settled = atSucceeded
        _ = wait(10) {
            usleep(1_000_000)
            let now = server.requestLog
            defer { settled = now }
            return now.count == settled.count
        }
        func breakdown(_ log: [String]) -> [(String, Int)] {
            var m: [String: Int] = [:]
            for l in log {
                let k = category(l)
                if k == "POST workloads" { continue }   // the bench's creates
                m[k, default: 0] += 1
            }
            return m.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
        }
        let b1 = breakdown(atSucceeded), b2 = breakdown(settled)
        let t1 = b1.reduce(0) { $0 + $1.1 }, t2 = b2.reduce(0) { $0 + $1.1 }
        say("kube 2: \(total) workloads (\(singles) x 1 replica, \(pairs) x 2 replicas, 1 GPU each) created -> \(allDone ? "all" : "NOT all") Succeeded in \(fmt(dt, 1)) s; "
            + "controller requests per workload: \(fmt(Double(t1) / Double(total))) at the last Succeeded, \(fmt(Double(t2) / Double(total))) after settling (\(t2) requests)")
        for (k, n) in b2 {
            say("    " + k.padding(toLength: 36, withPad: " ", startingAt: 0) + String(n).leftPad(7) + "  " + fmt(Double(n) / Double(total)).leftPad(6) + " per workload")
        }
        var reasons: [String: Int] = [:]
        for e in server.objects(GroupVersionResource.events.path()) {
            reasons["\(e["involvedObject"]?["kind"]?.stringValue ?? "?")/\(e["reason"]?.stringValue ?? "?")", default: 0] += 1
        }
        say("    Events by object kind/reason: " + reasons.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    // MARK: 3. Leader failover

    static func failover(_ c: Config, say: (String) -> Void) {
        let server: TestAPIServer
        let client: KubeClient, client2: KubeClient
        do {
            server = try TestAPIServer()
            client = try KubeClient(config: KubeConfig(server: server.baseURL), qps: c.qps, burst: Int(c.qps))
            client2 = try KubeClient(config: KubeConfig(server: server.baseURL), qps: c.qps, burst: Int(c.qps))
        } catch { say("kube: cannot start the test API server: \(error)"); return }
        defer { server.stop() }
        populate(client, nodes: 4, queues: 1, deserved: 32, say: say)
        let leader = startController(client, runReplicas: true, leaderElect: true, identity: "one", lease: c.leaseSeconds)
        guard wait(60, { leader.active.load(ordering: .relaxed) }) else { say("kube 3: the first controller did not lead within 60 s"); stopController(leader); return }
        let standby = startController(client2, runReplicas: true, leaderElect: true, identity: "two", lease: c.leaseSeconds)
        defer { stopController(standby) }
        guard wait(60, { standby.ready }) else { say("kube 3: the standby did not sync within 60 s"); return }
        // Let the leader renew a few times so the lease is fresh, as in a steady state.
        usleep(UInt32(min(3, c.leaseSeconds / 3) * 1_000_000))
        let t0 = monotonicSeconds()
        leader.abandon()
        _ = try? client2.create(GroupVersionResource.workloads.path(namespace: "team-0"), workloadObject(0, queues: 1, gpus: 1, prefix: "after-failover"))
        var activeAt: Double?
        var admittedAt: Double?
        _ = wait(c.leaseSeconds * 4 + 30) {
            if activeAt == nil && standby.active.load(ordering: .relaxed) { activeAt = monotonicSeconds() }
            if admittedAt == nil, let w = server.object(GroupVersionResource.workloads.path(namespace: "team-0", name: "after-failover-0")), decision(w).admitted {
                admittedAt = monotonicSeconds()
            }
            return activeAt != nil && admittedAt != nil
        }
        stopController(leader)
        say("kube 3: leader abandoned (lease \(fmt(c.leaseSeconds, 1)) s, renew deadline \(fmt(c.leaseSeconds * 2 / 3, 1)) s, retry \(fmt(max(0.2, c.leaseSeconds / 7.5), 1)) s): "
            + "standby active after \(activeAt.map { fmt($0 - t0) } ?? "never") s, the Workload created then admitted after \(admittedAt.map { fmt($0 - t0) } ?? "never") s")
    }

    // MARK: 4. RSS of the controller process

    static func controllerRSS(_ c: Config, say: (String) -> Void) {
        let n = c.workloads
        guard let (server, client) = freshServer(c, say: say) else { return }
        defer { server.stop() }
        // Every workload admitted (1 GPU each), so that every one has a Pod.
        let nodes = max(c.nodes, (n + 7) / 8 + 10)
        populate(client, nodes: nodes, queues: c.queues, deserved: (nodes * 8) / max(1, c.queues), say: say)
        parallel(c.createThreads, n) { i in
            _ = try? client.create(GroupVersionResource.workloads.path(namespace: "team-\(i % 20)"), workloadObject(i, queues: c.queues, gpus: 1))
        }
        server.runKubelet(autoRun: true, exitCode: nil)
        try? FileManager.default.createDirectory(atPath: c.dir, withIntermediateDirectories: true)
        let kubeconfig = c.dir + "/kubeconfig"
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: bench
              cluster: {server: "\(server.baseURL)"}
            users:
            - name: bench
              user: {}
            contexts:
            - name: bench
              context: {cluster: bench, user: bench}
            current-context: bench

            """
        try? text.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        let logPath = c.dir + "/gantry-kube.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: c.gantry)
        p.arguments = ["run", "--kube", "--kubeconfig", kubeconfig, "--runtime", "local", "--kube-qps", String(Int(c.qps)), "--kube-burst", String(Int(c.qps))]
        p.standardError = FileHandle(forWritingAtPath: logPath)
        p.standardOutput = p.standardError
        let t0 = monotonicSeconds()
        do { try p.run() } catch { say("kube 4: cannot start \(c.gantry): \(error)"); return }
        defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }
        var running = 0, admitted = 0
        let ok = wait(900) {
            usleep(400_000)
            guard p.isRunning else { return true }
            running = server.objects(GroupVersionResource.pods.path()).filter { $0["status"]?["phase"]?.stringValue == "Running" }.count
            admitted = server.objects(GroupVersionResource.workloads.path()).filter { decision($0).admitted }.count
            return running >= n && admitted >= n
        }
        let dt = monotonicSeconds() - t0
        guard p.isRunning else {
            say("kube 4: gantry exited (\(p.terminationStatus)); log:\n" + ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").suffix(2000))
            return
        }
        // Let the statuses of the running workloads settle before reading the memory.
        usleep(3_000_000)
        let (hwm, rss) = memory(p.processIdentifier)
        say("kube 4: gantry run --kube (separate process): \(admitted) Workloads admitted, \(running) Pods Running\(ok ? "" : " (time limit reached)") \(fmt(dt, 1)) s after start; "
            + "VmHWM \(fmt(Double(hwm) / 1024, 0)) MB, VmRSS \(fmt(Double(rss) / 1024, 0)) MB (\(fmt(Double(rss) * 1024 / Double(max(1, n)), 0)) bytes per workload with its Pod); process CPU \(fmt(cpuSeconds(p.processIdentifier), 1)) s")
    }

    static func memory(_ pid: Int32) -> (hwm: Int, rss: Int) {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        var hwm = 0, rss = 0
        for line in s.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 2 else { continue }
            if f[0] == "VmHWM:" { hwm = Int(f[1]) ?? 0 }
            if f[0] == "VmRSS:" { rss = Int(f[1]) ?? 0 }
        }
        return (hwm, rss)
    }

    // MARK: Real API server

    /// Figure 1 (admission only) through a real API server; with `preCreate`, the Workloads
    /// are created before the controller starts and the clock runs from its start (the
    /// controller's own rate, without the creates competing for the API server).
    static func realServer(_ c: Config, kubeconfig: String, preCreate: Bool = false, say: (String) -> Void) {
        let config: KubeConfig
        let client: KubeClient
        do {
            config = try KubeConfig.resolve(kubeconfig: kubeconfig, context: nil, environment: ProcessInfo.processInfo.environment)
            client = try KubeClient(config: config, qps: c.qps, burst: Int(c.qps))
        } catch { say("kube real: \(error)"); return }
        if let crds = c.crds, FileManager.default.fileExists(atPath: crds) {
            let k = Process()
            k.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            let kustomized = FileManager.default.fileExists(atPath: crds + "/kustomization.yaml")
            k.arguments = ["kubectl", "--kubeconfig", kubeconfig, "apply", kustomized ? "-k" : "-f", crds]
            do { try k.run(); k.waitUntilExit() } catch { say("kube real: kubectl: \(error)") }
            say("kube real: applied the CRDs of \(crds) (kubectl exit \(k.terminationStatus))")
        }
        guard wait(60, { (try? client.list(GroupVersionResource.workloads.path()).items) != nil && (try? client.list(GroupVersionResource.queues.path()).items) != nil }) else {
            say("kube real: the gantry.dev resources are not served (CRDs not applied?)"); return
        }
        populate(client, nodes: c.nodes, queues: c.queues, namespaces: true, say: say)
        if preCreate {
            let t0 = monotonicSeconds()
            parallel(c.createThreads, c.serverWorkloads) { i in
                _ = try? client.create(GroupVersionResource.workloads.path(namespace: "team-\(i % 20)"), workloadObject(i, queues: c.queues, gpus: gpusOf(i), prefix: "pre"))
            }
            let created = monotonicSeconds() - t0
            let lister = try? KubeClient(config: config, qps: 100, burst: 100)
            let s0 = monotonicSeconds()
            guard let own = try? KubeClient(config: config, qps: c.qps, burst: Int(c.qps)) else { return }
            let controller = startController(own, runReplicas: false)
            defer { stopController(controller) }
            var decided = 0, admitted = 0, activeAt = 0.0
            _ = wait(600) {
                usleep(200_000)
                if activeAt == 0 && controller.active.load(ordering: .relaxed) { activeAt = monotonicSeconds() - s0 }
                let items = (try? lister?.list(GroupVersionResource.workloads.path()).items) ?? []
                decided = items.filter { decision($0).decided }.count
                admitted = items.filter { decision($0).admitted }.count
                return decided >= c.serverWorkloads
            }
            let dt = monotonicSeconds() - s0
            say("kube real API server, pre-created: \(c.serverWorkloads) Workloads created in \(fmt(created)) s before the controller started; controller active after \(fmt(activeAt)) s, "
                + "\(decided) with a decision stored \(fmt(dt)) s after its start: \(fmt(Double(decided) / max(dt, 1e-9), 0)) workloads/s (\(admitted) admitted)")
            say("    controller requests: " + own.requestCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            return
        }
        guard let own = try? KubeClient(config: config, qps: c.qps, burst: Int(c.qps)) else { return }
        let controller = startController(own, runReplicas: false)
        defer { stopController(controller) }
        guard wait(120, { controller.active.load(ordering: .relaxed) }) else { say("kube real: controller not active within 120 s"); return }
        let lister = try? KubeClient(config: config, qps: 100, burst: 100)
        let r = createAndWait(c.serverWorkloads, threads: c.createThreads, baseURL: config.server, kubeconfig: config, qps: c.qps, queues: c.queues, timeout: 900) {
            (try? lister?.list(GroupVersionResource.workloads.path()).items) ?? []
        }
        say("kube real API server (\(config.server)): \(r.created) Workloads created by \(c.createThreads) threads in \(fmt(r.createSeconds)) s (\(fmt(Double(r.created) / max(r.createSeconds, 1e-9), 0)) creates/s); "
            + "all \(r.decided) decided \(fmt(r.seconds)) s after the first create: \(fmt(Double(r.decided) / max(r.seconds, 1e-9), 0)) workloads/s (\(r.admitted) admitted)")
        say("    controller requests: " + own.requestCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
