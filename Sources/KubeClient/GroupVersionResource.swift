/// A resource type of the API: its group (`""` for core), version, plural resource name and
/// whether its objects live in namespaces. `path` builds the REST path.
public struct GroupVersionResource: Hashable, Sendable {
    public var group: String
    public var version: String
    public var resource: String
    public var namespaced: Bool
    public init(group: String, version: String, resource: String, namespaced: Bool) {
        self.group = group; self.version = version; self.resource = resource; self.namespaced = namespaced
    }

    /// `/api/v1/namespaces/ns/pods/x/status`, `/apis/gantry.dev/v1alpha1/workloads` (all
    /// namespaces when `namespace` is nil). A namespace given for a cluster-scoped resource
    /// is ignored; a subresource without a name is ignored.
    public func path(namespace: String? = nil, name: String? = nil, subresource: String? = nil) -> String {
        var p = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace, !namespace.isEmpty { p += "/namespaces/\(namespace)" }
        p += "/\(resource)"
        if let name, !name.isEmpty {
            p += "/\(name)"
            if let subresource, !subresource.isEmpty { p += "/\(subresource)" }
        }
        return p
    }

    public static let pods = GroupVersionResource(group: "", version: "v1", resource: "pods", namespaced: true)
    public static let nodes = GroupVersionResource(group: "", version: "v1", resource: "nodes", namespaced: false)
    public static let events = GroupVersionResource(group: "", version: "v1", resource: "events", namespaced: true)
    public static let services = GroupVersionResource(group: "", version: "v1", resource: "services", namespaced: true)
    public static let namespaces = GroupVersionResource(group: "", version: "v1", resource: "namespaces", namespaced: false)
    public static let leases = GroupVersionResource(group: "coordination.k8s.io", version: "v1", resource: "leases", namespaced: true)
    public static let workloads = GroupVersionResource(group: "gantry.dev", version: "v1alpha1", resource: "workloads", namespaced: true)
    public static let queues = GroupVersionResource(group: "gantry.dev", version: "v1alpha1", resource: "queues", namespaced: false)
    /// Gantry's directory-mode Node kind, when applied to a cluster (ignored there, with a Warning).
    public static let gantryNodes = GroupVersionResource(group: "gantry.dev", version: "v1alpha1", resource: "nodes", namespaced: false)
    public static let resourcePools = GroupVersionResource(group: "gantry.dev", version: "v1alpha1", resource: "resourcepools", namespaced: false)
}
