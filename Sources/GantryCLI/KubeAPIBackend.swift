import Foundation
import GantryAPI
import GantryServer
import StateStore
import KubeClient
import KubeMode

/// The HTTP API's backend in kube mode: reads from the controller's informer caches (so a
/// standby replica answers too), writes as API calls (create, replace with the read
/// resourceVersion, delete, a merge patch of `spec.suspend`), events and logs from the API
/// server. No metric samples or history are kept in kube mode.
final class KubeAPIBackend: APIBackend {
    let mode = "kube"
    let controller: KubeController
    var client: KubeClient { controller.client }

    init(controller: KubeController) { self.controller = controller }

    func now() -> Double { Date().timeIntervalSince1970 }

    func informer(_ kind: Kind) -> Informer {
        switch kind {
        case .workload: controller.workloads
        case .queue: controller.queues
        case .resourcePool: controller.pools
        case .node: controller.nodes
        }
    }

    func view(_ v: Value, kind: Kind) -> APIObject? {
        if kind == .node {
            guard let obj = KubeObjects.node(v) else { return nil }
            return APIObject(object: obj, status: nil, owner: .cluster)
        }
        guard case .object(let obj, _) = KubeObjects.decode(v, kind: kind, fieldValidation: .ignore) else { return nil }
        let status = v["status"].flatMap { $0.members?.isEmpty == false ? ObjectStatus.from($0, kind: kind) : nil }
        return APIObject(object: obj, status: status, owner: .cluster)
    }

    func list(_ kind: Kind) -> [APIObject] {
        let values = informer(kind).list()
        guard kind == .node else { return values.compactMap { view($0, kind: kind) } }
        // Nodes: allocation from the admitted workloads, as `gantry get nodes --kube` shows it.
        let usage = KubeReaderRows.nodeUsage(controller.workloads.list())
        return values.compactMap { v -> APIObject? in
            guard var o = view(v, kind: .node), let spec = o.object.spec.node else { return nil }
            let st = KubeReaderRows.nodeStatus(v, spec: spec, usage: usage[o.object.meta.name], poolMissing: false)
            o.status = ObjectStatus.from(st, kind: .node)
            return o
        }
    }

    func get(_ key: ObjectKey) -> APIObject? {
        if key.kind == .node { return list(.node).first { $0.key == key } }
        return informer(key.kind).get(namespace: key.kind.isNamespaced ? key.namespace : nil, name: key.name).flatMap { view($0, kind: key.kind) }
    }

    static func apiError(_ e: KubeError, _ what: String) -> APIError {
        switch e.code {
        case 404: return .notFound("\(what): \(e.message)")
        case 409: return .conflict("\(what): \(e.message)")
        case 403: return .forbidden("\(what): the controller's service account may not: \(e.message)")
        case 400, 422: return .badRequest("\(what): the API server refused it: \(e.message)")
        case 401: return APIError(502, "BadGateway", "\(what): the API server did not accept the controller's credentials")
        default: return APIError(502, "BadGateway", "\(what): \(e)")
        }
    }

    func body(_ object: ManifestObject) -> Value {
        (try? JSON.parse(DirectoryBackend.manifestJSON(object))) ?? .null
    }

