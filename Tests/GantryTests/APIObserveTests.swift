import Testing
import Foundation
import Synchronization
import GantryAPI
@testable import GantryServer
@testable import HTTPServer

@Suite(.timeLimit(.minutes(1))) struct APIObserveTests {
    static let w = "/api/v1/namespaces/team-a/workloads/train"

    @Test func logsWithTailTimestampsAndLimit() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let all = apiCall(router, "GET", Self.w + "/replicas/0/logs", token: "viewer-token")
        #expect(all.status == 200)
        #expect(all.response.header("Content-Type")?.hasPrefix("text/plain") == true)
        #expect(all.text == (1...10).map { "line \($0)\n" }.joined())
        #expect(apiCall(router, "GET", Self.w + "/replicas/0/logs?tail=2", token: "viewer-token").text == "line 9\nline 10\n")
        #expect(apiCall(router, "GET", Self.w + "/replicas/0/logs?tail=0", token: "viewer-token").text == "")
        #expect(apiCall(router, "GET", Self.w + "/replicas/0/logs?limitBytes=8", token: "viewer-token").text == "line 1\nl")
        let stamped = apiCall(router, "GET", Self.w + "/replicas/0/logs?tail=1&timestamps=true", token: "viewer-token").text
        #expect(stamped == Timestamp(secondsSince1970: APIFixture.now).rfc3339 + " line 10\n")
        #expect(apiCall(router, "GET", Self.w + "/replicas/0/logs?sinceSeconds=10", token: "viewer-token").text.hasPrefix("line 1\n"))
        #expect(apiCall(router, "GET", Self.w + "/replicas/1/logs", token: "viewer-token").status == 404)
        #expect(apiCall(router, "GET", Self.w + "/replicas/x/logs", token: "viewer-token").status == 400)
        #expect(apiCall(router, "GET", Self.w + "/replicas/-1/logs", token: "viewer-token").status == 400)
        #expect(apiCall(router, "GET", Self.w + "/replicas/0/logs?tail=-3", token: "viewer-token").status == 400)
        #expect(apiCall(router, "GET", Self.w + "/replicas/0/logs?follow=maybe", token: "viewer-token").status == 400)
        #expect(apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads/nothere/replicas/0/logs", token: "viewer-token").status == 404)
    }

    @Test func followStreamsAGrowingLogUntilItEnds() throws {
        let backend = try APIFixture.backend()
        let key = ObjectKey(.workload, namespace: "team-a", name: "wait-2")
        backend.appendLog(key, rank: 0, "first\n")
        let server = try HTTPServer(address: "127.0.0.1:0", handler: try APIFixture.router(backend))
        defer { server.stop() }
        let c = try RawClient(port: server.port)
        c.send("GET /api/v1/namespaces/team-a/workloads/wait-2/replicas/0/logs?follow=true HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer viewer-token\r\nConnection: close\r\n\r\n")
        var got = c.read { String(decoding: $0, as: UTF8.self).contains("first\n") }
        #expect(String(decoding: got, as: UTF8.self).contains("first\n"))
        for i in 0..<100 { backend.appendLog(key, rank: 0, "more \(i)\n") }
        got += c.read { String(decoding: $0, as: UTF8.self).contains("more 99\n") }
        backend.appendLog(key, rank: 0, "last\n")
        backend.endLog(key, rank: 0)
        got += c.readToEnd()
        let r = try #require(parseResponse(got))
        #expect(r.status == 200)
        #expect(r.headers["transfer-encoding"] == "chunked")
        #expect(r.text == "first\n" + (0..<100).map { "more \($0)\n" }.joined() + "last\n")
    }

    @Test func aFollowerThatLeavesEndsTheReader() throws {
        let backend = try APIFixture.backend()
        let key = ObjectKey(.workload, namespace: "team-a", name: "wait-2")
        backend.appendLog(key, rank: 0, "hello\n")
        let ended = Atomic<Bool>(false)
        let reader = try backend.log(key, rank: 0)
        let server = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in
            .stream(contentType: "text/plain") { write in
                try? reader.read(LogOptions(follow: true)) { write($0) }
                ended.store(true, ordering: .relaxed)
            }
        })
        defer { server.stop() }
        let c = try RawClient(port: server.port)
        c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(String(decoding: c.read { String(decoding: $0, as: UTF8.self).contains("hello") }, as: UTF8.self).contains("hello"))
        let stillFollowing = !ended.load(ordering: .relaxed)
        #expect(stillFollowing)
        c.close()
        #expect(poll(timeout: 10) { ended.load(ordering: .relaxed) }, "the reader returned after the client left")
    }

    @Test func eventsOfAWorkloadAndOfAReplica() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let all = apiCall(router, "GET", Self.w + "/events", token: "viewer-token")
        let items = all.json?["items"]?.arrayValue ?? []
        #expect(items.map { $0["reason"]?.stringValue ?? "" } == ["Admitted", "Started", "Restarted", "Other"])
        #expect(items.first?["firstTimestamp"]?.stringValue == Timestamp(secondsSince1970: APIFixture.now - 3100).rfc3339)
        let limited = apiCall(router, "GET", Self.w + "/events?limit=1", token: "viewer-token")
        #expect(limited.json?["items"]?.arrayValue?.map { $0["reason"]?.stringValue ?? "" } == ["Other"])
        let since = Timestamp(secondsSince1970: APIFixture.now - 2500).rfc3339
        let ranged = apiCall(router, "GET", Self.w + "/events?since=\(since)&until=\(Int(APIFixture.now - 1500))", token: "viewer-token")
        #expect(ranged.json?["items"]?.arrayValue?.map { $0["reason"]?.stringValue ?? "" } == ["Restarted"])
        let r0 = apiCall(router, "GET", Self.w + "/replicas/0/events", token: "viewer-token")
        #expect(r0.json?["items"]?.arrayValue?.map { $0["reason"]?.stringValue ?? "" } == ["Started"])
        let r1 = apiCall(router, "GET", Self.w + "/replicas/1/events", token: "viewer-token")
        #expect(r1.json?["items"]?.arrayValue?.map { $0["reason"]?.stringValue ?? "" } == ["Restarted"], "train-worker-10 is not rank 1")
        #expect(apiCall(router, "GET", Self.w + "/events?since=yesterday", token: "viewer-token").status == 400)
        #expect(apiCall(router, "GET", Self.w + "/events?limit=0", token: "viewer-token").status == 400)
    }

    @Test func gpuAndTrainingMetrics() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let start = Int(APIFixture.now - 3600), end = Int(APIFixture.now)
        let m = apiCall(router, "GET", Self.w + "/metrics?start=\(start)&end=\(end)&step=600", token: "viewer-token")
        #expect(m.status == 200, "\(m.text)")
        #expect(m.json?["workload"]?.stringValue == "team-a/train")
        #expect(m.json?["step"]?.intValue == 600)
        let series = m.json?["series"]?.arrayValue ?? []
        #expect(series.compactMap { $0["gpu"]?.intValue } == [0, 1, 2, 3])
        #expect(series.first?["metric"]?.stringValue == "gpu_utilization_percent")
        #expect(series.first?["samples"]?.arrayValue?.count == 6)
        #expect(series.first?["samples"]?.arrayValue?.first == .array([.int(Int64(start)), .int(50)]))
        let r1 = apiCall(router, "GET", Self.w + "/replicas/1/metrics?start=\(start)&end=\(end)&numberOfSamples=10", token: "viewer-token")
        #expect(r1.json?["series"]?.arrayValue?.compactMap { $0["gpu"]?.intValue } == [2, 3])
        let t = apiCall(router, "GET", Self.w + "/trainingMetrics?start=\(start)&end=\(end)&step=60", token: "viewer-token")
        let ts = t.json?["series"]?.arrayValue ?? []
        #expect(ts.count == 1)
        #expect(ts.first?["metric"]?.stringValue == "loss")
        #expect(ts.first?["rank"]?.intValue == 0)
        #expect(ts.first?["samples"]?.arrayValue?.count == 10)
        #expect(apiCall(router, "GET", Self.w + "/metrics?step=-1", token: "viewer-token").status == 400)
        #expect(apiCall(router, "GET", Self.w + "/replicas/7/metrics", token: "viewer-token").status == 404)
    }

    @Test func queuesPendingPoolsAndNodes() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let q = apiCall(router, "GET", "/api/v1/queues/research", token: "viewer-token")
        #expect(q.json?["usage"]?["allocated"]?["gpu"]?.intValue == 4)
        #expect(q.json?["usage"]?["pending"]?.intValue == 2)
        #expect(apiCall(router, "GET", "/api/v1/queues", token: "viewer-token").json?["items"]?.arrayValue?.count == 1)
        let pending = apiCall(router, "GET", "/api/v1/queues/research/pending", token: "viewer-token")
        let items = pending.json?["items"]?.arrayValue ?? []
        #expect(items.compactMap { $0["workload"]?.stringValue } == ["team-b/wait-1", "team-a/wait-2", "team-c/other"])
        #expect(items.first?["reason"]?.stringValue == "waiting for quota: 8 gpu")
        #expect(items.first?["gpus"]?.intValue == 8)
        let restricted = apiCall(router, "GET", "/api/v1/queues/research/pending", token: "teamb-token")
        #expect(restricted.json?["items"]?.arrayValue?.count == 1)
        #expect(apiCall(router, "GET", "/api/v1/queues/nope/pending", token: "viewer-token").status == 404)

        let created = apiCall(router, "POST", "/api/v1/queues", token: "admin-token",
                              body: #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"q2"},"spec":{"deserved":{"gpu":4}}}"#)
        #expect(created.status == 201, "\(created.text)")
        #expect(created.json?["usage"]?["pending"]?.intValue == 0)
        let patched = apiCall(router, "PATCH", "/api/v1/queues/q2", token: "admin-token", body: #"{"spec":{"deserved":{"gpu":8}}}"#)
        #expect(patched.status == 200, "\(patched.text)")
        #expect(backend.get(ObjectKey(.queue, name: "q2"))?.object.spec.queue?.deserved.gpu == 8)
        #expect(apiCall(router, "DELETE", "/api/v1/queues/q2", token: "admin-token").status == 200)
        #expect(apiCall(router, "DELETE", "/api/v1/queues/q2", token: "admin-token").status == 404)

        let node = apiCall(router, "GET", "/api/v1/nodes/node-1", token: "viewer-token")
        let gpus = node.json?["allocation"]?["gpus"]?.arrayValue ?? []
        #expect(gpus.count == 8)
        #expect(gpus.prefix(5).map { $0["workload"] ?? .null } == [.string("team-a/train"), .string("team-a/train"), .string("team-a/train"), .string("team-a/train"), .null])
        #expect(apiCall(router, "GET", "/api/v1/nodes", token: "viewer-token").json?["items"]?.arrayValue?.count == 2)
        #expect(apiCall(router, "GET", "/api/v1/resourcepools", token: "viewer-token").json?["items"]?.arrayValue?.count == 1)
        #expect(apiCall(router, "GET", "/api/v1/resourcepools/pool-a", token: "viewer-token").json?["owner"]?.stringValue == "manifest")
        #expect(apiCall(router, "GET", "/api/v1/resourcepools/pool-a/nodes", token: "viewer-token").json?["items"]?.arrayValue?.count == 2)
        #expect(apiCall(router, "GET", "/api/v1/resourcepools/none/nodes", token: "viewer-token").status == 404)

        let h = apiCall(router, "GET", Self.w + "/replicas", token: "viewer-token")
        #expect(h.json?["replicas"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["train-master-0", "train-worker-1"])
        #expect(h.json?["replicas"]?.arrayValue?.last?["restarts"]?.intValue == 1)
    }
}
