import GantryAPI

/// The OpenAPI 3.1 document of `/api/v1`, made from `APIRoute.all` and the component
/// schemas below (which describe what the handlers and `ObjectView` write).
public enum OpenAPIDocument {
    public static func json() -> String { cached }
    static let cached: String = JSON.encode(value)

    static var value: Value {
        var paths: [Value.Member] = []
        for r in APIRoute.all {
            let op = operation(r)
            if let i = paths.firstIndex(where: { $0.key == r.path }), case .object(var ms) = paths[i].value {
                ms.append(.init(r.method.lowercased(), op))
                paths[i].value = .object(ms)
            } else {
                paths.append(.init(r.path, .object([.init(r.method.lowercased(), op)])))
            }
        }
        return .object([
            .init("openapi", .string("3.1.0")),
            .init("info", .object([
                .init("title", .string("Gantry API")), .init("version", .string("v1")),
                .init("description", .string("Workloads, queues, resource pools and nodes of a Gantry daemon. Errors: {\"error\":{\"status\",\"code\",\"message\",\"field\"?}}. Custom methods follow a colon (/workloads/{name}:stop).")),
            ])),
            .init("servers", .array([.object([.init("url", .string("/"))])])),
            .init("security", .array([.object([.init("bearer", .array([]))])])),
            .init("paths", .object(paths)),
            .init("components", .object([
                .init("securitySchemes", .object([.init("bearer", .object([.init("type", .string("http")), .init("scheme", .string("bearer"))]))])),
                .init("schemas", .object(schemas)),
            ])),
        ])
    }

    static func operation(_ r: APIRoute) -> Value {
        var params: [Value] = r.pathParameters.map { p in
            .object([
                .init("name", .string(p)), .init("in", .string("path")), .init("required", .bool(true)),
                .init("schema", p == "rank" ? .object([.init("type", .string("integer")), .init("minimum", .int(0)), .init("maximum", .int(Int64(APIServer.maxRank)))]) : dnsLabel),
            ])
        }
        for q in r.query {
            params.append(.object([
                .init("name", .string(q.name)), .init("in", .string("query")), .init("required", .bool(false)),
                .init("description", .string(q.description)), .init("schema", q.schema),
            ]))
        }
        var m: [Value.Member] = [
            .init("operationId", .string(r.operationId)), .init("summary", .string(r.summary)),
            .init("tags", .array([.string(r.tag)])),
        ]
        if let role = r.minRole {
            m.append(.init("description", .string("Needs the \(role.name) role\(r.pathParameters.contains("ns") ? " in the namespace" : "").")))
        } else {
            m.append(.init("security", .array([])))
        }
        if !params.isEmpty { m.append(.init("parameters", .array(params))) }
        if let body = r.body {
            let content: [Value.Member]
            var required = true
            switch body {
            case .json(let name, let req):
                required = req
                content = [.init("application/json", .object([.init("schema", ref(name))]))]
            case .manifest:
                content = [
                    .init("application/json", .object([.init("schema", ref("ManifestBody"))])),
                    .init("application/yaml", .object([.init("schema", string)])),
                ]
            case .mergePatch:
                content = [
                    .init("application/merge-patch+json", .object([.init("schema", ref("MergePatch"))])),
                    .init("application/json", .object([.init("schema", ref("MergePatch"))])),
                ]
            }
            m.append(.init("requestBody", .object([.init("required", .bool(required)), .init("content", .object(content))])))
        }
        let ok: Value
        switch r.response {
        case .json(let name):
            ok = .object([.init("description", .string(r.summary)), .init("content", .object([.init("application/json", .object([.init("schema", ref(name))]))]))])
        case .text:
            ok = .object([.init("description", .string(r.summary)), .init("content", .object([.init("text/plain", .object([.init("schema", string)]))]))])
        case .jsonOrWatch(let name):
            ok = .object([.init("description", .string(r.summary + "; with watch=true, newline-delimited watch events")), .init("content", .object([
                .init("application/json", .object([.init("schema", ref(name))])),
                .init(APIServer.watchContentType, .object([.init("schema", ref("WatchEvent"))])),
            ]))])
        }
        let error: Value = .object([
            .init("description", .string("An error: 400 bad request, 401 no or wrong token, 403 role or namespace, 404, 405, 409 conflict, 413, 415, 5xx")),
            .init("content", .object([.init("application/json", .object([.init("schema", ref("Error"))]))])),
        ])
        m.append(.init("responses", .object([.init(String(r.status), ok), .init("default", error)])))
        return .object(m)
    }

    // MARK: - Schema building

