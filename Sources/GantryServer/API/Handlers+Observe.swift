import Foundation
import GantryAPI
import HTTPServer

extension APIServer {
    // MARK: - Logs

    func logs(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let o = try workload(ctx)
        let rank = try rank(ctx)
        let req = ctx.request
        var opts = LogOptions()
        opts.tail = try APIServer.intParameter(req, "tail", min: 0)
        opts.sinceSeconds = try APIServer.intParameter(req, "sinceSeconds", min: 0)
        opts.timestamps = try APIServer.boolParameter(req, "timestamps")
        opts.follow = try APIServer.boolParameter(req, "follow")
        opts.limitBytes = try APIServer.intParameter(req, "limitBytes", min: 1)
        let reader = try backend.log(o.key, rank: rank)
        if opts.follow {
            let options = opts
            return HTTPResponse.stream(contentType: "text/plain; charset=utf-8") { write in
                do throws(APIError) {
                    try reader.read(options) { chunk in write(chunk) }
                } catch {
                    _ = write(Array("\nerror: \(error.message)\n".utf8))
                }
            }
        }
        // Without follow the whole (bounded) answer is read at once.
        let cap = min(opts.limitBytes ?? APIServer.maxLogBytes, APIServer.maxLogBytes)
        opts.limitBytes = cap
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(options.requestTimeout.isFinite ? max(options.requestTimeout, 0) : 30)
        try reader.read(opts) { chunk in
            out.append(contentsOf: chunk.prefix(max(cap - out.count, 0)))
            return out.count < cap && Date() < deadline
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")], body: .bytes(out))
    }

    /// The most a log answer without follow carries.
    static let maxLogBytes = 32 << 20

    // MARK: - Events

    static func eventValue(_ e: EventRecord) -> Value {
        .object([
            .init("type", .string(e.type)), .init("reason", .string(e.reason)), .init("message", .string(e.message)),
            .init("kind", .string(e.kind)), .init("namespace", .string(e.namespace)), .init("name", .string(e.name)),
            .init("count", .int(Int64(e.count))),
            .init("firstTimestamp", .string(Timestamp(secondsSince1970: e.firstTimestamp).rfc3339)),
            .init("lastTimestamp", .string(Timestamp(secondsSince1970: e.lastTimestamp).rfc3339)),
        ])
    }

    /// Whether `message` names replica `rank` of workload `name`: `<name>-worker-<rank>`,
    /// `<name>-master-0` (rank 0), the replica's status name, or `rank N` as a whole number.
    static func names(_ message: String, workload name: String, rank: Int, replicaName: String?) -> Bool {
        func wholeNumber(after needle: String) -> Bool {
            var rest = Substring(message)
            while let r = rest.range(of: needle) {
                let after = rest[r.upperBound...]
                if after.first.map({ !$0.isNumber }) ?? true { return true }
                rest = after
            }
            return false
        }
        if wholeNumber(after: "\(name)-worker-\(rank)") { return true }
        if rank == 0 && wholeNumber(after: "\(name)-master-0") { return true }
        if let replicaName, !replicaName.isEmpty, wholeNumber(after: replicaName) { return true }
        return wholeNumber(after: "rank \(rank)")
    }

    func events(_ ctx: RequestContext, rank: Int?) throws(APIError) -> HTTPResponse {
        let o = try workload(ctx)
        let req = ctx.request
        let limit = try APIServer.intParameter(req, "limit", min: 1)
        var filter = EventFilter(kind: .workload, namespace: o.key.namespace, name: o.key.name,
                                 since: try APIServer.timeParameter(req, "since"), until: try APIServer.timeParameter(req, "until"))
        filter.limit = rank == nil ? limit : nil
        var items = try backend.events(filter)
        if let rank {
            let replicaName = o.status?.workload?.replicas.first { $0.rank == rank }?.name
            items = items.filter { APIServer.names($0.message, workload: o.key.name, rank: rank, replicaName: replicaName) }
            if let limit, items.count > limit { items = Array(items.suffix(limit)) }
        }
        return APIServer.json(.object([.init("items", .array(items.map(APIServer.eventValue)))]))
    }

    // MARK: - Metrics

    enum MetricKind { case gpu(rank: Int?), training }

    static let gpuMetrics: Set<String> = ["gpu_utilization_percent", "gpu_memory_used_mib", "gpu_power_watts"]

    func metrics(_ ctx: RequestContext, _ kind: MetricKind) throws(APIError) -> HTTPResponse {
        let o = try workload(ctx)
        let req = ctx.request
        let q = try MetricQuery.parse(req.query, now: backend.now())
        let metricNames = req.query("metric").map { $0.split(separator: ",").map(String.init) }
        let gpuFilter = try APIServer.intParameter(req, "gpu", min: 0)
        let rankFilter = try APIServer.intParameter(req, "rank", min: 0)
        let prefix = "\(o.key.namespace)/\(o.key.name)/"
        var gpusOfRank: Set<Int>?
        if case .gpu(let r?) = kind {
            let st = o.status?.workload
            let gpus = st?.replicas.first { $0.rank == r }?.gpus ?? st?.admission.first { $0.rank == r }?.gpus
            guard let gpus else { throw .notFound("workload \(o.key.qualifiedName) has no replica \(r) with GPUs") }
            gpusOfRank = Set(gpus)
        }
        let raw = try backend.metrics(prefix: prefix, start: q.start, end: q.end)
        let selected = raw.filter { s in
            guard let n = MetricSeriesName(parsing: s.name), n.namespace == o.key.namespace, n.workload == o.key.name else { return false }
            if let metricNames, !metricNames.contains(n.metric) { return false }
            switch kind {
            case .training:
                guard let r = n.rank else { return false }
                return rankFilter.map { $0 == r } ?? true
            case .gpu:
                guard APIServer.gpuMetrics.contains(n.metric), let g = n.gpu else { return false }
                if let gpuFilter, gpuFilter != g { return false }
                return gpusOfRank.map { $0.contains(g) } ?? true
            }
        }
        return APIServer.json(q.response(workload: o.key.qualifiedName, series: q.aggregate(selected)))
    }

    // MARK: - Queues

    static func adding(_ v: Value, _ key: String, _ x: Value) -> Value {
        var m = v.members ?? []
        m.removeAll { $0.key == key }
        m.append(.init(key, x))
        return .object(m)
    }

    func queueView(_ q: APIObject) throws(APIError) -> Value {
        let s = q.status?.queue ?? QueueStatus()
        let usage: Value = .object([
            .init("allocated", s.allocated.toValue()), .init("borrowed", s.borrowed.toValue()),
            .init("pending", .int(Int64(s.pending))), .init("admitted", .int(Int64(s.admitted))), .init("running", .int(Int64(s.running))),
        ])
        return APIServer.adding(ObjectView.object(q), "usage", usage)
    }

    func listQueues(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let w = try WatchRequest.parse(ctx.request, maxSeconds: options.watchMaxSeconds)
        if w.watch { return try watchKind(.queue, w) { [self] q in (try? queueView(q)) ?? ObjectView.object(q) } }
        let head = (try? backend.feedHead()) ?? nil
        var items: [Value] = []
        for q in backend.list(.queue) { items.append(try queueView(q)) }
        return APIServer.json(APIServer.list(items, resourceVersion: head))
    }

    func listResourcePools(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let w = try WatchRequest.parse(ctx.request, maxSeconds: options.watchMaxSeconds)
        if w.watch { return try watchKind(.resourcePool, w, view: ObjectView.object) }
        let head = (try? backend.feedHead()) ?? nil
        return APIServer.json(APIServer.list(backend.list(.resourcePool).map(ObjectView.object), resourceVersion: head))
    }

    /// `{"items": [...], "metadata": {"resourceVersion": "N"}}` (no metadata without a feed).
    static func list(_ items: [Value], resourceVersion: Int64?) -> Value {
        var m: [Value.Member] = [.init("items", .array(items))]
        if let rv = resourceVersion { m.append(.init("metadata", .object([.init("resourceVersion", .string(String(rv)))]))) }
        return .object(m)
    }

    func createQueue(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        try APIServer.checkContentType(ctx.request, yaml: true)
        let o = try CreateRequest.decode(ctx.request.body, kind: .queue, namespace: "")
        guard o.key.kind == .queue else { throw .badRequest("the object must be a Queue", field: "kind") }
        return APIServer.json(try queueView(try backend.create(o, by: ctx.principal)), status: 201)
    }

    func patchQueue(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        try APIServer.checkContentType(ctx.request, yaml: false, mergePatch: true)
        let q = try object(.queue, ctx)
        try refuseManifestOwned(q)
        let patched = try ObjectPatch.apply(ctx.request.body, to: q.object)
        guard patched.key == q.key else { throw .badRequest("a patch cannot rename a queue", field: "metadata.name") }
        return APIServer.json(try queueView(try backend.update(patched, by: ctx.principal)))
    }

    func pending(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let q = try object(.queue, ctx)
        let waiting = visibleWorkloads(ctx, namespace: nil).compactMap { o -> (APIObject, Int)? in
            guard o.object.spec.workload?.queue == q.key.name, let pos = o.status?.workload?.queuePosition else { return nil }
            return (o, pos)
        }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0.key < $1.0.key }
        let items: [Value] = waiting.map { o, pos in
            .object([
                .init("workload", .string(o.key.qualifiedName)), .init("position", .int(Int64(pos))),
                .init("priority", .int(Int64(o.object.spec.workload?.priority ?? 0))),
                .init("gpus", .int(o.object.spec.workload?.totalGPUs ?? 0)),
                .init("reason", .string(o.status?.workload?.message ?? "")),
            ])
        }
        return APIServer.json(.object([.init("items", .array(items))]))
    }

