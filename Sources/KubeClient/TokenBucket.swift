/// A token bucket (client-go's `flowcontrol` QPS/burst limiter) over an injected clock:
/// `reserve(now:)` takes one token and returns how long the caller must wait before
/// sending, so waits queue up fairly behind one another. Pure: the caller sleeps.
public struct TokenBucket: Sendable {
    public let qps: Double
    public let burst: Int
    private var tokens: Double
    private var last: Double

    /// `qps` <= 0 disables limiting. The bucket starts full at time `now`.
    public init(qps: Double, burst: Int, now: Double) {
        self.qps = qps.isFinite ? qps : 0
        self.burst = max(1, burst)
        self.tokens = Double(max(1, burst))
        self.last = now
    }

    /// Takes a token; returns the seconds to wait (0 when one was available).
    public mutating func reserve(now: Double) -> Double {
        guard qps > 0 else { return 0 }
        if now > last {
            tokens = min(Double(burst), tokens + (now - last) * qps)
            last = now
        }
        tokens -= 1
        if tokens >= 0 { return 0 }
        return -tokens / qps + (last - now)
    }
}
