import Synchronization

/// A monotonically increasing count.
public final class Counter: Sendable {
    let v = Atomic<Int>(0)
    public func inc(_ by: Int = 1) { v.add(by, ordering: .relaxed) }
    public var value: Int { v.load(ordering: .relaxed) }
}

/// A value that goes up and down.
public final class Gauge: Sendable {
    let bits = Atomic<UInt64>(0)
    public func set(_ x: Double) { bits.store(x.bitPattern, ordering: .relaxed) }
    public var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }
}

/// Observations in fixed buckets (seconds), with sum and count.
public final class Histogram: Sendable {
    struct State { var buckets: [Int]; var sum = 0.0; var count = 0 }
    let state = Mutex(State(buckets: Array(repeating: 0, count: Metrics.bounds.count)))
    public func observe(_ v: Double) {
        state.withLock { s in
            for i in Metrics.bounds.indices where v <= Metrics.bounds[i] { s.buckets[i] += 1 }
            s.sum += v; s.count += 1
        }
    }
    public var count: Int { state.withLock { $0.count } }
}

/// A registry of counters, gauges and histograms named like controller-runtime's and Kueue's,
/// rendered in the Prometheus text format. Look a series up once and keep the handle: the
/// handles are lock-free (histograms take a per-series lock), the lookup is not.
public final class Metrics: Sendable {
    struct Series: Hashable { var name: String; var labels: [String] }
    struct State {
        var counters: [Series: Counter] = [:]
        var gauges: [Series: Gauge] = [:]
        var histograms: [Series: Histogram] = [:]
    }
    public static let bounds: [Double] = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800]
    let state = Mutex(State())
    public init() {}

    static func series(_ name: String, _ labels: [String: String]) -> Series {
        // `labels[$0]!` cannot fail: the keys come from the map itself.
        Series(name: name, labels: labels.keys.sorted().map { "\($0)=\"\(escape(labels[$0]!))\"" })
    }

    /// A label value in the text format: backslash, double quote and newline escaped.
    static func escape(_ v: String) -> String {
        guard v.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return v }
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
    public func counter(_ name: String, _ labels: [String: String] = [:]) -> Counter {
        let s = Metrics.series(name, labels)
        return state.withLock { st in
            if let c = st.counters[s] { return c }
            let c = Counter(); st.counters[s] = c; return c
        }
    }
    public func gauge(_ name: String, _ labels: [String: String] = [:]) -> Gauge {
        let s = Metrics.series(name, labels)
        return state.withLock { st in
            if let g = st.gauges[s] { return g }
            let g = Gauge(); st.gauges[s] = g; return g
        }
    }
    public func histogram(_ name: String, _ labels: [String: String] = [:]) -> Histogram {
        let s = Metrics.series(name, labels)
        return state.withLock { st in
            if let h = st.histograms[s] { return h }
            let h = Histogram(); st.histograms[s] = h; return h
        }
    }

    /// Prometheus text exposition.
    public func render() -> String {
        let st = state.withLock { $0 }
        var out = ""
        func lbl(_ l: [String], extra: String? = nil) -> String {
            let all = l + (extra.map { [$0] } ?? [])
            return all.isEmpty ? "" : "{" + all.joined(separator: ",") + "}"
        }
        func sorted<T>(_ d: [Series: T], _ name: String) -> [(Series, T)] {
            d.filter { $0.key.name == name }.map { ($0.key, $0.value) }.sorted { $0.0.labels.joined() < $1.0.labels.joined() }
        }
        for name in Set(st.counters.keys.map(\.name)).sorted() {
            out += "# TYPE \(name) counter\n"
            for (s, c) in sorted(st.counters, name) { out += "\(name)\(lbl(s.labels)) \(c.value)\n" }
        }
        for name in Set(st.gauges.keys.map(\.name)).sorted() {
            out += "# TYPE \(name) gauge\n"
            for (s, g) in sorted(st.gauges, name) { out += "\(name)\(lbl(s.labels)) \(fmt(g.value))\n" }
        }
        for name in Set(st.histograms.keys.map(\.name)).sorted() {
            out += "# TYPE \(name) histogram\n"
            for (s, h) in sorted(st.histograms, name) {
                let hs = h.state.withLock { $0 }
                for (i, b) in Metrics.bounds.enumerated() { out += "\(name)_bucket\(lbl(s.labels, extra: "le=\"\(fmt(b))\"")) \(hs.buckets[i])\n" }
                out += "\(name)_bucket\(lbl(s.labels, extra: "le=\"+Inf\"")) \(hs.count)\n"
                out += "\(name)_sum\(lbl(s.labels)) \(fmt(hs.sum))\n\(name)_count\(lbl(s.labels)) \(hs.count)\n"
            }
        }
        return out
    }
    private func fmt(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
}
