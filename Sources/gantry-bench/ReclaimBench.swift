import Foundation

/// `gantry-bench --reclaim`: the reclaim case with real processes. Queue `org` (32
/// GPUs) over four 8-GPU nodes; `team-a` (16, capability 24, reclaimable) runs a 2×8 and a
/// borrowing 1×8 whose replicas take `stop` seconds to exit after SIGTERM; `team-b` (16,
/// guarantee 8) gets a 2×8. Measured per round, from writing the team-b file: when the
/// victim's process exited, and when the reclaiming workload's replicas all started (the
/// supervisors' recorded times). The figure that matters is start − victim exit.
enum ReclaimBench {
    static func run(gantry: String, dir base: String, rounds: Int, stop: Double, say: (String) -> Void) {
        var arrivalToRun: [Double] = [], arrivalToVictimGone: [Double] = [], overhead: [Double] = []
        for round in 0..<max(1, rounds) {
            let dir = base + "-reclaim-\(getpid())-\(round)"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            guard let r = once(gantry: gantry, dir: dir, stop: stop) else { say("reclaim round \(round): did not complete within 60 s"); continue }
            arrivalToRun.append(r.run * 1000); arrivalToVictimGone.append(r.victimGone * 1000); overhead.append((r.run - r.victimGone) * 1000)
        }
        guard !overhead.isEmpty else { return }
        say(String(format: "reclaim with victims taking %.1f s to stop (%d rounds): arrival -> victim gone median %.0f ms; arrival -> reclaiming workload running median %.0f ms, max %.0f ms; running - victim gone: median %.0f ms, max %.0f ms (target <= 1000 ms)",
                   stop, overhead.count, percentile(arrivalToVictimGone, 0.5), percentile(arrivalToRun, 0.5), arrivalToRun.max() ?? 0,
                   percentile(overhead, 0.5), overhead.max() ?? 0))
    }

    static func once(gantry: String, dir: String, stop: Double) -> (run: Double, victimGone: Double)? {
        let spec = dir + "/spec", state = dir + "/state"
        do { try FileManager.default.createDirectory(atPath: spec, withIntermediateDirectories: true) } catch { return nil }
        func write(_ name: String, _ text: String) { try? text.write(toFile: spec + "/" + name, atomically: true, encoding: .utf8) }
        var nodes = ""
        for i in 0..<4 { nodes += "---\napiVersion: gantry.dev/v1alpha1\nkind: Node\nmetadata: {name: node-\(i)}\nspec: {capacity: {gpu: 8}}\n" }
        write("nodes.yaml", nodes)
        write("queues.yaml", """
            apiVersion: gantry.dev/v1alpha1
            kind: Queue
            metadata: {name: org}
            spec: {deserved: {gpu: 32}}
            ---
            apiVersion: gantry.dev/v1alpha1
            kind: Queue
            metadata: {name: team-a}
            spec: {parent: org, deserved: {gpu: 16}, capability: {gpu: 24}, reclaimable: true}
            ---
            apiVersion: gantry.dev/v1alpha1
            kind: Queue
            metadata: {name: team-b}
            spec: {parent: org, deserved: {gpu: 16}, guarantee: {gpu: 8}}

            """)
        guard let daemon = try? startDaemon(gantry, spec: spec, state: state, log: dir + "/daemon.log", localGPUs: 0) else { return nil }
        defer {
            daemon.terminate(); daemon.waitUntilExit()
            killReplicas(state)
        }
        let slow = "trap 'sleep \(stop); exit 143' TERM; while true; do sleep 0.05; done"
        func job(_ name: String, _ queue: String, _ replicas: Int, _ command: String) -> String {
            "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: \(name)}\nspec:\n  queue: \(queue)\n  replicas: \(replicas)\n  resources: {gpu: 8}\n  command: \"\(command)\"\n"
        }
        func field(_ rec: String, _ line: String, _ name: String) -> Double? {
            guard let d = FileManager.default.contents(atPath: "\(state)/replicas/\(rec).rec") else { return nil }
            for l in String(decoding: d, as: UTF8.self).split(separator: "\n") where l.hasPrefix(line) {
                for f in l.split(separator: " ") where f.hasPrefix(name + "=") { return Double(f.dropFirst(name.count + 1)) }
            }
            return nil
        }
        func until(_ seconds: Double, _ cond: () -> Bool) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end { if cond() { return true }; usleep(2_000) }
            return false
        }
        write("a-big.yaml", job("a-big", "team-a", 2, slow))
        guard until(30, { field("default.a-big.1.1.0", "started", "start") != nil }) else { return nil }
        write("a-borrow.yaml", job("a-borrow", "team-a", 1, slow))
        guard until(30, { field("default.a-borrow.1.0.0", "started", "start") != nil }) else { return nil }
        let t0 = Date().timeIntervalSince1970
        write("b-job.yaml", job("b-job", "team-b", 2, "sleep 5"))
        var started: Double?
        let ok = until(60) {
            guard let s0 = field("default.b-job.1.0.0", "started", "start"), let s1 = field("default.b-job.1.1.0", "started", "start") else { return false }
            started = max(s0, s1)
            return true
        }
        guard ok, let s = started, let gone = field("default.a-borrow.1.0.0", "exited", "end") else { return nil }
        return (s - t0, gone - t0)
    }

    static func killReplicas(_ state: String) {
        let dir = state + "/replicas"
        for n in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where n.hasSuffix(".rec") {
            guard let d = FileManager.default.contents(atPath: dir + "/" + n) else { continue }
            for f in String(decoding: d, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                if f.hasPrefix("pid="), let p = Int32(f.dropFirst(4)), p > 1 { kill(-p, SIGKILL) }
                if f.hasPrefix("shim="), let p = Int32(f.dropFirst(5)), p > 1 { kill(p, SIGKILL) }
            }
        }
    }
}
