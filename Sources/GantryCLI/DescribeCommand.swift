import Foundation
import GantryAPI
import StateStore
import ControllerRuntime
import YAMLCodec

/// `gantry describe KIND NAME [-n NS]`: metadata, spec, status, conditions and recent events.
struct DescribeCommand {
    var kind: Kind
    var name: String
    var namespace: String

    init(_ args: inout Args) throws {
        var pos = args.positionals
        if let first = pos.first, first.contains("/") {
            let parts = first.split(separator: "/", maxSplits: 1).map(String.init)
            pos = parts + pos.dropFirst()
        }
        guard pos.count >= 2 else { throw UsageError("describe needs a kind and a name: gantry describe workload NAME -n NAMESPACE") }
        guard let kind = Kind(cliName: pos[0]) else { throw UsageError("unknown kind \"\(pos[0])\"") }
        self.kind = kind
        name = pos[1]
        namespace = args.string("namespace") ?? "default"
    }

    func run(_ backend: Backend) throws -> Int32 {
        let reader = try backend.reader()
        guard let row = try reader.objects(kind: kind, namespace: kind.isNamespaced ? namespace : nil, name: name).first else {
            errOut("gantry: \(kind.singular) \"\(name)\" not found" + (kind.isNamespaced ? " in namespace \(namespace)" : ""))
            return 1
        }
        let o = StoredObject(row)
        let now = Timestamp(seconds: Int64(SystemClock().now()))
        var lines: [String] = []
        func field(_ label: String, _ value: String) { lines.append((label + ":").padding(toLength: 24, withPad: " ", startingAt: 0) + value) }
        field("Name", name)
        if kind.isNamespaced { field("Namespace", namespace) }
        field("Kind", kind.rawValue)
        let labels = o.labels
        // `labels[$0]!` cannot fail: the keys come from the map itself.
        field("Labels", labels.isEmpty ? "<none>" : labels.keys.sorted().map { "\($0)=\(labels[$0]!)" }.joined(separator: ", "))
        field("Source", row.source)
        field("UID", row.uid)
        field("Generation", String(row.generation))
        field("Created", "\(o.creation.rfc3339) (\(formatAge(from: o.creation, now: now)) ago)")
        if kind == .workload {
            let s = o.spec
            field("Type", s["type"]?.stringValue ?? "")
            if let d = s["displayName"]?.stringValue { field("Display Name", d) }
            field("Queue", s["queue"]?.stringValue ?? "")
            field("Priority", s["priority"].map { $0.stringValue ?? String($0.intValue ?? 0) } ?? "0")
            field("Replicas", String(o.replicas))
            let res = (s["resources"]?.members ?? []).map { "\($0.key)=\($0.value.stringValue ?? String($0.value.intValue ?? 0))" }.joined(separator: ", ")
            field("Resources/Replica", res.isEmpty ? "<none>" : res)
            field("Total GPUs", String(o.totalGPUs))
            if let c = s["command"]?.stringValue { field("Command", c) }
            if let e = s["entryPoint"]?.stringValue {
                let decoded = Base64.decode(e).map { String(decoding: $0, as: UTF8.self) } ?? "<invalid base64>"
                field("Entry Point", "\(e) (\(decoded))")
            }
            if let nodes = s["specifiedNodes"]?.arrayValue { field("Specified Nodes", nodes.compactMap(\.stringValue).joined(separator: ", ")) }
            field("Timeout", (s["timeout"]?.intValue ?? 0) == 0 ? "none" : "\(s["timeout"]!.intValue!)s")
            field("Max Retry", String(s["maxRetry"]?.intValue ?? 0))
            field("Suspend", (s["suspend"]?.boolValue ?? false) ? "true" : "false")
            if let st = o.status {
                lines.append("Status:")
                field("  Phase", st["phase"]?.stringValue ?? "-")
                if let m = st["message"]?.stringValue { field("  Message", m) }
                if let p = st["queuePosition"]?.intValue { field("  Queue Position", String(p)) }
                field("  Observed Generation", String(st["observedGeneration"]?.intValue ?? 0))
                field("  Dispatch Count", String(st["dispatchCount"]?.intValue ?? 0))
                field("  Retry Count", String(st["retryCount"]?.intValue ?? 0))
                for k in ["startTime", "endTime"] { if let t = st[k]?.stringValue { field("  " + (k == "startTime" ? "Start Time" : "End Time"), t) } }
                if let ov = st["override"] {
                    let sus = ov["suspend"]?.boolValue ?? false
                    field("  Override", "suspend=\(sus) by `\(ov["by"]?.stringValue ?? "")` at \(ov["at"]?.stringValue ?? "") (generation \(ov["generation"]?.intValue ?? 0); a change of the manifest clears it)")
                }
                if let adm = st["admission"] {
                    lines.append("Admission (queue \(adm["queue"]?.stringValue ?? "")):")
                    var t = Table(["  RANK", "NODE", "GPUS"])
                    for r in adm["replicas"]?.arrayValue ?? [] {
                        t.add(["  " + String(r["rank"]?.intValue ?? 0), r["node"]?.stringValue ?? "", (r["gpus"]?.arrayValue ?? []).compactMap { $0.intValue.map(String.init) }.joined(separator: ",")])
                    }
                    lines.append(t.render())
                }
                if let reps = st["replicas"]?.arrayValue, !reps.isEmpty {
                    lines.append("Replicas:")
                    var t = Table(["  NAME", "RANK", "PHASE", "NODE", "GPUS", "PID", "STARTED", "EXIT", "RESTARTS"])
                    for r in reps {
                        t.add(["  " + (r["name"]?.stringValue ?? ""), String(r["rank"]?.intValue ?? 0), r["phase"]?.stringValue ?? "", r["node"]?.stringValue ?? "",
                               r["gpuCount"]?.intValue.map { "\($0)" } ?? (r["gpus"]?.arrayValue ?? []).compactMap { $0.intValue.map(String.init) }.joined(separator: ","),
                               r["pid"]?.intValue.map { String($0) } ?? "-", r["startTime"]?.stringValue ?? "-",
                               r["exitCode"]?.intValue.map { String($0) } ?? "-", String(r["restarts"]?.intValue ?? 0)])
                    }
                    lines.append(t.render())
                }
                let series = try reader.latestMetrics(prefix: "\(namespace)/\(name)/")
                if !series.isEmpty {
                    lines.append("Metrics (latest):")
                    var t = Table(["  SERIES", "VALUE", "AT"])
                    for m in series.prefix(40) {
                        t.add(["  " + m.series.dropFirst("\(namespace)/\(name)/".count), String(format: "%g", m.value), Timestamp(secondsSince1970: m.ts).rfc3339])
                    }
                    lines.append(t.render())
                }
            } else {
                lines.append("Status:               <not yet reconciled>")
            }
        } else {
            lines.append("Spec:")
            lines.append(indent(YAMLEmitter.emit([o.spec])))
            if let st = o.status {
                var members = st.members ?? []
                members.removeAll { $0.key == "conditions" }
                lines.append("Status:")
                lines.append(indent(YAMLEmitter.emit([.object(members)])))
            }
            if kind == .queue { lines += try queueWorkloads(reader) }
        }
        let conds = o.status?["conditions"]?.arrayValue ?? []
        lines.append("Conditions:")
        if conds.isEmpty { lines.append("  <none>") } else {
            var t = Table(["  TYPE", "STATUS", "REASON", "LAST-TRANSITION", "MESSAGE"])
            for c in conds {
                t.add(["  " + (c["type"]?.stringValue ?? ""), c["status"]?.stringValue ?? "", c["reason"]?.stringValue ?? "",
                       c["lastTransitionTime"]?.stringValue ?? "", c["message"]?.stringValue ?? ""])
            }
            lines.append(t.render())
        }
        let events = try reader.events(kind: kind.rawValue, namespace: kind.isNamespaced ? namespace : "", name: name, since: nil, limit: 20)
        lines.append("Events:")
        if events.isEmpty { lines.append("  <none>") } else {
            var t = Table(["  TYPE", "REASON", "AGE", "COUNT", "MESSAGE"])
            for e in events {
                t.add(["  " + e.type, e.reason, formatAge(from: Timestamp(secondsSince1970: e.last), now: now), String(e.count), e.message])
            }
            lines.append(t.render())
        }
        out(lines.joined(separator: "\n"))
        return 0
    }

