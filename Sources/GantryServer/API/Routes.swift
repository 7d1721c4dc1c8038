import GantryAPI

/// One operation of the API, as data: the router registration, the auth check and the
/// OpenAPI document are all made from `APIRoute.all`, so none can miss a route.
struct APIRoute: Sendable {
    /// "GET", "POST", ...
    var method: String
    /// The path as the OpenAPI document writes it, custom verb included:
    /// "/api/v1/namespaces/{ns}/workloads/{name}:stop".
    var path: String
    var operationId: String
    /// nil: no authentication (the OpenAPI document).
    var minRole: Role?
    var summary: String
    var tag: String
    var query: [QueryParameter] = []
    var body: RequestBody?
    /// The 2xx status and the response.
    var status: Int = 200
    var response: ResponseBody

    struct QueryParameter: Sendable {
        var name: String
        var schema: Value
        var description: String
    }

    enum RequestBody: Sendable {
        /// JSON (a component schema name), optional when `required` is false.
        case json(String, required: Bool)
        /// JSON or YAML object (create).
        case manifest
        /// application/merge-patch+json or application/json.
        case mergePatch
    }

    enum ResponseBody: Sendable {
        case json(String)
        case text
        /// JSON (a component schema name), or with `watch=true` a stream of watch events
        /// (`application/x-ndjson`, one `WatchEvent` a line).
        case jsonOrWatch(String)
    }

    /// The custom verb after the last ':' of the last segment with a parameter ("stop"), or nil.
    var verb: String? {
        guard let last = path.split(separator: "/").last, last.hasPrefix("{"), let colon = last.lastIndex(of: ":") else { return nil }
        return String(last[last.index(after: colon)...])
    }

    /// The parameter that carries the verb ("name").
    var verbParameter: String? {
        guard verb != nil, let last = path.split(separator: "/").last, let close = last.firstIndex(of: "}") else { return nil }
        return String(last[last.index(after: last.startIndex)..<close])
    }

    /// The parameter of the router pattern's last segment, if it is one ("name" of
    /// ".../workloads/{name}"): where a custom verb would follow a colon.
    var lastPathParameter: String? {
        guard let last = routerPattern.split(separator: "/").last, last.hasPrefix("{"), last.hasSuffix("}") else { return nil }
        return String(last.dropFirst().dropLast())
    }

    /// The router pattern: the verb dropped from a parameter segment.
    var routerPattern: String {
        guard verb != nil, let colon = path.lastIndex(of: ":") else { return path }
        return String(path[..<colon])
    }

    /// Path parameters in order ("ns", "name", "rank").
    var pathParameters: [String] {
        path.split(separator: "/").compactMap { seg -> String? in
            guard seg.hasPrefix("{"), let close = seg.firstIndex(of: "}") else { return nil }
            return String(seg[seg.index(after: seg.startIndex)..<close])
        }
    }

    /// Routes grouped by router pattern, in table order.
    static func routerGroups() -> [(pattern: String, routes: [APIRoute])] {
        var out: [(pattern: String, routes: [APIRoute])] = []
        for r in all {
            if let i = out.firstIndex(where: { $0.pattern == r.routerPattern }) { out[i].routes.append(r) } else { out.append((r.routerPattern, [r])) }
        }
        return out
    }
}

// MARK: - Parameter schemas

private let stringSchema: Value = .object([.init("type", .string("string")), .init("minLength", .int(1))])
/// RFC 3339; the handlers also take a bare date or seconds since the epoch.
private let timeSchema: Value = .object([.init("type", .string("string")), .init("format", .string("date-time"))])
/// Any string (empty included).
private let anyString: Value = .object([.init("type", .string("string"))])
/// A comma-separated list of `values` (or nothing).
private func listPattern(_ values: [String]) -> Value {
    let alt = "(" + values.joined(separator: "|") + ")"
    return .object([.init("type", .string("string")), .init("pattern", .string("^(\(alt)(,\(alt))*)?$"))])
}
private let boolSchema: Value = .object([.init("type", .string("boolean"))])
private func intSchema(min: Int? = nil, max: Int? = nil) -> Value {
    var m: [Value.Member] = [.init("type", .string("integer"))]
    if let min { m.append(.init("minimum", .int(Int64(min)))) }
    if let max { m.append(.init("maximum", .int(Int64(max)))) }
    return .object(m)
}
private func enumSchema(_ values: [String]) -> Value {
    .object([.init("type", .string("string")), .init("enum", .array(values.map { .string($0) }))])
}

private typealias Q = APIRoute.QueryParameter

