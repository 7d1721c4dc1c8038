import Foundation
import GantryAPI
import YAMLCodec

/// The commands only Gantry's API can carry out (they write objects, and a state directory
/// is the daemon's): without `--server` they say so.
func requireRemote(_ backend: Backend, _ command: String) throws -> RemoteClient {
    guard case .remote(let c) = backend else {
        throw UsageError("\(command) needs the daemon's HTTP API: pass --server URL (or set GANTRY_SERVER), with --token-file FILE when it asks for a token; in directory mode edit the manifests instead")
    }
    return c
}

/// `gantry create -f FILE [-f ...] [-n NS]`: each document of each file (YAML or JSON:
/// Gantry's manifests, a JSON array or List of them, or seed 000's request shape) is one
/// POST to its collection. The namespace is the document's, else `-n`, else `default`.
struct CreateCommand {
    var files: [String]
    var namespace: String?

    init(_ args: inout Args) throws {
        files = args.strings("filename") + args.positionals
        namespace = args.string("namespace")
        guard !files.isEmpty else { throw UsageError("create needs -f FILE (YAML or JSON; - for stdin)") }
    }

    /// The documents of one file, as values.
    static func documents(_ bytes: [UInt8], file: String) throws -> [Value] {
        let docs: [YAMLDocument]
        do { docs = try YAMLParser.parse(bytes) } catch { throw UsageError("\(file): \(error)") }
        var out: [Value] = []
        for d in docs {
            guard let root = d.root, !root.isNull else { continue }
            let v = root.toValue()
            if let items = v.arrayValue { out += items } else if v["kind"]?.stringValue == "List", let items = v["items"]?.arrayValue { out += items } else { out.append(v) }
        }
        return out
    }

    /// Where a document goes and what to call it: (collection path, label) or a reason it cannot.
    func target(_ doc: Value) -> Result<(path: String, kind: Kind, namespace: String), RemoteError> {
        let docNamespace = doc["metadata"]?["namespace"]?.stringValue ?? doc["namespace"]?.stringValue
        if let d = docNamespace, let n = namespace, d != n {
            return .failure(RemoteError(status: 400, code: "BadRequest", message: "the document's namespace \(d) does not match -n \(n)"))
        }
        let ns = docNamespace ?? namespace ?? "default"
        guard let kindName = doc["kind"]?.stringValue else {
            // Seed 000's request shape: a workload, translated by the server.
            return .success((RemoteClient.collection(.workload, namespace: ns), .workload, ns))
        }
        switch Kind(rawValue: kindName) {
        case .workload: return .success((RemoteClient.collection(.workload, namespace: ns), .workload, ns))
        case .queue: return .success((RemoteClient.collection(.queue, namespace: nil), .queue, ""))
        default:
            return .failure(RemoteError(status: 400, code: "BadRequest", message: "kind \(kindName): the API creates Workloads and Queues only"))
        }
    }

    func run(_ backend: Backend) throws -> Int32 {
        let client = try requireRemote(backend, "create")
        var failed = false
        for file in files {
            let bytes: [UInt8]
            if file == "-" {
                bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
            } else {
                guard let d = FileManager.default.contents(atPath: file) else { throw UsageError("-f: cannot read \(file)") }
                bytes = Array(d)
            }
            let docs = try CreateCommand.documents(bytes, file: file)
            if docs.isEmpty { errOut("gantry: \(file): no objects"); failed = true }
            for (i, doc) in docs.enumerated() {
                let label = docs.count > 1 ? "\(file) (document \(i + 1))" : file
                do {
                    let (path, kind, _) = try target(doc).get()
                    let created = try client.call("POST", path, body: doc)
                    let name = created["metadata"]?["name"]?.stringValue ?? doc["metadata"]?["name"]?.stringValue ?? "?"
                    let ns = created["metadata"]?["namespace"]?.stringValue ?? ""
                    out("\(kind.singular) \(kind.isNamespaced ? "\(ns)/\(name)" : name) created")
                } catch let e as RemoteError {
                    errOut("gantry: \(label): \(e)")
                    failed = true
                }
            }
        }
        return failed ? 1 : 0
    }
}

/// `gantry delete [workload|queue] NAME... [-n NS]` or `gantry delete workloads -l SELECTOR
/// -n NS`: through the API (a manifest-owned object is refused, naming its file).
struct DeleteCommand {
    var kind: Kind
    var names: [String]
    var namespace: String
    var selector: String?

