// gantry-bench: measures the figures of the README's performance section in one run.
//
//   gantry-bench --gantry PATH [--n 100000] [--per-file 100] [--edits 100] [--dir DIR] [--keep]
//   gantry-bench --read-path STATE_DIR [--gantry PATH]   # only the CLI read path, on a loaded state directory
//
// 1. Generates N workloads (plus a 3-level tree of 100 queues, 1,000 nodes, 10 pools) as
//    multi-document files of --per-file documents each.
// 2. YAML decode throughput: Gantry's decoder (libyaml events -> typed, validated objects)
//    over every file, beside PyYAML's CSafeLoader (yaml.load_all) on the same files.
// 3. Starts the daemon on a fresh state directory and measures the time until every object's
//    status is in the state database, then the latency of --edits single-workload edits
//    (file rewritten by rename) until that workload's new observedGeneration is stored,
//    and the daemon's peak RSS (VmHWM).
//
// Other modes: --run (RunBench), --reclaim, --kube (KubeBench), --api (APIBench: the HTTP API
// of `gantry run --listen`).
import Foundation
import GantryAPI
import YAMLCodec
import StateStore
import ControllerRuntime

struct Options {
    var gantry = ""
    var n = 100_000
    var perFile = 100
    var edits = 100
    var dir = NSTemporaryDirectory() + "gantry-bench"
    var keep = false
    /// Only the admission figures (in-process and the 10,000-file run), not the load.
    var admissionOnly = false
    var e2eFiles = 10_000
    var rounds = 200
    /// Only the runtime figures (`RunBench`).
    var runOnly = false
    var runWorkloads = 1000
    var latencySamples = 50
    /// Only the reclaim figure (`ReclaimBench`).
    var reclaimOnly = false
    var reclaimRounds = 3
    var stopSeconds = 1.0
    /// Only the kube-mode figures (`KubeBench`).
    var kubeOnly = false
    var kube = KubeBench.Config()
    /// Only the HTTP API figures (`APIBench`).
    var apiOnly = false
    var api = APIBench.Config()
    /// Only the load and the edits (no admission, decode, read-path or runtime figures).
    var loadOnly = false
    /// Only the decoder's figures: the generated files parsed (libyaml events to nodes) and
    /// decoded (to typed objects) on one thread, `decodeRounds` times.
    var decodeOnly = false
    var decodeRounds = 3
    /// Print every edit's latency and when it started (monotonic seconds, as the daemon's trace).
    var editTrace = false
    /// Only the churn soak (`ChurnBench`), and its settings.
    var churnOnly = false
    var churn = ChurnBench.Config()
    /// `--read-path STATE`: only the CLI read path, on a state directory already loaded.
    var readPathState: String?
}

