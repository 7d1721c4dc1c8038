import Foundation
import GantryAPI
import HTTPServer

extension APIServer {
    /// Runs the handler of `op` (an `APIRoute.operationId`).
    func handle(_ op: String, _ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        switch op {
        case "getOpenAPI": return HTTPResponse.json(Array(OpenAPIDocument.json().utf8))
        case "whoami": return APIServer.json(whoami(ctx.principal))
        case "listWorkloads", "listNamespacedWorkloads": return try listWorkloads(ctx)
        case "countWorkloads": return try countWorkloads(ctx)
        case "workloadTelemetry": return try telemetry(ctx)
        case "workloadMetadata": return APIServer.json(WorkloadMetadata.of(visibleWorkloads(ctx, namespace: nil)))
        case "batchStop": return try batch(ctx, .stop)
        case "batchResume": return try batch(ctx, .resume)
        case "batchDelete": return try batch(ctx, .delete)
        case "batchClone": return try batch(ctx, .clone)
        case "createWorkload": return try createWorkload(ctx)
        case "getWorkload": return APIServer.json(ObjectView.object(try workload(ctx)))
        case "patchWorkload": return try patchWorkload(ctx)
        case "deleteWorkload": return try deleteObject(ObjectKey(.workload, namespace: try ctx.parameter("ns"), name: try ctx.parameter("name")), ctx)
        case "stopWorkload": return try suspend(ctx, true)
        case "resumeWorkload": return try suspend(ctx, false)
        case "cloneWorkload": return try cloneWorkload(ctx)
        case "getReplicas": return APIServer.json(ObjectView.hierarchy(try workload(ctx)))
        case "getReplicaLogs": return try logs(ctx)
        case "getWorkloadEvents": return try events(ctx, rank: nil)
        case "getReplicaEvents": return try events(ctx, rank: try rank(ctx))
        case "getWorkloadMetrics": return try metrics(ctx, .gpu(rank: nil))
        case "getReplicaMetrics": return try metrics(ctx, .gpu(rank: try rank(ctx)))
        case "getTrainingMetrics": return try metrics(ctx, .training)
        case "listQueues": return try listQueues(ctx)
        case "createQueue": return try createQueue(ctx)
        case "getQueue": return APIServer.json(try queueView(try object(.queue, ctx)))
        case "patchQueue": return try patchQueue(ctx)
        case "deleteQueue": return try deleteObject(ObjectKey(.queue, name: try ctx.parameter("name")), ctx)
        case "getQueuePending": return try pending(ctx)
        case "listResourcePools": return try listResourcePools(ctx)
        case "getResourcePool": return APIServer.json(ObjectView.object(try object(.resourcePool, ctx)))
        case "listResourcePoolNodes": return try poolNodes(ctx)
        case "listNodes": return APIServer.json(nodeList(backend.list(.node), ctx.principal))
        case "getNode": return APIServer.json(nodeView(try object(.node, ctx), workloads: backend.list(.workload), ctx.principal))
        default: throw .internal("no handler for \(op)")
        }
    }

    // MARK: - Lookups and parsing

    func workload(_ ctx: RequestContext) throws(APIError) -> APIObject {
        let key = ObjectKey(.workload, namespace: try ctx.parameter("ns"), name: try ctx.parameter("name"))
        guard let o = backend.get(key) else { throw .notFound("workload \(key.qualifiedName) not found") }
        return o
    }

    func object(_ kind: Kind, _ ctx: RequestContext) throws(APIError) -> APIObject {
        let key = ObjectKey(kind, name: try ctx.parameter("name"))
        guard let o = backend.get(key) else { throw .notFound("\(kind.singular) \(key.name) not found") }
        return o
    }

    /// The largest replica index a path may name.
    static let maxRank = (1 << 20) - 1

    func rank(_ ctx: RequestContext) throws(APIError) -> Int {
        let s = try ctx.parameter("rank")
        guard let r = Int(s), r >= 0, r <= APIServer.maxRank else { throw .badRequest("rank must be a replica index (0, 1, ...), not \"\(s)\"", field: "rank") }
        return r
    }

