import Foundation
import GantryAPI

/// Where the API server is and how to authenticate to it: from a kubeconfig file, from the
/// in-cluster service account, or built by hand (tests: `KubeConfig(server: "http://...")`).
/// Relative file paths in a kubeconfig are already resolved against that file's directory.
public struct KubeConfig: Sendable {
    /// `https://127.0.0.1:6443` or `http://...`.
    public var server: String
    public var caFile: String?
    public var caData: [UInt8]?
    public var insecureSkipTLSVerify = false
    public var tlsServerName: String?
    public var token: String?
    /// Re-read every minute and after a 401 (bound service-account tokens rotate).
    public var tokenFile: String?
    public var clientCertFile: String?
    public var clientCertData: [UInt8]?
    public var clientKeyFile: String?
    public var clientKeyData: [UInt8]?
    /// The namespace of the selected context (or the pod's own in-cluster), `default` else.
    public var namespace = "default"
    public var inCluster = false

    public init(server: String) { self.server = server }

    /// A configuration error: what is wrong and where (`file: field: problem`).
    public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// In-cluster configuration: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`
    /// (an IPv6 host in brackets), the service account's token file, `ca.crt` and
    /// `namespace` under `root`. A missing host, port, token or CA is an error: TLS
    /// verification is never skipped silently.
    public static func inCluster(environment: [String: String], root: String = "/var/run/secrets/kubernetes.io/serviceaccount") throws -> KubeConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw ConfigError("in-cluster configuration: KUBERNETES_SERVICE_HOST is not set")
        }
        guard let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw ConfigError("in-cluster configuration: KUBERNETES_SERVICE_PORT is not set")
        }
        guard let portNumber = Int(port), (1...65535).contains(portNumber) else {
            throw ConfigError("in-cluster configuration: KUBERNETES_SERVICE_PORT \"\(port)\" is not a port number")
        }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var config = KubeConfig(server: "https://\(bracketed):\(portNumber)")
        config.inCluster = true
        let caPath = root + "/ca.crt"
        guard FileManager.default.isReadableFile(atPath: caPath) else {
            throw ConfigError("in-cluster configuration: \(caPath): the cluster CA certificate is missing or unreadable (refusing to skip TLS verification)")
        }
        config.caFile = caPath
        let tokenPath = root + "/token"
        guard let token = readTrimmed(tokenPath), !token.isEmpty else {
            throw ConfigError("in-cluster configuration: \(tokenPath): the service account token is missing, unreadable or empty")
        }
        config.token = token
        config.tokenFile = tokenPath
        if let ns = readTrimmed(root + "/namespace"), !ns.isEmpty { config.namespace = ns }
        return config
    }

    /// In-cluster configuration when `KUBERNETES_SERVICE_HOST` is set and no kubeconfig path
    /// was given; the kubeconfig (explicit, `$KUBECONFIG`, `~/.kube/config`) otherwise.
    public static func resolve(kubeconfig: String?, context: String?, environment: [String: String]) throws -> KubeConfig {
        if kubeconfig == nil, let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty {
            return try inCluster(environment: environment)
        }
        return try fromKubeconfig(path: kubeconfig, context: context, environment: environment)
    }

    static func readTrimmed(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