func parseOptions() -> Options {
    var o = Options()
    var it = CommandLine.arguments.dropFirst().makeIterator()
    while let a = it.next() {
        switch a {
        case "--gantry": o.gantry = it.next() ?? ""
        case "--n": o.n = Int(it.next() ?? "") ?? o.n
        case "--per-file": o.perFile = max(1, Int(it.next() ?? "") ?? o.perFile)
        case "--edits": o.edits = Int(it.next() ?? "") ?? o.edits
        case "--dir": o.dir = it.next() ?? o.dir
        case "--keep": o.keep = true
        case "--admission-only": o.admissionOnly = true
        case "--load-only": o.loadOnly = true
        case "--decode-only": o.decodeOnly = true
        case "--decode-rounds": o.decodeRounds = max(1, Int(it.next() ?? "") ?? o.decodeRounds)
        case "--edit-trace": o.editTrace = true
        case "--files": o.e2eFiles = Int(it.next() ?? "") ?? o.e2eFiles
        case "--rounds": o.rounds = Int(it.next() ?? "") ?? o.rounds
        case "--run": o.runOnly = true
        case "--workloads": o.runWorkloads = Int(it.next() ?? "") ?? o.runWorkloads
        case "--samples": o.latencySamples = Int(it.next() ?? "") ?? o.latencySamples
        case "--reclaim": o.reclaimOnly = true
        case "--reclaim-rounds": o.reclaimRounds = Int(it.next() ?? "") ?? o.reclaimRounds
        case "--stop-seconds": o.stopSeconds = Double(it.next() ?? "") ?? o.stopSeconds
        case "--kube": o.kubeOnly = true
        case "--churn": o.churnOnly = true
        case "--read-path": o.readPathState = it.next()
        case "--churn-seconds": o.churn.seconds = max(1, Double(it.next() ?? "") ?? o.churn.seconds)
        case "--kube-workloads": o.kube.workloads = max(1, Int(it.next() ?? "") ?? o.kube.workloads)
        case "--kube-nodes": o.kube.nodes = max(1, Int(it.next() ?? "") ?? o.kube.nodes)
        case "--kube-queues": o.kube.queues = max(1, Int(it.next() ?? "") ?? o.kube.queues)
        case "--kube-threads": o.kube.createThreads = max(1, Int(it.next() ?? "") ?? o.kube.createThreads)
        case "--kube-requests": o.kube.requestWorkloads = max(1, Int(it.next() ?? "") ?? o.kube.requestWorkloads)
        case "--kube-qps": o.kube.qps = max(1, Double(it.next() ?? "") ?? o.kube.qps)
        case "--lease-seconds": o.kube.leaseSeconds = max(1, Double(it.next() ?? "") ?? o.kube.leaseSeconds)
        case "--kube-figures": o.kube.only = Set((it.next() ?? "").split(separator: ",").map(String.init))
        case "--kube-server-kubeconfig": o.kube.serverKubeconfig = it.next()
        case "--kube-crds": o.kube.crds = it.next()
        case "--kube-server-workloads": o.kube.serverWorkloads = max(1, Int(it.next() ?? "") ?? o.kube.serverWorkloads)
        case "--api": o.apiOnly = true
        case "--api-requests": o.api.requests = max(1, Int(it.next() ?? "") ?? o.api.requests)
        case "--api-query-seconds": o.api.querySeconds = max(1, Double(it.next() ?? "") ?? o.api.querySeconds)
        case "--api-creates": o.api.creates = max(1, Int(it.next() ?? "") ?? o.api.creates)
        case "--api-clients": o.api.clients = max(1, Int(it.next() ?? "") ?? o.api.clients)
        case "--wrk-seconds": o.api.wrkSeconds = max(1, Int(it.next() ?? "") ?? o.api.wrkSeconds)
        case "--wrk-threads": o.api.wrkThreads = max(1, Int(it.next() ?? "") ?? o.api.wrkThreads)
        case "--log-rate": o.api.logRate = max(1, Int(it.next() ?? "") ?? o.api.logRate)
        case "--log-seconds": o.api.logSeconds = max(1, Int(it.next() ?? "") ?? o.api.logSeconds)
        case "--api-figures": o.api.only = Set((it.next() ?? "").split(separator: ",").map(String.init))
        default:
            FileHandle.standardError.write("usage: gantry-bench --gantry PATH [--n N] [--per-file K] [--edits E] [--files F] [--rounds R] [--load-only [--edit-trace]] [--admission-only] [--run [--workloads W] [--samples S]] [--reclaim [--reclaim-rounds R] [--stop-seconds S]] [--churn [--churn-seconds S]] [--read-path STATE_DIR] [--kube [--kube-workloads N] [--kube-nodes N] [--kube-queues N] [--kube-threads T] [--kube-requests N] [--kube-qps Q] [--lease-seconds S] [--kube-figures 1,1p,2,3,4,real] [--kube-server-kubeconfig F [--kube-server-workloads N] [--kube-crds DIR]]] [--api [--api-requests R] [--api-query-seconds S] [--api-creates C] [--api-clients K] [--wrk-seconds S] [--wrk-threads T] [--log-rate L] [--log-seconds S] [--api-figures 1,2,3,4,5]] [--dir DIR] [--keep]\n".data(using: .utf8)!)
            exit(2)
        }
    }
    if o.gantry.isEmpty {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        o.gantry = me.appendingPathComponent("gantry").path
    }
    return o
}

func say(_ s: String) { FileHandle.standardOutput.write((s + "\n").data(using: .utf8)!) }

