import Glibc
import CShim

/// posix_spawn with the settings supervision needs: every signal at its default, an empty
/// signal mask, only the file descriptors named here (0, 1, 2), optionally a process group
/// of its own or a new session, and a working directory. Foundation.Process is not used: its
/// child inherits the signals the daemon ignores and it reaps late.
public struct SpawnRequest {
    public var argv: [String]
    public var env: [String]
    /// Opened on fd 0; default /dev/null.
    public var stdinPath = "/dev/null"
    /// Duplicated onto fd 1 and 2 (nil: /dev/null).
    public var outputFD: Int32?
    public var workdir: String?
    /// Leader of a new process group (pgid = pid).
    public var newProcessGroup = false
    /// Leader of a new session (implies a new group): terminal signals do not reach it.
    public var newSession = false

    public init(argv: [String], env: [String]) { self.argv = argv; self.env = env }
}

public enum Spawn {
    /// Starts the process; returns its pid or the errno of the failure.
    public static func start(_ r: SpawnRequest) -> Result<pid_t, SpawnError> {
        var attr = posix_spawnattr_t()
        var actions = posix_spawn_file_actions_t()
        posix_spawnattr_init(&attr)
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawnattr_destroy(&attr); posix_spawn_file_actions_destroy(&actions) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if r.newSession { flags |= Int32(G_POSIX_SPAWN_SETSID) } else if r.newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attr, 0)
        }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(truncatingIfNeeded: flags))
        posix_spawn_file_actions_addopen(&actions, 0, r.stdinPath, O_RDONLY, 0)
        if let fd = r.outputFD {
            posix_spawn_file_actions_adddup2(&actions, fd, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        if let wd = r.workdir { posix_spawn_file_actions_addchdir_np(&actions, wd) }
        var pid: pid_t = 0
        guard let path = r.argv.first else { return .failure(SpawnError(errno: EINVAL, path: "")) }
        let rc = withCStrings(r.argv) { argv in
            withCStrings(r.env) { envp in
                posix_spawn(&pid, path, &actions, &attr, argv, envp)
            }
        }
        if rc != 0 { return .failure(SpawnError(errno: rc, path: r.argv.first ?? "")) }
        return .success(pid)
    }

    /// Runs a program to completion and returns its standard output (nil: it could not run,
    /// exited non-zero, or did not finish within `timeout` seconds and was killed). For short
    /// helper commands such as `nvidia-smi`.
    public static func capture(_ argv: [String], env: [String] = [], timeout: Double = 10, limit: Int = 1 << 20) -> String? {
        var fds: [Int32] = [0, 0]
        guard pipe2(&fds, O_CLOEXEC) == 0 else { return nil }
        var req = SpawnRequest(argv: argv, env: env.isEmpty ? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] : env)
        req.outputFD = fds[1]
        let started = start(req)
        close(fds[1])
        guard case .success(let pid) = started else { close(fds[0]); return nil }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        let deadline = wallSeconds() + timeout
        var timedOut = false
        while true {
            let left = deadline - wallSeconds()
            if left <= 0 { timedOut = true; break }
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let pr = poll(&p, 1, Int32(min(left, 3600) * 1000) + 1)
            if pr < 0 && errno == EINTR { continue }
            if pr <= 0 { continue }
            let n = read(fds[0], &buf, buf.count)
            if n > 0 { if out.count < limit { out.append(contentsOf: buf[0..<n]) } } else if n == 0 || errno != EINTR { break }
        }
        close(fds[0])
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        var w: pid_t
        repeat { w = waitpid(pid, &status, 0) } while w < 0 && errno == EINTR
        if timedOut { return nil }
        // Reaped by someone else (a subreaper sweep): the output is still good.
        if w == pid && !(g_exited(status) != 0 && g_exit_status(status) == 0) { return nil }
        return String(decoding: out, as: UTF8.self)
    }

    /// Finds an executable on PATH (or the path itself when it contains a slash).
    public static func which(_ name: String, path: String? = nil) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let p = path ?? (getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin")
        for dir in p.split(separator: ":") where !dir.isEmpty {
            let c = "\(dir)/\(name)"
            if access(c, X_OK) == 0 { return c }
        }
        return nil
    }
}

