import Foundation
import GantryAPI
import ControllerRuntime

/// `gantry top [workloads] [NAME] [-n NS | -A]`: GPU utilisation per running workload from
/// the newest samples of its GPU series (mean utilisation, summed memory and power over its
/// GPUs), read from the state directory or, with `--server`, from the metrics routes.
struct TopCommand {
    var name: String?
    var namespace: String?
    var allNamespaces = false

    /// Samples older than this before a series' newest one belong to an earlier run.
    static let staleness = 300.0

    init(_ args: inout Args) throws {
        var pos = args.positionals
        if let first = pos.first, Kind(cliName: first) == .workload { pos.removeFirst() }
        guard pos.count <= 1 else { throw UsageError("top takes at most one workload name: gantry top [NAME] [-n NAMESPACE | -A]") }
        name = pos.first
        namespace = args.string("namespace")
        allNamespaces = args.bool("all-namespaces")
    }

    /// One workload's figures from its newest samples (nil when it has no GPU samples).
    struct Usage: Equatable {
        var gpus: Int
        var utilization: Double
        var memoryMiB: Double?
        var powerWatts: Double?
        var newest: Double
    }

    /// Folds `latestMetrics` of one workload (series `NS/NAME/metric{gpu=N}`) into its usage:
    /// only GPU series, only those sampled within `staleness` of the newest.
    static func usage(_ series: [(series: String, ts: Double, value: Double)]) -> Usage? {
        func metric(_ s: String) -> String? {
            guard let slash = s.lastIndex(of: "/"), let brace = s.firstIndex(of: "{"), slash < brace, s.contains("{gpu=") else { return nil }
            return String(s[s.index(after: slash)..<brace])
        }
        let gpuSeries = series.filter { metric($0.series) != nil && $0.value.isFinite && $0.ts.isFinite }
        guard let newest = gpuSeries.map(\.ts).max() else { return nil }
        let fresh = gpuSeries.filter { $0.ts >= newest - staleness }
        let util = fresh.filter { metric($0.series) == "gpu_utilization_percent" }.map(\.value)
        guard !util.isEmpty else { return nil }
        func sum(_ m: String) -> Double? {
            let v = fresh.filter { metric($0.series) == m }.map(\.value)
            return v.isEmpty ? nil : v.reduce(0, +)
        }
        return Usage(gpus: util.count, utilization: util.reduce(0, +) / Double(util.count),
                     memoryMiB: sum("gpu_memory_used_mib"), powerWatts: sum("gpu_power_watts"), newest: newest)
    }

    func run(_ backend: Backend) throws -> Int32 {
        let reader = try backend.reader()
        let ns: String? = allNamespaces ? nil : (namespace ?? "default")
        let workloads = try reader.objects(kind: .workload, namespace: ns, name: name).map(StoredObject.init)
        if let name, workloads.isEmpty {
            errOut("gantry: workload \"\(name)\" not found in namespace \(ns ?? "default")")
            return 1
        }
        let shown = workloads.filter { name != nil || $0.phase == "Running" }
        if shown.isEmpty {
            errOut(allNamespaces ? "No running workloads." : "No running workloads in \(ns ?? "default") namespace.")
            return 0
        }
        var headers = ["NAME", "PHASE", "GPUS", "GPU-UTIL", "GPU-MEM", "POWER", "SAMPLED"]
        if allNamespaces { headers.insert("NAMESPACE", at: 0) }
        var t = Table(headers)
        let now = Timestamp(seconds: Int64(SystemClock().now()))
        var sampled = 0
        for w in shown {
            let u = TopCommand.usage(try reader.latestMetrics(prefix: "\(w.key.namespace)/\(w.key.name)/"))
            if u != nil { sampled += 1 }
            var row = [w.key.name, w.phase.isEmpty ? "-" : w.phase, String(w.totalGPUs),
                       u.map { String(format: "%.0f%%", $0.utilization) } ?? "-",
                       u?.memoryMiB.map { String(format: "%.0fMi", $0) } ?? "-",
                       u?.powerWatts.map { String(format: "%.0fW", $0) } ?? "-",
                       u.map { formatAge(from: Timestamp(secondsSince1970: $0.newest), now: now) + " ago" } ?? "-"]
            if allNamespaces { row.insert(w.key.namespace, at: 0) }
            t.add(row)
        }
        out(t.render())
        if sampled == 0 {
            errOut("No GPU samples yet: the daemon samples GPUs with nvidia-smi or amd-smi every --metrics-interval (default 15s) while replicas hold them.")
        }
        return 0
    }
}
