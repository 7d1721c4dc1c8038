import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore

/// Starts the real `gantry` binary on temporary directories.
final class DaemonUnderTest: @unchecked Sendable {
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["GANTRY_BIN"], !b.isEmpty { return b }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/gantry").path
    }

    let spec: String, state: String, logPath: String
    let process = Process()

    /// A daemon on fresh temporary spec and state directories.
    convenience init(extra: [String] = []) throws {
        let base = NSTemporaryDirectory() + "gantry-e2e-" + UUID().uuidString
        try self.init(spec: base + "/spec", state: base + "/state", logPath: base + "/daemon.log", extra: extra)
    }

    /// Another daemon on the same directories as `d` (after `d` stopped).
    convenience init(reusing d: DaemonUnderTest, extra: [String] = []) throws {
        try self.init(spec: d.spec, state: d.state, logPath: d.logPath + ".2", extra: extra)
    }

    init(spec: String, state: String, logPath: String, extra: [String] = []) throws {
        self.spec = spec
        self.state = state
        self.logPath = logPath
        try FileManager.default.createDirectory(atPath: spec, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: DaemonUnderTest.binary)
        // No GPUs unless a test asks: the outcome must not depend on the machine's GPUs.
        let gpus = extra.contains("--local-gpus") ? [] : ["--local-gpus", "0"]
        process.arguments = ["run", "--spec-dir", spec, "--state-dir", state, "--resync", "2s"] + gpus + extra
        let log = FileHandle(forWritingAtPath: logPath)!
        process.standardError = log
        process.standardOutput = log
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func write(_ rel: String, _ text: String) {
        let path = spec + "/" + rel
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// Saves like an editor: write a temp file, then rename over the target.
    func writeByRename(_ rel: String, _ text: String) {
        let tmp = spec + "/.\(rel).swp"
        try! text.write(toFile: tmp, atomically: false, encoding: .utf8)
        _ = rename(tmp, spec + "/" + rel)
    }

    func remove(_ rel: String) { try? FileManager.default.removeItem(atPath: spec + "/" + rel) }

    func rows(_ kind: Kind) -> [ObjectRow] {
        guard let r = try? StateReader(directory: state) else { return [] }
        return (try? r.objects(kind: kind)) ?? []
    }

    func status(_ kind: Kind, _ name: String) -> Value? {
        rows(kind).first { $0.key.name == name }?.statusJSON.flatMap { try? JSON.parse($0) }
    }

    func events() -> [StateReader.EventRow] {
        guard let r = try? StateReader(directory: state) else { return [] }
        return (try? r.events()) ?? []
    }

    /// Polls until `cond` holds (every 10 ms, up to `timeout` seconds).
    @discardableResult
    func wait(_ timeout: Double = 10, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if cond() { return true }
            usleep(10_000)
        }
        return cond()
    }

    func terminate(signal sig: Int32 = SIGTERM, timeout: Double = 10) -> Int32? {
        kill(process.processIdentifier, sig)
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < end { usleep(10_000) }
        if process.isRunning { process.terminate(); return nil }
        return process.terminationStatus
    }

    /// Replicas outlive the daemon: tests kill what is left through the supervisors' records.
    func killReplicas() {
        let dir = state + "/replicas"
        for n in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where n.hasSuffix(".rec") {
            guard let d = FileManager.default.contents(atPath: dir + "/" + n) else { continue }
            let text = String(decoding: d, as: UTF8.self)
            for f in text.split(separator: " ") {
                if f.hasPrefix("pid="), let p = Int32(f.dropFirst(4)), p > 1 { kill(-p, SIGKILL) }
                if f.hasPrefix("shim="), let p = Int32(f.dropFirst(5)), p > 1 { kill(p, SIGKILL) }
            }
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        killReplicas()
    }
}

func runCLI(_ args: [String]) -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: DaemonUnderTest.binary)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try! p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

let queueManifest = "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: research}\nspec:\n  deserved: {gpu: 8}\n"
func wl(_ name: String, priority: Int = 0, gpu: Int = 1, command: String = "true") -> String {
    "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name), namespace: team-a}\nspec:\n  queue: research\n  priority: \(priority)\n  command: \(jsonQuote(command))\n  resources: {gpu: \(gpu)}\n"
}

func jsonQuote(_ s: String) -> String { JSON.encode(.string(s)) }

