import Foundation
import GantryAPI
import GantryServer
import ControllerRuntime
import Controllers
import HTTPServer
import KubeMode

extension Daemon {
    /// `--listen`: the HTTP API, the dashboard and the probes on one address; nil when off.
    /// Without `--tokens` only a loopback address is accepted (everyone would be an admin).
    func startAPI(inventory: Inventory, layers: ManifestLayers, overrides: Overrides, events: EventRecorder,
                  queue: WorkQueue<ObjectKey>, clock: any Clock, metrics: Metrics,
                  settled: (@Sendable () -> UInt64?)? = nil) throws -> (ProbeServer, DirectoryBackend)? {
        guard let address = options.listenAddress else { return nil }
        let tokens = try options.tokensFile.map { path throws(APIError) in try TokenTable.load(path: path) }
        if tokens == nil, try !HTTPServer.isLoopback(address: address) {
            throw UsageError("\(address) is not a loopback address: without --tokens anyone who can reach it could run commands; pass --tokens FILE or listen on 127.0.0.1")
        }
        let backend = DirectoryBackend(inventory: inventory, layers: layers, overrides: overrides, events: events, queue: queue,
                                       clock: clock, stateDir: options.stateDir,
                                       anonymousRunAs: options.runAs ?? (geteuid() == 0 ? nil : Daemon.currentAccount()), settled: settled)
        var apiOptions = APIOptions()
        apiOptions.watchMaxSeconds = options.watchMaxSeconds
        let api = APIServer(backend: backend, tokens: tokens, options: apiOptions)
        let server = try ProbeServer(address: address, metrics: metrics, maxBodyBytes: 4 << 20, maxConnections: 256, idleTimeout: 120) { r in
            api.register(into: &r)
            Dashboard.register(into: &r)
        }
        Log.info("serving the HTTP API and the dashboard", ["address": address, "port": String(server.port),
                                                            "auth": tokens.map { "\($0.count) tokens" } ?? "none (loopback only)"])
        return (server, backend)
    }
}

extension Daemon {
    /// The name of the account the daemon runs as, if it has one.
    static func currentAccount() -> String? {
        guard let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}

extension KubeRun {
    /// `gantry run --kube --listen`: the API over the cluster (reads from the informers'
    /// caches, writes as API calls), the dashboard and the probes.
    static func startAPI(address: String, tokensFile: String?, controller: KubeController) throws -> ProbeServer {
        let tokens = try tokensFile.map { path throws(APIError) in try TokenTable.load(path: path) }
        if tokens == nil, try !HTTPServer.isLoopback(address: address) {
            throw UsageError("\(address) is not a loopback address: without --tokens anyone who can reach it could change the cluster's workloads; pass --tokens FILE or listen on 127.0.0.1")
        }
        let api = APIServer(backend: KubeAPIBackend(controller: controller), tokens: tokens)
        let server = try ProbeServer(address: address, metrics: controller.metrics, maxBodyBytes: 4 << 20, maxConnections: 256, idleTimeout: 120) { r in
            api.register(into: &r)
            Dashboard.register(into: &r)
        }
        Log.info("serving the HTTP API and the dashboard", ["address": address, "port": String(server.port),
                                                            "auth": tokens.map { "\($0.count) tokens" } ?? "none (loopback only)"])
        return server
    }
}
