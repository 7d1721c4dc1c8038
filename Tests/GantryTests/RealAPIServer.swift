import Testing
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real etcd and kube-apiserver for tests of the Kubernetes mode, as controller-runtime's
/// envtest runs them: no kubelet, scheduler or controller-manager, so Pods stay Pending,
/// nothing garbage-collects and no `default` ServiceAccount appears.
///
/// Started only where `GANTRY_TEST_KUBE_APISERVER` and `GANTRY_TEST_ETCD` name the two
/// binaries (the owners test against kube-apiserver v1.28 and etcd 3.4); tests that need it
/// are `.enabled(if: RealAPIServer.isConfigured, RealAPIServer.skipComment)`, so without them
/// the run shows them skipped and says what to set. Needs `openssl` and `curl` on the PATH.
///
/// Each instance has its own temporary directory (etcd's data, the generated keys and
/// certificate, the logs, a kubeconfig) and its own loopback ports. The server listens on
/// 127.0.0.1 with TLS (a self-signed serving certificate, `caFile`), bearer-token auth (one
/// admin `token` in `system:masters`), RBAC, and the ServiceAccount admission plugin off.
/// `stop()`, or the instance going away, kills both processes and removes the directory.
/// If the test runner itself dies, the two processes outlive it (nothing reaps them).
///
/// `@unchecked Sendable`: the only mutable state is `stopped` (a Mutex); the two `Process`
/// objects are only signalled and polled after `init`.
final class RealAPIServer: @unchecked Sendable {
    static let apiserverVariable = "GANTRY_TEST_KUBE_APISERVER"
    static let etcdVariable = "GANTRY_TEST_ETCD"

    /// The two binaries, when both variables are set (a path that is not an executable file
    /// then fails the test rather than skipping it: the run was meant to use the server).
    static var binaries: (apiserver: String, etcd: String)? {
        let env = ProcessInfo.processInfo.environment
        guard let a = env[apiserverVariable], !a.isEmpty, let e = env[etcdVariable], !e.isEmpty else { return nil }
        return (a, e)
    }

    static var isConfigured: Bool { binaries != nil }

    /// Why a test that needs the server did not run, shown with the skip.
    static let skipComment: Comment = "needs a real API server: set GANTRY_TEST_KUBE_APISERVER to a kube-apiserver binary (v1.28) and GANTRY_TEST_ETCD to an etcd binary (3.4), with openssl, curl and kubectl on the PATH"

    /// The failure to start, with the end of the logs of the process that failed.
    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    /// The temporary directory that holds everything of this instance.
    let directory: String
    /// `https://127.0.0.1:<port>`.
    let baseURL: String
    /// A bearer token of user `gantry-test-admin` in group `system:masters`.
    let token: String
    /// The server's self-signed serving certificate (followed by its CA): trust it as the CA.
    let caFile: String
    /// A kubeconfig (current context `gantry-test`, namespace `default`) with the token.
    let kubeconfigPath: String
    /// The two processes' output, kept until `stop()`.
    let etcdLog: String
    let apiserverLog: String

    private let etcd: Process
    private let apiserver: Process
    private let stopped = Mutex(false)

    /// Starts etcd and kube-apiserver and waits (up to `timeout` seconds) until `/readyz`
    /// answers `ok`. Throws when the binaries are not configured or the server does not come
    /// up; a port taken between choosing and binding it gets a second try on fresh ports.
    init(timeout: Double = 90) throws {
        guard let bins = RealAPIServer.binaries else { throw StartError(description: "\(RealAPIServer.skipComment)") }
        for (variable, path) in [(RealAPIServer.apiserverVariable, bins.apiserver), (RealAPIServer.etcdVariable, bins.etcd)]
        where !FileManager.default.isExecutableFile(atPath: path) {
            throw StartError(description: "\(variable)=\(path) is not an executable file")
        }
        var attempt = 0
        var started: Started
        while true {
            attempt += 1
            do {
                started = try RealAPIServer.launch(apiserver: bins.apiserver, etcd: bins.etcd, timeout: timeout)
                break
            } catch let e as StartError where attempt < 2 && e.description.contains("address already in use") {
                continue
            }
        }
        directory = started.directory
        baseURL = started.baseURL
        token = started.token
        caFile = started.caFile
        kubeconfigPath = started.kubeconfigPath
        etcdLog = started.etcdLog
        apiserverLog = started.apiserverLog
        etcd = started.etcd
        apiserver = started.apiserver
    }

    private struct Started {
        var directory, baseURL, token, caFile, kubeconfigPath, etcdLog, apiserverLog: String
        var etcd, apiserver: Process
    }

