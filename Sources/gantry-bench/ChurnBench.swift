import Foundation
import ControllerRuntime

/// `gantry-bench --churn [--churn-seconds S]`: the long-run soak (issue 12, "Long runs stay
/// flat"). A release daemon on a fresh state directory with the real runtime; trivial
/// workloads (`command: "true"`) created at `rate` a second and each deleted `lifetime`
/// seconds later (about rate x lifetime live), and every `chattyEvery` seconds a new run of
/// a workload that prints `chattyBytes` (the previous one deleted). At the start, the end and
/// a few times between, it prints the daemon's RSS (VmRSS/VmHWM), open fds, threads, the
/// state directory's size (`du`), and the state database's and its WAL's sizes.
enum ChurnBench {
    struct Config {
        var seconds = 180.0
        var rate = 5.0
        var lifetime = 8.0
        var chattyEvery = 20.0
        var chattyBytes = 50 << 20
        var samples = 6
    }

    struct Sample {
        var rss = 0, hwm = 0, fds = 0, threads = 0, du = 0, wal = 0, db = 0
    }

    static func sample(_ pid: Int32, state: String) -> Sample {
        var s = Sample()
        if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard f.count >= 2, let v = Int(f[1]) else { continue }
                switch f[0] {
                case "VmRSS:": s.rss = v * 1024
                case "VmHWM:": s.hwm = v * 1024
                case "Threads:": s.threads = v
                default: break
                }
            }
        }
        s.fds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
        s.du = diskUsage(state)
        s.wal = fileSize(state + "/state.db-wal")
        s.db = fileSize(state + "/state.db")
        return s
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Bytes allocated under `path`, as `du` counts them (blocks, not lengths).
    static func diskUsage(_ path: String) -> Int {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        var total = Int(st.st_blocks) * 512
        if (st.st_mode & S_IFMT) == S_IFDIR, let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for n in names { total += diskUsage(path + "/" + n) }
        }
        return total
    }

    static func mb(_ b: Int) -> String { String(format: "%.1f MB", Double(b) / 1e6) }

    static func run(gantry: String, dir base: String, config c: Config, keep: Bool, say: (String) -> Void) {
        let dir = base + "-churn-" + String(getpid())
        let spec = dir + "/spec", state = dir + "/state"
        do {
            try FileManager.default.createDirectory(atPath: spec + "/w", withIntermediateDirectories: true)
            try "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: churn}\nspec:\n  deserved: {gpu: 64}\n"
                .write(toFile: spec + "/queue.yaml", atomically: true, encoding: .utf8)
        } catch { say("churn: cannot create \(spec): \(error)"); return }
        let logPath = dir + "/daemon.log"
        guard let daemon = try? startDaemon(gantry, spec: spec, state: state, log: logPath, localGPUs: 64) else { say("churn: cannot start \(gantry)"); return }
        defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
        let pid = daemon.processIdentifier
        let up = monotonicSeconds()
        while !((try? String(contentsOfFile: logPath, encoding: .utf8))?.contains("initial sync complete") ?? false) {
            if !daemon.isRunning || monotonicSeconds() - up > 60 { say("churn: the daemon did not start; see \(logPath)"); return }
            usleep(5_000)
        }
        func doc(_ name: String, _ command: String) -> String {
            "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name), namespace: churn}\nspec:\n  queue: churn\n  command: \(command)\n  resources: {gpu: 1}\n"
        }
        // One line of 64 bytes repeated: `chattyBytes` of output, then the run ends.
        let chattyCommand = "\"yes 'gantry churn soak: a service that prints a lot of output......' | head -c \(c.chattyBytes)\""
        say(String(format: "churn soak: %.0f s, %.1f trivial workloads/s each deleted after %.0f s (about %.0f live), ", c.seconds, c.rate, c.lifetime, c.rate * c.lifetime)
            + "a \(mb(c.chattyBytes)) printing run every \(Int(c.chattyEvery)) s; state \(state)")
        say("  t(s)  created   RSS       HWM       fds  threads  state du   WAL       db        daemon CPU")
        var created = 0, chattyRuns = 0
        func report(_ t: Double) {
            let s = sample(pid, state: state)
            func col(_ v: String, _ w: Int) -> String { v.count >= w ? v + " " : v + String(repeating: " ", count: w - v.count) }
            say(String(format: "%6.0f  %7d  ", t, created) + col(mb(s.rss), 10) + col(mb(s.hwm), 10) + String(format: "%3d  %7d  ", s.fds, s.threads)
                + col(mb(s.du), 11) + col(mb(s.wal), 10) + col(mb(s.db), 10) + String(format: "%.1f s", cpuSeconds(pid)))
        }
        report(0)
        var live: [(name: String, at: Double)] = []
        var chatty: String?
        let t0 = monotonicSeconds()
        var nextSample = c.seconds / Double(max(c.samples, 1)), nextChatty = 0.0
        var tick = 0
        while true {
            let t = monotonicSeconds() - t0
            if t >= c.seconds || !daemon.isRunning { break }
            if t >= nextChatty {
                if let old = chatty { try? FileManager.default.removeItem(atPath: "\(spec)/w/\(old).yaml") }
                let name = "chatty-\(chattyRuns)"
                chattyRuns += 1
                try? doc(name, chattyCommand).write(toFile: "\(spec)/w/\(name).yaml", atomically: false, encoding: .utf8)
                chatty = name
                nextChatty += c.chattyEvery
            }
            let name = "job-\(created)"
            try? doc(name, "\"true\"").write(toFile: "\(spec)/w/\(name).yaml", atomically: false, encoding: .utf8)
            created += 1
            live.append((name, t))
            while let first = live.first, t - first.at >= c.lifetime {
                try? FileManager.default.removeItem(atPath: "\(spec)/w/\(first.name).yaml")
                live.removeFirst()
            }
            if t >= nextSample { report(t); nextSample += c.seconds / Double(max(c.samples, 1)) }
            tick += 1
            let next = Double(tick) / c.rate
            let wait = next - (monotonicSeconds() - t0)
            if wait > 0 { usleep(UInt32(wait * 1e6)) }
        }
        // Everything deleted; a few seconds for the deletions to settle, then the last figures.
        for w in live { try? FileManager.default.removeItem(atPath: "\(spec)/w/\(w.name).yaml") }
        if let old = chatty { try? FileManager.default.removeItem(atPath: "\(spec)/w/\(old).yaml") }
        usleep(5_000_000)
        report(monotonicSeconds() - t0)
        daemon.terminate(); daemon.waitUntilExit()
        // The daemon's own account of its checkpoints, logged when it stops.
        if let log = try? String(contentsOfFile: logPath, encoding: .utf8),
           let line = log.split(separator: "\n").last(where: { $0.contains("state store closed") }) {
            say("  daemon: " + line)
        }
        say("churn soak: \(created) trivial workloads and \(chattyRuns) printing runs created and deleted")
    }
}
