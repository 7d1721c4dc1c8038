import GantryAPI

// OWNER: query helper. Signatures are a contract; bodies are stubs until that branch lands.

/// A parsed workload list query (GET /api/v1/workloads and /namespaces/{ns}/workloads).
/// Parameters: phase, type, queue, namespace, user, name (contains), description (contains),
/// labels (a label selector), since/until (creation time, ISO 8601), startedAfter/
/// startedBefore, completedAfter/completedBefore, filterBy (seed 002 operators), sortBy,
/// sortOrder (asc|desc), offset, limit (1...1000, default 50), continue, fields, deleted.
/// Unknown parameters and bad values: 400 naming the parameter.
public struct WorkloadQuery: Sendable {
    public var fields: [String]?
    public var includeDeleted = false
    public var offset = 0
    public var limit = 50
    public init() {}

    public static func parse(_ query: [(String, String)]) throws(APIError) -> WorkloadQuery {
        throw APIError(501, "NotImplemented", "workload queries are not implemented yet")
    }

    /// Filters, sorts (ties by namespace then name) and cuts the page.
    public func apply(_ items: [APIObject]) throws(APIError) -> WorkloadPage {
        throw APIError(501, "NotImplemented", "workload queries are not implemented yet")
    }

    /// Filters only (for /count, telemetry and batch selectors).
    public func matching(_ items: [APIObject]) -> [APIObject] { [] }
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

/// A Kubernetes-style label selector: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
public struct LabelSelector: Sendable, Equatable {
    public static func parse(_ text: String) throws(APIError) -> LabelSelector {
        throw APIError(501, "NotImplemented", "label selectors are not implemented yet")
    }
    public func matches(_ labels: [String: String]) -> Bool { false }
}
