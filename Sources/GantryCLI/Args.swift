import Foundation

/// A usage error: printed with a hint to run `gantry help`, exit code 2.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Command-line arguments: positionals plus flags (`--flag value`, `--flag=value`, `-n value`,
/// boolean flags without values). Flags may repeat (`-l a=b -l c=d`).
struct Args {
    var positionals: [String] = []
    var flags: [String: [String]] = [:]
    private var consumed = Set<String>()

    /// `boolFlags` take no value; `aliases` map short names to long ones.
    init(_ argv: [String], boolFlags: Set<String>, aliases: [String: String] = [:]) throws {
        var i = 0
        while i < argv.count {
            let a = argv[i]
            i += 1
            if a == "--" { positionals += argv[i...]; break }
            guard a.hasPrefix("-"), a.count > 1, Double(a) == nil else { positionals.append(a); continue }
            var name = String(a.drop(while: { $0 == "-" }))
            var value: String?
            if let eq = name.firstIndex(of: "=") { value = String(name[name.index(after: eq)...]); name = String(name[..<eq]) }
            if !a.hasPrefix("--"), name.count > 1, aliases[name] == nil, let first = name.first, aliases[String(first)] != nil || boolFlags.contains(String(first)) {
                // -oyaml, -nteam-a
                value = String(name.dropFirst()); name = String(first)
            }
            name = aliases[name] ?? name
            if boolFlags.contains(name) {
                if let v = value, !["true", "false"].contains(v) { throw UsageError("flag --\(name) takes no value") }
                flags[name, default: []].append(value ?? "true")
                continue
            }
            if value == nil {
                guard i < argv.count else { throw UsageError("flag --\(name) needs a value") }
                value = argv[i]; i += 1
            }
            flags[name, default: []].append(value!)
        }
    }

    mutating func string(_ name: String) -> String? { consumed.insert(name); return flags[name]?.last }
    mutating func strings(_ name: String) -> [String] { consumed.insert(name); return flags[name] ?? [] }
    mutating func bool(_ name: String) -> Bool { consumed.insert(name); return flags[name]?.last == "true" }
    mutating func int(_ name: String) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s), v >= 0 else { throw UsageError("--\(name): expected a non-negative integer, got \"\(s)\"") }
        return v
    }
    mutating func duration(_ name: String) throws -> Double? {
        guard let s = string(name) else { return nil }
        guard let d = parseDuration(s) else { throw UsageError("--\(name): expected a duration like 30s, 5m, 24h or 1h30m, got \"\(s)\"") }
        return d
    }
    /// Fails on flags nobody asked for.
    func checkUnknown() throws {
        for k in flags.keys.sorted() where !consumed.contains(k) { throw UsageError("unknown flag --\(k)") }
    }
}

/// Parses `90`, `1.5`, `500ms`, `30s`, `5m`, `24h`, `2d`, `1h30m` into seconds.
func parseDuration(_ s: String) -> Double? {
    if let v = Double(s) { return v >= 0 && v.isFinite ? v : nil }
    var total = 0.0
    var num = ""
    var chars = Array(s)[...]
    guard !chars.isEmpty else { return nil }
    while let c = chars.first {
        if c.isNumber || c == "." { num.append(c); chars = chars.dropFirst(); continue }
        var unit = String(c); chars = chars.dropFirst()
        if unit == "m", chars.first == "s" { unit = "ms"; chars = chars.dropFirst() }
        guard let v = Double(num) else { return nil }
        num = ""
        switch unit {
        case "ms": total += v / 1000
        case "s": total += v
        case "m": total += v * 60
        case "h": total += v * 3600
        case "d": total += v * 86400
        default: return nil
        }
    }
    return num.isEmpty && total.isFinite ? total : nil
}

/// Writes to stdout in one go (no interleaving with logs).
func out(_ s: String) {
    var s = s
    if !s.hasSuffix("\n") { s += "\n" }
    FileHandle.standardOutput.write(s.data(using: .utf8)!)
}

func errOut(_ s: String) {
    FileHandle.standardError.write((s.hasSuffix("\n") ? s : s + "\n").data(using: .utf8)!)
}
