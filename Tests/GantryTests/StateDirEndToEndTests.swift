import Testing
import Foundation
@testable import GantryAPI
@testable import StateStore

/// How a run of the binary ended.
struct Outcome {
    var finished: Bool
    var reason: Process.TerminationReason
    var status: Int32
    var output: String
    /// Exited by itself (no signal, no hang) with a non-zero code.
    var refused: Bool { finished && reason == .exit && status != 0 }
}

/// Runs the binary to completion; killed (and `finished` false) past `timeout` seconds.
func runGantry(_ args: [String], timeout: Double = 30) throws -> Outcome {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: DaemonUnderTest.binary)
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    env["GANTRY_STATE_DIR"] = nil
    p.environment = env
    let outPath = NSTemporaryDirectory() + "gantry-cli-output-" + UUID().uuidString
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outPath) }
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    p.standardOutput = h
    p.standardError = h
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let end = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < end { usleep(10_000) }
    let finished = !p.isRunning
    if !finished { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    try? h.close()
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    return Outcome(finished: finished, reason: p.terminationReason, status: p.terminationStatus, output: out)
}

/// A Gantry state database with `rows` workload rows, closed and checkpointed.
func makeStateDatabase(_ dir: String, rows: Int) throws {
    let s = try StateStore(directory: dir)
    try s.db.exec("""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows))
        INSERT INTO objects SELECT 'Workload', 'default', 'w' || i, 'uid', 1, 'h', 'h', 0, 'w.yaml',
          '{"kind":"Workload","metadata":{"name":"w' || i || '"},"spec":{"command":"' || hex(randomblob(300)) || '"}}', 0 FROM n
        """)
    try IndexWriter(db: s.db).rebuild()   // rows written around the writer: index them as it would
    s.close()
}

/// A state directory left unusable: what a crash, a user or another program can leave.
enum BadStateDir: String, CaseIterable, Sendable {
    case notSQLite, truncated, foreignSchema, newerSchema, databaseIsADirectory, stateDirIsAFile, stateDirUnderAFile

