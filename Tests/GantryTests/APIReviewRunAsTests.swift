import Testing
import Foundation
import GantryAPI
@testable import GantryServer
@testable import HTTPServer

/// Review findings (issue 11): who a replica runs as after a write by a non-admin.
@Suite(.timeLimit(.minutes(1))) struct APIReviewRunAsTests {
    /// Contract: "a body carrying gantry.dev/run-as: 400 unless admin". In kube mode the
    /// annotation becomes the Pods' securityContext.runAsUser (PodRuntime), so an editor who
    /// may set it picks any uid, 0 included.
    @Test func kubeModeEditorCannotSetRunAsInACreateBody() throws {
        let router = try APIFixture.router(try APIFixture.backend(mode: "kube"))
        let res = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "editor-token",
                          body: #"{"metadata":{"name":"k1","annotations":{"gantry.dev/run-as":"0"}},"spec":{"image":"i","command":"c"}}"#)
        #expect(res.status == 400, "an editor set the run-as uid in kube mode: \(res.status) \(res.text.prefix(200))")
        #expect(res.json?["metadata"]?["annotations"]?["gantry.dev/run-as"]?.stringValue != "0")
    }

    /// An admin's workload that runs as root (an admin's mapping): an editor of the namespace
    /// merge-patches its env (LD_PRELOAD, PATH, PYTHONPATH ...) and its next replica runs the
    /// editor's choice as root. Either the patch is refused or the workload no longer runs as
    /// root.
    @Test func editorPatchOfARootWorkloadDoesNotRunAsRoot() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let made = apiCall(router, "POST", "/api/v1/namespaces/team-a/workloads", token: "admin-token",
                           body: #"{"metadata":{"name":"rootjob","annotations":{"gantry.dev/run-as":"root"}},"spec":{"image":"i","command":"c"}}"#)
        try #require(made.status == 201)
        let patch = apiCall(router, "PATCH", "/api/v1/namespaces/team-a/workloads/rootjob", token: "editor-token",
                            body: #"{"spec":{"env":{"LD_PRELOAD":"/home/bob/evil.so"}}}"#)
        let now = try #require(backend.get(ObjectKey(.workload, namespace: "team-a", name: "rootjob")))
        let runsAs = now.object.meta.annotations["gantry.dev/run-as"]
        let env = now.object.spec.workload?.env ?? [:]
        #expect(!(env["LD_PRELOAD"] != nil && runsAs == "root"),
                "editor bob's env runs as root: patch \(patch.status), run-as \(runsAs ?? "nil")")
    }

    /// Same with two editors: bob (account bob) patches dave's workload in team-b; dave's
    /// account then runs bob's changes (bob acts as dave on the machine).
    @Test func editorPatchOfAnotherUsersWorkloadDoesNotRunAsThatUser() throws {
        let backend = try APIFixture.backend()
        let router = try APIFixture.router(backend)
        let made = apiCall(router, "POST", "/api/v1/namespaces/team-b/workloads", token: "teamb-token",
                           body: #"{"metadata":{"name":"davejob"},"spec":{"image":"i","command":"c"}}"#)
        try #require(made.status == 201)
        try #require(made.json?["metadata"]?["annotations"]?["gantry.dev/run-as"]?.stringValue == "dave")
        let patch = apiCall(router, "PATCH", "/api/v1/namespaces/team-b/workloads/davejob", token: "editor-token",
                            body: #"{"spec":{"env":{"PATH":"/home/bob/bin"}}}"#)
        let now = try #require(backend.get(ObjectKey(.workload, namespace: "team-b", name: "davejob")))
        let runsAs = now.object.meta.annotations["gantry.dev/run-as"]
        let env = now.object.spec.workload?.env ?? [:]
        #expect(!(env["PATH"] == "/home/bob/bin" && runsAs == "dave"),
                "editor bob's env runs as dave: patch \(patch.status), run-as \(runsAs ?? "nil")")
    }
}
