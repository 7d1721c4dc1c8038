import GantryAPI

/// An object as the store keeps it: identity, the Gantry-assigned metadata, the object and
/// status as JSON text.
public struct ObjectRow: Sendable, Equatable {
    public var key: ObjectKey
    public var uid: String
    public var generation: Int64
    public var specHash: String
    public var objectHash: String
    public var creationTime: Int64
    public var source: String
    public var objectJSON: String
    public var statusJSON: String?
    public var updatedAt: Double
    /// A workload's index fields when the caller has them at hand; the store derives them
    /// from `objectJSON` otherwise.
    public var fields: WorkloadFields?
    public init(key: ObjectKey, uid: String, generation: Int64, specHash: String, objectHash: String, creationTime: Int64, source: String, objectJSON: String, statusJSON: String? = nil, updatedAt: Double = 0) {
        self.key = key; self.uid = uid; self.generation = generation; self.specHash = specHash; self.objectHash = objectHash
        self.creationTime = creationTime; self.source = source; self.objectJSON = objectJSON; self.statusJSON = statusJSON; self.updatedAt = updatedAt
    }
}

/// 64-bit FNV-1a as 16 hex digits: change detection for specs (not security).
public func fnv1a(_ s: String) -> String {
    var h: UInt64 = 0xcbf29ce484222325
    var str = s
    str.withUTF8 { buf in for b in buf { h ^= UInt64(b); h = h &* 0x100000001b3 } }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
