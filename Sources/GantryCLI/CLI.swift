import Foundation
import GantryAPI
import ControllerRuntime
import GantryShim
import Controllers

/// Entry point of the `gantry` binary: parses the command line and runs one command.
public enum CLI {
    static let boolFlags: Set<String> = ["all-namespaces", "watch", "strict", "help", "version", "follow", "kube", "leader-elect"]
    static let aliases = ["n": "namespace", "A": "all-namespaces", "o": "output", "w": "watch", "l": "selector", "f": "filename", "h": "help"]
    /// `-f` means --follow for `logs`, --filename elsewhere.
    static let logAliases = ["n": "namespace", "f": "follow", "h": "help"]

    public static let version = "0.1.0"
    /// The longest duration a flag takes, in seconds (100 years).
    static let maxDuration = 100 * 365 * 86400.0

    public static func main(_ argv: [String]) -> Int32 {
        let rest = Array(argv.dropFirst())
        // The replica supervisor (when the small gantry-shim binary is not installed).
        if rest.first == "shim" { return Shim.main(["gantry-shim"] + rest.dropFirst()) }
        guard let command = rest.first, !["help", "--help", "-h"].contains(command) else {
            out(usage)
            return rest.isEmpty ? 2 : 0
        }
        do {
            var args = try Args(Array(rest.dropFirst()), boolFlags: boolFlags, aliases: command == "logs" ? logAliases : aliases)
            let stateDir = args.string("state-dir") ?? ProcessInfo.processInfo.environment["GANTRY_STATE_DIR"] ?? ".gantry-state"
            if args.bool("help") { out(usage); return 0 }
            guard !stateDir.isEmpty else { throw UsageError("--state-dir: a directory path, not empty") }
            switch command {
            case "run":
                var o = DaemonOptions()
                o.stateDir = stateDir
                o.specDir = args.string("spec-dir") ?? o.specDir
                o.workers = try args.int("workers") ?? o.workers
                guard o.workers >= 1 && o.workers <= 256 else { throw UsageError("--workers: between 1 and 256") }
                o.resync = try args.duration("resync") ?? o.resync
                o.eventTTL = try args.duration("event-ttl") ?? o.eventTTL
                o.debounce = try args.duration("debounce") ?? o.debounce
                o.maxFileSize = try args.int("max-file-size") ?? o.maxFileSize
                o.fieldValidation = try fieldValidation(&args)
                if let n = try args.int("local-gpus") {
                    guard n >= 0 && n <= 1024 else { throw UsageError("--local-gpus: between 0 and 1024") }
                    o.localGPUs = n
                }
                if let n = try args.int("max-log-size") {
                    guard n >= 0 else { throw UsageError("--max-log-size: bytes, 0 for no cap") }
                    o.maxLogSize = n
                }
                o.gracePeriod = try args.duration("grace-period") ?? o.gracePeriod
                o.metricsInterval = try args.duration("metrics-interval") ?? o.metricsInterval
                if let r = args.string("runtime") {
                    guard r == "local" || r == "none" else { throw UsageError("--runtime: local or none") }
                    o.runReplicas = r == "local"
                }
                if let a = args.string("metrics-addr") {
                    guard !a.isEmpty else { throw UsageError("--metrics-addr: an address like :8080 or 127.0.0.1:9090") }
                    o.metricsAddress = a
                }
                if let a = args.string("listen") {
                    guard !a.isEmpty else { throw UsageError("--listen: an address like 127.0.0.1:8080 or :8080") }
                    o.listenAddress = a
                }
                if let t = args.string("tokens") {
                    guard !t.isEmpty else { throw UsageError("--tokens: a file of `TOKEN USER ROLE [NAMESPACES] [UNIX_ACCOUNT]` lines") }
                    o.tokensFile = t
                }
                o.historyRetention = try args.duration("history-retention") ?? o.historyRetention
                if let n = try args.int("watch-max-seconds") {
                    guard n >= 1 && n <= 86400 else { throw UsageError("--watch-max-seconds: between 1 and 86400") }
                    o.watchMaxSeconds = n
                }
                if let sh = args.string("shim") { o.shim = sh.split(separator: " ").map(String.init) }
                if let u = args.string("run-as") {
                    guard RunAs.isAccountName(u) else { throw UsageError("--run-as: a Unix account name or uid (letters, digits, '.', '_', '-')") }
                    o.runAs = u
                }
                guard o.gracePeriod >= 0 else { throw UsageError("--grace-period: 0 or more") }
                // Durations become timers and messages in whole seconds: keep them finite and far from Int's range.
                for (flag, v) in [("resync", o.resync), ("event-ttl", o.eventTTL), ("debounce", o.debounce), ("grace-period", o.gracePeriod), ("metrics-interval", o.metricsInterval), ("history-retention", o.historyRetention)]
                where !(v.isFinite && v <= CLI.maxDuration) { throw UsageError("--\(flag): at most 100 years (\(Int(CLI.maxDuration))s)") }
                if let sh = o.shim, sh.isEmpty { throw UsageError("--shim: a supervisor command, e.g. \"gantry shim\"") }
                if let f = args.string("log-format") {
                    guard let lf = Log.Format(rawValue: f) else { throw UsageError("--log-format: text or json") }
                    o.logFormat = lf
                }
                if let l = args.string("log-level") {
                    guard let lv = Log.Level(name: l) else { throw UsageError("--log-level: debug, info, warn or error") }
                    o.logLevel = lv
                }
                if args.bool("kube") {
                    if o.runAs != nil { throw UsageError("--run-as: directory mode only (in kube mode a Pod runs as its security context says)") }
                    var k = try KubeRunOptions(&args, workers: o.workers, fieldValidation: o.fieldValidation, gracePeriod: o.gracePeriod, runReplicas: o.runReplicas)
                    k.logFormat = o.logFormat; k.logLevel = o.logLevel
                    // In a Pod the probes are on by default (the Deployment's probes need them).
                    let inCluster = ProcessInfo.processInfo.environment["KUBERNETES_SERVICE_HOST"] != nil && k.kubeconfig == nil
                    k.metricsAddr = o.metricsAddress ?? (inCluster ? ":8080" : nil)
                    k.listenAddress = o.listenAddress
                    k.tokensFile = o.tokensFile
                    try args.checkUnknown()
                    return KubeRun.run(k)
                }
                try args.checkUnknown()
                guard o.resync >= 1 else { throw UsageError("--resync: at least 1s") }
                return Daemon(options: o).run()
            case "get", "describe", "events", "logs", "stop", "resume", "top", "create", "delete", "clone":
                let backend = try self.backend(&args, stateDir: stateDir, namespaced: command != "events" && command != "create")
                switch command {
                case "get": let c = try GetCommand(&args); try args.checkUnknown(); return try c.run(backend)
                case "describe": let c = try DescribeCommand(&args); try args.checkUnknown(); return try c.run(backend)
                case "events": let c = try EventsCommand(&args); try args.checkUnknown(); return try c.run(backend)
                case "logs": let c = try LogsCommand(&args); try args.checkUnknown(); return try c.run(backend)
                case "top": let c = try TopCommand(&args); try args.checkUnknown(); return try c.run(backend)
                case "create": let c = try CreateCommand(&args); try args.checkUnknown(); return try c.run(backend)
                case "delete": let c = try DeleteCommand(&args); try args.checkUnknown(); return try c.run(backend)
                case "clone": let c = try CloneCommand(&args); try args.checkUnknown(); return try c.run(backend)
                default: let c = try SuspendCommand(command, &args); try args.checkUnknown(); return try c.run(backend)
                }
            case "validate":
                let c = try ValidateCommand(&args); try args.checkUnknown(); return c.run()
            case "crds":
                let c = try CRDsCommand(&args); try args.checkUnknown(); return try c.run()
            case "version", "--version":
                out("gantry \(version)")
                return 0
            default:
                throw UsageError("unknown command \"\(command)\"")
            }
        } catch let e as UsageError {
            errOut("gantry: \(e.description)\nRun 'gantry help' for usage.")
            return 2
        } catch let e as KubeCLIError {
            errOut("gantry: \(e.description)")
            return 1
        } catch let e as RemoteError {
            errOut("gantry: \(e.description)")
            return 1
        } catch {
            errOut("gantry: \(error)")
            return 1
        }
    }

