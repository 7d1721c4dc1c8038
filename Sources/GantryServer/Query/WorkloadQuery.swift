import GantryAPI

// OWNER: query helper.

/// A parsed workload list query (GET /api/v1/workloads and /namespaces/{ns}/workloads).
/// Parameters: phase, type, queue, namespace, user, name (contains), description (contains),
/// labels (a label selector), since/until (creation time, ISO 8601), startedAfter/
/// startedBefore, completedAfter/completedBefore, filterBy (seed 002 operators), sortBy,
/// sortOrder (asc|desc), offset, limit (1...1000, default 50), continue, fields, deleted.
/// Unknown parameters and bad values: 400 naming the parameter.
///
/// Details:
/// - phase, type, queue, namespace, user take comma-separated lists (any of them matches);
///   phase and type ignore case. A workload without status is `Pending`.
/// - name and description match a substring, ignoring ASCII case.
/// - Times are RFC 3339, a bare date (`2021-01-01`, midnight UTC) or seconds since the
///   epoch; bounds are inclusive. A workload that has not started (or completed) never
///   matches a startedAfter/Before (completedAfter/Before) bound.
/// - filterBy: comma-separated `FIELD OP VALUE` with OP one of `== != <= >= =@ !@ =^ =$`;
///   numbers (priority, gpus) and dates (createdAt, startedAt, completedAt) compare by value
///   and take only `== != <= >=`; strings compare exactly, by substring, prefix, suffix, or
///   lexicographically (`<=`, `>=`). A piece that is not `FIELD OP VALUE` continues the
///   previous value (a value with a comma). A missing date matches only `!=`.
/// - sortBy (default: namespace then name), sortOrder asc (default) | desc; ties by
///   namespace then name, ascending; missing dates sort last either way.
/// - continue: the opaque marker of a previous page of the same query (filters and sort);
///   another query's marker or a damaged one: 400. It sets the offset.
/// - Seed aliases accepted: order (sortOrder), kind (type), status (phase), marker
///   (continue), maxKeys (limit), fieldlist (fields), userName/submittedBy (user),
///   workspaceId (queue).
/// - Speed: filters and sorts read a columnar `WorkloadIndex`; `apply(_ items:)` reuses the
///   index of the same array storage (a backend that returns one array until the list
///   changes gets ~1 ms pages at 100,000 workloads), else builds the columns it needs.
///   Restrict namespaces with `restrict(namespaces:)` rather than filtering the array.
public struct WorkloadQuery: Sendable {
    public var fields: [String]?
    public var includeDeleted = false
    public var offset = 0
    public var limit = 50
    /// The first page's resourceVersion, from a `continue` marker of a list that had one.
    public var continueRevision: Int64?
    public init() {}

    /// The filters (all must hold).
    var clauses: [Clause] = []
    public var sortBy: SortField = .default
    public var descending = false
    /// Canonical text of the filters and sort (what a continue marker is bound to).
    var canonical = ""

    public static let maxLimit = 1000
    public static let defaultLimit = 50

    /// What the list can be sorted by.
    public enum SortField: String, Sendable, CaseIterable {
        case `default` = "namespace,name"
        case name, namespace, createdAt, startedAt, completedAt, phase, type, queue, priority, gpus, user
    }

    /// Parameters `parse` accepts (seed aliases included).
    public static let parameters = ["phase", "status", "type", "kind", "queue", "workspaceId", "namespace", "user", "userName", "submittedBy",
                                    "name", "description", "labels", "since", "until", "startedAfter", "startedBefore", "completedAfter",
                                    "completedBefore", "filterBy", "sortBy", "sortOrder", "order", "offset", "limit", "maxKeys", "continue",
                                    "marker", "fields", "fieldlist", "deleted"]