    /// Makes the bad state directory under `base`; returns it and the path the message must name.
    func make(_ base: String) throws -> (stateDir: String, names: String) {
        let state = base + "/state", db = state + "/state.db"
        switch self {
        case .notSQLite:
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let bytes = (0..<20000).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }
            _ = FileManager.default.createFile(atPath: db, contents: Data(bytes))
            return (state, db)
        case .truncated:
            try makeStateDatabase(state, rows: 2000)
            var st = stat()
            #expect(stat(db, &st) == 0 && st.st_size > 200_000)
            #expect(truncate(db, off_t(st.st_size / 2 + 100)) == 0)
            return (state, db)
        case .foreignSchema:
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let other = try SQLiteDB(path: db, readOnly: false)
            try other.exec("CREATE TABLE t(x); INSERT INTO t VALUES(1)")
            return (state, db)
        case .newerSchema:
            try makeStateDatabase(state, rows: 1)
            let d = try SQLiteDB(path: db, readOnly: false)
            try d.exec("UPDATE meta SET value='\(Schema.version + 1)' WHERE key='schema_version'")
            return (state, db)
        case .databaseIsADirectory:
            try FileManager.default.createDirectory(atPath: db, withIntermediateDirectories: true)
            return (state, db)
        case .stateDirIsAFile:
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: state, contents: Data("not a directory\n".utf8))
            return (state, state)
        case .stateDirUnderAFile:
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: base + "/file", contents: Data("x\n".utf8))
            return (base + "/file/state", base + "/file")
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct StateDirEndToEndTests {
    /// The daemon and every read-only command refuse an unusable state directory: a clean
    /// exit, non-zero, with a message that names the file and says what to do; never a trap
    /// or a hang.
    @Test(arguments: BadStateDir.allCases)
    func anUnusableStateDirectoryIsRefusedWithAMessage(_ bad: BadStateDir) throws {
        let base = NSTemporaryDirectory() + "gantry-badstate-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        let (state, names) = try bad.make(base)
        let spec = base + "/spec"
        try FileManager.default.createDirectory(atPath: spec, withIntermediateDirectories: true)
        let commands: [[String]] = [
            ["run", "--spec-dir", spec, "--local-gpus", "0", "--runtime", "none"],
            ["get", "workloads"], ["get", "workloads", "-o", "json"], ["describe", "workload", "w2000"],
            ["logs", "w2000"], ["events"], ["stop", "w2000"],
        ]
        for c in commands {
            let o = try runGantry(c + ["--state-dir", state])
            #expect(o.refused, "\(bad) \(c): finished \(o.finished), \(o.reason == .exit ? "exit" : "signal") \(o.status):\n\(o.output)")
            #expect(o.output.contains(names) && o.output.contains("--state-dir"), "\(bad) \(c): \(o.output)")
            #expect(!o.output.contains("Fatal error"), "\(bad) \(c): \(o.output)")
        }
        // Nothing was written into a state directory that was refused.
        #expect(!FileManager.default.fileExists(atPath: state + "/control"))
    }

    /// A state.db of 0 bytes (a crash before the schema was written) is a new database: the
    /// CLI says there is nothing in it yet, and the daemon starts on it.
    @Test func anEmptyDatabaseFileIsNewState() throws {
        let base = NSTemporaryDirectory() + "gantry-emptydb-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/state", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: base + "/state/state.db", contents: Data())
        let o = try runGantry(["get", "workloads", "--state-dir", base + "/state"])
        #expect(o.refused && o.output.contains(base + "/state/state.db") && o.output.contains("start the daemon"), "\(o.output)")
        let d = try DaemonUnderTest(spec: base + "/spec", state: base + "/state", logPath: base + "/daemon.log")
        d.write("queue.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: default}\nspec: {}\n")
        d.write("a.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n  command: \"true\"\n")
        #expect(d.wait(20) { d.status(.workload, "a")?["phase"]?.stringValue == "Succeeded" }, "\(d.log)")
        #expect(d.terminate() == 0)
    }

    /// Leftovers a crash or a user can leave in replicas/ and control/: garbage and truncated
    /// record lines, records and journal entries of workloads that no longer exist, request
    /// files with garbage, binary bytes, huge content or odd names. The daemon starts, runs
    /// workloads as usual, and clears the requests it cannot use.
    @Test func garbageInReplicasAndControlIsSurvived() throws {
        let base = NSTemporaryDirectory() + "gantry-garbage-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        let state = base + "/state", replicas = state + "/replicas", control = state + "/control"
        for d in [replicas, control, control + "/dir.req"] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        func put(_ path: String, _ bytes: [UInt8]) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }
        func put(_ path: String, _ text: String) { put(path, Array(text.utf8)) }
        let binary = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        // Records: names that do not parse, garbage and truncated lines, a workload that is gone.
        put(replicas + "/garbage.rec", binary)
        put(replicas + "/a.b.c.d.e.rec", "started pid=1\n")
        put(replicas + "/default.gone.1.0.0.rec", "started pid=999999 shim=999999 shimstart=1 start=1e300\nexited pid=999999 code=0 signal=0 start=1 end=2\n")
        put(replicas + "/default.gone.1.1.0.rec", "started pid=abc shim= shimstart=-1 start=nan\nexited pid=1 code=99999999999 sig")
        put(replicas + "/default.gone.1.2.0.rec", binary)
        put(replicas + "/default.other.99999999999999999999.0.0.rec", "exited code=1\n")
        put(replicas + "/dispatches.journal", "intent default gone dispatch=1 spec=x port=99999999999 at=1e300 a=0:local:;1:local:0,1;2:x:\n"
            + "intent\nintent default\nforget\nintent default half dispatch=abc a=::::\n" + String(decoding: binary.prefix(300), as: UTF8.self) + "\nintent default trunc dispatch=2 a=0:lo")
        // Control requests: garbage, binary, huge, no such workload, unknown verb, odd names.
        put(control + "/1-garbage.req", "this is not a request at all\n")
        put(control + "/2-binary.req", binary)
        put(control + "/3-huge.req", [UInt8](repeating: UInt8(ascii: "x"), count: 8 << 20))
        put(control + "/4-nosuch.req", "stop Workload default nosuch\n")
        put(control + "/5-verb.req", "explode Workload default a\n")
        put(control + "/6-kind.req", "stop Gadget default a\n")
        put(control + "/7 odd\nname.req", "resume Workload default a\n")
        put(control + "/8-empty.req", "")
        put(control + "/notarequest", "stop Workload default a\n")

        let d = try DaemonUnderTest(spec: base + "/spec", state: state, logPath: base + "/daemon.log", extra: ["--max-log-size", "0"])
        d.write("queue.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: default}\nspec: {}\n")
        d.write("a.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n  command: \"echo hello-from-a\"\n")
        #expect(d.wait(30) { d.status(.workload, "a")?["phase"]?.stringValue == "Succeeded" }, "\(d.log)")
        let requestsLeft = { ((try? FileManager.default.contentsOfDirectory(atPath: control)) ?? []).filter { $0.hasSuffix(".req") && $0 != "dir.req" } }
        #expect(d.wait(10) { requestsLeft().isEmpty }, "left: \(requestsLeft())")
        #expect(d.process.isRunning, "the daemon died:\n\(d.log)")
        let (rc, logs) = runCLI(["logs", "a", "--state-dir", state])
        #expect(rc == 0 && logs.contains("hello-from-a"), "\(logs)")
        // A request that is fine is still applied after all that.
        d.write("b.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: b}\nspec:\n  command: \"sleep 30\"\n")
        #expect(d.wait(20) { d.status(.workload, "b")?["phase"]?.stringValue == "Running" }, "\(d.log)")
        let (src, sout) = runCLI(["stop", "b", "--state-dir", state])
        #expect(src == 0, "\(sout)")
        #expect(d.wait(20) { d.status(.workload, "b")?["phase"]?.stringValue == "Stopped" }, "\(d.log)")
        #expect(d.terminate() == 0, "\(d.log)")
        #expect(!d.log.contains("Fatal error"))
    }

    /// A record of an existing workload's dispatch with an absurd start time (a damaged
    /// record file) trapped in the lifecycle (`Timestamp(seconds: Int64($0))`, and the
    /// whole-seconds text of a huge duration). Pids that exist nowhere: a damaged record must
    /// never make the daemon signal a real process group.
    @Test
    func aRecordWithAnAbsurdStartTimeDoesNotTrap() throws {
        let base = NSTemporaryDirectory() + "gantry-absurd-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        let replicas = base + "/state/replicas"
        try FileManager.default.createDirectory(atPath: replicas, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: replicas + "/dispatches.journal", contents: Data("intent default a dispatch=1 spec=x port=0 at=1 a=0:vm:\n".utf8))
        _ = FileManager.default.createFile(atPath: replicas + "/default.a.1.0.0.rec",
                                           contents: Data("started pid=999997 shim=999996 shimstart=1 start=1e300\nexited pid=999997 code=0 signal=0 start=1e300 end=1e300\n".utf8))
        let d = try DaemonUnderTest(spec: base + "/spec", state: base + "/state", logPath: base + "/daemon.log")
        d.write("queue.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: default}\nspec: {}\n")
        d.write("a.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n  command: \"true\"\n")
        #expect(d.wait(20) { !d.process.isRunning || d.status(.workload, "a")?["phase"]?.stringValue == "Succeeded" })
        #expect(d.process.isRunning, "the daemon died:\n\(d.log)")
        #expect(d.terminate() == 0)
    }

    /// A journal entry with a dispatch number of Int.max (a damaged journal) for a workload
    /// that retries trapped at `dispatchCount + 1`: the journal and record names now refuse
    /// numbers out of range.
    @Test
    func aJournalWithAnAbsurdDispatchNumberDoesNotTrap() throws {
        let base = NSTemporaryDirectory() + "gantry-absurd-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        let replicas = base + "/state/replicas"
        try FileManager.default.createDirectory(atPath: replicas, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: replicas + "/dispatches.journal", contents: Data("intent default b dispatch=9223372036854775807 spec=x port=0 at=1 a=0:vm:\n".utf8))
        _ = FileManager.default.createFile(atPath: replicas + "/default.b.9223372036854775807.0.0.rec",
                                           contents: Data("started pid=999999 shim=999998 shimstart=1 start=5\nexited pid=999999 code=1 signal=0 start=5 end=6\n".utf8))
        let d = try DaemonUnderTest(spec: base + "/spec", state: base + "/state", logPath: base + "/daemon.log")
        d.write("queue.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: default}\nspec: {}\n")
        d.write("b.yaml", "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: b}\nspec:\n  command: \"true\"\n  maxRetry: 2\n")
        #expect(d.wait(20) { !d.process.isRunning || d.status(.workload, "b")?["phase"]?.stringValue == "Succeeded" })
        #expect(d.process.isRunning, "the daemon died:\n\(d.log)")
        #expect(d.terminate() == 0)
    }
}

