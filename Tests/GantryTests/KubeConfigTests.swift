import Testing
import Foundation
@testable import KubeClient

@Suite(.timeLimit(.minutes(1))) struct KubeConfigTests {
    private func write(_ dir: String, _ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func errorText(_ body: () throws -> KubeConfig) -> String {
        do { _ = try body(); return "" } catch { return "\(error)" }
    }

    private let first = """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: c1
          cluster:
            server: https://one.example:6443
            certificate-authority-data: Q0EtT05F
            tls-server-name: api.one
        contexts:
        - name: dev
          context: {cluster: c1, user: u1, namespace: team-a}
        """
    private let second = """
        current-context: prod
        clusters:
        - name: c1
          cluster: {server: "https://ignored.example"}
        - name: c2
          cluster:
            server: http://two.example:8080
            insecure-skip-tls-verify: true
        users:
        - name: u1
          user: {token: abc}
        - name: u2
          user: {tokenFile: tokens/u2}
        contexts:
        - name: dev
          context: {cluster: c2, user: u2}
        - name: prod
          context: {cluster: c2, user: u2}
        """

    @Test func kubeconfigListMergesFirstFileWins() throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        let a = try write(dir, "a", first), b = try write(dir, "b", second)
        let c = try KubeConfig.fromKubeconfig(path: nil, context: nil, environment: ["KUBECONFIG": "\(a):\(dir)/missing:\(b)", "HOME": dir])
        // current-context and the "dev" context and "c1" cluster come from the first file.
        #expect(c.server == "https://one.example:6443")
        #expect(c.caData == Array("CA-ONE".utf8))
        #expect(c.tlsServerName == "api.one")
        #expect(c.token == "abc")
        #expect(c.namespace == "team-a")
        #expect(!c.insecureSkipTLSVerify)
        #expect(!c.inCluster)
    }

    @Test func explicitContextAndTokenFileRelativeToItsKubeconfig() throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/tokens", withIntermediateDirectories: true)
        _ = try write(dir, "tokens/u2", "secret-token\n")
        let a = try write(dir, "a", first), b = try write(dir, "b", second)
        let c = try KubeConfig.fromKubeconfig(path: "\(a):\(b)", context: "prod", environment: [:])
        #expect(c.server == "http://two.example:8080")
        #expect(c.insecureSkipTLSVerify)
        #expect(c.tokenFile == dir + "/tokens/u2")
        #expect(c.token == "secret-token")
        #expect(c.namespace == "default")
    }

    @Test func homeKubeconfigIsTheFallback() throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/.kube", withIntermediateDirectories: true)
        _ = try write(dir, ".kube/config", first + "\nusers: [{name: u1, user: {token: t}}]\n")
        let c = try KubeConfig.fromKubeconfig(path: nil, context: nil, environment: ["HOME": dir])
        #expect(c.server == "https://one.example:6443")
        // An explicit path must exist.
        #expect(errorText { try KubeConfig.fromKubeconfig(path: dir + "/nope", context: nil, environment: ["HOME": dir]) }.contains(dir + "/nope"))
    }

    @Test(arguments: [
        ("clusters:\n- name: c\n  cluster: {}\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n", "clusters[c].cluster.server: missing"),
        ("clusters:\n- name: c\n  cluster: {server: 'https://h', certificate-authority-data: '***'}\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
         "clusters[c].cluster.certificate-authority-data: not valid base64"),
        ("clusters:\n- name: c\n  cluster: {server: 'https://h'}\ncontexts:\n- name: x\n  context: {cluster: c, user: nobody}\ncurrent-context: x\n",
         "contexts[x].context.user: no user named \"nobody\""),
        ("clusters:\n- name: c\n  cluster: {server: 'https://h'}\ncontexts:\n- name: x\n  context: {cluster: c}\n", "current-context: not set"),
        ("current-context: y\ncontexts:\n- name: x\n  context: {cluster: c}\n", "no context named \"y\""),
        ("clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {client-certificate-data: QUJD}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
         "users[u].user.client-key: missing"),
        ("clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {tokenFile: /nonexistent/token}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
         "users[u].user.tokenFile: cannot read /nonexistent/token"),
        ("clusters: [unclosed\n", "line"),
    ])
    func errorsNameFileAndField(text: String, expected: String) throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        let f = try write(dir, "cfg", text)
        let message = errorText { try KubeConfig.fromKubeconfig(path: f, context: nil, environment: [:]) }
        #expect(message.contains(f), "\(message)")
        #expect(message.contains(expected), "\(message)")
    }

    @Test func clientCertificateFilesResolveRelativeToTheFile() throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        let f = try write(dir, "cfg", """
            clusters: [{name: c, cluster: {server: 'https://h:1', certificate-authority: ca.pem}}]
            users: [{name: u, user: {client-certificate: certs/u.crt, client-key: /abs/u.key}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """)
        let c = try KubeConfig.fromKubeconfig(path: f, context: nil, environment: [:])
        #expect(c.caFile == dir + "/ca.pem")
        #expect(c.clientCertFile == dir + "/certs/u.crt")
        #expect(c.clientKeyFile == "/abs/u.key")
        #expect(c.token == nil)
    }

    @Test func inClusterReadsServiceAccountAndBracketsIPv6() throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        _ = try write(dir, "token", "tok\n")
        _ = try write(dir, "namespace", "gantry-system\n")
        // A missing CA is an error, never an unverified connection.
        let env = ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"]
        let missing = errorText { try KubeConfig.inCluster(environment: env, root: dir) }
        #expect(missing.contains("ca.crt"), "\(missing)")
        _ = try write(dir, "ca.crt", "-----BEGIN CERTIFICATE-----\n")
        let c = try KubeConfig.inCluster(environment: env, root: dir)
        #expect(c.server == "https://[fd00::1]:443")
        #expect(c.token == "tok")
        #expect(c.tokenFile == dir + "/token")
        #expect(c.caFile == dir + "/ca.crt")
        #expect(c.namespace == "gantry-system")
        #expect(c.inCluster)
        let v4 = try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"], root: dir)
        #expect(v4.server == "https://10.0.0.1:6443")
        #expect(errorText { try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "10.0.0.1"], root: dir) }.contains("KUBERNETES_SERVICE_PORT"))
    }

    @Test func resolvePrefersInClusterOnlyWithoutAKubeconfigPath() throws {
        let dir = try makeTemporaryDirectory(); defer { removeTree(dir) }
        let f = try write(dir, "cfg", first + "\nusers: [{name: u1, user: {token: t}}]\n")
        let env = ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOME": dir]
        // The default root does not exist here: in-cluster is chosen and fails on its files.
        let e = errorText { try KubeConfig.resolve(kubeconfig: nil, context: nil, environment: env) }
        #expect(e.contains("in-cluster"), "\(e)")
        let c = try KubeConfig.resolve(kubeconfig: f, context: nil, environment: env)
        #expect(c.server == "https://one.example:6443")
        #expect(!c.inCluster)
    }
}