@Suite(.serialized) struct EndToEndTests {
    @Test func statusFollowsFileChangesAndSIGTERMExitsCleanly() throws {
        let d = try DaemonUnderTest()
        d.write("queues.yaml", queueManifest)
        d.write("w.yaml", wl("train"))
        #expect(d.wait { d.status(.workload, "train")?["observedGeneration"]?.intValue == 1 })
        #expect(d.status(.workload, "train")?["conditions"]?.arrayValue?.first?["reason"]?.stringValue == "NoFittingNodes")
        #expect(d.status(.workload, "train")?["queuePosition"]?.intValue == 0)
        // Edit in place.
        d.write("w.yaml", wl("train", priority: 1))
        #expect(d.wait { d.status(.workload, "train")?["observedGeneration"]?.intValue == 2 })
        // Edit by rename, as editors save.
        d.writeByRename("w.yaml", wl("train", priority: 2))
        #expect(d.wait { d.status(.workload, "train")?["observedGeneration"]?.intValue == 3 })
        // A new nested directory is watched and scanned.
        d.write("teams/a/more.yaml", wl("nested") + "---\n" + wl("nested-2"))
        #expect(d.wait { d.status(.workload, "nested-2") != nil })
        d.write("teams/a/later.yaml", wl("later"))
        #expect(d.wait { d.status(.workload, "later") != nil })
        // Removing one document of a multi-document file deletes just that object.
        d.write("teams/a/more.yaml", wl("nested"))
        #expect(d.wait { d.status(.workload, "nested-2") == nil })
        #expect(d.status(.workload, "nested") != nil)
        // Deleting a file deletes its objects; the events keep their history.
        d.remove("w.yaml")
        #expect(d.wait { d.rows(.workload).allSatisfy { $0.key.name != "train" } })
        #expect(d.events().contains { $0.objName == "train" && $0.reason == "Deleted" })
        // git checkout style: delete a directory and recreate it.
        d.remove("teams")
        #expect(d.wait { d.rows(.workload).isEmpty })
        d.write("teams/a/more.yaml", wl("nested"))
        #expect(d.wait { d.status(.workload, "nested") != nil })
        let start = Date()
        #expect(d.terminate() == 0)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(d.log.contains("stopped"))
    }

