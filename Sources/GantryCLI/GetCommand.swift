import Foundation
import GantryAPI
import StateStore
import ControllerRuntime
import YAMLCodec

/// `gantry get KIND [NAME] [-n NS | -A] [-o wide|yaml|json|name] [-w] [filters]`.
struct GetCommand {
    var kind: Kind
    var name: String?
    var namespace: String?
    var allNamespaces = false
    var output = ""
    var watch = false
    var phases: Set<String> = []
    var types: Set<String> = []
    var queues: Set<String> = []
    var nameContains: String?
    var selectors: [(key: String, op: String, value: String)] = []
    var since: Timestamp?
    var until: Timestamp?
    var sortBy = "name"
    var descending = false
    var limit: Int?
    var offset = 0

    init(_ args: inout Args) throws {
        guard let k = args.positionals.first else { throw UsageError("get needs a kind: workloads, queues, nodes or resourcepools") }
        var kindArg = k
        var nameArg = args.positionals.count > 1 ? args.positionals[1] : nil
        if let slash = k.firstIndex(of: "/") { kindArg = String(k[..<slash]); nameArg = String(k[k.index(after: slash)...]) }
        guard let kind = Kind(cliName: kindArg) else { throw UsageError("unknown kind \"\(kindArg)\"; expected workloads, queues, nodes or resourcepools") }
        self.kind = kind
        name = nameArg
        namespace = args.string("namespace")
        allNamespaces = args.bool("all-namespaces")
        output = args.string("output") ?? ""
        guard ["", "wide", "yaml", "json", "name"].contains(output) else { throw UsageError("-o: expected wide, yaml, json or name, got \"\(output)\"") }
        watch = args.bool("watch")
        func set(_ name: String) -> Set<String> { Set(args.strings(name).flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }) }
        phases = set("phase"); types = set("type"); queues = set("queue")
        nameContains = args.string("name-contains")
        selectors = GetCommand.selectors(args.strings("selector"))
        since = try args.string("since").map { try GetCommand.time($0, "since") }
        until = try args.string("until").map { try GetCommand.time($0, "until") }
        sortBy = args.string("sort-by") ?? "name"
        guard ["name", "creationTime", "creationtime", "priority", "gpus", "age"].contains(sortBy) else { throw UsageError("--sort-by: expected creationTime, priority, name or gpus") }
        let order = args.string("order") ?? (sortBy == "priority" || sortBy == "gpus" ? "desc" : "asc")
        guard order == "asc" || order == "desc" else { throw UsageError("--order: expected asc or desc") }
        descending = order == "desc"
        limit = try args.int("limit")
        offset = try args.int("offset") ?? 0
    }

    /// `-l` terms: `k=v`, `k==v`, `k!=v`, `k` (exists), `!k` (absent); commas separate terms.
    static func selectors(_ flags: [String]) -> [(key: String, op: String, value: String)] {
        var out: [(key: String, op: String, value: String)] = []
        for sel in flags.flatMap({ $0.split(separator: ",").map(String.init) }) {
            if let r = sel.range(of: "!=") { out.append((String(sel[..<r.lowerBound]), "!=", String(sel[r.upperBound...]))) } else if let r = sel.range(of: "==") { out.append((String(sel[..<r.lowerBound]), "=", String(sel[r.upperBound...]))) } else if let r = sel.range(of: "=") { out.append((String(sel[..<r.lowerBound]), "=", String(sel[r.upperBound...]))) } else if sel.hasPrefix("!") { out.append((String(sel.dropFirst()), "!exists", "")) } else { out.append((sel, "exists", "")) }
        }
        return out
    }

    /// Whether `labels` satisfy every term.
    static func matches(_ labels: [String: String], _ selectors: [(key: String, op: String, value: String)]) -> Bool {
        for s in selectors {
            switch s.op {
            case "=": if labels[s.key] != s.value { return false }
            case "!=": if labels[s.key] == s.value { return false }
            case "exists": if labels[s.key] == nil { return false }
            default: if labels[s.key] != nil { return false }
            }
        }
        return true
    }

    /// RFC 3339 time, a date, or a duration meaning "that long ago" (`2h`).
    static func time(_ s: String, _ flag: String) throws -> Timestamp {
        if let t = Timestamp(rfc3339: s) { return t }
        if let d = parseDuration(s) { return Timestamp(secondsSince1970: SystemClock().now() - d) }
        throw UsageError("--\(flag): expected an RFC 3339 time (2026-01-15T10:31:00Z), a date, or a duration ago (2h), got \"\(s)\"")
    }

    /// The namespace read: nil for all namespaces and cluster-scoped kinds.
    var selectedNamespace: String? { (allNamespaces || !kind.isNamespaced) ? nil : (namespace ?? "default") }

    /// The workload page this command asks for, as the state directory's index answers it.
    var pageQuery: WorkloadPageQuery {
        var q = WorkloadPageQuery()
        q.namespace = selectedNamespace
        q.phases = phases; q.types = types; q.queues = queues
        q.nameContains = nameContains
        q.selectors = selectors
        q.createdFrom = since?.seconds
        q.createdTo = until?.seconds
        switch sortBy {
        case "creationTime", "creationtime", "age": q.sort = .creationTime
        case "priority": q.sort = .priority
        case "gpus": q.sort = .gpus
        default: q.sort = .name
        }
        q.descending = descending
        q.offset = offset
        q.limit = limit
        return q
    }

    /// The selected objects: a workload listing from a state directory is filtered, sorted
    /// and cut in SQLite through the workload index (a page costs a page); anything else is
    /// read whole and filtered here.
    func select(_ reader: any ObjectReader) throws -> [StoredObject] {
        if kind == .workload, name == nil, let state = reader as? StateReader, let rows = try state.workloadPage(pageQuery) {
            return rows.map(StoredObject.init)
        }
        return try selectInMemory(reader)
    }

    /// Whether an object passes every filter but the namespace.
    func matches(_ o: StoredObject) -> Bool {
        if !phases.isEmpty && !phases.contains(o.phase.lowercased()) { return false }
        if !types.isEmpty && !types.contains((o.spec["type"]?.stringValue ?? "").lowercased()) { return false }
        if !queues.isEmpty && !queues.contains((o.spec["queue"]?.stringValue ?? "").lowercased()) { return false }
        if let nc = nameContains, !o.key.name.lowercased().contains(nc.lowercased()) && !(o.spec["displayName"]?.stringValue ?? "").lowercased().contains(nc.lowercased()) { return false }
        if !GetCommand.matches(o.labels, selectors) { return false }
        if let since, o.creation < since { return false }
        if let until, o.creation > until { return false }
        return true
    }

    /// Reads every object of the kind (in the namespace), then filters, sorts and pages here.
    func selectInMemory(_ reader: any ObjectReader) throws -> [StoredObject] {
        var items = try reader.objects(kind: kind, namespace: selectedNamespace, name: name).map(StoredObject.init)
        items = items.filter(matches)
        func less(_ a: StoredObject, _ b: StoredObject) -> Bool {
            switch sortBy {
            case "creationTime", "creationtime", "age": return a.creation != b.creation ? a.creation < b.creation : a.key < b.key
            case "priority": return a.priority != b.priority ? a.priority < b.priority : a.key < b.key
            case "gpus": return a.totalGPUs != b.totalGPUs ? a.totalGPUs < b.totalGPUs : a.key < b.key
            default: return a.key < b.key
            }
        }
        items.sort { descending ? less($1, $0) : less($0, $1) }
        if offset > 0 { items = Array(items.dropFirst(offset)) }
        if let limit { items = Array(items.prefix(limit)) }
        return items
    }

    func run(_ backend: Backend) throws -> Int32 {
        let reader = try backend.reader()
        // The change feed's position is read before the listing, so no change is missed.
        let feedStart = watch ? (reader as? StateReader).flatMap { try? $0.lastChangeSeq() } : nil
        if output == "name", !watch, kind == .workload, name == nil, let state = reader as? StateReader,
           let lines = try state.workloadNameLines(pageQuery, prefix: "\(kind.singular)/") {
            // Names only: read from the index alone, no object is parsed, no key built.
            if !lines.isEmpty { lines.withUnsafeBytes { FileHandle.standardOutput.write(Data($0)) } }
            return 0
        }
        let items = try select(reader)
        if let name, items.isEmpty, !watch {
            let ns = kind.isNamespaced ? " in namespace \(namespace ?? "default")" : ""
            errOut("gantry: \(kind.singular) \"\(name)\" not found\(ns)")
            return 1
        }
        switch output {
        case "yaml":
            out(YAMLEmitter.emit([name != nil && items.count == 1 ? items[0].full : listValue(items)]))
            return 0
        case "json":
            out(JSON.encode(name != nil && items.count == 1 ? items[0].full : listValue(items), pretty: true))
            return 0
        case "name":
            out(items.map { "\(kind.singular)/\($0.key.name)" }.joined(separator: "\n"))
            return 0
        default: break
        }
        let now = Timestamp(seconds: Int64(SystemClock().now()))
        var table = Table(headers())
        for o in items { table.add(row(o, now: now)) }
        if items.isEmpty && !watch {
            errOut(kind.isNamespaced && !allNamespaces ? "No resources found in \(namespace ?? "default") namespace." : "No resources found.")
            return 0
        }
        out(table.render())
        guard watch else { return 0 }
        var w = GetWatch(self, items: items, seq: feedStart, now: now)
        while true {
            Thread.sleep(forTimeInterval: backend.pollInterval)
            let rows = w.step(reader)
            if !rows.isEmpty {
                var t = Table(headers())
                for r in rows { t.add(r) }
                out(t.render(header: false))
            }
        }
    }

    func listValue(_ items: [StoredObject]) -> Value {
        .object([.init("apiVersion", .string("v1")), .init("kind", .string("List")), .init("items", .array(items.map(\.full)))])
    }

    func headers() -> [String] {
        switch kind {
        case .workload:
            var h = ["NAME", "TYPE", "QUEUE", "PRIORITY", "PHASE", "GPUS", "QUEUE-POS", "NODES", "AGE"]
            if allNamespaces { h.insert("NAMESPACE", at: 0) }
            if output == "wide" { h.insert(contentsOf: ["REPLICAS", "REASON"], at: h.count - 1) }
            return h
        case .queue:
            var h = ["NAME", "STATE", "DESERVED", "ALLOCATED", "BORROWED", "PENDING", "ADMITTED", "AGE"]
            if output == "wide" { h.insert(contentsOf: ["PARENT", "STRATEGY", "GUARANTEE", "CAPABILITY"], at: 1) }
            return h
        case .node: return ["NAME", "STATUS", "POOL", "GPU-TYPE", "CAPACITY-GPU", "ALLOCATED-GPU", "WORKLOADS", "AGE"]
        case .resourcePool: return ["NAME", "PHASE", "NODES", "USED-NODES", "GPUS", "USED-GPUS", "AGE"]
        }
    }

    /// `gpu=16,cpu=256,memory=2Ti`; `-` when empty.
    func resources(_ v: Value?) -> String {
        func text(_ key: String, _ v: Value) -> String {
            guard let n = v.intValue else { return v.stringValue ?? "?" }
            if key == "memory" || key.hasSuffix("storage") {
                for (suffix, unit) in [("Ti", Int64(1) << 40), ("Gi", Int64(1) << 30), ("Mi", Int64(1) << 20)] where n >= unit && n % unit == 0 {
                    return "\(n / unit)\(suffix)"
                }
            }
            return String(n)
        }
        let parts = (v?.members ?? []).map { m in "\(m.key)=\(text(m.key, m.value))" }
        return parts.isEmpty ? "-" : parts.joined(separator: ",")
    }

    func row(_ o: StoredObject, now: Timestamp) -> [String] {
        let age = formatAge(from: o.creation, now: now)
        func q(_ v: Value?) -> String {
            guard let v else { return "-" }
            if let i = v.intValue { return String(i) }
            return v.stringValue ?? "-"
        }
        switch kind {
        case .workload:
            let nodes = Set((o.status?["admission"]?["replicas"]?.arrayValue ?? []).compactMap { $0["node"]?.stringValue }).sorted()
            var r = [o.key.name, o.spec["type"]?.stringValue ?? "", o.spec["queue"]?.stringValue ?? "",
                     o.spec["priority"].map { q($0) } ?? "0", o.phase.isEmpty ? "-" : o.phase, String(o.totalGPUs),
                     o.status?["queuePosition"].map { q($0) } ?? "-", nodes.isEmpty ? "-" : nodes.joined(separator: ","), age]
            if allNamespaces { r.insert(o.key.namespace, at: 0) }
            if output == "wide" {
                let reason = o.status?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Admitted" }?["reason"]?.stringValue ?? "-"
                r.insert(contentsOf: [String(o.replicas), reason], at: r.count - 1)
            }
            return r
        case .queue:
            var r = [o.key.name, o.status?["state"]?.stringValue ?? o.spec["state"]?.stringValue ?? "Open",
                     resources(o.status?["deserved"] ?? o.spec["deserved"]), resources(o.status?["allocated"]), resources(o.status?["borrowed"]),
                     q(o.status?["pending"] ?? .int(0)), q(o.status?["admitted"] ?? .int(0)), age]
            if output == "wide" {
                r.insert(contentsOf: [o.spec["parent"]?.stringValue ?? "-", o.spec["queueingStrategy"]?.stringValue ?? "-",
                                      resources(o.spec["guarantee"]), o.spec["capability"] == nil ? "unlimited" : resources(o.spec["capability"])], at: 1)
            }
            return r
        case .node:
            return [o.key.name, o.status?["phase"]?.stringValue ?? "-", o.spec["resourcePool"]?.stringValue ?? "-", o.spec["gpuType"]?.stringValue ?? "-",
                    q(o.spec["capacity"]?["gpu"] ?? .int(0)), q(o.status?["allocated"]?["gpu"] ?? .int(0)), q(o.status?["workloads"] ?? .int(0)), age]
        case .resourcePool:
            return [o.key.name, o.status?["phase"]?.stringValue ?? "-", q(o.status?["nodeCount"]?["total"]), q(o.status?["nodeCount"]?["used"]),
                    q(o.status?["gpuCount"]?["total"]), q(o.status?["gpuCount"]?["used"]), age]
        }
    }
}


