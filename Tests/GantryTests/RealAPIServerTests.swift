import Testing
import Foundation

/// Checks of the real-API-server harness itself. Skipped (visibly, saying what to set) unless
/// GANTRY_TEST_KUBE_APISERVER and GANTRY_TEST_ETCD name the binaries. Serialized: each test
/// starts its own etcd and kube-apiserver, which want the CPU for themselves while starting.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RealAPIServerTests {
    /// The repository root (where Manifests/ lives), from this file's path.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test(.enabled(if: RealAPIServer.isConfigured, RealAPIServer.skipComment))
    func kubectlTokenAndCRDsWorkAgainstARealServer() throws {
        let server = try RealAPIServer()
        defer { server.stop() }

        // kubectl with the written kubeconfig: the namespaces the server makes for itself.
        var namespaces = ProcessOutcome(status: -1, output: "", timedOut: false)
        let listed = poll(timeout: 20) {
            namespaces = server.kubectl(["get", "ns", "-o", "name"])
            return namespaces.status == 0 && namespaces.output.contains("namespace/default")
        }
        #expect(listed, "kubectl get ns: \(namespaces.status) \(namespaces.output)\n\(server.logTail)")

        // baseURL, token and caFile directly: the token is honoured, another one refused.
        func curl(_ path: String, token: String) -> ProcessOutcome {
            runProcess("/usr/bin/env", ["curl", "-sS", "--max-time", "10", "--cacert", server.caFile,
                                        "-H", "Authorization: Bearer \(token)", "-o", "/dev/null", "-w", "%{http_code}",
                                        server.baseURL + path], timeout: 20)
        }
        #expect(curl("/api/v1/namespaces/kube-system", token: server.token).output == "200")
        #expect(curl("/api/v1/namespaces/kube-system", token: "not-" + server.token).output == "401")

        // RBAC is on: an authenticated user outside system:masters may not list namespaces.
        let impersonated = server.kubectl(["get", "ns", "--as", "someone-else"])
        #expect(impersonated.status != 0 && impersonated.output.contains("forbidden"), "\(impersonated.output)")

        // Gantry's CRDs, where this branch has them: established, and Workloads listable.
        let crds = RealAPIServerTests.repositoryRoot + "/Manifests/crds"
        guard FileManager.default.fileExists(atPath: crds) else {
            Issue.record("Manifests/crds is not on this branch: the CRD part of this test did not run", severity: .warning)
            return
        }
        // A directory with a kustomization.yaml is applied as one (`-k`), else file by file.
        let kustomized = FileManager.default.fileExists(atPath: crds + "/kustomization.yaml")
        let applied = server.kubectl(["apply", kustomized ? "-k" : "-f", crds, "-o", "name"])
        try #require(applied.status == 0, "kubectl apply Manifests/crds: \(applied.output)")
        let names = applied.output.split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("customresourcedefinition.apiextensions.k8s.io/") }
        try #require(names.contains("customresourcedefinition.apiextensions.k8s.io/workloads.gantry.dev"), "applied: \(applied.output)")
        let established = server.kubectl(["wait", "--for=condition=Established", "--timeout=60s"] + names, timeout: 90)
        #expect(established.status == 0, "\(established.output)")
        let workloads = server.kubectl(["get", "wl", "-A"])
        #expect(workloads.status == 0 && workloads.output.contains("No resources found"), "kubectl get wl -A: \(workloads.output)")
    }
}