    public static func parse(_ query: [(String, String)]) throws(APIError) -> WorkloadQuery {
        var q = WorkloadQuery()
        var canon: [String] = []
        var marker: (String, String)?
        for (rawName, value) in query {
            if rawName.isEmpty { continue }
            let name: String
            switch rawName {
            case "status": name = "phase"
            case "kind": name = "type"
            case "workspaceId": name = "queue"
            case "userName", "submittedBy": name = "user"
            case "order": name = "sortOrder"
            case "maxKeys", "maxkeys": name = "limit"
            case "marker": name = "continue"
            case "fieldlist", "fieldList": name = "fields"
            default: name = rawName
            }
            func bad(_ why: String) -> APIError { .badRequest("\(rawName): \(why)", field: rawName) }
            switch name {
            case "phase":
                var mask: UInt32 = 0
                for v in list(value) {
                    guard let p = WorkloadPhase.allCases.firstIndex(where: { $0.rawValue.lowercased() == v.lowercased() }) else {
                        throw bad("unknown phase \"\(v.prefix(40))\"; expected \(WorkloadPhase.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    mask |= 1 << UInt32(p)
                }
                q.clauses.append(.phaseMask(mask)); canon.append("phase=\(mask)")
            case "type":
                var mask: UInt32 = 0
                for v in list(value) {
                    guard let t = WorkloadType.allCases.firstIndex(where: { $0.rawValue.lowercased() == v.lowercased() }) else {
                        throw bad("unknown type \"\(v.prefix(40))\"; expected \(WorkloadType.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    mask |= 1 << UInt32(t)
                }
                q.clauses.append(.typeMask(mask)); canon.append("type=\(mask)")
            case "queue", "namespace", "user":
                let vs = list(value)
                guard !vs.isEmpty else { throw bad("expected a name or a comma-separated list of names") }
                let f: StringField = name == "queue" ? .queue : name == "namespace" ? .namespace : .user
                q.clauses.append(.oneOf(f, vs)); canon.append("\(name)=\(vs.joined(separator: ","))")
            case "name", "description":
                guard !value.isEmpty else { continue }
                q.clauses.append(.contains(name == "name" ? .name : .description, Array(value.lowercased().utf8)))
                canon.append("\(name)~\(value)")
            case "labels":
                let s = try LabelSelector.parse(value, field: rawName)
                if !s.requirements.isEmpty { q.clauses.append(.labels(s)); canon.append("labels=\(value)") }
            case "since", "until", "startedAfter", "startedBefore", "completedAfter", "completedBefore":
                guard let t = parseTime(value) else {
                    throw bad("expected a time in RFC 3339 (2021-01-01T00:00:00Z), a date (2021-01-01) or seconds since the epoch, got \"\(value.prefix(40))\"")
                }
                let field: DateField = name == "since" || name == "until" ? .createdAt : name.hasPrefix("started") ? .startedAt : .completedAt
                let op: Op = name == "since" || name.hasSuffix("After") ? .ge : .le
                q.clauses.append(.date(field, op, t)); canon.append("\(name)=\(t)")
            case "filterBy":
                for c in try parseFilterBy(value, param: rawName) { q.clauses.append(c.clause); canon.append("f:" + c.canonical) }
            case "sortBy":
                guard let f = sortField(value) else {
                    throw bad("cannot sort by \"\(value.prefix(40))\"; expected one of \(SortField.allCases.dropFirst().map(\.rawValue).joined(separator: ", "))")
                }
                q.sortBy = f
            case "sortOrder":
                switch value.lowercased() {
                case "asc", "ascending": q.descending = false
                case "desc", "descending": q.descending = true
                default: throw bad("expected asc or desc, got \"\(value.prefix(40))\"")
                }
            case "offset":
                guard let n = Int(value), n >= 0, n <= Int(Int32.max) else { throw bad("expected a whole number from 0, got \"\(value.prefix(40))\"") }
                q.offset = n
            case "limit":
                guard let n = Int(value), n >= 1, n <= maxLimit else { throw bad("expected a whole number from 1 to \(maxLimit), got \"\(value.prefix(40))\"") }
                q.limit = n
            case "continue":
                if !value.isEmpty { marker = (rawName, value) }
            case "fields":
                let fs = list(value)
                guard !fs.isEmpty else { q.fields = nil; continue }
                for f in fs where !ObjectView.workloadFields.contains(f) {
                    throw bad("unknown field \"\(f.prefix(40))\"; expected some of \(ObjectView.workloadFields.joined(separator: ", "))")
                }
                q.fields = fs
            case "deleted":
                switch value.lowercased() {
                case "true", "1", "": q.includeDeleted = true
                case "false", "0": q.includeDeleted = false
                default: throw bad("expected true or false, got \"\(value.prefix(40))\"")
                }
            default:
                throw APIError.badRequest("unknown query parameter \"\(rawName.prefix(60))\"; accepted: \(parameters.joined(separator: ", "))", field: rawName)
            }
        }
        canon.sort()
        canon.append("sort=\(q.sortBy.rawValue)\(q.descending ? "-" : "+")")
        q.canonical = canon.joined(separator: "\n")
        if let (param, m) = marker {
            guard let (off, rv) = Marker.decodeWithRevision(m, signature: Marker.signature(q.canonical)) else {
                throw APIError.badRequest("\(param): not a marker of this query (a marker is valid only with the filters and sort it was returned with)", field: param)
            }
            q.offset = off
            q.continueRevision = rv
        }
        return q
    }

    /// Limits the query to namespaces (a token's, a path's) without changing its continue
    /// markers. nil or a list containing "*": no limit. Filtering this way, instead of
    /// filtering the array before `apply`, keeps the backend's array (and its cached index).
    public mutating func restrict(namespaces: [String]?) {
        guard let namespaces, !namespaces.contains("*") else { return }
        clauses.append(.oneOf(.namespace, namespaces))
    }

    /// Filters, sorts (ties by namespace then name) and cuts the page.
    public func apply(_ items: [APIObject]) throws(APIError) -> WorkloadPage {
        try apply(WorkloadIndex.shared(items, columns: neededColumns))
    }

    /// `apply` over a prepared index (see `WorkloadIndex`): what a server listing the same
    /// snapshot many times should call.
    public func apply(_ index: WorkloadIndex) throws(APIError) -> WorkloadPage {
        guard index.columns.isSuperset(of: neededColumns) else { return try apply(index.items) }
        let matched = matchedRows(index)
        let total = matched.count
        let start = min(offset, total)
        let end = limit > total - start ? total : start + limit
        let order = Sorter(ix: index, field: sortBy, descending: descending).top(matched, count: end)
        let stop = min(end, order.count)
        let page = start < stop ? order[start..<stop].map { index.items[Int($0)] } : []
        let next = end < total ? Marker.encode(offset: end, signature: Marker.signature(canonical)) : nil
        return WorkloadPage(items: page, totalCount: total, offset: start, limit: limit, next: next)
    }

    func matchedRows(_ index: WorkloadIndex) -> [Int32] {
        var matched: [Int32] = []
        guard index.count <= Int(Int32.max) else { return [] }
        matched.reserveCapacity(clauses.isEmpty ? index.count : 256)
        for i in 0..<index.count where matches(index, i) { matched.append(Int32(truncatingIfNeeded: i)) }
        return matched
    }

    /// Filters only (for /count, telemetry and batch selectors).
    public func matching(_ items: [APIObject]) -> [APIObject] {
        matching(WorkloadIndex.shared(items, columns: neededColumns))
    }

    public func matching(_ index: WorkloadIndex) -> [APIObject] {
        guard index.columns.isSuperset(of: neededColumns) else { return matching(index.items) }
        return matchedRows(index).map { index.items[Int($0)] }
    }

    /// How many objects pass the filters (without copying them).
    public func count(_ items: [APIObject]) -> Int { count(WorkloadIndex.shared(items, columns: neededColumns)) }

    public func count(_ index: WorkloadIndex) -> Int {
        guard index.columns.isSuperset(of: neededColumns) else { return count(index.items) }
        var n = 0
        for i in 0..<index.count where matches(index, i) { n += 1 }
        return n
    }

    /// Whether one object passes every filter.
    public func matches(_ o: APIObject) -> Bool {
        matches(WorkloadIndex([o], columns: neededColumns), 0)
    }

    func matches(_ ix: WorkloadIndex, _ i: Int) -> Bool {
        for c in clauses where !c.holds(ix, i) { return false }
        return true
    }

    // MARK: parsing helpers

    static func list(_ v: String) -> [String] {
        v.split(separator: ",", omittingEmptySubsequences: true).map { LabelSelector.trim(String($0)) }.filter { !$0.isEmpty }
    }

    static func sortField(_ v: String) -> SortField? {
        switch v {
        case "": return .default
        case "create_time", "creationTime", "acceptTime", "createTime": return .createdAt
        case "startTime": return .startedAt
        case "endTime", "finishTime", "completionTime": return .completedAt
        case "submittedBy": return .user
        case "allocatedGPU", "allocatedGPUs", "gpu": return .gpus
        case "status": return .phase
        case "kind": return .type
        default: return SortField.allCases.first { $0 != .default && $0.rawValue == v }
        }
    }

    /// RFC 3339, a bare date, or whole seconds since the epoch.
    static func parseTime(_ v: String) -> Int64? {
        if !v.isEmpty, v.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int64(v) { return n }
        return Timestamp(rfc3339: v)?.seconds
    }

    struct ParsedClause { var clause: Clause; var canonical: String }

    static let operators = ["==", "!=", "<=", ">=", "=@", "!@", "=^", "=$"]

    static func filterField(_ name: String) -> FilterField? {
        switch name {
        case "name", "workloadId", "workloadName": return .string(.name)
        case "namespace", "project", "projectName": return .string(.namespace)
        case "queue", "workspaceId", "workspace": return .string(.queue)
        case "user", "submittedBy", "userName", "submitter": return .string(.user)
        case "description": return .string(.description)
        case "type", "kind", "distributedFramework": return .type
        case "phase", "status": return .phase
        case "priority": return .number(.priority)
        case "gpus", "gpu", "allocatedGPU", "allocatedGPUs", "requestedGPUs": return .number(.gpus)
        case "replicas": return .number(.replicas)
        case "createdAt", "creationTime", "acceptTime", "createTime": return .date(.createdAt)
        case "startedAt", "startTime": return .date(.startedAt)
        case "completedAt", "endTime", "finishTime", "completionTime": return .date(.completedAt)
        default: return nil
        }
    }

    static let filterFieldNames = "name, namespace, queue, type, phase, priority, gpus, replicas, user, description, createdAt, startedAt, completedAt"

    /// Splits `field op value[,field op value...]`.
    static func parseFilterBy(_ text: String, param: String) throws(APIError) -> [ParsedClause] {
        func bad(_ why: String) -> APIError {
            .badRequest("\(param): \(why); expected FIELD OP VALUE[,...] with OP one of \(operators.joined(separator: " ")) and FIELD one of \(filterFieldNames)", field: param)
        }
        var raw: [(field: String, op: String, value: String)] = []
        for piece in text.split(separator: ",", omittingEmptySubsequences: false) {
            let b = Array(piece.utf8)
            var k = 0
            while k < b.count, isIdent(b[k]) { k += 1 }
            let field = String(decoding: b[0..<k], as: UTF8.self)
            var op: String?
            if k > 0, k + 2 <= b.count {
                let two = String(decoding: b[k..<min(k + 2, b.count)], as: UTF8.self)
                if operators.contains(two) { op = two }
            }
            if let op {
                raw.append((field, op, String(decoding: b[(k + 2)...], as: UTF8.self)))
            } else if k > 0, k < b.count, filterField(field) != nil, "<>=!".utf8.contains(b[k]) {
                throw bad("unknown operator in \"\(piece.prefix(60))\"")
            } else if raw.isEmpty {
                throw bad("cannot read \"\(piece.prefix(60))\"")
            } else {
                raw[raw.count - 1].value += "," + piece
            }
        }
        var out: [ParsedClause] = []
        for (field, op, value) in raw {
            guard let f = filterField(field) else { throw bad("unknown field \"\(field.prefix(40))\"") }
            guard let o = Op(rawValue: op) else { throw bad("unknown operator \"\(op)\"") }
            let canonical = "\(field)\(op)\(value)"
            switch f {
            case .string(let sf):
                out.append(ParsedClause(clause: .string(sf, o, value, Array(value.utf8)), canonical: canonical))
            case .phase:
                var mask: UInt32 = 0
                for (i, p) in WorkloadPhase.allCases.enumerated() where o.holds(p.rawValue, value, ignoringCase: true) { mask |= 1 << UInt32(i) }
                out.append(ParsedClause(clause: .phaseMask(mask), canonical: canonical))
            case .type:
                var mask: UInt32 = 0
                for (i, t) in WorkloadType.allCases.enumerated() where o.holds(t.rawValue, value, ignoringCase: true) { mask |= 1 << UInt32(i) }
                out.append(ParsedClause(clause: .typeMask(mask), canonical: canonical))
            case .number(let nf):
                guard o.isOrdering else { throw bad("\(field) is a number: use == != <= >=") }
                let n: Int64
                if let v = Int64(value) { n = v } else if nf == .priority, let v = WorkloadSpec.priorityNames[value.lowercased()] { n = Int64(v) } else {
                    throw bad("\(field): expected a whole number, got \"\(value.prefix(40))\"")
                }
                out.append(ParsedClause(clause: .number(nf, o, n), canonical: canonical))
            case .date(let df):
                guard o.isOrdering else { throw bad("\(field) is a date: use == != <= >=") }
                guard let t = parseTime(value) else {
                    throw bad("\(field): expected an ISO 8601 time (2021-01-01T00:00:00Z) or date (2021-01-01), got \"\(value.prefix(40))\"")
                }
                out.append(ParsedClause(clause: .date(df, o, t), canonical: canonical))
            }
        }
        return out
    }

    static func isIdent(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2E
    }
}

public struct WorkloadPage: Sendable {
    public var items: [APIObject]
    /// How many matched the filters (all pages).
    public var totalCount: Int
    public var offset: Int
    public var limit: Int
    /// Opaque marker for the next page; nil on the last.
    public var next: String?
    public init(items: [APIObject], totalCount: Int, offset: Int, limit: Int, next: String?) {
        self.items = items; self.totalCount = totalCount; self.offset = offset; self.limit = limit; self.next = next
    }
}