/// `get -w` after the first listing: each step prints the rows that changed since the last.
/// On a state directory it follows the change feed: a step with no new change costs one
/// indexed read, and changed objects are re-read by key (a paged or sorted listing re-reads
/// its page); elsewhere, or when the feed lost changes (pruned), the whole selection is read.
struct GetWatch {
    let cmd: GetCommand
    /// The last row printed for each object, all but AGE.
    var last: [ObjectKey: [String]] = [:]
    /// The change feed's position; nil when the reader has none.
    var seq: Int64?
    /// Objects re-read by key, and listings re-read whole (tests).
    var keyReads = 0, fullReads = 0

    init(_ cmd: GetCommand, items: [StoredObject], seq: Int64?, now: Timestamp) {
        self.cmd = cmd
        self.seq = seq
        for o in items { last[o.key] = Array(cmd.row(o, now: now).dropLast()) }
    }

    /// Rows to print now: changed or new objects, then those gone from the selection.
    mutating func step(_ reader: any ObjectReader) -> [[String]] {
        let now = Timestamp(seconds: Int64(SystemClock().now()))
        guard let state = reader as? StateReader, let from = seq, let head = try? state.lastChangeSeq() else { return full(reader, now) }
        if head == from { return [] }
        // Only a plain listing can take single objects; a page or a sort order re-reads its page.
        guard cmd.limit == nil, cmd.offset == 0, let changes = try? state.changes(after: from, limit: 4096), changes.count < 4096 else {
            seq = head
            return full(reader, now)
        }
        seq = changes.last?.seq ?? head
        var keys: [ObjectKey] = []
        var seenKeys = Set<ObjectKey>()
        for c in changes where c.key.kind == cmd.kind && seenKeys.insert(c.key).inserted {
            if let ns = cmd.selectedNamespace, c.key.namespace != ns { continue }
            if let name = cmd.name, c.key.name != name { continue }
            keys.append(c.key)
        }
        var present: [StoredObject] = []
        var gone: [ObjectKey] = []
        for k in keys {
            keyReads += 1
            guard let rows = try? state.objects(kind: k.kind, namespace: k.namespace, name: k.name) else { continue }
            if let o = rows.first.map(StoredObject.init), cmd.matches(o) { present.append(o) } else { gone.append(k) }
        }
        return emit(present, gone: gone, now)
    }

    private mutating func full(_ reader: any ObjectReader, _ now: Timestamp) -> [[String]] {
        fullReads += 1
        guard let items = try? cmd.select(reader) else { return [] }
        let seen = Set(items.map(\.key))
        return emit(items, gone: last.keys.filter { !seen.contains($0) }.sorted(), now)
    }

    private mutating func emit(_ items: [StoredObject], gone: [ObjectKey], _ now: Timestamp) -> [[String]] {
        var out: [[String]] = []
        for o in items {
            let r = cmd.row(o, now: now)
            let cmp = Array(r.dropLast())
            if last[o.key] != cmp { out.append(r); last[o.key] = cmp }
        }
        let headers = cmd.headers()
        for k in gone {
            guard let r = last[k] else { continue }
            var row = r + ["-"]
            if let i = headers.firstIndex(of: "PHASE") ?? headers.firstIndex(of: "STATUS") { row[i] = "Deleted" }
            out.append(row); last[k] = nil
        }
        return out
    }
}
