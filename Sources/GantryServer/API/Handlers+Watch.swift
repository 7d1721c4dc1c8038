import Foundation
import GantryAPI
import HTTPServer

/// `?watch=true` on a list path: a stream of newline-delimited watch events read from the
/// backend's change feed (see `WatchSession` for what each change becomes).
struct WatchRequest: Equatable {
    var watch = false
    /// nil: begin with ADDED for the whole selection (no resourceVersion, or "0").
    var resourceVersion: Int64?
    /// Seconds the stream lasts.
    var timeout = APIServer.watchDefaultSeconds
    var bookmarks = false

    /// Parameters a list takes for watching (left out of the list's own query).
    static let parameters: Set<String> = ["watch", "resourceVersion", "timeoutSeconds", "allowWatchBookmarks"]

    static func parse(_ req: HTTPRequest, maxSeconds: Int) throws(APIError) -> WatchRequest {
        var w = WatchRequest()
        let cap = max(1, maxSeconds)
        w.timeout = min(APIServer.watchDefaultSeconds, cap)
        w.watch = try APIServer.boolParameter(req, "watch")
        w.bookmarks = try APIServer.boolParameter(req, "allowWatchBookmarks")
        if let s = req.query("resourceVersion") {
            let t = s.trimmingCharacters(in: .whitespaces)
            if !t.isEmpty {
                guard let v = Int64(t), v >= 0 else {
                    throw .badRequest("resourceVersion must be a resourceVersion of a list or a watch event (a whole number), not \"\(s.prefix(40))\"", field: "resourceVersion")
                }
                w.resourceVersion = v == 0 ? nil : v
            }
        }
        if let t = try APIServer.intParameter(req, "timeoutSeconds", min: 0), t > 0 {
            w.timeout = min(t, cap)
        }
        return w
    }
}

extension WorkloadQuery {
    /// Whether the query's namespace filters (the path's, the caller's, `namespace=`) admit `ns`.
    func admitsNamespace(_ ns: String) -> Bool {
        for case .oneOf(.namespace, let vs) in clauses where !vs.contains(ns) { return false }
        return true
    }

    /// Whether every filter is on the namespace (membership follows from the key alone).
    var filtersOnlyNamespaces: Bool {
        clauses.allSatisfy { if case .oneOf(.namespace, _) = $0 { return true }; return false }
    }
}

extension APIServer {
    /// A watch without timeoutSeconds lasts this long (at most `APIOptions.watchMaxSeconds`,
    /// the daemon's `--watch-max-seconds`): as client-go's reflectors ask, 5 to 10 minutes.
    static let watchDefaultSeconds = 300
    /// The largest timeoutSeconds the OpenAPI document allows (a day); the daemon's cap cuts
    /// what it serves.
    static let watchDocumentedMaxSeconds = 86400
    /// How often a watch reads the feed when nothing is new.
    static let watchPollSeconds = 0.1
    /// Changes read from the feed at once.
    static let watchBatch = 1000

    /// GET .../workloads?watch=true.
    func watchWorkloads(_ ctx: RequestContext, _ q: WorkloadQuery, _ w: WatchRequest) throws(APIError) -> HTTPResponse {
        return try watchStream(.workload, w, keyOnly: q.filtersOnlyNamespaces, admits: { q.admitsNamespace($0.namespace) },
                               matches: { q.matches($0) }, select: { q.matching($0) }, view: ObjectView.object)
    }

    /// GET /api/v1/queues?watch=true, /api/v1/resourcepools?watch=true: every object of the
    /// kind (no filters), each as the list shows it.
    func watchKind(_ kind: Kind, _ w: WatchRequest, view: @escaping @Sendable (APIObject) -> Value) throws(APIError) -> HTTPResponse {
        try watchStream(kind, w, keyOnly: true, admits: { _ in true }, matches: { _ in true }, select: { $0 }, view: view)
    }

