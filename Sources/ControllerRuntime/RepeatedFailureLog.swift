/// Decides which lines of a failure that repeats (a state write retried ten times a second)
/// are logged: the first, then at most one per `interval` seconds carrying how many were
/// suppressed since, and one line when the operation succeeds again.
public struct RepeatedFailureLog: Sendable {
    public let interval: Double
    var failing = false
    var lastLogged = 0.0
    var suppressed = 0
    var streak = 0

    public init(interval: Double = 30) { self.interval = interval }

    /// A failure at `now`: the number of failures suppressed since the last logged line when
    /// this one is to be logged, nil when it is to be suppressed.
    public mutating func failure(now: Double) -> Int? {
        streak += 1
        if failing && now - lastLogged < interval { suppressed += 1; return nil }
        failing = true
        lastLogged = now
        defer { suppressed = 0 }
        return suppressed
    }

    /// A success: the number of failures in the streak it ends (to log), nil when none.
    public mutating func success() -> Int? {
        guard failing else { return nil }
        defer { failing = false; suppressed = 0; streak = 0 }
        return streak
    }
}
