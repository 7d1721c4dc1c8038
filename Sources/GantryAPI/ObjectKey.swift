/// The four kinds Gantry reconciles.
public enum Kind: String, Sendable, CaseIterable, Comparable {
    case queue = "Queue"
    case workload = "Workload"
    case node = "Node"
    case resourcePool = "ResourcePool"

    public static func < (a: Kind, b: Kind) -> Bool { a.order < b.order }
    var order: Int { switch self { case .resourcePool: 0; case .node: 1; case .queue: 2; case .workload: 3 } }

    /// Workloads live in namespaces; the other kinds are cluster-scoped.
    public var isNamespaced: Bool { self == .workload }
    /// Lower-case plural used on the command line and in keys: `workloads`.
    public var plural: String {
        switch self { case .queue: "queues"; case .workload: "workloads"; case .node: "nodes"; case .resourcePool: "resourcepools" }
    }
    public var singular: String { rawValue.lowercased() }

    /// Accepts `workload`, `workloads`, `wl`, `Workload`, `queue(s)`, `q`, `node(s)`, `no`,
    /// `resourcepool(s)`, `pool(s)`, `rp`.
    public init?(cliName: String) {
        switch cliName.lowercased() {
        case "workload", "workloads", "wl": self = .workload
        case "queue", "queues", "q": self = .queue
        case "node", "nodes", "no": self = .node
        case "resourcepool", "resourcepools", "pool", "pools", "rp": self = .resourcePool
        default: return nil
        }
    }
}

/// Identity of an object: (kind, namespace, name). Namespace is "" for cluster-scoped kinds.
/// Its string form `workload/team-a/llama-7b` or `queue/research` is the work-queue key.
public struct ObjectKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let kind: Kind
    public let namespace: String
    public let name: String
    /// Hashed once: keys go into many dictionaries and sets, and re-hashing two strings for
    /// each lookup was a large part of applying a big directory.
    private let digest: Int

    public init(_ kind: Kind, namespace: String = "", name: String) {
        self.kind = kind; self.namespace = kind.isNamespaced ? namespace : ""; self.name = name
        var h = Hasher()
        h.combine(kind)
        h.combine(self.namespace)
        h.combine(name)
        digest = h.finalize()
    }
    public static func == (a: ObjectKey, b: ObjectKey) -> Bool {
        a.digest == b.digest && a.kind == b.kind && a.name == b.name && a.namespace == b.namespace
    }
    public func hash(into h: inout Hasher) { h.combine(digest) }
    /// `namespace/name` for namespaced kinds, `name` otherwise: how messages name an object.
    public var qualifiedName: String { kind.isNamespaced ? "\(namespace)/\(name)" : name }

    public var description: String {
        kind.isNamespaced ? "\(kind.singular)/\(namespace)/\(name)" : "\(kind.singular)/\(name)"
    }
    public static func < (a: ObjectKey, b: ObjectKey) -> Bool {
        if a.kind != b.kind { return a.kind < b.kind }
        if a.namespace != b.namespace { return a.namespace < b.namespace }
        return a.name < b.name
    }
    /// Parses `workload/ns/name`, `workload/name` (namespace "default"), `queue/name`.
    public init?(parsing s: String) {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, let kind = Kind(cliName: first) else { return nil }
        if kind.isNamespaced {
            if parts.count == 3 { self.init(kind, namespace: parts[1], name: parts[2]) } else if parts.count == 2 { self.init(kind, namespace: "default", name: parts[1]) } else { return nil }
        } else {
            guard parts.count == 2 else { return nil }
            self.init(kind, name: parts[1])
        }
    }
}
