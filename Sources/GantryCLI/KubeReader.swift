import Foundation
import GantryAPI
import StateStore
import KubeClient
import KubeMode

/// A failure of a CLI command against a cluster, said in one line (exit status 1): no
/// kubeconfig, an unreachable server, refused credentials, missing RBAC permission.
struct KubeCLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d.split(whereSeparator: \.isNewline).joined(separator: " ") }
}

/// `ObjectReader` over a Kubernetes API server: Workloads, Queues and ResourcePools are the
/// gantry.dev custom resources (object = apiVersion/kind/metadata/spec, status = what the
/// controller wrote), Nodes are core Nodes as Gantry sees them with a status derived like
/// directory mode's (capacity, allocated from the Workloads' admissions), events are core/v1
/// Events. There are no metric samples in kube mode.
final class KubeReader: ObjectReader {
    let client: KubeClient
    let server: String
    /// The namespace of the kubeconfig context (`default` when it names none).
    let defaultNamespace: String

    init(kubeconfig: String?, context: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let config: KubeConfig
        do {
            config = try KubeConfig.resolve(kubeconfig: kubeconfig, context: context, environment: environment)
            client = try KubeClient(config: config, qps: 50, burst: 100, userAgent: "gantry-cli/\(CLI.version)")
        } catch let e as KubeConfig.ConfigError {
            throw KubeCLIError("kubeconfig: \(e.message)")
        }
        server = config.server
        defaultNamespace = config.namespace.isEmpty ? "default" : config.namespace
    }

    /// Runs an API call, turning its failure into one line a user can act on.
    func call<T>(_ what: String, _ body: () throws(KubeError) -> T) throws -> T {
        do throws(KubeError) { return try body() } catch { throw explain(error, what) }
    }

    func explain(_ e: KubeError, _ what: String) -> KubeCLIError {
        switch e.code {
        case 0: return KubeCLIError("cannot reach the API server at \(server): \(e.message.isEmpty ? e.reason : e.message)")
        case 401: return KubeCLIError("the API server at \(server) refused the credentials (401 Unauthorized) while trying to \(what)")
        case 403: return KubeCLIError("forbidden (403) to \(what): \(e.message)")
        case 404 where what.contains("gantry.dev"):
            return KubeCLIError("cannot \(what): the API server has no such resource (are Gantry's CRDs installed? kubectl apply -k deploy/): \(e.message)")
        default: return KubeCLIError("cannot \(what): \(e.description)")
        }
    }

    /// The object at `path`, or nil when it does not exist.
    func getIfPresent(_ path: String, _ what: String) throws -> Value? {
        do throws(KubeError) { return try client.get(path) } catch {
            if error.isNotFound && error.reason == "NotFound" && !Self.looksLikeMissingResource(error) { return nil }
            throw explain(error, what)
        }
    }

    /// A 404 about the resource type itself (CRDs not installed), not about one object.
    static func looksLikeMissingResource(_ e: KubeError) -> Bool { e.message.contains("could not find the requested resource") }

    // MARK: ObjectReader

    func objects(kind: Kind, namespace: String?, name: String?) throws -> [ObjectRow] {
        if kind == .node { return try nodes(name: name) }
        guard let gvr = KubeObjects.resource(kind) else { return [] }
        let ns = kind.isNamespaced ? namespace : nil
        let what = "read \(gvr.resource).\(gvr.group)"
        var items: [Value]
        if let name {
            items = try getIfPresent(gvr.path(namespace: ns, name: name), what).map { [$0] } ?? []
        } else {
            items = try call("list \(gvr.resource).\(gvr.group)") { () throws(KubeError) in try client.list(gvr.path(namespace: ns)).items }
        }
        items = items.map { KubeReaderRows.withTypeMeta($0, kind: kind) }
        return KubeReaderRows.sorted(items.compactMap { KubeReaderRows.row($0, kind: kind, server: server) })
    }

    func workloads(queue: String) throws -> [ObjectRow] {
        try objects(kind: .workload, namespace: nil, name: nil).filter { row in
            (try? JSON.parse(row.objectJSON))?["spec"]?["queue"]?.stringValue == queue
        }
    }

    func events(kind: String?, namespace: String?, name: String?, since: Double?, limit: Int?) throws -> [StateReader.EventRow] {
        // Events about cluster-scoped objects live in `default` (as Gantry and the kubelet write them).
        let listNamespace: String? = namespace.map { $0.isEmpty ? "default" : $0 }
        let field = name.map { "involvedObject.name=\($0)" }
        let items = try call("list events") { () throws(KubeError) in
            try client.list(GroupVersionResource.events.path(namespace: listNamespace), fieldSelector: field).items
        }
        var rows: [StateReader.EventRow] = []
        for e in items {
            let inv = e["involvedObject"]
            let invKind = inv?["kind"]?.stringValue ?? ""
            let invNamespace = inv?["namespace"]?.stringValue ?? ""
            let invName = inv?["name"]?.stringValue ?? ""
            if let kind, invKind.lowercased() != kind.lowercased() { continue }
            if let namespace, invNamespace != namespace { continue }
            if let name, invName != name { continue }
            // Without a target, Gantry's events only (as the state directory holds).
            if kind == nil && name == nil && !KubeReaderRows.fromGantry(e) { continue }
            guard let row = KubeReaderRows.eventRow(e) else { continue }
            if let since, !(row.last > since) { continue }
            rows.append(row)
        }
        rows.sort { $0.last != $1.last ? $0.last < $1.last : $0.name < $1.name }
        if let limit, rows.count > limit { rows = Array(rows.suffix(limit)) }
        return rows
    }

    func latestMetrics(prefix: String) throws -> [(series: String, ts: Double, value: Double)] { [] }

    // MARK: Nodes

    /// Core Nodes as Gantry nodes, with a status like directory mode's: phase, capacity, and
    /// allocated resources and workload count summed from the Workloads' admissions.
    func nodes(name: String?) throws -> [ObjectRow] {
        var items: [Value]
        if let name {
            items = try getIfPresent(GroupVersionResource.nodes.path(name: name), "read nodes").map { [$0] } ?? []
        } else {
            items = try call("list nodes") { () throws(KubeError) in try client.list(GroupVersionResource.nodes.path()).items }
        }
        guard !items.isEmpty else { return [] }
        let workloads = try call("list workloads.gantry.dev") { () throws(KubeError) in try client.list(GroupVersionResource.workloads.path()).items }
        let usage = KubeReaderRows.nodeUsage(workloads)
        var pools: Set<String>?
        var rows: [ObjectRow] = []
        for v in items {
            guard let obj = KubeObjects.node(v), let spec = obj.spec.node else { continue }
            var poolMissing = false
            if let pool = spec.resourcePool {
                if pools == nil {
                    let list = try call("list resourcepools.gantry.dev") { () throws(KubeError) in try client.list(GroupVersionResource.resourcePools.path()).items }
                    pools = Set(list.compactMap { $0["metadata"]?["name"]?.stringValue })
                }
                poolMissing = !(pools?.contains(pool) ?? false)
            }
            let status = KubeReaderRows.nodeStatus(v, spec: spec, usage: usage[obj.key.name], poolMissing: poolMissing)
            rows.append(ObjectRow(key: obj.key, uid: obj.meta.uid, generation: obj.meta.generation, specHash: "", objectHash: "",
                                  creationTime: obj.meta.creationTimestamp.seconds, source: "Node \(obj.key.name) (\(server))",
                                  objectJSON: JSON.encode(obj.toValue()), statusJSON: JSON.encode(status)))
        }
        return KubeReaderRows.sorted(rows)
    }
}