    init(_ args: inout Args) throws {
        var pos = args.positionals
        var kind = Kind.workload
        if let first = pos.first, let k = Kind(cliName: first) { kind = k; pos.removeFirst() }
        guard kind == .workload || kind == .queue else { throw UsageError("delete: the API deletes workloads and queues") }
        self.kind = kind
        names = pos
        namespace = args.string("namespace") ?? "default"
        selector = args.string("selector")
        guard names.isEmpty != (selector == nil) else { throw UsageError("delete needs names or -l SELECTOR (not both): gantry delete workload NAME... -n NAMESPACE") }
        if selector != nil && kind != .workload { throw UsageError("delete -l: workloads only") }
    }

    func run(_ backend: Backend) throws -> Int32 {
        let client = try requireRemote(backend, "delete")
        if let selector {
            let r = try client.call("POST", "/api/v1/workloads:batchDelete", body: .object([.init("selector", .string(selector)), .init("namespace", .string(namespace))]))
            return BatchResult.report(r, selector: selector, namespace: namespace) { "workload \($0) deleted" }
        }
        var failed = false
        for name in names {
            let key = ObjectKey(kind, namespace: namespace, name: name)
            do {
                _ = try client.call("DELETE", RemoteClient.objectPath(kind, namespace: namespace, name: name))
                out("\(kind.singular) \(key.qualifiedName) deleted")
            } catch let e as RemoteError {
                errOut("gantry: \(kind.singular) \(key.qualifiedName): \(e)")
                failed = true
            }
        }
        return failed ? 1 : 0
    }
}

/// `gantry clone NAME --name NEW [-n NS]`: a new workload with NAME's spec, through the API.
struct CloneCommand {
    var key: ObjectKey
    var newName: String?

    init(_ args: inout Args) throws {
        key = try workloadArgument(&args, usage: "clone needs one workload name: gantry clone NAME --name NEW -n NAMESPACE")
        newName = args.string("name")
        if let n = newName, n.isEmpty { throw UsageError("--name: the new workload's name") }
    }

    func run(_ backend: Backend) throws -> Int32 {
        let client = try requireRemote(backend, "clone")
        var body: [Value.Member] = []
        if let newName { body.append(.init("name", .string(newName))) }
        let created = try client.call("POST", RemoteClient.workloadPath(key) + ":clone", body: .object(body))
        let name = created["metadata"]?["name"]?.stringValue ?? newName ?? "?"
        let ns = created["metadata"]?["namespace"]?.stringValue ?? key.namespace
        out("workload \(ns)/\(name) created (a clone of \(key.qualifiedName))")
        return 0
    }
}

/// The answer of a batch route: `{"results":[{"workload","status","error"?}],"succeeded","failed"}`.
enum BatchResult {
    /// Prints one line per workload (failures on stderr); 1 when any failed.
    static func report(_ r: Value, selector: String?, namespace: String?, done: (String) -> String) -> Int32 {
        let results = r["results"]?.arrayValue ?? []
        if results.isEmpty, let selector {
            errOut("No workloads\(namespace.map { " in namespace \($0)" } ?? "") match -l \(selector).")
            return 0
        }
        var failed = false
        for item in results {
            let w = item["workload"]?.stringValue ?? "?"
            let status = item["status"]?.intValue ?? 0
            if (200..<300).contains(status) {
                out(done(w))
            } else {
                let e = RemoteError(status: Int(clamping: status), code: item["error"]?["code"]?.stringValue ?? "",
                                    message: item["error"]?["message"]?.stringValue ?? "HTTP \(status)", field: item["error"]?["field"]?.stringValue)
                errOut("gantry: workload \(w): \(e)")
                failed = true
            }
        }
        return failed || (r["failed"]?.intValue ?? 0) > 0 ? 1 : 0
    }
}

extension SuspendCommand {
    /// `gantry stop|resume --server`: one name through its `:stop`/`:resume` route, several
    /// names or `-l` through the batch route.
    func runRemote(_ c: RemoteClient) throws -> Int32 {
        let how = "% set through the API"
        if names.count == 1, selector == nil, let key = keys.first {
            _ = try c.call("POST", RemoteClient.workloadPath(key) + ":" + verb)
            out(message(key, how: how))
            return 0
        }
        let route = "/api/v1/workloads:" + (verb == "stop" ? "batchStop" : "batchResume")
        let body: Value = selector.map { .object([.init("selector", .string($0)), .init("namespace", .string(namespace))]) }
            ?? .object([.init("workloads", .array(keys.map { .string($0.qualifiedName) }))])
        let r = try c.call("POST", route, body: body)
        return BatchResult.report(r, selector: selector, namespace: namespace) { w in
            let key = ObjectKey(parsing: "workload/" + w) ?? ObjectKey(.workload, namespace: namespace, name: w)
            return message(key, how: how)
        }
    }
}
