import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore
import Glibc
@testable import GantryShim

/// End-to-end runs of real replica processes under the real daemon and `gantry-shim`.
@Suite(.serialized, .timeLimit(.minutes(1))) struct RunEndToEndTests {
    /// A scratch directory replicas write into; the caller removes it.
    func scratch() throws -> String { try makeTemporaryDirectory("gantry-out-") }

    /// A scratch directory replicas write into, inside `d`'s temporary tree: removed with it,
    /// after the replicas that write into it are killed.
    func scratch(in d: DaemonUnderTest) throws -> String {
        let root = try #require(d.directories.root, "the daemon's directories are the caller's")
        let dir = root + "/out-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A daemon with `gpus` local GPUs and queue "research"; `grace`: --grace-period.
    func daemon(gpus: Int, grace: String? = nil) throws -> DaemonUnderTest {
        let d = try DaemonUnderTest(extra: ["--local-gpus", String(gpus)] + (grace.map { ["--grace-period", $0] } ?? []))
        d.write("q.yaml", queueManifest)
        return d
    }

    func job(_ name: String, gpu: Int = 1, command: String, extra: String = "") -> String {
        wl(name, gpu: gpu, command: command) + extra
    }

    func phase(_ d: DaemonUnderTest, _ name: String) -> String? { d.status(.workload, name)?["phase"]?.stringValue }

    /// A file's text; "" when it cannot be read. Only to compare with a non-empty expectation.
    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The supervisor's record of a replica of the first dispatch; throws when it cannot be read.
    func record(_ d: DaemonUnderTest, _ name: String, rank: Int = 0) throws -> ReplicaRecord {
        ReplicaRecord(text: try String(contentsOfFile: d.state + "/replicas/team-a.\(name).1.\(rank).0.rec", encoding: .utf8))
    }

    /// A daemon with one GPU running one service replica: the daemon, its manifest, its pid.
    func runningService(_ name: String, command: String, grace: String) throws -> (DaemonUnderTest, String, Int32) {
        let d = try daemon(gpus: 1, grace: grace)
        let manifest = job(name, command: command, extra: "  type: Deployment\n")
        d.write("w.yaml", manifest)
        try #require(d.wait(15) { phase(d, name) == "Running" }, "\(name) running")
        let pid = try #require(d.status(.workload, name)?["replicas"]?.arrayValue?.first?["pid"]?.intValue.map(Int32.init))
        try #require(pid > 1 && isAlive(pid), "the replica's pid \(pid) names a live process")
        return (d, manifest, pid)
    }

    @Test func pytorchJobReplicasGetTheirEnvironmentAndSucceed() throws {
        let d = try daemon(gpus: 8)
        let out = try scratch(in: d)
        let cmd = "echo \"$RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT $CUDA_VISIBLE_DEVICES $NODE_RANK $LOCAL_RANK $GANTRY_WORKLOAD $PWD\" > \(out)/rank-$RANK; echo hello from $RANK; echo 'gantry.metric loss=0.25 step=3'"
        d.write("w.yaml", job("pt", gpu: 4, command: cmd, extra: "  type: PyTorchJob\n  replicas: 2\n"))
        try #require(d.wait(20) { phase(d, "pt") == "Succeeded" }, "pt succeeded")
        let r0 = try String(contentsOfFile: out + "/rank-0", encoding: .utf8).split(separator: " ").map(String.init)
        let r1 = try String(contentsOfFile: out + "/rank-1", encoding: .utf8).split(separator: " ").map(String.init)
        try #require(r0.count == 9 && r1.count == 9, "\(r0) \(r1)")
        #expect(r0[0] == "0" && r1[0] == "1")
        #expect(r0[1] == "2" && r1[1] == "2")
        #expect(r0[2] == "127.0.0.1" && r1[2] == "127.0.0.1")
        #expect(r0[3] == r1[3] && Int(r0[3]) != nil)
        #expect([r0[4], r1[4]].sorted() == ["0,1,2,3", "4,5,6,7"])
        #expect(r0[5] == "0" && r1[5] == "1" && r0[6] == "0" && r1[6] == "0")
        #expect(r0[7] == "pt" && r1[7] == "pt")
        #expect(r0[8].hasSuffix("/work/team-a/pt\n") && r1[8] == r0[8])
        let st = try #require(try d.storedStatus(.workload, "pt"))
        #expect(st["dispatchCount"]?.intValue == 1)
        let replicas = try #require(st["replicas"]?.arrayValue)
        try #require(replicas.count == 2)
        #expect(replicas.allSatisfy { $0["exitCode"]?.intValue == 0 && $0["pid"]?.intValue != nil })
        let (lc, logs) = runCLI(["logs", "pt", "-n", "team-a", "--replica", "1", "--state-dir", d.state])
        #expect(lc == 0 && logs.contains("hello from 1"))
        let (_, tail) = runCLI(["logs", "pt", "-n", "team-a", "--tail", "1", "--state-dir", d.state])
        #expect(tail.trimmingCharacters(in: .whitespacesAndNewlines) == "gantry.metric loss=0.25 step=3")
        #expect(d.wait { runCLI(["describe", "workload", "pt", "-n", "team-a", "--state-dir", d.state]).1.contains("loss{rank=0}") }, "the loss metric in describe")
        let (dc, desc) = runCLI(["describe", "workload", "pt", "-n", "team-a", "--state-dir", d.state])
        #expect(dc == 0 && desc.contains("Replicas:") && desc.contains("pt-worker-1") && desc.contains("Succeeded"))
        // Quota is back.
        #expect(try d.wait {
            guard let q = try d.storedStatus(.queue, "research") else { return false }
            return q["allocated"]?["gpu"] == nil || q["allocated"]?["gpu"]?.stringValue == "0"
        }, "research's GPUs released")
        #expect(d.terminate() == 0)
    }

    @Test func failuresAreRetriedThenFail() throws {
        let d = try daemon(gpus: 1)
        d.write("w.yaml", job("flaky", command: "echo attempt $GANTRY_DISPATCH; exit 3", extra: "  maxRetry: 1\n"))
        try #require(d.wait(20) { phase(d, "flaky") == "Failed" }, "flaky failed")
        let st = d.status(.workload, "flaky")
        #expect(st?["dispatchCount"]?.intValue == 2 && st?["retryCount"]?.intValue == 1)
        let fin = st?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Finished" }
        #expect(fin?["reason"]?.stringValue == "RetryLimitExceeded")
        let ev = d.events().first { $0.reason == "RetryLimitExceeded" }
        #expect(ev?.message.contains("exited with code 3") == true && ev?.message.contains("attempt 2") == true)
        #expect(d.events().contains { $0.reason == "Restarting" })
        #expect(d.terminate() == 0)
    }

    @Test func timeoutEndsARunAsDeadlineExceeded() throws {
        let d = try daemon(gpus: 1, grace: "2s")
        d.write("w.yaml", job("slow", command: "sleep 60", extra: "  timeout: 1\n  maxRetry: 2\n"))
        try #require(d.wait(20) { phase(d, "slow") == "Failed" }, "slow failed")
        let fin = d.status(.workload, "slow")?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Finished" }
        #expect(fin?["reason"]?.stringValue == "DeadlineExceeded")
        #expect(d.status(.workload, "slow")?["dispatchCount"]?.intValue == 1)
        #expect(d.terminate() == 0)
    }

    @Test func stopAndResumeWithoutTouchingTheManifest() throws {
        let (d, manifest, pid) = try runningService("svc", command: "sleep 600", grace: "5s")
        let (sc, so) = runCLI(["stop", "svc", "-n", "team-a", "--state-dir", d.state])
        #expect(sc == 0 && so.contains("stopping"))
        try #require(d.wait { phase(d, "svc") == "Stopped" }, "svc stopped")
        #expect(d.wait { !isAlive(pid) }, "the replica \(pid) gone")
        #expect(d.status(.workload, "svc")?["override"]?["suspend"]?.boolValue == true)
        #expect(read(d.spec + "/w.yaml") == manifest)
        let (_, desc) = runCLI(["describe", "workload", "svc", "-n", "team-a", "--state-dir", d.state])
        #expect(desc.contains("Override:") && desc.contains("gantry stop"))
        #expect(runCLI(["resume", "svc", "-n", "team-a", "--state-dir", d.state]).0 == 0)
        #expect(d.wait(15) { phase(d, "svc") == "Running" && d.status(.workload, "svc")?["dispatchCount"]?.intValue == 2 }, "svc running again, dispatch 2")
        #expect(runCLI(["stop", "nope", "-n", "team-a", "--state-dir", d.state]).0 == 1)
        #expect(d.terminate() == 0)
    }

    @Test func aCrashedServiceReplicaIsRestarted() throws {
        let d = try daemon(gpus: 1, grace: "2s")
        d.write("w.yaml", job("web", command: "if [ ! -f crashed ]; then touch crashed; echo crashing; exit 1; fi; echo serving; sleep 600", extra: "  type: Deployment\n"))
        try #require(d.wait(20) {
            let r = d.status(.workload, "web")?["replicas"]?.arrayValue?.first
            return r?["restarts"]?.intValue == 1 && r?["phase"]?.stringValue == "Running"
        }, "web's replica restarted once and running")
        #expect(phase(d, "web") == "Running")
        #expect(d.events().contains { $0.reason == "Restarting" && $0.message.contains("code 1") })
        // Running is reported when the replica starts, before it prints: poll for its output.
        var logs = ""
        #expect(d.wait {
            let (lc, out) = runCLI(["logs", "web", "-n", "team-a", "--state-dir", d.state])
            logs = out
            return lc == 0 && out.contains("serving")
        }, "the restarted replica's output in gantry logs")
        #expect(logs.contains("crashing") && logs.contains("restart 1"), "\(logs)")
        #expect(d.terminate() == 0)
    }

    @Test func workloadsThatCannotRunTogetherRunOneAfterTheOther() throws {
        let d = try daemon(gpus: 8)
        let out = try scratch(in: d)
        let cmd = "date +%s.%N > \(out)/$GANTRY_WORKLOAD.start; sleep 1; date +%s.%N > \(out)/$GANTRY_WORKLOAD.end"
        d.write("a.yaml", job("first", gpu: 8, command: cmd) + "---\n" + job("second", gpu: 8, command: cmd))
        try #require(d.wait(20) { phase(d, "first") == "Succeeded" && phase(d, "second") == "Succeeded" }, "first and second succeeded")
        func t(_ f: String) -> Double { Double(read("\(out)/\(f)").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
        let (s1, e1, s2, e2) = (t("first.start"), t("first.end"), t("second.start"), t("second.end"))
        try #require(s1 > 0 && s2 > 0 && e1 > 0 && e2 > 0, "all four times written")
        #expect(e1 <= s2 || e2 <= s1)   // never both at once on the same 8 GPUs
        #expect(d.terminate() == 0)
    }

    @Test func kill9WhileReplicasRunEndsEveryWorkloadExactlyOnce() throws {
        let d = try daemon(gpus: 8)
        let out = try scratch(in: d)
        let run = { (secs: String) in "echo run >> \(out)/$GANTRY_WORKLOAD.count; sleep \(secs)" }
        d.write("w.yaml", [job("quick", command: run("1")), job("long", gpu: 2, command: run("4")) + "  replicas: 2\n",
                           job("bad", command: run("1") + "; exit 5")].joined(separator: "---\n"))
        try #require(d.wait(15) { ["quick", "long", "bad"].allSatisfy { phase(d, $0) == "Running" } }, "all three running")
        #expect(d.terminate(signal: SIGKILL) != nil)
        // quick and bad end while the daemon is down; long still runs when it is back.
        try #require(try d.wait { try record(d, "quick").exited && record(d, "bad").exited }, "quick and bad exited while the daemon was down")
        for rank in 0..<2 {
            let r = try record(d, "long", rank: rank)
            try #require(r.started && !r.exited && isAlive(r.pid), "long's rank \(rank) still runs when the daemon comes back")
        }
        let d2 = try DaemonUnderTest(reusing: d, extra: ["--local-gpus", "8"])
        try #require(d2.wait(20) { phase(d2, "quick") == "Succeeded" && phase(d2, "bad") == "Failed" && phase(d2, "long") == "Succeeded" },
                     "quick succeeded, bad failed, long succeeded")
        // Restored admissions wait for the end of the initial load, when the local node is
        // known (workers reconcile kinds in any order): none may be refused.
        #expect(!d2.log.contains("no longer holds"), "second daemon:\n\(d2.log)")
        for name in ["quick", "bad"] { #expect(read("\(out)/\(name).count") == "run\n") }
        #expect(read("\(out)/long.count") == "run\nrun\n")   // two replicas, each once
        for name in ["quick", "long", "bad"] {
            #expect(d2.status(.workload, name)?["dispatchCount"]?.intValue == 1, "first daemon:\n\(d.log)\nsecond daemon:\n\(d2.log)")
        }
        #expect(d2.events().filter { $0.reason == "Succeeded" }.count == 2)
        #expect(d2.log.contains("re-attached"))
        #expect(d2.terminate() == 0)
    }

    @Test func aReplicaWhoseSupervisorVanishedIsLostAndRetried() throws {
        let d = try daemon(gpus: 1)
        d.write("w.yaml", job("orphan", command: "sleep 600", extra: "  maxRetry: 1\n"))
        try #require(d.wait(15) { phase(d, "orphan") == "Running" }, "orphan running")
        let rec = try record(d, "orphan")
        let pid = try #require(d.status(.workload, "orphan")?["replicas"]?.arrayValue?.first?["pid"]?.intValue.map(Int32.init))
        try #require(rec.started && rec.pid == pid, "the record names the replica \(pid)")
        let shim = rec.shimPid
        try #require(shim > 1 && shim != pid && isAlive(shim) && isAlive(pid), "live supervisor \(shim) and replica \(pid)")
        try #require(signalProcess(shim, SIGKILL) == 0)
        try #require(d.wait(15) { d.status(.workload, "orphan")?["dispatchCount"]?.intValue == 2 }, "orphan dispatched again")
        // A supervisor that died is not the workload's failure: maxRetry is not spent.
        #expect(d.events().contains { $0.reason == "InfrastructureFailure" && $0.message.contains("was lost") && $0.message.contains("maxRetry not spent") })
        #expect(d.status(.workload, "orphan")?["retryCount"]?.intValue ?? 0 == 0)
        #expect(d.wait { !isAlive(pid) }, "the orphaned replica \(pid) killed, not left running")
        #expect(d.terminate() == 0)
    }

    /// The supervisor cannot make the working directory (`STATE/work` is a file, as a stand-in
    /// for a full disk): an infrastructure fault naming errno and path, retried without
    /// spending maxRetry 0, and the workload succeeds once the directory can be made.
    @Test func aWorkDirectoryThatCannotBeMadeIsRetriedWithoutSpendingMaxRetry() throws {
        let d = try daemon(gpus: 1)
        defer { try? FileManager.default.removeItem(atPath: (d.spec as NSString).deletingLastPathComponent) }
        #expect(d.wait { FileManager.default.fileExists(atPath: d.state + "/replicas") })   // the daemon made its state directory
        try? FileManager.default.removeItem(atPath: d.state + "/work")
        #expect(FileManager.default.createFile(atPath: d.state + "/work", contents: Data("not a directory".utf8)))
        d.write("w.yaml", job("blocked", command: "true", extra: "  maxRetry: 0\n"))
        #expect(d.wait(15) { d.events().contains { $0.reason == "InfrastructureFailure" && $0.message.contains("mkdir ") && $0.message.contains("/work/team-a/blocked") && $0.message.contains("(errno 20)") } })
        #expect(phase(d, "blocked") != "Failed")
        #expect(d.status(.workload, "blocked")?["retryCount"]?.intValue ?? 0 == 0)
        try FileManager.default.removeItem(atPath: d.state + "/work")
        #expect(d.wait(20) { phase(d, "blocked") == "Succeeded" })
        #expect(d.status(.workload, "blocked")?["retryCount"]?.intValue ?? 0 == 0)
        #expect((d.status(.workload, "blocked")?["dispatchCount"]?.intValue ?? 0) >= 2)
        #expect(d.terminate() == 0)
    }

    /// Runs mount/umount (tests run as root; a container may forbid it).
    static func sh(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command + " 2>/dev/null"]
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    static let canMountTmpfs: Bool = {
        let dir = NSTemporaryDirectory() + "gantry-mnt-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { return false }
        guard sh("mount -t tmpfs -o size=64k,nr_inodes=2 tmpfs '\(dir)'") == 0 else { return false }
        return sh("umount '\(dir)'") == 0
    }()

    /// A real full disk: `STATE/work` on a tmpfs with no inode left, so making a working
    /// directory fails with ENOSPC. The workload (maxRetry 0) is retried, not failed; the node
    /// gets DiskPressure and admits nothing new; once space is back a probe relieves it and
    /// both workloads succeed. Needs root and mount(8); skipped where mounting is refused.
    @Test(.enabled(if: RunEndToEndTests.canMountTmpfs)) func aFullDiskIsAnInfrastructureFaultWithDiskPressure() throws {
        let d = try daemon(gpus: 2)
        let base = (d.spec as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: base) }
        #expect(d.wait { FileManager.default.fileExists(atPath: d.state + "/replicas") })
        let work = d.state + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try #require(RunEndToEndTests.sh("mount -t tmpfs -o size=64k,nr_inodes=2 tmpfs '\(work)'") == 0)
        var mounted = true
        defer { if mounted { _ = RunEndToEndTests.sh("umount '\(work)'") } }
        #expect(FileManager.default.createFile(atPath: work + "/filler", contents: Data()))   // the last inode
        #expect(mkdir(work + "/probe", 0o755) != 0 && errno == ENOSPC)
        func node() -> Value? { d.rows(.node).first?.statusJSON.flatMap { try? JSON.parse($0) } }
        func pressure() -> String? { node()?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "DiskPressure" }?["status"]?.stringValue }
        d.write("w.yaml", job("full", command: "true", extra: "  maxRetry: 0\n"))
        #expect(d.wait(15) { d.events().contains { $0.reason == "InfrastructureFailure" && $0.objName == "full" && $0.message.contains("/work/team-a") && $0.message.contains("No space left on device (errno 28)") } })
        #expect(d.wait { pressure() == "True" })
        #expect(node()?["phase"]?.stringValue == "DiskPressure")
        #expect(phase(d, "full") != "Failed" && d.status(.workload, "full")?["retryCount"]?.intValue ?? 0 == 0)
        // Nothing new lands on the node while the disk is full.
        d.write("later.yaml", job("later", command: "true"))
        #expect(d.wait { d.status(.workload, "later")?["conditions"]?.arrayValue?.contains { $0["type"]?.stringValue == "Admitted" && $0["reason"]?.stringValue == "NoFittingNodes" } == true })
        // Space is back.
        #expect(RunEndToEndTests.sh("umount '\(work)'") == 0)
        mounted = false
        #expect(d.wait(30) { pressure() == "False" })
        #expect(d.wait(30) { phase(d, "full") == "Succeeded" && phase(d, "later") == "Succeeded" })
        #expect(d.status(.workload, "full")?["retryCount"]?.intValue ?? 0 == 0)
        #expect(d.terminate() == 0)
    }

    @Test func aReplicaIgnoringSIGTERMIsKilledAfterTheGracePeriod() throws {
        // It notes the SIGTERM in its working directory and carries on.
        let (d, manifest, pid) = try runningService("stubborn", command: "trap 'echo TERM >> term' TERM; while :; do sleep 0.2; done", grace: "2s")
        let term = d.state + "/work/team-a/stubborn/term"
        d.write("w.yaml", manifest + "  suspend: true\n")
        try #require(d.wait { phase(d, "stubborn") == "Stopped" }, "stubborn stopped")
        try #require(d.wait { FileManager.default.fileExists(atPath: term) }, "the replica got SIGTERM")
        #expect(isAlive(pid))   // SIGTERM survived: still there within the grace period
        #expect(d.wait(10) { !isAlive(pid) }, "the replica \(pid) killed after the grace period")
        #expect(d.wait { d.events().contains { $0.reason == "Killed" } }, "a Killed event")
        #expect(d.terminate() == 0)
    }
}
