import Testing
import Foundation
import Glibc
@testable import GantryAPI
@testable import ControllerRuntime
@testable import Controllers
@testable import GantryShim
import GantryServer

/// A throw-away Unix account for a test, made with `useradd --system --no-create-home`; the
/// test removes it (`remove()`, in a defer). nil (with a message) when the tests do not run
/// as root or the machine has no useradd.
struct ThrowawayUser {
    let name: String
    let uid: uid_t
    let gid: gid_t

    static func make() -> ThrowawayUser? {
        guard geteuid() == 0 else { print("skipped: run-as tests need root (they create a Unix account)"); return nil }
        guard let add = (["/usr/sbin/useradd", "/sbin/useradd"] as [String]).first(where: { access($0, X_OK) == 0 }) else {
            print("skipped: no useradd on this machine"); return nil
        }
        let name = "gantrytest\(Int.random(in: 10000...99999))"
        let o = runProcess(add, ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], timeout: 20)
        guard o.status == 0 else { Issue.record("useradd \(name) failed (\(o.status)): \(o.output)"); return nil }
        guard case .found(let a) = Account.lookup(name) else {
            Issue.record("useradd \(name) made no account that getpwnam finds")
            ThrowawayUser(name: name, uid: 0, gid: 0).remove()
            return nil
        }
        return ThrowawayUser(name: name, uid: a.uid, gid: a.gid)
    }

    func remove() {
        let del = (["/usr/sbin/userdel", "/sbin/userdel"] as [String]).first { access($0, X_OK) == 0 } ?? "/usr/sbin/userdel"
        let o = runProcess(del, [name], timeout: 20)
        if o.status != 0 { Issue.record("userdel \(name) failed (\(o.status)): \(o.output)") }
    }
}

func ownerUID(_ path: String) -> uid_t? {
    var st = stat()
    return stat(path, &st) == 0 ? st.st_uid : nil
}

