import Foundation
import GantryAPI
import GantryShim
import ControllerRuntime
import StateStore

/// Time series of running workloads, stored in the state store's `metrics` table:
/// training metrics that replicas print as `gantry.metric name=value ...` (their supervisor
/// copies those lines to `rank-R.metrics`), and GPU utilisation, memory and power sampled
/// with `nvidia-smi` or `amd-smi` for the GPUs each workload holds. A series is named
/// `NS/NAME/METRIC{labels}`.
public final class RunMetrics: @unchecked Sendable {
    let admission: Admission
    let runtime: ProcessRuntime
    let store: (@Sendable (String, [SQLValue]) -> Void)
    var offsets: [String: Int] = [:]
    let gpuTool: String?

    public init(admission: Admission, runtime: ProcessRuntime, store: @escaping @Sendable (String, [SQLValue]) -> Void) {
        self.admission = admission; self.runtime = runtime; self.store = store
        gpuTool = Spawn.which("nvidia-smi") ?? Spawn.which("amd-smi")
    }

    static let insert = "INSERT OR IGNORE INTO metrics(series, ts, value) VALUES(?,?,?)"

    /// Reads what replicas printed since the last call.
    public func collectTraining() {
        var listed = Set<String>()
        // Ended replicas come once more for their last lines; their offsets go after that.
        defer { offsets = offsets.filter { listed.contains($0.key) } }
        for (key, rank, _) in admission.activeReplicas(takeEnded: true) {
            let path = runtime.metricsPath(key, rank: rank)
            listed.insert(path)
            let from = offsets[path] ?? 0
            guard let (text, end) = RunMetrics.readFrom(path, from) else { continue }
            offsets[path] = end
            for s in RunMetrics.parseTraining(text, key: key, rank: rank) { store(RunMetrics.insert, [.text(s.series), .double(s.ts), .double(s.value)]) }
        }
    }

    /// `TS name=value name=value` lines (complete lines only) -> samples.
    public static func parseTraining(_ text: String, key: ObjectKey, rank: Int) -> [(series: String, ts: Double, value: Double)] {
        var out: [(String, Double, Double)] = []
        let complete = text.lastIndex(of: "\n").map { text[...$0] } ?? ""
        for line in complete.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 2, let ts = Double(f[0]) else { continue }
            for kv in f.dropFirst() {
                guard let eq = kv.firstIndex(of: "="), let v = Double(kv[kv.index(after: eq)...]), v.isFinite else { continue }
                let name = kv[..<eq]
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" || $0 == "/" }) else { continue }
                out.append(("\(key.namespace)/\(key.name)/\(name){rank=\(rank)}", ts, v))
            }
        }
        return out
    }

    /// New complete lines of a file from `offset`: the text and the offset after it.
    static func readFrom(_ path: String, _ offset: Int) -> (String, Int)? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        guard let size = try? h.seekToEnd(), Int(size) > offset else { return nil }
        try? h.seek(toOffset: UInt64(offset))
        guard let data = try? h.read(upToCount: min(Int(size) - offset, 4 << 20)), let nl = data.lastIndex(of: 10) else { return nil }
        let used = data[data.startIndex...nl]
        return (String(decoding: used, as: UTF8.self), offset + used.count)
    }

    /// Samples every GPU once and files each sample under the workloads holding that GPU.
    public func sampleGPUs() {
        guard let tool = gpuTool else { return }
        let held = admission.activeReplicas()
        guard !held.isEmpty else { return }
        let out: String?
        if tool.hasSuffix("nvidia-smi") {
            out = Spawn.capture([tool, "--query-gpu=index,utilization.gpu,memory.used,power.draw", "--format=csv,noheader,nounits"], timeout: 10)
        } else {
            out = Spawn.capture([tool, "metric", "--usage", "--mem-usage", "--power", "--csv"], timeout: 10)
        }
        guard let out else { return }
        let samples = tool.hasSuffix("nvidia-smi") ? RunMetrics.parseNvidia(out) : RunMetrics.parseAMD(out)
        let ts = wallSeconds()
        for (key, _, gpus) in held {
            for g in gpus {
                guard let s = samples[g] else { continue }
                for (name, v) in [("gpu_utilization_percent", s.util), ("gpu_memory_used_mib", s.mem), ("gpu_power_watts", s.power)] {
                    guard let v else { continue }
                    store(RunMetrics.insert, [.text("\(key.namespace)/\(key.name)/\(name){gpu=\(g)}"), .double(ts), .double(v)])
                }
            }
        }
    }

    public struct GPUSample: Equatable { public var util: Double?; public var mem: Double?; public var power: Double? }

    /// `index, utilization.gpu, memory.used, power.draw` CSV rows (`[N/A]` allowed).
    public static func parseNvidia(_ text: String) -> [Int: GPUSample] {
        var out: [Int: GPUSample] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count >= 4, let i = Int(f[0]) else { continue }
            out[i] = GPUSample(util: Double(f[1]), mem: Double(f[2]), power: Double(f[3]))
        }
        return out
    }

    /// `amd-smi metric --csv` rows: a header naming the columns, then one row per GPU.
    public static func parseAMD(_ text: String) -> [Int: GPUSample] {
        let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }
        guard let header = lines.first(where: { $0.contains("gpu") }) else { return [:] }
        func col(_ names: [String]) -> Int? { header.firstIndex { h in names.contains(h) } }
        guard let gi = col(["gpu"]) else { return [:] }
        let ui = col(["gfx_activity", "gfx_usage", "usage"]), mi = col(["used_vram", "vram_used", "mem_usage"]), pi = col(["socket_power", "power", "average_socket_power"])
        var out: [Int: GPUSample] = [:]
        for row in lines where row != header {
            guard row.count == header.count, let i = Int(row[gi]) else { continue }
            func num(_ c: Int?) -> Double? { c.flatMap { Double(row[$0].split(separator: " ").first ?? "") } }
            out[i] = GPUSample(util: num(ui), mem: num(mi), power: num(pi))
        }
        return out
    }
}

extension Admission {
    /// Replicas that run now: workload, rank, GPU indices; with `takeEnded` also those of
    /// runs that ended since the last such call (their last output is still to be read).
    public func activeReplicas(takeEnded: Bool = false) -> [(ObjectKey, Int, [Int])] {
        locked {
            var out: [(ObjectKey, Int, [Int])] = []
            for (k, r) in runs { for rep in r.reps { out.append((k, rep.rank, rep.gpus)) } }
            if takeEnded { out += endedRuns.map { ($0.0, $0.1, []) }; endedRuns = [] }
            return out
        }
    }
}