func workloadDoc(_ i: Int, priority: Int) -> String {
    """
    apiVersion: gantry.dev/v1alpha1
    kind: Workload
    metadata:
      name: wl-\(i)
      namespace: team-\(i % 20)
      labels: {project: p\(i % 7), owner: user-\(i % 50)}
    spec:
      displayName: training run \(i)
      type: \(["PyTorchJob", "Job", "MPIJob", "Deployment"][i % 4])
      queue: leaf-\(i % 90)
      priority: \(priority)
      command: python train.py --epochs 3 --seed \(i)
      replicas: \(1 + i % 4)
      resources: {gpu: \(1 << (i % 4)), cpu: "16", memory: 64Gi}
      env: {NCCL_DEBUG: INFO, RUN_ID: "\(i)"}
      maxRetry: 1
      timeout: 7200

    """
}

func workloadFile(_ f: Int, _ perFile: Int, _ n: Int, bump: Int? = nil, generation: Int = 0) -> String {
    var s = ""
    for i in (f * perFile)..<min(n, (f + 1) * perFile) {
        if !s.isEmpty { s += "---\n" }
        s += workloadDoc(i, priority: i == bump ? generation % 3 : i % 3)
    }
    return s
}

func generate(_ o: Options) throws -> (files: [String], bytes: Int) {
    let spec = o.dir + "/spec"
    try? FileManager.default.removeItem(atPath: o.dir)
    try FileManager.default.createDirectory(atPath: spec + "/workloads", withIntermediateDirectories: true)
    var files: [String] = []
    var bytes = 0
    func put(_ rel: String, _ text: String) throws {
        try text.write(toFile: spec + "/" + rel, atomically: false, encoding: .utf8)
        files.append(spec + "/" + rel); bytes += text.utf8.count
    }
    var queues = "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: root}\nspec:\n  deserved: {gpu: 8000}\n"
    for m in 0..<9 { queues += "---\napiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: mid-\(m)}\nspec:\n  parent: root\n  deserved: {gpu: 880}\n" }
    for l in 0..<90 { queues += "---\napiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: leaf-\(l)}\nspec:\n  parent: mid-\(l % 9)\n  deserved: {gpu: 88}\n  guarantee: {gpu: 8}\n  capability: {gpu: 400}\n" }
    try put("queues.yaml", queues)
    for p in 0..<10 {
        var nodes = "apiVersion: gantry.dev/v1alpha1\nkind: ResourcePool\nmetadata: {name: pool-\(p)}\n"
        for k in 0..<100 {
            nodes += "---\napiVersion: gantry.dev/v1alpha1\nkind: Node\nmetadata: {name: node-\(p)-\(k)}\nspec:\n  resourcePool: pool-\(p)\n  capacity: {gpu: 8, cpu: 128, memory: 1Ti}\n  gpuType: H100\n"
        }
        try put("nodes-\(p).yaml", nodes)
    }
    let nFiles = (o.n + o.perFile - 1) / o.perFile
    for f in 0..<nFiles { try put("workloads/w-\(f).yaml", workloadFile(f, o.perFile, o.n)) }
    return (files, bytes)
}

func gantryDecodeThroughput(_ files: [String]) -> (mbps: Double, objects: Int, seconds: Double) {
    let contents = files.map { Array(FileManager.default.contents(atPath: $0)!) }
    let total = contents.reduce(0) { $0 + $1.count }
    let t0 = monotonicSeconds()
    var objects = 0
    for (i, c) in contents.enumerated() {
        let f = ManifestFile.decode(path: files[i], bytes: c)
        objects += f.objects.count
    }
    let dt = monotonicSeconds() - t0
    return (Double(total) / 1e6 / dt, objects, dt)
}

func pyyamlThroughput(_ files: [String]) -> String {
    let list = NSTemporaryDirectory() + "gantry-bench-files.txt"
    try? files.joined(separator: "\n").write(toFile: list, atomically: true, encoding: .utf8)
    let script = """
    import sys, time, yaml
    if not getattr(yaml, '__with_libyaml__', False):
        print('PyYAML without libyaml: CSafeLoader unavailable'); sys.exit(0)
    files = open(sys.argv[1]).read().split('\\n')
    data = [open(f, 'rb').read() for f in files]
    total = sum(len(d) for d in data)
    t0 = time.perf_counter(); n = 0
    for d in data:
        for doc in yaml.load_all(d, Loader=yaml.CSafeLoader):
            n += 1
    dt = time.perf_counter() - t0
    print('%.1f MB/s (%d documents, %.2f s)' % (total / 1e6 / dt, n, dt))
    """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script, list]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return "python3 not available" }
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return p.terminationStatus == 0 ? text : "PyYAML not available (\(text.split(separator: "\n").last ?? ""))"
}

