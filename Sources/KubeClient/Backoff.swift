/// Exponential backoff with jitter: `initial`, doubling to at most `cap`; each delay gets
/// up to `jitter` × itself added (the random source is injected so tests are exact).
/// client-go's watch reconnect uses 800 ms to 30 s.
public struct Backoff: Sendable {
    public let initial: Double
    public let cap: Double
    public let jitter: Double
    private var current: Double

    public init(initial: Double = 0.8, cap: Double = 30, jitter: Double = 0.2) {
        self.initial = initial; self.cap = cap; self.jitter = jitter; self.current = initial
    }

    /// The next delay; `random` returns a value in 0..<1.
    public mutating func next(random: () -> Double = { Double.random(in: 0..<1) }) -> Double {
        let base = current
        current = min(cap, current * 2)
        let r = min(max(random(), 0), 1)
        return min(cap, base * (1 + jitter * r))
    }

    /// Back to `initial` (after a success).
    public mutating func reset() { current = initial }
}
