import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import GantryShim
@testable import Controllers

@Suite(.timeLimit(.minutes(1))) struct ShimTests {
    /// A fresh directory; the caller removes it.
    func tempDir() throws -> String { try makeTemporaryDirectory("gantry-shim-") }

    @Test func recordsTakeCompleteLinesOnly() {
        var r = ReplicaRecord()
        r.pid = 42; r.shimPid = 41; r.shimStart = 7; r.start = 100.5
        let started = r.startedLine
        var x = ReplicaRecord(text: started + "exited pid=42 code=3 sig")   // torn exit line
        #expect(x.started && !x.exited && x.pid == 42 && x.shimPid == 41 && x.start == 100.5)
        r.code = 3; r.end = 101
        x = ReplicaRecord(text: started + r.exitedLine)
        #expect(x.exited && x.code == 3 && x.end == 101)
        #expect(!ReplicaRecord(text: "").started)
    }

    @Test func metricLinesAcrossChunksAndOverlongLines() {
        var m = MetricLines()
        var got: [String] = []
        m.feed(Array("epoch 1\ngantry.metric loss=0.5 ".utf8)) { got.append($0) }
        m.feed(Array("step=3\r\nnoise gantry.metric x=1\n".utf8)) { got.append($0) }
        m.feed(Array(("gantry.metric big=" + String(repeating: "9", count: 5000) + "\ngantry.metric ok=1\n").utf8)) { got.append($0) }
        #expect(got == ["loss=0.5 step=3", "ok=1"])
    }

    @Test func cappedLogKeepsTheNewestOutput() throws {
        let d = try tempDir()
        defer { removeTree(d) }
        var log = CappedLog(path: d + "/r.log", max: 100)
        for i in 0..<30 { log.write(Array("line \(i)\n".utf8)) }
        log.close()
        let size = { (p: String) in ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? Int) ?? 0 }
        #expect(size(d + "/r.log") + size(d + "/r.log.1") <= 100)
        let tail = LogFiles.tail(d + "/r.log", lines: 3)
        #expect(tail == ["line 27", "line 28", "line 29"])
        #expect(LogFiles.tail(d + "/r.log", lines: 1000).first != "line 0")
        #expect(LogFiles.tail(d + "/r.log", lines: 1000).count >= 8)
    }

    @Test func dispatchJournalKeepsTheNewestDispatchPerWorkload() throws {
        let d = try tempDir()
        defer { removeTree(d) }
        let a = ObjectKey(.workload, namespace: "ns", name: "a"), b = ObjectKey(.workload, namespace: "ns", name: "b")
        let j = DispatchJournal(path: d + "/j")
        _ = j.load()
        let intent = { (n: Int) in DispatchIntent(dispatch: n, specHash: "h\(n)", masterPort: 1000 + n, at: 5,
                                                  assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0, 1]), ReplicaAssignment(rank: 1, node: "n2", gpus: [])]) }
        j.record(a, intent(1)); j.record(a, intent(2)); j.record(b, intent(1)); j.forget(b)
        var loaded = DispatchJournal(path: d + "/j").load()
        #expect(loaded[a] == intent(2) && loaded[b] == nil)
        // A torn last line (crash mid-append) is not a dispatch.
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: d + "/j"))
        try fh.seekToEnd(); try fh.write(contentsOf: Data("intent ns b dispatch=9 spec=x".utf8)); try fh.close()
        loaded = DispatchJournal(path: d + "/j").load()
        #expect(loaded[b] == nil && loaded.count == 1)
        // Compaction: many dispatches of one workload shrink to its newest.
        let k = DispatchJournal(path: d + "/k")
        _ = k.load()
        for n in 1...5000 { k.record(a, intent(n)) }
        let lines = try String(contentsOfFile: d + "/k", encoding: .utf8).split(separator: "\n").count
        #expect(lines > 0 && lines < 5000)
        #expect(DispatchJournal(path: d + "/k").load()[a]?.dispatch == 5000)
    }

    /// Group commit: several dispatches journaled in one append read back like ones journaled
    /// one at a time, a later single line still wins, and the line count drives compaction.
    @Test func dispatchJournalRecordsABatchInOneAppend() throws {
        let d = try tempDir()
        defer { removeTree(d) }
        let keys = (0..<5).map { ObjectKey(.workload, namespace: "ns", name: "w\($0)") }
        let intent = { (n: Int) in DispatchIntent(dispatch: n, specHash: "h\(n)", masterPort: 2000 + n, at: 7,
                                                  assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [n % 8])]) }
        let j = DispatchJournal(path: d + "/j")
        _ = j.load()
        j.record(keys.enumerated().map { ($0.element, intent($0.offset + 1)) })
        j.record(keys[0], intent(9))
        let text = try String(contentsOfFile: d + "/j", encoding: .utf8)
        #expect(text.split(separator: "\n").count == 6)
        let loaded = DispatchJournal(path: d + "/j").load()
        #expect(loaded.count == 5)
        #expect(loaded[keys[0]] == intent(9))
        for i in 1..<5 { #expect(loaded[keys[i]] == intent(i + 1)) }
        #expect(j.state.withLock { $0.lines } == 6)
    }

    /// The actions journaled together stop at a signal or a workload's final forget (which
    /// writes its own journal line), so no dispatch line moves past them.
    @Test func dispatchGroupStopsAtJournalingActions() {
        let a = ObjectKey(.workload, namespace: "ns", name: "a"), b = ObjectKey(.workload, namespace: "ns", name: "b")
        let i1 = DispatchIntent(dispatch: 1, specHash: "h", masterPort: 1, at: 1, assignments: [ReplicaAssignment(rank: 0, node: "n", gpus: [0])])
        let ref = ReplicaRef(key: a, dispatch: 1, rank: 0, attempt: 0)
        let launch = Admission.RuntimeAction.launch(ReplicaLaunch(ref: ref, command: "true", env: [], header: "h", user: nil))
        let batch: [Admission.RuntimeAction] = [
            .prepare(a, i1), .forget(a, keepDispatch: 1, files: false), launch,
            .prepare(b, i1), .forget(b, keepDispatch: 1, files: false), launch,
            .forget(b, keepDispatch: nil, files: true),
            .prepare(b, i1), launch,
        ]
        let g = Admission.dispatchGroup(batch, from: 0)
        #expect(g.count == 6)
        #expect(g.intents.map(\.0) == [a, b])
        let h = Admission.dispatchGroup(batch, from: 7)
        #expect(h.count == 2 && h.intents.map(\.0) == [b])
        #expect(Admission.dispatchGroup(batch, from: 6).count == 0)
    }

    /// A torn line (kill -9 mid-append) is cut off before the next append: after a restart
    /// every workload has its own dispatch, none adopts the torn line's.
    @Test func tornJournalLineIsCutBeforeTheNextAppend() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let path = d + "/j"
        let a = ObjectKey(.workload, namespace: "ns", name: "a"), b = ObjectKey(.workload, namespace: "ns", name: "b"), c = ObjectKey(.workload, namespace: "ns", name: "c")
        let intent = { (n: Int, node: String, gpus: [Int]) in DispatchIntent(dispatch: n, specHash: "h\(n)", masterPort: 1000 + n, at: 5, assignments: [ReplicaAssignment(rank: 0, node: node, gpus: gpus)]) }
        let j1 = DispatchJournal(path: path)
        _ = j1.load()
        j1.record(a, intent(1, "n1", [0]))
        // The daemon dies while appending b's intent: half a line, no newline.
        let fh = try #require(FileHandle(forWritingAtPath: path))
        fh.seekToEndOfFile(); fh.write(Data(DispatchJournal.line(b, intent(3, "n1", [1, 2])).utf8.prefix(30))); fh.closeFile()
        // Restarted: the torn dispatch never started; c is dispatched and appended.
        let j2 = DispatchJournal(path: path)
        #expect(j2.load() == [a: intent(1, "n1", [0])])
        j2.record(c, intent(1, "n2", [5]))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == DispatchJournal.line(a, intent(1, "n1", [0])) + DispatchJournal.line(c, intent(1, "n2", [5])))
        // Restarted again: each workload has its own dispatch and GPUs.
        let loaded = DispatchJournal(path: path).load()
        #expect(loaded == [a: intent(1, "n1", [0]), c: intent(1, "n2", [5])])
        // A glued line (written by an older daemon) is skipped, not filed under the torn line's workload.
        let glued = String(DispatchJournal.line(b, intent(3, "n1", [1, 2])).prefix(30)) + DispatchJournal.line(c, intent(2, "n2", [6]))
        #expect(DispatchJournal.parse(glued).isEmpty)
        #expect(DispatchJournal.parse("forget ns a" + DispatchJournal.line(c, intent(2, "n2", [6]))).isEmpty)
    }

    /// A supervisor's record and metrics file get a torn tail cut before the next line too.
    @Test func tornRecordAndMetricsTailsAreCut() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        var r = ReplicaRecord()
        r.pid = 42; r.shimPid = 41; r.start = 100
        try "started pid=7 shim=6 sh".write(toFile: d + "/r.rec", atomically: false, encoding: .utf8)
        #expect(appendRecord(d + "/r.rec", r.startedLine))
        #expect(try String(contentsOfFile: d + "/r.rec", encoding: .utf8) == r.startedLine)
        #expect(ReplicaRecord(text: r.startedLine).pid == 42)
        // Glued lines read as nothing, not as a mix of both.
        let g = ReplicaRecord(text: "started pid=7 shim=6 sh" + r.startedLine)
        #expect(!g.started && g.pid == 0)
        try "1.0 loss=1\n2.0 lo".write(toFile: d + "/m", atomically: false, encoding: .utf8)
        let fd = openLinesForAppend(d + "/m")
        #expect(fd >= 0)
        writeAll(fd, Array("3.0 loss=3\n".utf8))
        close(fd)
        #expect(try String(contentsOfFile: d + "/m", encoding: .utf8) == "1.0 loss=1\n3.0 loss=3\n")
        // No newline at all: everything goes.
        try "partial".write(toFile: d + "/p", atomically: false, encoding: .utf8)
        let fd2 = openLinesForAppend(d + "/p")
        close(fd2)
        let p = try String(contentsOfFile: d + "/p", encoding: .utf8)
        #expect(fd2 >= 0 && p == "")
    }

    @Test func metricParsing() {
        let key = ObjectKey(.workload, namespace: "t", name: "w")
        let s = RunMetrics.parseTraining("10.5 loss=0.25 epoch=2 bad=x =3 acc=nan\n11 loss=0.2\n12 partial=1", key: key, rank: 1)
        #expect(s.map(\.series) == ["t/w/loss{rank=1}", "t/w/epoch{rank=1}", "t/w/loss{rank=1}"])
        #expect(s.map(\.value) == [0.25, 2, 0.2] && s.first?.ts == 10.5)
        let nv = RunMetrics.parseNvidia("0, 87, 40000, 310.5\n1, 0, 3, [N/A]\n")
        #expect(nv[0] == RunMetrics.GPUSample(util: 87, mem: 40000, power: 310.5))
        #expect(nv[1]?.power == nil && nv[1]?.util == 0)
        let amd = RunMetrics.parseAMD("gpu,gfx_activity,used_vram,socket_power\n0,55,1024,300\n1,N/A,0,90\n")
        #expect(amd[0] == RunMetrics.GPUSample(util: 55, mem: 1024, power: 300) && amd[1]?.util == nil)
    }

    /// The real supervisor binary, unable to make the working directory (its parent is a
    /// file) or to get a pipe (no descriptors left): a `failed` line naming errno, operation
    /// and path, not an exit of the replica. A program that does not exist stays the
    /// replica's own failure (exit 127).
    @Test func supervisorRecordsAnInfrastructureFault() throws {
        let bin = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().appendingPathComponent("gantry-shim").path
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        #expect(FileManager.default.createFile(atPath: d + "/file", contents: Data("x".utf8)))
        func shim(_ record: String, workdir: String, prefix: String = "", status: Int32 = 0, _ program: [String]) throws -> ReplicaRecord {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            let args = ["--record", d + "/" + record, "--log", d + "/logs/\(record).log", "--workdir", workdir, "--"] + program
            p.arguments = ["-c", prefix + "exec \"$0\" \"$@\"", bin] + args
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == status)
            return ReplicaRecord(text: (try? String(contentsOfFile: d + "/\(record).rec", encoding: .utf8)) ?? "")
        }
        let a = try shim("a", workdir: d + "/file/work", ["/bin/true"])
        #expect(a.fault == RecordedFault(errno: ENOTDIR, op: "mkdir", path: d + "/file/work"))
        #expect(!a.started && !a.exited)
        let log = (try? String(contentsOfFile: d + "/logs/a.log", encoding: .utf8)) ?? ""
        #expect(log.contains("mkdir \(d)/file/work: Not a directory (errno 20)"))
        // Five descriptors: 0-2, the signalfd and the log; the pipe finds none left.
        let b = try shim("b", workdir: d + "/w", prefix: "ulimit -n 5; ", ["/bin/true"])
        #expect(b.fault == RecordedFault(errno: EMFILE, op: "pipe", path: ""))
        let c = try shim("c", workdir: d + "/w", ["/nonexistent/program"])
        #expect(c.fault == nil && c.code == 127)
        // No record can be written at all: the supervisor's exit status is the errno.
        let e = try shim("missing/r", workdir: d + "/w", status: ENOENT, ["/bin/sleep", "30"])
        #expect(!e.started && e.fault == nil)
    }

    /// The small supervisor is linked statically (no dynamic loader: its start is half the
    /// CPU of a dynamically linked one, and every replica pays it); the one that looks
    /// accounts up keeps the C library dynamic (NSS modules are shared libraries).
    @Test func theSmallSupervisorIsStaticAndTheAccountOneIsNot() throws {
        let dir = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().path
        /// Whether an ELF executable names a program interpreter (PT_INTERP): it is dynamically linked.
        func hasInterpreter(_ path: String) throws -> Bool {
            let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            try #require(b.count > 64 && b[0] == 0x7f && b[1] == 0x45 && b[4] == 2, "\(path) is no 64-bit ELF file")
            func u(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
            let phoff = u(32, 8), phentsize = u(54, 2), phnum = u(56, 2)
            return (0..<phnum).contains { i in
                let at = phoff + i * phentsize
                return at + 4 <= b.count && u(at, 4) == 3
            }
        }
        #expect(try !hasInterpreter(dir + "/gantry-shim"))
        #expect(try hasInterpreter(dir + "/gantry-shim-nss"))
    }

    /// The static supervisor never looks an account up itself (its static C library crashes
    /// loading an NSS module such as libnss_systemd, which an unknown name reaches): with
    /// `--user` it becomes `gantry-shim-nss` by exec, the same process. An unknown account is
    /// then the workload's failure (126, the reason in the log); with no account supervisor
    /// installed beside it, an infrastructure fault naming the missing one.
    @Test func theStaticSupervisorHandsAccountsToTheOneThatCanLookThemUp() throws {
        let bin = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().appendingPathComponent("gantry-shim").path
        let d = try tempDir()
        defer { removeTree(d) }
        let unknown = "gantry-no-such-account-\(getpid())"
        func shim(_ exe: String, _ name: String) -> (ProcessOutcome, ReplicaRecord, String) {
            let o = runProcess(exe, ["--record", d + "/" + name, "--log", d + "/logs/\(name).log", "--workdir", d + "/w",
                                     "--user", unknown, "--", "/bin/true"], timeout: 20)
            let rec = ReplicaRecord(text: (try? String(contentsOfFile: d + "/\(name).rec", encoding: .utf8)) ?? "")
            return (o, rec, (try? String(contentsOfFile: d + "/logs/\(name).log", encoding: .utf8)) ?? "")
        }
        let (o, rec, log) = shim(bin, "a")
        #expect(o.status == 0, "\(o.output)")
        #expect(rec.exited && rec.code == Shim.runAsFailureCode && !rec.started, "\(rec)")
        #expect(log.contains("cannot run the replica as user \"\(unknown)\": no such account"), "\(log)")
        // Alone in a directory: neither gantry-shim-nss nor gantry beside it.
        try FileManager.default.createDirectory(atPath: d + "/alone", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: bin, toPath: d + "/alone/gantry-shim")
        let (o2, rec2, log2) = shim(d + "/alone/gantry-shim", "b")
        #expect(o2.status == 0, "\(o2.output)")
        #expect(rec2.fault == RecordedFault(errno: ENOENT, op: "exec", path: d + "/alone/gantry-shim-nss"), "\(rec2)")
        #expect(log2.contains("exec \(d)/alone/gantry-shim-nss: No such file or directory"), "\(log2)")
        #expect(Shim.accountSupervisors(besides: "/opt/g/gantry-shim") == [["/opt/g/gantry-shim-nss"], ["/opt/g/gantry", "shim"]])
    }

    /// Every variable of the replica travels to the supervisor under a held name (exactly: a
    /// name that starts with the prefix gets a second one) and comes back, in order, in the
    /// replica's environment; the daemon's own loader variables reach the supervisor as they
    /// are and not the replica; a workload's own `GANTRY_SHIM_HANDED_OFF` is held like any
    /// other, so it is never the hand-off marker. A supervisor started by hand (nothing held)
    /// passes its environment on, less the marker.
    @Test func theReplicasEnvironmentIsHeldFromTheSupervisorAndGivenBack() {
        let env = ["PATH=/bin", "LD_PRELOAD=/x.so", "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/tmp/b", "GANTRY_HELD_FOO=bar",
                   "CUDA_VISIBLE_DEVICES=3", "GANTRY_HELD_CUDA_VISIBLE_DEVICES=0,1", "GANTRY_SHIM_HANDED_OFF=1", "NOEQUALS", "=empty"]
        let held = ReplicaEnvironment.hold(env, own: ["LD_LIBRARY_PATH=/opt/lib", "HOME=/root", "TMPDIR=/t"])
        #expect(held == env.map { "GANTRY_HELD_" + $0 } + ["LD_LIBRARY_PATH=/opt/lib", "TMPDIR=/t"])
        #expect(!held.contains(ReplicaEnvironment.handOffMarker))
        #expect(ReplicaEnvironment.release(held) == env)
        #expect(ReplicaEnvironment.release(held + [ReplicaEnvironment.handOffMarker]) == env)
        #expect(ReplicaEnvironment.release(["PATH=/bin", ReplicaEnvironment.handOffMarker, "A=1"]) == ["PATH=/bin", "A=1"])
        #expect(ReplicaEnvironment.steers("LD_AUDIT") && ReplicaEnvironment.steers("GLIBC_TUNABLES") && !ReplicaEnvironment.steers("HOME"))
    }

    /// The dynamically linked supervisor (the one that runs run-as replicas, as root) does not
    /// act on the replica's variables; the replica does. Shown with `LD_DEBUG`, which makes
    /// the dynamic loader of each process that honours it write `OUTPUT.PID`: held, only the
    /// replica's pid writes one; not held (the control), the supervisor's does too. The same
    /// through the static supervisor's hand-off of a run-as replica (the same pid).
    @Test func theDynamicSupervisorIgnoresTheReplicasLoaderVariables() throws {
        let dir = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().path
        let d = try tempDir()
        defer { removeTree(d) }
        func run(_ name: String, _ exe: String, hold: Bool, user: Bool = false) throws -> (ReplicaRecord, Set<String>) {
            let out = d + "/\(name)-ld"
            let env = ["PATH=/usr/bin:/bin", "GANTRY_WORKLOAD=w", "LD_DEBUG=libs", "LD_DEBUG_OUTPUT=" + out]
            let given = hold ? ReplicaEnvironment.hold(env) : env
            let o = runProcess(exe, ["--record", d + "/" + name, "--log", d + "/\(name).log", "--workdir", d + "/w"] + (user ? ["--user", String(getuid())] : [])
                                      + ["--", "/bin/sh", "-c", "exit 0"], timeout: 20,
                               environment: Dictionary(uniqueKeysWithValues: given.map { e in
                                   let i = e.firstIndex(of: "=")!
                                   return (String(e[..<i]), String(e[e.index(after: i)...]))
                               }))
            #expect(o.status == 0, "\(o.output)")
            let rec = ReplicaRecord(text: (try? String(contentsOfFile: d + "/\(name).rec", encoding: .utf8)) ?? "")
            let files = try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.hasPrefix("\(name)-ld.") }
            return (rec, Set(files))
        }
        let (raw, rawFiles) = try run("raw", dir + "/gantry-shim-nss", hold: false)
        try #require(raw.exited && raw.shimPid > 0, "\(raw)")
        #expect(rawFiles.contains("raw-ld.\(raw.shimPid)"), "\(rawFiles)")
        // Whether the replica's shell honours LD_DEBUG at all (not where /bin/sh is static).
        let replicaWrites = rawFiles.contains("raw-ld.\(raw.pid)")
        let (rec, files) = try run("held", dir + "/gantry-shim-nss", hold: true)
        try #require(rec.exited && rec.shimPid > 0, "\(rec)")
        #expect(files == (replicaWrites ? ["held-ld.\(rec.pid)"] : []), "\(files)")
        guard case .found = Account.lookup(String(getuid())) else { return }
        let (rec2, files2) = try run("handed", dir + "/gantry-shim", hold: true, user: true)
        try #require(rec2.exited && rec2.shimPid > 0, "\(rec2)")
        #expect(files2 == (replicaWrites ? ["handed-ld.\(rec2.pid)"] : []), "\(files2)")
    }

    /// Handed a run-as replica, the static supervisor really becomes `gantry-shim-nss` (the
    /// replica's parent runs that file); a static supervisor installed as `gantry-shim-nss`
    /// records ELOOP instead of exec'ing itself forever; the daemon warns at start when
    /// neither account supervisor is beside `gantry-shim`.
    @Test func theHandOffReachesTheAccountSupervisorOnce() throws {
        let bin = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().appendingPathComponent("gantry-shim").path
        let t = try tempDir()
        defer { removeTree(t) }
        // As /proc/self/exe names it: links resolved.
        let d = URL(fileURLWithPath: t).resolvingSymlinksInPath().path
        guard case .found = Account.lookup(String(getuid())) else { print("skipped: uid \(getuid()) has no account entry"); return }
        let o = runProcess(bin, ["--record", d + "/a", "--log", d + "/a.log", "--workdir", d + "/w", "--user", String(getuid()), "--",
                                 "/bin/sh", "-c", "readlink /proc/$PPID/exe; echo marker=${GANTRY_SHIM_HANDED_OFF:-none}"], timeout: 20)
        #expect(o.status == 0, "\(o.output)")
        let log = (try? String(contentsOfFile: d + "/a.log", encoding: .utf8)) ?? ""
        #expect(log.contains("/gantry-shim-nss\n") && log.contains("marker=none"), "\(log)")
        try FileManager.default.createDirectory(atPath: d + "/loop", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: bin, toPath: d + "/loop/gantry-shim")
        try FileManager.default.copyItem(atPath: bin, toPath: d + "/loop/gantry-shim-nss")
        let o2 = runProcess(d + "/loop/gantry-shim", ["--record", d + "/b", "--log", d + "/b.log", "--workdir", d + "/w", "--user", String(getuid()), "--", "/bin/true"], timeout: 20)
        #expect(o2.status == 0, "\(o2.output)")
        let rec = ReplicaRecord(text: (try? String(contentsOfFile: d + "/b.rec", encoding: .utf8)) ?? "")
        #expect(rec.fault == RecordedFault(errno: ELOOP, op: "exec", path: d + "/loop/gantry-shim-nss"), "\(rec)")
        #expect(ProcessRuntime.accountSupervisorProblem([bin]) == nil)
        #expect(ProcessRuntime.accountSupervisorProblem([d + "/loop/gantry-shim"])?.contains("gantry-shim itself") == true)
        try FileManager.default.removeItem(atPath: d + "/loop/gantry-shim-nss")
        #expect(ProcessRuntime.accountSupervisorProblem([d + "/loop/gantry-shim"])?.contains("gantry-shim-nss") == true)
        #expect(ProcessRuntime.accountSupervisorProblem(["/bin/sh", "-c", "x"]) == nil)
    }

    /// A supervisor that exits 126 or 127 without a record (it could not be run: what the
    /// dynamic loader or a shell exit with) is reported as such, not as an errno of a record
    /// (127 read as an errno is "Key has expired"). (Through a runtime the status is only
    /// seen when its monitor reaps the supervisor; in the test process every runtime's
    /// monitor reaps any child, so the mapping is checked on its own.)
    @Test func aSupervisorThatCouldNotRunIsReportedAsSuch() {
        let f = ProcessRuntime.unrecordedExit(status: 127, record: "/s/replicas/ns.w.1.0.0.rec")
        #expect(f.errno == 0 && f.op == "supervisor" && f.pressure == nil)
        #expect(f.description == "supervisor: exited with status 127 before writing the record /s/replicas/ns.w.1.0.0.rec (it could not be run)")
        #expect(ProcessRuntime.unrecordedExit(status: ENOSPC, record: "/r") == InfrastructureFault(errno: ENOSPC, op: "record", path: "/r"))
        #expect(ProcessRuntime.unrecordedExit(status: 125, record: "/r").op == "record")
        #expect(ProcessRuntime.unrecordedExit(status: 126, record: "/r").op == "supervisor")
    }

    /// The daemon cannot spawn the supervisor itself: the runtime reports an infrastructure
    /// fault naming the supervisor's path and errno (not an exit of the replica).
    @Test func aSupervisorThatCannotBeSpawnedIsAnInfrastructureFault() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let rt = try ProcessRuntime(stateDir: d, shim: [d + "/no-such-shim"], maxLogSize: 1 << 20, baseEnv: [:])
        let got = Mutex<[RuntimeEvent]>([])
        rt.start { e in got.withLock { $0.append(e) } }
        defer { rt.stop() }
        let ref = ReplicaRef(key: ObjectKey(.workload, namespace: "ns", name: "w"), dispatch: 1, rank: 0, attempt: 0)
        rt.launch(ReplicaLaunch(ref: ref, command: "true", env: [], header: "h"))
        let deadline = Date().addingTimeInterval(10)
        while got.withLock({ $0.isEmpty }) && Date() < deadline { usleep(10_000) }
        #expect(got.withLock { $0 } == [.infrastructureFailed(ref, InfrastructureFault(errno: ENOENT, op: "spawn", path: d + "/no-such-shim"))])
        // The probe that relieves a node: a small write in the records directory.
        #expect(rt.probe() == nil)
        try FileManager.default.removeItem(atPath: d + "/replicas")
        #expect(rt.probe() == InfrastructureFault(errno: ENOENT, op: "open", path: d + "/replicas/.probe.tmp"))
    }

    /// The real supervisor binary: output to a capped log, metric lines apart, exit recorded.
    @Test func supervisorRecordsTheExitAndSeparatesMetrics() throws {
        let bin = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().appendingPathComponent("gantry-shim").path
        let d = try tempDir()
        defer { removeTree(d) }
        let shim = runProcess(bin, ["--record", d + "/r", "--log", d + "/logs/x.log", "--metrics", d + "/logs/x.metrics", "--workdir", d + "/work/w",
                                    "--max-log-size", "1000000", "--header", "== start", "--", "/bin/sh", "-c",
                                    "pwd; echo out; echo err >&2; echo 'gantry.metric loss=1.5'; sleep 30 & exit 3"], timeout: 20)
        try #require(!shim.timedOut, "the supervisor exits when its replica does")
        let rec = ReplicaRecord(text: try String(contentsOfFile: d + "/r.rec", encoding: .utf8))
        try #require(rec.started && rec.pid > 1, "a started record with the replica's pid")
        #expect(rec.code == 3)
        // The group, the background sleep included, is gone.
        #expect(poll(timeout: 5) { !groupHasLiveMembers(rec.pid) }, "replica group \(rec.pid) gone")
        let log = try String(contentsOfFile: d + "/logs/x.log", encoding: .utf8)
        #expect(log.hasPrefix("== start\n") && log.contains(d + "/work/w\n") && log.contains("out\n") && log.contains("err\n"))
        let metrics = try String(contentsOfFile: d + "/logs/x.metrics", encoding: .utf8)
        #expect(metrics.hasSuffix(" loss=1.5\n"))
    }
}
