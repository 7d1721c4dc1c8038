import Testing
import Foundation
import GantryAPI
import YAMLCodec
import HTTPServer
@testable import GantryServer

/// The dashboard's static files, without a browser.
@Suite(.timeLimit(.minutes(1)))
struct DashboardFileTests {
    func get(_ path: String, headers: [String: String] = [:]) -> HTTPResponse {
        var router = Router()
        Dashboard.register(into: &router)
        return router.handle(HTTPRequest(method: "GET", path: path, headers: headers))
    }

    @Test func servesThePageScriptAndStyles() {
        for (path, type, needle) in [("/", "text/html; charset=utf-8", "<script src=\"/ui/app.js\">"),
                                     ("/ui/app.js", "text/javascript; charset=utf-8", "function workloadPage("),
                                     ("/ui/app.css", "text/css; charset=utf-8", ".quota-line")] {
            let r = get(path)
            #expect(r.status == 200, "\(path)")
            #expect(r.header("Content-Type") == type, "\(path)")
            #expect(r.header("Cache-Control") == "no-cache", "\(path)")
            #expect(r.header("Content-Security-Policy")?.contains("script-src 'self'") == true)
            guard case .bytes(let b) = r.body else { Issue.record("\(path): not a byte body"); continue }
            #expect(String(decoding: b, as: UTF8.self).contains(needle), "\(path)")
        }
        #expect(get("/ui/other.js").status == 404)
        #expect(get("/ui/").status == 404)
    }

    @Test func answersNotModifiedForTheSameETag() throws {
        let first = get("/ui/app.js")
        let tag = try #require(first.header("ETag"))
        let again = get("/ui/app.js", headers: ["if-none-match": tag])
        #expect(again.status == 304)
        #expect(get("/ui/app.js", headers: ["if-none-match": "\"other\""]).status == 200)
        #expect(get("/ui/app.css").header("ETag") != tag)
    }

    /// Data reaches the DOM only as text: the script never parses markup, and loads nothing
    /// from another origin.
    @Test func scriptNeverInsertsMarkupOrLoadsOtherOrigins() {
        let js = DashboardScript.source
        for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            #expect(!js.contains(banned), "app.js uses \(banned)")
        }
        let all = js + DashboardPage.html + DashboardStyles.css
        let urls = all.components(separatedBy: "http").dropFirst().map { String($0.prefix(30)) }
        #expect(urls.allSatisfy { $0.hasPrefix("://www.w3.org/2000/svg") }, "external URLs: \(urls)")
    }

    /// The script is valid JavaScript (when Node.js is installed to check it).
    @Test(.enabled(if: Browser.executable(["/usr/bin/node", "/usr/bin/nodejs", "/usr/local/bin/node"]) != nil,
                   "Node.js checks the script's syntax; skipped where it is not installed"))
    func scriptParses() throws {
        let dir = try makeTemporaryDirectory("gantry-dash-")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/app.js"
        try DashboardScript.source.write(toFile: file, atomically: true, encoding: .utf8)
        let node = try #require(Browser.executable(["/usr/bin/node", "/usr/bin/nodejs", "/usr/local/bin/node"]))
        let run = try Browser.run(node, ["--check", file], outputTo: dir + "/out.txt", timeout: 30)
        #expect(run == 0, "node --check: \((try? String(contentsOfFile: dir + "/out.txt", encoding: .utf8)) ?? "")")
    }
}

/// The dashboard in Debian's headless Chromium against a real API server over a seeded
/// in-memory backend: what the queues page and a workload page show once their scripts ran.
/// Skipped when chromium is not installed (CI without it still passes).
@Suite(.timeLimit(.minutes(5)), .serialized)
struct DashboardBrowserTests {
    static let chromium = Browser.executable(["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"])

