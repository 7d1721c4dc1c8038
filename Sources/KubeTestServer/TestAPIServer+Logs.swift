import Foundation
import GantryAPI

/// One line a test wrote to a Pod's log, stamped when written.
struct PodLogLine: Sendable {
    var time: Double
    var text: String
}

extension TestAPIServer {
    /// Appends `text` (split at newlines; a trailing newline adds no empty line) to the log
    /// of the Pod's container, each line stamped now. The log outlives the Pod object.
    public func appendPodLog(namespace: String, name: String, _ text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let now = Date().timeIntervalSince1970
        state.withLock { c in
            c.podLogs[StoreKey(namespace: namespace, name: name), default: []] += lines.map { PodLogLine(time: now, text: $0) }
        }
    }

    /// `GET .../pods/NAME/log`: the lines written with `appendPodLog`, as text/plain. Honours
    /// `container` (400 when the Pod has no such container), `tailLines`, `sinceTime`,
    /// `sinceSeconds` and `timestamps` (RFC 3339 with nanoseconds and a space before each
    /// line); `follow` answers what is there now and ends. 404 when the Pod does not exist.
    func servePodLog(_ req: HTTPRequest, _ p: ResourcePath, _ sock: Socket) -> Bool {
        let found: Result<(Value, [PodLogLine]), APIError> = state.withLock { c in
            guard let pod = c.store.collections[p.collection]?[p.key] else { return .failure(.notFound(p, p.name ?? "")) }
            return .success((pod, c.podLogs[p.key] ?? []))
        }
        let pod: Value, all: [PodLogLine]
        switch found {
        case .failure(let e): return respond(sock, e)
        case .success(let s): (pod, all) = s
        }
        if let container = req.query["container"], !container.isEmpty {
            let names = (pod["spec"]?["containers"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            guard names.contains(container) else {
                return respond(sock, APIError.badRequest("container \(container) is not valid for pod \(p.name ?? "")"))
            }
        }
        var lines = all
        if let s = req.query["sinceTime"] {
            guard let t = Timestamp(rfc3339: s) else { return respond(sock, APIError.badRequest("invalid sinceTime \"\(s)\"")) }
            lines = lines.filter { $0.time >= Double(t.seconds) }
        } else if let s = req.query["sinceSeconds"], let n = Int64(s), n > 0 {
            let from = Date().timeIntervalSince1970 - Double(min(n, 1 << 40))
            lines = lines.filter { $0.time >= from }
        }
        if let s = req.query["tailLines"], let n = Int(s), n >= 0 { lines = Array(lines.suffix(n)) }
        let stamps = ["true", "1"].contains(req.query["timestamps"] ?? "")
        var text = ""
        for l in lines {
            if stamps { text += TestAPIServer.nanoTimestamp(l.time) + " " }
            text += l.text + "\n"
        }
        let body = Array(text.utf8)
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\n\r\n"
        return sock.sendAll(Array(head.utf8) + body)
    }

    /// `2026-01-15T10:31:00.123456789Z`, as the kubelet stamps log lines.
    static func nanoTimestamp(_ t: Double) -> String {
        let whole = Timestamp(secondsSince1970: t)
        let frac = t - Double(whole.seconds)
        let nanos = min(999_999_999, max(0, Int((frac.isFinite ? frac : 0) * 1e9)))
        let digits = String(nanos)
        return String(whole.rfc3339.dropLast()) + "." + String(repeating: "0", count: 9 - digits.count) + digits + "Z"
    }
}
