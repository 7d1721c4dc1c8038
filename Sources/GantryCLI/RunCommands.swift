import Foundation
import GantryAPI
import StateStore
import ControllerRuntime
import Controllers

/// `gantry logs NAME [-n NS] [--replica N] [--tail N] [--since DURATION] [-f]`: a replica's
/// output (rank 0 by default) from its capped log in the state directory.
struct LogsCommand {
    var key: ObjectKey
    var rank: Int
    var tail: Int?
    var follow: Bool
    /// Only output of the last this many seconds.
    var since: Double?

    init(_ args: inout Args) throws {
        key = try workloadArgument(&args, usage: "logs needs one workload name: gantry logs NAME -n NAMESPACE [--replica N] [--tail N] [-f]")
        rank = try args.int("replica") ?? 0
        tail = try args.int("tail")
        follow = args.bool("follow")
        since = try args.duration("since")
        if let s = since, !(s.isFinite && s <= CLI.maxDuration) { throw UsageError("--since: at most 100 years") }
        guard rank >= 0 else { throw UsageError("--replica: a rank, 0 or more") }
        if let t = tail, t < 0 { throw UsageError("--tail: 0 or more lines") }
    }

    func run(_ backend: Backend) throws -> Int32 {
        switch backend {
        case .directory(let dir): return try run(stateDir: dir)
        case .kube(let k): return try runKube(k)
        case .remote(let c): return try runRemote(c)
        }
    }

    func run(stateDir: String) throws -> Int32 {
        let reader = try StateReader(directory: stateDir)
        guard let row = try storedWorkload(reader, key) else { return 1 }
        let replicas = StoredObject(row).replicas
        guard rank < max(replicas, 1) else {
            errOut("gantry: workload \(key.qualifiedName) has \(replicas) replica\(replicas == 1 ? "" : "s") (ranks 0-\(max(replicas, 1) - 1))")
            return 1
        }
        let path = ProcessRuntime.logPath(stateDir: stateDir, key, rank: rank)
        if !FileManager.default.fileExists(atPath: path) && !follow {
            errOut("gantry: no log yet for \(key.qualifiedName) rank \(rank) (it has not started, or its logs were removed after ttlSecondsAfterFinished)")
            return 1
        }
        if let since {
            guard printSince(path, seconds: since) else { return 1 }
        } else if let n = tail {
            for l in LogFiles.tail(path, lines: n, maxBytes: 1 << 30) { out(l) }
        } else {
            for p in [path + ".1", path] { if let d = FileManager.default.contents(atPath: p) { writeOut(d) } }
        }
        guard follow else { return 0 }
        return followLog(path, reader: reader)
    }

    func writeOut(_ d: Data) { FileHandle.standardOutput.write(d) }

    /// Prints what is appended until the workload finishes (or is stopped) and the log is quiet.
    func followLog(_ path: String, reader: StateReader) -> Int32 {
        var st = stat()
        var offset = stat(path, &st) == 0 ? Int(st.st_size) : 0
        var inode = stat(path, &st) == 0 ? st.st_ino : 0
        var quiet = 0
        while true {
            var grew = false
            if stat(path, &st) == 0 {
                if st.st_ino != inode || Int(st.st_size) < offset { inode = st.st_ino; offset = 0 }   // rotated
                if Int(st.st_size) > offset, let h = FileHandle(forReadingAtPath: path) {
                    try? h.seek(toOffset: UInt64(offset))
                    if let d = try? h.readToEnd(), !d.isEmpty { writeOut(d); offset += d.count; grew = true }
                    try? h.close()
                }
            }
            quiet = grew ? 0 : quiet + 1
            if quiet >= 4, let row = try? reader.objects(kind: .workload, namespace: key.namespace, name: key.name).first {
                let phase = StoredObject(row).status?["phase"]?.stringValue ?? ""
                if ["Succeeded", "Failed", "Stopped"].contains(phase) { return 0 }
                quiet = 0
            } else if quiet >= 4 { return 0 }
            usleep(250_000)
        }
    }
}