    @Test(.enabled(if: chromium != nil, "needs Debian's chromium (apt-get install chromium) to run the dashboard headless"))
    func queuesAndWorkloadPagesShowTheBackend() throws {
        let chromium = try #require(Self.chromium)
        let fixture = try DashboardFixture()
        defer { fixture.server.stop() }
        let dir = try makeTemporaryDirectory("gantry-dash-")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let browser = Browser(chromium: chromium, dir: dir)
        let base = "http://127.0.0.1:\(fixture.server.port)/"

        // Queues: the tree, quota numbers, the token from the URL accepted (whoami shown).
        let queues = try browser.dumpDOM(base + "#/queues?token=view-token",
                                         until: ["data-queue=\"research\"", "alice (viewer"])
        for name in ["data-queue=\"ml\"", "data-queue=\"research\"", "data-queue=\"prod\""] {
            expectShows(queues, name, "queue row \(name)")
        }
        expectShows(queues, "12 / 16", "research: allocated / deserved GPUs")
        expectShows(queues, "(+2 borrowed)", "research: borrowed GPUs")
        expectShows(queues, "cap 24", "research: capability")
        expectShows(queues, "tree-pad", "children are indented under their parent")
        #expect(!queues.contains("token=view-token"), "the token is removed from the address")

        // A workload: replicas, an event reason, the log tail (escaped), charts, read-only buttons.
        let page = try browser.dumpDOM(base + "#/workloads/team-a/llama-7b?token=view-token",
                                       until: ["llama-7b-worker-1", "CheckpointSaved", "step 99 loss", "class=\"line\""])
        expectShows(page, "llama-7b-worker-0", "replica row of rank 0")
        expectShows(page, "llama-7b-worker-1", "replica row of rank 1")
        expectShows(page, "node-a", "replica node")
        expectShows(page, "CheckpointSaved", "event reason")
        expectShows(page, "step 99 loss 0.43", "log text")
        expectShows(page, "&lt;b&gt;not markup&lt;/b&gt;", "log text, escaped")
        #expect(!page.contains("<b>not markup</b>"), "log text is never parsed as markup")
        expectShows(page, "GPU utilisation", "GPU chart")
        expectShows(page, "<path class=\"line\"", "a chart line")
        expectShows(page, ">loss<", "training metric chart")
        #expect(page.range(of: #"<button[^>]*disabled[^>]*>Stop</button>"#, options: .regularExpression) != nil, "viewer: Stop disabled")
        expectShows(page, "Your role (viewer) can only read", "the disabled buttons say why")

        // The workloads list with a phase filter (the list API's parameter), and the nodes' GPUs.
        let running = try browser.dumpDOM(base + "#/workloads?phase=Running&token=view-token", until: ["1–1 of 1"])
        expectShows(running, ">llama-7b</a>", "the running workload")
        #expect(!running.contains(">sd-xl</a>") && !running.contains(">bert-base</a>"), "workloads in other phases are filtered out")
        let nodes = try browser.dumpDOM(base + "#/nodes?token=view-token", until: ["data-node=\"node-b\""])
        expectShows(nodes, "title=\"GPU 5: team-a/llama-7b\"", "a GPU cell of node-a held by llama-7b")
        expectShows(nodes, "title=\"GPU 7: free\"", "a free GPU cell")

        // Degraded: no token at all (the daemon has a tokens file) asks for one; a missing workload says so.
        let denied = try browser.dumpDOM(base + "#/queues", until: ["Sign-in needed"])
        expectShows(denied, "Sign-in needed", "")
        let foreign = try browser.dumpDOM(base + "#/workloads/team-b/sd-xl?token=edit-token", until: ["Not allowed"])
        expectShows(foreign, "Not allowed", "403: an editor of team-a looking at team-b")
        expectShows(foreign, "may not act in namespace team-b", "the API's reason")
        let editor = try browser.dumpDOM(base + "#/workloads/team-a/llama-7b?token=edit-token", until: ["bob (editor", "llama-7b-worker-0", ">Stop</button>"])
        #expect(editor.range(of: #"<button type="button" class="secondary">Stop</button>"#) != nil, "an editor of team-a may stop it")

        let missing = try browser.dumpDOM(base + "#/workloads/team-a/nope?token=view-token", until: ["Not found"])
        expectShows(missing, "There is no workload team-a/nope", "")

        // The screenshot the README shows.
        let shot = dir + "/dashboard.png"
        try browser.screenshot(base + "#/workloads/team-a/llama-7b?token=view-token", to: shot)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "a PNG screenshot")
        if let out = ProcessInfo.processInfo.environment["GANTRY_SCREENSHOT_DIR"], !out.isEmpty {
            try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: out + "/dashboard.png")
            try FileManager.default.copyItem(atPath: shot, toPath: out + "/dashboard.png")
        }
    }
}

