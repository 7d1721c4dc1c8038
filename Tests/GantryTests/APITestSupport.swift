import Testing
import Foundation
import GantryAPI
@testable import GantryServer
@testable import HTTPServer

/// Fixtures for the API tests: a MemoryBackend with a pool, nodes, queues, workloads in
/// three namespaces (one manifest-owned), events, a log and metrics; a tokens file; and a
/// router to call without sockets.
enum APIFixture {
    static let tokensText = """
    # token        user   role    namespaces      unix
    admin-token    alice  admin
    editor-token   bob    editor  team-a,team-b   bob
    viewer-token   carol  viewer
    teamb-token    dave   editor  team-b          dave
    nounix-token   erin   editor  *

    """

    static func tokens() throws -> TokenTable { try TokenTable.parse(tokensText, file: "tokens") }

    static let now: Double = 1_780_000_000

    static func decode(_ json: String, _ kind: Kind, _ ns: String = "") throws -> ManifestObject {
        try CreateRequest.decode(Array(json.utf8), kind: kind, namespace: ns)
    }

    static func workload(_ ns: String, _ name: String, queue: String = "research", gpus: Int = 1, replicas: Int = 1, labels: String = "{}") throws -> ManifestObject {
        var o = try decode("""
        {"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"\(name)","namespace":"\(ns)","labels":\(labels)},
         "spec":{"type":"PyTorchJob","queue":"\(queue)","image":"img:1","command":"python train.py","replicas":\(replicas),"resources":{"gpu":\(gpus),"cpu":2}}}
        """, .workload, ns)
        o.meta.uid = "uid-\(ns)-\(name)"
        o.meta.creationTimestamp = Timestamp(secondsSince1970: now - 3600)
        return o
    }

