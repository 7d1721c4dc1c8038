import Glibc
import CShim

/// What a supervisor records about its replica, in `<prefix>.rec`: a `started` line once the
/// replica runs, an `exited` line once it and its process group are gone, or a `failed` line
/// when it could not start the replica for a reason outside it (an infrastructure fault). Each line is
/// `key=value` pairs, appended with one write and fsync'd; a reader takes complete lines only,
/// so a record is either there whole or not at all (a torn last line is ignored).
public struct ReplicaRecord: Equatable, Sendable {
    public var pid: Int32 = 0
    public var shimPid: Int32 = 0
    public var shimStart: UInt64 = 0
    public var start: Double = 0
    public var end: Double?
    public var code: Int32?
    public var signal: Int32 = 0
    public var started = false
    public var exited: Bool { code != nil }
    /// The infrastructure fault the supervisor recorded instead of starting the replica.
    public var fault: RecordedFault?

    public init() {}

    public var startedLine: String { "started pid=\(pid) shim=\(shimPid) shimstart=\(shimStart) start=\(start)\n" }
    public var exitedLine: String { "exited pid=\(pid) code=\(code ?? -1) signal=\(signal) start=\(start) end=\(end ?? 0)\n" }
    /// The path comes last and runs to the end of the line (it may hold spaces).
    public static func failedLine(_ f: RecordedFault) -> String { "failed errno=\(f.errno) op=\(f.op) path=\(f.path)\n" }

    /// Reads every complete line of a record file. Lines and fields are found on the UTF-8
    /// bytes (a newline, a space), not by Character: the daemon reads a record each time a
    /// supervisor appends to it, and walking graphemes cost it about 170 k instructions a read.
    public init(text: String) {
        self.init()
        var rest = Substring(text)
        while let nl = rest.utf8.firstIndex(of: 10) {
            parseLine(rest[..<nl])
            rest = rest[rest.utf8.index(after: nl)...]
        }
    }

    /// The non-empty runs of `line` between spaces.
    static func fields(_ line: Substring) -> [Substring] {
        var out: [Substring] = []
        let u = line.utf8
        var start = u.startIndex, i = u.startIndex
        while i < u.endIndex {
            if u[i] == 32 {
                if start < i { out.append(line[start..<i]) }
                start = u.index(after: i)
            }
            i = u.index(after: i)
        }
        if start < u.endIndex { out.append(line[start...]) }
        return out
    }

    /// Applies one line, or nothing of it when any field does not read (a line glued onto a
    /// torn one): a field without `=`, an unknown or repeated key, a value that is no number.
    mutating func parseLine(_ line: Substring) {
        if line.hasPrefix("failed errno=") {
            let f = line.split(separator: " ", maxSplits: 3)
            guard f.count == 4, let e = Int32(f[1].dropFirst(6)), f[2].hasPrefix("op="), f[3].hasPrefix("path=") else { return }
            fault = RecordedFault(errno: e, op: String(f[2].dropFirst(3)), path: String(f[3].dropFirst(5)))
            return
        }
        let fields = ReplicaRecord.fields(line)
        guard let kind = fields.first, kind == "started" || kind == "exited" else { return }
        var next = self
        if kind == "started" { next.started = true }
        var seen = Set<Substring>()
        for field in fields.dropFirst() {
            guard let eq = field.utf8.firstIndex(of: 61) else { return }
            let k = field[..<eq], v = String(field[field.utf8.index(after: eq)...])
            guard seen.insert(k).inserted else { return }
            switch k {
            case "pid": guard let x = Int32(v) else { return }; next.pid = x
            case "shim": guard let x = Int32(v) else { return }; next.shimPid = x
            case "shimstart": guard let x = UInt64(v) else { return }; next.shimStart = x
            case "start": guard let x = Double(v), x.isFinite else { return }; next.start = x
            case "end": guard let x = Double(v), x.isFinite else { return }; next.end = x
            case "code" where kind == "exited": guard let x = Int32(v) else { return }; next.code = x
            case "signal": guard let x = Int32(v) else { return }; next.signal = x
            default: return
            }
        }
        self = next
    }
}

