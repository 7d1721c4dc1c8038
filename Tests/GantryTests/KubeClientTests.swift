import Testing
import Foundation
import GantryAPI
@testable import KubeClient

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