    /// The watch response: reads the feed's head now (501 without a feed), then streams from
    /// the producer's thread. `select` picks the selection out of a list (what `matches` says
    /// of each), `admits` says which keys the caller may see at all.
    func watchStream(_ kind: Kind, _ w: WatchRequest, keyOnly: Bool, admits: @escaping @Sendable (ObjectKey) -> Bool,
                     matches: @escaping @Sendable (APIObject) -> Bool, select: @escaping @Sendable ([APIObject]) -> [APIObject],
                     view: @escaping @Sendable (APIObject) -> Value) throws(APIError) -> HTTPResponse {
        let backend = self.backend
        let limit = max(1, options.maxWatches)
        let tooMany = "\(limit) watches are open, the most this daemon serves at once; watch again in a few seconds"
        guard openWatches.load(ordering: .relaxed) < limit else { throw APIError(429, "TooManyRequests", tooMany) }
        guard let head = try backend.feedHead() else {
            let hint = backend.mode == "kube" ? ": watch the cluster's objects instead (kubectl get \(kind.plural).gantry.dev --watch)" : ""
            throw APIError(501, "NotImplemented", "watch is not served in \(backend.mode) mode (this backend keeps no change feed)\(hint)")
        }
        // Without a resourceVersion: the selection as ADDED at the head (or at the snapshot's).
        var session = WatchSession(kind: kind, position: w.resourceVersion ?? head, complete: w.resourceVersion == nil, keyOnly: keyOnly, admits: admits)
        var initial: [APIObject] = []
        // The selection at one exact position, if the backend can read one soon (here, before
        // the answer, so it is as close to the request as can be): a watch without
        // resourceVersion starts there; one with a resourceVersion and filters on more than the
        // key learns what its client holds (see `WatchSession.seed`).
        if session.complete || !keyOnly {
            let snapshot = APIServer.snapshot(kind, backend: backend, until: ProcessInfo.processInfo.systemUptime + 0.5)
            if session.complete {
                if let snapshot, snapshot.head >= head {
                    session.begin(at: snapshot.head)
                    initial = select(snapshot.items)
                } else {
                    // The head was read before the objects: a change after it is read again later.
                    initial = select(backend.list(kind))
                }
            } else if let snapshot {
                session.seed(select(snapshot.items).map(\.key), at: snapshot.head)
            }
        }
        let start = session, items = initial
        let bookmarks = w.bookmarks
        let deadline = ProcessInfo.processInfo.systemUptime + Double(w.timeout)
        return HTTPResponse.stream(contentType: APIServer.watchContentType) { [self] write in
            // Counted while it runs; one that finds the limit reached since the check above
            // (watches starting together) ends at once with the same answer as an event.
            defer { openWatches.subtract(1, ordering: .relaxed) }
            guard openWatches.add(1, ordering: .relaxed).newValue <= limit else {
                _ = write(WatchSession.line(WatchSession.error(code: 429, reason: "TooManyRequests", message: tooMany)))
                return
            }
            var s = start
            APIServer.runWatch(&s, initial: items, backend: backend, matches: matches, view: view, deadline: deadline, bookmarks: bookmarks, write: write)
        }
    }

    static let watchContentType = "application/x-ndjson"

    /// `backend.feedSnapshot(kind)`, tried every 10 ms until `until` while writes are in flight.
    static func snapshot(_ kind: Kind, backend: any APIBackend, until: Double) -> FeedSnapshot? {
        while true {
            if let s = try? backend.feedSnapshot(kind) { return s }
            let left = until - ProcessInfo.processInfo.systemUptime
            if left <= 0 { return nil }
            Thread.sleep(forTimeInterval: min(0.01, left))
        }
    }

    /// Follows the feed until `deadline`, the client goes away or the server stops (`write`
    /// returns false; an empty write asks while nothing is sent). No lock is held here: the
    /// backend's reads take their own, briefly.
    static func runWatch(_ s: inout WatchSession, initial: [APIObject], backend: any APIBackend,
                         matches: (APIObject) -> Bool, view: (APIObject) -> Value, deadline: Double, bookmarks: Bool,
                         poll: Double = APIServer.watchPollSeconds, write: ([UInt8]) -> Bool) {
        func send(_ events: [WatchSession.Event]) -> Bool {
            var buf: [UInt8] = []
            for e in events {
                buf += WatchSession.line(e)
                if buf.count >= 64 << 10 {
                    guard write(buf) else { return false }
                    buf.removeAll(keepingCapacity: true)
                }
            }
            return buf.isEmpty || write(buf)
        }
        var i = 0
        while i < initial.count {
            let chunk = initial[i..<min(initial.count, i + 256)]
            guard send(s.start(Array(chunk), view: view)) else { return }
            i += chunk.count
        }
        // The position the client knows of (what a bookmark would tell it), and when one was sent.
        var told = s.position
        var lastBookmark = ProcessInfo.processInfo.systemUptime
        while true {
            let now = ProcessInfo.processInfo.systemUptime
            if now >= deadline {
                if bookmarks && s.position > told { _ = send([s.bookmark()]) }
                return
            }
            let changes: [FeedChange]?
            do throws(APIError) {
                changes = try backend.changes(after: s.position, limit: APIServer.watchBatch)
            } catch {
                _ = send([WatchSession.error(code: error.status, reason: error.code, message: error.message)])
                return
            }
            guard let changes else {
                _ = send([WatchSession.error(code: 410, reason: "Expired", message: "too old resource version: \(s.position) (the change feed no longer holds every change after it, or never reached it: a state directory started afresh); list again")])
                return
            }
            if changes.isEmpty {
                guard write([]) else { return }
                Thread.sleep(forTimeInterval: max(0, min(poll, deadline - now)))
                continue
            }
            let events = s.apply(changes, current: { backend.get($0) }, matches: matches, view: view)
            if let rv = events.last?.rv { told = rv }
            guard send(events) else { return }
            if bookmarks && events.isEmpty && s.position > told && now - lastBookmark >= 1 {
                guard send([s.bookmark()]) else { return }
                told = s.position
                lastBookmark = now
            }
        }
    }
}