    /// The state directory, with `--server` (or $GANTRY_SERVER) a daemon's HTTP API, or with
    /// `--kube` the cluster of `--kubeconfig`/`--context`; in kube mode a missing `-n` means
    /// the context's namespace, as kubectl reads it. An explicit `--state-dir` or `--kube`
    /// wins over $GANTRY_SERVER.
    static func backend(_ args: inout Args, stateDir: String, namespaced: Bool,
                        environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Backend {
        let kubeconfig = args.string("kubeconfig"), context = args.string("context")
        let kube = args.bool("kube")
        let serverFlag = args.string("server"), tokenFlag = args.string("token-file")
        if kube && serverFlag != nil { throw UsageError("--server and --kube: one or the other") }
        let envServer = environment["GANTRY_SERVER"].flatMap { $0.isEmpty ? nil : $0 }
        if let server = serverFlag ?? (kube || args.flags["state-dir"] != nil ? nil : envServer) {
            if kubeconfig != nil || context != nil { throw UsageError("--kubeconfig and --context go with --kube, not --server") }
            let tokenFile = tokenFlag ?? environment["GANTRY_TOKEN_FILE"].flatMap { $0.isEmpty ? nil : $0 }
            return .remote(try RemoteClient(server: server, tokenFile: tokenFile))
        }
        if tokenFlag != nil { throw UsageError("--token-file goes with --server URL") }
        guard kube else {
            if kubeconfig != nil || context != nil { throw UsageError("--kubeconfig and --context go with --kube") }
            return .directory(stateDir)
        }
        let reader = try KubeReader(kubeconfig: kubeconfig, context: context)
        if namespaced && args.flags["namespace"] == nil { args.flags["namespace"] = [reader.defaultNamespace] }
        return .kube(reader)
    }

    /// `--field-validation=Strict|Warn|Ignore` (any case; default Strict), with `--strict`
    /// kept as a deprecated spelling of Strict.
    static func fieldValidation(_ args: inout Args) throws -> FieldValidation {
        let strict = args.bool("strict")
        if strict { errOut("gantry: --strict is deprecated; unknown fields are errors by default (--field-validation=Strict)") }
        guard let s = args.string("field-validation") else { return .strict }
        guard let v = FieldValidation(flag: s) else { throw UsageError("--field-validation: Strict, Warn or Ignore, got \"\(s)\"") }
        if strict && v != .strict { throw UsageError("--strict conflicts with --field-validation=\(v.rawValue)") }
        return v
    }

    public static let usage = """
    gantry — a GPU workload controller (directory mode, or --kube)

    Usage:
      gantry run [--spec-dir DIR] [--state-dir DIR] [flags]   start the daemon
      gantry run --kube [--kubeconfig F] [--context C] [flags]   start it against a cluster
      gantry get KIND [NAME] [-n NS | -A] [-o wide|yaml|json|name] [-w] [filters]
      gantry describe KIND NAME [-n NS]
      gantry events [--for KIND/[NS/]NAME | file/PATH] [--limit N] [-w] [-o json]
      gantry logs NAME [-n NS] [--replica N] [--tail N] [--since DURATION] [-f]
                                     a replica's output
      gantry stop NAME... [-n NS]    stop workloads (override spec.suspend=true); or -l SELECTOR
      gantry resume NAME... [-n NS]  resume them (override spec.suspend=false); or -l SELECTOR
      gantry top [NAME] [-n NS | -A] GPU utilisation, memory and power per running workload
      gantry get|describe|events|logs|stop|resume|top ... --kube [--kubeconfig F] [--context C]
                                     the same against a cluster (kube mode)
      gantry get|describe|events|logs|stop|resume|top ... --server URL [--token-file F]
                                     the same through a daemon's HTTP API (run --listen)
      gantry create -f FILE [-f ...] [-n NS]        create workloads and queues (API only)
      gantry delete [workload|queue] NAME... [-n NS] | -l SELECTOR   (API only)
      gantry clone NAME [--name NEW] [-n NS]        a new workload with NAME's spec (API only)
      gantry validate -f FILE_OR_DIR [-f ...] [--field-validation=Strict|Warn|Ignore] [-o json]
      gantry crds [--dir DIR]        the kube-mode CRDs (Manifests/crds/) as YAML
      gantry version

    Kinds: workloads (wl), queues (q), nodes (no), resourcepools (rp).

    Global:
      --state-dir DIR       state directory (default .gantry-state, or $GANTRY_STATE_DIR)

    get, describe, events, logs, stop, resume with --kube (same output as directory mode):
      --kube                read the cluster instead of the state directory: Workloads,
                            Queues and ResourcePools are gantry.dev custom resources, nodes
                            are the cluster's Nodes (allocation summed from the Workloads'
                            admissions), events are core/v1 Events; -n defaults to the
                            context's namespace; stop/resume merge-patch spec.suspend of
                            the Workload; logs reads the replica's Pod (container worker),
                            -f polls it every second until the Pod finishes; -w polls every
                            second. No metrics in describe.
      --kubeconfig FILE  --context NAME   as for run --kube

    With --server (same output as directory mode; also create, delete, clone):
      --server URL          a daemon's HTTP API, e.g. http://127.0.0.1:8080 (default
                            $GANTRY_SERVER; an explicit --state-dir or --kube wins over it)
      --token-file FILE     a file holding the bearer token (default $GANTRY_TOKEN_FILE);
                            a 401 or 403 from the server is reported with the API's message
      create -f FILE        YAML or JSON, several documents (or a JSON array): Gantry's
                            Workload and Queue manifests, or seed 000's request shape; each
                            document is one POST; the namespace is the document's, else -n
      delete, clone         only objects written through the API can be deleted; a user's
                            manifest stays the user's (the error names the file)
      stop/resume           several names or -l SELECTOR use the batch routes
      logs --since D        sinceSeconds; -f streams the chunked response until the replica ends
      events                the API serves workloads' events (--for another kind: an error)
    Without --server, create, delete and clone fail: they need the API. logs --since reads
    the local log's times when its lines carry them, else says it cannot cut it.

    run:
      --spec-dir DIR        directory of manifests to watch (default Manifests/examples)
      --workers N           reconcile workers (default 4)
      --resync DURATION     full rescan period (default 5m)
      --event-ttl DURATION  how long events are kept (default 24h)
      --debounce DURATION   quiet time before a changed file is read (default 10ms)
      --max-file-size BYTES largest manifest file read (default 16777216)
      --field-validation Strict|Warn|Ignore   unknown fields in manifests: errors (the
                            object is invalid; default), warnings, or ignored (run and validate)
      --local-gpus N        GPUs of the local node (used while no Node is declared);
                            default: found with nvidia-smi or amd-smi, else 0
      --max-log-size BYTES  log kept per replica, newest output (default 67108864; 0: no cap)
      --grace-period DURATION  SIGTERM to SIGKILL when stopping replicas (default 30s)
      --metrics-interval DURATION  GPU utilisation/memory/power sampling (default 15s; 0: off)
      --runtime local|none  local: run admitted workloads as processes (default);
                            none: admit only, start nothing
      --shim COMMAND        replica supervisor (default: gantry-shim next to this binary,
                            else "gantry shim")
      --run-as USER         run the spec directory's workloads as this Unix account (the
                            daemon must be root, or be USER); default: the daemon's own
      --metrics-addr ADDR   serve /healthz, /readyz (200 after the initial sync) and
                            /metrics (Prometheus text) on ADDR: :8080, 127.0.0.1:9090,
                            [::1]:9090 (default: off)
      --kube                run against a Kubernetes API server instead of a spec directory:
                            Workloads, Queues and ResourcePools are custom resources, replicas
                            are Pods, nodes are the cluster's Nodes (see README "Run in a cluster")
      --kubeconfig FILE     kubeconfig (a colon list merges; default $KUBECONFIG, then
                            ~/.kube/config; in a Pod: the service account)
      --context NAME        kubeconfig context (default: current-context)
      --kube-qps N  --kube-burst N   client-side rate limit of API calls (default 50, 100)
      --leader-elect        only the holder of a Lease reconciles; others stand by
      --lease-namespace NS  --lease-name NAME   the Lease (default $POD_NAMESPACE or
                            gantry-system, gantry-controller)
      --identity ID         this replica's name in the Lease (default $POD_NAME, else host-pid)
      --log-format text|json   (default text)
      --log-level debug|info|warn|error   (default info)

    get workloads filters:
      --phase P1,P2  --type T1,T2  --queue Q  --name-contains S  -l KEY=VALUE[,KEY!=VALUE]
      --since TIME|DURATION  --until TIME|DURATION      (creation time)
      --sort-by creationTime|priority|name|gpus  --order asc|desc  --limit N  --offset N
    """
}
