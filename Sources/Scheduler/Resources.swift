import GantryAPI

/// Resource names mapped to dense slots, so quota and node arithmetic runs over small integer
/// vectors. `gpu`, `cpu` and `memory` are slots 0, 1 and 2; extended resources get the next
/// slots as they are first seen. Amounts are milli-units (`Quantity.milli`).
public struct ResourceSlots: Sendable {
    public static let gpu = 0, cpu = 1, memory = 2
    public private(set) var names: [String] = ["gpu", "cpu", "memory"]
    var index: [String: Int] = ["gpu": 0, "cpu": 1, "memory": 2]
    public init() {}

    public var count: Int { names.count }

    public mutating func slot(_ name: String) -> Int {
        if let i = index[name] { return i }
        names.append(name); index[name] = names.count - 1
        return names.count - 1
    }

    /// The amounts of `list` as a vector; `named` gets the slots the list names.
    public mutating func vector(_ list: ResourceList, named: inout [Bool]) -> [Int64] {
        var v: [Int64] = []
        for (name, q) in list.amounts {
            let s = slot(name)
            if v.count <= s { v.append(contentsOf: repeatElement(0, count: s + 1 - v.count)) }
            if named.count <= s { named.append(contentsOf: repeatElement(false, count: s + 1 - named.count)) }
            v[s] = q.milli; named[s] = true
        }
        return v
    }

    public mutating func vector(_ list: ResourceList) -> [Int64] {
        var named: [Bool] = []
        return vector(list, named: &named)
    }

    /// A vector back as a resource list (zero slots left out).
    public func list(_ v: [Int64]) -> ResourceList {
        var r = ResourceList()
        for (i, x) in v.enumerated() where x != 0 && i < names.count { r.amounts[names[i]] = Quantity(milli: x) }
        return r
    }
}

@inline(__always) func at(_ v: [Int64], _ i: Int) -> Int64 { i >= 0 && i < v.count ? v[i] : 0 }
@inline(__always) func at(_ v: [Int32], _ i: Int) -> Int32 { i >= 0 && i < v.count ? v[i] : 0 }

/// Amounts are validated non-negative and below 9.2e18 milli-units each, but sums over many
/// replicas or workloads can pass Int64: quota arithmetic saturates instead of trapping. A
/// saturated amount never fits anywhere, which is the right answer for such a request.
@inline(__always) func sat(_ a: Int64, _ b: Int64) -> Int64 {
    let (r, o) = a.addingReportingOverflow(b)
    return o ? (b > 0 ? .max : .min) : r
}
@inline(__always) func satMul(_ a: Int64, _ b: Int64) -> Int64 {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    return o ? ((a < 0) == (b < 0) ? .max : .min) : r
}
@inline(__always) func at(_ v: [Bool], _ i: Int) -> Bool { i >= 0 && i < v.count ? v[i] : false }

extension Array where Element == Int64 {
    @inline(__always) mutating func add(_ i: Int, _ x: Int64) {
        if i >= count { append(contentsOf: repeatElement(0, count: i + 1 - count)) }
        self[i] = sat(self[i], x)
    }
    mutating func add(_ v: [Int64], times k: Int64 = 1) {
        if v.count > count { append(contentsOf: repeatElement(0, count: v.count - count)) }
        for i in v.indices where v[i] != 0 { self[i] = sat(self[i], satMul(v[i], k)) }
    }
    /// Every slot of self at least the matching slot of `o`.
    func dominates(_ o: [Int64]) -> Bool {
        for i in 0..<Swift.max(count, o.count) where at(self, i) < at(o, i) { return false }
        return true
    }
}

/// Prints an amount of a slot for messages (`8`, `500m`, `64Gi`).
func amountText(_ milli: Int64, slot: Int) -> String {
    let q = Quantity(milli: milli)
    if slot == ResourceSlots.memory, milli % 1000 == 0 {
        let bytes = milli / 1000
        for (suffix, unit) in [("Ti", Int64(1) << 40), ("Gi", Int64(1) << 30), ("Mi", Int64(1) << 20)] where bytes >= unit && bytes % unit == 0 {
            return "\(bytes / unit)\(suffix)"
        }
    }
    return q.wholeUnits.map(String.init) ?? q.text
}
