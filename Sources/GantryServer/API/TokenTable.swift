import Foundation
import GantryAPI

/// Bearer tokens from a file: one per line, `#` comments (at a line's start or after a blank),
/// blank lines ignored,
/// `TOKEN USER ROLE [NAMESPACES] [UNIX_ACCOUNT]` (ROLE viewer|editor|admin; NAMESPACES `*` or
/// a comma-separated list, missing = `*`; UNIX_ACCOUNT optional, `-` = none).
public struct TokenTable: Sendable {
    struct Entry: Sendable {
        var token: [UInt8]
        var principal: Principal
    }
    let entries: [Entry]

    public var count: Int { entries.count }

    /// Reads and parses `path`; errors name `file:line`.
    public static func load(path: String) throws(APIError) -> TokenTable {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw APIError(400, "InvalidTokens", "\(path): cannot read the tokens file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw APIError(400, "InvalidTokens", "\(path): the tokens file is not UTF-8")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(APIError) -> TokenTable {
        var entries: [Entry] = []
        var seenTokens = Set<String>()
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            // A comment starts with '#' at the start of a line or after blanks (a token may hold '#').
            var line = Substring(rawLine)
            var prev: Character = " "
            for i in line.indices {
                if line[i] == "#" && (prev == " " || prev == "\t") { line = line[..<i]; break }
                prev = line[i]
            }
            let cols = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if cols.isEmpty { continue }
            func fail(_ m: String) -> APIError { APIError(400, "InvalidTokens", "\(file):\(lineNumber): \(m)") }
            guard cols.count >= 3 else { throw fail("expected TOKEN USER ROLE [NAMESPACES] [UNIX_ACCOUNT], found \(cols.count) column\(cols.count == 1 ? "" : "s")") }
            guard cols.count <= 5 else { throw fail("too many columns (\(cols.count)); expected at most 5") }
            let token = cols[0], user = cols[1]
            guard !seenTokens.contains(token) else { throw fail("token of user \(user) repeats an earlier line's token") }
            seenTokens.insert(token)
            guard let role = Role.allCases.first(where: { $0.name == cols[2] }) else {
                throw fail("unknown role \"\(cols[2])\" (viewer, editor or admin)")
            }
            var namespaces: [String]?
            if cols.count >= 4, cols[3] != "*" {
                let list = cols[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                for ns in list where ns != "*" && !ManifestDecoder.isDNS1123Label(ns) {
                    throw fail("namespace \"\(ns)\" is not a DNS-1123 label")
                }
                namespaces = list.contains("*") ? nil : list
            }
            var unix: String?
            if cols.count == 5, cols[4] != "-" {
                let u = cols[4]
                let ok = u.utf8.allSatisfy { c in
                    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d || c == 0x2e
                }
                guard ok, u.first != "-", u.utf8.count <= 32 else { throw fail("Unix account \"\(u)\" is not a valid user name") }
                unix = u
            }
            entries.append(Entry(token: Array(token.utf8), principal: Principal(user: user, role: role, namespaces: namespaces, unixUser: unix)))
        }
        return TokenTable(entries: entries)
    }

    /// The principal of `Authorization: Bearer TOKEN`, or nil. Every entry is compared in
    /// full, in time that depends only on the lengths, whether or not one matched earlier.
    public func authenticate(_ authorizationHeader: String?) -> Principal? {
        guard let header = authorizationHeader else { return nil }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let given = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
        var found: Principal?
        for e in entries {
            if TokenTable.constantTimeEqual(given, e.token) { found = e.principal }
        }
        return found
    }

    /// Equal bytes, comparing every byte of the longer operand regardless of where they differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff: UInt64 = UInt64(truncatingIfNeeded: a.count ^ b.count)
        let n = max(a.count, b.count)
        var i = 0
        while i < n {
            let x: UInt8 = i < a.count ? a[i] : 0
            let y: UInt8 = i < b.count ? b[i] : 0
            diff |= UInt64(x ^ y)
            i += 1
        }
        return diff == 0
    }
}