/// Which account a replica runs as, the supervisor's drop to it, and the log timestamps index.
@Suite(.serialized, .timeLimit(.minutes(1))) struct RunAsTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var what: String
        var annotation: String?
        var apiOwned: Bool
        var daemonRunAs: String?
        var root: Bool
        /// The account, or "REFUSED".
        var expect: String?
        var testDescription: String { what }
    }

    static let cases: [Case] = [
        Case(what: "annotation wins over --run-as", annotation: "alice", apiOwned: false, daemonRunAs: "ops", root: true, expect: "alice"),
        Case(what: "annotation on an API object", annotation: "bob", apiOwned: true, daemonRunAs: "ops", root: true, expect: "bob"),
        Case(what: "an admin's mapping to root", annotation: "root", apiOwned: true, daemonRunAs: nil, root: true, expect: "root"),
        Case(what: "spec dir takes --run-as", annotation: nil, apiOwned: false, daemonRunAs: "ops", root: true, expect: "ops"),
        Case(what: "spec dir, no --run-as: the daemon's account", annotation: nil, apiOwned: false, daemonRunAs: nil, root: true, expect: nil),
        Case(what: "API object without a mapping, root daemon: refused", annotation: nil, apiOwned: true, daemonRunAs: "ops", root: true, expect: "REFUSED"),
        Case(what: "API object without a mapping, unprivileged daemon: itself", annotation: nil, apiOwned: true, daemonRunAs: "ops", root: false, expect: nil),
        Case(what: "invalid annotation: refused", annotation: "-rf", apiOwned: false, daemonRunAs: nil, root: true, expect: "REFUSED"),
        Case(what: "empty annotation: refused", annotation: "", apiOwned: true, daemonRunAs: nil, root: false, expect: "REFUSED"),
    ]

    @Test(arguments: cases) func accountDecision(_ c: Case) {
        let d = RunAs.decide(annotations: c.annotation.map { [RunAs.annotation: $0] } ?? ["other": "x"], apiOwned: c.apiOwned,
                             daemonRunAs: c.daemonRunAs, daemonIsRoot: c.root)
        if c.expect == "REFUSED" {
            guard case .refused(let why) = d else { Issue.record("\(c.what): \(d)"); return }
            #expect(why.contains(RunAs.annotation))
        } else {
            #expect(d == .account(c.expect), "\(c.what)")
        }
    }

    @Test func theAnnotationIsTheAPIs() {
        #expect(RunAs.annotation == APIObject.runAsAnnotation)
    }

    @Test func accountNames() {
        for ok in ["alice", "svc-1", "a.b_c", "1001", "host$", String(repeating: "a", count: 32)] { #expect(RunAs.isAccountName(ok), "\(ok)") }
        for bad in ["", "-x", "a b", "a/b", "..", "ä", "$", "a$b", String(repeating: "a", count: 33), "a\nb"] { #expect(!RunAs.isAccountName(bad), "\(bad)") }
    }

    // MARK: The lifecycle

    struct Life {
        var h: Harness
        let rt = FakeRuntime()
        init(runAs: String?, root: Bool) {
            var o = LifecycleOptions()
            o.runAs = runAs
            o.daemonIsRoot = root
            h = Harness(runtime: rt, options: o)
            h.cluster(nodes: ["n1"])
        }
        func launches(_ name: String) -> [ReplicaLaunch] { rt.launches.filter { $0.ref.key.name == name } }
    }

    func yaml(_ name: String, annotation: String? = nil) -> String {
        let ann = annotation.map { ", annotations: {\(RunAs.annotation): \($0)}" } ?? ""
        return "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name), namespace: team-a\(ann)}\nspec:\n  queue: research\n  command: \"true\"\n  resources: {gpu: 1}\n"
    }

    @Test func lifecyclePassesTheAccountToTheRuntime() throws {
        var t = Life(runAs: "ops", root: true)
        t.h.apply("a.yaml", yaml("a"))
        t.h.apply("b.yaml", yaml("b", annotation: "alice"))
        t.h.apply(apiSourcePrefix + "team-a.c.yaml", yaml("c", annotation: "bob"))
        #expect(t.launches("a").map(\.user) == ["ops"])
        #expect(t.launches("b").map(\.user) == ["alice"])
        #expect(t.launches("c").map(\.user) == ["bob"])
    }

    /// An API-written workload with no account under a root daemon never starts: it fails
    /// with reason RunAsRefused (condition and event), and its GPUs go back.
    @Test func apiWorkloadWithoutAMappingIsRefusedUnderARootDaemon() throws {
        var t = Life(runAs: "ops", root: true)
        t.h.apply(apiSourcePrefix + "team-a.x.yaml", yaml("x"))
        t.h.clock.advance(by: 0.001); t.h.admission.tick(); t.h.drain()
        #expect(t.launches("x").isEmpty)
        #expect(t.rt.s.withLock { $0.intents.isEmpty }, "nothing journaled")
        let s = try #require(t.h.workload("x"))
        #expect(s.phase == .failed)
        #expect(s.conditions.get(ConditionType.finished)?.reason == RunAs.refusedReason)
        #expect(s.message.contains("not started") && s.message.contains(RunAs.annotation))
        #expect(t.h.events.all.contains { $0.reason == RunAs.refusedReason && $0.involved.name == "x" })
        #expect(t.h.inventory.statuses.get(ObjectKey(.queue, name: "research"))?.queue?.allocated.gpu == 0)
        // The same object from an unprivileged daemon runs as that daemon.
        var u = Life(runAs: nil, root: false)
        u.h.apply(apiSourcePrefix + "team-a.x.yaml", yaml("x"))
        #expect(u.launches("x").count == 1 && u.launches("x").first?.user == nil)
    }

    /// A service replica restarting after its API workload lost its account mapping does not
    /// start (never as root): the gang fails with RunAsRefused.
    @Test func aRestartWithoutTheMappingIsRefused() throws {
        var t = Life(runAs: nil, root: true)
        let path = apiSourcePrefix + "team-a.s.yaml"
        t.h.apply(path, yaml("s", annotation: "alice") + "  type: Deployment\n")
        try #require(t.launches("s").map(\.user) == ["alice"])
        let ref = try #require(t.launches("s").first?.ref)
        t.h.admission.runtimeEvent(.started(ref, pid: 4242, at: t.h.clock.now()))
        t.h.drain()
        #expect(t.h.workload("s")?.phase == .running)
        t.h.apply(path, yaml("s") + "  type: Deployment\n")   // the annotation is gone; the spec is the same
        t.h.admission.runtimeEvent(.exited(ref, code: 1, signal: 0, at: t.h.clock.now()))
        t.h.drain()
        for _ in 0..<3 { t.h.clock.advance(by: 2); t.h.admission.tick(); t.h.drain() }
        #expect(t.launches("s").count == 1, "no restart")
        #expect(t.h.workload("s")?.phase == .failed)
        #expect(t.h.workload("s")?.conditions.get(ConditionType.finished)?.reason == RunAs.refusedReason)
    }

    // MARK: The log timestamps index

    @Test func logTimesReaderTakesWholeValidLinesInOrder() {
        let text = "0 100.5\n12 100.75\ngarbage\n30 1e5\n40 101.000001\n25 102.0\n50 102.5\n60 10"
        let e = LogTimes.parse(Array(text.utf8))
        // An offset going back means the log started over: only what follows counts; the torn last line is skipped.
        #expect(e.map(\.offset) == [25, 50] && e.map(\.time) == [102.0, 102.5])
        let f = LogTimes.parse(Array("0 1.0\n10 2.0\n20 3.0\n".utf8))
        #expect(LogTimes.time(at: 0, in: f) == 1.0)
        #expect(LogTimes.time(at: 9, in: f) == 1.0)
        #expect(LogTimes.time(at: 10, in: f) == 2.0)
        #expect(LogTimes.time(at: 1000, in: f) == 3.0)
        #expect(LogTimes.time(at: -1, in: f) == nil)
        #expect(LogTimes.time(at: 5, in: []) == nil)
        #expect(LogTimes.load(path: "/nonexistent/log") .isEmpty)
    }

    /// The supervisor's log writes index their times at most every 100 ms; the index rotates
    /// with the log and counts against the cap.
    @Test func cappedLogIndexesTimesAndRotatesThem() throws {
        let d = try makeTemporaryDirectory("gantry-times-")
        defer { removeTree(d) }
        let path = d + "/x.log"
        var log = CappedLog(path: path, max: 400)
        log.write(Array("header\n".utf8))                 // untimed: not indexed
        log.write(Array("a\n".utf8), at: 1000.0)
        log.write(Array("b\n".utf8), at: 1000.05)          // within 100 ms: no new line
        log.write(Array("c\n".utf8), at: 1000.2)
        var e = LogTimes.load(path: path)
        #expect(e.map(\.offset) == [7, 11] && e.map(\.time) == [1000.0, 1000.2])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "header\na\nb\nc\n")
        #expect(LogTimes.time(at: 9, in: e) == 1000.0)    // "b" goes by the earlier time
        #expect(LogTimes.time(at: 0, in: e) == nil)       // the header has none
        #expect(try String(contentsOfFile: path + ".times", encoding: .utf8) == "7 1000.000000\n11 1000.200000\n")
        // Past half the cap (200 bytes, log and index together): both rotate, the new output
        // starts the new file and its index.
        let xs = Array(repeating: UInt8(ascii: "x"), count: 150) + [10]
        log.write(xs, at: 1001.0)
        log.write(Array("after\n".utf8), at: 1002.0)
        log.close()
        e = LogTimes.load(path: path)
        #expect(e.map(\.offset) == [0, 151] && e.map(\.time) == [1001.0, 1002.0])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == String(decoding: xs, as: UTF8.self) + "after\n")
        #expect(try String(contentsOfFile: path + ".1", encoding: .utf8) == "header\na\nb\nc\n")
        #expect(LogTimes.load(path: path + ".1").map(\.offset) == [7, 11])
        for p in [path, path + ".1"] {
            let size = (try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0
            let idx = (try FileManager.default.attributesOfItem(atPath: p + ".times")[.size] as? Int) ?? 0
            #expect(size + idx <= 200, "\(p): \(size) + \(idx)")
        }
    }

    /// The real supervisor: output read at different times gets index lines with those times.
    @Test func supervisorWritesTheTimesIndex() throws {
        let bin = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().appendingPathComponent("gantry-shim").path
        let d = try makeTemporaryDirectory("gantry-times-")
        defer { removeTree(d) }
        let before = wallSeconds()
        let o = runProcess(bin, ["--record", d + "/r", "--log", d + "/x.log", "--workdir", d + "/w", "--header", "hdr", "--",
                                 "/bin/sh", "-c", "echo one; sleep 0.3; echo two"], timeout: 20)
        #expect(o.status == 0)
        let log = try String(contentsOfFile: d + "/x.log", encoding: .utf8)
        #expect(log == "hdr\none\ntwo\n")
        let e = LogTimes.load(path: d + "/x.log")
        try #require(e.count == 2, "\(e)")
        #expect(e[0].offset == 4 && e[1].offset == 8)
        #expect(e[0].time >= before - 1 && e[1].time - e[0].time >= 0.25)
    }

    // MARK: Dropping to the account (root only)

    func shimBinary() -> String {
        URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().appendingPathComponent("gantry-shim").path
    }

    /// As root, with a throw-away account: the replica runs with its uid and groups, HOME,
    /// USER and LOGNAME; it cannot write the state directory (EACCES); its working directory
    /// and log belong to it, the record stays root's. An unknown account: exit 126 with the
    /// reason in the log, nothing started.
    @Test func supervisorDropsToTheAccount() throws {
        guard let u = ThrowawayUser.make() else { return }
        defer { u.remove() }
        let d = try makeTemporaryDirectory("gantry-runas-")
        defer { removeTree(d) }
        #expect(chmod(d, 0o755) == 0)
        let script = "id -u; id -G; echo \"$HOME|$USER|$LOGNAME\"; pwd; if echo x > \(d)/forbidden; then echo WROTE; else echo DENIED; fi; echo 'gantry.metric m=1'"
        let o = runProcess(shimBinary(), ["--record", d + "/r", "--log", d + "/logs/x.log", "--metrics", d + "/logs/x.metrics", "--workdir", d + "/work/w",
                                          "--user", u.name, "--header", "hdr", "--", "/bin/sh", "-c", script], timeout: 20)
        #expect(o.status == 0, "\(o.output)")
        let rec = ReplicaRecord(text: try String(contentsOfFile: d + "/r.rec", encoding: .utf8))
        #expect(rec.code == 0 && rec.pid > 1)
        let lines = try String(contentsOfFile: d + "/logs/x.log", encoding: .utf8).split(separator: "\n").map(String.init)
        try #require(lines.count >= 7, "\(lines)")
        #expect(lines[1] == String(u.uid))
        #expect(lines[2] == String(u.gid), "supplementary groups: the account's only")
        #expect(lines[3].hasSuffix("|\(u.name)|\(u.name)") && !lines[3].hasPrefix("/root"))
        #expect(lines[4] == d + "/work/w")
        #expect(lines[5].contains("Permission denied") && lines[6] == "DENIED", "\(lines)")
        #expect(!FileManager.default.fileExists(atPath: d + "/forbidden"))
        #expect(ownerUID(d + "/logs/x.log") == u.uid)
        #expect(ownerUID(d + "/logs/x.metrics") == u.uid)
        #expect(ownerUID(d + "/work/w") == u.uid)
        #expect(ownerUID(d + "/r.rec") == 0)
        #expect(ownerUID(d + "/logs") == 0)

        let bad = runProcess(shimBinary(), ["--record", d + "/bad", "--log", d + "/logs/bad.log", "--workdir", d + "/work/b",
                                            "--user", "nosuchuser\(Int.random(in: 1000...9999))", "--", "/bin/sh", "-c", "echo RAN"], timeout: 20)
        #expect(bad.status == 0)
        let badRec = ReplicaRecord(text: try String(contentsOfFile: d + "/bad.rec", encoding: .utf8))
        #expect(badRec.code == Shim.runAsFailureCode && badRec.fault == nil && !badRec.started)
        let badLog = try String(contentsOfFile: d + "/logs/bad.log", encoding: .utf8)
        #expect(badLog.contains("no such account") && !badLog.contains("RAN"))
    }

    /// A supervisor that is not root (here: one started by a root supervisor as the account)
    /// runs a replica as its own account, and refuses any other with exit 126.
    @Test func anUnprivilegedSupervisorRefusesAnotherAccount() throws {
        guard let u = ThrowawayUser.make() else { return }
        defer { u.remove() }
        let d = try makeTemporaryDirectory("gantry-runas-")
        defer { removeTree(d) }
        #expect(chmod(d, 0o755) == 0)
        let w = d + "/work/w"   // the outer replica's working directory: the account's
        let inner = { (user: String, tag: String) in
            "\(self.shimBinary()) --record \(w)/\(tag) --log \(w)/\(tag).log --workdir \(w)/\(tag)-wd --user \(user) -- /bin/sh -c 'id -u; echo $USER'"
        }
        let o = runProcess(shimBinary(), ["--record", d + "/r", "--log", d + "/x.log", "--workdir", w, "--user", u.name, "--",
                                          "/bin/sh", "-c", inner("root", "other") + "; " + inner(u.name, "same")], timeout: 20)
        #expect(o.status == 0)
        #expect(ReplicaRecord(text: (try? String(contentsOfFile: d + "/r.rec", encoding: .utf8)) ?? "").code == 0)
        let other = ReplicaRecord(text: try String(contentsOfFile: w + "/other.rec", encoding: .utf8))
        #expect(other.code == Shim.runAsFailureCode && !other.started)
        let otherLog = try String(contentsOfFile: w + "/other.log", encoding: .utf8)
        #expect(otherLog.contains("not as root"), "\(otherLog)")
        let same = ReplicaRecord(text: try String(contentsOfFile: w + "/same.rec", encoding: .utf8))
        #expect(same.code == 0 && same.started)
        #expect(try String(contentsOfFile: w + "/same.log", encoding: .utf8) == "\(u.uid)\n\(u.name)\n")
    }

    /// End to end through the binary: `gantry run --run-as USER` runs a manifest's replica
    /// as USER; it cannot write the state directory; its log belongs to USER.
    @Test func daemonRunsSpecDirWorkloadsAsTheRunAsAccount() throws {
        guard let u = ThrowawayUser.make() else { return }
        defer { u.remove() }
        let d = try DaemonUnderTest(extra: ["--local-gpus", "1", "--run-as", u.name])
        if let root = d.directories.root { #expect(chmod(root, 0o755) == 0) }
        d.write("q.yaml", queueManifest)
        let cmd = "id -u; if echo x > \(d.state)/forbidden; then echo WROTE; else echo DENIED; fi"
        d.write("w.yaml", wl("who", command: cmd))
        try #require(d.wait(20) { d.status(.workload, "who")?["phase"]?.stringValue == "Succeeded" },
                     "who succeeded: \(d.status(.workload, "who").map { JSON.encode($0) } ?? "no status")")
        let logPath = ProcessRuntime.logPath(stateDir: d.state, ObjectKey(.workload, namespace: "team-a", name: "who"), rank: 0)
        let log = try String(contentsOfFile: logPath, encoding: .utf8)
        #expect(log.contains("\n\(u.uid)\n") && log.contains("Permission denied") && log.contains("DENIED\n") && !log.contains("WROTE"), "\(log)")
        #expect(!FileManager.default.fileExists(atPath: d.state + "/forbidden"))
        #expect(ownerUID(logPath) == u.uid)
        #expect(ownerUID(d.state + "/work/team-a/who") == u.uid)
        #expect(ownerUID(d.state) == 0)
        #expect(LogTimes.load(path: logPath).count >= 1)
    }
}
