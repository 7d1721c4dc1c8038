import Foundation
import GantryAPI
import StateStore

/// `ObjectReader` over Gantry's HTTP API (`--server`): objects from the list and get routes
/// (object JSON = apiVersion/kind/metadata/spec, status apart, as the state directory holds
/// them), events from a workload's events route, metric samples from its metrics routes.
/// The API serves events of workloads only: events of other kinds read as none.
final class RemoteReader: ObjectReader {
    let client: RemoteClient
    /// Items asked for per list page (the API serves at most 1,000).
    var pageSize = 1000

    init(_ client: RemoteClient) { self.client = client }

    func objects(kind: Kind, namespace: String?, name: String?) throws -> [ObjectRow] {
        let ns = kind.isNamespaced ? namespace : nil
        if let name {
            guard kind.isNamespaced ? ns != nil : true else {
                return try objects(kind: kind, namespace: nil, name: nil).filter { $0.key.name == name }
            }
            let v = try client.getIfPresent(RemoteClient.objectPath(kind, namespace: ns ?? "", name: name))
            return v.flatMap { RemoteRows.row($0, kind: kind, server: client.base) }.map { [$0] } ?? []
        }
        return RemoteRows.sorted(try list(RemoteClient.collection(kind, namespace: ns), query: []).compactMap { RemoteRows.row($0, kind: kind, server: client.base) })
    }

    /// Every item of a list route, following `continue` markers (or offsets) page by page.
    func list(_ path: String, query: [(String, String)]) throws -> [Value] {
        var items: [Value] = []
        var marker: String?
        var offset = 0
        for _ in 0..<100_000 {
            var q = query + [("limit", String(pageSize))]
            if let marker { q.append(("continue", marker)) } else if offset > 0 { q.append(("offset", String(offset))) }
            let page: Value
            do { page = try client.get(path, q) } catch let e as RemoteError where e.status == 410 && marker != nil {
                // The list changed since its first page (the marker's snapshot is gone): the
                // rest by offset, as a table read twice a second needs no snapshot.
                marker = nil
                offset = items.count
                continue
            }
            let got = page["items"]?.arrayValue ?? page.arrayValue ?? []
            items += got
            guard !got.isEmpty else { break }
            if let next = page["continue"]?.stringValue, !next.isEmpty {
                marker = next
                continue
            }
            guard let total = page["totalCount"]?.intValue else { break }
            offset = items.count
            if Int64(offset) >= total { break }
        }
        return items
    }

    func workloads(queue: String) throws -> [ObjectRow] {
        try objects(kind: .workload, namespace: nil, name: nil).filter { row in
            (try? JSON.parse(row.objectJSON))?["spec"]?["queue"]?.stringValue == queue
        }
    }

    func events(kind: String?, namespace: String?, name: String?, since: Double?, limit: Int?) throws -> [StateReader.EventRow] {
        if let kind, kind.lowercased() != Kind.workload.rawValue.lowercased() { return [] }
        var keys: [ObjectKey]
        if let namespace, let name {
            keys = [ObjectKey(.workload, namespace: namespace, name: name)]
        } else {
            keys = try objects(kind: .workload, namespace: namespace, name: nil).map(\.key)
            if let name { keys = keys.filter { $0.name == name } }
        }
        var rows: [StateReader.EventRow] = []
        for key in keys {
            var q: [(String, String)] = []
            if let limit { q.append(("limit", String(limit))) }
            guard let v = try client.getIfPresent(RemoteClient.workloadPath(key) + "/events", q) else { continue }
            rows += (v["items"]?.arrayValue ?? []).compactMap(RemoteRows.eventRow)
        }
        if let since { rows = rows.filter { $0.last > since } }
        // Oldest first; within a second (the API's times are whole seconds) the server's order.
        rows = rows.enumerated().sorted { $0.element.last != $1.element.last ? $0.element.last < $1.element.last : $0.offset < $1.offset }.map(\.element)
        if let limit, rows.count > limit { rows = Array(rows.suffix(limit)) }
        return rows
    }

    /// `prefix` is `NS/NAME/` (a workload's series): the newest sample of each of its GPU and
    /// training series over the last three hours, named as the state directory names them.
    func latestMetrics(prefix: String) throws -> [(series: String, ts: Double, value: Double)] {
        let parts = prefix.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].isEmpty, !parts[0].isEmpty, !parts[1].isEmpty else { return [] }
        let key = ObjectKey(.workload, namespace: String(parts[0]), name: String(parts[1]))
        let now = Date().timeIntervalSince1970
        // One-second steps from a whole second (the API averages per step and stamps each
        // step with its start) give the samples as filed, to the second, as the state
        // directory's reader prints them; three hours is as far back as the API's step
        // limit (11,000 steps) allows.
        let start = Int64(now) - 10_800
        let q = [("start", String(start)), ("end", String(start + 10_801)), ("step", "1")]
        var out: [(series: String, ts: Double, value: Double)] = []
        for route in ["metrics", "trainingMetrics"] {
            guard let v = try client.getIfPresent(RemoteClient.workloadPath(key) + "/" + route, q) else { continue }
            out += RemoteRows.latest(v, prefix: prefix)
        }
        return out.sorted { $0.series < $1.series }
    }
}

extension StateReader.EventRow {
    /// The raw value of `name` for API events, which carry none: kind/namespace/name/reason/first.
    static func syntheticName(kind: String, namespace: String, name: String, reason: String, first: Double) -> String {
        "\(kind.lowercased()).\(namespace).\(name).\(reason).\(Int64(first.isFinite ? max(min(first, 1e15), -1e15) : 0))"
    }
}

extension RemoteClient {
    /// `getIfPresent` with a query.
    func getIfPresent(_ path: String, _ query: [(String, String)]) throws -> Value? {
        do { return try get(path, query) } catch let e as RemoteError where e.status == 404 { return nil }
    }
}