/// `gantry stop NAME... -n NS` / `gantry resume NAME... -n NS` (or `-l SELECTOR` for the
/// namespace's workloads with those labels): records an override of `spec.suspend` through
/// the running daemon, leaving the manifest alone.
struct SuspendCommand {
    var verb: String
    var namespace: String
    var names: [String]
    /// `-l`: every workload of the namespace whose labels match, instead of names.
    var selector: String?

    init(_ verb: String, _ args: inout Args) throws {
        self.verb = verb
        var pos = args.positionals
        if ["workload", "workloads", "wl"].contains(pos.first ?? "") { pos.removeFirst() }
        names = pos
        namespace = args.string("namespace") ?? "default"
        selector = args.string("selector")
        if let s = selector, s.trimmingCharacters(in: .whitespaces).isEmpty { throw UsageError("-l: a label selector like team=a") }
        guard names.isEmpty != (selector == nil) else {
            throw UsageError("\(verb) needs one workload name or more, or -l SELECTOR (not both): gantry \(verb) NAME... -n NAMESPACE, or gantry \(verb) -l KEY=VALUE -n NAMESPACE")
        }
    }

    var keys: [ObjectKey] { names.map { ObjectKey(.workload, namespace: namespace, name: $0) } }

    func run(_ backend: Backend) throws -> Int32 {
        switch backend {
        case .directory(let dir): return try run(stateDir: dir)
        case .kube(let k):
            var failed = false
            for key in try targets(k) { if try runKube(k, key) != 0 { failed = true } }
            return failed ? 1 : 0
        case .remote(let c): return try runRemote(c)
        }
    }

    /// The named workloads, or those of the namespace matching the selector (saying so when none).
    func targets(_ reader: any ObjectReader) throws -> [ObjectKey] {
        guard let selector else { return keys }
        let terms = GetCommand.selectors([selector])
        let matching = try reader.objects(kind: .workload, namespace: namespace, name: nil).map(StoredObject.init).filter { GetCommand.matches($0.labels, terms) }
        if matching.isEmpty { errOut("No workloads in namespace \(namespace) match -l \(selector).") }
        return matching.map(\.key)
    }

    /// What a done stop/resume says; `how`: how spec.suspend was set.
    func message(_ key: ObjectKey, how: String) -> String {
        verb == "stop"
            ? "workload \(key.qualifiedName) stopping: \(how.replacingOccurrences(of: "%", with: "spec.suspend=true")) (replicas get SIGTERM, then SIGKILL after the grace period)"
            : "workload \(key.qualifiedName) resumed: \(how.replacingOccurrences(of: "%", with: "spec.suspend=false")) (it waits for admission again)"
    }

    func run(stateDir: String) throws -> Int32 {
        let reader = try StateReader(directory: stateDir)
        var failed = false
        var pending: [(ObjectKey, String)] = []
        for key in try targets(reader) {
            guard try storedWorkload(reader, key) != nil else { failed = true; continue }
            pending.append((key, try ControlRequests.submit(stateDir: stateDir, verb: verb, key: key)))
        }
        // The daemon picks requests up within a tenth of a second.
        for _ in 0..<50 where !pending.isEmpty {
            pending.removeAll { key, path in
                guard !FileManager.default.fileExists(atPath: path) else { return false }
                out(message(key, how: "override % recorded"))
                return true
            }
            if !pending.isEmpty { usleep(100_000) }
        }
        for (_, path) in pending {
            out("request recorded in \(path); the daemon is not running (or busy) and applies it when it reads the state directory")
        }
        return failed ? 1 : 0
    }
}

/// The workload a command names: `NAME` (or `workload NAME`) and `-n NS`.
func workloadArgument(_ args: inout Args, usage: String) throws -> ObjectKey {
    var pos = args.positionals
    if ["workload", "workloads", "wl"].contains(pos.first ?? "") { pos.removeFirst() }
    guard pos.count == 1 else { throw UsageError(usage) }
    return ObjectKey(.workload, namespace: args.string("namespace") ?? "default", name: pos[0])
}

/// The stored workload, or nil after saying it is not there.
func storedWorkload(_ reader: any ObjectReader, _ key: ObjectKey) throws -> ObjectRow? {
    guard let row = try reader.objects(kind: .workload, namespace: key.namespace, name: key.name).first else {
        errOut("gantry: workload \"\(key.name)\" not found in namespace \(key.namespace)")
        return nil
    }
    return row
}