    static func backend(mode: String = "directory") throws -> MemoryBackend {
        let pool = try decode(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"ResourcePool","metadata":{"name":"pool-a"},"spec":{"description":"A100s"}}"#, .resourcePool)
        let node1 = try decode(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Node","metadata":{"name":"node-1"},"spec":{"resourcePool":"pool-a","capacity":{"gpu":8,"cpu":64}}}"#, .node)
        let node2 = try decode(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Node","metadata":{"name":"node-2"},"spec":{"resourcePool":"pool-a","capacity":{"gpu":8,"cpu":64}}}"#, .node)
        let queue = try decode(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"research"},"spec":{"deserved":{"gpu":16},"resourcePool":"pool-a"}}"#, .queue)
        var qs = QueueStatus(); qs.allocated = ResourceList(["gpu": Quantity(milli: 4000)]); qs.pending = 2; qs.admitted = 1; qs.running = 1

        // Running: 2 replicas on node-1 GPUs 0,1 and 2,3.
        let train = try workload("team-a", "train", gpus: 2, replicas: 2, labels: #"{"app":"llm"}"#)
        var ts = WorkloadStatus()
        ts.phase = .running; ts.admissionQueue = "research"; ts.message = "all replicas running"
        ts.creationTime = train.meta.creationTimestamp; ts.startTime = Timestamp(secondsSince1970: now - 3000)
        ts.admission = [ReplicaAssignment(rank: 0, node: "node-1", gpus: [0, 1]), ReplicaAssignment(rank: 1, node: "node-1", gpus: [2, 3])]
        ts.replicas = [
            ReplicaStatus(name: "train-master-0", rank: 0, node: "node-1", phase: "Running", gpus: [0, 1], pid: 100, startTime: ts.startTime),
            ReplicaStatus(name: "train-worker-1", rank: 1, node: "node-1", phase: "Running", gpus: [2, 3], pid: 101, startTime: ts.startTime, restarts: 1),
        ]
        // Pending, in the queue.
        func pending(_ ns: String, _ name: String, _ pos: Int, labels: String = "{}") throws -> APIObject {
            let o = try workload(ns, name, gpus: 8, labels: labels)
            var s = WorkloadStatus(); s.queuePosition = pos; s.message = "waiting for quota: 8 gpu"; s.creationTime = o.meta.creationTimestamp
            return APIObject(object: o, status: .workload(s), owner: .api)
        }
        var manifestOwned = try workload("team-a", "from-file")
        manifestOwned.source = SourceRef(file: "jobs/from-file.yaml", line: 3, index: 0)

        let objects: [APIObject] = [
            APIObject(object: pool, status: nil, owner: .manifest(file: "pools.yaml")),
            APIObject(object: node1, status: nil, owner: .system),
            APIObject(object: node2, status: nil, owner: .system),
            APIObject(object: queue, status: .queue(qs), owner: .api),
            APIObject(object: train, status: .workload(ts), owner: .api),
            try pending("team-a", "wait-2", 2, labels: #"{"app":"llm"}"#),
            try pending("team-b", "wait-1", 1),
            try pending("team-c", "other", 3),
            APIObject(object: manifestOwned, status: nil, owner: .manifest(file: "jobs/from-file.yaml")),
        ]
        let events = [
            EventRecord(type: "Normal", reason: "Admitted", message: "admitted to queue research", kind: "Workload", namespace: "team-a", name: "train", count: 1, firstTimestamp: now - 3100, lastTimestamp: now - 3100),
            EventRecord(type: "Normal", reason: "Started", message: "replica train-master-0 started on node-1", kind: "Workload", namespace: "team-a", name: "train", count: 1, firstTimestamp: now - 3000, lastTimestamp: now - 3000),
            EventRecord(type: "Warning", reason: "Restarted", message: "replica train-worker-1 exited 1; restarting", kind: "Workload", namespace: "team-a", name: "train", count: 1, firstTimestamp: now - 2000, lastTimestamp: now - 2000),
            EventRecord(type: "Normal", reason: "Other", message: "something about train-worker-10", kind: "Workload", namespace: "team-a", name: "train", count: 2, firstTimestamp: now - 1000, lastTimestamp: now - 900),
        ]
        var metrics: [MetricSeries] = []
        for g in 0..<4 {
            metrics.append(MetricSeries(name: "team-a/train/gpu_utilization_percent{gpu=\(g)}",
                                        samples: (0..<60).map { MetricSeries.Sample(ts: now - 3600 + Double($0) * 60, value: Double(50 + g)) }))
        }
        metrics.append(MetricSeries(name: "team-a/train/loss{rank=0}", samples: (0..<10).map { MetricSeries.Sample(ts: now - 600 + Double($0) * 60, value: 2.0 - Double($0) * 0.1) }))
        let logs: [MemoryBackend.LogKey: String] = [
            MemoryBackend.LogKey(train.key, rank: 0): (1...10).map { "line \($0)\n" }.joined(),
        ]
        return MemoryBackend(objects: objects, events: events, logs: logs, metrics: metrics, mode: mode, clock: { now })
    }

    static func router(_ backend: MemoryBackend, tokens: TokenTable?) -> Router {
        var r = Router()
        APIServer(backend: backend, tokens: tokens).register(into: &r)
        return r
    }

    static func router(_ backend: MemoryBackend) throws -> Router { router(backend, tokens: try tokens()) }
}

/// A response as a test reads it.
struct APIResult {
    var response: HTTPResponse
    var status: Int { response.status }
    var bytes: [UInt8] { if case .bytes(let b) = response.body { return b }; return [] }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    var json: Value? { try? JSON.parse(text) }
    var errorCode: String? { json?["error"]?["code"]?.stringValue }
    var errorMessage: String { json?["error"]?["message"]?.stringValue ?? "" }
}

/// Calls `router` as the server would: `target` may carry a query (`?a=b&c`).
func apiCall(_ router: Router, _ method: String, _ target: String, token: String? = nil, body: String? = nil,
             contentType: String? = nil) -> APIResult {
    var path = target, query: [(String, String)] = []
    if let q = target.firstIndex(of: "?") {
        path = String(target[..<q])
        for part in target[target.index(after: q)...].split(separator: "&") {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            query.append((percentDecode(kv[0], plusAsSpace: true), kv.count > 1 ? percentDecode(kv[1], plusAsSpace: true) : ""))
        }
    }
    var headers: [String: String] = [:]
    if let token { headers["authorization"] = "Bearer \(token)" }
    if let contentType { headers["content-type"] = contentType }
    let req = HTTPRequest(method: method, path: path, query: query, headers: headers, body: Array((body ?? "").utf8), remoteAddress: "127.0.0.1:1")
    return APIResult(response: router.handle(req))
}

/// A JSON Schema checker for the subset the OpenAPI document uses: $ref (to
/// #/components/schemas), type (a name or an array of names), properties, required, items,
/// enum, additionalProperties (bool or schema), minimum. Returns the problems found.
struct SchemaChecker {
    let document: Value

    func check(_ v: Value, _ schema: Value, at path: String = "$") -> [String] {
        if let r = schema["$ref"]?.stringValue {
            let prefix = "#/components/schemas/"
            guard r.hasPrefix(prefix), let target = document["components"]?["schemas"]?[String(r.dropFirst(prefix.count))] else {
                return ["\(path): unresolvable $ref \(r)"]
            }
            return check(v, target, at: path)
        }
        var problems: [String] = []
        if let t = schema["type"] {
            let types = t.arrayValue?.compactMap(\.stringValue) ?? [t.stringValue ?? ""]
            if !types.contains(where: { matches(v, $0) }) { return ["\(path): \(describe(v)) is not \(types.joined(separator: "|"))"] }
        }
        if let e = schema["enum"]?.arrayValue, !e.contains(v) { problems.append("\(path): \(JSON.encode(v)) not in enum") }
        if let min = schema["minimum"]?.intValue, let i = v.intValue, i < min { problems.append("\(path): \(i) < minimum \(min)") }
        if case .object(let members) = v {
            let props = schema["properties"]?.members ?? []
            for req in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where v[req] == nil {
                problems.append("\(path): missing required \(req)")
            }
            for m in members {
                if let p = props.first(where: { $0.key == m.key }) {
                    problems += check(m.value, p.value, at: "\(path).\(m.key)")
                } else if let extra = schema["additionalProperties"] {
                    if extra == .bool(false) { problems.append("\(path): unexpected property \(m.key)") } else if extra.members != nil { problems += check(m.value, extra, at: "\(path).\(m.key)") }
                }
            }
        }
        if case .array(let items) = v, let itemSchema = schema["items"] {
            for (i, item) in items.enumerated() { problems += check(item, itemSchema, at: "\(path)[\(i)]") }
        }
        return problems
    }

    func matches(_ v: Value, _ type: String) -> Bool {
        switch (type, v) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object), ("integer", .int): return true
        case ("integer", .double(let d)): return d == d.rounded()
        case ("number", .int), ("number", .double): return true
        default: return false
        }
    }

    func describe(_ v: Value) -> String { String(JSON.encode(v).prefix(80)) }
}
