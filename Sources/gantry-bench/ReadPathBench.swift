import Foundation
import ControllerRuntime

/// The CLI's read path at N stored workloads: pages of `get workloads -A` with filters and
/// sorts, `-o name` and `describe queue`, each run as its own process; prints wall time, CPU
/// time and peak RSS, beside a single-object `get` as the reference.
///
/// The peak RSS is the CLI process's own. wait4's `ru_maxrss` of a process this bench spawns
/// is not: glibc's posix_spawn shares the bench's memory until the exec (vfork), and Linux
/// records the old memory's high-water mark in the new process's `maxrss` at the exec, so
/// every command showed the bench's own peak. The command therefore runs under GNU time
/// (`/usr/bin/time -f %M`), which is small and forks the CLI with a real fork: the CLI's
/// `maxrss` then starts from time's few MB, below any CLI's own peak. Without GNU time the
/// column is left out.
enum ReadPathBench {
    static let commands: [[String]] = [
        ["get", "workloads", "wl-1", "-n", "team-1"],
        ["get", "workloads", "-A", "--limit", "50"],
        ["get", "workloads", "-A", "--limit", "50", "--sort-by", "priority"],
        ["get", "workloads", "-A", "--limit", "50", "--sort-by", "creationTime", "--order", "desc", "--offset", "1000"],
        ["get", "workloads", "-A", "--limit", "50", "--phase", "pending", "--sort-by", "gpus"],
        ["get", "workloads", "-A", "--limit", "50", "--phase", "running", "--sort-by", "priority"],
        ["get", "workloads", "-A", "--limit", "50", "--queue", "leaf-7", "-l", "project=p3"],
        ["get", "workloads", "-A", "--limit", "50", "--phase", "pending", "--queue", "leaf-7,leaf-8", "--sort-by", "creationTime", "--order", "desc"],
        ["get", "workloads", "-A", "--limit", "50", "--name-contains", "run 9999"],
        ["get", "workloads", "-n", "team-3", "--limit", "50", "--sort-by", "priority"],
        ["get", "workloads", "-A", "-o", "name"],
        ["describe", "queue", "leaf-7"],
    ]

    static func run(gantry: String, state: String, say: (String) -> Void) {
        let timeTool = FileManager.default.isExecutableFile(atPath: gnuTime) ? gnuTime : nil
        say("CLI read path (each a fresh process; wall, CPU, peak RSS\(timeTool == nil ? ": not measured, no \(gnuTime)" : " of the CLI process")):")
        for c in commands {
            guard let r = measure(gantry, c + ["--state-dir", state], timeTool: timeTool) else { say("  could not run \(c.joined(separator: " "))"); continue }
            let rss = r.maxRSSKB.map { String(format: "%6.1f MB", Double($0) / 1024) } ?? "     - MB"
            say(String(format: "  %7.1f ms wall %7.1f ms CPU %@  gantry %@", r.wall * 1000, r.cpu * 1000, rss, c.joined(separator: " ")))
        }
    }

    static let gnuTime = "/usr/bin/time"

    /// Runs `path args`, under GNU time when `timeTool` is given, and returns the CLI's own
    /// peak RSS in KiB (nil without GNU time, or when its report cannot be read).
    static func measure(_ path: String, _ args: [String], timeTool: String?) -> (wall: Double, cpu: Double, maxRSSKB: Int?)? {
        guard let timeTool else { return measure(path, args).map { ($0.wall, $0.cpu, nil) } }
        let report = NSTemporaryDirectory() + "gantry-bench-rss-\(getpid())"
        defer { unlink(report) }
        guard let r = measure(timeTool, ["-f", "%M", "-o", report, path] + args) else { return nil }
        // GNU time's file holds the child's ru_maxrss in KiB on its last line.
        let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        let kb = text.split(separator: "\n").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return (r.wall, r.cpu, kb)
    }

    /// Runs `path args` with its output discarded; nil when it cannot be started. The CPU time
    /// includes the process's children (GNU time's CLI).
    static func measure(_ path: String, _ args: [String]) -> (wall: Double, cpu: Double, maxRSSKB: Int)? {
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let t0 = monotonicSeconds()
        guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { return nil }
        var status: Int32 = 0
        var usage = rusage()
        guard wait4(pid, &status, 0, &usage) == pid else { return nil }
        let wall = monotonicSeconds() - t0
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return (wall, cpu, usage.ru_maxrss)
    }
}
