import Foundation
import Synchronization
import GantryAPI

/// Wall-clock time in seconds since the Unix epoch. Injected everywhere time matters so tests
/// step time instead of sleeping.
public protocol Clock: Sendable {
    func now() -> Double
}

extension Clock {
    public var timestamp: Timestamp { Timestamp(seconds: Int64(now().rounded(.down))) }
}

/// The real clock.
public struct SystemClock: Clock {
    public init() {}
    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// A clock that moves only when told; for tests.
public final class ManualClock: Clock {
    private let t: Mutex<Double>
    public init(_ start: Double = 1_768_473_060) { t = Mutex(start) }
    public func now() -> Double { t.withLock { $0 } }
    public func advance(by seconds: Double) { t.withLock { $0 += seconds } }
    public func set(_ seconds: Double) { t.withLock { $0 = seconds } }
}

/// Monotonic seconds for measuring durations (not affected by wall-clock steps).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