    private static func launch(apiserver apiserverBinary: String, etcd etcdBinary: String, timeout: Double) throws -> Started {
        let dir = try makeTemporaryDirectory("gantry-kube-")
        var etcdProcess: Process?
        var apiserverProcess: Process?
        // Whatever was started is stopped, and the directory removed, when starting fails.
        var ready = false
        defer {
            if !ready {
                for p in [apiserverProcess, etcdProcess].compactMap({ $0 }) { terminate(p) }
                removeTree(dir)
            }
        }

        let etcdPort = try freeLoopbackPort(), peerPort = try freeLoopbackPort(), port = try freeLoopbackPort()
        let token = randomHex(bytes: 24)
        let certDir = dir + "/certs"
        try FileManager.default.createDirectory(atPath: certDir, withIntermediateDirectories: true)
        try "\(token),gantry-test-admin,gantry-test-admin,\"system:masters\"\n"
            .write(toFile: dir + "/tokens.csv", atomically: true, encoding: .utf8)
        try openssl(["genrsa", "-out", dir + "/sa.key", "2048"])
        try openssl(["rsa", "-in", dir + "/sa.key", "-pubout", "-out", dir + "/sa.pub"])

        let etcdLog = dir + "/etcd.log", apiserverLog = dir + "/kube-apiserver.log"
        let etcdURL = "http://127.0.0.1:\(etcdPort)", peerURL = "http://127.0.0.1:\(peerPort)"
        let e = try spawn(etcdBinary, [
            "--name", "gantry-test",
            "--data-dir", dir + "/etcd",
            "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
            "--initial-cluster", "gantry-test=" + peerURL,
            "--logger", "zap", "--log-level", "warn",
        ], log: etcdLog)
        etcdProcess = e
        let a = try spawn(apiserverBinary, [
            "--etcd-servers", etcdURL,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", "\(port)",
            "--cert-dir", certDir,
            "--token-auth-file", dir + "/tokens.csv",
            "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", dir + "/sa.pub",
            "--service-account-signing-key-file", dir + "/sa.key",
            "--service-cluster-ip-range", "10.0.0.0/24",
            "--disable-admission-plugins", "ServiceAccount",
        ], log: apiserverLog)
        apiserverProcess = a

        let baseURL = "https://127.0.0.1:\(port)"
        let caFile = certDir + "/apiserver.crt"
        var answer = ""
        let deadline = Date().addingTimeInterval(timeout)
        var up = false
        // Every 10 ms until the certificate is written, then /readyz every 200 ms (each try
        // is a curl process: starting the server needs the CPU more).
        while !up, e.isRunning, a.isRunning, Date() < deadline {
            if FileManager.default.fileExists(atPath: caFile) {
                let r = runProcess("/usr/bin/env", ["curl", "-sS", "--max-time", "5", "--cacert", caFile,
                                                    "-H", "Authorization: Bearer \(token)", baseURL + "/readyz"],
                                   timeout: 10, recordTimeout: false)
                answer = r.output
                up = r.status == 0 && r.output == "ok"
                if !up { usleep(200_000) }
            } else {
                usleep(10_000)
            }
        }
        guard up, e.isRunning, a.isRunning else {
            let which = !e.isRunning ? "etcd exited" : !a.isRunning ? "kube-apiserver exited"
                : "/readyz did not answer ok within \(timeout) s (last answer: \(answer.suffix(300)))"
            throw StartError(description: "the real API server did not start: \(which)\n--- etcd log\n\(tailOf(etcdLog))\n--- kube-apiserver log\n\(tailOf(apiserverLog))")
        }

        let kubeconfig = dir + "/kubeconfig"
        try """
            apiVersion: v1
            kind: Config
            clusters:
            - name: gantry-test
              cluster:
                server: \(baseURL)
                certificate-authority: \(caFile)
            users:
            - name: gantry-test-admin
              user:
                token: \(token)
            contexts:
            - name: gantry-test
              context:
                cluster: gantry-test
                user: gantry-test-admin
                namespace: default
            current-context: gantry-test

            """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        ready = true
        return Started(directory: dir, baseURL: baseURL, token: token, caFile: caFile, kubeconfigPath: kubeconfig,
                       etcdLog: etcdLog, apiserverLog: apiserverLog, etcd: e, apiserver: a)
    }

    /// Runs `kubectl --kubeconfig <kubeconfigPath> <args>`, killed past `timeout` seconds.
    func kubectl(_ args: [String], timeout: Double = 60, sourceLocation: SourceLocation = #_sourceLocation) -> ProcessOutcome {
        runProcess("/usr/bin/env", ["kubectl", "--kubeconfig", kubeconfigPath] + args, timeout: timeout, sourceLocation: sourceLocation)
    }

    /// The last lines of both logs, for a failure message.
    var logTail: String { "--- etcd log\n\(tailOf(etcdLog))\n--- kube-apiserver log\n\(tailOf(apiserverLog))" }

    /// Stops kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s), and removes the
    /// directory. Calling it again does nothing.
    func stop() {
        let first = stopped.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        RealAPIServer.terminate(apiserver)
        RealAPIServer.terminate(etcd)
        removeTree(directory)
    }

    deinit { stop() }

    // MARK: - Helpers

    private static func spawn(_ binary: String, _ args: [String], log: String) throws -> Process {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? out.close() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    private static func terminate(_ p: Process) {
        let pid = p.processIdentifier
        guard pid > 0, p.isRunning else { return }
        signalProcess(pid, SIGTERM)
        if !poll(timeout: 10, { !p.isRunning }) {
            signalProcess(pid, SIGKILL)
            poll(timeout: 5) { !p.isRunning }
        }
    }

    private static func openssl(_ args: [String]) throws {
        let r = runProcess("/usr/bin/env", ["openssl"] + args, timeout: 30)
        guard r.status == 0 else { throw StartError(description: "openssl \(args.joined(separator: " ")) failed (\(r.status)): \(r.output)") }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RealAPIServer.StartError(description: "socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Bool in
            bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
        }
    }
    guard bound else { throw RealAPIServer.StartError(description: "bind 127.0.0.1:0: errno \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// `bytes` random bytes as lowercase hex.
private func randomHex(bytes: Int) -> String {
    var g = SystemRandomNumberGenerator()
    return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
}

/// The last `lines` lines of a log file ("" when it cannot be read).
private func tailOf(_ path: String, lines: Int = 30) -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
}
