import GantryAPI

/// Metric query parameters (seed 001 / 002): start, end (ISO 8601 or seconds since the epoch;
/// default the last hour), step (seconds) or numberOfSamples (default 60 samples).
///
/// Numbers above 1e11 are read as milliseconds (seed 001's training metrics use them).
/// `step` wins over `numberOfSamples`; numberOfSamples is 1...1000 (0: the default);
/// start must be before end, and a range of more than 11,000 steps is refused. `metric`,
/// `metricType`, `gpu` and `rank` are accepted and left to the handler. Anything else,
/// or a bad value: 400 naming the parameter.
public struct MetricQuery: Sendable, Equatable {
    public var start: Double
    public var end: Double
    public var step: Double
    public init(start: Double, end: Double, step: Double) { self.start = start; self.end = end; self.step = step }

    public static let defaultSamples = 60
    public static let maxSteps = 11_000
    public static let handlerParameters = ["metric", "metricType", "gpu", "rank"]

    public static func parse(_ query: [(String, String)], now: Double) throws(APIError) -> MetricQuery {
        var start: Double?, end: Double?, step: Double?, samples: Int?
        for (name, value) in query {
            switch name {
            case "start", "end":
                guard let t = time(value) else {
                    throw APIError.badRequest("\(name): expected an ISO 8601 time (2021-01-01T00:00:00Z) or seconds since the epoch, got \"\(value.prefix(40))\"", field: name)
                }
                if name == "start" { start = t } else { end = t }
            case "step":
                guard let s = Double(value), s.isFinite, s > 0, s <= 366 * 86400 else {
                    throw APIError.badRequest("step: expected a positive number of seconds (at most a year), got \"\(value.prefix(40))\"", field: name)
                }
                step = s
            case "numberOfSamples", "samples":
                guard let n = Int(value), n >= 0, n <= 1000 else {
                    throw APIError.badRequest("\(name): expected a whole number from 0 to 1000, got \"\(value.prefix(40))\"", field: name)
                }
                samples = n
            case "": continue
            default:
                if handlerParameters.contains(name) { continue }
                throw APIError.badRequest("unknown query parameter \"\(name.prefix(60))\"; accepted: start, end, step, numberOfSamples, \(handlerParameters.joined(separator: ", "))", field: String(name.prefix(60)))
            }
        }
        let safeNow = now.isFinite ? now : 0
        let e = end ?? safeNow
        let s = start ?? e - 3600
        guard s < e else { throw APIError.badRequest("start must be before end", field: start != nil ? "start" : "end") }
        let range = e - s
        let st = step ?? range / Double(samples.flatMap { $0 == 0 ? nil : $0 } ?? defaultSamples)
        guard st > 0, range / st <= Double(maxSteps) else {
            throw APIError.badRequest("step \(st) gives more than \(maxSteps) samples over \(range) seconds; use a larger step", field: step != nil ? "step" : "numberOfSamples")
        }
        return MetricQuery(start: s, end: e, step: st)
    }

    static func time(_ v: String) -> Double? {
        if let d = Double(v), d.isFinite {
            return d > 1e11 ? d / 1000 : d
        }
        return Timestamp(rfc3339: v).map { Double($0.seconds) }
    }

    /// Averages samples per step bucket [start + k*step, start + (k+1)*step); empty buckets omitted.
    /// Samples outside [start, end] and non-finite values are dropped; each output sample is
    /// stamped with its bucket's start. Series keep their order (and stay when empty).
    public func aggregate(_ series: [MetricSeries]) -> [MetricSeries] {
        guard step > 0, step.isFinite, start.isFinite, end.isFinite else { return series.map { MetricSeries(name: $0.name, samples: []) } }
        return series.map { s in
            var sums: [Int: (Double, Int)] = [:]
            for p in s.samples where p.ts >= start && p.ts <= end && p.value.isFinite && p.ts.isFinite {
                let x = ((p.ts - start) / step).rounded(.down)
                guard x >= 0, x < 1e15 else { continue }
                let k = Int(x)
                let e = sums[k] ?? (0, 0)
                sums[k] = (e.0 + p.value, e.1 + 1)
            }
            let samples = sums.keys.sorted().map { k in
                let e = sums[k] ?? (0, 1)
                return MetricSeries.Sample(ts: start + Double(k) * step, value: e.0 / Double(max(e.1, 1)))
            }
            return MetricSeries(name: s.name, samples: samples)
        }
    }

    /// The metrics response: {"workload":"ns/name","start":..,"end":..,"step":..,"series":
    /// [{"metric":"gpu_utilization_percent","gpu":0,"rank":null,"samples":[[ts,value],...]}]}
    /// with times in seconds since the epoch; series sorted by metric, gpu, rank. Names that
    /// are not `<ns>/<workload>/<metric>[{gpu=N}|{rank=N}]` are listed by their whole name.
    public func response(workload: String, series: [MetricSeries]) -> Value {
        let parsed = series.map { s in (MetricSeriesName(parsing: s.name) ?? MetricSeriesName(metric: s.name, gpu: nil, rank: nil), s) }
        let sorted = parsed.sorted { a, b in
            if a.0.metric != b.0.metric { return a.0.metric < b.0.metric }
            if a.0.gpu != b.0.gpu { return (a.0.gpu ?? -1) < (b.0.gpu ?? -1) }
            return (a.0.rank ?? -1) < (b.0.rank ?? -1)
        }
        return .object([
            .init("workload", .string(workload)), .init("start", MetricQuery.number(start)), .init("end", MetricQuery.number(end)),
            .init("step", MetricQuery.number(step)),
            .init("series", .array(sorted.map { n, s in
                .object([.init("metric", .string(n.metric)), .init("gpu", n.gpu.map { .int(Int64($0)) } ?? .null),
                         .init("rank", n.rank.map { .int(Int64($0)) } ?? .null),
                         .init("samples", .array(s.samples.map { .array([MetricQuery.number($0.ts), MetricQuery.number($0.value)]) }))])
            })),
        ])
    }

    /// A whole number as an int, else a double (non-finite: null).
    static func number(_ d: Double) -> Value {
        guard d.isFinite else { return .null }
        if d == d.rounded(), abs(d) < 9e15 { return .int(Int64(d)) }
        return .double(d)
    }
}

/// A metric series name split: `<ns>/<workload>/<metric>{gpu=N}` or `{rank=N}` (or neither).
public struct MetricSeriesName: Sendable, Equatable {
    public var metric: String
    public var gpu: Int?
    public var rank: Int?
    public var namespace = ""
    public var workload = ""
    public init(metric: String, gpu: Int?, rank: Int?) { self.metric = metric; self.gpu = gpu; self.rank = rank }

    /// nil when the name does not have three `/`-separated parts or its label is malformed.
    public init?(parsing name: String) {
        let parts = name.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        var metric = parts[2]
        var gpu: Int?, rank: Int?
        if let open = metric.firstIndex(of: "{") {
            guard metric.hasSuffix("}") else { return nil }
            let label = metric[metric.index(after: open)..<metric.index(before: metric.endIndex)]
            let kv = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, let n = Int(kv[1]), n >= 0 else { return nil }
            switch kv[0] {
            case "gpu": gpu = n
            case "rank": rank = n
            default: return nil
            }
            metric = metric[..<open]
        }
        guard !metric.isEmpty else { return nil }
        self.init(metric: String(metric), gpu: gpu, rank: rank)
        namespace = String(parts[0]); workload = String(parts[1])
    }
}
