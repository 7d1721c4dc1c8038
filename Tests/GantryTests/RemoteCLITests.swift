import Foundation
import Testing
import Synchronization
import GantryAPI
import StateStore
import YAMLCodec
import Controllers
import HTTPServer
import GantryServer
@testable import GantryCLI

/// Gantry's HTTP API in-process (`APIServer` over a `MemoryBackend`, on a loopback port),
/// and the `gantry` binary run against it with `--server`.
final class RemoteAPIFixture: @unchecked Sendable {
    let backend: MemoryBackend
    let server: HTTPServer
    let url: String
    let dir: String

    /// `tokens`: a tokens file's text (nil: no tokens, everyone is an anonymous admin).
    init(_ backend: MemoryBackend = MemoryBackend(), tokens: String? = nil) throws {
        self.backend = backend
        var router = Router()
        let table = try tokens.map { try TokenTable.parse($0, file: "tokens") }
        APIServer(backend: backend, tokens: table).register(into: &router)
        server = try HTTPServer(address: "127.0.0.1:0", handler: router)
        url = "http://127.0.0.1:\(server.port)"
        dir = try makeTemporaryDirectory("gantry-remotecli-")
    }

    deinit {
        server.stop()
        removeTree(dir)
    }

    /// `gantry ARGS --server URL [--token-file F]`: exit status and output (stdout and stderr).
    func cli(_ args: [String], token: String? = nil, timeout: Double = 30) -> (Int32, String) {
        var extra = ["--server", url]
        if let token {
            let f = dir + "/token-" + UUID().uuidString
            FileManager.default.createFile(atPath: f, contents: Data((token + "\n").utf8))
            extra += ["--token-file", f]
        }
        return runCLI(args + extra, timeout: timeout)
    }

