import Synchronization

/// client-go's default controller rate limiter: the larger of a per-key exponential backoff
/// (base * 2^failures, capped) and an overall token bucket (qps, burst).
public final class RateLimiter<Key: Hashable & Sendable>: Sendable {
    struct State {
        var failures: [Key: Int] = [:]
        var tokens: Double
        var last: Double
    }
    public let base: Double, cap: Double, qps: Double, burst: Double
    let clock: any Clock
    let state: Mutex<State>

    public init(clock: any Clock, base: Double = 0.005, cap: Double = 1000, qps: Double = 10, burst: Int = 100) {
        self.base = base; self.cap = cap; self.qps = qps; self.burst = Double(burst); self.clock = clock
        state = Mutex(State(tokens: Double(burst), last: clock.now()))
    }

    /// The delay before `key` may be retried; counts one more failure for it.
    public func when(_ key: Key) -> Double {
        let now = clock.now()
        return state.withLock { s in
            let n = s.failures[key, default: 0]
            s.failures[key] = n + 1
            let exp = n >= 64 ? cap : min(cap, base * pow2(n))
            s.tokens = min(burst, s.tokens + (now - s.last) * qps)
            s.last = now
            s.tokens -= 1
            let bucket = s.tokens >= 0 ? 0 : -s.tokens / qps
            return max(exp, bucket)
        }
    }

    public func forget(_ key: Key) { _ = state.withLock { $0.failures.removeValue(forKey: key) } }
    public func failures(_ key: Key) -> Int { state.withLock { $0.failures[key, default: 0] } }

    private func pow2(_ n: Int) -> Double { var v = 1.0; for _ in 0..<n { v *= 2 }; return v }
}