/// Odd flag values on every command end in a clean error (or a clean run), never a trap.
@Suite(.serialized, .timeLimit(.minutes(3))) struct OddArgumentsEndToEndTests {
    /// Arguments (`STATE` and `SPEC` are replaced), the exit code, and text the output holds.
    static let cases: [([String], Int32, String)] = [
        (["logs", "w1", "--tail", "-1"], 2, "--tail"),
        (["logs", "w1", "--tail", "99999999999999999999"], 2, "--tail"),
        (["logs", "w1", "--tail", ""], 2, "--tail"),
        (["logs", "w1", "--tail"], 2, "needs a value"),
        (["logs", "w1", "--replica", "-5"], 2, "--replica"),
        (["logs", "w1", "--replica", "9223372036854775807"], 1, "replica"),
        (["logs", "w1", "--tail", "9223372036854775807"], 1, "no log yet"),
        (["logs", "w1", "--bogus", "1"], 2, "unknown flag --bogus"),
        (["logs"], 2, "logs needs one workload name"),
        (["get", "workloads", "--limit", "-1"], 2, "--limit"),
        (["get", "workloads", "--offset", "99999999999999999999"], 2, "--offset"),
        (["get", "workloads", "--offset", "9223372036854775807"], 0, "No resources found"),
        (["get", "workloads", "--since", "99999999999999999999d"], 0, "w1"),
        (["get", "workloads", "--until", "99999999999999999999d"], 0, "No resources found"),
        (["get", "workloads", "--since", "1e400h"], 2, "--since"),
        (["get", "workloads", "--since", "inf"], 2, "--since"),
        (["get", "workloads", "--since", "-3s"], 2, "--since"),
        (["get", "workloads", "--since", "0001-01-01"], 0, "w1"),
        (["get", ""], 2, ""),
        (["get"], 2, ""),
        (["describe", "workload"], 2, ""),
        (["describe", "workload", ""], 1, ""),
        (["events", "--limit", "-1"], 2, "--limit"),
        (["events", "--limit", "99999999999999999999"], 2, "--limit"),
        (["events", "--for", ""], 2, ""),
        (["stop"], 2, "stop needs one workload name"),
        (["stop", "a", "-l", "team=a"], 2, "(not both)"),
        (["get", "workloads", "--state-dir", ""], 2, "--state-dir"),
        (["validate", "-f"], 2, "needs a value"),
        ([""], 2, "unknown command"),
        (["frobnicate"], 2, "unknown command"),
        (["run", "--grace-period", "-3s"], 2, "--grace-period"),
        (["run", "--grace-period", "1e400h"], 2, "--grace-period"),
        (["run", "--grace-period", "1e400"], 2, "--grace-period"),
        (["run", "--grace-period", "inf"], 2, "--grace-period"),
        (["run", "--grace-period", "9999999999999h"], 2, "--grace-period"),
        (["run", "--grace-period"], 2, "needs a value"),
        (["run", "--resync", "0"], 2, "--resync"),
        (["run", "--resync", "inf"], 2, "--resync"),
        (["run", "--debounce", "1e300"], 2, "--debounce"),
        (["run", "--event-ttl", "99999999999999999999d"], 2, "--event-ttl"),
        (["run", "--metrics-interval", "inf"], 2, "--metrics-interval"),
        (["run", "--max-log-size", "-1"], 2, "--max-log-size"),
        (["run", "--max-file-size", "-1"], 2, "--max-file-size"),
        (["run", "--local-gpus", "-1"], 2, "--local-gpus"),
        (["run", "--local-gpus", "99999999"], 2, "--local-gpus"),
        (["run", "--workers", "0"], 2, "--workers"),
        (["run", "--workers", "99999999999999999999"], 2, "--workers"),
        (["run", "--runtime", ""], 2, "--runtime"),
        (["run", "--shim", ""], 2, "--shim"),
        (["run", "--log-level", ""], 2, "--log-level"),
        (["run", "--log-format", "xml"], 2, "--log-format"),
        (["run", "--bogus"], 2, "--bogus"),
        (["run", "--bogus", "1"], 2, "unknown flag --bogus"),
        (["run", "--state-dir", ""], 2, "--state-dir"),
    ]

    @Test func oddFlagValuesEndInCleanErrors() throws {
        let base = NSTemporaryDirectory() + "gantry-args-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        try makeStateDatabase(base + "/state", rows: 1)
        try FileManager.default.createDirectory(atPath: base + "/spec", withIntermediateDirectories: true)
        for (args, code, text) in Self.cases {
            // The daemon's cases all fail while parsing; these keep one that does not from running long.
            let extra = args.first == "run" && !args.contains("--state-dir") ? ["--spec-dir", base + "/spec", "--local-gpus", "0", "--runtime", "none"] : []
            let withState = args.contains("--state-dir") ? args : [args[0], "--state-dir", base + "/state"] + args.dropFirst()
            let o = try runGantry(Array(withState.prefix(1)) + extra + withState.dropFirst(), timeout: 20)
            #expect(o.finished && o.reason == .exit && o.status == code && (text.isEmpty || o.output.contains(text)),
                    "\(args): finished \(o.finished), \(o.reason == .exit ? "exit" : "signal") \(o.status), want \(code) and \"\(text)\":\n\(o.output)")
        }
    }
}
