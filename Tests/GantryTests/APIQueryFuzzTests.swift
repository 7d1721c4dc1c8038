import Testing
import GantryAPI
@testable import GantryServer

/// SplitMix64: a seeded generator, so a failure replays.
private struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite(.timeLimit(.minutes(1))) struct APIQueryFuzzTests {
    static let names = ["phase", "type", "queue", "namespace", "user", "name", "description", "labels", "since", "until", "startedAfter",
                        "completedBefore", "filterBy", "sortBy", "sortOrder", "offset", "limit", "continue", "fields", "deleted", "bogus", "", "order", "marker"]
    static let values = ["Running", "pending,Failed", "Job", "prod", "team-a", "alice", "a", "", ",", "app=llm", "app in (x", "2021-01-01",
                         "1970-01-01T00:05:00Z", "300", "-1", "0", "1", "1000", "1001", "gpus>=2", "name=@e,phase!=Running", "createdAt<=2021-01-01",
                         "x==y", "gpus>>2", "name", "createdAt", "gpus", "desc", "asc", "id,name", "true", "maybe", "djE6MjoxMjM", "%%%",
                         "\u{0}", "é", "phase==", "==", "priority>=high", "description==a,b,c", "startedAt!=0", "99999999999999999999999"]

    private static func randomFleet(_ rng: inout SeededRandom, count: Int) -> [APIObject] {
        let phases: [WorkloadPhase?] = [nil] + WorkloadPhase.allCases.map { $0 }
        return (0..<count).map { i in
            queryWorkload("w\(Int.random(in: 0..<count, using: &rng))-\(i)", ns: "ns\(Int.random(in: 0..<4, using: &rng))",
                          queue: ["a", "b", "c"][Int.random(in: 0..<3, using: &rng)], type: WorkloadType.allCases.randomElement(using: &rng) ?? .job,
                          priority: Int.random(in: -1...2, using: &rng), gpus: Int64.random(in: 0...8, using: &rng), replicas: Int.random(in: 1...4, using: &rng),
                          created: Int64.random(in: 0...50, using: &rng), phase: phases.randomElement(using: &rng) ?? nil,
                          started: Bool.random(using: &rng) ? Int64.random(in: 0...50, using: &rng) : nil,
                          user: ["", "alice", "bob"][Int.random(in: 0..<3, using: &rng)])
        }
    }

    /// Random query strings (garbage included) either parse or are a 400 naming a parameter;
    /// parsed queries page consistently.
    @Test func randomQueriesParseOrAre400() throws {
        var rng = SeededRandom(state: 0x5EED_0011)
        let fleet = Self.randomFleet(&rng, count: 120)
        var parsed = 0
        for _ in 0..<3000 {
            var q: [(String, String)] = []
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                let n = Self.names.randomElement(using: &rng) ?? ""
                var v = Self.values.randomElement(using: &rng) ?? ""
                if Int.random(in: 0..<6, using: &rng) == 0 {
                    v = String(decoding: (0..<Int.random(in: 0...12, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, as: UTF8.self)
                }
                q.append((n, v))
            }
            let query: WorkloadQuery
            do { query = try WorkloadQuery.parse(q) } catch {
                #expect(error.status == 400 && error.field != nil && !error.message.isEmpty, "\(q)")
                continue
            }
            parsed += 1
            let page = try query.apply(fleet)
            let all = query.matching(fleet)
            #expect(page.totalCount == all.count)
            #expect(page.items.count <= query.limit && page.items.count == max(0, min(query.limit, all.count - min(query.offset, all.count))))
            if let next = page.next {
                // The marker resumes exactly after this page.
                let resumed = try WorkloadQuery.parse(q.filter { $0.0 != "continue" && $0.0 != "marker" && $0.0 != "offset" } + [("continue", next)])
                #expect(resumed.offset == page.offset + page.items.count)
            }
            if let fields = query.fields, let first = page.items.first { _ = try ObjectView.fields(first, fields) }
        }
        #expect(parsed > 300)
    }

    /// The bounded-heap selection and the full sort give the same pages.
    @Test func partialSelectionAgreesWithFullSort() throws {
        var rng = SeededRandom(state: 42)
        let fleet = Self.randomFleet(&rng, count: 400)
        for by in WorkloadQuery.SortField.allCases where by != .default {
            for order in ["asc", "desc"] {
                let full = try WorkloadQuery.parse([("sortBy", by.rawValue), ("sortOrder", order), ("limit", "1000")]).apply(fleet).items
                #expect(full.count == 400)
                for (offset, limit) in [(0, 1), (0, 10), (7, 13), (50, 30), (390, 50)] {
                    let page = try WorkloadQuery.parse([("sortBy", by.rawValue), ("sortOrder", order), ("offset", "\(offset)"), ("limit", "\(limit)")]).apply(fleet)
                    #expect(page.items.map(\.key) == full[min(offset, 400)..<min(offset + limit, 400)].map(\.key), "\(by) \(order) \(offset) \(limit)")
                }
            }
        }
        // Full order by createdAt ascending, ties by namespace then name.
        let sorted = try WorkloadQuery.parse([("sortBy", "createdAt"), ("limit", "1000")]).apply(fleet).items
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            let ka = (a.object.meta.creationTimestamp.seconds, a.object.meta.namespace, a.object.meta.name)
            let kb = (b.object.meta.creationTimestamp.seconds, b.object.meta.namespace, b.object.meta.name)
            #expect(ka <= kb)
        }
    }

    /// Random bodies never trap: create, patch and clone succeed or answer 400 (409 for clone names).
    @Test func randomBodiesNeverTrap() {
        var rng = SeededRandom(state: 7)
        let fragments = [#"{"#, #"}"#, #"""#, #"name"#, #"":"#, #","#, #"spec"#, #"metadata"#, #"[1,"#, "]", "null", "-", "9e999", #"\u0000"#,
                         #"{"priority":"#, #"{"resource":{"gpu":"#, #""8""#, "apiVersion: gantry.dev/v1alpha1\n", "kind: Workload\n", "spec:\n  x: [",
                         "&a [*a, *a]", "---\n", "\t", ":", "env", "replicas", "true", "0", "{\"spec\":{\"replicas\":", "99999999999999999999"]
        let target = ManifestObject(meta: ObjectMeta(name: "j1", namespace: "team-a"), spec: .workload({ var s = WorkloadSpec(); s.command = "x"; return s }()),
                                    source: SourceRef(file: "f", line: 1, index: 0))
        for i in 0..<1500 {
            var body: [UInt8]
            if i % 3 == 0 {
                body = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                body = Array((0..<Int.random(in: 1...10, using: &rng)).map { _ in fragments.randomElement(using: &rng) ?? "" }.joined().utf8)
            }
            for op in 0..<3 {
                do {
                    switch op {
                    case 0: _ = try CreateRequest.decode(body, kind: .workload, namespace: "team-a")
                    case 1: _ = try ObjectPatch.apply(body, to: target)
                    default: _ = try CloneRequest.apply(body, to: target) { _ in false }
                    }
                } catch {
                    #expect(error.status == 400 || error.status == 409, "\(error)")
                }
            }
        }
    }

    @Test func randomSelectorsAndMetricQueriesNeverTrap() {
        var rng = SeededRandom(state: 99)
        let pieces = ["a", "=", "==", "!=", "!", " in ", " notin ", "(", ")", ",", "b", "x.y/z", "-", " ", "é"]
        for _ in 0..<2000 {
            let s = (0..<Int.random(in: 0...8, using: &rng)).map { _ in pieces.randomElement(using: &rng) ?? "" }.joined()
            do { _ = try LabelSelector.parse(s).matches(["a": "b"]) } catch { #expect(error.status == 400 && error.field == "labels") }
        }
        let names = ["start", "end", "step", "numberOfSamples", "x"], values = ["0", "-1", "1e308", "1e-300", "nan", "2021-01-01", "", "99999999999999999999", "1000"]
        for _ in 0..<2000 {
            let q = (0..<Int.random(in: 0...4, using: &rng)).map { _ in (names.randomElement(using: &rng) ?? "", values.randomElement(using: &rng) ?? "") }
            do {
                let m = try MetricQuery.parse(q, now: 1e9)
                #expect(m.start < m.end && m.step > 0 && (m.end - m.start) / m.step <= Double(MetricQuery.maxSteps))
                _ = m.aggregate([MetricSeries(name: "a/b/c", samples: [.init(ts: m.start, value: 1), .init(ts: m.end, value: 2)])])
            } catch { #expect(error.status == 400 && error.field != nil) }
        }
    }
}
