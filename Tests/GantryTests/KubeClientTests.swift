import Testing
import Foundation
import GantryAPI
@testable import KubeClient
import KubeTestServer
import Synchronization

@Suite(.timeLimit(.minutes(1))) struct KubeClientUnitTests {
    private func events(_ n: Int) -> [String] {
        (0..<n).map { i in
            #"{"type":"MODIFIED","object":{"metadata":{"name":"w\#(i)","resourceVersion":"\#(i + 1)","note":"é ✓ \n escaped"}}}"#
        }
    }

    @Test func lineSplitterReassemblesAnyChunking() {
        let lines = events(40)
        let stream = Array(lines.joined(separator: "\n").utf8) + Array("\n".utf8)
        var rng = SystemRandomNumberGenerator()
        for round in 0..<200 {
            var splitter = WatchLineSplitter()
            var out: [String] = []
            var i = 0
            while i < stream.count {
                // Every chunk size from 1 byte up, including cuts inside multi-byte characters.
                let n = round == 0 ? 1 : Int.random(in: 1...max(1, min(300, stream.count - i)), using: &rng)
                let end = min(stream.count, i + n)
                guard let got = splitter.feed(stream[i..<end]) else { Issue.record("unexpected overflow"); return }
                out += got.map { String(decoding: $0, as: UTF8.self) }
                i = end
            }
            #expect(splitter.finish() == nil)
            #expect(out == lines)
        }
    }

    @Test func lineSplitterHandlesCRLFBlankLinesTrailingDataAndLimit() {
        var s = WatchLineSplitter(maxLine: 16)
        #expect(s.feed(Array("ab\r\n\n  \ncd".utf8))?.map { String(decoding: $0, as: UTF8.self) } == ["ab"])
        #expect(s.pendingCount == 2)
        #expect(s.finish().map { String(decoding: $0, as: UTF8.self) } == "cd")
        #expect(s.feed(Array(repeating: UInt8(ascii: "x"), count: 17)) == nil)
    }

    @Test func watchEventsDecode() {
        guard case .modified(let o) = WatchEvent.decode(line: Array(events(1)[0].utf8)) else { Issue.record("not modified"); return }
        #expect(o["metadata"]?["name"]?.stringValue == "w0")
        guard case .bookmark(let rv) = WatchEvent.decode(line: Array(#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"77"}}}"#.utf8)) else {
            Issue.record("not a bookmark"); return
        }
        #expect(rv == "77")
        let expired = #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#
        guard case .error(let e) = WatchEvent.decode(line: Array(expired.utf8)) else { Issue.record("not an error"); return }
        #expect(e.code == 410 && e.reason == "Expired" && e.message.hasPrefix("too old"))
        guard case .error(let bad) = WatchEvent.decode(line: Array("{not json".utf8)) else { Issue.record("garbage accepted"); return }
        #expect(bad.code == 0 && bad.reason == "BadWatchEvent")
    }

    @Test func tokenBucketWithInjectedClock() {
        var b = TokenBucket(qps: 2, burst: 3, now: 100)
        #expect(b.reserve(now: 100) == 0)
        #expect(b.reserve(now: 100) == 0)
        #expect(b.reserve(now: 100) == 0)
        // Empty: callers queue behind one another at 1/qps.
        #expect(b.reserve(now: 100) == 0.5)
        #expect(b.reserve(now: 100) == 1.0)
        // 1.5 s later three tokens have come back, two of them owed already.
        #expect(b.reserve(now: 101.5) == 0)
        #expect(b.reserve(now: 101.5) == 0.5)
        // A long idle refills only up to the burst.
        for _ in 0..<3 { #expect(b.reserve(now: 1000) == 0) }
        #expect(b.reserve(now: 1000) == 0.5)
        var off = TokenBucket(qps: 0, burst: 1, now: 0)
        for _ in 0..<10 { #expect(off.reserve(now: 0) == 0) }
    }

    @Test func backoffDoublesToTheCapWithJitter() {
        var b = Backoff()
        let plain = (0..<9).map { _ in b.next(random: { 0 }) }
        #expect(plain == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30])
        b.reset()
        #expect(b.next(random: { 0.5 }) == 0.8 * 1.1)
        #expect(b.next(random: { 1 }) == 1.6 * 1.2)
        var high = Backoff(initial: 20, cap: 30, jitter: 0.5)
        #expect(high.next(random: { 1 }) == 30)
    }

    @Test func resourcePaths() {
        #expect(GroupVersionResource.pods.path(namespace: "ns", name: "x", subresource: "status") == "/api/v1/namespaces/ns/pods/x/status")
        #expect(GroupVersionResource.pods.path() == "/api/v1/pods")
        #expect(GroupVersionResource.workloads.path() == "/apis/gantry.dev/v1alpha1/workloads")
        #expect(GroupVersionResource.workloads.path(namespace: "team-a", name: "w") == "/apis/gantry.dev/v1alpha1/namespaces/team-a/workloads/w")
        #expect(GroupVersionResource.queues.path(namespace: "ignored", name: "q") == "/apis/gantry.dev/v1alpha1/queues/q")
        #expect(GroupVersionResource.resourcePools.path() == "/apis/gantry.dev/v1alpha1/resourcepools")
        #expect(GroupVersionResource.leases.path(namespace: "gantry-system", name: "gantry") == "/apis/coordination.k8s.io/v1/namespaces/gantry-system/leases/gantry")
        #expect(GroupVersionResource.nodes.path(name: "n1", subresource: "status") == "/api/v1/nodes/n1/status")
    }

    @Test func statusBodiesBecomeErrors() {
        let body = Array(#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"workloads \"w\" already exists","reason":"AlreadyExists","code":409}"#.utf8)
        let e = KubeError.fromResponse(code: 409, body: body)
        #expect(e == KubeError(code: 409, reason: "AlreadyExists", message: "workloads \"w\" already exists"))
        #expect(e.isAlreadyExists && e.isConflict)
        let plain = KubeError.fromResponse(code: 503, body: Array("upstream down".utf8))
        #expect(plain.code == 503 && plain.reason == "ServiceUnavailable" && plain.message == "upstream down")
    }

    @Test func urlsAndQueries() throws {
        let c = try KubeClient(config: KubeConfig(server: "http://127.0.0.1:1/"))
        #expect(c.url("/api/v1/pods", [("labelSelector", "gantry.dev/workload=a b,x in (1,2)")]) ==
                "http://127.0.0.1:1/api/v1/pods?labelSelector=gantry.dev%2Fworkload%3Da%20b%2Cx%20in%20%281%2C2%29")
        #expect(c.url("/api/v1/pods?watch=1", [("a", "b")]) == "http://127.0.0.1:1/api/v1/pods?watch=1&a=b")
        let h = KubeClient.hostAndPort("https://[::1]:6443/base")
        #expect(h.host == "[::1]" && h.port == 6443 && h.rest == "/base")
        #expect(KubeClient.hostAndPort("https://kube.example").port == 443)
    }

    @Test func refusedConnectionIsATransportError() throws {
        // Port 1 on loopback: nothing listens there.
        let c = try KubeClient(config: KubeConfig(server: "http://127.0.0.1:1"))
        do {
            _ = try c.get("/api/v1/namespaces/default/pods/x")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == 0 && error.reason == "Transport")
        }
        #expect(c.requestCounts["GET"] == 1)
    }

    @Test func informerRelistDiff() {
        func obj(_ name: String, _ rv: String) -> Value {
            .object([.init("metadata", .object([.init("name", .string(name)), .init("namespace", .string("ns")), .init("resourceVersion", .string(rv))]))])
        }
        let old = ["ns/a": obj("a", "1"), "ns/b": obj("b", "2"), "ns/c": obj("c", "3")]
        let new = ["ns/a": obj("a", "1"), "ns/b": obj("b", "5"), "ns/d": obj("d", "6")]
        let events = Informer.diff(old: old, new: new).map { e -> String in
            switch e {
            case .added(let v): return "added \(v["metadata"]?["name"]?.stringValue ?? "")"
            case .updated(let o, let n): return "updated \(o["metadata"]?["resourceVersion"]?.stringValue ?? "")->\(n["metadata"]?["resourceVersion"]?.stringValue ?? "")"
            case .deleted(let v): return "deleted \(v["metadata"]?["name"]?.stringValue ?? "")"
            }
        }
        #expect(events == ["updated 2->5", "added d", "deleted c"])
    }

    @Test func microTimeFormat() {
        #expect(LeaderElector.microTime(seconds: 1_767_225_600, micros: 42) == "2026-01-01T00:00:00.000042Z")
        let now = LeaderElector.microTime()
        #expect(now.count == 27 && now.hasSuffix("Z"))
    }
}

// MARK: against the in-process test API server

private func pod(_ name: String, namespace: String = "default", labels: [String: String] = [:]) -> Value {
    var meta = ObjectBuilder()
    meta.set("name", name)
    meta.set("namespace", namespace)
    if !labels.isEmpty { meta.set("labels", Value.stringMap(labels)) }
    return .object([
        .init("apiVersion", .string("v1")), .init("kind", .string("Pod")), .init("metadata", meta.value),
        .init("spec", .object([.init("containers", .array([.object([.init("name", .string("main")), .init("image", .string("busybox"))])]))])),
    ])
}

private func testClient(_ server: TestAPIServer, token: String? = nil, tokenFile: String? = nil) throws -> KubeClient {
    var config = KubeConfig(server: server.baseURL)
    config.token = token
    config.tokenFile = tokenFile
    return try KubeClient(config: config, qps: 0, burst: 1, userAgent: "gantry-test", maxRetries: 3, retryBase: 0.01)
}

private func name(_ v: Value) -> String { v["metadata"]?["name"]?.stringValue ?? "?" }
private func rv(_ v: Value) -> Int { Int(v["metadata"]?["resourceVersion"]?.stringValue ?? "") ?? -1 }

/// Records an informer's events as "added a", "updated a", "deleted a".
private final class EventLog: Sendable {
    let events = Mutex<[String]>([])
    func handler(_ e: InformerEvent) {
        let line: String
        switch e {
        case .added(let v): line = "added \(name(v))"
        case .updated(let o, let n): line = rv(o) == rv(n) ? "resync \(name(n))" : "updated \(name(n))"
        case .deleted(let v): line = "deleted \(name(v))"
        }
        events.withLock { $0.append(line) }
    }
    var all: [String] { events.withLock { $0 } }
}

private func testInformer(_ client: KubeClient, namespace: String? = "default", resync: Double = 0, backoff: Double = 0.4) -> Informer {
    Informer(client: client, resource: .pods, namespace: namespace, labelSelector: nil, fieldSelector: nil, resync: resync,
             name: "pods", backoffInitial: backoff, backoffCap: 2, watchTimeoutSeconds: 30)
}

@Suite(.timeLimit(.minutes(1))) struct KubeClientServerTests {
    @Test func verbsAgainstTheTestServer() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let pods = GroupVersionResource.pods
        let created = try c.create(pods.path(namespace: "default"), pod("a", labels: ["app": "x"]))
        #expect(name(created) == "a" && created["metadata"]?["uid"]?.stringValue?.isEmpty == false)
        for i in 0..<4 { _ = try c.create(pods.path(namespace: "default"), pod("p\(i)")) }
        #expect(name(try c.get(pods.path(namespace: "default", name: "a"))) == "a")

        let all = try c.list(pods.path(namespace: "default"), pageSize: 2)
        #expect(all.items.map(name).sorted() == ["a", "p0", "p1", "p2", "p3"])
        #expect(all.items.allSatisfy { $0["kind"]?.stringValue == "Pod" && $0["apiVersion"]?.stringValue == "v1" })
        #expect(!all.resourceVersion.isEmpty)
        #expect(c.requestCounts["LIST"] == 3)  // 2 + 2 + 1
        #expect(try c.list(pods.path(), labelSelector: "app=x").items.map(name) == ["a"])

        let patched = try c.patch(pods.path(namespace: "default", name: "a"), .object([.init("metadata", .object([.init("labels", .object([.init("tier", .string("gpu"))]))]))]))
        #expect(patched["metadata"]?["labels"]?["tier"]?.stringValue == "gpu")
        let jsonPatched = try c.patch(pods.path(namespace: "default", name: "a"),
                                      .array([.object([.init("op", .string("add")), .init("path", .string("/metadata/labels/z")), .init("value", .string("1"))])]), type: .json)
        #expect(jsonPatched["metadata"]?["labels"]?["z"]?.stringValue == "1")

        // A PUT with a stale resourceVersion is a Conflict with the server's reason and message.
        do {
            _ = try c.replace(pods.path(namespace: "default", name: "a"), created)
            Issue.record("stale PUT accepted")
        } catch {
            #expect(error.code == 409 && error.reason == "Conflict" && error.message.contains("\"a\""), "\(error)")
        }
        _ = try c.replace(pods.path(namespace: "default", name: "a"), jsonPatched)

        try c.delete(pods.path(namespace: "default", name: "p0"), gracePeriodSeconds: 0)
        do {
            _ = try c.get(pods.path(namespace: "default", name: "p0"))
            Issue.record("deleted pod still there")
        } catch {
            #expect(error.isNotFound && error.reason == "NotFound", "\(error)")
        }
        do {
            try c.delete(pods.path(namespace: "default", name: "p1"), gracePeriodSeconds: 0, preconditionUID: "not-the-uid")
            Issue.record("delete with a wrong UID precondition accepted")
        } catch {
            #expect(error.code == 409, "\(error)")
        }
        let counts = c.requestCounts
        #expect(counts["POST"] == 5 && counts["PATCH"] == 2 && counts["PUT"] == 2 && counts["DELETE"] == 2)
    }

    @Test func throttlingAndServerErrorsAreRetriedBoundedly() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let path = GroupVersionResource.pods.path(namespace: "default")
        server.failNext("GET", pathPrefix: path, status: 503, count: 2)
        #expect(try c.list(path).items.isEmpty)
        #expect(c.requestCounts["LIST"] == 3)
        server.failNext("POST", pathPrefix: path, status: 429, count: 1)  // Retry-After: 1
        let start = Date()
        _ = try c.create(path, pod("a"))
        #expect(Date().timeIntervalSince(start) >= 0.9)
        server.failNext("GET", pathPrefix: path, status: 500, count: 4)
        do {
            _ = try c.get(path + "/a")
            Issue.record("expected the 500 to surface")
        } catch {
            #expect(error.code == 500)
        }
        #expect(c.requestCounts["GET"] == 4)  // 1 + maxRetries
        // Client errors are not retried.
        server.failNext("GET", pathPrefix: path, status: 403, count: 1)
        #expect(throws: KubeError.self) { _ = try c.get(path + "/a") }
        #expect(c.requestCounts["GET"] == 5)
    }

    @Test func rateLimitAndConnectionReuse() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 20, burst: 2)
        let start = Date()
        for _ in 0..<6 { _ = try c.list(GroupVersionResource.nodes.path()) }
        // Two from the burst, then one per 50 ms.
        #expect(Date().timeIntervalSince(start) >= 0.19)
        // Sequential requests share one kept-alive connection.
        #expect(poll(timeout: 5) { server.openConnectionCount == 1 })
        // Watches are not rate limited: with the bucket empty (next token in 2 s), a watch
        // starts at once.
        let slow = try KubeClient(config: KubeConfig(server: server.baseURL), qps: 0.5, burst: 1)
        _ = try slow.list(GroupVersionResource.nodes.path())
        let cancel = WatchCancel()
        let watchStart = Date()
        let watcher = Thread { try? slow.watch(GroupVersionResource.nodes.path(), resourceVersion: "1", timeoutSeconds: 10, cancel: cancel) { _ in } }
        watcher.start()
        #expect(poll(timeout: 5) { server.activeWatchCount == 1 })
        #expect(Date().timeIntervalSince(watchStart) < 1.5)
        cancel.cancel()
        #expect(poll(timeout: 5) { server.activeWatchCount == 0 })
    }

    @Test func updateRetriesConflicts() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let path = GroupVersionResource.pods.path(namespace: "default")
        _ = try c.create(path, pod("a"))
        var round = 0
        let stored = try c.update(path + "/a") { current in
            round += 1
            // Someone else writes between our read and our write, once.
            if round == 1 { server.put(path + "/a", LeaderElector.setting(current, "spec", .object([.init("containers", .array([]))]))) }
            return LeaderElector.setting(current, "metadata", LeaderElector.setting(current["metadata"] ?? .object([]), "labels", .object([.init("round", .string("\(round)"))])))
        }
        #expect(round == 2)
        #expect(stored["metadata"]?["labels"]?["round"]?.stringValue == "2")
        #expect(c.requestCounts["PUT"] == 2 && c.requestCounts["GET"] == 2)
    }

    @Test func resyncRedeliversCachedObjects() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        _ = try c.create(GroupVersionResource.pods.path(namespace: "default"), pod("a"))
        let inf = testInformer(c, resync: 0.1)
        let log = EventLog()
        inf.addHandler { log.handler($0) }
        inf.start()
        defer { inf.stop() }
        #expect(poll(timeout: 5) { log.all.filter { $0 == "resync a" }.count >= 2 })
        #expect(log.all.first == "added a")
        #expect(inf.listCount == 1)  // a resync is not a relist
    }

    @Test func leaderSeeingAnotherHolderStopsAtOnce() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let stopped = Atomic<Bool>(false)
        let a = LeaderElector(client: c, namespace: "ns", name: "l", identity: "a", leaseDuration: 10, renewDeadline: 8, retryPeriod: 0.1)
        a.start(onStartedLeading: {}, onStoppedLeading: { stopped.store(true, ordering: .relaxed) })
        #expect(poll(timeout: 5) { a.isLeader })
        let path = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"
        guard let lease = server.object(path) else { Issue.record("no lease"); return }
        server.put(path, LeaderElector.setting(lease, "spec", .object([.init("holderIdentity", .string("intruder")), .init("leaseDurationSeconds", .int(10))])))
        // Long before the renew deadline (8 s).
        #expect(poll(timeout: 3) { stopped.load(ordering: .relaxed) })
        #expect(!a.isLeader)
        #expect(server.object(path)?["spec"]?["holderIdentity"]?.stringValue == "intruder")
    }

    @Test func informerReportsListFailures() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        server.failNext("GET", pathPrefix: "/api/v1/namespaces/default/pods", status: 403, count: 1)
        let inf = testInformer(c)
        inf.start()
        defer { inf.stop() }
        #expect(poll(timeout: 5) { inf.lastError?.code == 403 })
        #expect(!inf.hasSynced)
        #expect(inf.waitForSync(timeout: 10))
        #expect(inf.lastError == nil)
    }

    @Test func tokenFileIsReReadOnUnauthorized() throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        let server = try TestAPIServer(token: "fresh"); defer { server.stop() }
        let file = dir + "/token"
        try "fresh\n".write(toFile: file, atomically: true, encoding: .utf8)
        // The client starts with the rotated-out token; the 401 makes it read the file.
        let c = try testClient(server, token: "stale", tokenFile: file)
        #expect(try c.list(GroupVersionResource.pods.path()).items.isEmpty)
        #expect(c.requestCounts["LIST"] == 2)
        // Without a token file a 401 is final.
        let plain = try testClient(server, token: "wrong")
        #expect(throws: KubeError.self) { _ = try plain.list(GroupVersionResource.pods.path()) }
    }

    @Test func watchDeliversEventsSplitAcrossChunksInOrder() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        server.splitWatchChunks = true
        let c = try testClient(server)
        let path = GroupVersionResource.pods.path(namespace: "default")
        let from = try c.list(path).resourceVersion
        for i in 0..<15 { _ = try c.create(path, pod("p\(i)")) }
        try c.delete(path + "/p3", gracePeriodSeconds: 0)
        let cancel = WatchCancel()
        var seen: [String] = []
        try c.watch(path, resourceVersion: from, timeoutSeconds: 20, cancel: cancel) { e in
            switch e {
            case .added(let v): seen.append("added \(name(v))")
            case .modified(let v): seen.append("modified \(name(v))")
            case .deleted(let v): seen.append("deleted \(name(v))")
            case .bookmark: break
            case .error(let e): seen.append("error \(e)")
            }
            if seen.count == 16 { cancel.cancel() }
        }
        #expect(seen == (0..<15).map { "added p\($0)" } + ["deleted p3"])
        #expect(server.requestLog.contains { $0.hasPrefix("GET \(path)?watch=1") && $0.contains("allowWatchBookmarks=true") })
    }

    @Test func watchFromAnExpiredVersionFails410() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let path = GroupVersionResource.pods.path(namespace: "default")
        let from = try c.list(path).resourceVersion
        _ = try c.create(path, pod("a"))
        server.expireWatchHistory()
        server.watch410AsEvent = false
        do {
            try c.watch(path, resourceVersion: from, timeoutSeconds: 5, cancel: WatchCancel()) { _ in }
            Issue.record("expected 410")
        } catch {
            #expect(error.code == 410)
        }
        server.watch410AsEvent = true
        var got: KubeError?
        try c.watch(path, resourceVersion: from, timeoutSeconds: 5, cancel: WatchCancel()) { e in if case .error(let k) = e { got = k } }
        #expect(got?.code == 410)
    }

    @Test func informerFollowsAddsUpdatesDeletesAndStops() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let path = GroupVersionResource.pods.path(namespace: "default")
        _ = try c.create(path, pod("before"))
        _ = try c.create(GroupVersionResource.pods.path(namespace: "other"), pod("elsewhere", namespace: "other"))
        let inf = testInformer(c)
        let log = EventLog()
        inf.addHandler { log.handler($0) }
        inf.start()
        defer { inf.stop() }
        #expect(inf.waitForSync(timeout: 10))
        #expect(log.all == ["added before"])
        _ = try c.create(path, pod("a"))
        _ = try c.patch(path + "/a", .object([.init("metadata", .object([.init("labels", .object([.init("x", .string("1"))]))]))]))
        try c.delete(path + "/before", gracePeriodSeconds: 0)
        #expect(poll(timeout: 10) { log.all.count == 4 })
        #expect(log.all == ["added before", "added a", "updated a", "deleted before"])
        #expect(inf.get(namespace: "default", name: "a")?["metadata"]?["labels"]?["x"]?.stringValue == "1")
        #expect(inf.get(namespace: "default", name: "before") == nil)
        #expect(inf.list().map(name) == ["a"])
        inf.stop()
        #expect(poll(timeout: 5) { server.activeWatchCount == 0 })
    }

    @Test(arguments: [true, false]) func informerRelistsOn410AndDiffs(asEvent: Bool) throws {
        let server = try TestAPIServer(); defer { server.stop() }
        server.watch410AsEvent = asEvent
        let c = try testClient(server)
        let path = GroupVersionResource.pods.path(namespace: "default")
        for n in ["keep", "change", "gone"] { _ = try c.create(path, pod(n)) }
        // A reconnect delay long enough for the edits below to land before the re-watch.
        let inf = testInformer(c, backoff: 1)
        let log = EventLog()
        inf.addHandler { log.handler($0) }
        inf.start()
        defer { inf.stop() }
        #expect(inf.waitForSync(timeout: 10))
        #expect(poll(timeout: 5) { server.activeWatchCount == 1 })
        // The stream drops; while the informer backs off, the history it would resume from
        // is compacted away, so its re-watch gets 410 and it must relist.
        server.dropWatches()
        server.put(path + "/new", pod("new"))
        server.put(path + "/change", LeaderElector.setting(pod("change"), "spec", .object([.init("containers", .array([]))])))
        server.remove(path + "/gone")
        server.expireWatchHistory()
        #expect(poll(timeout: 10) { log.all.count == 6 })
        #expect(Array(log.all.prefix(3)) == ["added change", "added gone", "added keep"])
        #expect(Set(log.all.dropFirst(3)) == ["added new", "updated change", "deleted gone"])
        #expect(inf.listCount == 2)
        #expect(inf.list().map(name).sorted() == ["change", "keep", "new"])
    }

    @Test func droppedWatchResumesFromTheLastVersionWithoutLoss() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        server.splitWatchChunks = true
        let c = try testClient(server)
        let path = GroupVersionResource.pods.path(namespace: "default")
        let inf = testInformer(c)
        let log = EventLog()
        inf.addHandler { log.handler($0) }
        inf.start()
        defer { inf.stop() }
        #expect(inf.waitForSync(timeout: 10))
        var expected: [String] = []
        for round in 0..<3 {
            #expect(poll(timeout: 5) { server.activeWatchCount == 1 })
            _ = try c.create(path, pod("live\(round)"))
            expected.append("added live\(round)")
            #expect(poll(timeout: 5) { log.all.count == expected.count })
            server.dropWatches()
            // Changes the dropped stream never carried: the re-watch must replay them.
            server.put(path + "/missed\(round)", pod("missed\(round)"))
            expected.append("added missed\(round)")
        }
        #expect(poll(timeout: 10) { log.all.count == expected.count })
        #expect(log.all == expected)
        #expect(inf.listCount == 1)  // resumed, never relisted
    }

    @Test func bookmarksAdvanceTheResumeVersion() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        server.bookmarkInterval = 0.05
        let c = try testClient(server)
        let inf = testInformer(c, namespace: "default")
        inf.start()
        defer { inf.stop() }
        #expect(inf.waitForSync(timeout: 10))
        #expect(poll(timeout: 5) { server.activeWatchCount == 1 })
        let firstWatch = server.requestLog.last { $0.contains("watch=1") } ?? ""
        // Changes outside the informer's namespace move the global resourceVersion on.
        for i in 0..<5 { _ = try c.create(GroupVersionResource.pods.path(namespace: "other"), pod("o\(i)", namespace: "other")) }
        let target = server.resourceVersion
        server.sendBookmarks()
        #expect(poll(timeout: 5) { inf.lastSyncResourceVersion == target })
        server.dropWatches()
        #expect(poll(timeout: 10) { server.requestLog.filter { $0.contains("watch=1") }.count >= 2 })
        let secondWatch = server.requestLog.last { $0.contains("watch=1") } ?? ""
        #expect(secondWatch != firstWatch)
        #expect(secondWatch.contains("resourceVersion=\(target)&"), "\(secondWatch)")
        #expect(inf.listCount == 1)
    }

    @Test func leaderFailoverAfterExpiry() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let started = Mutex<[String]>([]), stopped = Mutex<[String]>([])
        func elector(_ id: String) -> LeaderElector {
            LeaderElector(client: c, namespace: "gantry-system", name: "gantry", identity: id, leaseDuration: 1, renewDeadline: 0.6, retryPeriod: 0.1)
        }
        let a = elector("a"), b = elector("b")
        a.start(onStartedLeading: { started.withLock { $0.append("a") } }, onStoppedLeading: { stopped.withLock { $0.append("a") } })
        #expect(poll(timeout: 5) { a.isLeader })
        b.start(onStartedLeading: { started.withLock { $0.append("b") } }, onStoppedLeading: { stopped.withLock { $0.append("b") } })
        // The standby must not take a lease that is being renewed.
        #expect(!poll(timeout: 1.5) { b.isLeader })
        #expect(a.isLeader)
        let lease = GroupVersionResource.leases.path(namespace: "gantry-system", name: "gantry")
        #expect(server.object(lease)?["spec"]?["holderIdentity"]?.stringValue == "a")
        let killed = Date()
        a.abandon()  // as a kill -9: no release
        #expect(poll(timeout: 5) { b.isLeader })
        let took = Date().timeIntervalSince(killed)
        #expect(took >= 0.7, "took over after \(took) s, before the lease expired")
        #expect(poll(timeout: 2) { started.withLock { $0 } == ["a", "b"] })
        let spec = server.object(lease)?["spec"]
        #expect(spec?["holderIdentity"]?.stringValue == "b")
        #expect(spec?["leaseTransitions"]?.intValue == 1)
        #expect(spec?["renewTime"]?.stringValue?.count == 27)
        #expect(stopped.withLock { $0 }.isEmpty)
        b.release()
    }

    @Test func cleanReleaseHandsOverQuickly() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let stoppedA = Atomic<Bool>(false)
        let a = LeaderElector(client: c, namespace: "ns", name: "l", identity: "a", leaseDuration: 5, renewDeadline: 3, retryPeriod: 0.1)
        let b = LeaderElector(client: c, namespace: "ns", name: "l", identity: "b", leaseDuration: 5, renewDeadline: 3, retryPeriod: 0.1)
        a.start(onStartedLeading: {}, onStoppedLeading: { stoppedA.store(true, ordering: .relaxed) })
        #expect(poll(timeout: 5) { a.isLeader })
        b.start(onStartedLeading: {}, onStoppedLeading: {})
        #expect(poll(timeout: 5) { server.requestCount("GET", prefix: "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l") >= 4 })
        let released = Date()
        a.release()
        #expect(!a.isLeader)
        #expect(poll(timeout: 4) { b.isLeader })
        #expect(Date().timeIntervalSince(released) < 2.5, "took the lease duration, not a quick takeover")
        let aStopped = stoppedA.load(ordering: .relaxed)
        #expect(!aStopped)
        b.release()
        let spec = server.object("/apis/coordination.k8s.io/v1/namespaces/ns/leases/l")?["spec"]
        #expect(spec?["holderIdentity"]?.stringValue == "")
        #expect(spec?["leaseDurationSeconds"]?.intValue == 1)
    }

    @Test func leaderThatCannotRenewStopsLeading() throws {
        let server = try TestAPIServer(); defer { server.stop() }
        let c = try testClient(server)
        let stopped = Atomic<Bool>(false)
        let a = LeaderElector(client: c, namespace: "ns", name: "l", identity: "a", leaseDuration: 1, renewDeadline: 0.5, retryPeriod: 0.1)
        a.start(onStartedLeading: {}, onStoppedLeading: { stopped.store(true, ordering: .relaxed) })
        #expect(poll(timeout: 5) { a.isLeader })
        server.failNext("PUT", pathPrefix: "/apis/coordination.k8s.io/", status: 500, count: 1000)
        #expect(poll(timeout: 5) { stopped.load(ordering: .relaxed) })
        #expect(!a.isLeader)
    }
}