/// An infrastructure fault as a supervisor records it: what failed, where, with which errno.
public struct RecordedFault: Equatable, Sendable {
    public var errno: Int32
    public var op: String
    public var path: String
    public init(errno: Int32, op: String, path: String) { self.errno = errno; self.op = op; self.path = path }
}

/// Errors of the machine, not of the replica: no space, no descriptors, no memory, no process
/// slots, a failing or read-only disk.
public func isInfrastructureErrno(_ e: Int32) -> Bool {
    [ENOSPC, EDQUOT, EMFILE, ENFILE, EAGAIN, ENOMEM, EIO, EROFS].contains(e)
}

/// Appends one record line durably (one write, then fsync), after cutting off a torn last
/// line so the new one is read back on its own.
@discardableResult
public func appendRecord(_ path: String, _ line: String) -> Bool {
    let fd = openLinesForAppend(path)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return writeAll(fd, Array(line.utf8)) && fsync(fd) == 0
}

/// `gantry-shim`: the supervisor of one replica. It starts the replica in a process group of
/// its own, pumps its output into a capped log (and `gantry.metric` lines into a metrics
/// file), waits for it, reaps what it left behind (it is a child subreaper), and records the
/// pid, start time and exit status durably. The daemon starts it in a session of its own, so
/// it and its replica outlive the daemon; a restarted daemon reads the records.
///
///     gantry-shim --record PREFIX --log FILE [--metrics FILE] --max-log-size BYTES
///                 --workdir DIR [--header TEXT] [--user ACCOUNT] -- PROGRAM ARGS...
///
/// With `--user` the replica runs as that Unix account (a name, or a uid of digits): the
/// supervisor looks it up, gives it the working directory and the log (and metrics) files,
/// and starts the replica in a forked child that sets the account's groups, gid and uid (in
/// that order, each checked), checks that root cannot be taken back, sets HOME, USER and
/// LOGNAME, enters the working directory as the account and execs. The supervisor itself
/// stays root: it writes the records (in the state directory, which the replica must not be
/// able to write) and reaps. A supervisor that is not root runs a replica only as its own
/// account. An account that does not exist, or that cannot be switched to, is the workload's
/// failure, not the machine's: the reason goes to the replica's log and the replica is
/// recorded as exited with code 126 (`runAsFailureCode`), so the workload fails (or retries
/// under maxRetry) like a replica whose command cannot run. Errors of the machine on the way
/// (no memory, no process slots, an unreadable account database) stay infrastructure faults.
public enum Shim {
    /// The exit code recorded when the replica cannot run as its account.
    public static let runAsFailureCode: Int32 = 126

    /// `lookUpAccounts` false: this supervisor is linked statically and must not look an
    /// account up itself (a static glibc that loads an NSS module such as libnss_systemd
    /// crashes), so a replica with `--user` is handed to `gantry-shim-nss` (`handOff`).
    public static func main(_ argv: [String], lookUpAccounts: Bool = true) -> Int32 {
        // Room for every option up front: growing it rehashes each time (a tenth of the
        // supervisor's user-space instructions).
        var opts = [String: String](minimumCapacity: 16)
        var i = 1
        while i < argv.count, argv[i] != "--" {
            guard argv[i].hasPrefix("--"), i + 1 < argv.count else { return usage() }
            opts[String(argv[i].dropFirst(2))] = argv[i + 1]
            i += 2
        }
        let program = i < argv.count ? Array(argv[(i + 1)...]) : []
        guard let record = opts["record"], let log = opts["log"], let workdir = opts["workdir"], !program.isEmpty else { return usage() }
        if opts["user"] != nil && !lookUpAccounts { return handOff(argv, record: record, logPath: log) }
        let maxLog = Int(opts["max-log-size"] ?? "") ?? 64 << 20
        return run(record: record, logPath: log, metricsPath: opts["metrics"], maxLog: maxLog, workdir: workdir, header: opts["header"], user: opts["user"], program: program)
    }

