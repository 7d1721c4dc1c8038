import Foundation
import Synchronization
import CShim
import GantryAPI
import GantryShim
import ControllerRuntime

/// Runs replicas as local processes, each under its own supervisor (`gantry-shim`), in the
/// state directory:
///
///     replicas/dispatches.journal                   each gang, appended before it starts
///     replicas/NS.NAME.DISPATCH.RANK.ATTEMPT.rec    `started`, then `exited`, by the supervisor
///     logs/NS/NAME.RANK.log (+ .log.1), NAME.RANK.metrics, .log.times (+ .log.1.times: `LogTimes`)
///     work/NS/NAME/                                 the working directory
///
/// Few files per replica on purpose: creating an inode is the dearest thing a start does on
/// some file systems. A thread watches the records directory with inotify (a supervisor
/// appends to its record), reaps exited supervisors and orphans, and checks once a second
/// that supervisors of running replicas are still alive.
public final class ProcessRuntime: ReplicaRuntime, @unchecked Sendable {
    public let stateDir: String
    public let recordsDir: String
    let shimArgv: [String]
    let maxLogSize: Int
    let baseEnv: [String: String]

    struct Watch {
        var shimPid: Int32?
        var shimStart: UInt64?
        var pid: Int32?
        var since: Double
        var pendingSignal: Int32?
    }
    let watched = Mutex<[ReplicaRef: Watch]>([:])
    /// Record files per workload (names in `recordsDir`), so forgetting one never lists the
    /// directory.
    let files = Mutex<[ObjectKey: Set<String>]>([:])
    let journal: DispatchJournal
    /// In a struct: a Mutex over a bare function type re-wraps it in a reabstraction thunk on
    /// every access, so each call would get slower than the last.
    struct Handler: Sendable { let f: @Sendable (RuntimeEvent) -> Void }
    let handler = Mutex<Handler?>(nil)
    var inotifyFD: Int32 = -1
    let stopped = Atomic<Bool>(false)
    /// Events decided outside the monitor (a supervisor that could not be started and no
    /// record to say so), delivered by the monitor: never from inside a call.
    let pending = Mutex<[RuntimeEvent]>([])
    /// Workloads whose newest dispatch could not be journaled durably, with why: none of its
    /// replicas may start.
    let unjournaled = Mutex<[ObjectKey: (dispatch: Int, fault: InfrastructureFault)]>([:])
    /// Exit statuses of supervisors that exited non-zero (the errno of a record they could not
    /// write), by pid, until a sweep finds them gone. Monitor thread only.
    var shimExits: [Int32: Int32] = [:]
    /// The daemon's own variables that steer loading (`LD_LIBRARY_PATH` for its libraries),
    /// which the supervisors get as they are.
    let ownLoaderEnv = ReplicaEnvironment.loaderEntries(ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }.sorted())
    /// A replica whose supervisor has not recorded a start this long after launch is lost.
    public var startTimeout = 15.0

    /// `shim`: the supervisor command (`gantry-shim`, or `gantry shim`).
    public init(stateDir: String, shim: [String], maxLogSize: Int, baseEnv: [String: String]) throws {
        self.stateDir = stateDir
        recordsDir = stateDir + "/replicas"
        shimArgv = shim
        self.maxLogSize = maxLogSize
        self.baseEnv = baseEnv
        journal = DispatchJournal(path: recordsDir + "/dispatches.journal")
        try FileManager.default.createDirectory(atPath: recordsDir, withIntermediateDirectories: true)
    }

    /// The fault of a supervisor that exited with a non-zero status and no record line: the
    /// errno of a record it could not write (1-125), or it could not be run at all (126, 127:
    /// what a shell or the dynamic loader exit with).
    static func unrecordedExit(status e: Int32, record: String) -> InfrastructureFault {
        e <= 125 ? InfrastructureFault(errno: e, op: "record", path: record)
            : InfrastructureFault(errno: 0, op: "supervisor", path: "", detail: "exited with status \(e) before writing the record \(record) (it could not be run)")
    }

    /// What is wrong with `shim` for replicas with a run-as account, if anything: the static
    /// `gantry-shim` hands them to `gantry-shim-nss` (or `gantry shim`) beside it, and with
    /// neither there each such replica gets an infrastructure fault.
    public static func accountSupervisorProblem(_ shim: [String]) -> String? {
        // Beside the file itself, as the supervisor finds it (/proc/self/exe): links resolved.
        guard shim.count == 1, let real = realpath(shim[0], nil) else { return nil }
        let path = String(cString: real)
        free(real)
        guard (path as NSString).lastPathComponent == "gantry-shim" else { return nil }
        let others = Shim.accountSupervisors(besides: path)
        let nss = others[0][0]
        if let r = realpath(nss, nil) {
            let same = String(cString: r) == path
            free(r)
            var a = stat(), b = stat()
            // A link to it, or a copy of it (the same size): the hand-off would find itself.
            if same || (stat(nss, &a) == 0 && stat(path, &b) == 0 && a.st_size == b.st_size) {
                return "replicas with a run-as account cannot start: \(nss) is gantry-shim itself (a link or a copy), not the supervisor that looks accounts up"
            }
            return nil
        }
        if others.contains(where: { FileManager.default.isExecutableFile(atPath: $0[0]) }) { return nil }
        return "replicas with a run-as account cannot start: \(others.map { $0[0] }.joined(separator: " and ")) are missing (gantry-shim hands them such replicas)"
    }

    /// The supervisor next to the running binary: `gantry-shim` when present (it starts in a
    /// few milliseconds), else `gantry shim`.
    public static func defaultShim() -> [String] {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let dir = (exe as NSString).deletingLastPathComponent
        let small = dir + "/gantry-shim"
        if FileManager.default.isExecutableFile(atPath: small) { return [small] }
        return [exe, "shim"]
    }

    // MARK: Paths

    func prefix(_ key: ObjectKey, _ dispatch: Int) -> String { "\(recordsDir)/\(key.namespace).\(key.name).\(dispatch)" }
    func recordPrefix(_ r: ReplicaRef) -> String { prefix(r.key, r.dispatch) + ".\(r.rank).\(r.attempt)" }
    public func logDir(_ key: ObjectKey) -> String { "\(stateDir)/logs/\(key.namespace)" }
    public func logPath(_ key: ObjectKey, rank: Int) -> String { ProcessRuntime.logPath(stateDir: stateDir, key, rank: rank) }
    public static func logPath(stateDir: String, _ key: ObjectKey, rank: Int) -> String { "\(stateDir)/logs/\(key.namespace)/\(key.name).\(rank).log" }
    public func metricsPath(_ key: ObjectKey, rank: Int) -> String { "\(logDir(key))/\(key.name).\(rank).metrics" }
    public func workdir(_ key: ObjectKey) -> String { "\(stateDir)/work/\(key.namespace)/\(key.name)" }

    // MARK: ReplicaRuntime

    public func start(_ handler: @escaping @Sendable (RuntimeEvent) -> Void) {
        self.handler.withLock { $0 = Handler(f: handler) }
        inotifyFD = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        // Every record line is appended with its own open, write, fsync and close (the
        // supervisor's and this runtime's `appendRecord`): the close says a line is there and
        // durable, once. (IN_MODIFY as well would wake the monitor during the fsync, and read
        // the record twice per line.)
        if inotifyFD >= 0 { _ = inotify_add_watch(inotifyFD, recordsDir, UInt32(IN_CLOSE_WRITE)) }
        let t = Thread { [self] in monitor() }
        t.name = "gantry-runtime"
        t.start()
    }

    public func stop() { stopped.store(true, ordering: .relaxed) }

    public func prepare(_ key: ObjectKey, _ intent: DispatchIntent) { prepared([(key, intent)], journal.record(key, intent)) }

    public func prepare(_ batch: [(ObjectKey, DispatchIntent)]) { prepared(batch, journal.record(batch)) }

    /// Notes which dispatches are not durable (`error` non-zero): their replicas are not
    /// launched (a restarted daemon would not know them, so one could run twice) but reported
    /// as an infrastructure fault, which restarts the gang under a new dispatch.
    func prepared(_ batch: [(ObjectKey, DispatchIntent)], _ error: Int32) {
        let fault = error == 0 ? nil : InfrastructureFault(errno: error, op: "journal", path: journal.path)
        unjournaled.withLock { u in
            for (k, i) in batch {
                if let fault { u[k] = (i.dispatch, fault) } else { u[k] = nil }
            }
        }
    }

    public func launch(_ l: ReplicaLaunch) {
        let r = l.ref
        let wd = workdir(r.key)
        let prefix = recordPrefix(r)
        note(r.key, prefix + ".rec")
        watched.withLock { $0[r] = Watch(since: wallSeconds()) }
        if let u = unjournaled.withLock({ $0[r.key] }), u.dispatch == r.dispatch {
            Log.error("not starting a replica: its dispatch is not in the journal", ["replica": r.description, "fault": u.fault.description])
            pending.withLock { $0.append(.infrastructureFailed(r, u.fault)) }
            return
        }
        var argv = shimArgv
        argv += ["--record", prefix, "--log", logPath(r.key, rank: r.rank), "--metrics", metricsPath(r.key, rank: r.rank),
                 "--max-log-size", String(maxLogSize), "--workdir", wd, "--header", l.header]
        if let user = l.user { argv += ["--user", user] }
        argv += ["--", "/bin/sh", "-c", l.command]
        // The replica's variables go under held names: a run-as replica's supervisor runs as
        // root and is dynamically linked (`ReplicaEnvironment`).
        var req = SpawnRequest(argv: argv, env: ReplicaEnvironment.hold(l.env, own: ownLoaderEnv))
        req.newSession = true
        switch Spawn.start(req) {
        case .success(let pid):
            let ticks = processStartTicks(pid)
            watched.withLock { w in
                guard w[r] != nil else { return }
                w[r]?.shimPid = pid
                w[r]?.shimStart = ticks
            }
        case .failure(let e):
            // An infrastructure fault, not the replica's: recorded as such, the monitor
            // reports it; when even the record cannot be written, the monitor is told directly.
            Log.error("cannot start a replica supervisor", ["replica": r.description, "error": e.description])
            appendLog(r.key, rank: r.rank, "gantry: \(e.description)\n")
            let f = RecordedFault(errno: e.errno, op: "spawn", path: e.path)
            if !appendRecord(prefix + ".rec", ReplicaRecord.failedLine(f)) {
                pending.withLock { $0.append(.infrastructureFailed(r, InfrastructureFault(f))) }
            }
        }
    }

    func note(_ key: ObjectKey, _ path: String) {
        let name = String(path.dropFirst(recordsDir.count + 1))
        files.withLock { _ = $0[key, default: []].insert(name) }
    }

    func appendLog(_ key: ObjectKey, rank: Int, _ text: String) {
        makeDirectories(logDir(key))
        let fd = open(logPath(key, rank: rank), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        writeAll(fd, Array(text.utf8))
        close(fd)
    }

    public func signal(_ ref: ReplicaRef, force: Bool) {
        let sig = force ? SIGKILL : SIGTERM
        let pid: Int32? = watched.withLock { w in
            guard var x = w[ref] else { return nil }
            if let p = x.pid { return p }
            x.pendingSignal = x.pendingSignal == SIGKILL ? SIGKILL : sig
            w[ref] = x
            return nil
        }
        if let pid, pid > 1 { kill(-pid, sig) }
    }

    public func forget(_ key: ObjectKey, keepDispatch: Int?, files removeFiles: Bool) {
        let head = "\(key.namespace).\(key.name)."
        let names: [String] = files.withLock { f in
            let all = f[key] ?? []
            let drop = all.filter { n in
                guard let d = n.dropFirst(head.count).split(separator: ".").first.flatMap({ Int($0) }) else { return false }
                return keepDispatch == nil || d < keepDispatch!
            }
            if keepDispatch == nil { f[key] = nil } else { f[key] = all.subtracting(drop) }
            return Array(drop)
        }
        for n in names { unlink(recordsDir + "/" + n) }
        if keepDispatch == nil { journal.forget(key) }
        if keepDispatch == nil {
            watched.withLock { w in w = w.filter { $0.key.key != key } }
            unjournaled.withLock { _ = $0.removeValue(forKey: key) }
        }
        if removeFiles {
            // Ranks are numbered from 0: remove until one has no log left.
            for rank in 0..<100_000 {
                let log = logPath(key, rank: rank)
                let had = unlink(log) == 0
                let had1 = unlink(log + ".1") == 0
                let hadM = unlink(metricsPath(key, rank: rank)) == 0
                unlink(log + ".times"); unlink(log + ".1.times")
                if !had && !had1 && !hadM && rank > 0 { break }
            }
            try? FileManager.default.removeItem(atPath: workdir(key))
        }
    }

    public func tail(_ key: ObjectKey, rank: Int, lines: Int) -> [String] {
        LogFiles.tail(logPath(key, rank: rank), lines: lines, maxBytes: 16384)
    }

    /// The state directory has at least 1 MiB free and takes a small fsync'd write.
    public func probe() -> InfrastructureFault? {
        var vfs = statvfs()
        if statvfs(stateDir, &vfs) == 0, UInt64(vfs.f_bavail) &* UInt64(vfs.f_bsize) < 1 << 20 {
            return InfrastructureFault(errno: ENOSPC, op: "statvfs", path: stateDir, detail: "")
        }
        let path = recordsDir + "/.probe.tmp"
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return InfrastructureFault(errno: errno, op: "open", path: path) }
        defer { close(fd) }
        guard writeAll(fd, [UInt8](repeating: 10, count: 4096)), fsync(fd) == 0 else { return InfrastructureFault(errno: errno, op: "write", path: path) }
        return nil
    }

    public func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return 29500 }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                bind(fd, sp, len) == 0 && getsockname(fd, sp, &len) == 0
            }
        }
        return ok ? Int(UInt16(bigEndian: addr.sin_port)) : 29500
    }

    // MARK: Recovery

    /// The replica a record file name (`NS.NAME.DISPATCH.RANK.ATTEMPT.rec`) belongs to.
    static func parseName(_ n: String) -> ReplicaRef? {
        let parts = n.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[5] == "rec", let d = Int(parts[2]), let r = Int(parts[3]), let a = Int(parts[4]),
              [d, r, a].allSatisfy({ (0...Int(Int32.max)).contains($0) }) else { return nil }
        return ReplicaRef(key: ObjectKey(.workload, namespace: parts[0], name: parts[1]), dispatch: d, rank: r, attempt: a)
    }

    /// A record's text (nil: none), read with plain system calls: the monitor reads one or two
    /// records per replica start, and Foundation's file reading costs several times more.
    static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            // A record is a few lines; past 1 MiB it is not one the supervisor wrote.
            if n > 0 { out.append(contentsOf: buf[0..<n]); if out.count > 1 << 20 { return nil }; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            break
        }
        return String(decoding: out, as: UTF8.self)
    }

    public func recover() -> [ObjectKey: RecoveredDispatch] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: recordsDir)) ?? []
        var byKey: [ObjectKey: [ReplicaRef]] = [:]
        var index: [ObjectKey: Set<String>] = [:]
        for n in names {
            if let r = ProcessRuntime.parseName(n) {
                byKey[r.key, default: []].append(r)
                index[r.key, default: []].insert(n)
            } else if n.hasSuffix(".tmp") {
                unlink(recordsDir + "/" + n)
            }
        }
        files.withLock { f in f.merge(index) { $0.union($1) } }
        var out: [ObjectKey: RecoveredDispatch] = [:]
        var watch: [ReplicaRef: Watch] = [:]
        for (key, intent) in journal.load() {
            let d = intent.dispatch
            let recs = byKey[key] ?? []
            var reps: [Int: RecoveredReplica] = [:]
            for ref in recs where ref.dispatch == d {
                if let cur = reps[ref.rank], cur.ref.attempt >= ref.attempt { continue }
                var rr = RecoveredReplica(ref: ref)
                let rec = ReplicaRecord(text: ProcessRuntime.readText(recordPrefix(ref) + ".rec") ?? "")
                if rec.pid > 0 { rr.pid = rec.pid }
                if rec.start > 0 { rr.start = rec.start }
                if let f = rec.fault {
                    rr.fault = InfrastructureFault(f)
                } else if let code = rec.code {
                    rr.exit = (code, rec.signal, rec.end ?? rec.start)
                } else if rec.shimPid > 0 && processStartTicks(rec.shimPid) == rec.shimStart {
                    watch[ref] = Watch(shimPid: rec.shimPid, shimStart: rec.shimStart, pid: rec.pid, since: rec.start)
                } else {
                    rr.lost = true
                }
                reps[ref.rank] = rr
            }
            // Ranks with no record yet: their supervisor may still be starting.
            for a in intent.assignments where reps[a.rank] == nil {
                let ref = ReplicaRef(key: key, dispatch: d, rank: a.rank, attempt: 0)
                watch[ref] = Watch(since: intent.at)
            }
            out[key] = RecoveredDispatch(intent: intent, replicas: reps)
        }
        watched.withLock { w in for (k, v) in watch { w[k] = v } }
        return out
    }

    // MARK: Monitor

    func emit(_ e: RuntimeEvent) { handler.withLock { $0 }?.f(e) }

    func monitor() {
        var buf = [UInt8](repeating: 0, count: 65536)
        var lastSweep = 0.0
        while !stopped.load(ordering: .relaxed) {
            var p = pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 250)
            var names: [String] = []
            var overflow = false
            while inotifyFD >= 0 {
                let n = read(inotifyFD, &buf, buf.count)
                if n <= 0 { break }
                var off = 0
                buf.withUnsafeBytes { raw in
                    while off + 16 <= n {
                        let ev = raw.loadUnaligned(fromByteOffset: off, as: inotify_event.self)
                        if ev.mask & UInt32(IN_Q_OVERFLOW) != 0 { overflow = true }
                        if ev.len > 0 {
                            let start = off + 16
                            var end = start
                            while end < start + Int(ev.len) && raw[end] != 0 { end += 1 }
                            names.append(String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<end]), as: UTF8.self))
                        }
                        off += 16 + Int(ev.len)
                    }
                }
            }
            // Several lines of one record may be reported together: read it once.
            var seen = Set<String>()
            for n in names where seen.insert(n).inserted { if let r = ProcessRuntime.parseName(n) { check(r) } }
            for e in pending.withLock({ p in defer { p = [] }; return p }) {
                guard watched.withLock({ $0.removeValue(forKey: e.ref) }) != nil else { continue }
                emit(e)
            }
            reap()
            let now = wallSeconds()
            if overflow || now - lastSweep >= 1 {
                // Records are re-read only when inotify may have missed some: the first sweep
                // (records written before the watch began) and after a queue overflow.
                sweep(now: now, reread: overflow || lastSweep == 0)
                lastSweep = now
            }
        }
    }

    /// Reaps exited supervisors and orphans that were re-parented here (the daemon is a
    /// child subreaper).
    func reap() {
        var st: Int32 = 0
        while true {
            let p = waitpid(-1, &st, WNOHANG)
            if p <= 0 { break }
            if g_exited(st) != 0 && g_exit_status(st) != 0 {
                if shimExits.count >= 4096 { shimExits = [:] }
                shimExits[p] = g_exit_status(st)
            }
        }
    }

    /// Reads a replica's record and reports what changed.
    func check(_ ref: ReplicaRef) {
        guard let w = watched.withLock({ $0[ref] }), let text = ProcessRuntime.readText(recordPrefix(ref) + ".rec") else { return }
        let rec = ReplicaRecord(text: text)
        if let f = rec.fault {
            guard watched.withLock({ $0.removeValue(forKey: ref) }) != nil else { return }
            Log.warn("replica could not start: infrastructure fault", ["replica": ref.description, "fault": InfrastructureFault(f).description])
            emit(.infrastructureFailed(ref, InfrastructureFault(f)))
            return
        }
        if rec.exited {
            guard watched.withLock({ $0.removeValue(forKey: ref) }) != nil else { return }
            if w.pid == nil && rec.pid > 0 { emit(.started(ref, pid: rec.pid, at: rec.start)) }
            emit(.exited(ref, code: rec.code ?? -1, signal: rec.signal, at: rec.end ?? wallSeconds()))
            return
        }
        guard w.pid == nil, rec.started, rec.pid > 0 else { return }
        let pending: Int32? = watched.withLock { m in
            guard var x = m[ref] else { return nil }
            x.pid = rec.pid
            if rec.shimPid > 0 { x.shimPid = rec.shimPid; x.shimStart = rec.shimStart }
            let p = x.pendingSignal
            x.pendingSignal = nil
            m[ref] = x
            return p
        }
        emit(.started(ref, pid: rec.pid, at: rec.start))
        if let pending, rec.pid > 1 { kill(-rec.pid, pending) }
    }

    /// Once a second: replicas whose supervisor is gone without a record (and, with
    /// `reread`, records inotify did not report).
    func sweep(now: Double, reread: Bool) {
        let all = watched.withLock { $0 }
        for (ref, w) in all {
            if reread {
                check(ref)
                guard watched.withLock({ $0[ref] != nil }) else { continue }
            }
            let alive: Bool
            if let sp = w.shimPid {
                if let s = w.shimStart { alive = processStartTicks(sp) == s } else { alive = kill(sp, 0) == 0 }
            } else {
                alive = now - w.since < startTimeout
            }
            if alive { continue }
            check(ref)   // it may have recorded its exit just now
            guard watched.withLock({ $0.removeValue(forKey: ref) }) != nil else { continue }
            if let pid = w.pid, pid > 1 { kill(-pid, SIGKILL) }
            if let sp = w.shimPid, let e = shimExits.removeValue(forKey: sp) {
                let f = ProcessRuntime.unrecordedExit(status: e, record: recordPrefix(ref) + ".rec")
                Log.warn(e <= 125 ? "replica lost: its supervisor could not write its record" : "replica lost: its supervisor could not be run",
                         ["replica": ref.description, "fault": f.description])
                emit(.infrastructureFailed(ref, f))
                continue
            }
            let msg = w.shimPid == nil ? "its supervisor never recorded a start" : "its supervisor (pid \(w.shimPid!)) vanished without recording an exit"
            Log.warn("replica lost", ["replica": ref.description, "reason": msg])
            emit(.lost(ref, message: msg))
        }
    }
}

/// Reading replica logs: the capped log is `FILE.1` (older) followed by `FILE`.
public enum LogFiles {
    /// The last `lines` lines of the log, reading at most `maxBytes` from its end.
    public static func tail(_ path: String, lines: Int, maxBytes: Int = 1 << 20) -> [String] {
        var data = lastBytes(path, maxBytes)
        if data.count < maxBytes { data = lastBytes(path + ".1", maxBytes - data.count) + data }
        var out = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if out.last == "" { out.removeLast() }
        return Array(out.suffix(lines))
    }

    static func lastBytes(_ path: String, _ n: Int) -> [UInt8] {
        guard n > 0 else { return [] }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        let size = Int(st.st_size)
        let count = min(n, size)
        var buf = [UInt8](repeating: 0, count: count)
        let r = pread(fd, &buf, count, off_t(size - count))
        return r > 0 ? Array(buf[0..<r]) : []
    }
}