public struct SpawnError: Error, CustomStringConvertible {
    public var errno: Int32
    public var path: String
    public var description: String { "cannot start \(path): \(String(cString: strerror(errno)))" }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return body(ptrs)
}

/// Seconds since the epoch.
public func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Writes a small file atomically: a temporary file, fsync, rename.
@discardableResult
public func writeFileAtomically(_ path: String, _ text: String) -> Bool {
    let tmp = path + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    var ok = writeAll(fd, Array(text.utf8))
    ok = ok && fsync(fd) == 0
    close(fd)
    guard ok, rename(tmp, path) == 0 else { unlink(tmp); return false }
    return true
}

/// Opens a file of lines for appending (creating it), first cutting off a torn last line:
/// bytes after the last newline, left by a writer killed mid-append. Without the cut the next
/// line would be glued onto the fragment and read back as one line. The cut is fsync'd before
/// the descriptor is returned. -1 (errno set) when the file cannot be opened or cut.
public func openLinesForAppend(_ path: String) -> Int32 {
    let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return -1 }
    func fail() -> Int32 { let e = errno; close(fd); errno = e; return -1 }
    var st = stat()
    guard fstat(fd, &st) == 0 else { return fail() }
    let size = Int(st.st_size)
    guard size > 0 else { return fd }
    var last: UInt8 = 0
    guard pread(fd, &last, 1, off_t(size - 1)) == 1 else { return fail() }
    if last == 10 { return fd }
    // Find the last newline, reading backwards a block at a time.
    var keep = 0, end = size
    var buf = [UInt8](repeating: 0, count: 65536)
    while end > 0 {
        let n = min(buf.count, end)
        guard pread(fd, &buf, n, off_t(end - n)) == n else { return fail() }
        if let i = buf[0..<n].lastIndex(of: 10) { keep = end - n + i + 1; break }
        end -= n
    }
    guard ftruncate(fd, off_t(keep)) == 0, fsync(fd) == 0 else { return fail() }
    return fd
}

@discardableResult
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { raw in writeAll(fd, raw.baseAddress, raw.count) }
}

@discardableResult
public func writeAll(_ fd: Int32, _ base: UnsafeRawPointer?, _ count: Int) -> Bool {
    guard let base else { return count == 0 }
    var off = 0
    while off < count {
        let n = write(fd, base + off, count - off)
        if n > 0 { off += n } else if n < 0 && errno == EINTR { continue } else { return false }
    }
    return true
}

/// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), to
/// tell a live process from a later one that reused its pid. Nil: no such process.
public func processStartTicks(_ pid: pid_t) -> UInt64? {
    let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 1024)
    let n = read(fd, &buf, buf.count)
    guard n > 0, let close = buf[0..<n].lastIndex(of: UInt8(ascii: ")")) else { return nil }
    let fields = buf[(close + 1)..<n].split(separator: UInt8(ascii: " "))
    // After the command: state is field 3, so start time (22) is index 19 here.
    guard fields.count > 19 else { return nil }
    return UInt64(String(decoding: fields[19], as: UTF8.self))
}

/// `mkdir -p`: makes a directory and its missing parents (0755). True when it exists after.
@discardableResult
public func makeDirectories(_ path: String) -> Bool {
    if mkdir(path, 0o755) == 0 || errno == EEXIST { return true }
    guard errno == ENOENT else { return false }
    var parent = path
    while parent.count > 1 && parent.hasSuffix("/") { parent.removeLast() }
    guard let slash = parent.lastIndex(of: "/"), slash != parent.startIndex else { return false }
    guard makeDirectories(String(parent[..<slash])) else { return false }
    return mkdir(path, 0o755) == 0 || errno == EEXIST
}
