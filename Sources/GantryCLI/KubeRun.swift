import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import KubeClient
import KubeMode
import HTTPServer

/// `gantry run --kube`: the daemon against a Kubernetes API server (in a cluster, or from a
/// kubeconfig for development).
struct KubeRunOptions {
    var kubeconfig: String?
    var context: String?
    var qps = 50.0
    var burst = 100
    var controller = KubeController.Options()
    var metricsAddr: String?
    /// `--listen` / `--tokens`: the HTTP API and the dashboard.
    var listenAddress: String?
    var tokensFile: String?
    var logFormat = Log.Format.text
    var logLevel = Log.Level.info

    /// Reads the kube flags of `gantry run` (the shared ones are read by the caller).
    init(_ args: inout Args, workers: Int, fieldValidation: FieldValidation, gracePeriod: Double, runReplicas: Bool) throws {
        kubeconfig = args.string("kubeconfig")
        context = args.string("context")
        if let q = args.string("kube-qps") {
            guard let v = Double(q), v.isFinite, v > 0, v <= 100_000 else { throw UsageError("--kube-qps: requests per second, above 0") }
            qps = v
        }
        if let b = try args.int("kube-burst") {
            guard b >= 1 && b <= 100_000 else { throw UsageError("--kube-burst: 1 or more") }
            burst = b
        }
        controller.workers = workers
        controller.fieldValidation = fieldValidation
        controller.gracePeriod = gracePeriod
        controller.runReplicas = runReplicas
        controller.leaderElect = args.bool("leader-elect")
        let env = ProcessInfo.processInfo.environment
        controller.leaseNamespace = args.string("lease-namespace") ?? env["POD_NAMESPACE"] ?? controller.leaseNamespace
        controller.leaseName = args.string("lease-name") ?? controller.leaseName
        controller.identity = args.string("identity") ?? env["POD_NAME"] ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        for (flag, v) in [("lease-namespace", controller.leaseNamespace), ("lease-name", controller.leaseName)] where !ManifestDecoder.isDNS1123Label(v) {
            throw UsageError("--\(flag): \(ManifestDecoder.dns1123Label), got \"\(v)\"")
        }
        guard !controller.identity.isEmpty else { throw UsageError("--identity: not empty") }
    }
}

enum KubeRun {
    static func run(_ o: KubeRunOptions) -> Int32 {
        Log.configure(level: o.logLevel, format: o.logFormat)
        let config: KubeConfig
        let client: KubeClient
        do {
            config = try KubeConfig.resolve(kubeconfig: o.kubeconfig, context: o.context, environment: ProcessInfo.processInfo.environment)
            client = try KubeClient(config: config, qps: o.qps, burst: o.burst, userAgent: "gantry/\(CLI.version)")
        } catch {
            Log.error("cannot start", ["error": "\(error)"])
            errOut("gantry: \(error)")
            return 1
        }
        var options = o.controller
        options.server = config.server
        let controller = KubeController(client: client, options: options)
        let signals = Atomic<Int>(0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                if signals.add(1, ordering: .relaxed).newValue > 1 { Log.warn("second signal: exiting now"); _exit(2) }
                Log.info("signal received", ["signal": sig == SIGTERM ? "SIGTERM" : "SIGINT"])
                controller.stop()
            }
            s.resume()
            sources.append(s)
        }
        var probes: ProbeServer?
        if let addr = o.metricsAddr {
            do { probes = try ProbeServer(address: addr, metrics: controller.metrics) } catch {
                Log.error("cannot start", ["error": "--metrics-addr: \(error)"])
                errOut("gantry: --metrics-addr: \(error)")
                return 1
            }
            probes?.setNotReady("not ready: caches not synced")
        }
        var api: ProbeServer?
        if let addr = o.listenAddress {
            do { api = try startAPI(address: addr, tokensFile: o.tokensFile, controller: controller) } catch {
                Log.error("cannot start", ["error": "--listen: \(error)"])
                errOut("gantry: --listen: \(error)")
                return 1
            }
            api?.setNotReady("not ready: caches not synced")
        }
        let servers = [probes, api].compactMap { $0 }
        // Ready once the caches are synced and this replica leads (after its initial sync)
        // or stands by; healthy while the controller's loop beats.
        controller.onTick = {
            for probes in servers {
                probes.beat()
                if controller.ready { probes.setReady() } else { probes.setNotReady(controller.synced.load(ordering: .relaxed) ? "not ready: initial sync of the leader not complete" : "not ready: caches not synced") }
            }
        }
        let rc = controller.run()
        servers.forEach { $0.setNotReady("shutting down") }
        servers.forEach { $0.stop() }
        _ = sources
        return rc
    }
}
