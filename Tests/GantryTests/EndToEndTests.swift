import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore
@testable import GantryShim

/// What daemons on the same directories share. When the last of them is gone, the replicas
/// they left behind are killed and the temporary tree (if the tests made it) is removed.
final class DaemonDirectories: @unchecked Sendable {
    let state: String
    /// Removed at the end; nil when the directories belong to the caller.
    let root: String?

    init(state: String, root: String?) { self.state = state; self.root = root }

    /// Kills the supervisors and replica process groups named in the replica records, and
    /// waits (a few seconds at most) until they are gone.
    func killReplicas() {
        let dir = state + "/replicas"
        var pids: [Int32] = []
        for n in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where n.hasSuffix(".rec") {
            guard let d = FileManager.default.contents(atPath: dir + "/" + n) else { continue }
            let rec = ReplicaRecord(text: String(decoding: d, as: UTF8.self))
            if rec.pid > 1, !signalWouldHitTheRunner(rec.pid), kill(-rec.pid, 0) == 0 {   // the replica's group still exists
                signalProcess(rec.pid, SIGKILL, group: true)
                pids.append(rec.pid)
            }
            if rec.shimPid > 1, !signalWouldHitTheRunner(rec.shimPid), isAlive(rec.shimPid) {
                signalProcess(rec.shimPid, SIGKILL)
                pids.append(rec.shimPid)
            }
        }
        poll(timeout: 3) { pids.allSatisfy { !isAlive($0) } }
    }

    deinit {
        killReplicas()
        if let root { removeTree(root) }
    }
}