    static let string: Value = .object([.init("type", .string("string"))])
    /// Object names and namespaces.
    static let dnsLabel: Value = .object([
        .init("type", .string("string")), .init("pattern", .string("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")), .init("maxLength", .int(63)),
    ])
    static let integer: Value = .object([.init("type", .string("integer"))])
    static let number: Value = .object([.init("type", .string("number"))])
    static let boolean: Value = .object([.init("type", .string("boolean"))])
    static let anyObject: Value = .object([.init("type", .string("object"))])
    static func nullable(_ type: String) -> Value { .object([.init("type", .array([.string(type), .string("null")]))]) }
    static func ref(_ name: String) -> Value { .object([.init("$ref", .string("#/components/schemas/\(name)"))]) }
    static func array(_ items: Value) -> Value { .object([.init("type", .string("array")), .init("items", items)]) }
    static func enumeration(_ values: [String]) -> Value { .object([.init("type", .string("string")), .init("enum", .array(values.map { .string($0) }))]) }
    static func map(_ values: Value) -> Value { .object([.init("type", .string("object")), .init("additionalProperties", values)]) }
    static func object(_ props: [(String, Value)], required: [String] = [], closed: Bool = false) -> Value {
        var m: [Value.Member] = [.init("type", .string("object")), .init("properties", .object(props.map { .init($0.0, $0.1) }))]
        if !required.isEmpty { m.append(.init("required", .array(required.map { .string($0) }))) }
        if closed { m.append(.init("additionalProperties", .bool(false))) }
        return .object(m)
    }

    /// A quantity: a whole number or a string ("500m", "16Gi").
    static let quantity: Value = .object([.init("type", .array([.string("integer"), .string("string")]))])

    /// The object shape (`ObjectView.object`), plus `extra` properties (required when listed).
    static func objectSchema(extra: [(String, Value)] = [], required extraRequired: [String] = []) -> Value {
        object([
            ("apiVersion", enumeration([gantryAPIVersion])),
            ("kind", enumeration(Kind.allCases.map(\.rawValue))),
            ("metadata", ref("ObjectMeta")),
            ("spec", anyObject),
            ("status", anyObject),
            ("owner", enumeration(["manifest", "api", "cluster", "system"])),
            ("source", string),
            ("deletedAt", string),
        ] + extra, required: ["apiVersion", "kind", "metadata", "spec", "owner"] + extraRequired, closed: true)
    }