    static func intParameter(_ req: HTTPRequest, _ name: String, min: Int) throws(APIError) -> Int? {
        guard let s = req.query(name) else { return nil }
        guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v >= min else {
            throw .badRequest("\(name) must be an integer of at least \(min), not \"\(s)\"", field: name)
        }
        return v
    }

    static func boolParameter(_ req: HTTPRequest, _ name: String) throws(APIError) -> Bool {
        guard let s = req.query(name) else { return false }
        switch s.lowercased() {
        case "", "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw .badRequest("\(name) must be true or false, not \"\(s)\"", field: name)
        }
    }

    /// RFC 3339 / ISO 8601 or seconds since the epoch.
    static func timeParameter(_ req: HTTPRequest, _ name: String) throws(APIError) -> Double? {
        guard let s = req.query(name) else { return nil }
        if let t = Timestamp(rfc3339: s) { return Double(t.seconds) }
        if let d = Double(s), d.isFinite { return d }
        throw .badRequest("\(name) must be an RFC 3339 time or seconds since the epoch, not \"\(s)\"", field: name)
    }

    static func parseJSONBody(_ body: [UInt8], allowEmpty: Bool) throws(APIError) -> Value {
        let text = String(decoding: body, as: UTF8.self)
        if text.allSatisfy(\.isWhitespace) {
            if allowEmpty { return .object([]) }
            throw .badRequest("request body is empty; expected a JSON object")
        }
        let v: Value
        do { v = try JSON.parse(text) } catch { throw .badRequest("request body is not JSON: \(error.description)") }
        guard case .object = v else { throw .badRequest("request body must be a JSON object") }
        return v
    }

    static func checkContentType(_ req: HTTPRequest, yaml: Bool, mergePatch: Bool = false) throws(APIError) {
        guard let raw = req.header("content-type") else { return }
        let ct = raw.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if ct.isEmpty || ct == "application/json" || ct.hasSuffix("+json") { return }
        // What `curl -d @job.json` sends without -H: the body is read as JSON (or YAML where
        // accepted) all the same, as the issue's examples expect.
        if ct == "application/x-www-form-urlencoded" || ct == "text/plain" { return }
        if yaml && ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"].contains(ct) { return }
        if mergePatch && ct == "application/merge-patch+json" { return }
        throw APIError(415, "UnsupportedMediaType", "content type \(raw) is not accepted; send application/json\(yaml ? " or application/yaml" : "")")
    }

    // MARK: - Workloads

    func whoami(_ p: Principal) -> Value {
        .object([
            .init("user", .string(p.user)), .init("role", .string(p.role.name)),
            .init("namespaces", p.namespaces.map { .array($0.map { .string($0) }) } ?? .null),
            .init("mode", .string(backend.mode)),
        ])
    }

    /// The workloads the caller may see (in `namespace` when given).
    func visibleWorkloads(_ ctx: RequestContext, namespace: String?) -> [APIObject] {
        if namespace == nil && ctx.principal.namespaces == nil { return backend.list(.workload) }
        return backend.list(.workload).filter { o in ctx.principal.may(namespace: o.key.namespace) && (namespace == nil || o.key.namespace == namespace) }
    }

    /// The query of a list request, limited to the caller's namespaces and the path's.
    func workloadQuery(_ ctx: RequestContext, _ query: [(String, String)]) throws(APIError) -> WorkloadQuery {
        var q = try WorkloadQuery.parse(query)
        q.restrict(namespaces: ctx.principal.namespaces)
        if let ns = ctx.request.parameter("ns") { q.restrict(namespaces: [ns]) }
        return q
    }

    /// Every workload (and the history with `deleted`): the backend's array as is, so the
    /// query's index of it is reused; the query restricts namespaces.
    func allWorkloads(deleted: Bool) throws(APIError) -> [APIObject] {
        deleted ? backend.list(.workload) + (try backend.history(limit: 1_000_000)) : backend.list(.workload)
    }

    func listWorkloads(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let w = try WatchRequest.parse(ctx.request, maxSeconds: options.watchMaxSeconds)
        let q = try workloadQuery(ctx, ctx.request.query.filter { !WatchRequest.parameters.contains($0.0) })
        if w.watch { return try watchWorkloads(ctx, q, w) }
        // Read before the items: a change the items miss has a larger number, so a watch from
        // this resourceVersion delivers it (possibly a change they include, again).
        // (A feed that cannot be read leaves the resourceVersion out rather than failing the list.)
        var head = (try? backend.feedHead()) ?? nil
        // A later page of a list that had a resourceVersion: cut by offset only while nothing
        // changed since its first page (else an item could move across the cut and be in no
        // page, while a watch from that version would never send it). Checked before and after.
        func expired(_ rv: Int64) -> APIError {
            APIError(410, "Expired", "the list changed since its first page (resourceVersion \(rv)); list again from the first page, or in one page")
        }
        if let rv = q.continueRevision {
            guard try backend.listUnchanged(since: rv) else { throw expired(rv) }
            head = rv
        }
        var page: WorkloadPage
        if let p = backend.workloadPage(q) { page = p } else { page = try q.apply(try allWorkloads(deleted: q.includeDeleted)) }
        if let rv = q.continueRevision, try !backend.listUnchanged(since: rv) { throw expired(rv) }
        if let next = page.next, let head { page.next = Marker.withRevision(next, head) }
        var views: [Value] = []
        views.reserveCapacity(page.items.count)
        for o in page.items {
            if let f = q.fields { views.append(try ObjectView.fields(o, f)) } else { views.append(ObjectView.object(o)) }
        }
        var m: [Value.Member] = [
            .init("items", .array(views)), .init("totalCount", .int(Int64(page.totalCount))),
            .init("offset", .int(Int64(page.offset))), .init("limit", .int(Int64(page.limit))),
        ]
        if let next = page.next { m.append(.init("continue", .string(next))) }
        if let head { m.append(.init("metadata", .object([.init("resourceVersion", .string(String(head)))]))) }
        return APIServer.json(.object(m))
    }

    func countWorkloads(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let q = try workloadQuery(ctx, ctx.request.query)
        return APIServer.json(.object([.init("count", .int(Int64(q.count(try allWorkloads(deleted: q.includeDeleted)))))]))
    }

    func telemetry(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        let by = ctx.request.query("groupBy") ?? "queue"
        let q = try workloadQuery(ctx, ctx.request.query.filter { $0.0 != "groupBy" })
        let items = q.matching(try allWorkloads(deleted: q.includeDeleted))
        return APIServer.json(try Telemetry.group(items, nodes: backend.list(.node), by: by))
    }

    /// Submitter, run-as and priority rules for a workload about to be created.
    func prepareNew(_ o: inout ManifestObject, _ p: Principal) throws(APIError) {
        guard o.key.kind == .workload else { return }
        if let w = o.spec.workload, w.priority >= 2, p.role < .admin {
            throw .forbidden("priority highest (2) needs the admin role; user \(p.user) is \(p.role.name)")
        }
        o.meta.annotations[APIObject.submitterAnnotation] = p.user
        // In every mode: in kube mode the annotation becomes the Pods' runAsUser.
        if o.meta.annotations[APIObject.runAsAnnotation] != nil, p.role < .admin {
            throw .badRequest("annotation \(APIObject.runAsAnnotation) is set by the server from the tokens file; only an admin may set it",
                              field: "metadata.annotations.\(APIObject.runAsAnnotation)")
        }
        guard backend.mode == "directory" else { return }
        if o.meta.annotations[APIObject.runAsAnnotation] != nil {
            // An admin's choice.
        } else if let u = p.unixUser {
            o.meta.annotations[APIObject.runAsAnnotation] = u
        } else if p.role < .admin {
            throw .forbidden("no Unix account is mapped to user \(p.user) in the tokens file")
        }
    }

    func createWorkload(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        try APIServer.checkContentType(ctx.request, yaml: true)
        let ns = try ctx.parameter("ns")
        var o = try CreateRequest.decode(ctx.request.body, kind: .workload, namespace: ns)
        guard o.key.kind == .workload, o.key.namespace == ns else {
            throw .badRequest("the object must be a workload in namespace \(ns)", field: "metadata.namespace")
        }
        try prepareNew(&o, ctx.principal)
        return APIServer.json(ObjectView.object(try backend.create(o, by: ctx.principal)), status: 201)
    }

    func refuseManifestOwned(_ o: APIObject) throws(APIError) {
        if case .manifest(let file) = o.owner {
            throw .conflict("\(o.key.kind.singular) \(o.key.qualifiedName) is declared in \(file); edit that file instead")
        }
    }

    func patchWorkload(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        try APIServer.checkContentType(ctx.request, yaml: false, mergePatch: true)
        let o = try workload(ctx)
        try refuseManifestOwned(o)
        var patched = try ObjectPatch.apply(ctx.request.body, to: o.object)
        guard patched.key == o.key else { throw .badRequest("a patch cannot rename or move a workload", field: "metadata.name") }
        let old = o.object.spec.workload?.priority ?? 0
        if let w = patched.spec.workload, w.priority >= 2, w.priority != old, ctx.principal.role < .admin {
            throw .forbidden("priority highest (2) needs the admin role; user \(ctx.principal.user) is \(ctx.principal.role.name)")
        }
        let runAs = APIObject.runAsAnnotation
        if patched.meta.annotations[runAs] != o.object.meta.annotations[runAs], ctx.principal.role < .admin {
            throw .badRequest("annotation \(runAs) is set by the server; only an admin may change it", field: "metadata.annotations.\(runAs)")
        }
        // A spec change runs under the workload's account: a non-admin may make one only to a
        // workload that runs as the caller's own account (directory mode), or, in kube mode,
        // to one with no account an admin chose.
        if ctx.principal.role < .admin, patched.spec != o.object.spec {
            let account = o.object.meta.annotations[runAs]
            let mine = backend.mode == "directory" ? ctx.principal.unixUser : nil
            if account != mine {
                throw .forbidden("workload \(o.key.qualifiedName) runs as \(account.map { "Unix account \($0)" } ?? "the daemon's account"), not as \(mine.map { "yours (\($0))" } ?? "an account of yours"); only an admin may change its spec (clone it instead)")
            }
        }
        patched.meta.annotations[APIObject.submitterAnnotation] = o.object.meta.annotations[APIObject.submitterAnnotation]
        return APIServer.json(ObjectView.object(try backend.update(patched, by: ctx.principal)))
    }

    func deleteObject(_ key: ObjectKey, _ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        guard backend.get(key) != nil else { throw .notFound("\(key.kind.singular) \(key.qualifiedName) not found") }
        try backend.delete(key, by: ctx.principal)
        return APIServer.json(.object([.init("deleted", .string(key.qualifiedName))]))
    }

    func suspend(_ ctx: RequestContext, _ on: Bool) throws(APIError) -> HTTPResponse {
        let o = try workload(ctx)
        try backend.setSuspended(o.key, on, by: ctx.principal)
        guard let now = backend.get(o.key) else { throw .notFound("workload \(o.key.qualifiedName) not found") }
        return APIServer.json(ObjectView.object(now))
    }

    /// A clone of `source` made by `body` (CloneRequest), with the caller as submitter.
    func makeClone(_ source: APIObject, body: [UInt8], _ p: Principal) throws(APIError) -> ManifestObject {
        var base = source.object
        base.meta.annotations[APIObject.submitterAnnotation] = nil
        base.meta.annotations[APIObject.runAsAnnotation] = nil
        var c = try CloneRequest.apply(body, to: base) { [backend] key in backend.get(key) != nil }
        guard c.key.kind == .workload else { throw .badRequest("a clone must be a workload") }
        guard p.may(namespace: c.key.namespace) else { throw .forbidden("user \(p.user) may not act in namespace \(c.key.namespace)") }
        c.meta.uid = ""
        c.meta.generation = 1
        c.source = SourceRef(file: apiSourcePrefix, line: 1, index: 0)
        try prepareNew(&c, p)
        return c
    }

    func cloneWorkload(_ ctx: RequestContext) throws(APIError) -> HTTPResponse {
        try APIServer.checkContentType(ctx.request, yaml: false)
        let o = try workload(ctx)
        let c = try makeClone(o, body: ctx.request.body, ctx.principal)
        return APIServer.json(ObjectView.object(try backend.create(c, by: ctx.principal)), status: 201)
    }

    // MARK: - Batch

    enum BatchOp { case stop, resume, delete, clone }

    func batch(_ ctx: RequestContext, _ op: BatchOp) throws(APIError) -> HTTPResponse {
        try APIServer.checkContentType(ctx.request, yaml: false)
        let body = try APIServer.parseJSONBody(ctx.request.body, allowEmpty: false)
        for m in body.members ?? [] where !["workloads", "selector", "namespace", "suffix"].contains(m.key) {
            throw .badRequest("unknown field \"\(m.key.prefix(60))\"; a batch body has workloads or selector (+ namespace), and suffix for clone", field: String(m.key.prefix(60)))
        }
        var targets: [(String, ObjectKey?)] = []
        switch (body["workloads"], body["selector"]) {
        case (.some(let list), nil):
            guard let arr = list.arrayValue else { throw .badRequest("workloads must be an array of \"namespace/name\" strings", field: "workloads") }
            guard arr.count <= 10_000 else { throw .badRequest("at most 10000 workloads per batch", field: "workloads") }
            for (i, item) in arr.enumerated() {
                let parts = item.stringValue?.split(separator: "/", omittingEmptySubsequences: false).map(String.init) ?? []
                guard let s = item.stringValue, parts.count == 2, ManifestDecoder.isDNS1123Label(parts[0]), ManifestDecoder.isDNS1123Label(parts[1]) else {
                    throw .badRequest("workloads[\(i)] must be \"namespace/name\"", field: "workloads[\(i)]")
                }
                targets.append((s, ObjectKey(.workload, namespace: parts[0], name: parts[1])))
            }
        case (nil, .some(let sel)):
            guard let text = sel.stringValue, !text.allSatisfy(\.isWhitespace) else {
                throw .badRequest("selector must be a non-empty label selector (an empty one would select everything)", field: "selector")
            }
            let selector = try LabelSelector.parse(text)
            var namespace: String?
            if let ns = body["namespace"] {
                guard let s = ns.stringValue, ManifestDecoder.isDNS1123Label(s) else {
                    throw .badRequest("namespace must be a namespace name (\(ManifestDecoder.dns1123Label))", field: "namespace")
                }
                namespace = s
            }
            for o in visibleWorkloads(ctx, namespace: namespace) where selector.matches(o.object.meta.labels) {
                targets.append((o.key.qualifiedName, o.key))
            }
        default:
            throw .badRequest("give either \"workloads\": [\"ns/name\", ...] or \"selector\": \"k=v\"", field: "workloads")
        }
        var suffix = "-copy"
        if let s = body["suffix"] {
            guard let t = s.stringValue, !t.isEmpty, t.utf8.allSatisfy({ $0 == 0x2d || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a) }) else {
                throw .badRequest("suffix must be lower-case letters, digits and '-'", field: "suffix")
            }
            suffix = t
        }
        var results: [Value] = []
        var ok = 0, failed = 0
        for (label, key) in targets {
            var status = 200
            var failure: APIError?
            do throws(APIError) {
                guard let key else { throw .badRequest("\"\(label)\" is not \"namespace/name\"") }
                guard ctx.principal.may(namespace: key.namespace) else {
                    throw .forbidden("user \(ctx.principal.user) may not act in namespace \(key.namespace)")
                }
                guard let o = backend.get(key) else { throw .notFound("workload \(key.qualifiedName) not found") }
                switch op {
                case .stop: try backend.setSuspended(key, true, by: ctx.principal)
                case .resume: try backend.setSuspended(key, false, by: ctx.principal)
                case .delete: try backend.delete(key, by: ctx.principal)
                case .clone:
                    let name = key.name + suffix
                    let c = try makeClone(o, body: Array(JSON.encode(.object([.init("name", .string(name))])).utf8), ctx.principal)
                    _ = try backend.create(c, by: ctx.principal)
                    status = 201
                }
            } catch {
                failure = error
            }
            var m: [Value.Member] = [.init("workload", .string(label))]
            if let failure {
                failed += 1
                m.append(.init("status", .int(Int64(failure.status))))
                m.append(.init("error", failure.toValue()["error"] ?? .null))
            } else {
                ok += 1
                m.append(.init("status", .int(Int64(status))))
            }
            results.append(.object(m))
        }
        return APIServer.json(.object([.init("results", .array(results)), .init("succeeded", .int(Int64(ok))), .init("failed", .int(Int64(failed)))]))
    }
}