/// Starts the real `gantry` binary on temporary directories. The daemon is killed when the
/// object goes (a test that stops early included); the replicas and the temporary tree when
/// the last daemon on the same directories goes.
final class DaemonUnderTest: @unchecked Sendable {
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["GANTRY_BIN"], !b.isEmpty { return b }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/gantry").path
    }

    let spec: String, state: String, logPath: String
    let process = Process()
    let directories: DaemonDirectories

    /// A daemon on fresh temporary spec and state directories, removed when it is gone.
    convenience init(extra: [String] = []) throws {
        let base = try makeTemporaryDirectory("gantry-e2e-")
        try self.init(spec: base + "/spec", state: base + "/state", logPath: base + "/daemon.log", extra: extra,
                      directories: DaemonDirectories(state: base + "/state", root: base))
    }

    /// Another daemon on the same directories as `d` (after `d` stopped).
    convenience init(reusing d: DaemonUnderTest, extra: [String] = []) throws {
        try self.init(spec: d.spec, state: d.state, logPath: d.logPath + ".2", extra: extra, directories: d.directories)
    }

    /// A daemon on the given directories; `removing`: a tree to remove when the last daemon on
    /// these directories is gone (nil: the caller's to remove).
    convenience init(spec: String, state: String, logPath: String, extra: [String] = [], removing root: String? = nil) throws {
        try self.init(spec: spec, state: state, logPath: logPath, extra: extra, directories: DaemonDirectories(state: state, root: root))
    }

    init(spec: String, state: String, logPath: String, extra: [String], directories: DaemonDirectories) throws {
        self.spec = spec
        self.state = state
        self.logPath = logPath
        self.directories = directories
        try FileManager.default.createDirectory(atPath: spec, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: DaemonUnderTest.binary)
        // No GPUs unless a test asks: the outcome must not depend on the machine's GPUs.
        let gpus = extra.contains("--local-gpus") ? [] : ["--local-gpus", "0"]
        process.arguments = ["run", "--spec-dir", spec, "--state-dir", state, "--resync", "2s"] + gpus + extra
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardError = log
        process.standardOutput = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try log.close()
    }

    /// The daemon's log; "" when it cannot be read. Only for checks that something is there:
    /// use `readLog()` to check that something is not.
    var log: String { (try? readLog()) ?? "" }

    /// The daemon's log; throws when it cannot be read.
    func readLog() throws -> String { try String(contentsOfFile: logPath, encoding: .utf8) }

    /// Writes a manifest; a failure is recorded (the test fails, the run goes on).
    func write(_ rel: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let path = spec + "/" + rel
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        } catch { Issue.record("could not write \(path): \(error)", sourceLocation: sourceLocation) }
    }

    /// Saves like an editor: write a temp file, then rename over the target.
    func writeByRename(_ rel: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let tmp = spec + "/.\(rel).swp"
        do { try text.write(toFile: tmp, atomically: false, encoding: .utf8) } catch {
            Issue.record("could not write \(tmp): \(error)", sourceLocation: sourceLocation); return
        }
        if rename(tmp, spec + "/" + rel) != 0 { Issue.record("could not rename \(tmp): errno \(errno)", sourceLocation: sourceLocation) }
    }

    /// Removes a manifest or directory of the spec tree; a failure is recorded.
    func remove(_ rel: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do { try FileManager.default.removeItem(atPath: spec + "/" + rel) } catch {
            Issue.record("could not remove \(rel): \(error)", sourceLocation: sourceLocation)
        }
    }

    // Lenient readers: [] or nil when the store cannot be read (yet), so a poll for something
    // to appear keeps polling. Only for checks that something IS there; a check that
    // something is gone, or compares with nil, uses the throwing `stored…` readers below.

    func rows(_ kind: Kind) -> [ObjectRow] { (try? storedRows(kind)) ?? [] }

    func status(_ kind: Kind, _ name: String) -> Value? { try? storedStatus(kind, name) }

    func events() -> [StateReader.EventRow] { (try? storedEvents()) ?? [] }

    // Strict readers: they throw when the state database cannot be opened or read, or a
    // stored status is not JSON, so "absent" always means absent.

    /// The stored rows of `kind`.
    func storedRows(_ kind: Kind) throws -> [ObjectRow] { try StateReader(directory: state).objects(kind: kind) }

    /// The stored row of `name`; nil only when no such row is stored.
    func storedRow(_ kind: Kind, _ name: String) throws -> ObjectRow? {
        try storedRows(kind).first { $0.key.name == name }
    }

    /// The stored status of `name`; nil when no such row or no status for it is stored.
    func storedStatus(_ kind: Kind, _ name: String) throws -> Value? {
        guard let text = try storedRow(kind, name)?.statusJSON else { return nil }
        return try JSON.parse(text)
    }

    /// Every stored event.
    func storedEvents() throws -> [StateReader.EventRow] { try StateReader(directory: state).events() }

    /// Polls until `cond` holds (every 10 ms, up to `timeout` seconds). Callers state what they
    /// wait for: `try #require(d.wait { … }, "what")`. A reader error in `cond` propagates.
    @discardableResult
    func wait(_ timeout: Double = 10, _ cond: () throws -> Bool) rethrows -> Bool {
        try poll(timeout: timeout, cond)
    }

    /// Signals the daemon and waits up to `timeout` seconds for it to exit: its exit status,
    /// or nil when it had to be killed (SIGKILL) after the timeout.
    func terminate(signal sig: Int32 = SIGTERM, timeout: Double = 10) -> Int32? {
        let pid = process.processIdentifier
        guard pid > 0 else { Issue.record("the daemon was never started"); return nil }
        if process.isRunning { signalProcess(pid, sig) }
        if !poll(timeout: timeout, { !process.isRunning }) {
            signalProcess(pid, SIGKILL)
            poll(timeout: 5) { !process.isRunning }
            return nil
        }
        return process.terminationStatus
    }

    /// Replicas outlive the daemon: tests kill what is left through the supervisors' records.
    func killReplicas() { directories.killReplicas() }

    deinit {
        let pid = process.processIdentifier
        if pid > 0 && process.isRunning {
            signalProcess(pid, SIGKILL)
            poll(timeout: 5) { !process.isRunning }
        }
    }
}

/// Runs the `gantry` CLI: its exit status and output. Killed, and the test failed, when it
/// runs past `timeout` seconds (the status is then -1 or the signal's).
func runCLI(_ args: [String], timeout: Double = 30, sourceLocation: SourceLocation = #_sourceLocation) -> (Int32, String) {
    let r = runProcess(DaemonUnderTest.binary, args, timeout: timeout, sourceLocation: sourceLocation)
    return (r.timedOut ? -1 : r.status, r.output)
}

