/// Per-resource amounts (`gpu`, `cpu`, `memory`, or any extended resource name such as
/// `nvidia.com/mig-1g.10gb`). Missing names are zero.
public struct ResourceList: Sendable, Hashable {
    public var amounts: [String: Quantity]
    public init(_ amounts: [String: Quantity] = [:]) { self.amounts = amounts }
    public subscript(name: String) -> Quantity {
        get { amounts[name] ?? .zero }
        set { amounts[name] = newValue }
    }
    public var isEmpty: Bool { amounts.isEmpty }
    public var gpu: Int64 { amounts["gpu"].map { $0.milli / 1000 } ?? 0 }
    public var names: [String] { amounts.keys.sorted(by: ResourceList.order) }

    /// gpu, cpu, memory first, then the rest alphabetically.
    public static func order(_ a: String, _ b: String) -> Bool {
        func rank(_ s: String) -> Int { switch s { case "gpu": 0; case "cpu": 1; case "memory": 2; default: 3 } }
        let ra = rank(a), rb = rank(b)
        return ra != rb ? ra < rb : a < b
    }

    // `amounts[n]!` cannot fail: every n comes from `names`, the sorted keys of `amounts`.
    public func toValue() -> Value {
        .object(names.map { n in let t = amounts[n]!.text; return Value.Member(n, Int64(t).map { .int($0) } ?? .string(t)) })
    }
    /// Sums that print canonically (`16`, `1500m`).
    public func toCanonicalValue() -> Value {
        .object(names.map { n in
            let q = amounts[n]!
            return Value.Member(n, q.wholeUnits.map { .int($0) } ?? .string(q.text))
        })
    }
    public static func + (a: ResourceList, b: ResourceList) -> ResourceList {
        var r = a
        for (k, v) in b.amounts { r.amounts[k] = Quantity(milli: r[k].milli + v.milli) }
        return r
    }
}

/// Common object metadata. `uid`, `generation` and `creationTimestamp` are assigned by Gantry
/// (generation increases on every spec change and survives restarts).
public struct ObjectMeta: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var labels: [String: String] = [:]
    public var annotations: [String: String] = [:]
    public var uid: String = ""
    public var generation: Int64 = 1
    public var creationTimestamp: Timestamp = Timestamp(seconds: 0)
    public init(name: String, namespace: String = "") { self.name = name; self.namespace = namespace }
}

/// Status condition, Kubernetes style. `lastTransitionTime` changes only when `status` does.
public struct Condition: Sendable, Equatable {
    public var type: String
    public var status: String
    public var reason: String
    public var message: String
    public var lastTransitionTime: Timestamp
    public var observedGeneration: Int64
    public init(type: String, status: String, reason: String, message: String, lastTransitionTime: Timestamp, observedGeneration: Int64) {
        self.type = type; self.status = status; self.reason = reason; self.message = message
        self.lastTransitionTime = lastTransitionTime; self.observedGeneration = observedGeneration
    }
    public func toValue() -> Value {
        .object([.init("type", .string(type)), .init("status", .string(status)), .init("reason", .string(reason)),
                 .init("message", .string(message)), .init("lastTransitionTime", .string(lastTransitionTime.rfc3339)),
                 .init("observedGeneration", .int(observedGeneration))])
    }
}

extension Array where Element == Condition {
    /// Sets a condition, keeping `lastTransitionTime` unless the status changes.
    public mutating func set(type: String, status: String, reason: String, message: String, now: Timestamp, generation: Int64) {
        if let i = firstIndex(where: { $0.type == type }) {
            let t = self[i].status == status ? self[i].lastTransitionTime : now
            self[i] = Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: t, observedGeneration: generation)
        } else {
            append(Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: now, observedGeneration: generation))
        }
    }
    public func get(_ type: String) -> Condition? { first { $0.type == type } }
    public mutating func remove(type: String) { removeAll { $0.type == type } }
}