private let listParameters: [Q] = [
    Q(name: "phase", schema: listPattern(WorkloadPhase.allCases.map(\.rawValue)), description: "Workload phase (Pending, Running, Succeeded, Failed, Stopped, Updating); comma-separated for several"),
    Q(name: "type", schema: listPattern(WorkloadType.allCases.map(\.rawValue)), description: "Workload type"),
    Q(name: "queue", schema: stringSchema, description: "Queue name"),
    Q(name: "namespace", schema: stringSchema, description: "Namespace"),
    Q(name: "user", schema: stringSchema, description: "Submitter"),
    Q(name: "name", schema: anyString, description: "Name contains"),
    Q(name: "description", schema: anyString, description: "Description contains"),
    Q(name: "labels", schema: anyString, description: "Label selector (a=b,c!=d,e in (x,y))"),
    Q(name: "since", schema: timeSchema, description: "Created at or after (ISO 8601)"),
    Q(name: "until", schema: timeSchema, description: "Created at or before (ISO 8601)"),
    Q(name: "startedAfter", schema: timeSchema, description: "Started at or after (ISO 8601)"),
    Q(name: "startedBefore", schema: timeSchema, description: "Started at or before (ISO 8601)"),
    Q(name: "completedAfter", schema: timeSchema, description: "Completed at or after (ISO 8601)"),
    Q(name: "completedBefore", schema: timeSchema, description: "Completed at or before (ISO 8601)"),
    Q(name: "filterBy", schema: .object([.init("type", .string("string")), .init("pattern", .string(#"^[A-Za-z]+(==|!=|<=|>=|=@|!@|=\^|=\$)[^,]*(,[A-Za-z]+(==|!=|<=|>=|=@|!@|=\^|=\$)[^,]*)*$"#))]), description: "Comma-separated FIELD OP VALUE terms; operators == != <= >= =@ !@ =^ =$"),
    Q(name: "sortBy", schema: enumSchema(["name", "createdAt", "startedAt", "completedAt", "phase", "type", "queue", "priority", "gpus"]), description: "Sort field"),
    Q(name: "sortOrder", schema: enumSchema(["asc", "desc"]), description: "Sort order"),
    Q(name: "offset", schema: intSchema(min: 0), description: "Items to skip"),
    Q(name: "limit", schema: intSchema(min: 1, max: 1000), description: "Page size (default 50)"),
    Q(name: "continue", schema: anyString, description: "Opaque marker of the next page"),
    Q(name: "fields", schema: listPattern(ObjectView.workloadFields), description: "Comma-separated fields of a flat summary"),
    Q(name: "deleted", schema: boolSchema, description: "Include deleted and finished workloads kept in history"),
]

/// A list's watch (`WatchRequest`); the other list parameters that filter apply to events too.
private let watchParameters: [Q] = [
    Q(name: "watch", schema: boolSchema, description: "Stream changes as newline-delimited watch events (application/x-ndjson) instead of a list: {\"type\": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, \"object\"}. The list's filters apply; its sort, paging and fields do not"),
    Q(name: "resourceVersion", schema: .object([.init("type", .string("string")), .init("pattern", .string("^[0-9]{1,18}$"))]),
      description: "With watch: the metadata.resourceVersion of a list or of an event to continue from; missing or 0: ADDED for the whole selection first. Too old for the change feed: an ERROR event with a Status of code 410 (reason Expired): list again"),
    Q(name: "timeoutSeconds", schema: intSchema(min: 0, max: APIServer.watchDocumentedMaxSeconds),
      description: "With watch: end the stream after this many seconds (0 or missing: \(APIServer.watchDefaultSeconds)); a value above the daemon's --watch-max-seconds (default 1800) is cut to it; then watch again from the last resourceVersion"),
    Q(name: "allowWatchBookmarks", schema: boolSchema, description: "With watch: BOOKMARK events carry a newer resourceVersion when the changes read matched no object (and at the end)"),
]

private let logParameters: [Q] = [
    Q(name: "tail", schema: intSchema(min: 0), description: "The last N lines"),
    Q(name: "sinceSeconds", schema: intSchema(min: 0), description: "Lines of the last N seconds"),
    Q(name: "timestamps", schema: boolSchema, description: "Prefix each line with an RFC 3339 time"),
    Q(name: "follow", schema: boolSchema, description: "Stream until the replica ends or the client leaves"),
    Q(name: "limitBytes", schema: intSchema(min: 1), description: "Stop after this many bytes"),
]

private let eventParameters: [Q] = [
    Q(name: "since", schema: timeSchema, description: "Events last seen at or after (RFC 3339 or seconds since the epoch)"),
    Q(name: "until", schema: timeSchema, description: "Events last seen at or before (RFC 3339 or seconds since the epoch)"),
    Q(name: "limit", schema: intSchema(min: 1), description: "The newest N events"),
]

private let metricParameters: [Q] = [
    Q(name: "start", schema: timeSchema, description: "Start (ISO 8601 or seconds since the epoch; default an hour ago)"),
    Q(name: "end", schema: timeSchema, description: "End (ISO 8601 or seconds since the epoch; default now)"),
    Q(name: "step", schema: .object([.init("type", .string("number")), .init("exclusiveMinimum", .int(0)), .init("maximum", .int(31_622_400))]), description: "Seconds per sample (at most 11,000 samples in the range)"),
    Q(name: "numberOfSamples", schema: intSchema(min: 0, max: 1000), description: "Samples in the range (0 or missing: 60)"),
    Q(name: "metric", schema: stringSchema, description: "Only these metrics (comma-separated)"),
    Q(name: "gpu", schema: intSchema(min: 0), description: "Only this GPU index"),
    Q(name: "rank", schema: intSchema(min: 0), description: "Only this rank (training metrics)"),
]

extension APIRoute {
    static let all: [APIRoute] = {
        let w = "/api/v1/namespaces/{ns}/workloads/{name}"
        return [
            APIRoute(method: "GET", path: "/api/v1/openapi.json", operationId: "getOpenAPI", minRole: nil, summary: "This document", tag: "meta", response: .json("OpenAPI")),
            APIRoute(method: "GET", path: "/api/v1/whoami", operationId: "whoami", minRole: .viewer, summary: "The caller", tag: "meta", response: .json("WhoAmI")),
            APIRoute(method: "GET", path: "/api/v1/workloads", operationId: "listWorkloads", minRole: .viewer, summary: "Workloads of every namespace", tag: "workloads", query: listParameters + watchParameters, response: .jsonOrWatch("WorkloadList")),
            APIRoute(method: "GET", path: "/api/v1/workloads/count", operationId: "countWorkloads", minRole: .viewer, summary: "How many workloads match", tag: "workloads", query: listParameters, response: .json("Count")),
            APIRoute(method: "GET", path: "/api/v1/workloads/telemetry", operationId: "workloadTelemetry", minRole: .viewer, summary: "Workload counts and GPU allocation by group", tag: "workloads",
                     query: [Q(name: "groupBy", schema: enumSchema(["queue", "phase", "type", "namespace", "pool"]), description: "Grouping (default queue)")] + listParameters, response: .json("Telemetry")),
            APIRoute(method: "GET", path: "/api/v1/workloads/metadata", operationId: "workloadMetadata", minRole: .viewer, summary: "Values in use, for filters", tag: "workloads", response: .json("Metadata")),
            APIRoute(method: "POST", path: "/api/v1/workloads:batchStop", operationId: "batchStop", minRole: .editor, summary: "Stop several workloads", tag: "batch", body: .json("BatchRequest", required: true), response: .json("BatchResult")),
            APIRoute(method: "POST", path: "/api/v1/workloads:batchResume", operationId: "batchResume", minRole: .editor, summary: "Resume several workloads", tag: "batch", body: .json("BatchRequest", required: true), response: .json("BatchResult")),
            APIRoute(method: "POST", path: "/api/v1/workloads:batchDelete", operationId: "batchDelete", minRole: .editor, summary: "Delete several workloads", tag: "batch", body: .json("BatchRequest", required: true), response: .json("BatchResult")),
            APIRoute(method: "POST", path: "/api/v1/workloads:batchClone", operationId: "batchClone", minRole: .editor, summary: "Clone several workloads (name + suffix)", tag: "batch", body: .json("BatchRequest", required: true), response: .json("BatchResult")),
            APIRoute(method: "GET", path: "/api/v1/namespaces/{ns}/workloads", operationId: "listNamespacedWorkloads", minRole: .viewer, summary: "Workloads of a namespace", tag: "workloads", query: listParameters + watchParameters, response: .jsonOrWatch("WorkloadList")),
            APIRoute(method: "POST", path: "/api/v1/namespaces/{ns}/workloads", operationId: "createWorkload", minRole: .editor, summary: "Create a workload (Gantry's shape or seed 000's; JSON or YAML)", tag: "workloads", body: .manifest, status: 201, response: .json("Object")),
            APIRoute(method: "GET", path: w, operationId: "getWorkload", minRole: .viewer, summary: "A workload", tag: "workloads", response: .json("Object")),
            APIRoute(method: "PATCH", path: w, operationId: "patchWorkload", minRole: .editor, summary: "Merge-patch a workload", tag: "workloads", body: .mergePatch, response: .json("Object")),
            APIRoute(method: "DELETE", path: w, operationId: "deleteWorkload", minRole: .editor, summary: "Delete a workload", tag: "workloads", response: .json("Deleted")),
            APIRoute(method: "POST", path: w + ":stop", operationId: "stopWorkload", minRole: .editor, summary: "Stop a workload", tag: "workloads", response: .json("Object")),
            APIRoute(method: "POST", path: w + ":resume", operationId: "resumeWorkload", minRole: .editor, summary: "Resume a workload", tag: "workloads", response: .json("Object")),
            APIRoute(method: "POST", path: w + ":clone", operationId: "cloneWorkload", minRole: .editor, summary: "Clone a workload", tag: "workloads", body: .json("CloneRequest", required: false), status: 201, response: .json("Object")),
            APIRoute(method: "GET", path: w + "/replicas", operationId: "getReplicas", minRole: .viewer, summary: "Workload and replica hierarchy", tag: "replicas", response: .json("Hierarchy")),
            APIRoute(method: "GET", path: w + "/replicas/{rank}/logs", operationId: "getReplicaLogs", minRole: .viewer, summary: "A replica's log (text/plain; follow streams)", tag: "replicas", query: logParameters, response: .text),
            APIRoute(method: "GET", path: w + "/events", operationId: "getWorkloadEvents", minRole: .viewer, summary: "Events of a workload", tag: "events", query: eventParameters, response: .json("EventList")),
            APIRoute(method: "GET", path: w + "/replicas/{rank}/events", operationId: "getReplicaEvents", minRole: .viewer, summary: "Events naming a replica", tag: "events", query: eventParameters, response: .json("EventList")),
            APIRoute(method: "GET", path: w + "/metrics", operationId: "getWorkloadMetrics", minRole: .viewer, summary: "GPU series of a workload", tag: "metrics", query: metricParameters, response: .json("Metrics")),
            APIRoute(method: "GET", path: w + "/replicas/{rank}/metrics", operationId: "getReplicaMetrics", minRole: .viewer, summary: "GPU series of a replica's GPUs", tag: "metrics", query: metricParameters, response: .json("Metrics")),
            APIRoute(method: "GET", path: w + "/trainingMetrics", operationId: "getTrainingMetrics", minRole: .viewer, summary: "Training metrics (gantry.metric lines)", tag: "metrics", query: metricParameters, response: .json("Metrics")),
            APIRoute(method: "GET", path: "/api/v1/queues", operationId: "listQueues", minRole: .viewer, summary: "Queues with usage", tag: "queues", query: watchParameters, response: .jsonOrWatch("QueueList")),
            APIRoute(method: "POST", path: "/api/v1/queues", operationId: "createQueue", minRole: .admin, summary: "Create a queue", tag: "queues", body: .manifest, status: 201, response: .json("Queue")),
            APIRoute(method: "GET", path: "/api/v1/queues/{name}", operationId: "getQueue", minRole: .viewer, summary: "A queue with usage", tag: "queues", response: .json("Queue")),
            APIRoute(method: "PATCH", path: "/api/v1/queues/{name}", operationId: "patchQueue", minRole: .admin, summary: "Merge-patch a queue", tag: "queues", body: .mergePatch, response: .json("Queue")),
            APIRoute(method: "DELETE", path: "/api/v1/queues/{name}", operationId: "deleteQueue", minRole: .admin, summary: "Delete a queue", tag: "queues", response: .json("Deleted")),
            APIRoute(method: "GET", path: "/api/v1/queues/{name}/pending", operationId: "getQueuePending", minRole: .viewer, summary: "Pending workloads of a queue in order", tag: "queues", response: .json("PendingList")),
            APIRoute(method: "GET", path: "/api/v1/resourcepools", operationId: "listResourcePools", minRole: .viewer, summary: "Resource pools", tag: "pools", query: watchParameters, response: .jsonOrWatch("ObjectList")),
            APIRoute(method: "GET", path: "/api/v1/resourcepools/{name}", operationId: "getResourcePool", minRole: .viewer, summary: "A resource pool", tag: "pools", response: .json("Object")),
            APIRoute(method: "GET", path: "/api/v1/resourcepools/{name}/nodes", operationId: "listResourcePoolNodes", minRole: .viewer, summary: "Nodes of a pool with allocation", tag: "pools", response: .json("NodeList")),
            APIRoute(method: "GET", path: "/api/v1/nodes", operationId: "listNodes", minRole: .viewer, summary: "Nodes with allocation", tag: "nodes", response: .json("NodeList")),
            APIRoute(method: "GET", path: "/api/v1/nodes/{name}", operationId: "getNode", minRole: .viewer, summary: "A node with GPU allocation", tag: "nodes", response: .json("Node")),
        ]
    }()
}