let queueManifest = "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: research}\nspec:\n  deserved: {gpu: 8}\n"
func wl(_ name: String, priority: Int = 0, gpu: Int = 1, command: String = "true") -> String {
    "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name), namespace: team-a}\nspec:\n  queue: research\n  priority: \(priority)\n  command: \(jsonQuote(command))\n  resources: {gpu: \(gpu)}\n"
}

func jsonQuote(_ s: String) -> String { JSON.encode(.string(s)) }

@Suite(.serialized, .timeLimit(.minutes(1))) struct EndToEndTests {
    @Test func statusFollowsFileChangesAndSIGTERMExitsCleanly() throws {
        let d = try DaemonUnderTest()
        d.write("queues.yaml", queueManifest)
        d.write("w.yaml", wl("train"))
        try #require(d.wait { d.status(.workload, "train")?["observedGeneration"]?.intValue == 1 }, "train observed at generation 1")
        #expect(d.status(.workload, "train")?["conditions"]?.arrayValue?.first?["reason"]?.stringValue == "NoFittingNodes")
        #expect(d.status(.workload, "train")?["queuePosition"]?.intValue == 0)
        // Edit in place.
        d.write("w.yaml", wl("train", priority: 1))
        try #require(d.wait { d.status(.workload, "train")?["observedGeneration"]?.intValue == 2 }, "train observed at generation 2")
        // Edit by rename, as editors save.
        d.writeByRename("w.yaml", wl("train", priority: 2))
        try #require(d.wait { d.status(.workload, "train")?["observedGeneration"]?.intValue == 3 }, "train observed at generation 3")
        // A new nested directory is watched and scanned.
        d.write("teams/a/more.yaml", wl("nested") + "---\n" + wl("nested-2"))
        try #require(d.wait { d.status(.workload, "nested-2") != nil }, "nested-2 stored")
        d.write("teams/a/later.yaml", wl("later"))
        try #require(d.wait { d.status(.workload, "later") != nil }, "later stored")
        // Removing one document of a multi-document file deletes just that object.
        d.write("teams/a/more.yaml", wl("nested"))
        try #require(try d.wait { try d.storedRow(.workload, "nested-2") == nil }, "nested-2 deleted")
        #expect(try d.storedStatus(.workload, "nested") != nil)
        // Deleting a file deletes its objects; the events keep their history.
        d.remove("w.yaml")
        try #require(try d.wait { try d.storedRow(.workload, "train") == nil }, "train deleted")
        #expect(try d.storedEvents().contains { $0.objName == "train" && $0.reason == "Deleted" })
        // git checkout style: delete a directory and recreate it.
        d.remove("teams")
        try #require(try d.wait { try d.storedRows(.workload).isEmpty }, "every workload deleted")
        d.write("teams/a/more.yaml", wl("nested"))
        try #require(d.wait { d.status(.workload, "nested") != nil }, "nested stored again")
        let start = Date()
        #expect(d.terminate() == 0)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(try d.readLog().contains("stopped"))
    }

    @Test func badInputIsReportedAndEverythingElseKeepsRunning() throws {
        let d = try DaemonUnderTest()
        d.write("queues.yaml", queueManifest)
        try #require(d.wait { d.status(.queue, "research") != nil }, "queue research stored")
        d.write("syntax.yaml", "kind: Workload\nmetadata: {name: [broken\n")
        d.write("tabs.yaml", "kind: Workload\nspec:\n\tcommand: x\n")
        d.write("kinds.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Gadget\nmetadata: {name: g}\n---\napiVersion: gantry.dev/v9\nkind: Queue\nmetadata: {name: q2}\n")
        d.write("types.yaml", wl("typed").replacingOccurrences(of: "priority: 0", with: "replicas: many"))
        d.write("quantity.yaml", wl("neg").replacingOccurrences(of: "gpu: 1", with: "gpu: -2"))
        d.write("names.yaml", wl("../etc") + "---\n" + wl("UPPER") + "---\n" + wl(String(repeating: "x", count: 64)))
        d.write("zz-dup.yaml", queueManifest)   // sorts after queues.yaml: the later file is the duplicate
        let bin = d.spec + "/binary.yaml"
        try #require(FileManager.default.createFile(atPath: bin, contents: Data([0x6B, 0x3A, 0x20, 0xFF, 0xFE, 0x80, 0x0A])))
        let big = d.spec + "/big.yaml"
        try #require(FileManager.default.createFile(atPath: big, contents: Data(repeating: 0x61, count: 20 << 20)))
        try #require(symlink("self.yaml", d.spec + "/self.yaml") == 0)
        try FileManager.default.createDirectory(atPath: d.spec + "/cycle", withIntermediateDirectories: true)
        try #require(symlink("..", d.spec + "/cycle/up") == 0)
        var laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (i, c) in "bcdefghij".enumerated() { laughs += "\(c): &\(c) [" + Array(repeating: "*\(Character(UnicodeScalar(UInt8(97 + i))))", count: 10).joined(separator: ", ") + "]\n" }
        d.write("laughs.yaml", laughs)
        // After all that, a good file still gets its status.
        d.write("good.yaml", wl("good"))
        try #require(d.wait { d.status(.workload, "good") != nil }, "good stored")
        #expect(d.process.isRunning)
        let expected = ["file/syntax.yaml", "file/tabs.yaml", "file/kinds.yaml", "file/names.yaml", "file/zz-dup.yaml", "file/binary.yaml",
                        "file/big.yaml", "file/self.yaml", "file/cycle/up", "file/laughs.yaml"]
        #expect(d.wait {
            let refs = Set(d.events().filter { $0.type == "Warning" }.map { "\($0.kind.lowercased())/\($0.objName)" })
            return expected.allSatisfy { refs.contains($0) }
        }, "missing warnings; got \(d.events().map { "\($0.kind)/\($0.objName) \($0.reason)" })")
        let messages = try d.storedEvents().map(\.message).joined(separator: "\n")
        #expect(messages.contains("tabs.yaml:3:"))
        #expect(messages.contains("kinds.yaml:2: kind: unknown kind \"Gadget\""))
        #expect(messages.contains("names.yaml:3: metadata.name: invalid name \"../etc\""))
        // Wrong types and quantities make the object InvalidSpec, with file, line and field.
        try #require(d.wait { d.status(.workload, "typed") != nil && d.status(.workload, "neg") != nil }, "typed and neg stored")
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
        try #require(d.wait { d.status(.workload, "gone") != nil && d.status(.workload, "keep") != nil }, "keep and gone stored")
        let kept = try #require(try d.storedRow(.workload, "keep"))
        #expect(d.terminate(signal: SIGKILL) != nil)
        // While it is down: one spec changes, one object goes.
        d.write("w.yaml", wl("keep", gpu: 4))
        let d2 = try DaemonUnderTest(reusing: d)
        try #require(d2.wait { d2.status(.workload, "keep")?["observedGeneration"]?.intValue == 2 }, "keep observed at generation 2")
        let row = try #require(try d2.storedRow(.workload, "keep"))
        #expect(row.uid == kept.uid)
        #expect(row.creationTime == kept.creationTime)
        #expect(try d2.wait { try d2.storedRow(.workload, "gone") == nil }, "gone deleted")
        #expect(d2.terminate() == 0)
    }

    @Test func fileBrokenWhileDownKeepsItsObjectsAfterRestart() throws {
        let d = try DaemonUnderTest()
        d.write("q.yaml", queueManifest)
        d.write("w.yaml", wl("alpha", priority: 1) + "---\n" + wl("beta"))
        try #require(d.wait { d.status(.workload, "beta") != nil && d.status(.workload, "alpha") != nil }, "alpha and beta stored")
        let generation = try #require(try d.storedRow(.workload, "alpha")).generation
        #expect(d.terminate() == 0)
        d.write("w.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: [oops\n")
        d.write("gone.yaml", "")   // an ordinary file removal elsewhere still deletes
        let d2 = try DaemonUnderTest(reusing: d)
        try #require(d2.wait { d2.log.contains("initial sync complete") }, "initial sync complete")
        #expect(try d2.storedStatus(.workload, "alpha") != nil && d2.storedStatus(.workload, "beta") != nil)
        #expect(try d2.storedRow(.workload, "alpha")?.generation == generation)
        #expect(d2.wait { d2.events().contains { $0.reason == "ManifestUnreadable" && $0.objName == "alpha" } }, "ManifestUnreadable event for alpha")
        // Once the file is fixed, its objects follow it again.
        d2.write("w.yaml", wl("alpha", priority: 2))
        #expect(d2.wait { d2.status(.workload, "alpha")?["observedGeneration"]?.intValue == generation + 1 }, "alpha observed at the next generation")
        #expect(d2.terminate() == 0)
    }

    @Test func periodicResyncCatchesChangesInotifyCannotSee() throws {
        // A manifest symlinked from outside the tree: edits to its target raise no inotify
        // event in the spec directory, so only the resync (2 s in these tests) sees them.
        let outsideDir = try makeTemporaryDirectory("gantry-outside-")
        defer { removeTree(outsideDir) }
        let outside = outsideDir + "/linked.yaml"
        try (queueManifest + "---\n" + wl("linked")).write(toFile: outside, atomically: false, encoding: .utf8)
        let d = try DaemonUnderTest()
        try #require(symlink(outside, d.spec + "/linked.yaml") == 0)
        try #require(d.wait { d.status(.workload, "linked")?["observedGeneration"]?.intValue == 1 }, "linked observed at generation 1")
        try (queueManifest + "---\n" + wl("linked", gpu: 3)).write(toFile: outside, atomically: false, encoding: .utf8)
        #expect(d.wait(6) { d.status(.workload, "linked")?["observedGeneration"]?.intValue == 2 }, "linked observed at generation 2 after a resync")
        #expect(d.terminate() == 0)
    }

    @Test func sigtermDuringTheInitialLoadExitsCleanlyAndLosesNothing() throws {
        let base = try makeTemporaryDirectory("gantry-e2e-")
        let spec = base + "/spec"
        try FileManager.default.createDirectory(atPath: spec, withIntermediateDirectories: true)
        try queueManifest.write(toFile: spec + "/a-queue.yaml", atomically: false, encoding: .utf8)
        for f in 0..<200 {   // several 64-file chunks, so the signal lands mid-scan
            let docs = (0..<20).map { wl("w-\(f)-\($0)") }.joined(separator: "---\n")
            try docs.write(toFile: spec + "/w-\(f).yaml", atomically: false, encoding: .utf8)
        }
        let d = try DaemonUnderTest(spec: spec, state: base + "/state", logPath: base + "/daemon.log", removing: base)
        try #require(d.wait { d.log.contains("starting") }, "the daemon logged starting")
        let start = Date()
        #expect(d.terminate() == 0)
        #expect(Date().timeIntervalSince(start) < 10)
        let firstLog = try d.readLog()
        // The case under test: the signal landed while the initial load ran.
        #expect(firstLog.contains("initial sync interrupted"), "the SIGTERM arrived after the initial load: nothing was interrupted")
        let d2 = try DaemonUnderTest(reusing: d)
        try #require(d2.wait(30) { d2.log.contains("initial sync complete") }, "the second daemon's initial sync complete")
        let rows = try d2.storedRows(.workload)
        try #require(rows.count == 4000)
        #expect(rows.allSatisfy { $0.statusJSON != nil })
        #expect(!(try d2.readLog().contains("removed while the daemon was down")))
        #expect(d2.terminate() == 0)
    }

    @Test func secondDaemonOnTheSameStateIsRefused() throws {
        let d = try DaemonUnderTest()
        d.write("q.yaml", queueManifest)
        try #require(d.wait { d.status(.queue, "research") != nil }, "queue research stored")
        let (code, output) = runCLI(["run", "--spec-dir", d.spec, "--state-dir", d.state, "--local-gpus", "0"], timeout: 15)
        #expect(code == 1)
        #expect(output.contains("another gantry daemon"))
        #expect(d.process.isRunning)
        #expect(d.terminate() == 0)
    }

    @Test func validateExitCodes() throws {
        let dir = try makeTemporaryDirectory("gantry-validate-")
        defer { removeTree(dir) }
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
        try #require(d.wait { d.status(.workload, "b") != nil && d.status(.workload, "a") != nil }, "a and b stored")
        #expect(d.terminate() == 0)
        let (code, table) = runCLI(["get", "workloads", "-A", "--state-dir", d.state, "--sort-by", "gpus"])
        #expect(code == 0)
        let lines = table.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAMESPACE") == true)
        #expect(lines.count == 3 && lines[1].contains(" b ") )
        let (jc, json) = runCLI(["get", "workload", "a", "-n", "team-a", "--state-dir", d.state, "-o", "json"])
        #expect(jc == 0)
        let v = try JSON.parse(json)
        #expect(v["status"]?["phase"]?.stringValue == "Pending")
        let (lc, list) = runCLI(["get", "workloads", "-n", "team-a", "--state-dir", d.state, "-o", "json", "--phase", "Pending", "--limit", "1"])
        #expect(lc == 0)
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
        try #require(d.wait { d.status(.workload, "a")?["phase"]?.stringValue == "Running" }, "a running")
        let a = try #require(d.status(.workload, "a"))
        let gpus = (a["admission"]?["replicas"]?.arrayValue ?? []).flatMap { $0["gpus"]?.arrayValue ?? [] }.compactMap(\.intValue)
        #expect(gpus.sorted() == Array(0..<8))
        // A higher-priority workload of the same queue takes the GPUs; a waits, first in line.
        d.write("b.yaml", wl("b", priority: 1, gpu: 8, command: "sleep 600"))
        try #require(d.wait { d.status(.workload, "b")?["admission"] != nil }, "b admitted")
        try #require(d.wait { d.status(.workload, "a")?["queuePosition"]?.intValue == 0 }, "a first in line")
        let pre = d.status(.workload, "a")?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Preempted" }
        #expect(pre?["reason"]?.stringValue == "InQueue" && pre?["message"]?.stringValue?.contains("team-a/b") == true)
        d.write("c.yaml", wl("c", gpu: 2, command: "sleep 600"))
        try #require(d.wait { d.status(.workload, "c")?["queuePosition"]?.intValue == 0 }, "c first in line")
        try #require(d.wait { d.status(.queue, "research")?["pending"]?.intValue == 2 }, "two pending in research")
        let (tc, table) = runCLI(["get", "workloads", "-A", "--state-dir", d.state])
        #expect(tc == 0)
        let header = table.split(separator: "\n").first.map(String.init) ?? ""
        #expect(header.contains("QUEUE-POS") && header.contains("NODES"))
        #expect(table.split(separator: "\n").contains { $0.contains(" b ") && $0.contains(" - ") })
        let (_, queues) = runCLI(["get", "queues", "--state-dir", d.state])
        #expect(queues.contains("gpu=8") && queues.contains("BORROWED"))
        let (_, dq) = runCLI(["describe", "queue", "research", "--state-dir", d.state])
        // Admission order: c (priority 0) before a (priority -1), each with its reason.
        let ci = try #require(dq.range(of: "team-a/c")?.lowerBound), ai = try #require(dq.range(of: "team-a/a")?.lowerBound)
        #expect(ci < ai)
        #expect(dq.contains("Pending Workloads (admission order): 2") && dq.contains("WaitingForQuota"))
        // kill -9, then a new daemon: b keeps its GPUs, nothing is admitted twice.
        #expect(d.terminate(signal: SIGKILL) != nil)
        let before = try #require(try d.storedStatus(.workload, "b")?["admission"])
        let d2 = try DaemonUnderTest(reusing: d, extra: ["--local-gpus", "8", "--grace-period", "2s"])
        try #require(d2.wait { d2.log.contains("initial sync complete") }, "initial sync complete")
        #expect(try d2.storedStatus(.workload, "b")?["admission"] == before)
        let a2 = try #require(try d2.storedStatus(.workload, "a")), c2 = try #require(try d2.storedStatus(.workload, "c"))
        #expect(a2["admission"] == nil && c2["admission"] == nil)
        // b's manifest goes: c (first in line) is admitted; a (8 GPUs) no longer fits beside it.
        d2.remove("b.yaml")
        try #require(d2.wait { d2.status(.workload, "c")?["admission"] != nil }, "c admitted")
        try #require(d2.wait { d2.status(.workload, "a")?["queuePosition"]?.intValue == 0 }, "a first in line")
        let a3 = try #require(try d2.storedStatus(.workload, "a"))
        #expect(a3["admission"] == nil)
        #expect(d2.terminate() == 0)
    }
}
