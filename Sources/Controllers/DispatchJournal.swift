import Foundation
import Synchronization
import GantryAPI
import GantryShim
import ControllerRuntime

/// The dispatches started, as an append-only journal (`replicas/dispatches.journal`): one
/// line per gang start, written and fsync'd before its replicas are spawned, and one line
/// when a workload's records are dropped. A restarted daemon reads the newest dispatch of
/// each workload from it. One file for all, not one per dispatch: creating a file costs more
/// than appending a line. A torn last line (a crash mid-write) is ignored; its dispatch never
/// started, and it is cut off before the next line is appended. The journal is rewritten (temporary file, fsync, rename) when it holds many more
/// lines than live workloads.
final class DispatchJournal: Sendable {
    struct State {
        var fd: Int32 = -1
        var lines = 0
        var latest: [ObjectKey: DispatchIntent] = [:]
    }
    let path: String
    let state = Mutex(State())

    init(path: String) { self.path = path }

    static func line(_ key: ObjectKey, _ i: DispatchIntent) -> String {
        let a = i.assignments.map { "\($0.rank):\($0.node):\($0.gpus.map(String.init).joined(separator: ","))" }.joined(separator: ";")
        return "intent \(key.namespace) \(key.name) dispatch=\(i.dispatch) spec=\(i.specHash) port=\(i.masterPort) at=\(i.at) a=\(a)\n"
    }

    /// The newest dispatch of each workload. A line that does not read whole (a field without
    /// `=`, an unknown or repeated key, a value that is no number) is skipped, never filed
    /// under some workload: a line glued onto a torn one reads as garbage, not as a dispatch.
    static func parse(_ text: String) -> [ObjectKey: DispatchIntent] {
        var out: [ObjectKey: DispatchIntent] = [:]
        var rest = Substring(text)
        while let nl = rest.firstIndex(of: "\n") {
            let f = rest[..<nl].split(separator: " ")
            rest = rest[rest.index(after: nl)...]
            guard f.count >= 3 else { continue }
            let key = ObjectKey(.workload, namespace: String(f[1]), name: String(f[2]))
            if f[0] == "forget" { if f.count == 3 { out[key] = nil }; continue }
            guard f[0] == "intent", let (k, i) = parseIntent(key, f.dropFirst(3)) else { continue }
            if let cur = out[k], cur.dispatch > i.dispatch { continue }
            out[k] = i
        }
        return out
    }

    static func parseIntent(_ key: ObjectKey, _ fields: ArraySlice<Substring>) -> (ObjectKey, DispatchIntent)? {
        var kv: [Substring: Substring] = [:]
        for p in fields {
            guard let eq = p.firstIndex(of: "="), kv.updateValue(p[p.index(after: eq)...], forKey: p[..<eq]) == nil else { return nil }
        }
        // Numbers are bounded as the daemon writes them, so nothing read back can overflow later.
        guard kv.count == 5, let d = kv["dispatch"].flatMap({ Int($0) }), (1...Int(Int32.max)).contains(d), let spec = kv["spec"],
              let port = kv["port"].flatMap({ Int($0) }), (0...65535).contains(port),
              let at = kv["at"].flatMap({ Double($0) }), at.isFinite, let a = kv["a"] else { return nil }
        var assignments: [ReplicaAssignment] = []
        for part in a.split(separator: ";") {
            let x = part.split(separator: ":", omittingEmptySubsequences: false)
            guard x.count == 3, let r = Int(x[0]), (0..<100_000).contains(r) else { return nil }
            var gpus: [Int] = []
            for g in x[2].split(separator: ",") { guard let n = Int(g), (0..<65_536).contains(n) else { return nil }; gpus.append(n) }
            assignments.append(ReplicaAssignment(rank: r, node: String(x[1]), gpus: gpus))
        }
        return (key, DispatchIntent(dispatch: d, specHash: String(spec), masterPort: port, at: at, assignments: assignments))
    }

    /// Reads the journal (at start-up) and opens it for appending.
    func load() -> [ObjectKey: DispatchIntent] {
        let text = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let latest = DispatchJournal.parse(text)
        state.withLock { s in
            s.latest = latest
            s.lines = text.reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
            // A torn last line is cut off first: the next intent must not be glued onto it.
            if s.fd < 0 { s.fd = openLinesForAppend(path) }
        }
        return latest
    }

    /// Journals one dispatch durably: 0 once its line is written and fsync'd, else the errno
    /// (then it is not counted as recorded, and its replicas must not start).
    @discardableResult
    func record(_ key: ObjectKey, _ intent: DispatchIntent) -> Int32 {
        append(DispatchJournal.line(key, intent)) { $0.latest[key] = intent }
    }

    /// Several dispatches in one write and one fsync (group commit): each is durable before
    /// this returns 0, as with `record` one at a time; else the errno, and none counts as
    /// recorded.
    @discardableResult
    func record(_ batch: [(ObjectKey, DispatchIntent)]) -> Int32 {
        guard !batch.isEmpty else { return 0 }
        var text = ""
        for (k, i) in batch { text += DispatchJournal.line(k, i) }
        return append(text, lines: batch.count) { s in for (k, i) in batch { s.latest[k] = i } }
    }

    func forget(_ key: ObjectKey) {
        let known = state.withLock { $0.latest[key] != nil }
        guard known else { return }
        // Forgotten in memory even when the line could not be written: the journal's old line
        // for the key then only matters until the next compaction, which must not write the
        // deleted workload's dispatch back as live.
        if append("forget \(key.namespace) \(key.name)\n", { $0.latest[key] = nil }) != 0 {
            state.withLock { _ = $0.latest.removeValue(forKey: key) }
        }
    }

    /// 0 when `line` is written and fsync'd (then `update` is applied), else the errno. The
    /// journal's file is the one thing this lock guards: no other thread waits on it but a
    /// dispatch being journaled.
    private func append(_ line: String, lines: Int = 1, _ update: (inout State) -> Void) -> Int32 {
        state.withLock { s in
            if s.fd < 0 { s.fd = openLinesForAppend(path) }
            guard s.fd >= 0, writeAll(s.fd, Array(line.utf8)), fsync(s.fd) == 0 else {
                let e = errno == 0 ? EIO : errno
                Log.error("cannot append to the dispatch journal", ["path": path, "error": String(cString: strerror(e))])
                // A failed write (ENOSPC part way through a batch) may have left a torn line:
                // reopen before the next append, which cuts it off, so the next line is not
                // glued onto it (and lost). What it said is not counted as recorded (a later
                // compaction must not write it as if it were).
                if s.fd >= 0 { close(s.fd); s.fd = -1 }
                return e
            }
            update(&s)
            s.lines += lines
            if s.lines > 4096 && s.lines > 4 * s.latest.count { compact(&s) }
            return 0
        }
    }

    /// Rewrites the journal with the newest dispatch of each live workload only.
    private func compact(_ s: inout State) {
        var text = ""
        for (k, i) in s.latest.sorted(by: { $0.key < $1.key }) { text += DispatchJournal.line(k, i) }
        guard writeFileAtomically(path, text) else { return }
        close(s.fd)
        s.fd = openLinesForAppend(path)
        s.lines = s.latest.count
    }
}
