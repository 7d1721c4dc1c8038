import Synchronization

/// Counters, gauges and histograms named like controller-runtime's and Kueue's, rendered in
/// the Prometheus text format. Label sets are small maps; order of labels is by name.
public final class Metrics: Sendable {
    struct Series: Hashable { var name: String; var labels: [String] }
    struct Histogram { var buckets: [Int]; var sum: Double = 0; var count = 0 }
    struct State {
        var counters: [Series: Double] = [:]
        var gauges: [Series: Double] = [:]
        var histograms: [Series: Histogram] = [:]
    }
    public static let bounds: [Double] = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800]
    let state = Mutex(State())
    public init() {}

    static func series(_ name: String, _ labels: [String: String]) -> Series {
        Series(name: name, labels: labels.keys.sorted().map { "\($0)=\"\(labels[$0]!)\"" })
    }
    public func inc(_ name: String, _ labels: [String: String] = [:], by v: Double = 1) {
        let s = Metrics.series(name, labels)
        state.withLock { $0.counters[s, default: 0] += v }
    }
    public func set(_ name: String, _ labels: [String: String] = [:], _ v: Double) {
        let s = Metrics.series(name, labels)
        state.withLock { $0.gauges[s] = v }
    }
    public func observe(_ name: String, _ labels: [String: String] = [:], _ v: Double) {
        let s = Metrics.series(name, labels)
        state.withLock { st in
            var h = st.histograms[s] ?? Histogram(buckets: Array(repeating: 0, count: Metrics.bounds.count))
            for (i, b) in Metrics.bounds.enumerated() where v <= b { h.buckets[i] += 1 }
            h.sum += v; h.count += 1
            st.histograms[s] = h
        }
    }
    public func counter(_ name: String, _ labels: [String: String] = [:]) -> Double {
        state.withLock { $0.counters[Metrics.series(name, labels)] ?? 0 }
    }
    public func gauge(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        state.withLock { $0.gauges[Metrics.series(name, labels)] }
    }
    public func histogramCount(_ name: String, _ labels: [String: String] = [:]) -> Int {
        state.withLock { $0.histograms[Metrics.series(name, labels)]?.count ?? 0 }
    }

    /// Prometheus text exposition.
    public func render() -> String {
        let st = state.withLock { $0 }
        var out = ""
        func lbl(_ l: [String], extra: String? = nil) -> String {
            let all = l + (extra.map { [$0] } ?? [])
            return all.isEmpty ? "" : "{" + all.joined(separator: ",") + "}"
        }
        for (name, kind) in [("counter", st.counters), ("gauge", st.gauges)].flatMap({ t in Set(t.1.keys.map(\.name)).sorted().map { ($0, t) } }) {
            out += "# TYPE \(name) \(kind.0)\n"
            for (s, v) in kind.1.filter({ $0.key.name == name }).sorted(by: { $0.key.labels.joined() < $1.key.labels.joined() }) {
                out += "\(name)\(lbl(s.labels)) \(fmt(v))\n"
            }
        }
        for name in Set(st.histograms.keys.map(\.name)).sorted() {
            out += "# TYPE \(name) histogram\n"
            for (s, h) in st.histograms.filter({ $0.key.name == name }).sorted(by: { $0.key.labels.joined() < $1.key.labels.joined() }) {
                for (i, b) in Metrics.bounds.enumerated() { out += "\(name)_bucket\(lbl(s.labels, extra: "le=\"\(fmt(b))\"")) \(h.buckets[i])\n" }
                out += "\(name)_bucket\(lbl(s.labels, extra: "le=\"+Inf\"")) \(h.count)\n"
                out += "\(name)_sum\(lbl(s.labels)) \(fmt(h.sum))\n\(name)_count\(lbl(s.labels)) \(h.count)\n"
            }
        }
        return out
    }
    private func fmt(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
}