/// Records an issue naming `text` and `what` (not the whole DOM) when `dom` lacks `text`.
func expectShows(_ dom: String, _ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    if !dom.contains(text) {
        Issue.record("the page does not show \(text.debugDescription) (\(what)); DOM: \(dom.count) characters", sourceLocation: sourceLocation)
    }
}

/// A seeded in-memory backend behind the real API server and the dashboard, on a free port.
struct DashboardFixture {
    let backend: MemoryBackend
    let server: HTTPServer

    init() throws {
        let now = Date().timeIntervalSince1970
        let yaml = """
        apiVersion: gantry.dev/v1alpha1
        kind: Queue
        metadata: {name: ml}
        spec: {deserved: {gpu: 32, cpu: 512, memory: 4Ti}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Queue
        metadata: {name: research}
        spec: {parent: ml, deserved: {gpu: 16, cpu: 256}, capability: {gpu: 24}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Queue
        metadata: {name: prod}
        spec: {parent: ml, deserved: {gpu: 16}, guarantee: {gpu: 8}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Node
        metadata: {name: node-a}
        spec: {resourcePool: pool-a, capacity: {gpu: 8, cpu: 128, memory: 1Ti}, gpuType: H100}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Node
        metadata: {name: node-b}
        spec: {resourcePool: pool-a, capacity: {gpu: 8, cpu: 128, memory: 1Ti}, gpuType: H100}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata: {name: llama-7b, namespace: team-a}
        spec: {type: PyTorchJob, queue: research, priority: high, replicas: 2, command: python train.py, resources: {gpu: 6}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata: {name: bert-base, namespace: team-a}
        spec: {type: Job, queue: prod, replicas: 1, command: python eval.py, resources: {gpu: 2}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata: {name: sd-xl, namespace: team-b}
        spec: {type: PyTorchJob, queue: research, replicas: 2, command: python sd.py, resources: {gpu: 8}}
        """
        let file = ManifestFile.decode(path: "dashboard.yaml", bytes: Array(yaml.utf8))
        guard file.errors.isEmpty, file.fatal == nil, file.objects.count == 8 else {
            struct BadFixture: Error { let text: String }
            throw BadFixture(text: "\(file.errors) \(String(describing: file.fatal))")
        }
        let t = { (ago: Double) in Timestamp(secondsSince1970: now - ago) }
        func res(_ pairs: [String: Int64]) -> ResourceList { ResourceList(pairs.mapValues { Quantity(units: $0) }) }
        var objects: [APIObject] = []
        for o in file.objects {
            var status: ObjectStatus?
            switch (o.key.kind, o.meta.name) {
            case (.queue, "ml"):
                var q = QueueStatus(); q.allocated = res(["gpu": 14]); q.admitted = 2; q.running = 2; status = .queue(q)
            case (.queue, "research"):
                var q = QueueStatus(); q.allocated = res(["gpu": 12, "cpu": 64]); q.borrowed = res(["gpu": 2])
                q.pending = 1; q.admitted = 1; q.running = 1; status = .queue(q)
            case (.queue, "prod"):
                var q = QueueStatus(); q.allocated = res(["gpu": 2]); q.admitted = 1; status = .queue(q)
            case (.node, _):
                var n = NodeStatus(); n.capacity = res(["gpu": 8, "cpu": 128]); n.allocated = res(["gpu": o.meta.name == "node-a" ? 8 : 6]); status = .node(n)
            case (.workload, "llama-7b"):
                var w = WorkloadStatus()
                w.phase = .running; w.creationTime = t(3600); w.startTime = t(3000); w.admissionQueue = "research"
                w.admission = [ReplicaAssignment(rank: 0, node: "node-a", gpus: Array(0..<6)), ReplicaAssignment(rank: 1, node: "node-b", gpus: Array(0..<6))]
                w.replicas = [ReplicaStatus(name: "llama-7b-worker-0", rank: 0, node: "node-a", phase: "Running", gpus: Array(0..<6), pid: 4242, startTime: t(3000), restarts: 0),
                              ReplicaStatus(name: "llama-7b-worker-1", rank: 1, node: "node-b", phase: "Running", gpus: Array(0..<6), pid: 4243, startTime: t(3000), restarts: 1)]
                w.conditions = [Condition(type: "Admitted", status: "True", reason: "QuotaReserved", message: "admitted by queue research", lastTransitionTime: t(3100), observedGeneration: 1),
                                Condition(type: "Running", status: "True", reason: "AllReplicasRunning", message: "2 of 2 replicas running", lastTransitionTime: t(3000), observedGeneration: 1)]
                status = .workload(w)
            case (.workload, "bert-base"):
                var w = WorkloadStatus()
                w.phase = .succeeded; w.creationTime = t(7200); w.startTime = t(7000); w.endTime = t(6000); w.admissionQueue = "prod"
                w.replicas = [ReplicaStatus(name: "bert-base-worker-0", rank: 0, node: "node-b", phase: "Succeeded", gpus: [6, 7], startTime: t(7000), exitCode: 0)]
                status = .workload(w)
            default:
                var w = WorkloadStatus()
                w.phase = .pending; w.creationTime = t(600); w.queuePosition = 0; w.message = "WaitingForQuota: needs 16 GPUs"
                status = .workload(w)
            }
            var o = o
            if let w = status?.workload {
                o.meta.creationTimestamp = w.creationTime
                o.meta.annotations[APIObject.submitterAnnotation] = o.meta.namespace == "team-a" ? "alice" : "carol"
            }
            objects.append(APIObject(object: o, status: status, owner: .manifest(file: "dashboard.yaml")))
        }
        let llama = ObjectKey(.workload, namespace: "team-a", name: "llama-7b")
        let events = [
            EventRecord(type: "Normal", reason: "Admitted", message: "admitted by queue research", kind: "Workload", namespace: "team-a", name: "llama-7b", count: 1, firstTimestamp: now - 3100, lastTimestamp: now - 3100),
            EventRecord(type: "Normal", reason: "CheckpointSaved", message: "checkpoint step 90 written", kind: "Workload", namespace: "team-a", name: "llama-7b", count: 3, firstTimestamp: now - 900, lastTimestamp: now - 60),
        ]
        var log = ""
        for i in 0..<100 { log += "step \(i) loss \(String(format: "%.2f", 5.0 - Double(i) * 0.0462))\n" }
        log += "<b>not markup</b>\n"
        var metrics: [MetricSeries] = []
        for (metric, base) in [("gpu_utilization_percent", 70.0), ("gpu_memory_used_mib", 60_000.0), ("gpu_power_watts", 500.0)] {
            for gpu in 0..<2 {
                let samples = (0..<60).map { i in MetricSeries.Sample(ts: now - 1800 + Double(i) * 30, value: base * (0.8 + 0.2 * sin(Double(i) / 6 + Double(gpu)))) }
                metrics.append(MetricSeries(name: "team-a/llama-7b/\(metric){gpu=\(gpu)}", samples: samples))
            }
        }
        for rank in 0..<2 {
            let samples = (0..<60).map { i in MetricSeries.Sample(ts: now - 1800 + Double(i) * 30, value: 5 * exp(-Double(i) / 20) + 0.05 * Double(rank)) }
            metrics.append(MetricSeries(name: "team-a/llama-7b/loss{rank=\(rank)}", samples: samples))
        }
        backend = MemoryBackend(objects: objects, events: events, logs: [MemoryBackend.LogKey(llama, rank: 0): log, MemoryBackend.LogKey(llama, rank: 1): "rank 1 here\n"],
                                metrics: metrics)
        let tokens = try TokenTable.parse("view-token alice viewer *\nedit-token bob editor team-a\n", file: "tokens")
        var router = Router()
        APIServer(backend: backend, tokens: tokens).register(into: &router)
        Dashboard.register(into: &router)
        server = try HTTPServer(address: "127.0.0.1:0", handler: router)
    }
}

