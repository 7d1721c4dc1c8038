import Foundation
import GantryAPI
import StateStore
import ControllerRuntime

/// `gantry-bench --run`: the runtime figures. A fresh daemon with one local node of 8 GPUs
/// and one queue; first, on the idle daemon, the latency from writing one workload file to
/// its replica process starting (the supervisor's recorded spawn time), one workload at a
/// time; then `--workloads` trivial workloads (`command: "true"`, 1 GPU each) in two forms,
/// each on a fresh daemon, timed until every one is Succeeded, with the daemon's CPU time
/// (utime + stime of the daemon process; its supervisors are separate processes):
///
/// - files: one file per workload, written at once as `git checkout` or `cp -r` writes them
///   (open, write, close; no fsync). The bench's own writing overlaps the daemon's work, so
///   the time from the last file written is printed too;
/// - one file: one file holding every workload as `---`-separated documents, written to a
///   hidden name and renamed into the spec directory (how `kubectl apply -f` users and GitOps
///   commits deliver a batch).
enum RunBench {
    static func doc(_ name: String) -> String {
        "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name), namespace: bench}\nspec:\n  queue: batch\n  command: \"true\"\n  resources: {gpu: 1}\n"
    }

    /// A fresh daemon on a fresh directory (on ext4 without a journal, creating thousands of
    /// files right after deleting a previous run's makes inode allocation slow).
    struct Daemon {
        let dir: String, spec: String, state: String, process: Process
        init(gantry: String, dir: String) {
            self.dir = dir
            spec = dir + "/spec"; state = dir + "/state"
            try! FileManager.default.createDirectory(atPath: spec + "/w", withIntermediateDirectories: true)
            try! "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: batch}\nspec:\n  deserved: {gpu: 8}\n".write(toFile: spec + "/queue.yaml", atomically: true, encoding: .utf8)
            let logPath = dir + "/daemon.log"
            process = try! startDaemon(gantry, spec: spec, state: state, log: logPath, localGPUs: 8)
            while !((try? String(contentsOfFile: logPath, encoding: .utf8))?.contains("initial sync complete") ?? false) { usleep(5_000) }
        }
        func stop(keep: Bool) {
            process.terminate(); process.waitUntilExit()
            if !keep { try? FileManager.default.removeItem(atPath: dir) }
        }
    }

    static func run(gantry: String, dir base: String, workloads n: Int, samples: Int, keep: Bool, say: (String) -> Void) {
        // The bench's earlier parts have just deleted their directories (10,000 files and
        // more). On ext4 without a journal every inode allocation then skips over the recently
        // deleted inodes whose table blocks are still dirty (for up to 30 s; 5 s once written
        // out), which made each supervisor's three file creations cost about 2-3 ms more of
        // kernel CPU: a cost of the bench's own cleanup, not of Gantry. Written out here, it
        // has passed before the throughput forms start (the latency samples take over 5 s).
        sync()
        let d = Daemon(gantry: gantry, dir: base + "-run-" + String(getpid()))
        defer { d.stop(keep: keep) }
        let spec = d.spec, state = d.state
        // 1. Latency on an idle daemon.
        var lat: [Double] = []
        for i in 0..<samples {
            let name = "lat-\(i)"
            let record = "\(state)/replicas/bench.\(name).1.0.0.rec"
            let t0 = Date().timeIntervalSince1970
            try! doc(name).write(toFile: "\(spec)/w/\(name).yaml", atomically: false, encoding: .utf8)
            var started: Double?
            while started == nil && Date().timeIntervalSince1970 - t0 < 10 {
                if let d = FileManager.default.contents(atPath: record) {
                    for f in String(decoding: d, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) where f.hasPrefix("start=") { started = Double(f.dropFirst(6)) }
                } else { usleep(200) }
            }
            if let s = started { lat.append((s - t0) * 1000) } else { say("latency sample \(i): no start within 10 s") }
            usleep(100_000)   // idle again before the next one
        }
        say(String(format: "write -> replica process started (idle daemon, %d samples): median %.1f ms, p99 %.1f ms, min %.1f ms",
                    lat.count, percentile(lat, 0.5), percentile(lat, 0.99), lat.min() ?? 0))
        guard let reader = try? StateReader(directory: state) else { say("no state database"); return }
        while ((try? reader.workloads(inPhase: "Succeeded")) ?? 0) < samples { usleep(20_000) }
        // 2. Throughput, files written at once, the way `git checkout` or `cp -r` writes them:
        // open, write, close, no fsync (names and bytes made before the clock starts).
        let files = (0..<n).map { i in ("\(spec)/w/job-\(i).yaml", Array(doc("job-\(i)").utf8)) }
        throughput(d, reader: reader, n: n, already: samples, form: "as \(n) files written at once", say: say) {
            for (path, bytes) in files { writePlain(path, bytes) }
        }
        // 3. Throughput, one file of n documents, on a fresh daemon.
        let d2 = Daemon(gantry: gantry, dir: base + "-run1-" + String(getpid()))
        defer { d2.stop(keep: keep) }
        guard let reader2 = try? StateReader(directory: d2.state) else { say("no state database"); return }
        throughput(d2, reader: reader2, n: n, already: 0, form: "in one file of \(n) documents (renamed in)", say: say) {
            var text = ""
            text.reserveCapacity(n * 160)
            for i in 0..<n {
                if i > 0 { text += "---\n" }
                text += doc("job-\(i)")
            }
            let tmp = d2.spec + "/w/.batch.yaml.tmp"
            writePlain(tmp, Array(text.utf8))
            rename(tmp, d2.spec + "/w/batch.yaml")
        }
    }

