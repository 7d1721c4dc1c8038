/// A CustomResourceDefinition for one of Gantry's kinds in kube mode (group `gantry.dev`,
/// version `v1alpha1`, served and stored, with a `status` subresource). `toValue()` is the
/// object `kubectl apply` takes; `gantry crds` prints it and `Manifests/crds/` holds that
/// output. Gantry's `Node` kind has no CRD: kube mode reads the cluster's core Nodes.
public struct CRD: Sendable, Equatable {
    /// A column of `kubectl get`; priority 1 shows only with `-o wide`.
    public struct PrinterColumn: Sendable, Equatable {
        public var name: String
        public var type: String
        public var jsonPath: String
        public var description: String
        public var priority: Int
        public init(_ name: String, _ type: String, _ jsonPath: String, _ description: String, priority: Int = 0) {
            self.name = name; self.type = type; self.jsonPath = jsonPath; self.description = description; self.priority = priority
        }
    }

    public static let group = "gantry.dev"
    public static let version = "v1alpha1"

    public var kind: Kind
    public var shortNames: [String]
    public var spec: Schema
    public var status: Schema
    /// Whether the object must carry `spec` (the decoder rejects a Workload without one).
    public var specRequired: Bool
    public var printerColumns: [PrinterColumn]

    public var plural: String { kind.plural }
    public var name: String { "\(plural).\(CRD.group)" }
    /// The file under `Manifests/crds/` (controller-gen's naming).
    public var fileName: String { "\(CRD.group)_\(plural).yaml" }

    /// The whole `openAPIV3Schema`: apiVersion, kind, metadata (left to the API server, with
    /// Gantry's rule that names are DNS-1123 labels), spec and status.
    public var openAPIV3Schema: Schema {
        var root = Schema.object(nil, [
            .init("apiVersion", .string("APIVersion defines the versioned schema of this representation of an object.")),
            .init("kind", .string("Kind is a string value representing the REST resource this object represents.")),
            .init("metadata", Schema(type: .object)),
            .init("spec", spec),
            .init("status", status),
        ], required: specRequired ? ["spec"] : [])
        root.description = CRDs.kindDescription(kind)
        root.validations = [.init("size(self.metadata.name) <= 63 && self.metadata.name.matches('\(CRDs.dnsLabelPattern)')",
                                  "metadata.name must be a DNS-1123 label: \(ManifestDecoder.dns1123Label)")]
        return root
    }

    public func toValue() -> Value {
        let names: [Value.Member] = [
            .init("kind", .string(kind.rawValue)),
            .init("listKind", .string(kind.rawValue + "List")),
            .init("plural", .string(plural)),
            .init("singular", .string(kind.singular)),
            .init("shortNames", .array(shortNames.map { .string($0) })),
            .init("categories", .array([.string("gantry")])),
        ]
        let columns: [Value] = printerColumns.map { c in
            var m: [Value.Member] = [.init("name", .string(c.name)), .init("type", .string(c.type)), .init("jsonPath", .string(c.jsonPath)),
                                     .init("description", .string(c.description))]
            if c.priority != 0 { m.append(.init("priority", .int(Int64(c.priority)))) }
            return .object(m)
        }
        let version: Value = .object([
            .init("name", .string(CRD.version)),
            .init("served", .bool(true)),
            .init("storage", .bool(true)),
            .init("subresources", .object([.init("status", .object([]))])),
            .init("additionalPrinterColumns", .array(columns)),
            .init("schema", .object([.init("openAPIV3Schema", openAPIV3Schema.toValue())])),
        ])
        return .object([
            .init("apiVersion", .string("apiextensions.k8s.io/v1")),
            .init("kind", .string("CustomResourceDefinition")),
            .init("metadata", .object([.init("name", .string(name)),
                                       .init("labels", .object([.init("app.kubernetes.io/name", .string("gantry"))]))])),
            .init("spec", .object([
                .init("group", .string(CRD.group)),
                .init("names", .object(names)),
                .init("scope", .string(kind.isNamespaced ? "Namespaced" : "Cluster")),
                .init("versions", .array([version])),
            ])),
        ])
    }
}
