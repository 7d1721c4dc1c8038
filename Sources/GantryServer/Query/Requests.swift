import GantryAPI

// OWNER: query helper. Signatures are a contract; bodies are stubs until that branch lands.

/// Create bodies: JSON or YAML; Gantry's shape (apiVersion/kind/metadata/spec) or seed 000's
/// request shape (translated). `namespace` is the path's (a body naming another: 400).
/// Errors are 400 naming the field.
public enum CreateRequest {
    public static func decode(_ body: [UInt8], kind: Kind, namespace: String) throws(APIError) -> ManifestObject {
        throw APIError(501, "NotImplemented", "create is not implemented yet")
    }
}

/// JSON merge patches (RFC 7386) of an object. Workloads: metadata.labels, metadata.annotations,
/// spec.priority, spec.replicas, spec.resources, spec.image, spec.description, spec.timeout,
/// spec.env (anything else: 400 naming it). Queues: metadata.labels/annotations and any spec field.
/// The result is decoded and validated like a manifest.
public enum ObjectPatch {
    public static func apply(_ patch: [UInt8], to object: ManifestObject) throws(APIError) -> ManifestObject {
        throw APIError(501, "NotImplemented", "patch is not implemented yet")
    }
}

/// :clone bodies: {"name": "new-name", "namespace": "optional", "overrides": {merge patch as above}}
/// (name missing: `<name>-clone-<n>` chosen by the caller with `existing`).
public enum CloneRequest {
    public static func apply(_ body: [UInt8], to object: ManifestObject, existing: (ObjectKey) -> Bool) throws(APIError) -> ManifestObject {
        throw APIError(501, "NotImplemented", "clone is not implemented yet")
    }
}

/// Metric query parameters (seed 001 / 002): start, end (ISO 8601 or seconds since the epoch;
/// default the last hour), step (seconds) or numberOfSamples (default 60 samples).
public struct MetricQuery: Sendable, Equatable {
    public var start: Double
    public var end: Double
    public var step: Double
    public init(start: Double, end: Double, step: Double) { self.start = start; self.end = end; self.step = step }
    public static func parse(_ query: [(String, String)], now: Double) throws(APIError) -> MetricQuery {
        throw APIError(501, "NotImplemented", "metric queries are not implemented yet")
    }
    /// Averages samples per step bucket [start + k*step, start + (k+1)*step); empty buckets omitted.
    public func aggregate(_ series: [MetricSeries]) -> [MetricSeries] { [] }
}
