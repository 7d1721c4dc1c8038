import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import ControllerRuntime
@testable import StateStore
@testable import Controllers
@testable import GantryServer
@testable import GantryCLI
@testable import HTTPServer

/// Runs a watch answer's stream on a thread of its own, as the server would, and keeps what
/// it writes; `leave()` makes the next write fail (the client went away).
final class WatchCollector: Sendable {
    let bytes = Mutex<[UInt8]>([])
    let gone = Atomic<Bool>(false)
    let done = Atomic<Bool>(false)
    let status: Int
    let contentType: String?

    init(_ r: APIResult) {
        status = r.status
        contentType = r.response.header("Content-Type")
        guard case .stream(let produce) = r.response.body else { done.store(true, ordering: .releasing); return }
        let t = Thread { [self] in
            produce { b in
                if self.gone.load(ordering: .relaxed) { return false }
                self.bytes.withLock { $0 += b }
                return true
            }
            self.done.store(true, ordering: .releasing)
        }
        t.start()
    }

    /// The complete lines written so far, parsed.
    var events: [Value] {
        let text = String(decoding: bytes.withLock { $0 }, as: UTF8.self)
        return text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
    }

    var ended: Bool { done.load(ordering: .acquiring) }

    func wait(_ timeout: Double = 10, until cond: ([Value]) -> Bool) -> Bool { poll(timeout: timeout) { cond(events) } }

    func leave() {
        gone.store(true, ordering: .relaxed)
        _ = poll(timeout: 10) { ended }
    }
}