    func create(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject {
        let key = object.key
        guard let res = KubeObjects.resource(key.kind), key.kind != .node else { throw .badRequest("\(key.kind.rawValue) objects are not written through the API in kube mode") }
        let created: Value
        do { created = try client.create(res.path(namespace: key.kind.isNamespaced ? key.namespace : nil), body(object)) } catch {
            throw KubeAPIBackend.apiError(error, "create \(key.kind.rawValue) \(key.qualifiedName)")
        }
        return view(created, kind: key.kind) ?? APIObject(object: object, status: nil, owner: .cluster)
    }

    func update(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject {
        let key = object.key
        guard let path = KubeObjects.path(key), key.kind != .node else { throw .badRequest("\(key.kind.rawValue) objects are not written through the API in kube mode") }
        // Read, change labels, annotations and spec, write back with the read
        // resourceVersion; a concurrent writer's change makes it read again (3 tries).
        var lastError = APIError.conflict("\(key.qualifiedName) kept changing")
        for _ in 0..<3 {
            let current: Value
            do { current = try client.get(path) } catch { throw KubeAPIBackend.apiError(error, "read \(key.kind.rawValue) \(key.qualifiedName)") }
            guard case .object(var members) = current else { throw .internal("the API server returned no object") }
            let wanted = body(object)
            for i in members.indices {
                if members[i].key == "spec", let s = wanted["spec"] { members[i].value = s }
                if members[i].key == "metadata", case .object(var meta) = members[i].value {
                    meta.removeAll { $0.key == "labels" || $0.key == "annotations" }
                    if let l = wanted["metadata"]?["labels"] { meta.append(.init("labels", l)) }
                    if let a = wanted["metadata"]?["annotations"] { meta.append(.init("annotations", a)) }
                    members[i].value = .object(meta)
                }
            }
            do {
                let updated = try client.replace(path, .object(members))
                return view(updated, kind: key.kind) ?? APIObject(object: object, status: nil, owner: .cluster)
            } catch {
                if error.isConflict { lastError = KubeAPIBackend.apiError(error, "update \(key.qualifiedName)"); continue }
                throw KubeAPIBackend.apiError(error, "update \(key.kind.rawValue) \(key.qualifiedName)")
            }
        }
        throw lastError
    }

    func delete(_ key: ObjectKey, by: Principal) throws(APIError) {
        guard let path = KubeObjects.path(key), key.kind != .node else { throw .badRequest("\(key.kind.rawValue) objects are not deleted through the API in kube mode") }
        do { try client.delete(path) } catch { throw KubeAPIBackend.apiError(error, "delete \(key.kind.rawValue) \(key.qualifiedName)") }
    }

    func setSuspended(_ key: ObjectKey, _ suspend: Bool, by: Principal) throws(APIError) {
        guard key.kind == .workload, let path = KubeObjects.path(key) else { throw .notFound("workload \(key.qualifiedName) not found") }
        do { _ = try client.patch(path, .object([.init("spec", .object([.init("suspend", .bool(suspend))]))])) } catch {
            throw KubeAPIBackend.apiError(error, "patch spec.suspend of \(key.qualifiedName)")
        }
    }

    func events(_ f: EventFilter) throws(APIError) -> [GantryServer.EventRecord] {
        var selectors: [String] = []
        if let name = f.name { selectors.append("involvedObject.name=\(name)") }
        if let kind = f.kind { selectors.append("involvedObject.kind=\(kind.rawValue)") }
        let path = GroupVersionResource.events.path(namespace: f.namespace.flatMap { $0.isEmpty ? nil : $0 })
        let items: [Value]
        do { items = try client.list(path, fieldSelector: selectors.isEmpty ? nil : selectors.joined(separator: ",")).items } catch {
            throw KubeAPIBackend.apiError(error, "list events")
        }
        var out = items.compactMap(KubeReaderRows.eventRow).filter { e in
            (f.since.map { e.last > $0 } ?? true) && (f.until.map { e.last <= $0 } ?? true)
        }.map { e in
            GantryServer.EventRecord(type: e.type, reason: e.reason, message: e.message, kind: e.kind, namespace: e.namespace, name: e.objName,
                                     count: e.count, firstTimestamp: e.first, lastTimestamp: e.last)
        }
        out.sort { ($0.lastTimestamp, $0.name) < ($1.lastTimestamp, $1.name) }
        if let limit = f.limit, out.count > limit { out.removeFirst(out.count - limit) }
        return out
    }

    func log(_ key: ObjectKey, rank: Int) throws(APIError) -> any LogReader {
        guard let o = get(key), let w = o.status?.workload else { throw .notFound("workload \(key.qualifiedName) has no replicas yet") }
        guard let pod = w.replicas.first(where: { $0.rank == rank })?.name else { throw .notFound("workload \(key.qualifiedName) has no replica \(rank)") }
        return KubeLogReader(backend: self, key: key, pod: pod)
    }

    func metrics(prefix: String, start: Double, end: Double) throws(APIError) -> [MetricSeries] { [] }
    func history(limit: Int) throws(APIError) -> [APIObject] { [] }
}

/// A replica's Pod log: one read, or (follow) reads every second from the last line's time on,
/// printing only lines not printed yet, until the replica has ended.
struct KubeLogReader: LogReader {
    let backend: KubeAPIBackend
    let key: ObjectKey
    let pod: String

    func read(_ options: LogOptions, emit: ([UInt8]) -> Bool) throws(APIError) {
        let path = GroupVersionResource.pods.path(namespace: key.namespace, name: pod, subresource: "log")
        var query: [(String, String)] = [("container", "worker")]
        if let t = options.tail { query.append(("tailLines", String(max(t, 0)))) }
        if let s = options.sinceSeconds { query.append(("sinceSeconds", String(max(s, 1)))) }
        if let b = options.limitBytes { query.append(("limitBytes", String(max(b, 1)))) }
        guard options.follow else {
            if options.timestamps { query.append(("timestamps", "true")) }
            do { _ = emit(Array(try backend.client.text(path, query: query).utf8)) } catch { throw KubeAPIBackend.apiError(error, "read the log of Pod \(pod)") }
            return
        }
        query.append(("timestamps", "true"))
        var cursor = LogCursor()
        var first = true
        while true {
            var q = query
            if !first {
                q.removeAll { $0.0 == "tailLines" || $0.0 == "sinceSeconds" }
                if let since = cursor.sinceTime { q.append(("sinceTime", since)) }
            }
            first = false
            let text: String
            do { text = try backend.client.text(path, query: q) } catch { throw KubeAPIBackend.apiError(error, "read the log of Pod \(pod)") }
            let lines = cursor.fresh(text)
            if !lines.isEmpty {
                // `fresh` drops the stamps; put them back when asked for.
                let body = lines.map { $0 + "\n" }.joined()
                if !emit(Array(body.utf8)) { return }
            } else if !emit([]) { return }
            let live = backend.get(key)?.status?.workload?.replicas.contains { $0.name == pod && ($0.phase == "Running" || $0.phase == "Pending") } ?? false
            if !live { return }
            usleep(1_000_000)
        }
    }
}
