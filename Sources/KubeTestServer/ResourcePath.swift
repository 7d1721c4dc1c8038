/// A parsed Kubernetes REST path: `/api/v1/[namespaces/{ns}/]{resource}[/{name}[/{sub}]]` or
/// `/apis/{group}/{version}/[namespaces/{ns}/]{resource}[/{name}[/{sub}]]`.
/// A path without a namespace names a cluster-scoped object, or (for a collection) every
/// namespace. `namespaces/{name}/status|finalize` are the Namespace subresources.
struct ResourcePath: Sendable, Equatable {
    var group: String
    var version: String
    var resource: String
    var namespace: String?
    var name: String?
    var subresource: String?

    /// The storage identity of the collection (versions of a group share storage).
    var collection: String { group.isEmpty ? resource : resource + "." + group }
    var apiVersion: String { group.isEmpty ? version : group + "/" + version }
    /// `pods` or `workloads.gantry.dev`, as kube-apiserver names a resource in messages.
    var qualifiedResource: String { collection }
    var key: StoreKey { StoreKey(namespace: namespace ?? "", name: name ?? "") }
    var isPods: Bool { group.isEmpty && resource == "pods" }

    init?(_ path: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var rest: ArraySlice<String>
        if parts.first == "api", parts.count >= 2 {
            group = ""; version = parts[1]; rest = parts.dropFirst(2)
        } else if parts.first == "apis", parts.count >= 3 {
            group = parts[1]; version = parts[2]; rest = parts.dropFirst(3)
        } else {
            return nil
        }
        let r = Array(rest)
        namespace = nil; name = nil; subresource = nil
        guard !r.isEmpty else { return nil }
        if r[0] == "namespaces" {
            switch r.count {
            case 1: resource = "namespaces"
            case 2: resource = "namespaces"; name = r[1]
            case 3 where r[2] == "status" || r[2] == "finalize":
                resource = "namespaces"; name = r[1]; subresource = r[2]
            case 3: namespace = r[1]; resource = r[2]
            case 4: namespace = r[1]; resource = r[2]; name = r[3]
            case 5: namespace = r[1]; resource = r[2]; name = r[3]; subresource = r[4]
            default: return nil
            }
        } else {
            switch r.count {
            case 1: resource = r[0]
            case 2: resource = r[0]; name = r[1]
            case 3: resource = r[0]; name = r[1]; subresource = r[2]
            default: return nil
            }
        }
        if resource.isEmpty || name == "" || namespace == "" { return nil }
    }

    /// Kubernetes kinds for the resources tests use; others are derived from the plural.
    static let knownKinds: [String: String] = [
        "pods": "Pod", "nodes": "Node", "services": "Service", "events": "Event",
        "namespaces": "Namespace", "leases": "Lease", "workloads": "Workload", "queues": "Queue",
        "resourcepools": "ResourcePool", "configmaps": "ConfigMap", "secrets": "Secret",
        "endpoints": "Endpoints", "serviceaccounts": "ServiceAccount", "deployments": "Deployment",
        "customresourcedefinitions": "CustomResourceDefinition",
    ]

    var derivedKind: String {
        if let k = ResourcePath.knownKinds[resource] { return k }
        var base = resource
        if base.hasSuffix("ies") { base = String(base.dropLast(3)) + "y" } else if base.hasSuffix("s") { base = String(base.dropLast()) }
        return base.prefix(1).uppercased() + base.dropFirst()
    }

    /// Resources that (like their real counterparts) have no status subresource: writes to
    /// the main resource may change status.
    var hasStatusSubresource: Bool {
        !["events", "leases", "services", "namespaces", "configmaps", "secrets", "endpoints", "serviceaccounts"].contains(resource)
    }
}

/// An object's place in its collection: namespace ("" when cluster-scoped) and name,
/// ordered as etcd orders keys (namespace, then name).
struct StoreKey: Hashable, Comparable, Sendable {
    var namespace: String
    var name: String
    static func < (a: StoreKey, b: StoreKey) -> Bool {
        a.namespace != b.namespace ? a.namespace < b.namespace : a.name < b.name
    }
}