    @Test func badInputIsReportedAndEverythingElseKeepsRunning() throws {
        let d = try DaemonUnderTest()
        d.write("queues.yaml", queueManifest)
        #expect(d.wait { d.status(.queue, "research") != nil })
        d.write("syntax.yaml", "kind: Workload\nmetadata: {name: [broken\n")
        d.write("tabs.yaml", "kind: Workload\nspec:\n\tcommand: x\n")
        d.write("kinds.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Gadget\nmetadata: {name: g}\n---\napiVersion: gantry.dev/v9\nkind: Queue\nmetadata: {name: q2}\n")
        d.write("types.yaml", wl("typed").replacingOccurrences(of: "priority: 0", with: "replicas: many"))
        d.write("quantity.yaml", wl("neg").replacingOccurrences(of: "gpu: 1", with: "gpu: -2"))
        d.write("names.yaml", wl("../etc") + "---\n" + wl("UPPER") + "---\n" + wl(String(repeating: "x", count: 64)))
        d.write("zz-dup.yaml", queueManifest)   // sorts after queues.yaml: the later file is the duplicate
        let bin = d.spec + "/binary.yaml"
        _ = FileManager.default.createFile(atPath: bin, contents: Data([0x6B, 0x3A, 0x20, 0xFF, 0xFE, 0x80, 0x0A]))
        let big = d.spec + "/big.yaml"
        _ = FileManager.default.createFile(atPath: big, contents: Data(repeating: 0x61, count: 20 << 20))
        symlink("self.yaml", d.spec + "/self.yaml")
        try FileManager.default.createDirectory(atPath: d.spec + "/cycle", withIntermediateDirectories: true)
        symlink("..", d.spec + "/cycle/up")
        var laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (i, c) in "bcdefghij".enumerated() { laughs += "\(c): &\(c) [" + Array(repeating: "*\(Character(UnicodeScalar(UInt8(97 + i))))", count: 10).joined(separator: ", ") + "]\n" }
        d.write("laughs.yaml", laughs)
        // After all that, a good file still gets its status.
        d.write("good.yaml", wl("good"))
        #expect(d.wait { d.status(.workload, "good") != nil })
        #expect(d.process.isRunning)
        let expected = ["file/syntax.yaml", "file/tabs.yaml", "file/kinds.yaml", "file/names.yaml", "file/zz-dup.yaml", "file/binary.yaml",
                        "file/big.yaml", "file/self.yaml", "file/cycle/up", "file/laughs.yaml"]
        #expect(d.wait {
            let refs = Set(d.events().filter { $0.type == "Warning" }.map { "\($0.kind.lowercased())/\($0.objName)" })
            return expected.allSatisfy { refs.contains($0) }
        }, "missing warnings; got \(d.events().map { "\($0.kind)/\($0.objName) \($0.reason)" })")
        let messages = d.events().map(\.message).joined(separator: "\n")
        #expect(messages.contains("tabs.yaml:3:"))
        #expect(messages.contains("kinds.yaml:2: kind: unknown kind \"Gadget\""))
        #expect(messages.contains("names.yaml:3: metadata.name: invalid name \"../etc\""))
        // Wrong types and quantities make the object InvalidSpec, with file, line and field.
        #expect(d.wait { d.status(.workload, "typed") != nil && d.status(.workload, "neg") != nil })
        let typed = d.status(.workload, "typed")?["conditions"]?.arrayValue?.first
        #expect(typed?["reason"]?.stringValue == "InvalidSpec")
        #expect(typed?["message"]?.stringValue?.contains("types.yaml:6: spec.replicas") == true)
        #expect(d.status(.workload, "neg")?["message"]?.stringValue?.contains("spec.resources.gpu: must not be negative") == true)
        // The log names file, line and field too.
        #expect(d.log.contains("file=names.yaml line=3"))
        #expect(d.terminate() == 0)
    }

    @Test func restartAfterKill9KeepsGenerationsAndPicksUpChanges() throws {
        let d = try DaemonUnderTest()
        d.write("q.yaml", queueManifest)
        d.write("w.yaml", wl("keep") + "---\n" + wl("gone"))
        #expect(d.wait { d.status(.workload, "gone") != nil })
        let uid = d.rows(.workload).first { $0.key.name == "keep" }?.uid
        let created = d.rows(.workload).first { $0.key.name == "keep" }?.creationTime
        #expect(d.terminate(signal: SIGKILL) != nil)
        // While it is down: one spec changes, one object goes.
        d.write("w.yaml", wl("keep", gpu: 4))
        let d2 = try DaemonUnderTest(reusing: d)
        #expect(d2.wait { d2.status(.workload, "keep")?["observedGeneration"]?.intValue == 2 })
        let row = d2.rows(.workload).first { $0.key.name == "keep" }
        #expect(row?.uid == uid)
        #expect(row?.creationTime == created)
        #expect(d2.wait { d2.status(.workload, "gone") == nil })
        #expect(d2.terminate() == 0)
    }

    @Test func fileBrokenWhileDownKeepsItsObjectsAfterRestart() throws {
        let d = try DaemonUnderTest()
        d.write("q.yaml", queueManifest)
        d.write("w.yaml", wl("alpha", priority: 1) + "---\n" + wl("beta"))
        #expect(d.wait { d.status(.workload, "beta") != nil })
        let generation = d.rows(.workload).first { $0.key.name == "alpha" }?.generation
        #expect(d.terminate() == 0)
        d.write("w.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: [oops\n")
        d.write("gone.yaml", "")   // an ordinary file removal elsewhere still deletes
        let d2 = try DaemonUnderTest(reusing: d)
        #expect(d2.wait { d2.log.contains("initial sync complete") })
        #expect(d2.status(.workload, "alpha") != nil && d2.status(.workload, "beta") != nil)
        #expect(d2.rows(.workload).first { $0.key.name == "alpha" }?.generation == generation)
        #expect(d2.wait { d2.events().contains { $0.reason == "ManifestUnreadable" && $0.objName == "alpha" } })
        // Once the file is fixed, its objects follow it again.
        d2.write("w.yaml", wl("alpha", priority: 2))
        #expect(d2.wait { d2.status(.workload, "alpha")?["observedGeneration"]?.intValue == (generation ?? 0) + 1 })
        #expect(d2.terminate() == 0)
    }

    @Test func periodicResyncCatchesChangesInotifyCannotSee() throws {
        // A manifest symlinked from outside the tree: edits to its target raise no inotify
        // event in the spec directory, so only the resync (2 s in these tests) sees them.
        let outside = NSTemporaryDirectory() + "gantry-outside-" + UUID().uuidString + ".yaml"
        try (queueManifest + "---\n" + wl("linked")).write(toFile: outside, atomically: false, encoding: .utf8)
        let d = try DaemonUnderTest()
        symlink(outside, d.spec + "/linked.yaml")
        #expect(d.wait { d.status(.workload, "linked")?["observedGeneration"]?.intValue == 1 })
        try (queueManifest + "---\n" + wl("linked", gpu: 3)).write(toFile: outside, atomically: false, encoding: .utf8)
        #expect(d.wait(6) { d.status(.workload, "linked")?["observedGeneration"]?.intValue == 2 })
        #expect(d.terminate() == 0)
    }

    @Test func sigtermDuringTheInitialLoadExitsCleanlyAndLosesNothing() throws {
        let base = NSTemporaryDirectory() + "gantry-e2e-" + UUID().uuidString
        let spec = base + "/spec"
        try FileManager.default.createDirectory(atPath: spec, withIntermediateDirectories: true)
        try queueManifest.write(toFile: spec + "/a-queue.yaml", atomically: false, encoding: .utf8)
        for f in 0..<200 {   // several 64-file chunks, so the signal lands mid-scan
            let docs = (0..<20).map { wl("w-\(f)-\($0)") }.joined(separator: "---\n")
            try docs.write(toFile: spec + "/w-\(f).yaml", atomically: false, encoding: .utf8)
        }
        let d = try DaemonUnderTest(spec: spec, state: base + "/state", logPath: base + "/daemon.log")
        #expect(d.wait { d.log.contains("starting") })
        let start = Date()
        #expect(d.terminate() == 0)
        #expect(Date().timeIntervalSince(start) < 10)
        let d2 = try DaemonUnderTest(reusing: d)
        #expect(d2.wait(30) { d2.log.contains("initial sync complete") })
        #expect(d2.rows(.workload).count == 4000)
        #expect(d.log.contains("initial sync interrupted") || d.log.contains("initial sync complete"))
        #expect(d2.rows(.workload).allSatisfy { $0.statusJSON != nil })
        #expect(!d2.log.contains("removed while the daemon was down"))
        #expect(d2.terminate() == 0)
    }

    @Test func secondDaemonOnTheSameStateIsRefused() throws {
        let d = try DaemonUnderTest()
        d.write("q.yaml", queueManifest)
        #expect(d.wait { d.status(.queue, "research") != nil })
        let (code, output) = runCLI(["run", "--spec-dir", d.spec, "--state-dir", d.state])
        #expect(code == 1)
        #expect(output.contains("another gantry daemon"))
        #expect(d.terminate() == 0)
    }

    @Test func validateExitCodes() throws {
        let dir = NSTemporaryDirectory() + "gantry-validate-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (queueManifest + "---\n" + wl("ok")).write(toFile: dir + "/good.yaml", atomically: true, encoding: .utf8)
        #expect(runCLI(["validate", "-f", dir]).0 == 0)
        try wl("bad").replacingOccurrences(of: "gpu: 1", with: "gpu: lots").write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let (code, output) = runCLI(["validate", "-f", dir])
        #expect(code == 1)
        #expect(output.contains("bad.yaml:8: spec.resources.gpu"))
        try FileManager.default.removeItem(atPath: dir + "/bad.yaml")
        try (wl("typo") + "  comand: x\n").write(toFile: dir + "/typo.yaml", atomically: true, encoding: .utf8)
        #expect(runCLI(["validate", "--field-validation=Warn", "-f", dir]).0 == 0)
        #expect(runCLI(["validate", "-f", dir + "/typo.yaml"]).0 == 1)
        #expect(runCLI(["validate", "--strict", "-f", dir + "/typo.yaml"]).0 == 1)
        #expect(runCLI(["validate", "-f", dir + "/missing.yaml"]).0 == 1)
        #expect(runCLI(["validate"]).0 == 2)
    }

    @Test func cliReadsTheStoreWithoutTheDaemon() throws {
        let d = try DaemonUnderTest()
        d.write("q.yaml", queueManifest)
        d.write("w.yaml", wl("a", priority: 1) + "---\n" + wl("b", gpu: 4))
        #expect(d.wait { d.status(.workload, "b") != nil && d.status(.workload, "a") != nil })
        #expect(d.terminate() == 0)
        let (code, table) = runCLI(["get", "workloads", "-A", "--state-dir", d.state, "--sort-by", "gpus"])
        #expect(code == 0)
        let lines = table.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAMESPACE") == true)
        #expect(lines.count == 3 && lines[1].contains(" b ") )
        let (_, json) = runCLI(["get", "workload", "a", "-n", "team-a", "--state-dir", d.state, "-o", "json"])
        let v = try JSON.parse(json)
        #expect(v["status"]?["phase"]?.stringValue == "Pending")
        let (_, list) = runCLI(["get", "workloads", "-n", "team-a", "--state-dir", d.state, "-o", "json", "--phase", "Pending", "--limit", "1"])
        #expect(try JSON.parse(list)["items"]?.arrayValue?.count == 1)
        let (dc, describe) = runCLI(["describe", "workload", "a", "-n", "team-a", "--state-dir", d.state])
        #expect(dc == 0 && describe.contains("NoFittingNodes"))
        #expect(runCLI(["get", "workload", "nope", "-n", "team-a", "--state-dir", d.state]).0 == 1)
        #expect(runCLI(["get", "gadgets", "--state-dir", d.state]).0 == 2)
    }

    @Test func admitsPreemptsAndKeepsAdmissionsAcrossKill9() throws {
        let d = try DaemonUnderTest(extra: ["--local-gpus", "8", "--grace-period", "2s"])
        d.write("q.yaml", queueManifest)
        d.write("a.yaml", wl("a", priority: -1, gpu: 4, command: "sleep 600") + "  replicas: 2\n")
        #expect(d.wait { d.status(.workload, "a")?["phase"]?.stringValue == "Running" })
        let a = d.status(.workload, "a")!
        let gpus = (a["admission"]?["replicas"]?.arrayValue ?? []).flatMap { $0["gpus"]?.arrayValue ?? [] }.compactMap(\.intValue)
        #expect(gpus.sorted() == Array(0..<8))
        // A higher-priority workload of the same queue takes the GPUs; a waits, first in line.
        d.write("b.yaml", wl("b", priority: 1, gpu: 8, command: "sleep 600"))
        #expect(d.wait { d.status(.workload, "b")?["admission"] != nil })
        #expect(d.wait { d.status(.workload, "a")?["queuePosition"]?.intValue == 0 })
        let pre = d.status(.workload, "a")?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Preempted" }
        #expect(pre?["reason"]?.stringValue == "InQueue" && pre?["message"]?.stringValue?.contains("team-a/b") == true)
        d.write("c.yaml", wl("c", gpu: 2, command: "sleep 600"))
        #expect(d.wait { d.status(.workload, "c")?["queuePosition"]?.intValue == 0 })
        #expect(d.wait { d.status(.queue, "research")?["pending"]?.intValue == 2 })
        let (_, table) = runCLI(["get", "workloads", "-A", "--state-dir", d.state])
        let header = table.split(separator: "\n").first.map(String.init) ?? ""
        #expect(header.contains("QUEUE-POS") && header.contains("NODES"))
        #expect(table.split(separator: "\n").contains { $0.contains(" b ") && $0.contains(" - ") })
        let (_, queues) = runCLI(["get", "queues", "--state-dir", d.state])
        #expect(queues.contains("gpu=8") && queues.contains("BORROWED"))
        let (_, dq) = runCLI(["describe", "queue", "research", "--state-dir", d.state])
        // Admission order: c (priority 0) before a (priority -1), each with its reason.
        let ci = dq.range(of: "team-a/c")?.lowerBound, ai = dq.range(of: "team-a/a")?.lowerBound
        #expect(ci != nil && ai != nil && ci! < ai!)
        #expect(dq.contains("Pending Workloads (admission order): 2") && dq.contains("WaitingForQuota"))
        // kill -9, then a new daemon: b keeps its GPUs, nothing is admitted twice.
        #expect(d.terminate(signal: SIGKILL) != nil)
        let before = d.status(.workload, "b")?["admission"]
        let d2 = try DaemonUnderTest(reusing: d, extra: ["--local-gpus", "8", "--grace-period", "2s"])
        #expect(d2.wait { d2.log.contains("initial sync complete") })
        #expect(d2.status(.workload, "b")?["admission"] == before)
        #expect(d2.status(.workload, "a")?["admission"] == nil && d2.status(.workload, "c")?["admission"] == nil)
        // b's manifest goes: c (first in line) is admitted; a (8 GPUs) no longer fits beside it.
        d2.remove("b.yaml")
        #expect(d2.wait { d2.status(.workload, "c")?["admission"] != nil })
        #expect(d2.wait { d2.status(.workload, "a")?["queuePosition"]?.intValue == 0 })
        #expect(d2.status(.workload, "a")?["admission"] == nil)
        #expect(d2.terminate() == 0)
    }
}