    static var schemas: [Value.Member] {
        let errorBody = object([("status", integer), ("code", string), ("message", string), ("field", string)],
                               required: ["status", "code", "message"], closed: true)
        let telemetryGroup = object([("key", string), ("workloads", integer), ("gpus", integer), ("allocatedGPUs", integer), ("phases", map(integer))],
                                    required: ["workloads", "gpus", "allocatedGPUs", "phases"], closed: true)
        let replica = object([
            ("name", string), ("rank", integer), ("node", string), ("gpus", array(integer)), ("gpuCount", integer), ("phase", string),
            ("exitCode", nullable("integer")), ("restarts", integer), ("startTime", nullable("string")), ("pid", nullable("integer")),
        ], required: ["name", "rank", "node", "gpus", "phase"], closed: true)
        let event = object([
            ("type", string), ("reason", string), ("message", string), ("kind", string), ("namespace", string), ("name", string),
            ("count", integer), ("firstTimestamp", string), ("lastTimestamp", string),
        ], required: ["type", "reason", "message", "kind", "namespace", "name", "count", "firstTimestamp", "lastTimestamp"], closed: true)
        let series = object([
            ("metric", string), ("gpu", nullable("integer")), ("rank", nullable("integer")),
            ("samples", array(.object([.init("type", .string("array")), .init("items", nullable("number"))]))),
        ], required: ["metric", "gpu", "rank", "samples"], closed: true)
        let usage = object([("allocated", map(quantity)), ("borrowed", map(quantity)), ("pending", integer), ("admitted", integer), ("running", integer)],
                           required: ["allocated", "borrowed", "pending", "admitted", "running"], closed: true)
        let allocation = object([("gpus", array(object([("index", integer), ("workload", nullable("string"))], required: ["index", "workload"], closed: true)))],
                                required: ["gpus"], closed: true)
        // The change feed's position a list's items are consistent with (watch from it); left
        // out by a backend without a feed.
        let listMeta = object([("resourceVersion", string)], closed: true)
        return [
            .init("Error", object([("error", errorBody)], required: ["error"], closed: true)),
            .init("ErrorBody", errorBody),
            .init("ObjectMeta", object([
                ("name", string), ("namespace", string), ("uid", string), ("generation", integer), ("creationTimestamp", string),
                ("labels", map(string)), ("annotations", map(string)), ("resourceVersion", string),
            ], required: ["name"], closed: true)),
            .init("Object", objectSchema()),
            .init("ObjectList", object([("items", array(ref("Object"))), ("metadata", listMeta)], required: ["items"], closed: true)),
            .init("WorkloadList", object([
                ("items", array(anyObject)), ("totalCount", integer), ("offset", integer), ("limit", integer), ("continue", string),
                ("metadata", listMeta),
            ], required: ["items", "totalCount", "offset", "limit"], closed: true)),
            .init("WatchEvent", object([
                ("type", enumeration(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"])),
                // An object as GET returns it with metadata.resourceVersion (the feed sequence it
                // was read at); DELETED of an object never sent: apiVersion, kind, metadata only;
                // BOOKMARK: metadata.resourceVersion only; ERROR: a Status (code 410, reason Expired: list again).
                ("object", anyObject),
            ], required: ["type", "object"], closed: true)),
            .init("Count", object([("count", integer)], required: ["count"], closed: true)),
            .init("Telemetry", object([("groupBy", string), ("groups", array(telemetryGroup)), ("totals", telemetryGroup)], required: ["groupBy", "groups"], closed: true)),
            .init("Metadata", object([
                ("phases", array(string)), ("types", array(string)), ("kinds", array(string)), ("queues", array(string)),
                ("namespaces", array(string)), ("users", array(string)), ("priorities", array(integer)),
                ("allPhases", array(string)), ("allTypes", array(string)),
            ], required: ["phases", "types", "queues", "namespaces", "users"])),
            .init("BatchRequest", .object([.init("oneOf", .array([
                object([("workloads", .object([.init("type", .string("array")), .init("maxItems", .int(10_000)),
                                               .init("items", .object([.init("type", .string("string")), .init("pattern", .string("^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]))])),
                        ("suffix", .object([.init("type", .string("string")), .init("pattern", .string("^[-a-z0-9]+$"))]))],
                       required: ["workloads"], closed: true),
                object([("selector", .object([.init("type", .string("string")), .init("minLength", .int(1))])), ("namespace", dnsLabel),
                        ("suffix", .object([.init("type", .string("string")), .init("pattern", .string("^[-a-z0-9]+$"))]))],
                       required: ["selector"], closed: true),
            ]))])),
            .init("BatchResult", object([
                ("results", array(object([("workload", string), ("status", integer), ("error", errorBody)], required: ["workload", "status"], closed: true))),
                ("succeeded", integer), ("failed", integer),
            ], required: ["results", "succeeded", "failed"], closed: true)),
            .init("CloneRequest", object([("name", dnsLabel), ("namespace", dnsLabel), ("overrides", ref("MergePatch"))], closed: true)),
            .init("ManifestBody", object([("apiVersion", string), ("kind", string), ("metadata", anyObject), ("spec", anyObject)])),
            .init("MergePatch", object([
                ("metadata", object([("labels", map(nullable("string"))), ("annotations", map(nullable("string")))], closed: true)),
                ("spec", anyObject),
            ], closed: true)),
            .init("Deleted", object([("deleted", string)], required: ["deleted"], closed: true)),
            .init("Hierarchy", object([
                ("workload", object([
                    ("kind", string), ("name", string), ("namespace", string), ("uid", string), ("type", string), ("phase", string),
                    ("replicas", integer), ("gpus", integer), ("queue", string),
                ], required: ["name", "namespace", "phase"])),
                ("replicas", array(replica)),
            ], required: ["workload", "replicas"], closed: true)),
            .init("Replica", replica),
            .init("Event", event),
            .init("EventList", object([("items", array(ref("Event")))], required: ["items"], closed: true)),
            .init("Metrics", object([("workload", string), ("start", number), ("end", number), ("step", number), ("series", array(series))],
                                    required: ["workload", "start", "end", "step", "series"], closed: true)),
            .init("WhoAmI", object([("user", string), ("role", enumeration(Role.allCases.map(\.name))), ("namespaces", .object([.init("type", .array([.string("array"), .string("null")])), .init("items", string)])), ("mode", string)],
                                   required: ["user", "role", "namespaces", "mode"], closed: true)),
            .init("Queue", objectSchema(extra: [("usage", usage)], required: ["usage"])),
            .init("QueueList", object([("items", array(ref("Queue"))), ("metadata", listMeta)], required: ["items"], closed: true)),
            .init("PendingList", object([("items", array(object([
                ("workload", string), ("position", integer), ("priority", integer), ("gpus", integer), ("reason", string),
            ], required: ["workload", "position", "priority", "gpus", "reason"], closed: true)))], required: ["items"], closed: true)),
            .init("Node", objectSchema(extra: [("allocation", allocation)], required: ["allocation"])),
            .init("NodeList", object([("items", array(ref("Node")))], required: ["items"], closed: true)),
            .init("OpenAPI", object([("openapi", string), ("info", anyObject), ("paths", anyObject), ("components", anyObject)], required: ["openapi", "info", "paths"])),
        ]
    }
}