    // MARK: - Pools and nodes

    func poolNodes(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let pool = try object(.resourcePool, ctx)
        let nodes = backend.list(.node).filter { $0.object.spec.node?.resourcePool == pool.key.name }
        return APIServer.json(nodeList(nodes, ctx.principal))
    }

    func nodeList(_ nodes: [APIObject], _ p: Principal) -> Value {
        let workloads = backend.list(.workload)
        return .object([.init("items", .array(nodes.map { nodeView($0, workloads: workloads, p) }))])
    }

    /// The node with `allocation.gpus`: each GPU index and the workload holding it (nil: free).
    func nodeView(_ n: APIObject, workloads: [APIObject], _ p: Principal) -> Value {
        var holder: [Int: String] = [:]
        for w in workloads {
            guard let st = w.status?.workload else { continue }
            let name = p.may(namespace: w.key.namespace) ? w.key.qualifiedName : "(another namespace)"
            for a in st.admission where a.node == n.key.name { for g in a.gpus { holder[g] = name } }
            for r in st.replicas where r.node == n.key.name { for g in r.gpus { holder[g] = name } }
        }
        let capacity = max(n.object.spec.node?.capacity.gpu ?? 0, n.status?.node?.capacity.gpu ?? 0)
        let count = Int(min(max(capacity, 0), 4096))
        var indexes = Set(0..<count)
        for k in holder.keys where k >= 0 && k < 4096 { indexes.insert(k) }
        let gpus: [Value] = indexes.sorted().map { i in
            .object([.init("index", .int(Int64(i))), .init("workload", holder[i].map { .string($0) } ?? .null)])
        }
        return APIServer.adding(ObjectView.object(n), "allocation", .object([.init("gpus", .array(gpus))]))
    }
}