    /// Writes a file as a plain tool does: open (create or truncate), write, close; no fsync.
    static func writePlain(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "gantry-bench: cannot create \(path): errno \(errno)")
        var off = 0
        while off < bytes.count {
            let r = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if r < 0 && errno == EINTR { continue }
            precondition(r > 0, "gantry-bench: cannot write \(path): errno \(errno)")
            off += r
        }
        close(fd)
    }

    /// Times `write` (the bench's part) and then until `n` more workloads are Succeeded.
    static func throughput(_ d: Daemon, reader: StateReader, n: Int, already: Int, form: String, say: (String) -> Void, write: () -> Void) {
        let pid = d.process.processIdentifier
        let cpu0 = cpuSeconds(pid), sup0 = reapedChildrenCPUSeconds(pid)
        let t0 = monotonicSeconds()
        write()
        let written = monotonicSeconds() - t0
        var done = 0
        while monotonicSeconds() - t0 < 600 {
            done = ((try? reader.workloads(inPhase: "Succeeded")) ?? 0) - already
            if done >= n { break }
            usleep(20_000)
        }
        let dt = monotonicSeconds() - t0
        let cpu = cpuSeconds(pid) - cpu0
        let sup = reapedChildrenCPUSeconds(pid) - sup0
        let per = 1000 / Double(max(done, 1))
        say(String(format: "%d trivial workloads (1 GPU each, 8 GPUs) %@: written in %.2f s, all Succeeded %.2f s after the first write (%.2f s after the last): %.0f workloads/s; daemon CPU %.2f s (%.2f ms per workload), supervisors and replicas %.2f s (%.2f ms per workload)",
                    n, form, written, dt, dt - written, Double(done) / dt, cpu, cpu * per, sup, sup * per))
        if done < n { say("only \(done) of \(n) Succeeded within 600 s") }
    }
}

/// User + system CPU seconds of the children a process has reaped (its supervisors and, through
/// them, their replicas): cutime + cstime in /proc/PID/stat.
func reapedChildrenCPUSeconds(_ pid: Int32) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return 0 }
    let fields = s[s.index(after: close)...].split(separator: " ")
    guard fields.count > 14 else { return 0 }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((Double(fields[13]) ?? 0) + (Double(fields[14]) ?? 0)) / ticks
}

/// Starts `gantry run` on a spec and state directory (no metrics sampling), its output in `log`.
func startDaemon(_ gantry: String, spec: String, state: String, log: String, localGPUs: Int) throws -> Process {
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let daemon = Process()
    daemon.executableURL = URL(fileURLWithPath: gantry)
    daemon.arguments = ["run", "--spec-dir", spec, "--state-dir", state, "--local-gpus", String(localGPUs), "--metrics-interval", "0"]
    daemon.standardError = FileHandle(forWritingAtPath: log)
    daemon.standardOutput = daemon.standardError
    try daemon.run()
    return daemon
}