    /// A queue's pending workloads in admission order, each with its position and why it
    /// waits, then its admitted workloads.
    func queueWorkloads(_ reader: any ObjectReader) throws -> [String] {
        let members: [QueueMember]
        if let state = reader as? StateReader, let rows = try state.queueMembers(name) {
            // The index's priority and GPUs: only the statuses are parsed, not the objects.
            members = rows.map { r in
                QueueMember(key: r.key, priority: r.priority, totalGPUs: r.gpus, creation: Timestamp(seconds: r.creationTime),
                            status: r.statusJSON.flatMap { try? JSON.parse($0) })
            }
        } else {
            members = try reader.workloads(queue: name).map(StoredObject.init).map {
                QueueMember(key: $0.key, priority: $0.priority, totalGPUs: $0.totalGPUs, creation: $0.creation, status: $0.status)
            }
        }
        var pending: [(Int64, QueueMember)] = []
        var admitted: [QueueMember] = []
        var other = 0
        for w in members {
            if w.status?["admission"] != nil { admitted.append(w) } else if let p = w.status?["queuePosition"]?.intValue { pending.append((p, w)) } else { other += 1 }
        }
        pending.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.key < $1.1.key }
        var lines: [String] = []
        lines.append("Pending Workloads (admission order): \(pending.count)")
        if pending.isEmpty { lines.append("  <none>") } else {
            var t = Table(["  POSITION", "WORKLOAD", "PRIORITY", "GPUS", "AGE", "REASON", "MESSAGE"])
            let now = Timestamp(seconds: Int64(SystemClock().now()))
            for (p, w) in pending {
                let adm = w.status?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Admitted" }
                t.add(["  " + String(p), w.key.qualifiedName, String(w.priority), String(w.totalGPUs), formatAge(from: w.creation, now: now),
                       adm?["reason"]?.stringValue ?? "-", adm?["message"]?.stringValue ?? ""])
            }
            lines.append(t.render())
        }
        lines.append("Admitted Workloads: \(admitted.count)")
        if admitted.isEmpty { lines.append("  <none>") } else {
            var t = Table(["  WORKLOAD", "PRIORITY", "GPUS", "PHASE", "NODES"])
            for w in admitted {
                let nodes = Set((w.status?["admission"]?["replicas"]?.arrayValue ?? []).compactMap { $0["node"]?.stringValue }).sorted()
                t.add(["  " + w.key.qualifiedName, String(w.priority), String(w.totalGPUs), w.phase, nodes.joined(separator: ",")])
            }
            lines.append(t.render())
        }
        if other > 0 { lines.append("Other Workloads: \(other) (suspended, invalid or finished)") }
        return lines
    }

    /// What `describe queue` shows of each of its workloads.
    struct QueueMember {
        var key: ObjectKey
        var priority: Int64
        var totalGPUs: Int64
        var creation: Timestamp
        var status: Value?
        var phase: String { status?["phase"]?.stringValue ?? "" }
    }

    func indent(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: true).map { "  " + $0 }.joined(separator: "\n")
    }
}

