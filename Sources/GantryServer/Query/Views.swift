import GantryAPI

// OWNER: query helper. Signatures are a contract; bodies are stubs until that branch lands.

/// JSON forms of objects.
public enum ObjectView {
    /// The whole object, any kind: {"apiVersion","kind","metadata","spec","status","owner"}
    /// (+ "source": "file:line" for manifest-owned, + "deletedAt" for history entries).
    public static func object(_ o: APIObject) -> Value { .null }

    /// A workload's flat summary with only `fields` (seed 004's field list and Gantry's:
    /// id, name, namespace, type, queue, status, phase, priority, gpus, replicas, user,
    /// description, displayName, image, command, args, env, labels, annotations, acceptTime,
    /// createdAt, startTime, startedAt, finishTime, completedAt, message, queuePosition,
    /// resources, runtime, distributedRuntime, owner); unknown field: 400 naming it.
    public static func fields(_ o: APIObject, _ fields: [String]) throws(APIError) -> Value { .null }

    public static let workloadFields: [String] = []

    /// The replica hierarchy of a workload (seed 001): {"workload": {...summary}, "replicas":
    /// [{"name","rank","node","gpus","gpuCount","phase","exitCode","restarts","startTime","pid"}]}.
    public static func hierarchy(_ o: APIObject) -> Value { .null }
}

/// Seed 002's telemetry: workload counts and GPU allocation grouped by queue, phase, type,
/// namespace or pool: {"groupBy":"queue","groups":[{"key":"q1","workloads":3,"gpus":8,
/// "allocatedGPUs":8,"phases":{"Running":2,"Pending":1}}]}. 400 for another groupBy.
public enum Telemetry {
    public static func group(_ workloads: [APIObject], nodes: [APIObject], by: String) throws(APIError) -> Value { .null }
}

/// Seed 001's filter metadata: the phases, types, queues, namespaces, users and priorities in use.
public enum WorkloadMetadata {
    public static func of(_ workloads: [APIObject]) -> Value { .null }
}
