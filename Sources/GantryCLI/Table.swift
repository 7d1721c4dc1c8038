/// Aligned columns like kubectl: upper-case headers, three spaces between columns.
struct Table {
    var headers: [String]
    var rows: [[String]] = []
    init(_ headers: [String]) { self.headers = headers }
    mutating func add(_ row: [String]) { rows.append(row) }

    func render(header: Bool = true) -> String {
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var s = ""
            for (i, c) in cells.enumerated() {
                if i == cells.count - 1 { s += c } else { s += c + String(repeating: " ", count: (i < widths.count ? max(widths[i], c.count) : c.count) - c.count + 3) }
            }
            return s
        }
        var out: [String] = []
        if header { out.append(line(headers)) }
        for r in rows { out.append(line(r)) }
        return out.joined(separator: "\n")
    }
}
