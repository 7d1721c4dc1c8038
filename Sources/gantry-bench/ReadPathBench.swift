import Foundation
import ControllerRuntime

/// The CLI's read path at N stored workloads: pages of `get workloads -A` with filters and
/// sorts, `-o name` and `describe queue`, each run as its own process; prints wall time, CPU
/// time and peak RSS (from wait4's rusage), beside a single-object `get` as the reference.
enum ReadPathBench {
    static let commands: [[String]] = [
        ["get", "workloads", "wl-1", "-n", "team-1"],
        ["get", "workloads", "-A", "--limit", "50"],
        ["get", "workloads", "-A", "--limit", "50", "--sort-by", "priority"],
        ["get", "workloads", "-A", "--limit", "50", "--sort-by", "creationTime", "--order", "desc", "--offset", "1000"],
        ["get", "workloads", "-A", "--limit", "50", "--phase", "pending", "--sort-by", "gpus"],
        ["get", "workloads", "-A", "--limit", "50", "--phase", "running", "--sort-by", "priority"],
        ["get", "workloads", "-A", "--limit", "50", "--queue", "leaf-7", "-l", "project=p3"],
        ["get", "workloads", "-A", "--limit", "50", "--name-contains", "run 9999"],
        ["get", "workloads", "-n", "team-3", "--limit", "50", "--sort-by", "priority"],
        ["get", "workloads", "-A", "-o", "name"],
        ["describe", "queue", "leaf-7"],
    ]

    static func run(gantry: String, state: String, say: (String) -> Void) {
        say("CLI read path (each a fresh process; wall, CPU, peak RSS):")
        for c in commands {
            guard let r = measure(gantry, c + ["--state-dir", state]) else { say("  could not run \(c.joined(separator: " "))"); continue }
            say(String(format: "  %7.1f ms wall %7.1f ms CPU %6.1f MB  gantry %@", r.wall * 1000, r.cpu * 1000, Double(r.maxRSSKB) / 1024,
                       c.joined(separator: " ")))
        }
    }

    /// Runs `path args` with its output discarded; nil when it cannot be started.
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