func peakRSS(_ pid: Int32) -> Int {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }
    return 0
}

/// User + system CPU seconds of a process so far.
func cpuSeconds(_ pid: Int32) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return 0 }
    let fields = s[s.index(after: close)...].split(separator: " ")
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
}

let o = parseOptions()
if let state = o.readPathState {
    ReadPathBench.run(gantry: o.gantry, state: state, say: say)
    exit(0)
}
if o.apiOnly {
    var a = o.api
    a.gantry = o.gantry
    a.n = o.n
    a.perFile = o.perFile
    a.keep = o.keep
    a.dir = o.dir + "-api"
    APIBench.run(a, say: say)
    exit(0)
}
if o.kubeOnly {
    var k = o.kube
    k.gantry = o.gantry
    k.dir = o.dir + "-kube"
    KubeBench.run(k, say: say)
    exit(0)
}
if o.churnOnly {
    ChurnBench.run(gantry: o.gantry, dir: o.dir, config: o.churn, keep: o.keep, say: say)
    exit(0)
}
if o.reclaimOnly {
    ReclaimBench.run(gantry: o.gantry, dir: o.dir, rounds: o.reclaimRounds, stop: o.stopSeconds, say: say)
for dir in cleanUpAtExit { try? FileManager.default.removeItem(atPath: dir) }
    exit(0)
}
if o.runOnly {
    RunBench.run(gantry: o.gantry, dir: o.dir, workloads: o.runWorkloads, samples: o.latencySamples, keep: o.keep, say: say)
    ReclaimBench.run(gantry: o.gantry, dir: o.dir, rounds: o.reclaimRounds, stop: o.stopSeconds, say: say)
    exit(0)
}
say("gantry-bench: N=\(o.n) workloads, \(o.perFile) per file, \(o.edits) edits, dir \(o.dir)")
if !o.loadOnly && !o.decodeOnly {
    AdmissionBench.run(n: o.n, rounds: o.rounds, say: say)
    AdmissionBench.runWithStatus(n: o.n, rounds: o.rounds, say: say)
}
if o.admissionOnly {
    endToEndAdmission(o)
    exit(0)
}
let gen0 = monotonicSeconds()
let (files, bytes) = try generate(o)
let totalObjects = o.n + 100 + 1000 + 10
say(String(format: "generated %d files, %.1f MB, %d objects in %.1f s", files.count, Double(bytes) / 1e6, totalObjects, monotonicSeconds() - gen0))

if o.decodeOnly {
    let contents = files.map { Array(FileManager.default.contents(atPath: $0) ?? Data()) }
    for _ in 0..<o.decodeRounds {
        let t0 = monotonicSeconds()
        var nodes = 0
        for c in contents { nodes += ((try? YAMLParser.parse(c)) ?? []).count }
        let parse = monotonicSeconds() - t0
        let dec = gantryDecodeThroughput(files)
        say(String(format: "YAML parse to nodes: %.2f s (%d documents); parse and decode to objects: %.2f s, %.1f MB/s (%d objects)",
                   parse, nodes, dec.seconds, dec.mbps, dec.objects))
    }
    if !o.keep { try? FileManager.default.removeItem(atPath: o.dir) }
    exit(0)
}
let dec = gantryDecodeThroughput(files)
say(String(format: "YAML decode, Gantry (libyaml events -> typed objects): %.1f MB/s (%d objects, %.2f s)", dec.mbps, dec.objects, dec.seconds))
if !o.loadOnly { say("YAML decode, PyYAML CSafeLoader (same files):         " + pyyamlThroughput(files)) }

