import Foundation
import GantryAPI
import KubeTestServer
import Synchronization
import Testing

/// Helpers: one request on a fresh connection, and JSON bodies.
private func call(_ s: TestAPIServer, _ method: String, _ target: String, _ body: String? = nil,
                  contentType: String = "application/json", headers: [String: String] = [:]) -> RawHTTPConnection.Response {
    guard let c = try? RawHTTPConnection(port: s.port),
          let r = c.request(method, target, body: body, contentType: contentType, headers: headers) else {
        Issue.record("no response to \(method) \(target)")
        return RawHTTPConnection.Response(status: 0, headers: [:], body: [])
    }
    return r
}

private func rv(_ v: Value) -> Int64 { Int64(v["metadata"]?["resourceVersion"]?.stringValue ?? "") ?? -1 }

private let podsNS = "/api/v1/namespaces/ns/pods"
private let workloads = "/apis/gantry.dev/v1alpha1/namespaces/team/workloads"

private func workload(_ name: String, labels: String = "{}", spec: String = #"{"replicas":1}"#, extraMeta: String = "") -> String {
    #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"\#(name)","labels":\#(labels)\#(extraMeta)},"spec":\#(spec),"status":{"phase":"Fake"}}"#
}

@Suite(.timeLimit(.minutes(1))) struct TestAPIServerCRUDTests {
    @Test func createGetAndErrors() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        #expect(s.baseURL == "http://127.0.0.1:\(s.port)")
        let created = call(s, "POST", podsNS, #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"i"}]}}"#)
        #expect(created.status == 201)
        let obj = created.json
        #expect(obj["metadata"]?["namespace"]?.stringValue == "ns")
        #expect((obj["metadata"]?["uid"]?.stringValue ?? "").count == 36)
        #expect(obj["metadata"]?["generation"]?.intValue == 1)
        #expect(obj["metadata"]?["creationTimestamp"]?.stringValue?.hasSuffix("Z") == true)
        #expect(obj["status"]?["phase"]?.stringValue == "Pending")
        #expect(rv(obj) > 0)

        let got = call(s, "GET", podsNS + "/p")
        #expect(got.status == 200 && got.json == obj)
        #expect(s.object(podsNS + "/p") == obj)

        let again = call(s, "POST", podsNS, #"{"metadata":{"name":"p"},"spec":{}}"#)
        #expect(again.status == 409)
        #expect(again.json["kind"]?.stringValue == "Status" && again.json["reason"]?.stringValue == "AlreadyExists" && again.json["code"]?.intValue == 409)

        let missing = call(s, "GET", podsNS + "/nope")
        #expect(missing.status == 404 && missing.json["reason"]?.stringValue == "NotFound")
        #expect(missing.json["message"]?.stringValue == "pods \"nope\" not found")

        let generated = call(s, "POST", workloads, #"{"metadata":{"generateName":"w-"},"spec":{"replicas":1},"status":{"phase":"X"}}"#)
        #expect(generated.status == 201)
        let gname = generated.json["metadata"]?["name"]?.stringValue ?? ""
        #expect(gname.hasPrefix("w-") && gname.count == 7)
        #expect(generated.json["kind"]?.stringValue == "Workload" && generated.json["apiVersion"]?.stringValue == "gantry.dev/v1alpha1")
        #expect(generated.json["status"] == nil, "create drops the status of a custom resource")

        let nameless = call(s, "POST", workloads, #"{"metadata":{"uid":"mine"},"spec":{}}"#)
        #expect(nameless.status == 422 && nameless.json["reason"]?.stringValue == "Invalid")
        let ownUID = call(s, "POST", workloads, #"{"metadata":{"name":"u","uid":"mine"},"spec":{}}"#)
        #expect(ownUID.json["metadata"]?["uid"]?.stringValue != "mine", "the server assigns the uid")
        let bad = call(s, "POST", workloads, "<xml/>", contentType: "application/xml")
        #expect(bad.status == 415)
    }

    @Test func listPagingAndSelectors() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        for (ns, name, tier) in [("a", "w1", "gold"), ("b", "w2", "silver"), ("a", "w3", "gold"), ("b", "w4", "bronze"), ("c", "w5", "")] {
            let labels = tier.isEmpty ? "{}" : #"{"tier":"\#(tier)"}"#
            #expect(call(s, "POST", "/apis/gantry.dev/v1alpha1/namespaces/\(ns)/workloads", workload(name, labels: labels)).status == 201)
        }
        var names: [String] = []
        var cont = ""
        var pages = 0
        repeat {
            let r = call(s, "GET", "/apis/gantry.dev/v1alpha1/workloads?limit=2" + (cont.isEmpty ? "" : "&continue=\(cont)"))
            #expect(r.status == 200)
            #expect(r.json["kind"]?.stringValue == "WorkloadList" && r.json["apiVersion"]?.stringValue == "gantry.dev/v1alpha1")
            #expect(Int64(r.json["metadata"]?["resourceVersion"]?.stringValue ?? "") == Int64(s.resourceVersion))
            let items = r.json["items"]?.arrayValue ?? []
            #expect(items.count <= 2)
            names += items.map { $0["metadata"]?["name"]?.stringValue ?? "" }
            cont = r.json["metadata"]?["continue"]?.stringValue ?? ""
            pages += 1
        } while !cont.isEmpty && pages < 10
        #expect(pages == 3)
        #expect(names == ["w1", "w3", "w2", "w4", "w5"], "namespace, then name order")

        func listed(_ q: String, _ base: String = "/apis/gantry.dev/v1alpha1/workloads") -> [String] {
            (call(s, "GET", base + "?" + q).json["items"]?.arrayValue ?? []).map { $0["metadata"]?["name"]?.stringValue ?? "" }
        }
        #expect(listed("labelSelector=tier%3Dgold") == ["w1", "w3"])
        #expect(listed("labelSelector=tier!%3Dgold") == ["w2", "w4", "w5"])
        #expect(listed("labelSelector=tier") == ["w1", "w3", "w2", "w4"])
        #expect(listed("labelSelector=tier,tier!%3Dsilver,tier!%3Dgold") == ["w4"])
        #expect(listed("labelSelector=tier%20in%20(gold,bronze)") == ["w1", "w3", "w4"])
        #expect(listed("labelSelector=tier%20notin%20(gold,bronze),tier") == ["w2"])
        #expect(call(s, "GET", "/apis/gantry.dev/v1alpha1/workloads?labelSelector=tier%20in%20(gold").status == 400)
        #expect(listed("fieldSelector=metadata.name%3Dw2") == ["w2"])
        #expect(listed("fieldSelector=metadata.namespace%3Da") == ["w1", "w3"])
        #expect(listed("", "/apis/gantry.dev/v1alpha1/namespaces/b/workloads") == ["w2", "w4"])
        #expect(s.objects("/apis/gantry.dev/v1alpha1/namespaces/a/workloads").count == 2)
        #expect(s.objects("/apis/gantry.dev/v1alpha1/workloads").count == 5)
    }

    @Test func putConflictGenerationAndStatusKept() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.put(workloads + "/w", try JSON.parse(workload("w")))
        let stored = try #require(s.object(workloads + "/w"))
        #expect(stored["status"]?["phase"]?.stringValue == "Fake", "direct put keeps status")
        let rv1 = rv(stored)

        let stale = call(s, "PUT", workloads + "/w", #"{"metadata":{"name":"w","resourceVersion":"\#(rv1 - 1)"},"spec":{"replicas":2}}"#)
        #expect(stale.status == 409 && stale.json["reason"]?.stringValue == "Conflict")

        let ok = call(s, "PUT", workloads + "/w", #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"w","resourceVersion":"\#(rv1)"},"spec":{"replicas":2},"status":{"phase":"Hacked"}}"#)
        #expect(ok.status == 200)
        #expect(ok.json["metadata"]?["generation"]?.intValue == 2)
        #expect(ok.json["status"]?["phase"]?.stringValue == "Fake", "the main resource keeps the stored status")
        #expect(ok.json["metadata"]?["uid"] == stored["metadata"]?["uid"])
        #expect(rv(ok.json) > rv1)

        let labelsOnly = call(s, "PUT", workloads + "/w", #"{"metadata":{"name":"w","labels":{"a":"b"}},"spec":{"replicas":2}}"#)
        #expect(labelsOnly.json["metadata"]?["generation"]?.intValue == 2, "no spec change, no new generation")
        #expect(labelsOnly.json["metadata"]?["labels"]?["a"]?.stringValue == "b")

        let same = call(s, "PUT", workloads + "/w", JSON.encode(labelsOnly.json))
        #expect(rv(same.json) == rv(labelsOnly.json), "a no-op update does not write")

        let missing = call(s, "PUT", workloads + "/x", #"{"metadata":{"name":"x"}}"#)
        #expect(missing.status == 404)
    }

    @Test func statusSubresource() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.put(workloads + "/w", try JSON.parse(workload("w")))
        let before = try #require(s.object(workloads + "/w"))
        let put = call(s, "PUT", workloads + "/w/status", #"{"metadata":{"name":"w"},"spec":{"replicas":9},"status":{"phase":"Admitted"}}"#)
        #expect(put.status == 200)
        #expect(put.json["status"]?["phase"]?.stringValue == "Admitted")
        #expect(put.json["spec"] == before["spec"], "/status ignores spec")
        #expect(put.json["metadata"]?["generation"]?.intValue == 1)

        let patched = call(s, "PATCH", workloads + "/w/status", #"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
                           contentType: "application/merge-patch+json")
        #expect(patched.status == 200)
        #expect(patched.json["status"]?["phase"]?.stringValue == "Admitted")
        #expect(patched.json["status"]?["conditions"]?.arrayValue?.count == 1)

        // Leases have no status subresource: the main resource writes everything.
        let lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
        #expect(call(s, "POST", lease, #"{"metadata":{"name":"l"},"spec":{"holderIdentity":"a"}}"#).status == 201)
        let ev = call(s, "POST", "/api/v1/namespaces/ns/events", #"{"metadata":{"name":"e.1"},"reason":"R","count":1}"#)
        #expect(ev.status == 201 && ev.json["kind"]?.stringValue == "Event")
        let evp = call(s, "PATCH", "/api/v1/namespaces/ns/events/e.1", #"{"count":2}"#, contentType: "application/merge-patch+json")
        #expect(evp.json["count"]?.intValue == 2)
    }

    @Test func crdsBecomeEstablished() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        let crd = #"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"workloads.gantry.dev"},"spec":{"group":"gantry.dev","names":{"kind":"Workload","plural":"workloads","shortNames":["wl"]},"scope":"Namespaced","versions":[{"name":"v1alpha1","served":true,"storage":true}]}}"#
        let r = call(s, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        #expect(r.status == 201)
        let conditions = r.json["status"]?["conditions"]?.arrayValue ?? []
        #expect(conditions.contains { $0["type"]?.stringValue == "Established" && $0["status"]?.stringValue == "True" })
        #expect(r.json["status"]?["acceptedNames"]?["kind"]?.stringValue == "Workload")
        #expect(r.json["status"]?["storedVersions"] == .array([.string("v1alpha1")]))
    }

    @Test func mergeAndJSONPatch() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.put(workloads + "/w", try JSON.parse(workload("w", labels: #"{"a":"1","b":"2"}"#, spec: #"{"replicas":1,"queue":"q"}"#)))
        let merged = call(s, "PATCH", workloads + "/w", #"{"metadata":{"labels":{"a":null,"c":"3"}},"spec":{"replicas":4}}"#,
                          contentType: "application/merge-patch+json")
        #expect(merged.status == 200)
        #expect(merged.json["metadata"]?["labels"] == .object([.init("b", .string("2")), .init("c", .string("3"))]))
        #expect(merged.json["spec"]?["replicas"]?.intValue == 4 && merged.json["spec"]?["queue"]?.stringValue == "q")
        #expect(merged.json["metadata"]?["generation"]?.intValue == 2)

        let jp = call(s, "PATCH", workloads + "/w", #"[{"op":"test","path":"/spec/replicas","value":4},{"op":"replace","path":"/spec/replicas","value":5},{"op":"add","path":"/metadata/finalizers","value":["x/y"]},{"op":"add","path":"/metadata/finalizers/-","value":"z"},{"op":"remove","path":"/spec/queue"}]"#,
                      contentType: "application/json-patch+json")
        #expect(jp.status == 200)
        #expect(jp.json["spec"] == .object([.init("replicas", .int(5))]))
        #expect(jp.json["metadata"]?["finalizers"] == .array([.string("x/y"), .string("z")]))

        let failedTest = call(s, "PATCH", workloads + "/w", #"[{"op":"test","path":"/spec/replicas","value":1},{"op":"replace","path":"/spec/replicas","value":7}]"#,
                              contentType: "application/json-patch+json")
        #expect(failedTest.status == 422)
        #expect(s.object(workloads + "/w")?["spec"]?["replicas"]?.intValue == 5)

        let staleRV = call(s, "PATCH", workloads + "/w", #"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":8}}"#,
                           contentType: "application/merge-patch+json")
        #expect(staleRV.status == 409)

        let smp = call(s, "PATCH", workloads + "/w", #"{"spec":{}}"#, contentType: "application/strategic-merge-patch+json")
        #expect(smp.status == 415)
        #expect(call(s, "PATCH", workloads + "/none", #"{}"#, contentType: "application/merge-patch+json").status == 404)
    }
}

@Suite(.timeLimit(.minutes(1))) struct TestAPIServerDeletionTests {
    @Test func finalizersHoldDeletion() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.put(workloads + "/w", try JSON.parse(workload("w", extraMeta: #","finalizers":["gantry.dev/cleanup"]"#)))
        let start = rv(try #require(s.object(workloads + "/w")))
        let watch = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=\(start)"))
        #expect(watch.status == 200)

        let wrongUID = call(s, "DELETE", workloads + "/w", #"{"preconditions":{"uid":"nope"}}"#)
        #expect(wrongUID.status == 409 && wrongUID.json["reason"]?.stringValue == "Conflict")

        let del = call(s, "DELETE", workloads + "/w", #"{"kind":"DeleteOptions","apiVersion":"v1"}"#)
        #expect(del.status == 200)
        #expect(del.json["metadata"]?["deletionTimestamp"]?.stringValue != nil)
        #expect(call(s, "GET", workloads + "/w").status == 200, "a finalizer keeps the object")
        #expect(watch.nextChange()?["type"]?.stringValue == "MODIFIED")

        let emptied = call(s, "PATCH", workloads + "/w", #"{"metadata":{"finalizers":null}}"#, contentType: "application/merge-patch+json")
        #expect(emptied.status == 200)
        #expect(call(s, "GET", workloads + "/w").status == 404)
        let gone = watch.nextChange()
        #expect(gone?["type"]?.stringValue == "DELETED")
        #expect(gone.map { rv($0["object"] ?? .null) } ?? 0 > rv(del.json))
    }

    @Test func podGracefulDeletionAndKubelet() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        let bound = #"{"metadata":{"name":"NAME"},"spec":{"nodeName":"n1","containers":[{"name":"main","image":"img"}]}}"#
        #expect(call(s, "POST", podsNS, bound.replacingOccurrences(of: "NAME", with: "a")).status == 201)
        s.setPodPhase(namespace: "ns", name: "a", phase: "Running")
        let running = try #require(s.object(podsNS + "/a"))
        #expect(running["status"]?["containerStatuses"]?.arrayValue?.first?["state"]?["running"] != nil)
        #expect(running["status"]?["startTime"] != nil)

        let del = call(s, "DELETE", podsNS + "/a")
        #expect(del.status == 200)
        #expect(del.json["metadata"]?["deletionGracePeriodSeconds"]?.intValue == 30)
        #expect(s.object(podsNS + "/a") != nil, "a running bound pod waits for its kubelet")
        s.setPodPhase(namespace: "ns", name: "a", phase: "Failed", exitCode: 3)
        #expect(s.object(podsNS + "/a") == nil, "a finished deleting pod goes")

        #expect(call(s, "POST", podsNS, #"{"metadata":{"name":"unbound"},"spec":{}}"#).status == 201)
        #expect(call(s, "DELETE", podsNS + "/unbound").status == 200)
        #expect(s.object(podsNS + "/unbound") == nil)

        s.kubeletRunSeconds = 0.05
        s.runKubelet(autoRun: true, exitCode: 0)
        #expect(call(s, "POST", podsNS, bound.replacingOccurrences(of: "NAME", with: "b")).status == 201)
        #expect(poll(timeout: 10) { s.object(podsNS + "/b")?["status"]?["phase"]?.stringValue == "Succeeded" })
        let done = try #require(s.object(podsNS + "/b"))
        #expect(done["status"]?["containerStatuses"]?.arrayValue?.first?["state"]?["terminated"]?["exitCode"]?.intValue == 0)

        s.runKubelet(autoRun: true, exitCode: 2)
        #expect(call(s, "POST", podsNS, bound.replacingOccurrences(of: "NAME", with: "f")).status == 201)
        #expect(poll(timeout: 10) { s.object(podsNS + "/f")?["status"]?["phase"]?.stringValue == "Failed" })
        #expect(s.object(podsNS + "/f")?["status"]?["containerStatuses"]?.arrayValue?.first?["state"]?["terminated"]?["exitCode"]?.intValue == 2)

        s.runKubelet(autoRun: true, exitCode: nil)
        #expect(call(s, "POST", podsNS, bound.replacingOccurrences(of: "NAME", with: "c")).status == 201)
        #expect(poll(timeout: 10) { s.object(podsNS + "/c")?["status"]?["phase"]?.stringValue == "Running" })
        #expect(call(s, "DELETE", podsNS + "/c", #"{"gracePeriodSeconds":5}"#).status == 200)
        #expect(poll(timeout: 10) { s.object(podsNS + "/c") == nil }, "the kubelet stand-in removes a deleting pod")
    }
}

@Suite(.timeLimit(.minutes(1))) struct TestAPIServerWatchTests {
    @Test func watchDeliversChangesInOrder() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.put(workloads + "/old", try JSON.parse(workload("old")))
        let list = call(s, "GET", workloads)
        let listRV = try #require(list.json["metadata"]?["resourceVersion"]?.stringValue)

        let fromZero = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=0"))
        let first = fromZero.nextChange()
        #expect(first?["type"]?.stringValue == "ADDED" && first?["object"]?["metadata"]?["name"]?.stringValue == "old")

        let w = try #require(RawWatch(port: s.port, workloads + "?watch=true&resourceVersion=\(listRV)&allowWatchBookmarks=true"))
        #expect(w.status == 200)
        #expect(call(s, "POST", workloads, workload("a")).status == 201)
        #expect(call(s, "PATCH", workloads + "/a", #"{"spec":{"replicas":3}}"#, contentType: "application/merge-patch+json").status == 200)
        #expect(call(s, "DELETE", workloads + "/a").status == 200)
        // Another namespace and another resource are not part of this watch.
        #expect(call(s, "POST", "/apis/gantry.dev/v1alpha1/namespaces/other/workloads", workload("z")).status == 201)
        #expect(call(s, "POST", "/apis/gantry.dev/v1alpha1/queues", #"{"metadata":{"name":"q"}}"#).status == 201)
        #expect(call(s, "POST", workloads, workload("b")).status == 201)

        var seen: [(String, String, Int64)] = []
        for _ in 0..<4 {
            guard let e = w.nextChange() else { break }
            seen.append((e["type"]?.stringValue ?? "", e["object"]?["metadata"]?["name"]?.stringValue ?? "", rv(e["object"] ?? .null)))
        }
        #expect(seen.map { "\($0.0) \($0.1)" } == ["ADDED a", "MODIFIED a", "DELETED a", "ADDED b"])
        #expect(seen.map(\.2) == seen.map(\.2).sorted() && Set(seen.map(\.2)).count == 4)

        // A watch from the middle of history replays only what came after.
        let mid = seen[1].2
        let replay = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=\(mid)"))
        #expect(replay.nextChange()?["type"]?.stringValue == "DELETED")
        #expect(replay.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "b")
    }

    @Test func concurrentWritersOneOrderedWatch() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        let w = try #require(RawWatch(port: s.port, "/apis/gantry.dev/v1alpha1/workloads?watch=1&resourceVersion=\(s.resourceVersion)"))
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            guard let c = try? RawHTTPConnection(port: s.port) else { failures.withLock { $0 += 1 }; return }
            for i in 0..<25 {
                let r = c.request("POST", "/apis/gantry.dev/v1alpha1/namespaces/t\(t)/workloads", body: workload("w\(i)"))
                if r?.status != 201 { failures.withLock { $0 += 1 } }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        var rvs: [Int64] = []
        while rvs.count < 100, let e = w.nextChange() {
            #expect(e["type"]?.stringValue == "ADDED")
            rvs.append(rv(e["object"] ?? .null))
        }
        #expect(rvs.count == 100)
        #expect(zip(rvs, rvs.dropFirst()).allSatisfy { $0 < $1 }, "events arrive in resourceVersion order")
        #expect(s.objects("/apis/gantry.dev/v1alpha1/workloads").count == 100)
    }

    @Test func selectorWatchSeesObjectsLeaveAndEnter() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        let w = try #require(RawWatch(port: s.port, "/apis/gantry.dev/v1alpha1/workloads?watch=1&labelSelector=tier%3Dgold&resourceVersion=\(s.resourceVersion)"))
        #expect(call(s, "POST", workloads, workload("w", labels: #"{"tier":"silver"}"#)).status == 201)
        #expect(call(s, "PATCH", workloads + "/w", #"{"metadata":{"labels":{"tier":"gold"}}}"#, contentType: "application/merge-patch+json").status == 200)
        #expect(call(s, "PATCH", workloads + "/w", #"{"metadata":{"labels":{"tier":"lead"}}}"#, contentType: "application/merge-patch+json").status == 200)
        #expect(w.nextChange()?["type"]?.stringValue == "ADDED")
        #expect(w.nextChange()?["type"]?.stringValue == "DELETED")
    }

    @Test(arguments: [true, false]) func expiredHistoryGets410(asEvent: Bool) throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.watch410AsEvent = asEvent
        let old = s.resourceVersion
        s.put(workloads + "/a", try JSON.parse(workload("a")))
        s.expireWatchHistory()
        let w = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=\(old)"))
        if asEvent {
            #expect(w.status == 200)
            guard case .event(let e) = w.next() else { Issue.record("no ERROR event"); return }
            #expect(e["type"]?.stringValue == "ERROR")
            #expect(e["object"]?["code"]?.intValue == 410 && e["object"]?["reason"]?.stringValue == "Expired")
            guard case .end = w.next() else { Issue.record("the stream should end cleanly"); return }
        } else {
            #expect(w.status == 410)
            var body = w.conn.readBody(w.headers) ?? []
            let status = try JSON.parse(bytes: &body)
            #expect(status["kind"]?.stringValue == "Status" && status["code"]?.intValue == 410 && status["reason"]?.stringValue == "Expired")
        }
        // A watch from the current resourceVersion still works.
        let fresh = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=\(s.resourceVersion)"))
        #expect(fresh.status == 200)
        #expect(call(s, "POST", workloads, workload("b")).status == 201)
        #expect(fresh.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "b")
    }

    @Test func boundedHistoryExpiresOldResourceVersions() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.historyLimit = 4
        let start = s.resourceVersion
        for i in 0..<10 { s.put(workloads + "/w\(i)", try JSON.parse(workload("w\(i)"))) }
        let old = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=\(start)"))
        guard case .event(let e) = old.next() else { Issue.record("expected an ERROR event"); return }
        #expect(e["type"]?.stringValue == "ERROR" && e["object"]?["code"]?.intValue == 410)
        // The last few events are still there to replay.
        let recentRV = rv(try #require(s.object(workloads + "/w7")))
        let recent = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=\(recentRV)"))
        #expect(recent.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "w8")
        #expect(recent.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "w9")
    }

    @Test func bookmarksAndTimeout() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.bookmarkInterval = 0.05
        s.put(workloads + "/a", try JSON.parse(workload("a")))
        let w = try #require(RawWatch(port: s.port, workloads + "?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=\(s.resourceVersion)"))
        guard case .event(let b) = w.next() else { Issue.record("no bookmark"); return }
        #expect(b["type"]?.stringValue == "BOOKMARK")
        #expect(b["object"]?["kind"]?.stringValue == "Workload")
        #expect(b["object"]?["metadata"] == .object([.init("resourceVersion", .string(s.resourceVersion))]))
        var ended = false
        for _ in 0..<200 {
            if case .end = w.next(timeout: 3) { ended = true; break }
        }
        #expect(ended, "the stream ends cleanly after timeoutSeconds")
        // The connection stays usable after a watch ends.
        let again = w.conn.request("GET", workloads + "/a")
        #expect(again?.status == 200)

        // On demand, without waiting for the interval.
        s.bookmarkInterval = 60
        let onDemand = try #require(RawWatch(port: s.port, workloads + "?watch=1&allowWatchBookmarks=true&resourceVersion=\(s.resourceVersion)"))
        #expect(poll(timeout: 5) { s.activeWatchCount == 1 })
        s.sendBookmarks()
        guard case .event(let d) = onDemand.next(timeout: 5) else { Issue.record("no bookmark on demand"); return }
        #expect(d["type"]?.stringValue == "BOOKMARK")

        let noBookmarks = try #require(RawWatch(port: s.port, workloads + "?watch=1&timeoutSeconds=1&resourceVersion=\(s.resourceVersion)"))
        guard case .end = noBookmarks.next(timeout: 5) else { Issue.record("expected a quiet stream that ends"); return }
    }

    @Test func splitChunksStillDecode() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.splitWatchChunks = true
        let w = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=\(s.resourceVersion)"))
        #expect(call(s, "POST", workloads, workload("a")).status == 201)
        #expect(call(s, "POST", workloads, workload("b")).status == 201)
        #expect(w.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "a")
        #expect(w.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "b")
        #expect(w.conn.chunkSizes.count > 20 && w.conn.chunkSizes.allSatisfy { $0 <= 7 })
        // Initial ADDED events go out as one batch: chunks straddle the events' ends.
        let all = try #require(RawWatch(port: s.port, workloads + "?watch=1&resourceVersion=0"))
        #expect(all.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "a")
        #expect(all.nextChange()?["object"]?["metadata"]?["name"]?.stringValue == "b")
    }

    @Test func dropWatchesBreaksStreams() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        let a = try #require(RawWatch(port: s.port, workloads + "?watch=1"))
        let b = try #require(RawWatch(port: s.port, "/api/v1/pods?watch=1"))
        #expect(poll(timeout: 5) { s.activeWatchCount == 2 })
        s.dropWatches()
        guard case .broken = a.next() else { Issue.record("stream a should break without a terminating chunk"); return }
        guard case .broken = b.next() else { Issue.record("stream b should break"); return }
        #expect(poll(timeout: 5) { s.activeWatchCount == 0 })
    }
}

@Suite(.timeLimit(.minutes(1))) struct TestAPIServerFaultTests {
    @Test func bearerToken() throws {
        let s = try TestAPIServer(token: "sekret")
        defer { s.stop() }
        let denied = call(s, "GET", podsNS)
        #expect(denied.status == 401 && denied.json["reason"]?.stringValue == "Unauthorized")
        #expect(call(s, "GET", podsNS, headers: ["Authorization": "Bearer wrong"]).status == 401)
        #expect(call(s, "GET", podsNS, headers: ["Authorization": "Bearer sekret"]).status == 200)
    }

    @Test func failNextAndRequestLog() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        s.failNext("POST", pathPrefix: "/api/v1/namespaces/ns/pods", status: 429, count: 2)
        let first = call(s, "POST", podsNS, #"{"metadata":{"name":"p"}}"#)
        #expect(first.status == 429 && first.json["reason"]?.stringValue == "TooManyRequests" && first.headers["retry-after"] == "1")
        #expect(call(s, "GET", podsNS).status == 200, "other methods are not affected")
        #expect(call(s, "POST", podsNS, #"{"metadata":{"name":"p"}}"#).status == 429)
        #expect(call(s, "POST", podsNS, #"{"metadata":{"name":"p"}}"#).status == 201)
        #expect(s.requestLog == ["POST \(podsNS)", "GET \(podsNS)", "POST \(podsNS)", "POST \(podsNS)"])
        #expect(s.requestCounts == ["POST": 3, "GET": 1])
        #expect(s.requestCount("POST", prefix: podsNS) == 3)
        s.retryAfterSeconds = nil
        s.failNext("*", pathPrefix: "/api", status: 429, count: 1)
        let noRetry = call(s, "GET", podsNS)
        #expect(noRetry.status == 429 && noRetry.headers["retry-after"] == nil)
        s.failNext("GET", pathPrefix: "/api", status: 500, count: 1)
        #expect(call(s, "GET", podsNS).json["reason"]?.stringValue == "InternalError")
        #expect(call(s, "GET", podsNS).status == 200)
        s.resetRequestLog()
        #expect(s.requestLog.isEmpty)
    }

    @Test func chunkedBodyExpectContinueAndProbes() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        let c = try RawHTTPConnection(port: s.port)
        let body = #"{"metadata":{"name":"chunky"},"spec":{}}"#
        let half = body.utf8.count / 2
        let first = String(decoding: Array(body.utf8)[..<half], as: UTF8.self), second = String(decoding: Array(body.utf8)[half...], as: UTF8.self)
        #expect(c.send("POST \(podsNS) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"))
        let (cont, _) = try #require(c.readHead())
        #expect(cont == 100)
        #expect(c.send(String(first.utf8.count, radix: 16) + "\r\n" + first + "\r\n" + String(second.utf8.count, radix: 16) + "\r\n" + second + "\r\n0\r\n\r\n"))
        let (code, headers) = try #require(c.readHead())
        #expect(code == 201)
        _ = c.readBody(headers)
        #expect(s.object(podsNS + "/chunky") != nil)
        #expect(c.request("GET", "/healthz").map { String(decoding: $0.body, as: UTF8.self) } == "ok")
        #expect(c.request("GET", "/version")?.json["major"]?.stringValue == "1")
        #expect(c.request("GET", "/nothing/here")?.status == 404)
    }

    /// A real client (curl) against the server: a body large enough that curl sends
    /// `Expect: 100-continue`, bearer auth, and a chunked watch that ends by timeout.
    @Test func curlIsAClient() throws {
        let s = try TestAPIServer(token: "t0k")
        defer { s.stop() }
        let big = String(repeating: "x", count: 4000)
        let body = #"{"metadata":{"name":"big","annotations":{"a":"\#(big)"}},"spec":{"replicas":1}}"#
        let post = runProcess("/usr/bin/curl", ["-sS", "--max-time", "10", "-H", "Authorization: Bearer t0k", "-H", "Content-Type: application/json",
                                                "-w", "\n%{http_code}", "-d", body, s.baseURL + workloads])
        #expect(post.status == 0 && post.output.hasSuffix("\n201"), "\(post.output.suffix(200))")
        #expect(s.object(workloads + "/big")?["metadata"]?["annotations"]?["a"]?.stringValue == big)
        let watch = runProcess("/usr/bin/curl", ["-sS", "-N", "--max-time", "10", "-H", "Authorization: Bearer t0k",
                                                 s.baseURL + workloads + "?watch=1&resourceVersion=0&timeoutSeconds=1"])
        #expect(watch.status == 0, "a clean end of the chunked stream: \(watch.output)")
        let lines = watch.output.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.contains(#""type":"ADDED""#) == true)
        let denied = runProcess("/usr/bin/curl", ["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", s.baseURL + workloads])
        #expect(denied.output == "401")
    }

    @Test func expiredContinueTokenGets410() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        for n in ["a", "b", "c"] { s.put(workloads + "/" + n, try JSON.parse(workload(n))) }
        let page = call(s, "GET", workloads + "?limit=1")
        let token = try #require(page.json["metadata"]?["continue"]?.stringValue)
        #expect(call(s, "GET", workloads + "?limit=1&continue=\(token)").json["items"]?.arrayValue?.first?["metadata"]?["name"]?.stringValue == "b")
        s.put(workloads + "/d", try JSON.parse(workload("d")))
        s.expireWatchHistory()
        let expired = call(s, "GET", workloads + "?limit=1&continue=\(token)")
        #expect(expired.status == 410 && expired.json["reason"]?.stringValue == "Expired")
        #expect(call(s, "GET", workloads + "?limit=1&continue=zz").status == 400)
    }

    @Test func stopLeavesNoThreadsOrConnections() throws {
        let s = try TestAPIServer()
        s.runKubelet(autoRun: true, exitCode: nil)
        let idle = try RawHTTPConnection(port: s.port)
        #expect(idle.request("GET", podsNS)?.status == 200)
        let w1 = try #require(RawWatch(port: s.port, workloads + "?watch=1&allowWatchBookmarks=true"))
        let w2 = try #require(RawWatch(port: s.port, "/api/v1/nodes?watch=1"))
        #expect(poll(timeout: 5) { s.activeWatchCount == 2 && s.openConnectionCount == 3 })
        #expect(s.liveThreadCount == 5, "accept loop, kubelet, three connections")
        s.stop()
        #expect(s.liveThreadCount == 0)
        #expect(s.openConnectionCount == 0)
        #expect(s.activeWatchCount == 0)
        _ = (w1, w2)
        s.stop()
    }

    @Test func dropConnectionsAndResponseDelay() throws {
        let s = try TestAPIServer()
        defer { s.stop() }
        let c = try RawHTTPConnection(port: s.port)
        #expect(c.request("GET", podsNS)?.status == 200)
        let w = try #require(RawWatch(port: s.port, workloads + "?watch=1"))
        #expect(poll(timeout: 5) { s.activeWatchCount == 1 && s.openConnectionCount == 2 })
        s.dropConnections()
        #expect(c.request("GET", podsNS) == nil, "the kept-alive connection is gone")
        guard case .broken = w.next() else { Issue.record("the watch should break"); return }
        #expect(poll(timeout: 5) { s.openConnectionCount == 0 })
        #expect(call(s, "GET", podsNS).status == 200, "new connections are served")

        s.responseDelay = 1.5
        let slow = try RawHTTPConnection(port: s.port)
        #expect(slow.send("GET \(podsNS) HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(slow.readHead(timeout: 0.05) == nil, "no answer before the delay")
        s.responseDelay = 0
        #expect(slow.readHead(timeout: 5)?.0 == 200)
    }

    @Test func keepAliveAndStopClosesConnections() throws {
        let s = try TestAPIServer()
        let c = try RawHTTPConnection(port: s.port)
        #expect(c.request("POST", podsNS, body: #"{"metadata":{"name":"p"}}"#)?.status == 201)
        #expect(c.request("GET", podsNS + "/p")?.status == 200, "a second request on the same connection")
        let w = try #require(RawWatch(port: s.port, workloads + "?watch=1"))
        #expect(poll(timeout: 5) { s.activeWatchCount == 1 })
        s.stop()
        #expect(c.request("GET", podsNS + "/p") == nil, "stop closes idle keep-alive connections")
        switch w.next() {
        case .broken, .end: break
        default: Issue.record("stop ends watch streams")
        }
        #expect(s.liveThreadCount == 0)
    }
}