    /// The supervisors that can look accounts up, next to this executable, in the order tried:
    /// `gantry-shim-nss`, else the main binary's `gantry shim`.
    public static func accountSupervisors(besides exe: String) -> [[String]] {
        let dir = exe.lastIndex(of: "/").map { String(exe[..<$0]) } ?? "."
        return [[dir + "/gantry-shim-nss"], [dir + "/gantry", "shim"]]
    }

    /// Becomes a supervisor that can look accounts up, by exec: the same process, so the pid
    /// and start time the daemon noted stay right, and nothing has been done yet (no
    /// directory, log or record touched). When neither can be executed, an infrastructure
    /// fault is recorded: the first errno other than ENOENT with its path, else ENOENT for
    /// `gantry-shim-nss`. A static supervisor handed a replica by itself (`gantry-shim-nss`
    /// a copy or link of it) records ELOOP instead of exec'ing again, forever.
    static func handOff(_ argv: [String], record: String, logPath: String) -> Int32 {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        let exe = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : argv.first ?? ""
        let candidates = accountSupervisors(besides: exe)
        let env = environ()
        var failures: [(errno: Int32, path: String)] = []
        if env.contains(ReplicaEnvironment.handOffMarker) {
            failures = [(ELOOP, exe)]
        } else {
            for c in candidates {
                let e = withCStrings(c + argv.dropFirst()) { args in
                    withCStrings(env + [ReplicaEnvironment.handOffMarker]) { envp in
                        execve(c[0], args, envp)
                        return errno
                    }
                }
                failures.append((e, c[0]))
            }
        }
        let f = failures.first { $0.errno != ENOENT } ?? failures[0]
        if let slash = logPath.lastIndex(of: "/") { _ = makeDirectories(String(logPath[..<slash])) }
        var log = CappedLog(path: logPath, max: 0)
        return infrastructureFailure(RecordedFault(errno: f.errno, op: "exec", path: f.path), &log, record: record)
    }

    static func usage() -> Int32 {
        let msg = "usage: gantry-shim --record PREFIX --log FILE [--metrics FILE] [--max-log-size BYTES] --workdir DIR [--header TEXT] [--user ACCOUNT] -- PROGRAM ARGS...\n"
        writeAll(2, Array(msg.utf8))
        return 2
    }

