import Testing
import Foundation
import GantryAPI
@testable import GantryServer
@testable import HTTPServer

@Suite(.timeLimit(.minutes(1))) struct APIWorkloadTests {
    static let job = #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"job1","labels":{"app":"x"},"annotations":{"gantry.dev/submitter":"mallory"}},"spec":{"image":"img:2","command":"echo hi","queue":"research","resources":{"gpu":1}}}"#

    @Test func createGetPatchDeleteRoundTrip() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let created = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "editor-token", body: Self.job, contentType: "application/json")
        #expect(created.status == 201, "\(created.text)")
        #expect(created.json?["metadata"]?["name"]?.stringValue == "job1")
        #expect(created.json?["owner"]?.stringValue == "api")
        // The submitter is the token's user, whatever the body said; run-as is its Unix account.
        #expect(created.json?["metadata"]?["annotations"]?["gantry.dev/submitter"]?.stringValue == "bob")
        #expect(created.json?["metadata"]?["annotations"]?["gantry.dev/run-as"]?.stringValue == "bob")
        let key = ObjectKey(.workload, namespace: "team-a", name: "job1")
        #expect(backend.get(key)?.submitter == "bob")

        let got = apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads/job1", token: "viewer-token")
        #expect(got.status == 200)
        #expect(got.json?["spec"]?["image"]?.stringValue == "img:2")

        let again = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "editor-token", body: Self.job)
        #expect(again.status == 409 && again.errorCode == "Conflict")

        let patched = apiCall(router, "PATCH", "/api/v1/namespaces/team-a/workloads/job1", token: "editor-token",
                              body: #"{"spec":{"image":"img:3","replicas":2},"metadata":{"annotations":{"gantry.dev/submitter":"eve"}}}"#,
                              contentType: "application/merge-patch+json")
        #expect(patched.status == 200, "\(patched.text)")
        #expect(patched.json?["spec"]?["image"]?.stringValue == "img:3")
        #expect(patched.json?["spec"]?["replicas"]?.intValue == 2)
        #expect(patched.json?["metadata"]?["annotations"]?["gantry.dev/submitter"]?.stringValue == "bob")
        #expect(backend.get(key)?.object.meta.generation == 2)

        let badPatch = apiCall(router, "PATCH", "/api/v1/namespaces/team-a/workloads/job1", token: "editor-token", body: #"{"spec":{"type":"Job"}}"#)
        #expect(badPatch.status == 400 && badPatch.errorCode == "BadRequest")

        let deleted = apiCall(router, "DELETE", "/api/v1/namespaces/team-a/workloads/job1", token: "editor-token")
        #expect(deleted.status == 200)
        #expect(deleted.json?["deleted"]?.stringValue == "team-a/job1")
        #expect(backend.get(key) == nil)
        #expect(apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads/job1", token: "viewer-token").status == 404)
        // History keeps it.
        let hist = apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads?deleted=true&limit=100", token: "viewer-token")
        let names = hist.json?["items"]?.arrayValue?.compactMap { $0["metadata"]?["name"]?.stringValue } ?? []
        #expect(names.contains("job1"))
        let live = apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads?limit=100", token: "viewer-token")
        let liveNames = live.json?["items"]?.arrayValue?.compactMap { $0["metadata"]?["name"]?.stringValue } ?? []
        #expect(liveNames == ["from-file", "train", "wait-2"])
    }

    @Test func createAcceptsYAMLAndSeedShapes() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let yaml = """
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata:
          name: from-yaml
        spec:
          image: img
          command: "true"
        """
        let y = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token", body: yaml, contentType: "application/yaml")
        #expect(y.status == 201, "\(y.text)")
        let seed = apiCall(router, "POST", "/api/v1/namespaces/team-b/workloads", token: "admin-token",
                           body: #"{"name":"seedjob","image":"img","command":"run","workspaceId":"research","resource":{"gpu":2,"replica":1}}"#)
        #expect(seed.status == 201, "\(seed.text)")
        #expect(seed.json?["spec"]?["queue"]?.stringValue == "research")
        let wrongType = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token", body: Self.job, contentType: "text/html")
        #expect(wrongType.status == 415)
        // curl -d without a Content-Type header sends form encoding: read as the body it is.
        let curlDefault = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token",
                                  body: Self.job.replacingOccurrences(of: "\"job1\"", with: "\"curl-job\""), contentType: "application/x-www-form-urlencoded")
        #expect(curlDefault.status == 201, "\(curlDefault.text)")
        let notJSON = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token", body: "{", contentType: "application/json")
        #expect(notJSON.status == 400 && notJSON.errorCode == "BadRequest")
        let otherNS = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token",
                              body: #"{"metadata":{"name":"x","namespace":"team-b"},"spec":{"image":"i","command":"c"}}"#)
        #expect(otherNS.status == 400 && otherNS.json?["error"]?["field"]?.stringValue == "metadata.namespace")
    }

    @Test func priorityHighestNeedsAdmin() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let body = #"{"metadata":{"name":"urgent"},"spec":{"image":"i","command":"c","priority":2}}"#
        let editor = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "editor-token", body: body)
        #expect(editor.status == 403 && editor.errorMessage.contains("highest"))
        let admin = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token", body: body)
        #expect(admin.status == 201, "\(admin.text)")
        let patch = apiCall(router, "PATCH", "/api/v1/namespaces/team-a/workloads/train", token: "editor-token", body: #"{"spec":{"priority":2}}"#)
        #expect(patch.status == 403)
        let clone = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/urgent:clone", token: "editor-token", body: #"{"name":"urgent2"}"#)
        #expect(clone.status == 403)
    }

    @Test func runAsFollowsTheTokensFile() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let carried = #"{"metadata":{"name":"sneaky","annotations":{"gantry.dev/run-as":"root"}},"spec":{"image":"i","command":"c"}}"#
        let editor = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "editor-token", body: carried)
        #expect(editor.status == 400 && editor.json?["error"]?["field"]?.stringValue?.contains("run-as") == true)
        let admin = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token", body: carried)
        #expect(admin.status == 201)
        #expect(admin.json?["metadata"]?["annotations"]?["gantry.dev/run-as"]?.stringValue == "root")
        let plain = #"{"metadata":{"name":"plain"},"spec":{"image":"i","command":"c"}}"#
        let unmapped = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "nounix-token", body: plain)
        #expect(unmapped.status == 403)
        #expect(unmapped.errorMessage == "no Unix account is mapped to user erin in the tokens file")
        let patch = apiCall(router, "PATCH", "/api/v1/namespaces/team-a/workloads/train", token: "editor-token",
                            body: #"{"metadata":{"annotations":{"gantry.dev/run-as":"root"}}}"#)
        #expect(patch.status == 400)
        // Kube mode: no Unix accounts.
        let kube = try APIFixture.router(try APIFixture.backend(mode: "kube"))
        let k = apiCall(kube, "POST", "/api/v1/namespaces/team-a/workloads", token: "nounix-token", body: plain)
        #expect(k.status == 201)
        #expect(k.json?["metadata"]?["annotations"]?["gantry.dev/run-as"] == nil)
    }

    @Test func manifestOwnedObjectsAreRefusedWithTheFile() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let patch = apiCall(router, "PATCH", "/api/v1/namespaces/team-a/workloads/from-file", token: "editor-token", body: #"{"spec":{"image":"x"}}"#)
        #expect(patch.status == 409 && patch.errorMessage.contains("jobs/from-file.yaml"))
        let del = apiCall(router, "DELETE", "/api/v1/namespaces/team-a/workloads/from-file", token: "editor-token")
        #expect(del.status == 409 && del.errorMessage.contains("jobs/from-file.yaml"))
        let create = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "editor-token",
                             body: #"{"metadata":{"name":"from-file"},"spec":{"image":"i","command":"c"}}"#)
        #expect(create.status == 409 && create.errorMessage.contains("jobs/from-file.yaml"))
        // Stop works as an override.
        let stop = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/from-file:stop", token: "editor-token")
        #expect(stop.status == 200)
        #expect(stop.json?["source"]?.stringValue == "jobs/from-file.yaml:3")
        let pool = apiCall(router, "DELETE", "/api/v1/queues/research", token: "admin-token")
        #expect(pool.status == 200)
    }

    @Test func stopResumeClone() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let stop = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/train:stop", token: "editor-token")
        #expect(stop.status == 200)
        #expect(stop.json?["status"]?["phase"]?.stringValue == "Stopped")
        let resume = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/train:resume", token: "editor-token")
        #expect(resume.status == 200)
        #expect(resume.json?["status"]?["phase"]?.stringValue == "Pending")
        #expect(apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/train:explode", token: "editor-token").status == 404)
        #expect(apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/nothere:stop", token: "editor-token").status == 404)

        let clone = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/train:clone", token: "editor-token",
                            body: #"{"name":"train-2","overrides":{"spec":{"image":"img:9"}}}"#)
        #expect(clone.status == 201, "\(clone.text)")
        let copy = try #require(backend.get(ObjectKey(.workload, namespace: "team-a", name: "train-2")))
        #expect(copy.object.spec.workload?.image == "img:9")
        #expect(copy.object.spec.workload?.replicas == 2)
        #expect(copy.submitter == "bob")
        #expect(copy.object.meta.labels["app"] == "llm")
        let auto = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/train:clone", token: "editor-token")
        #expect(auto.status == 201)
        #expect(auto.json?["metadata"]?["name"]?.stringValue == "train-clone-1")
    }

    @Test func batchesByNamesAndSelector() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let stop = apiCall(router, "POST", "/api/v1/workloads:batchStop", token: "editor-token",
                           body: #"{"workloads":["team-a/train","team-a/nothere","team-a/from-file"]}"#)
        #expect(stop.status == 200)
        let statuses = stop.json?["results"]?.arrayValue?.compactMap { $0["status"]?.intValue } ?? []
        #expect(statuses == [200, 404, 200])
        let malformed = apiCall(router, "POST", "/api/v1/workloads:batchStop", token: "editor-token", body: #"{"workloads":["team-a/wait-2","bad"]}"#)
        #expect(malformed.status == 400 && malformed.json?["error"]?["field"]?.stringValue == "workloads[1]")
        #expect(backend.get(ObjectKey(.workload, namespace: "team-a", name: "wait-2"))?.status?.workload?.phase == .pending, "nothing done")
        #expect(stop.json?["results"]?.arrayValue?[1]["error"]?["code"]?.stringValue == "NotFound")
        #expect(backend.get(ObjectKey(.workload, namespace: "team-a", name: "train"))?.status?.workload?.phase == .stopped)

        let clone = apiCall(router, "POST", "/api/v1/workloads:batchClone", token: "admin-token", body: #"{"selector":"app=llm","suffix":"-b"}"#)
        #expect(clone.status == 200)
        #expect(clone.json?["succeeded"]?.intValue == 2, "\(clone.text)")
        #expect(backend.get(ObjectKey(.workload, namespace: "team-a", name: "train-b")) != nil)
        #expect(backend.get(ObjectKey(.workload, namespace: "team-a", name: "wait-2-b")) != nil)

        let del = apiCall(router, "POST", "/api/v1/workloads:batchDelete", token: "editor-token", body: #"{"selector":"app=llm","namespace":"team-a"}"#)
        #expect(del.json?["succeeded"]?.intValue == 4, "\(del.text)")
        #expect(backend.get(ObjectKey(.workload, namespace: "team-a", name: "train")) == nil)

        let resume = apiCall(router, "POST", "/api/v1/workloads:batchResume", token: "editor-token", body: #"{"workloads":["team-b/wait-1"]}"#)
        #expect(resume.json?["succeeded"]?.intValue == 1)

        for bad in ["{}", #"{"workloads":"x"}"#, #"{"workloads":[],"selector":"a=b"}"#, #"{"selector":"a in ("}"#, #"{"workloads":[],"extra":1}"#, "[]", "", #"{"selector":" "}"#, #"{"selector":"a=b","namespace":"Not_A_Namespace"}"#, #"{"workloads":[],"suffix":"_X"}"#] {
            let r = apiCall(router, "POST", "/api/v1/workloads:batchStop", token: "editor-token", body: bad)
            #expect(r.status == 400, "\(bad): \(r.status) \(r.text)")
        }
    }

    @Test func listsFilterSortPageAndCount() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let all = apiCall(router, "GET", "/api/v1/workloads?sortBy=name&limit=2", token: "viewer-token")
        #expect(all.status == 200)
        #expect(all.json?["totalCount"]?.intValue == 5)
        #expect(all.json?["items"]?.arrayValue?.count == 2)
        let next = try #require(all.json?["continue"]?.stringValue)
        let page2 = apiCall(router, "GET", "/api/v1/workloads?sortBy=name&limit=2&continue=\(next)", token: "viewer-token")
        #expect(page2.json?["items"]?.arrayValue?.count == 2)
        let running = apiCall(router, "GET", "/api/v1/workloads?filterBy=phase==Running&fields=name,gpus", token: "viewer-token")
        #expect(running.json?["items"] == .array([.object([.init("name", .string("train")), .init("gpus", .int(4))])]))
        #expect(apiCall(router, "GET", "/api/v1/workloads/count?phase=Pending", token: "viewer-token").json?["count"]?.intValue == 4, "three queued and one without status")
        #expect(apiCall(router, "GET", "/api/v1/workloads?bogus=1", token: "viewer-token").status == 400)
        let tele = apiCall(router, "GET", "/api/v1/workloads/telemetry?groupBy=namespace", token: "viewer-token")
        #expect(tele.status == 200)
        #expect(tele.json?["groups"]?.arrayValue?.count == 3)
        #expect(apiCall(router, "GET", "/api/v1/workloads/telemetry?groupBy=color", token: "viewer-token").status == 400)
        let meta = apiCall(router, "GET", "/api/v1/workloads/metadata", token: "viewer-token")
        #expect(meta.json?["namespaces"] == .array([.string("team-a"), .string("team-b"), .string("team-c")]))
        let ns = apiCall(router, "GET", "/api/v1/namespaces/team-b/workloads", token: "viewer-token")
        #expect(ns.json?["totalCount"]?.intValue == 1)
    }

    @Test func unknownPathsAndMethodsAnswerInTheErrorShape() throws {
        let router = try APIFixture.router(try APIFixture.backend())
        let unknown = apiCall(router, "GET", "/api/v1/nope", token: "viewer-token")
        #expect(unknown.status == 404 && unknown.errorCode == "NotFound")
        let deep = apiCall(router, "GET", "/api/v1/namespaces/a/workloads/b/c/d/e/f", token: "viewer-token")
        #expect(deep.status == 404 && deep.errorCode == "NotFound")
        let method = apiCall(router, "PUT", "/api/v1/workloads", token: "viewer-token")
        #expect(method.status == 405 && method.errorCode == "MethodNotAllowed")
        #expect(method.response.header("Allow") == "GET")
        #expect(apiCall(router, "GET", "/elsewhere").status == 404)
        #expect(apiCall(router, "GET", "/elsewhere").errorCode == nil, "paths outside /api/v1 keep the router's answer")
        // Allow names what the path serves: a custom verb's methods, or the object's.
        let object = apiCall(router, "OPTIONS", "/api/v1/namespaces/team-a/workloads/train", token: "viewer-token")
        #expect(object.status == 405 && object.response.header("Allow") == "GET, PATCH, DELETE")
        let verb = apiCall(router, "GET", "/api/v1/namespaces/team-a/workloads/train:stop", token: "viewer-token")
        #expect(verb.status == 405 && verb.response.header("Allow") == "POST")
        #expect(apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads/train", token: "editor-token").status == 405)
        #expect(apiCall(router, "HEAD", "/api/v1/namespaces/team-a/workloads/train", token: "viewer-token").status == 200)
        #expect(apiCall(router, "HEAD", "/api/v1/workloads", token: "viewer-token").status == 200)
        #expect(apiCall(router, "HEAD", "/api/v1/workloads").status == 401)
    }

    @Test func oversizedBodiesAre413() throws {
        var options = APIOptions()
        options.maxBodyBytes = 100
        var router = Router()
        APIServer(backend: try APIFixture.backend(), tokens: try APIFixture.tokens(), options: options).register(into: &router)
        let r = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token", body: String(repeating: " ", count: 101))
        #expect(r.status == 413 && r.errorCode == "PayloadTooLarge")
    }
}