/// Headless Chromium (or another program) run with a time limit, output to a file.
struct Browser {
    let chromium: String
    let dir: String

    static func executable(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `path args`, stdout and stderr to `outputTo`; kills it after `timeout` seconds.
    static func run(_ path: String, _ args: [String], outputTo: String, timeout: Double) throws -> Int32 {
        FileManager.default.createFile(atPath: outputTo, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outputTo))
        defer { try? out.close() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        if !poll(timeout: timeout, { !p.isRunning }) {
            p.terminate()
            _ = poll(timeout: 5) { !p.isRunning }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            return -1
        }
        p.waitUntilExit()
        return p.terminationStatus
    }

    func arguments(_ extra: [String], budget: Int) -> [String] {
        // A fresh profile per run: nothing (a stored token) carries over between pages.
        let profile = dir + "/profile-" + UUID().uuidString
        return ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                "--user-data-dir=" + profile, "--window-size=1366,900", "--virtual-time-budget=\(budget)"] + extra
    }

    /// The DOM after the page's scripts ran, tried a few times with a growing time budget
    /// until it holds every string of `until` (a slow machine may need more than one go).
    func dumpDOM(_ url: String, until: [String]) throws -> String {
        var dom = ""
        for attempt in 1...4 {
            let file = dir + "/dom-\(UUID().uuidString).html"
            _ = try Browser.run(chromium, arguments(["--dump-dom", url], budget: 5000 * attempt), outputTo: file, timeout: 90)
            dom = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if until.allSatisfy({ dom.contains($0) }) { return dom }
        }
        return dom
    }