    func file(_ name: String, _ text: String) -> String {
        let p = dir + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    /// A MemoryBackend holding what a state directory holds: its objects (manifest-owned, with
    /// their statuses and sources) and events — the API a directory-mode daemon would serve.
    static func backend(fromState state: String) throws -> MemoryBackend {
        let reader = try StateReader(directory: state)
        var objects: [APIObject] = []
        for kind in Kind.allCases {
            for row in try reader.objects(kind: kind) {
                var decoder = ManifestDecoder(file: "stored", fieldValidation: .ignore)
                guard case .object(var obj, _) = decoder.decode(SourceNode(value: try JSON.parse(row.objectJSON)), index: 0) else {
                    Issue.record("stored \(row.key) does not decode"); continue
                }
                obj.meta.uid = row.uid
                obj.meta.generation = row.generation
                obj.meta.creationTimestamp = Timestamp(seconds: row.creationTime)
                obj.meta.annotations["gantry.dev/source"] = nil
                let colon = row.source.lastIndex(of: ":")
                let file = colon.map { String(row.source[..<$0]) } ?? row.source
                let line = colon.flatMap { Int(row.source[row.source.index(after: $0)...]) } ?? 0
                obj.source = SourceRef(file: file, line: line, index: 0)
                let status = try row.statusJSON.map { ObjectStatus.from(try JSON.parse($0), kind: kind) }
                objects.append(APIObject(object: obj, status: status, owner: .manifest(file: file)))
            }
        }
        let events = try reader.events().map {
            EventRecord(type: $0.type, reason: $0.reason, message: $0.message, kind: $0.kind, namespace: $0.namespace, name: $0.objName,
                        count: $0.count, firstTimestamp: $0.first, lastTimestamp: $0.last)
        }
        var metrics: [MetricSeries] = []
        for (series, _, _) in try reader.latestMetrics(prefix: "") {
            metrics.append(MetricSeries(name: series, samples: try reader.metricSeries(series).map { MetricSeries.Sample(ts: $0.ts, value: $0.value) }))
        }
        return MemoryBackend(objects: objects, events: events, metrics: metrics)
    }

    static func decode(_ yaml: String) throws -> ManifestObject {
        var decoder = ManifestDecoder(file: "test.yaml")
        guard let doc = try YAMLParser.parse(yaml).first?.root, case .object(let obj, _) = decoder.decode(doc, index: 0) else {
            throw UsageError("fixture does not decode")
        }
        return obj
    }

    /// A manifest-owned object with a status, as the directory-mode backend shows it.
    static func object(_ yaml: String, status: String? = nil, owner: Owner = .manifest(file: "/spec/w.yaml")) throws -> APIObject {
        var obj = try decode(yaml)
        obj.meta.uid = "uid-\(obj.meta.name)"
        obj.meta.generation = 1
        obj.meta.creationTimestamp = Timestamp(seconds: Int64(Date().timeIntervalSince1970) - 120)
        obj.source = SourceRef(file: "/spec/w.yaml", line: 1, index: 0)
        let st = try status.map { ObjectStatus.from(try JSON.parse($0), kind: obj.spec.kind) }
        return APIObject(object: obj, status: st, owner: owner)
    }
}

/// Ages (`5s`, `2m10s`, `3h`) vary between two runs a second apart: compared as AGE.
func withoutAges(_ s: String) -> String {
    s.replacingOccurrences(of: #"\b\d+[smhd](\d+[smh])?\b"#, with: "AGE", options: .regularExpression)
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct RemoteCLITests {
    // MARK: The same output as directory mode

    @Test func readCommandsThroughTheAPIPrintWhatDirectoryModePrints() throws {
        let d = try DaemonUnderTest(extra: ["--runtime", "none", "--local-gpus", "8"])
        d.write("queues.yaml", queueManifest)
        d.write("w.yaml", wl("train", priority: 5, gpu: 2) + "---\n" + wl("big", gpu: 16) + "---\n" + wl("small", priority: 1))
        try #require(d.wait {
            ["train", "big", "small"].allSatisfy { d.status(.workload, $0)?["observedGeneration"]?.intValue == 1 }
                && d.status(.queue, "research")?["admitted"] != nil
        }, "every workload and the queue reconciled")
        #expect(d.terminate() == 0)
        // GPU samples as the daemon files them (no GPUs here): an older run's and the newest.
        let store = try StateStore(directory: d.state)
        let now = Date().timeIntervalSince1970
        for (series, ago, value) in [("gpu_utilization_percent{gpu=0}", 900.0, 10.0), ("gpu_utilization_percent{gpu=0}", 4, 90), ("gpu_utilization_percent{gpu=1}", 4, 40),
                                     ("gpu_memory_used_mib{gpu=0}", 4, 1024), ("gpu_power_watts{gpu=1}", 4, 250), ("loss{rank=0}", 4, 0.5)] {
            store.enqueueSQL("INSERT OR IGNORE INTO metrics(series, ts, value) VALUES(?,?,?)", [.text("team-a/train/" + series), .double(now - ago), .double(value)])
        }
        try store.flush()
        store.close()
        let api = try RemoteAPIFixture(try RemoteAPIFixture.backend(fromState: d.state))
        let commands: [[String]] = [
            ["get", "workloads", "-A"], ["get", "workloads", "-n", "team-a", "-o", "wide"], ["get", "workloads", "-n", "team-a", "-o", "yaml"],
            ["get", "workload", "train", "-n", "team-a", "-o", "json"], ["get", "wl", "-n", "team-a", "--sort-by", "priority", "--limit", "2"],
            ["get", "workloads", "-n", "team-a", "--phase", "pending", "-o", "name"], ["get", "queues"], ["get", "queues", "-o", "yaml"],
            ["get", "nodes"], ["get", "resourcepools"], ["get", "workload", "nope", "-n", "team-a"],
            ["describe", "workload", "train", "-n", "team-a"], ["describe", "workload", "big", "-n", "team-a"],
            ["events", "--for", "workload/team-a/train"], ["top", "train", "-n", "team-a"], ["top", "-A"], ["top", "nope", "-n", "team-a"], ["events", "--for", "workload/team-a/train", "-o", "json", "--limit", "2"],
        ]
        for c in commands {
            let local = runCLI(c + ["--state-dir", d.state])
            let remote = api.cli(c)
            #expect(remote.0 == local.0, "\(c): exit \(remote.0) through the API, \(local.0) in directory mode: \(remote.1)")
            if c.contains("json") && c.first == "events" {
                // Events carry no names of their own in the API: compare everything else.
                func strip(_ s: String) throws -> Value {
                    let items = try JSON.parse(s)["items"]?.arrayValue ?? []
                    return .array(items.map { .object(($0.members ?? []).filter { $0.key != "metadata" }) })
                }
                #expect(try strip(remote.1) == strip(local.1), "\(c)")
                #expect(try strip(local.1).arrayValue?.isEmpty == false)
            } else {
                #expect(withoutAges(remote.1) == withoutAges(local.1), "\(c):\n--- API ---\n\(remote.1)\n--- directory ---\n\(local.1)")
            }
        }
        // The queue's page lists its workloads in admission order either way (its own events
        // are not served by the API: compare up to them).
        let local = runCLI(["describe", "queue", "research", "--state-dir", d.state]).1
        let remote = api.cli(["describe", "queue", "research"]).1
        func head(_ s: String) -> String { withoutAges(String(s[..<(s.range(of: "Events:")?.lowerBound ?? s.endIndex)])) }
        #expect(head(remote) == head(local))
        #expect(remote.contains("team-a/big"))
        // Without --for: the events of every workload, oldest first.
        let all = api.cli(["events"])
        #expect(all.0 == 0 && all.1.contains("workload/team-a/train") && all.1.contains("workload/team-a/small"), "\(all.1)")
        let queueEvents = api.cli(["events", "--for", "queue/research"])
        #expect(queueEvents.0 == 1 && queueEvents.1.contains("events of workloads only"), "\(queueEvents.1)")
        let top = api.cli(["top", "train", "-n", "team-a"]).1
        #expect(top.contains("65%") && top.contains("1024Mi") && top.contains("250W"), "\(top)")
    }

    @Test func theServerComesFromFlagsOrTheEnvironment() throws {
        func backend(_ argv: [String], _ env: [String: String]) throws -> Backend {
            var args = try Args(argv, boolFlags: CLI.boolFlags, aliases: CLI.aliases)
            return try CLI.backend(&args, stateDir: "s", namespaced: true, environment: env)
        }
        let tokenFile = try makeTemporaryDirectory("gantry-remotecli-tok-") + "/t"
        defer { removeTree((tokenFile as NSString).deletingLastPathComponent) }
        FileManager.default.createFile(atPath: tokenFile, contents: Data("# a comment\n  s3cret  \n".utf8))
        guard case .remote(let c) = try backend(["--server", "127.0.0.1:8080/", "--token-file", tokenFile], [:]) else { Issue.record("not remote"); return }
        #expect(c.base == "http://127.0.0.1:8080" && c.token == "s3cret")
        guard case .remote(let e) = try backend([], ["GANTRY_SERVER": "https://gantry.example", "GANTRY_TOKEN_FILE": tokenFile]) else { Issue.record("not remote"); return }
        #expect(e.base == "https://gantry.example" && e.token == "s3cret")
        // An explicit --state-dir wins over the environment.
        guard case .directory = try backend(["--state-dir", "x"], ["GANTRY_SERVER": "http://h"]) else { Issue.record("not directory"); return }
        #expect(throws: UsageError.self) { try backend(["--server", "http://h", "--kube"], [:]) }
        #expect(throws: UsageError.self) { try backend(["--server", "ftp://h"], [:]) }
        #expect(throws: UsageError.self) { try backend(["--server", "http://h", "--token-file", tokenFile + ".missing"], [:]) }
    }

    @Test func localStopAndResumeOfSeveralNamesOrASelector() throws {
        let d = try DaemonUnderTest(extra: ["--runtime", "none"])
        d.write("queues.yaml", queueManifest)
        let labelled = { (name: String) in wl(name).replacingOccurrences(of: "namespace: team-a}", with: "namespace: team-a, labels: {team: a}}") }
        d.write("w.yaml", labelled("a1") + "---\n" + labelled("a2") + "---\n" + wl("other"))
        try #require(d.wait { ["a1", "a2", "other"].allSatisfy { d.status(.workload, $0) != nil } }, "workloads stored")
        func phase(_ n: String) -> String? { d.status(.workload, n)?["phase"]?.stringValue }
        var r = runCLI(["stop", "-l", "team=a", "-n", "team-a", "--state-dir", d.state])
        #expect(r.0 == 0 && r.1.contains("workload team-a/a1 stopping") && r.1.contains("workload team-a/a2 stopping") && !r.1.contains("other"), "\(r.1)")
        try #require(d.wait { phase("a1") == "Stopped" && phase("a2") == "Stopped" }, "a1 and a2 stopped")
        #expect(phase("other") != "Stopped")
        r = runCLI(["resume", "a1", "a2", "ghost", "-n", "team-a", "--state-dir", d.state])
        #expect(r.0 == 1 && r.1.contains("\"ghost\" not found") && r.1.contains("workload team-a/a2 resumed"), "\(r.1)")
        try #require(d.wait { phase("a1") != "Stopped" && phase("a2") != "Stopped" }, "a1 and a2 resumed")
        r = runCLI(["stop", "-l", "team=nobody", "-n", "team-a", "--state-dir", d.state])
        #expect(r.0 == 0 && r.1.contains("No workloads in namespace team-a match -l team=nobody."), "\(r.1)")
        r = runCLI(["stop", "a1", "-l", "team=a", "--state-dir", d.state])
        #expect(r.0 == 2, "\(r.1)")
        _ = d.terminate()
    }

    // MARK: Writes

    @Test func createDeleteCloneThroughTheAPI() throws {
        let api = try RemoteAPIFixture()
        let manifest = api.file("objs.yaml", queueManifest + "---\n" + wl("train", priority: 3).replacingOccurrences(of: "command:", with: "image: busybox\n  command:")
                                + "---\n" + wl("eval").replacingOccurrences(of: "namespace: team-a", with: "namespace: team-b"))
        var r = api.cli(["create", "-f", manifest])
        #expect(r.0 == 0, "\(r.1)")
        #expect(r.1.contains("queue research created") && r.1.contains("workload team-a/train created") && r.1.contains("workload team-b/eval created"), "\(r.1)")
        // Seed 000's request shape, into -n's namespace.
        let seed = api.file("seed.json", #"{"displayName":"seed-job","groupVersionKind":{"kind":"PyTorchJob","version":"v1"},"image":"pytorch:2","entryPoint":"ZWNobyBoaQ==","resource":{"cpu":"4","gpu":"2","memory":"8Gi","replica":2},"priority":1}"#)
        r = api.cli(["create", "-f", seed, "-n", "team-a"])
        #expect(r.0 == 0, "\(r.1)")
        #expect(r.1.contains("workload team-a/"), "\(r.1)")
        r = api.cli(["get", "workloads", "-n", "team-a", "-o", "name"])
        #expect(r.1.contains("workload/train"), "\(r.1)")
        #expect(api.backend.list(.workload).count == 3)
        // Again: the API's 409 is printed, exit 1.
        r = api.cli(["create", "-f", manifest])
        #expect(r.0 == 1)
        #expect(r.1.contains("already exists"), "\(r.1)")
        // A document whose namespace contradicts -n is refused before any request.
        r = api.cli(["create", "-f", manifest, "-n", "team-c"])
        #expect(r.0 == 1 && r.1.contains("does not match -n team-c"), "\(r.1)")

        r = api.cli(["clone", "train", "--name", "train-2", "-n", "team-a"])
        #expect(r.0 == 0, "\(r.1)")
        #expect(r.1.contains("workload team-a/train-2 created (a clone of team-a/train)"), "\(r.1)")
        let clone = try #require(api.backend.get(ObjectKey(.workload, namespace: "team-a", name: "train-2")))
        #expect(clone.object.spec.workload?.priority == 3)

        r = api.cli(["delete", "workload", "train", "train-2", "-n", "team-a"])
        #expect(r.0 == 0, "\(r.1)")
        #expect(r.1.contains("workload team-a/train deleted") && r.1.contains("workload team-a/train-2 deleted"), "\(r.1)")
        #expect(api.backend.get(ObjectKey(.workload, namespace: "team-a", name: "train")) == nil)
        r = api.cli(["delete", "workload", "train", "-n", "team-a"])
        #expect(r.0 == 1 && r.1.contains("not found"), "\(r.1)")
    }

    @Test func listsFollowTheAPIsPagesToTheEnd() throws {
        let one = try RemoteAPIFixture.object(wl("w"))
        let objects = (0..<1003).map { i -> APIObject in
            var o = one
            o.object.meta.name = String(format: "w-%04d", i)
            return o
        }
        let api = try RemoteAPIFixture(MemoryBackend(objects: objects))
        let r = api.cli(["get", "workloads", "-n", "team-a", "-o", "name"])
        let names = r.1.split(separator: "\n")
        #expect(r.0 == 0 && names.count == 1003, "\(names.count) names")
        #expect(names.first == "workload/w-0000" && names.last == "workload/w-1002")
    }

    @Test func aManifestOwnedWorkloadIsNotDeletedAndTheErrorNamesItsFile() throws {
        let api = try RemoteAPIFixture(MemoryBackend(objects: [try RemoteAPIFixture.object(wl("mine"))]))
        let r = api.cli(["delete", "workload", "mine", "-n", "team-a"])
        #expect(r.0 == 1)
        #expect(r.1.contains("/spec/w.yaml"), "\(r.1)")
        #expect(api.backend.get(ObjectKey(.workload, namespace: "team-a", name: "mine")) != nil)
    }

    @Test func stopAndResumeSeveralByNameOrSelector() throws {
        let labelled = { (name: String) in wl(name).replacingOccurrences(of: "namespace: team-a}", with: "namespace: team-a, labels: {team: a}}") }
        let api = try RemoteAPIFixture(MemoryBackend(objects: [try RemoteAPIFixture.object(labelled("a1")), try RemoteAPIFixture.object(labelled("a2")),
                                                               try RemoteAPIFixture.object(wl("other"))]))
        func phase(_ n: String) -> String? { api.backend.get(ObjectKey(.workload, namespace: "team-a", name: n))?.status?.workload?.phase.rawValue }
        var r = api.cli(["stop", "a1", "-n", "team-a"])
        #expect(r.0 == 0 && r.1.contains("workload team-a/a1 stopping: spec.suspend=true set through the API"), "\(r.1)")
        #expect(phase("a1") == "Stopped")
        r = api.cli(["resume", "a1", "other", "-n", "team-a"])
        #expect(r.0 == 0, "\(r.1)")
        #expect(r.1.contains("workload team-a/a1 resumed") && r.1.contains("workload team-a/other resumed"), "\(r.1)")
        r = api.cli(["stop", "-l", "team=a", "-n", "team-a"])
        #expect(r.0 == 0, "\(r.1)")
        #expect(phase("a1") == "Stopped" && phase("a2") == "Stopped" && phase("other") != "Stopped")
        // One missing name: the others still stop, and the exit status says something failed.
        r = api.cli(["stop", "other", "ghost", "-n", "team-a"])
        #expect(r.0 == 1, "\(r.1)")
        #expect(r.1.contains("team-a/ghost") && phase("other") == "Stopped", "\(r.1)")
    }

    @Test func writeCommandsWithoutServerSayTheyNeedTheAPI() throws {
        let state = try makeTemporaryDirectory("gantry-remotecli-state-")
        defer { removeTree(state) }
        for c in [["create", "-f", "x.yaml"], ["delete", "workload", "a"], ["clone", "a", "--name", "b"]] {
            let r = runCLI(c + ["--state-dir", state])
            #expect(r.0 == 2, "\(c): \(r.1)")
            #expect(r.1.contains("needs the daemon's HTTP API: pass --server URL"), "\(c): \(r.1)")
        }
        let r = runCLI(["get", "workloads", "--token-file", "t"])
        #expect(r.0 == 2 && r.1.contains("--token-file goes with --server"), "\(r.1)")
    }

    // MARK: Auth and errors

    @Test func tokensAndTheAPIsErrorsAreReported() throws {
        let api = try RemoteAPIFixture(MemoryBackend(objects: [try RemoteAPIFixture.object(wl("w"))]), tokens: "view-tok alice viewer\nedit-tok bob editor team-b\n")
        var r = api.cli(["get", "workloads", "-n", "team-a"])
        #expect(r.0 == 1)
        #expect(r.1.contains("--token-file"), "\(r.1)")
        r = api.cli(["get", "workloads", "-n", "team-a"], token: "wrong")
        #expect(r.0 == 1 && r.1.contains("--token-file"), "\(r.1)")
        r = api.cli(["get", "workloads", "-n", "team-a", "-o", "name"], token: "view-tok")
        #expect(r.0 == 0 && r.1.contains("workload/w"), "\(r.1)")
        r = api.cli(["stop", "w", "-n", "team-a"], token: "view-tok")
        #expect(r.0 == 1)
        #expect(r.1.contains("does not allow this"), "\(r.1)")
        r = api.cli(["stop", "w", "-n", "team-a"], token: "edit-tok")
        #expect(r.0 == 1 && r.1.contains("does not allow this"), "\(r.1)")
        // Nobody listening.
        r = runCLI(["get", "workloads", "--server", "http://127.0.0.1:1"])
        #expect(r.0 == 1 && r.1.contains("cannot reach the Gantry API at http://127.0.0.1:1"), "\(r.1)")
    }

    // MARK: Logs, top

    @Test func logsTailSinceAndFollow() throws {
        let key = ObjectKey(.workload, namespace: "team-a", name: "w")
        let backend = MemoryBackend(objects: [try RemoteAPIFixture.object(wl("w"), status: #"{"phase":"Running"}"#)])
        backend.appendLog(key, rank: 0, "one\ntwo\nthree\n")
        let api = try RemoteAPIFixture(backend)
        var r = api.cli(["logs", "w", "-n", "team-a"])
        #expect(r.0 == 0 && r.1 == "one\ntwo\nthree\n", "\(r.1)")
        r = api.cli(["logs", "w", "-n", "team-a", "--tail", "1"])
        #expect(r.1 == "three\n", "\(r.1)")
        r = api.cli(["logs", "w", "-n", "team-a", "--since", "1h"])
        #expect(r.1 == "one\ntwo\nthree\n", "\(r.1)")
        r = api.cli(["logs", "w", "-n", "team-a", "--replica", "3"])
        #expect(r.0 == 1 && r.1.contains("no log for replica 3"), "\(r.1)")
        // -f: lines written while it follows arrive, and it returns when the replica ends.
        final class Result: Sendable { let value = Mutex<(Int32, String)?>(nil) }
        let followed = Result()
        let t = Thread { let r = api.cli(["logs", "w", "-n", "team-a", "-f"]); followed.value.withLock { $0 = r } }
        t.start()
        backend.appendLog(key, rank: 0, "four\n")
        backend.endLog(key, rank: 0)
        try #require(poll(timeout: 20) { followed.value.withLock { $0 != nil } }, "logs -f returned after the log ended")
        let f = try #require(followed.value.withLock { $0 })
        #expect(f.0 == 0 && f.1 == "one\ntwo\nthree\nfour\n", "\(f.1)")
    }

    @Test func topShowsTheNewestGPUSamplesPerRunningWorkload() throws {
        let now = Date().timeIntervalSince1970
        func series(_ metric: String, gpu: Int, _ v: Double, ago: Double = 5) -> MetricSeries {
            MetricSeries(name: "team-a/busy/\(metric){gpu=\(gpu)}", samples: [.init(ts: now - 600, value: 1), .init(ts: now - ago, value: v)])
        }
        let backend = MemoryBackend(objects: [
            try RemoteAPIFixture.object(wl("busy", gpu: 2), status: #"{"phase":"Running"}"#),
            try RemoteAPIFixture.object(wl("idle"), status: #"{"phase":"Running"}"#),
            try RemoteAPIFixture.object(wl("done"), status: #"{"phase":"Succeeded"}"#),
        ], metrics: [series("gpu_utilization_percent", gpu: 0, 80), series("gpu_utilization_percent", gpu: 1, 60),
                     series("gpu_memory_used_mib", gpu: 0, 1000), series("gpu_memory_used_mib", gpu: 1, 2000), series("gpu_power_watts", gpu: 0, 300)])
        let api = try RemoteAPIFixture(backend)
        let r = api.cli(["top", "-n", "team-a"])
        #expect(r.0 == 0, "\(r.1)")
        let lines = r.1.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.first == ["NAME", "PHASE", "GPUS", "GPU-UTIL", "GPU-MEM", "POWER", "SAMPLED"])
        #expect(lines.contains { Array($0.prefix(6)) == ["busy", "Running", "2", "70%", "3000Mi", "300W"] }, "\(r.1)")
        #expect(lines.contains { Array($0.prefix(6)) == ["idle", "Running", "1", "-", "-", "-"] }, "\(r.1)")
        #expect(!r.1.contains("done"))
    }

    @Test func topFoldsTheNewestSamplesOfOneRun() {
        let u = TopCommand.usage([
            ("ns/w/gpu_utilization_percent{gpu=0}", 1000, 90), ("ns/w/gpu_utilization_percent{gpu=1}", 990, 50),
            ("ns/w/gpu_utilization_percent{gpu=7}", 100, 5),   // an earlier run's GPU
            ("ns/w/gpu_memory_used_mib{gpu=0}", 1000, 512), ("ns/w/loss{rank=0}", 1000, 0.5),
        ])
        #expect(u == TopCommand.Usage(gpus: 2, utilization: 70, memoryMiB: 512, powerWatts: nil, newest: 1000))
        #expect(TopCommand.usage([("ns/w/loss{rank=0}", 1000, 0.5)]) == nil)
    }

    @Test func localLogsSinceCutsByTheLinesTimesOrSaysItCannot() throws {
        let d = try DaemonUnderTest(extra: ["--runtime", "none"])
        d.write("queues.yaml", queueManifest)
        d.write("w.yaml", wl("w"))
        try #require(d.wait { d.status(.workload, "w") != nil }, "w stored")
        let key = ObjectKey(.workload, namespace: "team-a", name: "w")
        let path = ProcessRuntime.logPath(stateDir: d.state, key, rank: 0)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let old = Timestamp(secondsSince1970: Date().timeIntervalSince1970 - 7200).rfc3339
        let recent = Timestamp(secondsSince1970: Date().timeIntervalSince1970 - 30).rfc3339
        FileManager.default.createFile(atPath: path, contents: Data("\(old) early\n\(recent) late\ncontinued\n".utf8))
        var r = runCLI(["logs", "w", "-n", "team-a", "--since", "10m", "--state-dir", d.state])
        #expect(r.0 == 0 && r.1 == "\(recent) late\ncontinued\n", "\(r.1)")
        FileManager.default.createFile(atPath: path, contents: Data("no times here\n".utf8))
        r = runCLI(["logs", "w", "-n", "team-a", "--since", "10m", "--state-dir", d.state])
        #expect(r.0 == 1 && r.1.contains("carry no times"), "\(r.1)")
        _ = d.terminate()
    }

    // MARK: Pure translations

    @Test func apiObjectsBecomeStoredRows() throws {
        let v = try JSON.parse(#"""
            {"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"q","uid":"u1","generation":3,"creationTimestamp":"2026-01-15T10:31:00Z","annotations":{"z":"1"}},
             "spec":{"deserved":{"gpu":8}},"status":{"state":"Open"},"owner":"manifest","source":"/spec/q.yaml:4","usage":{"pending":1}}
            """#)
        let row = try #require(RemoteRows.row(v, kind: .queue, server: "http://s"))
        #expect(row.key == ObjectKey(.queue, name: "q"))
        #expect(row.uid == "u1" && row.generation == 3 && row.creationTime == Timestamp(rfc3339: "2026-01-15T10:31:00Z")?.seconds)
        #expect(row.source == "/spec/q.yaml:4")
        let obj = try JSON.parse(row.objectJSON)
        #expect(obj["status"] == nil && obj["usage"] == nil && obj["owner"] == nil && obj["source"] == nil)
        #expect(obj["metadata"]?["annotations"] == .object([.init("gantry.dev/source", .string("/spec/q.yaml:4")), .init("z", .string("1"))]))
        #expect(row.statusJSON == #"{"state":"Open"}"#)
        // An API-owned object without status.
        let api = try #require(RemoteRows.row(try JSON.parse(#"{"kind":"Workload","metadata":{"name":"w","namespace":"ns"},"spec":{},"status":{},"owner":"api"}"#), kind: .workload, server: "http://s"))
        #expect(api.statusJSON == nil && api.source == "api (http://s)" && api.key.namespace == "ns")
        #expect(RemoteRows.row(try JSON.parse(#"{"metadata":{}}"#), kind: .workload, server: "") == nil)
    }

    @Test func eventsAndMetricsFromTheAPIsShapes() throws {
        let e = try #require(RemoteRows.eventRow(try JSON.parse(#"{"type":"Warning","reason":"Failed","message":"m","kind":"Workload","namespace":"ns","name":"w","count":0,"firstTimestamp":"2026-01-15T10:31:00Z","lastTimestamp":"2026-01-15T10:32:00Z"}"#)))
        #expect(e.type == "Warning" && e.count == 1 && e.last - e.first == 60 && e.objName == "w" && e.kind == "Workload")
        let m = RemoteRows.latest(try JSON.parse(#"{"series":[{"metric":"gpu_utilization_percent","gpu":1,"rank":null,"samples":[[100,5],[200,7.5],[150,1]]},{"metric":"loss","gpu":null,"rank":0,"samples":[[100,0.25]]},{"metric":"x","samples":[["bad",1]]}]}"#), prefix: "ns/w/")
        #expect(m.map(\.series) == ["ns/w/gpu_utilization_percent{gpu=1}", "ns/w/loss{rank=0}"])
        #expect(m.first?.ts == 200 && m.first?.value == 7.5)
        let err = RemoteError.from(status: 401, body: Array(#"{"error":{"status":401,"code":"Unauthorized","message":"missing bearer token"}}"#.utf8), what: "GET /x")
        #expect(err.description.hasPrefix("missing bearer token — the server wants a bearer token: pass --token-file FILE"))
        #expect(RemoteError.from(status: 502, body: Array("bad gateway".utf8), what: "GET /x").description == "GET /x: HTTP 502: bad gateway")
    }
}
