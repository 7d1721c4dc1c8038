import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import StateStore
import GantryShim

/// `gantry stop` / `gantry resume`: a suspend value that overrides the manifest's
/// `spec.suspend` without touching the user's file. Kept in the state store's `overrides`
/// table; it holds while the manifest keeps the generation it was recorded at, and is dropped
/// (the file wins) once the manifest changes.
public final class Overrides: Sendable {
    let m = Mutex<[ObjectKey: SuspendOverride]>([:])
    /// Bumped on every change.
    public let version = Atomic<Int>(0)
    /// Runs SQL in the state store's next batch (nil in tests).
    let sql: (@Sendable (String, [SQLValue]) -> Void)?

    public init(sql: (@Sendable (String, [SQLValue]) -> Void)? = nil) { self.sql = sql }

    public func get(_ key: ObjectKey) -> SuspendOverride? { m.withLock { $0[key] } }

    public func load(_ rows: [(ObjectKey, SuspendOverride)]) { m.withLock { for (k, o) in rows { $0[k] = o } } }

    public func set(_ key: ObjectKey, _ o: SuspendOverride) {
        m.withLock { $0[key] = o }
        version.add(1, ordering: .relaxed)
        sql?("""
            INSERT INTO overrides(kind, namespace, name, field, value, generation, at) VALUES(?,?,?,'suspend',?,?,?)
            ON CONFLICT(kind, namespace, name, field) DO UPDATE SET value=excluded.value, generation=excluded.generation, at=excluded.at
            """, [.text(key.kind.rawValue), .text(key.namespace), .text(key.name), .text(o.suspend ? "true" : "false"), .int(o.generation), .double(Double(o.at.seconds))])
    }

    public func remove(_ key: ObjectKey) {
        guard m.withLock({ $0.removeValue(forKey: key) }) != nil else { return }
        version.add(1, ordering: .relaxed)
        sql?("DELETE FROM overrides WHERE kind=? AND namespace=? AND name=?", [.text(key.kind.rawValue), .text(key.namespace), .text(key.name)])
    }

    /// The object as it is in force: the override applied while its generation holds. A
    /// newer generation clears the override (the file wins).
    public func apply(_ obj: ManifestObject?, events: EventRecorder) -> (ManifestObject?, SuspendOverride?) {
        guard var o = obj, let ov = get(o.key), case .workload(var spec) = o.spec else { return (obj, nil) }
        if o.meta.generation != ov.generation {
            remove(o.key)
            events.normal(InvolvedObject(o.key), "OverrideCleared", "the manifest changed (generation \(o.meta.generation)); `\(ov.by)` no longer applies and spec.suspend from the file is in force")
            return (obj, nil)
        }
        spec.suspend = ov.suspend
        o.spec = .workload(spec)
        return (o, ov)
    }
}

/// Requests from the CLI to the running daemon: one small file per request in
/// `STATE_DIR/control/`, written atomically; the daemon applies it and deletes the file.
public enum ControlRequests {
    public static func dir(_ stateDir: String) -> String { stateDir + "/control" }
    /// The largest request file read; larger ones are deleted unread.
    static let maxRequestSize = 4096

    /// Writes a request; returns its path.
    public static func submit(stateDir: String, verb: String, key: ObjectKey) throws -> String {
        let d = dir(stateDir)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let path = "\(d)/\(Int(Date().timeIntervalSince1970 * 1e6))-\(getpid()).req"
        let text = "\(verb) \(key.kind.rawValue) \(key.namespace) \(key.name)\n"
        guard writeFileAtomically(path, text) else { throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))") }
        return path
    }

    /// Pending requests in the order they were written.
    public static func pending(stateDir: String) -> [(path: String, verb: String, key: ObjectKey)] {
        let d = dir(stateDir)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: d) else { return [] }
        var out: [(String, String, ObjectKey)] = []
        for n in names.sorted() where n.hasSuffix(".req") {
            let p = d + "/" + n
            // A request is one short line: anything else (a directory, a huge or unreadable file) is not one.
            var st = stat()
            guard stat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            guard st.st_size <= maxRequestSize else { unlink(p); continue }
            guard let data = FileManager.default.contents(atPath: p) else { continue }
            let f = String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            guard f.count == 4, let kind = Kind(rawValue: f[1]) else { unlink(p); continue }
            out.append((p, f[0], ObjectKey(kind, namespace: f[2], name: f[3])))
        }
        return out
    }
}