    func screenshot(_ url: String, to path: String) throws {
        for attempt in 1...3 {
            _ = try Browser.run(chromium, arguments(["--screenshot=" + path, url], budget: 8000 * attempt), outputTo: dir + "/shot.txt", timeout: 90)
            if FileManager.default.fileExists(atPath: path) { return }
        }
    }
}

/// The dashboard of a running daemon (`gantry run --listen`) on the example manifests, with
/// real replicas: the queues page and a finished PyTorchJob's page as Chromium shows them.
@Suite(.timeLimit(.minutes(5)), .serialized)
struct DashboardDaemonBrowserTests {
    @Test(.enabled(if: DashboardBrowserTests.chromium != nil, "needs Debian's chromium (apt-get install chromium) to run the dashboard headless"))
    func theQueuesAndAWorkloadPageOfARunningDaemon() throws {
        let chromium = try #require(DashboardBrowserTests.chromium)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let base = try makeTemporaryDirectory("gantry-dash-daemon-")
        defer { removeTree(base) }
        try FileManager.default.copyItem(atPath: root + "/Manifests/examples", toPath: base + "/spec")
        try "dash-token dana viewer *\n".write(toFile: base + "/tokens", atomically: true, encoding: .utf8)
        let d = try DaemonUnderTest(spec: base + "/spec", state: base + "/state", logPath: base + "/daemon.log",
                                    extra: ["--listen", "127.0.0.1:0", "--tokens", base + "/tokens"])
        let port = d.apiPort()
        let p = try #require(port, "the daemon's API port")
        try #require(d.wait(30) { d.status(.workload, "llama-7b")?["phase"]?.stringValue == "Succeeded" }, "llama-7b ran")
        let browser = Browser(chromium: chromium, dir: base)
        let url = "http://127.0.0.1:\(p)/"
        let queues = try browser.dumpDOM(url + "#/queues?token=dash-token", until: ["data-queue=\"research\"", "dana (viewer"])
        for q in ["ml", "research", "production"] { expectShows(queues, "data-queue=\"\(q)\"", "queue \(q) of Manifests/examples") }
        expectShows(queues, "All ML teams", "the root queue's description")
        let page = try browser.dumpDOM(url + "#/workloads/team-a/llama-7b?token=dash-token",
                                       until: ["llama-7b-worker-1", "QuotaReserved", "rank=0 world_size=2"])
        expectShows(page, "llama-7b-worker-0", "replica row of rank 0")
        expectShows(page, "llama-7b-worker-1", "replica row of rank 1")
        expectShows(page, "Succeeded", "the phase")
        expectShows(page, "QuotaReserved", "the admission event")
        expectShows(page, "rank=0 world_size=2", "rank 0's log")
        expectShows(page, ">loss<", "the training metric chart from the gantry.metric lines")
        let shot = base + "/daemon-dashboard.png"
        try browser.screenshot(url + "#/workloads/team-a/llama-7b?token=dash-token", to: shot)
        #expect(FileManager.default.fileExists(atPath: shot), "a screenshot")
    }
}
