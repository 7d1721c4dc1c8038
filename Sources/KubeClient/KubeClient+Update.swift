import GantryAPI

extension KubeClient {
    /// Read-modify-write with optimistic concurrency: GETs `path`, lets `mutate` edit the
    /// object (return nil to write nothing), PUTs it with the resourceVersion read, and on
    /// 409 Conflict starts over, up to `attempts` times. Returns the stored object.
    public func update(_ path: String, attempts: Int = 5, _ mutate: (Value) -> Value?) throws(KubeError) -> Value {
        var last = KubeError(code: 409, reason: "Conflict", message: "no attempt made")
        for _ in 0..<max(1, attempts) {
            let current = try get(path)
            guard let edited = mutate(current) else { return current }
            do {
                return try replace(path, edited)
            } catch where error.code == 409 {
                last = error
            }
        }
        throw last
    }
}