    static func run(record: String, logPath: String, metricsPath: String?, maxLog: Int, workdir: String, header: String?, user: String?, program: [String]) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        _ = g_prctl_set_child_subreaper()
        var chld = sigset_t()
        sigemptyset(&chld)
        sigaddset(&chld, SIGCHLD)
        sigprocmask(SIG_BLOCK, &chld, nil)
        // The working directory and the log's directory are made here, not in the daemon.
        // Failing to make them (or the log) is the machine's fault, not the replica's.
        var fault: RecordedFault?
        if !makeDirectories(workdir) { fault = RecordedFault(errno: errno, op: "mkdir", path: workdir) }
        if let slash = logPath.lastIndex(of: "/"), !makeDirectories(String(logPath[..<slash])), fault == nil {
            fault = RecordedFault(errno: errno, op: "mkdir", path: String(logPath[..<slash]))
        }
        let sfd = signalfd(-1, &chld, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        var log = CappedLog(path: logPath, max: maxLog)
        if fault == nil && log.fd < 0 { fault = RecordedFault(errno: errno, op: "open", path: logPath) }
        // Opened at the first metric line: most replicas print none.
        var metricsFD: Int32 = -1
        var rec = ReplicaRecord()
        rec.shimPid = getpid()
        rec.shimStart = processStartTicks(getpid()) ?? 0
        if let header { log.write(Array((header + "\n").utf8)) }
        if let fault { return infrastructureFailure(fault, &log, record: record) }
        var account: Account?
        if let user {
            switch prepareAccount(user, workdir: workdir, log: &log) {
            case .ready(let a): account = a
            case .fault(let f): return infrastructureFailure(f, &log, record: record)
            case .refused(let why): return fail(&rec, &log, record: record, why, code: runAsFailureCode)
            }
        }

        var fds: [Int32] = [0, 0]
        guard pipe2(&fds, O_CLOEXEC) == 0 else { return infrastructureFailure(RecordedFault(errno: errno, op: "pipe", path: ""), &log, record: record) }
        rec.start = wallSeconds()
        let child: pid_t
        switch start(program, account: account, output: fds[1], workdir: workdir) {
        case .started(let p): child = p
        case .fault(let f):
            close(fds[0]); close(fds[1])
            return infrastructureFailure(f, &log, record: record)
        case .refused(let why, let code):
            close(fds[0]); close(fds[1])
            return fail(&rec, &log, record: record, why, code: code)
        }
        close(fds[1])
        rec.pid = child
        if !appendRecord(record + ".rec", rec.startedLine) {
            // Unrecorded, the replica could never be adopted or stopped by a restarted daemon.
            let e = errno
            kill(-child, SIGKILL)
            var st: Int32 = 0
            while waitpid(child, &st, 0) < 0 && errno == EINTR {}
            while waitpid(-1, &st, WNOHANG) > 0 {}
            close(fds[0])
            return infrastructureFailure(RecordedFault(errno: e, op: "record", path: record + ".rec"), &log, record: record)
        }

        let out = fds[0]
        var lines = MetricLines()
        var buf = [UInt8](repeating: 0, count: 65536)
        var pipeOpen = true, childDone = false
        var status: Int32 = 0
        var drainUntil = 0.0
        while pipeOpen || !childDone {
            var pfds = [pollfd(fd: pipeOpen ? out : -1, events: Int16(POLLIN), revents: 0), pollfd(fd: sfd, events: Int16(POLLIN), revents: 0)]
            let timeout: Int32 = childDone ? Int32(max(0, min(2000, (drainUntil - wallSeconds()) * 1000))) : -1
            let n = poll(&pfds, 2, timeout)
            if n < 0 && errno != EINTR { break }
            if pipeOpen && pfds[0].revents != 0 {
                let r = read(out, &buf, buf.count)
                if r > 0 {
                    let chunk = Array(buf[0..<r])
                    log.write(chunk, at: wallSeconds())
                    if let metricsPath {
                        lines.feed(chunk) { m in
                            if metricsFD < 0 {
                                metricsFD = openLinesForAppend(metricsPath)
                                if metricsFD >= 0, let account { _ = fchown(metricsFD, account.uid, account.gid) }
                            }
                            if metricsFD >= 0 { writeAll(metricsFD, Array("\(wallSeconds()) \(m)\n".utf8)) }
                        }
                    }
                } else if r == 0 || (errno != EINTR && errno != EAGAIN) {
                    pipeOpen = false
                    close(out)
                }
            }
            if pfds[1].revents != 0 || sfd < 0 {
                var info = signalfd_siginfo()
                while read(sfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {}
                var st: Int32 = 0
                while true {
                    let p = waitpid(-1, &st, WNOHANG)
                    if p <= 0 { break }
                    if p == child {
                        childDone = true
                        status = st
                        // The replica is its process group's leader: what it leaves behind goes too.
                        kill(-child, SIGKILL)
                        drainUntil = wallSeconds() + 2
                    }
                }
            }
            if childDone && wallSeconds() >= drainUntil { break }
        }
        kill(-child, SIGKILL)
        var st: Int32 = 0
        while waitpid(-1, &st, WNOHANG) > 0 {}
        if g_exited(status) != 0 {
            rec.code = g_exit_status(status)
        } else if g_signaled(status) != 0 {
            rec.signal = g_term_sig(status)
            rec.code = 128 + rec.signal
        } else {
            rec.code = -1
        }
        rec.end = wallSeconds()
        log.close()
        guard appendRecord(record + ".rec", rec.exitedLine) else { return exitStatus(errno: errno) }
        return 0
    }

    /// The replica could not start for a reason outside it: say why in its log (when open)
    /// and record a `failed` line. When even that cannot be written, the supervisor's exit
    /// status is the errno (the daemon reads it when it finds the supervisor gone).
    static func infrastructureFailure(_ f: RecordedFault, _ log: inout CappedLog, record: String) -> Int32 {
        log.write(Array("gantry-shim: \(f.op)\(f.path.isEmpty ? "" : " " + f.path): \(String(cString: strerror(f.errno))) (errno \(f.errno))\n".utf8))
        log.close()
        guard appendRecord(record + ".rec", ReplicaRecord.failedLine(f)) else { return exitStatus(errno: errno) }
        return 0
    }

    /// An errno as an exit status (1-125; 125 stands for larger ones).
    static func exitStatus(errno e: Int32) -> Int32 { e <= 0 ? 125 : Swift.min(e, 125) }

    /// The replica could not start: say why in its log and record exit code `code` (127: its
    /// program could not be started; 126: not as its account).
    static func fail(_ rec: inout ReplicaRecord, _ log: inout CappedLog, record: String, _ message: String, code: Int32 = 127) -> Int32 {
        log.write(Array("gantry-shim: \(message)\n".utf8), at: wallSeconds())
        log.close()
        rec.start = rec.start == 0 ? wallSeconds() : rec.start
        rec.code = code
        rec.end = wallSeconds()
        appendRecord(record + ".rec", rec.exitedLine)
        return 0
    }

    enum AccountOutcome {
        case ready(Account)
        /// The machine's fault (recorded as a `failed` line).
        case fault(RecordedFault)
        /// The workload's: the account does not exist or cannot be used.
        case refused(String)
    }

    /// Looks the account up and, as root, gives it the working directory and the log. A
    /// supervisor that is not root accepts only its own account.
    static func prepareAccount(_ user: String, workdir: String, log: inout CappedLog) -> AccountOutcome {
        let a: Account
        switch Account.lookup(user) {
        case .found(let x): a = x
        case .unknown: return .refused("cannot run the replica as user \"\(user)\": no such account on this machine")
        case .failed(let e):
            if isInfrastructureErrno(e) { return .fault(RecordedFault(errno: e, op: "getpwnam", path: user)) }
            return .refused("cannot run the replica as user \"\(user)\": the account database could not be read: \(String(cString: strerror(e)))")
        }
        let me = geteuid()
        guard me == 0 else {
            if a.uid == me { return .ready(a) }
            return .refused("cannot run the replica as user \"\(user)\" (uid \(a.uid)): the daemon runs as uid \(me), not as root, and runs replicas only as its own account")
        }
        // The directory itself, not a link in its place (its parent belongs to root).
        let dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        var e: Int32 = 0
        if dfd < 0 { e = errno } else {
            if fchown(dfd, a.uid, a.gid) != 0 { e = errno }
            close(dfd)
        }
        if e == 0 { e = log.setOwner(uid: a.uid, gid: a.gid) }
        if e != 0 {
            if isInfrastructureErrno(e) { return .fault(RecordedFault(errno: e, op: "chown", path: workdir)) }
            return .refused("cannot run the replica as user \"\(user)\": cannot give it its working directory and log: \(String(cString: strerror(e)))")
        }
        return .ready(a)
    }

    enum StartOutcome {
        case started(pid_t)
        case fault(RecordedFault)
        case refused(String, code: Int32)
    }

    /// Starts the replica in a process group of its own, its output on `output`: as root with
    /// an account, in a forked child that drops to it (`g_spawn_as`); otherwise with
    /// posix_spawn (an account that is the supervisor's own only changes HOME, USER, LOGNAME).
    static func start(_ program: [String], account: Account?, output: Int32, workdir: String) -> StartOutcome {
        let base = ReplicaEnvironment.release(environ())
        let env = account.map { $0.environment(base) } ?? base
        guard let account, geteuid() == 0 else {
            var req = SpawnRequest(argv: program, env: env)
            req.outputFD = output
            req.workdir = workdir
            req.newProcessGroup = true
            switch Spawn.start(req) {
            case .success(let p): return .started(p)
            case .failure(let e):
                // No process slot, memory or descriptor: the machine's fault. A program that is
                // missing or not executable: the replica's (exit code 127).
                if isInfrastructureErrno(e.errno) { return .fault(RecordedFault(errno: e.errno, op: "spawn", path: e.path)) }
                return .refused(e.description, code: 127)
            }
        }
        guard let path = program.first else { return .refused("no program to run", code: 127) }
        var stage: Int32 = 0, err: Int32 = 0
        let pid = withCStrings(program) { argv in
            withCStrings(env) { envp in
                account.groups.withUnsafeBufferPointer { g in
                    g_spawn_as(path, argv, envp, output, workdir, account.uid, account.gid, Int32(g.count), g.baseAddress, &stage, &err)
                }
            }
        }
        if pid > 0 { return .started(pid) }
        let what = spawnAsStage(stage)
        let text = err == 0 ? "" : ": \(String(cString: strerror(err)))"
        switch stage {
        case G_STAGE_EXEC:
            if isInfrastructureErrno(err) { return .fault(RecordedFault(errno: err, op: "spawn", path: path)) }
            return .refused("cannot start \(path)\(text)", code: 127)
        case G_STAGE_PIPE, G_STAGE_FORK:
            return .fault(RecordedFault(errno: err, op: what, path: ""))
        case G_STAGE_CHDIR:
            return .refused("cannot run the replica as user \"\(account.name)\": cannot enter its working directory \(workdir)\(text) (every directory above it must be searchable by the account)", code: runAsFailureCode)
        case G_STAGE_VERIFY:
            return .refused("cannot run the replica as user \"\(account.name)\": after dropping to uid \(account.uid) the process could still become root again; refusing to run it", code: runAsFailureCode)
        default:
            if isInfrastructureErrno(err) { return .fault(RecordedFault(errno: err, op: what, path: account.name)) }
            return .refused("cannot run the replica as user \"\(account.name)\" (uid \(account.uid), gid \(account.gid)): \(what)\(text)", code: runAsFailureCode)
        }
    }

    static func environ() -> [String] {
        var out: [String] = []
        var p = Glibc.environ
        while let s = p.pointee { out.append(String(cString: s)); p += 1 }
        return out
    }
}

/// A log capped at `max` bytes that keeps the newest output: two halves, `FILE` and
/// `FILE.1`; when `FILE` would pass half the cap it becomes `FILE.1`. `max` 0: no cap.
///
/// Output written with a time (`write(_:at:)`) is indexed in `FILE.times`: lines
/// `OFFSET SECONDS.MICROS`, the byte offset in `FILE` where output read at that time starts,
/// at most one line per 100 ms (output in between goes by the earlier time). The index rotates
/// with its log (`FILE.1.times`) and counts against the cap, so a log and its index together
/// never pass half of it. The index is made at the first timed write (a replica that prints
/// nothing costs no inode).
struct CappedLog {
    let path: String
    let half: Int
    var fd: Int32
    var size: Int
    /// The account the log files are given to (a replica running as another user).
    var owner: (uid: uid_t, gid: gid_t)?
    var timesFD: Int32 = -1
    var timesSize = 0
    /// When the last index line was written (0: none yet in the current file).
    var lastStamp = 0.0
    static let stampInterval = 0.1

