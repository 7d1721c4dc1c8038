import Foundation
import Synchronization
import GantryAPI

/// Process-wide structured logger writing one line per message to stderr, as text
/// (`2026-01-15T10:31:00Z INFO message key=value`) or JSON (`{"ts":...,"level":...,"msg":...}`).
public enum Log {
    public enum Level: Int, Sendable, Comparable {
        case debug = 0, info, warn, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public init?(name: String) {
            switch name.lowercased() { case "debug": self = .debug; case "info": self = .info; case "warn", "warning": self = .warn; case "error": self = .error; default: return nil }
        }
        var label: String { switch self { case .debug: "DEBUG"; case .info: "INFO"; case .warn: "WARN"; case .error: "ERROR" } }
    }
    public enum Format: String, Sendable { case text, json }

    struct Config { var level = Level.info; var format = Format.text; var sink: (@Sendable (String) -> Void)? }
    static let config = Mutex(Config())

    public static func configure(level: Level, format: Format) {
        config.withLock { $0.level = level; $0.format = format }
    }
    /// Redirects lines (tests). nil restores stderr.
    public static func setSink(_ sink: (@Sendable (String) -> Void)?) { config.withLock { $0.sink = sink } }

    public static func debug(_ msg: String, _ fields: [String: String] = [:]) { write(.debug, msg, fields) }
    public static func info(_ msg: String, _ fields: [String: String] = [:]) { write(.info, msg, fields) }
    public static func warn(_ msg: String, _ fields: [String: String] = [:]) { write(.warn, msg, fields) }
    public static func error(_ msg: String, _ fields: [String: String] = [:]) { write(.error, msg, fields) }

    static func write(_ level: Level, _ msg: String, _ fields: [String: String]) {
        let c = config.withLock { $0 }
        guard level >= c.level else { return }
        let now = SystemClock().now()
        let ts = Timestamp(secondsSince1970: now).rfc3339
        let ms = Int((now - now.rounded(.down)) * 1000)
        let stamp = ts.dropLast() + "." + (ms < 10 ? "00" : ms < 100 ? "0" : "") + String(ms) + "Z"
        var line: String
        // `fields[k]!` below cannot fail: k comes from fields.keys.
        switch c.format {
        case .json:
            var members: [Value.Member] = [.init("ts", .string(String(stamp))), .init("level", .string(level.label.lowercased())), .init("msg", .string(msg))]
            for k in fields.keys.sorted() { members.append(.init(k, .string(fields[k]!))) }
            line = JSON.encode(.object(members))
        case .text:
            line = "\(stamp) \(level.label) \(msg)"
            for k in fields.keys.sorted() {
                let v = fields[k]!
                line += " \(k)=" + (v.contains(" ") || v.contains("\"") || v.isEmpty ? JSON.encode(.string(v)) : v)
            }
        }
        if let sink = c.sink { sink(line); return }
        line += "\n"
        line.withCString { p in _ = Foundation.write(2, p, strlen(p)) }
    }
}