extension Value {
    var eventType: String { self["type"]?.stringValue ?? "" }
    var eventName: String { self["object"]?["metadata"]?["name"]?.stringValue ?? "" }
    var eventRV: Int64 { self["object"]?["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) } ?? -1 }
}

/// `GET .../workloads?watch=true`: the change feed as watch events.
@Suite(.serialized, .timeLimit(.minutes(1))) struct APIWatchTests {
    static func router(_ backend: any APIBackend) -> Router {
        var r = Router()
        APIServer(backend: backend, tokens: nil).register(into: &r)
        return r
    }

    /// A store, an inventory and the backend over them, after the initial sync.
    static func world() throws -> APIIndexPageTests.World {
        let w = try APIIndexPageTests.World()
        w.backend.ready.store(true, ordering: .releasing)
        return w
    }

    static func upsert(_ w: APIIndexPageTests.World, _ ns: String, _ name: String, queue: String = "q-one") {
        w.upsert(ns, name, queue: queue, type: .job, priority: 0, gpu: 1, replicas: 1, labels: [:])
    }

    @Test func listThenWatchFromItsResourceVersionSeesCreateStatusChangeAndDeleteInOrder() throws {
        let w = try Self.world()
        let router = Self.router(w.backend)
        Self.upsert(w, "ns-a", "old")
        try w.settle()
        let list = apiCall(router, "GET", "/api/v1/workloads")
        #expect(list.json?["items"]?.arrayValue?.count == 1)
        let rvText = try #require(list.json?["metadata"]?["resourceVersion"]?.stringValue, "a list carries the feed's position")
        let rv = try #require(Int64(rvText))
        #expect(rv > 0)

        let watch = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&resourceVersion=\(rv)&timeoutSeconds=5"))
        defer { watch.leave() }
        #expect(watch.status == 200)
        #expect(watch.contentType == "application/x-ndjson")
        let key = ObjectKey(.workload, namespace: "ns-a", name: "new")
        Self.upsert(w, "ns-a", "new")
        #expect(watch.wait { $0.contains { $0.eventName == "new" } }, "the create arrives")
        w.setPhase(key, .running)
        #expect(watch.wait { $0.contains { $0["object"]?["status"]?["phase"]?.stringValue == "Running" } }, "the status change arrives")
        w.inventory.apply([.delete(key)])
        #expect(watch.wait { $0.contains { $0.eventType == "DELETED" } }, "the delete arrives")

        let events = watch.events
        #expect(events.allSatisfy { $0.eventName == "new" }, "nothing about the object listed before: \(events)")
        #expect(events.first?.eventType == "ADDED")
        #expect(events.last?.eventType == "DELETED")
        let running = events.firstIndex { $0["object"]?["status"]?["phase"]?.stringValue == "Running" }
        #expect(running.map { events[$0].eventType } == "MODIFIED")
        #expect(events.dropFirst().dropLast().allSatisfy { $0.eventType == "MODIFIED" }, "\(events.map(\.eventType))")
        let rvs = events.map(\.eventRV)
        #expect(rvs.allSatisfy { $0 > rv }, "every event is after the list: \(rvs)")
        #expect(rvs == rvs.sorted() && Set(rvs).count == rvs.count, "resourceVersions increase: \(rvs)")
        // Each event's object is what GET returned at the time (spec, owner, status).
        #expect(events.first?["object"]?["spec"]?["queue"]?.stringValue == "q-one")
        #expect(events.first?["object"]?["owner"]?.stringValue == "manifest")

        // A watch from the last event's resourceVersion has nothing to tell; one from the list's
        // again tells the create, status change and delete's outcome (coalesced: one DELETED).
        let again = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&resourceVersion=\(rv)&timeoutSeconds=5"))
        #expect(again.wait { $0.contains { $0.eventType == "DELETED" } })
        again.leave()
        #expect(again.ended, "the stream ended once its client left")
        #expect(again.events.map(\.eventType) == ["DELETED"], "\(again.events)")
    }

    @Test func withoutAResourceVersionTheSelectionComesFirstAsAdded() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let watch = WatchCollector(apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads?watch=true&resourceVersion=0", token: "viewer-token"))
        defer { watch.leave() }
        #expect(watch.wait { $0.count >= 3 })
        let first = watch.events
        #expect(first.map(\.eventType) == ["ADDED", "ADDED", "ADDED"])
        #expect(Set(first.map(\.eventName)) == ["train", "wait-2", "from-file"])
        let head = try #require(try backend.feedHead())
        #expect(first.allSatisfy { $0.eventRV == head })
        // The object is GET's, with the resourceVersion added.
        var get = apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads/train", token: "viewer-token").json
        let streamed = first.first { $0.eventName == "train" }?["object"]
        if case .object(var m)? = get, let i = m.firstIndex(where: { $0.key == "metadata" }), case .object(var meta) = m[i].value {
            meta.append(.init("resourceVersion", .string(String(head))))
            m[i].value = .object(meta)
            get = .object(m)
        }
        #expect(streamed == get)
    }

    @Test func aWatchFromAPrunedResourceVersionGets410AndBadParametersGet400() throws {
        let w = try Self.world()
        w.store.changesKept = 5
        let router = Self.router(w.backend)
        for i in 0..<20 { Self.upsert(w, "ns-a", "w\(i)") }
        try w.settle()
        let head = try #require(try w.backend.feedHead())
        #expect(head >= 20)
        for rv in [Int64(1), head - 10, head + 100] {
            let watch = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&resourceVersion=\(rv)&timeoutSeconds=5"))
            #expect(poll(timeout: 10) { watch.ended }, "the stream ends after the error, before its timeout")
            let events = watch.events
            #expect(events.count == 1)
            #expect(events.first?.eventType == "ERROR")
            #expect(events.first?["object"]?["kind"]?.stringValue == "Status")
            #expect(events.first?["object"]?["code"]?.intValue == 410)
            #expect(events.first?["object"]?["reason"]?.stringValue == "Expired")
        }
        // Within what the feed keeps: no error.
        let ok = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&resourceVersion=\(head - 2)&timeoutSeconds=5"))
        #expect(ok.wait { $0.count >= 2 })
        ok.leave()
        #expect(ok.events.map(\.eventType) == ["ADDED", "ADDED"], "the two objects created after it: \(ok.events)")

        for (query, field) in [("resourceVersion=abc", "resourceVersion"), ("resourceVersion=-4", "resourceVersion"), ("timeoutSeconds=soon", "timeoutSeconds"),
                               ("timeoutSeconds=-1", "timeoutSeconds"), ("watch=maybe", "watch"), ("allowWatchBookmarks=2", "allowWatchBookmarks")] {
            let r = apiCall(router, "GET", "/api/v1/workloads?\(query.hasPrefix("watch=") ? "" : "watch=true&")\(query)")
            #expect(r.status == 400, "\(query)")
            #expect(r.json?["error"]?["field"]?.stringValue == field, "\(query): \(r.text)")
        }
        #expect(try WatchRequest.parse(HTTPRequest(method: "GET", path: "/", query: [("watch", ""), ("timeoutSeconds", "3600")]), maxSeconds: 1800).timeout == 1800)
        #expect(try WatchRequest.parse(HTTPRequest(method: "GET", path: "/", query: [("watch", ""), ("timeoutSeconds", "60")]), maxSeconds: 1800).timeout == 60)
        #expect(try WatchRequest.parse(HTTPRequest(method: "GET", path: "/", query: [("watch", "1")]), maxSeconds: 1800).timeout == APIServer.watchDefaultSeconds)
        #expect(try WatchRequest.parse(HTTPRequest(method: "GET", path: "/", query: [("watch", "1")]), maxSeconds: 2).timeout == 2, "the default is cut to the cap too")
        #expect(try WatchRequest.parse(HTTPRequest(method: "GET", path: "/", query: [("resourceVersion", "00")]), maxSeconds: 1800).resourceVersion == nil, "0 in any spelling: from the start")
        #expect(try WatchRequest.parse(HTTPRequest(method: "GET", path: "/", query: [("resourceVersion", " 42 ")]), maxSeconds: 1800).resourceVersion == 42)
    }

    @Test func filtersAndNamespacesApplyToEvents() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        func create(_ ns: String, _ name: String, queue: String) throws {
            _ = try backend.create(try APIFixture.workload(ns, name, queue: queue), by: .anonymous)
        }
        // From the start (ADDED for the selection) and from a list's resourceVersion.
        let list = apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads?queue=research", token: "editor-token")
        let rv = try #require(list.json?["metadata"]?["resourceVersion"]?.stringValue)
        let fromStart = WatchCollector(apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads?watch=true&queue=research", token: "editor-token"))
        let fromRV = WatchCollector(apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads?watch=true&queue=research&resourceVersion=\(rv)", token: "editor-token"))
        // A caller limited to team-a and team-b, on the all-namespaces path.
        let limited = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&resourceVersion=\(rv)", token: "editor-token"))
        defer { fromStart.leave(); fromRV.leave(); limited.leave() }
        #expect(fromStart.wait { $0.count >= 3 })

        // Changes outside the selection first: another namespace, another queue, a status change of one outside.
        try create("team-b", "elsewhere", queue: "research")
        try create("team-c", "hidden", queue: "research")
        try create("team-a", "other-queue", queue: "batch")
        try backend.setSuspended(ObjectKey(.workload, namespace: "team-a", name: "other-queue"), true, by: .anonymous)
        // Then inside: a new one, and one leaving the selection (its queue changes).
        try create("team-a", "fresh", queue: "research")
        var moved = try #require(backend.get(ObjectKey(.workload, namespace: "team-a", name: "wait-2"))).object
        moved.spec = .workload({ var s = moved.spec.workload ?? WorkloadSpec(); s.queue = "batch"; return s }())
        _ = try backend.update(moved, by: .anonymous)

        #expect(fromStart.wait { $0.contains { $0.eventType == "DELETED" } })
        let s = fromStart.events.dropFirst(3)
        #expect(s.map { "\($0.eventType) \($0.eventName)" } == ["ADDED fresh", "DELETED wait-2"], "\(s)")
        #expect(fromRV.wait { $0.contains { $0.eventType == "DELETED" } })
        #expect(fromRV.events.map { "\($0.eventType) \($0.eventName)" } == ["ADDED fresh", "DELETED wait-2"], "\(fromRV.events)")
        #expect(limited.wait { $0.contains { $0.eventName == "wait-2" } })
        let seen = limited.events.map { "\($0["object"]?["metadata"]?["namespace"]?.stringValue ?? "")/\($0.eventName)" }
        #expect(!seen.contains("team-c/hidden"), "team-c is not the caller's: \(seen)")
        #expect(seen.contains("team-b/elsewhere") && seen.contains("team-a/fresh"))

        // A phase filter: a workload leaving Pending leaves the selection.
        let pending = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&phase=Pending", token: "admin-token"))
        defer { pending.leave() }
        #expect(pending.wait { $0.contains { $0.eventName == "fresh" } })
        try backend.setSuspended(ObjectKey(.workload, namespace: "team-a", name: "fresh"), true, by: .anonymous)
        #expect(pending.wait { $0.contains { $0.eventType == "DELETED" } })
        #expect(pending.events.filter { $0.eventType != "ADDED" }.map { "\($0.eventType) \($0.eventName)" } == ["DELETED fresh"])
    }

    @Test func aFilteredWatchFromAResourceVersionKnowsWhatItsClientHolds() throws {
        let w = try Self.world()
        let router = Self.router(w.backend)
        for i in 0..<40 { Self.upsert(w, "ns-a", "w\(i)") }
        for i in 0..<10 { w.setPhase(ObjectKey(.workload, namespace: "ns-a", name: "w\(i)"), .running) }
        for i in 10..<40 { w.setPhase(ObjectKey(.workload, namespace: "ns-a", name: "w\(i)"), .pending) }
        try w.settle()
        let list = apiCall(router, "GET", "/api/v1/workloads?phase=Running&limit=100")
        #expect(list.json?["items"]?.arrayValue?.count == 10)
        let rv = try #require(list.json?["metadata"]?["resourceVersion"]?.stringValue)
        let watch = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&phase=Running&resourceVersion=\(rv)"))
        defer { watch.leave() }
        // Status changes of workloads that were never Running: nothing for this client.
        for i in 10..<30 { w.setPhase(ObjectKey(.workload, namespace: "ns-a", name: "w\(i)"), .failed) }
        // One Running workload finishes (leaves), one pending starts (enters).
        w.setPhase(ObjectKey(.workload, namespace: "ns-a", name: "w3"), .succeeded)
        w.setPhase(ObjectKey(.workload, namespace: "ns-a", name: "w35"), .running)
        #expect(watch.wait { $0.contains { $0.eventName == "w35" } })
        #expect(watch.events.map { "\($0.eventType) \($0.eventName)" } == ["DELETED w3", "ADDED w35"], "\(watch.events.map { "\($0.eventType) \($0.eventName)" })")
    }

    @Test func timeoutSecondsEndsTheStreamWithABookmark() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let started = Date()
        let watch = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&namespace=team-c", token: "admin-token"))
        #expect(watch.wait { $0.count >= 1 })
        // A change the filter drops: the bookmark at the end carries the position past it.
        _ = try backend.create(try APIFixture.workload("team-a", "not-watched"), by: .anonymous)
        let head = try #require(try backend.feedHead())
        #expect(poll(timeout: 10) { watch.ended }, "the stream ends by itself")
        let took = Date().timeIntervalSince(started)
        #expect(took >= 0.9 && took < 5, "about one second: \(took)")
        let events = watch.events
        #expect(events.map(\.eventType) == ["ADDED", "BOOKMARK"], "\(events)")
        #expect(events.last?.eventRV == head)
        #expect(events.first?.eventName == "other")
    }

    @Test func beforeTheInitialSyncAListCarriesNoResourceVersionAndAWatchWaits() throws {
        let w = try APIIndexPageTests.World()
        let router = Self.router(w.backend)
        Self.upsert(w, "ns-a", "one")
        try w.settle()
        let list = apiCall(router, "GET", "/api/v1/workloads")
        #expect(list.status == 200 && list.json?["items"]?.arrayValue?.count == 1)
        #expect(list.json?["metadata"] == nil, "memory may still lack what the store holds")
        #expect(apiCall(router, "GET", "/api/v1/workloads?watch=true").status == 503)
        w.backend.ready.store(true, ordering: .releasing)
        #expect(apiCall(router, "GET", "/api/v1/workloads").json?["metadata"]?["resourceVersion"] != nil)
    }

    @Test func aWatchReadsTheChangesNotTheTable() throws {
        let w = try Self.world()
        let router = Self.router(w.backend)
        for i in 0..<2000 { Self.upsert(w, "ns-\(i % 7)", "w\(i)") }
        try w.settle()
        let rv = try #require(try w.backend.feedHead())
        let rowsBefore = w.backend.feedRowsRead.load(ordering: .relaxed)
        let watch = WatchCollector(apiCall(router, "GET", "/api/v1/workloads?watch=true&resourceVersion=\(rv)&timeoutSeconds=5"))
        defer { watch.leave() }
        // Idle: the store's generation does not move, so the feed is not even queried each poll.
        let readsBefore = w.backend.feedReads.load(ordering: .relaxed)
        _ = poll(timeout: 0.5) { false }
        #expect(w.backend.feedReads.load(ordering: .relaxed) - readsBefore <= 2, "an idle watch reads no SQL per poll")
        w.setPhase(ObjectKey(.workload, namespace: "ns-3", name: "w10"), .running)
        #expect(watch.wait { $0.count >= 1 })
        Self.upsert(w, "ns-0", "w-new")
        #expect(watch.wait { $0.count >= 2 })
        #expect(watch.events.map { "\($0.eventType) \($0.eventName)" } == ["MODIFIED w10", "ADDED w-new"])
        #expect(w.backend.feedRowsRead.load(ordering: .relaxed) - rowsBefore == 2, "the watch read the two changes, not the 2,000 workloads")
        #expect(w.backend.cache.withLock { $0[.workload] } == nil, "no list of every workload was built")
    }

    @Test func stoppingTheServerEndsAWatchPromptly() throws {
        let backend = try APIFixture.backend()
        let server = try HTTPServer(address: "127.0.0.1:0", handler: try APIFixture.router(backend))
        let c = try RawClient(port: server.port)
        c.send("GET /api/v1/workloads?watch=true&timeoutSeconds=5 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer viewer-token\r\nConnection: close\r\n\r\n")
        let got = c.read { String(decoding: $0, as: UTF8.self).contains("\"ADDED\"") }
        #expect(String(decoding: got, as: UTF8.self).contains("application/x-ndjson"))
        let t0 = Date()
        server.stop()
        #expect(Date().timeIntervalSince(t0) < 2, "stop does not wait for the watch's timeout")
        c.close()
    }

    @Test func queuesAndResourcePoolsWatchTheSameWay() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let list = apiCall(router, "GET", "/api/v1/queues", token: "viewer-token")
        let rv = try #require(list.json?["metadata"]?["resourceVersion"]?.stringValue)
        let queues = WatchCollector(apiCall(router, "GET", "/api/v1/queues?watch=true&resourceVersion=\(rv)", token: "viewer-token"))
        let pools = WatchCollector(apiCall(router, "GET", "/api/v1/resourcepools?watch=true", token: "viewer-token"))
        defer { queues.leave(); pools.leave() }
        #expect(pools.wait { $0.count >= 1 })
        #expect(pools.events.map { "\($0.eventType) \($0.eventName)" } == ["ADDED pool-a"])
        let created = apiCall(router, "POST", "/api/v1/queues", token: "admin-token",
                              body: #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"batch"},"spec":{"deserved":{"gpu":4}}}"#)
        #expect(created.status == 201, "\(created.text)")
        #expect(queues.wait { $0.count >= 1 })
        #expect(apiCall(router, "PATCH", "/api/v1/queues/batch", token: "admin-token", body: #"{"spec":{"deserved":{"gpu":6}}}"#).status == 200)
        #expect(queues.wait { $0.count >= 2 })
        #expect(apiCall(router, "DELETE", "/api/v1/queues/batch", token: "admin-token").status == 200)
        #expect(queues.wait { $0.count >= 3 })
        #expect(queues.events.map { "\($0.eventType) \($0.eventName)" } == ["ADDED batch", "MODIFIED batch", "DELETED batch"])
        #expect(queues.events.first?["object"]?["usage"] != nil, "a queue as the list shows it, with its usage")
        #expect(queues.events[1]["object"]?["spec"]?["deserved"]?["gpu"]?.intValue == 6)
        #expect(pools.events.count == 1, "queue changes are not the pools' watch's")
    }

    @Test func theDaemonsWatchFollowsManifestChanges() throws {
        let d = try DaemonUnderTest(extra: ["--listen", "127.0.0.1:0", "--runtime", "none", "--local-gpus", "2"] + APIEndToEndTests.runAs)
        d.write("queues.yaml", queueManifest)
        d.write("first.yaml", wl("first"))
        let port = try #require(d.apiPort(), "the daemon logged its API port")
        func list() -> Value? { try? JSON.parse(try rawRequest(port, "GET", "/api/v1/namespaces/team-a/workloads").text) }
        try #require(d.wait(20) { list()?["metadata"]?["resourceVersion"] != nil && list()?["items"]?.arrayValue?.count == 1 }, "ready and listed: \(d.log.suffix(1500))")
        let rv = try #require(list()?["metadata"]?["resourceVersion"]?.stringValue)
        let c = try RawClient(port: port)
        c.send("GET /api/v1/namespaces/team-a/workloads?watch=true&resourceVersion=\(rv)&timeoutSeconds=5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        d.write("second.yaml", wl("second"))
        func lines(_ b: [UInt8]) -> [Value] {
            String(decoding: b, as: UTF8.self).split(whereSeparator: \.isNewline).compactMap { $0.hasPrefix("{") ? try? JSON.parse(String($0)) : nil }
        }
        var got = c.read { b in lines(b).contains { $0.eventType == "ADDED" && $0.eventName == "second" } }
        #expect(lines(got).contains { $0.eventType == "ADDED" && $0.eventName == "second" }, "\(String(decoding: got, as: UTF8.self))")
        d.remove("second.yaml")
        got += c.read { b in lines(got + b).contains { $0.eventType == "DELETED" && $0.eventName == "second" } }
        let events = lines(got).filter { $0.eventName == "second" }
        #expect(events.first?.eventType == "ADDED" && events.last?.eventType == "DELETED", "\(events.map(\.eventType))")
        #expect(events.allSatisfy { $0.eventRV > Int64(rv) ?? 0 })
        c.close()
        #expect(d.terminate() == 0, "a clean exit")
    }

    @Test func severalChangesOfOneObjectBetweenReadsMakeOneEventInFeedOrder() throws {
        let a = try APIFixture.workload("team-a", "a"), b = try APIFixture.workload("team-a", "b")
        var objects: [ObjectKey: APIObject] = [a.key: APIObject(object: a, status: nil, owner: .api), b.key: APIObject(object: b, status: nil, owner: .api)]
        var s = WatchSession(kind: .workload, position: 0, complete: true, keyOnly: true, admits: { _ in true })
        #expect(s.start(Array(objects.values), view: ObjectView.object).count == 2)
        func apply(_ changes: [(Int64, ObjectKey, String)]) -> [String] {
            s.apply(changes.map { FeedChange(seq: $0.0, key: $0.1, op: $0.2) }, current: { objects[$0] }, matches: { _ in true }, view: ObjectView.object)
                .map { "\($0.type.rawValue) \($0.object["metadata"]?["name"]?.stringValue ?? "") \($0.rv)" }
        }
        func setPhase(_ k: ObjectKey, _ p: WorkloadPhase) { var w = WorkloadStatus(); w.phase = p; objects[k]?.status = .workload(w) }
        // a changes three times, b once in between: one event each, ordered by their last change.
        setPhase(a.key, .running)
        setPhase(b.key, .running)
        #expect(apply([(1, a.key, "status"), (2, a.key, "object"), (3, b.key, "status"), (4, a.key, "status")]) == ["MODIFIED b 3", "MODIFIED a 4"])
        #expect(s.position == 4)
        // A change row whose object reads the same as sent: nothing (memory ahead of the feed).
        #expect(apply([(5, a.key, "status")]) == [])
        // Changes of another kind, and a key the watch may not see: nothing, but the position moves.
        var t = WatchSession(kind: .workload, position: 0, complete: true, keyOnly: true, admits: { $0.namespace != "team-b" })
        _ = t.start([], view: ObjectView.object)
        let q = ObjectKey(.queue, name: "research"), other = ObjectKey(.workload, namespace: "team-b", name: "x")
        #expect(t.apply([FeedChange(seq: 1, key: q, op: "object"), FeedChange(seq: 2, key: other, op: "object")], current: { _ in nil }, matches: { _ in true }, view: ObjectView.object).isEmpty)
        #expect(t.position == 2)
        // Deleted and created again between two reads: DELETED, then ADDED of the new object.
        var again = a
        again.meta.uid = "uid-new"
        objects[a.key] = APIObject(object: again, status: nil, owner: .api)
        #expect(apply([(6, a.key, "delete"), (7, a.key, "object")]) == ["DELETED a 7", "ADDED a 7"])
        // Gone: DELETED with the last object sent.
        objects[a.key] = nil
        let gone = s.apply([FeedChange(seq: 8, key: a.key, op: "delete")], current: { objects[$0] }, matches: { _ in true }, view: ObjectView.object)
        #expect(gone.map(\.type) == [.deleted])
        #expect(gone.first?.object["metadata"]?["uid"]?.stringValue == "uid-new")
        #expect(apply([(9, a.key, "delete")]) == [], "a delete of what the client no longer holds: nothing")
    }

    @Test func kubeModeAnswers501AndTheDocumentDescribesTheWatch() throws {
        struct NoFeed: APIBackend {
            let inner: MemoryBackend
            var mode: String { "kube" }
            func list(_ kind: Kind) -> [APIObject] { inner.list(kind) }
            func get(_ key: ObjectKey) -> APIObject? { inner.get(key) }
            func create(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject { try inner.create(object, by: by) }
            func update(_ object: ManifestObject, by: Principal) throws(APIError) -> APIObject { try inner.update(object, by: by) }
            func delete(_ key: ObjectKey, by: Principal) throws(APIError) { try inner.delete(key, by: by) }
            func setSuspended(_ key: ObjectKey, _ suspend: Bool, by: Principal) throws(APIError) { try inner.setSuspended(key, suspend, by: by) }
            func events(_ filter: EventFilter) throws(APIError) -> [GantryServer.EventRecord] { try inner.events(filter) }
            func log(_ key: ObjectKey, rank: Int) throws(APIError) -> any LogReader { try inner.log(key, rank: rank) }
            func metrics(prefix: String, start: Double, end: Double) throws(APIError) -> [MetricSeries] { try inner.metrics(prefix: prefix, start: start, end: end) }
            func history(limit: Int) throws(APIError) -> [APIObject] { try inner.history(limit: limit) }
            func now() -> Double { inner.now() }
        }
        let router = Self.router(NoFeed(inner: try APIFixture.backend(mode: "kube")))
        let r = apiCall(router, "GET", "/api/v1/workloads?watch=true")
        #expect(r.status == 501)
        #expect(r.errorCode == "NotImplemented")
        #expect(r.errorMessage.contains("kubectl"))
        let list = apiCall(router, "GET", "/api/v1/workloads")
        #expect(list.status == 200 && list.json?["metadata"] == nil, "no feed, no resourceVersion")
        #expect(apiCall(router, "GET", "/api/v1/queues").json?["metadata"] == nil)
        #expect(apiCall(router, "GET", "/api/v1/queues?watch=true").status == 501)

        let doc = try JSON.parse(OpenAPIDocument.json())
        let op = try #require(doc["paths"]?["/api/v1/workloads"]?["get"])
        let names = op["parameters"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(["watch", "resourceVersion", "timeoutSeconds", "allowWatchBookmarks"].allSatisfy(names.contains))
        let timeout = op["parameters"]?.arrayValue?.first { $0["name"]?.stringValue == "timeoutSeconds" }
        #expect(timeout?["schema"]?["maximum"]?.intValue == Int64(APIServer.watchDocumentedMaxSeconds))
        #expect(op["responses"]?["200"]?["content"]?["application/x-ndjson"] != nil)
        #expect(doc["components"]?["schemas"]?["WatchEvent"] != nil)
    }

    /// The pages of one list answer as of its first page's resourceVersion; a later page asked
    /// for once anything changed is refused (410) instead of cutting a shifted list by offset,
    /// which left an item in no page that a watch from that version would never send.
    @Test func aPagedListIsOneSnapshotOrA410() throws {
        let w = try Self.world()
        let router = Self.router(w.backend)
        for i in 0..<5 { Self.upsert(w, "ns-a", "w\(i)") }
        try w.settle()
        let first = apiCall(router, "GET", "/api/v1/workloads?limit=2")
        let rv = try #require(first.json?["metadata"]?["resourceVersion"]?.stringValue)
        let next = try #require(first.json?["continue"]?.stringValue)
        // Nothing changed: the next page, as of the same version.
        let second = apiCall(router, "GET", "/api/v1/workloads?limit=2&continue=\(next)")
        #expect(second.status == 200)
        #expect(second.json?["metadata"]?["resourceVersion"]?.stringValue == rv)
        let names = (first.json?["items"]?.arrayValue ?? []) + (second.json?["items"]?.arrayValue ?? [])
        #expect(names.compactMap { $0["metadata"]?["name"]?.stringValue } == ["w0", "w1", "w2", "w3"])
        // w0 deleted: cut at offset 4 the list now has nothing left and w4 would be in no page;
        // the page is refused instead.
        let after = try #require(second.json?["continue"]?.stringValue)
        w.inventory.apply([.delete(ObjectKey(.workload, namespace: "ns-a", name: "w0"))])
        try w.settle()
        let third = apiCall(router, "GET", "/api/v1/workloads?limit=2&continue=\(after)")
        #expect(third.status == 410, "\(third.json ?? .null)")
        #expect(third.json?["error"]?["code"]?.stringValue == "Expired")
    }

    @Test func watchesBeyondTheLimitGet429() throws {
        let w = try Self.world()
        var options = APIOptions()
        options.maxWatches = 1
        var r = Router()
        APIServer(backend: w.backend, tokens: nil, options: options).register(into: &r)
        Self.upsert(w, "ns-a", "a")
        try w.settle()
        let one = WatchCollector(apiCall(r, "GET", "/api/v1/workloads?watch=true&timeoutSeconds=30"))
        #expect(one.wait { $0.count == 1 }, "the first watch runs")
        let two = apiCall(r, "GET", "/api/v1/workloads?watch=true&timeoutSeconds=30")
        #expect(two.status == 429)
        one.leave()
        #expect(poll(timeout: 10) { apiCall(r, "GET", "/api/v1/workloads?watch=true&timeoutSeconds=1").status == 200 }, "a place again once the first ends")
    }
}