/// `gantry events [--for KIND/NS/NAME] [--limit N] [-w]`.
struct EventsCommand {
    var target: InvolvedObject?
    var watch = false
    var limit: Int?
    var output = ""

    init(_ args: inout Args) throws {
        if let f = args.string("for") {
            let parts = f.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2 else { throw UsageError("--for: expected KIND/NAME or workload/NAMESPACE/NAME or file/PATH, got \"\(f)\"") }
            if parts[0].lowercased() == "file" {
                target = .file(parts.dropFirst().joined(separator: "/"))
            } else if let key = ObjectKey(parsing: f) {
                target = InvolvedObject(key)
            } else {
                throw UsageError("--for: expected KIND/NAME or workload/NAMESPACE/NAME or file/PATH, got \"\(f)\"")
            }
        }
        watch = args.bool("watch")
        limit = try args.int("limit")
        output = args.string("output") ?? ""
    }

    func run(_ backend: Backend) throws -> Int32 {
        if case .remote = backend, let t = target, t.kind.lowercased() != Kind.workload.rawValue.lowercased() {
            errOut("gantry: events --for \(t.reference): the API serves events of workloads only (their replicas' included); read the daemon's state directory for the others")
            return 1
        }
        let reader = try backend.reader()
        var rows = try reader.events(kind: target?.kind, namespace: target?.namespace, name: target?.name, since: nil, limit: limit ?? (watch ? 50 : nil))
        if output == "json" {
            out(JSON.encode(.object([.init("apiVersion", .string("v1")), .init("kind", .string("List")), .init("items", .array(rows.map(eventValue)))]), pretty: true))
            return 0
        }
        if rows.isEmpty && !watch { errOut("No events found."); return 0 }
        let headers = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"]
        var t = Table(headers)
        let now = Timestamp(seconds: Int64(SystemClock().now()))
        for e in rows { t.add(row(e, now)) }
        out(t.render())
        guard watch else { return 0 }
        var seen: [String: Int] = [:]
        for e in rows { seen[e.name] = e.count }
        var since = rows.map(\.last).max() ?? 0
        while true {
            Thread.sleep(forTimeInterval: backend.pollInterval)
            rows = (try? reader.events(kind: target?.kind, namespace: target?.namespace, name: target?.name, since: since - 1, limit: nil)) ?? []
            let now = Timestamp(seconds: Int64(SystemClock().now()))
            var t = Table(headers)
            for e in rows where seen[e.name] != e.count {
                seen[e.name] = e.count
                t.add(row(e, now))
                since = max(since, e.last)
            }
            if !t.rows.isEmpty { out(t.render(header: false)) }
        }
    }

    func row(_ e: StateReader.EventRow, _ now: Timestamp) -> [String] {
        let obj = InvolvedObject(kind: e.kind, namespace: e.namespace, name: e.objName).reference
        return [formatAge(from: Timestamp(secondsSince1970: e.last), now: now), e.type, e.reason, obj, String(e.count), e.message]
    }

    func eventValue(_ e: StateReader.EventRow) -> Value {
        .object([.init("metadata", .object([.init("name", .string(e.name))])),
                 .init("involvedObject", .object([.init("kind", .string(e.kind)), .init("namespace", .string(e.namespace)), .init("name", .string(e.objName))])),
                 .init("type", .string(e.type)), .init("reason", .string(e.reason)), .init("message", .string(e.message)), .init("count", .int(Int64(e.count))),
                 .init("firstTimestamp", .string(Timestamp(secondsSince1970: e.first).rfc3339)), .init("lastTimestamp", .string(Timestamp(secondsSince1970: e.last).rfc3339))])
    }
}