// Start the daemon, after flushing the generator's writes to disk: otherwise the kernel's
// writeback of those files competes with the daemon and the figures vary by seconds.
sync()
let state = o.dir + "/state"
let logPath = o.dir + "/daemon.log"
_ = FileManager.default.createFile(atPath: logPath, contents: nil)
let daemon = Process()
daemon.executableURL = URL(fileURLWithPath: o.gantry)
// Admission only: the load figures are about reading, reconciling and admitting 100,000
// workloads, not about starting the 1,345 admitted ones (gantry-bench --run measures that).
daemon.arguments = ["run", "--spec-dir", o.dir + "/spec", "--state-dir", state, "--runtime", "none"]
daemon.standardError = FileHandle(forWritingAtPath: logPath)
daemon.standardOutput = daemon.standardError
let t0 = monotonicSeconds()
try daemon.run()
// The daemon logs "initial sync complete" once every object is reconciled and the state
// writer has committed. Watching the log costs the daemon nothing (polling the database
// would compete for the same two cores); the counts are then verified in the database.
var loaded = 0.0
while true {
    if let log = try? String(contentsOfFile: logPath, encoding: .utf8), log.contains("initial sync complete") {
        loaded = monotonicSeconds() - t0
        break
    }
    if !daemon.isRunning { say("daemon exited early; log:\n" + ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")); exit(1) }
    if monotonicSeconds() - t0 > 600 { say("timed out waiting for the initial load"); exit(1) }
    usleep(5_000)
}
let reader = try? StateReader(directory: state)
guard let counts = try reader?.counts(), counts.objects == totalObjects, counts.withStatus == totalObjects else {
    say("initial sync logged, but the database holds \((try? reader?.counts()).flatMap { $0 }.map { "\($0)" } ?? "nothing"); expected \(totalObjects) objects with status")
    exit(1)
}
say(String(format: "initial load: %d objects, every status stored, %.2f s after daemon start (daemon CPU %.2f s)", totalObjects, loaded, cpuSeconds(daemon.processIdentifier)))
let rssAfterLoad = peakRSS(daemon.processIdentifier)

// Edits: rewrite one workload file by rename with one workload's priority changed.
var edits: [(ms: Double, after: Double)] = []
var rng = SystemRandomNumberGenerator()
let nFiles = (o.n + o.perFile - 1) / o.perFile
var editedGen: [Int: Int] = [:]
let loadedAt = t0 + loaded
for e in 0..<o.edits {
    let f = Int.random(in: 0..<nFiles, using: &rng)
    let lo = f * o.perFile, hi = min(o.n, lo + o.perFile)
    let i = Int.random(in: lo..<hi, using: &rng)
    // Pick a priority different from the current one so the spec really changes.
    let current = editedGen[i] ?? (i % 3)
    let next = (current + 1) % 3
    editedGen[i] = next
    let text = workloadFile(f, o.perFile, o.n, bump: i, generation: next)
    let path = o.dir + "/spec/workloads/w-\(f).yaml"
    let tmp = o.dir + "/spec/workloads/.w-\(f).yaml.tmp"
    try text.write(toFile: tmp, atomically: false, encoding: .utf8)
    guard let r = reader else { break }
    let before = try r.objects(kind: .workload, namespace: "team-\(i % 20)", name: "wl-\(i)").first?.generation ?? 0
    let start = monotonicSeconds()
    rename(tmp, path)
    while true {
        if let row = try r.objects(kind: .workload, namespace: "team-\(i % 20)", name: "wl-\(i)").first, row.generation > before,
           let st = row.statusJSON, let v = try? JSON.parse(st), (v["observedGeneration"]?.intValue ?? 0) > before {
            break
        }
        if monotonicSeconds() - start > 10 { say("edit \(e) not observed within 10 s"); break }
        usleep(500)
    }
    let ms = (monotonicSeconds() - start) * 1000
    edits.append((ms, start - loadedAt))
    if o.editTrace { say(String(format: "  edit #%d: %.1f ms (started at %.4f, %.2f s after load)", e, ms, start, start - loadedAt)) }
    usleep(20_000)
}
let rss = peakRSS(daemon.processIdentifier)
reportEdits(edits)
say(String(format: "peak RSS: %.0f MB after load, %.0f MB at the end", Double(rssAfterLoad) / 1024, Double(rss) / 1024))
if !o.loadOnly { ReadPathBench.run(gantry: o.gantry, state: state, say: say) }
let s0 = monotonicSeconds()
daemon.terminate()
daemon.waitUntilExit()
say(String(format: "SIGTERM -> exit %d in %.2f s", daemon.terminationStatus, monotonicSeconds() - s0))
if o.loadOnly {
    if !o.keep { try? FileManager.default.removeItem(atPath: o.dir) }
    exit(0)
}
// The load's directory (about 1,000 files and a 200 MB database) goes at the end, after the
// runtime part: deleting it just before would leave the runtime part's file creations to
// skip past freshly deleted inodes on ext4 without a journal (a cost of this bench's own
// cleanup, not of Gantry; see `RunBench.run`).
nonisolated(unsafe) var cleanUpAtExit: [String] = o.keep ? [] : [o.dir]

/// The edit figures: p50, p90, p99 and max over all edits, how many took over 50 ms, and the
/// slow ones with when they started (seconds after the load), since background work just
/// after the load shows up as slow edits early on.
func reportEdits(_ edits: [(ms: Double, after: Double)]) {
    let ms = edits.map(\.ms)
    let slow = edits.enumerated().filter { $0.element.ms > 50 }
    say(String(format: "edit -> status stored (%d edits): p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; %d over 50 ms", ms.count,
               percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.99), ms.max() ?? 0, slow.count))
    if !slow.isEmpty {
        say("  over 50 ms: " + slow.prefix(20).map { String(format: "#%d %.1f ms at %.2f s", $0.offset, $0.element.ms, $0.element.after) }.joined(separator: ", "))
    }
}

/// A fresh daemon on the queue tree and nodes only; then `--files` workload files (one
/// workload each) are written, and the time runs until every one is admitted or has a
/// queue position in the state database.
func endToEndAdmission(_ o: Options) {
    let dir = o.dir + "-e2e"
    try? FileManager.default.removeItem(atPath: dir)
    let spec = dir + "/spec"
    try! FileManager.default.createDirectory(atPath: spec + "/workloads", withIntermediateDirectories: true)
    var full = Options(); full.n = 0; full.dir = dir
    _ = try! generate(full)   // queues and nodes, no workloads
    sync()
    let state = dir + "/state"
    let logPath = dir + "/daemon.log"
    _ = FileManager.default.createFile(atPath: logPath, contents: nil)
    let daemon = Process()
    daemon.executableURL = URL(fileURLWithPath: o.gantry)
    daemon.arguments = ["run", "--spec-dir", spec, "--state-dir", state, "--runtime", "none"]
    daemon.standardError = FileHandle(forWritingAtPath: logPath)
    daemon.standardOutput = daemon.standardError
    try! daemon.run()
    defer { daemon.terminate(); daemon.waitUntilExit(); if !o.keep { cleanUpAtExit.append(dir) } }
    while !((try? String(contentsOfFile: logPath, encoding: .utf8))?.contains("initial sync complete") ?? false) { usleep(5_000) }
    let cpu0 = cpuSeconds(daemon.processIdentifier)
    let t0 = monotonicSeconds()
    for i in 0..<o.e2eFiles {
        let text = workloadDoc(i, priority: i % 3)
        try! text.write(toFile: spec + "/workloads/w-\(i).yaml", atomically: false, encoding: .utf8)
    }
    let written = monotonicSeconds() - t0
    guard let reader = try? StateReader(directory: state) else { say("no state database"); return }
    var decided = 0
    while monotonicSeconds() - t0 < 300 {
        decided = (try? reader.decidedWorkloads()) ?? 0
        if decided >= o.e2eFiles { break }
        usleep(50_000)
    }
    let dt = monotonicSeconds() - t0
    let admitted = (try? reader.admittedWorkloads()) ?? 0
    say(String(format: "end to end: %d workload files written (%.2f s) -> all admitted or given a queue position in %.2f s (%d admitted); %.0f decisions/s; daemon CPU %.2f s",
               o.e2eFiles, written, dt, admitted, Double(decided) / dt, cpuSeconds(daemon.processIdentifier) - cpu0))
}

endToEndAdmission(o)
RunBench.run(gantry: o.gantry, dir: o.dir, workloads: o.runWorkloads, samples: o.latencySamples, keep: o.keep, say: say)
ReclaimBench.run(gantry: o.gantry, dir: o.dir, rounds: o.reclaimRounds, stop: o.stopSeconds, say: say)
