import Foundation
import GantryAPI
import StateStore
import ControllerRuntime

/// `gantry-bench --run`: the runtime figures. A fresh daemon with one local node of 8 GPUs
/// and one queue; first, on the idle daemon, the latency from writing one workload file to
/// its replica process starting (the supervisor's recorded spawn time), one workload at a
/// time; then `--workloads` trivial workloads (`command: "true"`, 1 GPU each) written as
/// files at once, timed until every one is Succeeded, with the daemon's CPU time.
enum RunBench {
    static func run(gantry: String, dir base: String, workloads n: Int, samples: Int, keep: Bool, say: (String) -> Void) {
        // A fresh directory each run: on ext4 without a journal, creating thousands of files
        // right after deleting a previous run's makes inode allocation slow.
        let dir = base + "-run-" + String(getpid())
        let spec = dir + "/spec", state = dir + "/state"
        try! FileManager.default.createDirectory(atPath: spec + "/w", withIntermediateDirectories: true)
        try! "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: batch}\nspec:\n  deserved: {gpu: 8}\n".write(toFile: spec + "/queue.yaml", atomically: true, encoding: .utf8)
        let logPath = dir + "/daemon.log"
        let daemon = try! startDaemon(gantry, spec: spec, state: state, log: logPath, localGPUs: 8)
        defer {
            daemon.terminate(); daemon.waitUntilExit()
            if !keep { try? FileManager.default.removeItem(atPath: dir) }
        }
        while !((try? String(contentsOfFile: logPath, encoding: .utf8))?.contains("initial sync complete") ?? false) { usleep(5_000) }
        func doc(_ name: String) -> String {
            "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name), namespace: bench}\nspec:\n  queue: batch\n  command: \"true\"\n  resources: {gpu: 1}\n"
        }
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
        // 2. Throughput.
        let cpu0 = cpuSeconds(daemon.processIdentifier)
        let t0 = monotonicSeconds()
        for i in 0..<n { try! doc("job-\(i)").write(toFile: "\(spec)/w/job-\(i).yaml", atomically: false, encoding: .utf8) }
        let written = monotonicSeconds() - t0
        var done = 0
        while monotonicSeconds() - t0 < 600 {
            done = ((try? reader.workloads(inPhase: "Succeeded")) ?? 0) - samples
            if done >= n { break }
            usleep(20_000)
        }
        let dt = monotonicSeconds() - t0
        let cpu = cpuSeconds(daemon.processIdentifier) - cpu0
        say(String(format: "%d trivial workloads (1 GPU each, 8 GPUs): files written in %.2f s, all Succeeded in %.2f s: %.0f workloads/s; daemon CPU %.2f s (%.2f ms per workload)",
                    n, written, dt, Double(done) / dt, cpu, cpu / Double(max(done, 1)) * 1000))
        if done < n { say("only \(done) of \(n) Succeeded within 600 s") }
    }
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