    init(path: String, max: Int) {
        self.path = path
        half = max > 0 ? Swift.max(1, max / 2) : Int.max
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        var st = stat()
        size = fd >= 0 && fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Gives the log (and the files it makes later) to an account. 0, or the errno.
    mutating func setOwner(uid: uid_t, gid: gid_t) -> Int32 {
        owner = (uid, gid)
        guard fd >= 0 else { return 0 }
        return fchown(fd, uid, gid) == 0 ? 0 : errno
    }

    /// Appends output; with `time`, indexed in `FILE.times`.
    mutating func write(_ bytes: [UInt8], at time: Double? = nil) {
        guard fd >= 0 else { return }
        var b = bytes[...]
        if b.count > half { b = b.suffix(half) }
        var stamp: [UInt8] = []
        if let time, time - lastStamp >= CappedLog.stampInterval || lastStamp == 0 {
            if timesFD < 0 { openTimes() }
            if timesFD >= 0 { stamp = CappedLog.stampLine(offset: size, time: time) }
        }
        if size + b.count + timesSize + stamp.count > half && size + timesSize > 0 {
            rotate()
            guard fd >= 0 else { return }
            if let time, timesFD >= 0 { stamp = CappedLog.stampLine(offset: 0, time: time) }
        }
        if !stamp.isEmpty, let time, writeAll(timesFD, stamp) {
            timesSize += stamp.count
            lastStamp = time
        }
        b.withUnsafeBytes { raw in _ = writeAll(fd, raw.baseAddress, raw.count) }
        size += b.count
    }

    /// `OFFSET SECONDS.MICROS\n`, formatted without Foundation and never in exponent form.
    static func stampLine(offset: Int, time: Double) -> [UInt8] {
        let us = time.isFinite && time > 0 && time < 1e12 ? Int64(time * 1e6) : 0
        let frac = String(us % 1_000_000)
        return Array("\(offset) \(us / 1_000_000).\(String(repeating: "0", count: 6 - frac.count))\(frac)\n".utf8)
    }

    mutating func openTimes() {
        timesFD = openLinesForAppend(path + ".times")
        var st = stat()
        timesSize = timesFD >= 0 && fstat(timesFD, &st) == 0 ? Int(st.st_size) : 0
    }

    /// `FILE` becomes `FILE.1` (its index `FILE.1.times`); new, empty ones start.
    mutating func rotate() {
        Glibc.close(fd)
        rename(path, path + ".1")
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        size = 0
        if let owner, fd >= 0 { _ = fchown(fd, owner.uid, owner.gid) }
        if timesFD >= 0 {
            Glibc.close(timesFD)
            rename(path + ".times", path + ".1.times")
            timesFD = open(path + ".times", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        } else {
            // An index left by an earlier start belongs to the old file.
            if rename(path + ".times", path + ".1.times") != 0 { unlink(path + ".1.times") }
        }
        timesSize = 0
        lastStamp = 0
    }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        if timesFD >= 0 { Glibc.close(timesFD); timesFD = -1 }
    }
}

/// Splits output into lines and hands on the payload of `gantry.metric name=value ...`
/// lines. A line longer than 4 KiB is not a metric line and is skipped.
public struct MetricLines {
    var partial: [UInt8] = []
    var skipping = false
    static let prefix = Array("gantry.metric ".utf8)

    public init() {}

    public mutating func feed(_ chunk: [UInt8], _ emit: (String) -> Void) {
        var start = 0
        for (i, c) in chunk.enumerated() where c == 10 {
            line(chunk[start..<i], complete: true, emit)
            start = i + 1
        }
        if start < chunk.count { line(chunk[start...], complete: false, emit) }
    }

    mutating func line(_ part: ArraySlice<UInt8>, complete: Bool, _ emit: (String) -> Void) {
        if !skipping {
            partial.append(contentsOf: part)
            if partial.count > 4096 { skipping = true; partial = [] }
        }
        guard complete else { return }
        defer { partial = []; skipping = false }
        guard !skipping, partial.count > MetricLines.prefix.count, partial.starts(with: MetricLines.prefix) else { return }
        var body = partial[MetricLines.prefix.count...]
        while body.last == 13 || body.last == 32 { body.removeLast() }
        emit(String(decoding: body, as: UTF8.self))
    }
}
