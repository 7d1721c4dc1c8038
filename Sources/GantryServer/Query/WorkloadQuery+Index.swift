import GantryAPI

/// A list query in the terms a store's workload index holds (directory mode's `wl_index`):
/// what `WorkloadQuery.indexQuery` returns when the index can answer the query exactly.
/// Values are as the index keeps them: phases and types lower-cased (`""` is a workload
/// without status, which the API counts as Pending), queues exact (and lower-case, so the
/// index's lower-casing changes nothing), one namespace at most.
public struct WorkloadIndexQuery: Sendable, Equatable {
    public enum Sort: Sendable, Equatable {
        /// Namespace, then name.
        case namespaceName
        case createdAt, priority, gpus
    }
    public var namespace: String?
    /// nil: any phase.
    public var phases: Set<String>?
    public var types: Set<String>?
    public var queues: Set<String>?
    /// Substring of the name (lower-cased; names are lower-case DNS labels).
    public var nameContains: String?
    /// `=`, `!=`, `exists`, `!exists` terms.
    public var labels: [LabelTerm] = []
    /// `priority`/`gpus` compared with `==`, `!=`, `<=` or `>=` (filterBy).
    public var numbers: [NumberTerm] = []
    public var createdFrom: Int64?
    public var createdTo: Int64?
    public var sort: Sort = .namespaceName
    /// Descending by the sort key; ties stay by namespace then name, ascending.
    public var descending = false
    public var offset = 0
    public var limit = 50

    public struct NumberTerm: Sendable, Equatable {
        /// "priority" or "gpus".
        public var field: String
        public var op: String
        public var value: Int64
    }

    public struct LabelTerm: Sendable, Equatable {
        public var key: String
        public var op: String
        public var value: String
    }
}

extension WorkloadQuery {
    /// This query as the workload index can answer it, or nil when it needs a field the index
    /// does not hold or holds differently: user, description, replicas, started and completed
    /// times, `in`/`notin` with several values, filterBy string and replicas terms, several
    /// namespaces, sorts by name, phase, type, queue, user, started or completed time, and
    /// the deleted history. Its answer has the same items, order and totalCount as `apply`.
    public var indexQuery: WorkloadIndexQuery? {
        guard !includeDeleted else { return nil }
        var out = WorkloadIndexQuery()
        out.offset = offset
        out.limit = limit
        switch sortBy {
        // The default order has no key of its own: descending changes nothing (ties ascend).
        case .default: out.sort = .namespaceName
        // Descending namespaces with names ascending is not an order the index holds.
        case .namespace: guard !descending else { return nil }; out.sort = .namespaceName
        case .createdAt: out.sort = .createdAt; out.descending = descending
        case .priority: out.sort = .priority; out.descending = descending
        case .gpus: out.sort = .gpus; out.descending = descending
        default: return nil
        }
        var phaseMask = UInt32.max, typeMask = UInt32.max
        var namespaces: Set<String>?, queues: Set<String>?
        for c in clauses {
            switch c {
            case .phaseMask(let m): phaseMask &= m
            case .typeMask(let m): typeMask &= m
            case .oneOf(.namespace, let vs): namespaces = namespaces.map { $0.intersection(vs) } ?? Set(vs)
            case .oneOf(.queue, let vs):
                // The index lower-cases queues: exact only for lower-case values.
                guard vs.allSatisfy({ $0 == $0.lowercased() }) else { return nil }
                queues = queues.map { $0.intersection(vs) } ?? Set(vs)
            case .contains(.name, let needle):
                guard out.nameContains == nil else { return nil }
                out.nameContains = String(decoding: needle, as: UTF8.self)
            case .date(.createdAt, .ge, let t): out.createdFrom = max(out.createdFrom ?? .min, t)
            case .date(.createdAt, .le, let t): out.createdTo = min(out.createdTo ?? .max, t)
            case .number(let f, let op, let n) where f != .replicas && op.isOrdering:
                out.numbers.append(.init(field: f == .priority ? "priority" : "gpus", op: op.rawValue, value: n))
            case .labels(let s):
                for r in s.requirements {
                    switch r {
                    case .equals(let k, let v): out.labels.append(.init(key: k, op: "=", value: v))
                    case .isIn(let k, let vs) where vs.count == 1: out.labels.append(.init(key: k, op: "=", value: vs[0]))
                    case .notEquals(let k, let v): out.labels.append(.init(key: k, op: "!=", value: v))
                    case .notIn(let k, let vs) where vs.count == 1: out.labels.append(.init(key: k, op: "!=", value: vs[0]))
                    case .exists(let k): out.labels.append(.init(key: k, op: "exists", value: ""))
                    case .notExists(let k): out.labels.append(.init(key: k, op: "!exists", value: ""))
                    default: return nil
                    }
                }
            default: return nil
            }
        }
        if phaseMask != .max {
            var s = Set<String>()
            for (i, p) in WorkloadPhase.allCases.enumerated() where phaseMask & (1 << UInt32(i)) != 0 {
                s.insert(p.rawValue.lowercased())
                if p == .pending { s.insert("") }
            }
            guard !s.isEmpty else { return nil }
            out.phases = s
        }
        if typeMask != .max {
            var s = Set<String>()
            for (i, t) in WorkloadType.allCases.enumerated() where typeMask & (1 << UInt32(i)) != 0 { s.insert(t.rawValue.lowercased()) }
            guard !s.isEmpty else { return nil }
            out.types = s
        }
        if let namespaces {
            guard namespaces.count == 1, let ns = namespaces.first else { return nil }
            out.namespace = ns
        }
        if let queues {
            guard !queues.isEmpty else { return nil }
            out.queues = queues
        }
        return out
    }

    /// The page `apply` would return, given the keys of the matching workloads at
    /// [offset, offset + limit) in order and how many match in all, looking each object up
    /// with `object`; nil when one of them is gone (the caller then lists from memory).
    public func page(keys: [ObjectKey], totalCount: Int, object: (ObjectKey) -> APIObject?) -> WorkloadPage? {
        var items: [APIObject] = []
        items.reserveCapacity(keys.count)
        for k in keys {
            guard let o = object(k) else { return nil }
            items.append(o)
        }
        let start = min(offset, totalCount)
        let end = limit > totalCount - start ? totalCount : start + limit
        guard items.count == end - start else { return nil }
        let next = end < totalCount ? Marker.encode(offset: end, signature: Marker.signature(canonical)) : nil
        return WorkloadPage(items: items, totalCount: totalCount, offset: start, limit: limit, next: next)
    }
}
