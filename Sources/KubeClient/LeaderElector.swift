import Foundation
import GantryAPI
import Synchronization

/// Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection:
/// a candidate takes the Lease when it is free (no holder) or when its record has not
/// changed for `leaseDuration` seconds of local time (the server's renewTime is not
/// trusted: clocks skew); the leader renews every `retryPeriod`; every write is a PUT with
/// the resourceVersion read, so a racing candidate gets 409 and loses. A leader that cannot
/// renew for `renewDeadline` seconds, or sees another holder, stops leading.
public final class LeaderElector: Sendable {
    public let client: KubeClient
    public let namespace: String
    public let name: String
    public let identity: String
    public let leaseDuration: Double
    public let renewDeadline: Double
    public let retryPeriod: Double

    private struct Observed {
        var record: Value?
        var at: Double = 0
    }
    private let observed = Mutex(Observed())
    private let leading = Atomic<Bool>(false)
    private let startedFlag = Atomic<Bool>(false)
    private let loopRunning = Atomic<Bool>(false)
    private let stopping = WatchCancel()

    public init(client: KubeClient, namespace: String, name: String, identity: String,
                leaseDuration: Double = 15, renewDeadline: Double = 10, retryPeriod: Double = 2) {
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
        self.retryPeriod = retryPeriod
    }

    public var isLeader: Bool { leading.load(ordering: .acquiring) }

    /// Starts the election on its own thread: tries to acquire every `retryPeriod`; once
    /// leader, calls `onStartedLeading` once (on a thread of its own, so it may block) and
    /// keeps renewing; if renewal fails for `renewDeadline` or another holder appears, calls
    /// `onStoppedLeading` (the daemon exits then). `release` stops without that callback.
    public func start(onStartedLeading: @escaping @Sendable () -> Void, onStoppedLeading: @escaping @Sendable () -> Void) {
        guard !startedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loopRunning.store(true, ordering: .releasing)
        let thread = Thread { [self] in
            defer { loopRunning.store(false, ordering: .releasing) }
            run(onStartedLeading: onStartedLeading, onStoppedLeading: onStoppedLeading)
        }
        thread.name = "leader-election-\(name)"
        thread.start()
    }

    /// Clean shutdown: stops renewing and, if this candidate holds the Lease, writes it back
    /// with an empty holderIdentity and leaseDurationSeconds 1 (a PUT with the
    /// resourceVersion read) so a standby takes over at once. Final.
    /// Stops trying and renewing without giving the Lease up (it expires): what a killed
    /// process leaves behind.
    public func stop() {
        stopping.cancel()
        waitForLoop()
        leading.store(false, ordering: .releasing)
    }

    public func release() {
        stopping.cancel()
        waitForLoop()
        let wasLeader = leading.exchange(false, ordering: .acquiringAndReleasing)
        guard wasLeader else { return }
        let path = GroupVersionResource.leases.path(namespace: namespace, name: name)
        for _ in 0..<3 {
            guard let lease = try? client.requestOnce("GET", "GET", path, timeout: requestTimeout),
                  lease["spec"]?["holderIdentity"]?.stringValue == identity else { return }
            let now = LeaderElector.microTime()
            var spec = ObjectBuilder()
            spec.set("holderIdentity", Value.string(""))
            spec.set("leaseDurationSeconds", 1)
            spec.set("acquireTime", now)
            spec.set("renewTime", now)
            spec.set("leaseTransitions", Int(clamping: lease["spec"]?["leaseTransitions"]?.intValue ?? 0))
            do {
                _ = try client.requestOnce("PUT", "PUT", path, body: LeaderElector.setting(lease, "spec", spec.value), timeout: requestTimeout)
                return
            } catch {
                if error.code != 409 { return }
            }
        }
    }

    /// Stops the election without releasing the Lease or calling back (a crash, for tests).
    func abandon() {
        stopping.cancel()
        waitForLoop()
        leading.store(false, ordering: .releasing)
    }

    private func waitForLoop() {
        let end = monotonicNow() + max(5, renewDeadline)
        while loopRunning.load(ordering: .acquiring), monotonicNow() < end { usleep(5_000) }
    }

    private var requestTimeout: Int { max(1, Int((renewDeadline / 2).rounded(.up))) }

    private func run(onStartedLeading: @escaping @Sendable () -> Void, onStoppedLeading: @escaping @Sendable () -> Void) {
        while !stopping.isCancelled {
            if tryAcquireOrRenew() == .held { break }
            pause(retryPeriod * (1 + 0.2 * Double.random(in: 0..<1)))
        }
        guard !stopping.isCancelled else { return }
        leading.store(true, ordering: .releasing)
        let starter = Thread { onStartedLeading() }
        starter.name = "leader-\(name)"
        starter.start()
        var lastRenew = monotonicNow()
        while !stopping.isCancelled {
            pause(retryPeriod)
            if stopping.isCancelled { return }
            let outcome = tryAcquireOrRenew()
            if stopping.isCancelled { return }
            switch outcome {
            case .held:
                lastRenew = monotonicNow()
                continue
            case .heldByOther:
                break
            case .failed:
                if monotonicNow() - lastRenew < renewDeadline { continue }
            }
            leading.store(false, ordering: .releasing)
            onStoppedLeading()
            return
        }
    }

    enum Outcome { case held, heldByOther, failed }

    /// One round: read the Lease (create it when absent), and write ourselves in when we
    /// hold it already or it is free or expired by local observation.
    func tryAcquireOrRenew() -> Outcome {
        let path = GroupVersionResource.leases.path(namespace: namespace, name: name)
        let now = monotonicNow()
        let stamp = LeaderElector.microTime()
        let lease: Value
        do {
            lease = try client.requestOnce("GET", "GET", path, timeout: requestTimeout)
        } catch {
            guard error.isNotFound else { return .failed }
            let spec = record(acquireTime: stamp, renewTime: stamp, transitions: 0)
            let body: Value = .object([
                .init("apiVersion", .string("coordination.k8s.io/v1")), .init("kind", .string("Lease")),
                .init("metadata", .object([.init("name", .string(name)), .init("namespace", .string(namespace))])),
                .init("spec", spec),
            ])
            do {
                _ = try client.requestOnce("POST", "POST", GroupVersionResource.leases.path(namespace: namespace), body: body, timeout: requestTimeout)
                observed.withLock { $0 = Observed(record: spec, at: now) }
                return .held
            } catch {
                return .failed
            }
        }
        let current = lease["spec"] ?? .object([])
        let holder = current["holderIdentity"]?.stringValue ?? ""
        let observedAt = observed.withLock { o -> Double in
            if o.record != current { o = Observed(record: current, at: now) }
            return o.at
        }
        if !holder.isEmpty, holder != identity, now < observedAt + leaseDuration {
            return .heldByOther
        }
        let transitions = Int(clamping: current["leaseTransitions"]?.intValue ?? 0)
        let acquire = holder == identity ? (current["acquireTime"]?.stringValue ?? stamp) : stamp
        let spec = record(acquireTime: acquire, renewTime: stamp, transitions: holder == identity ? transitions : transitions &+ 1)
        do {
            _ = try client.requestOnce("PUT", "PUT", path, body: LeaderElector.setting(lease, "spec", spec), timeout: requestTimeout)
            observed.withLock { $0 = Observed(record: spec, at: monotonicNow()) }
            return .held
        } catch {
            return .failed
        }
    }

    private func record(acquireTime: String, renewTime: String, transitions: Int) -> Value {
        var spec = ObjectBuilder()
        spec.set("holderIdentity", identity)
        spec.set("leaseDurationSeconds", max(1, Int(leaseDuration.rounded(.up))))
        spec.set("acquireTime", acquireTime)
        spec.set("renewTime", renewTime)
        spec.set("leaseTransitions", transitions)
        return spec.value
    }

    private func pause(_ seconds: Double) {
        let end = monotonicNow() + seconds
        while !stopping.isCancelled, monotonicNow() < end { usleep(10_000) }
    }

    /// `object` with member `key` replaced (or appended).
    static func setting(_ object: Value, _ key: String, _ value: Value) -> Value {
        guard case .object(var members) = object else { return .object([.init(key, value)]) }
        if let i = members.firstIndex(where: { $0.key == key }) { members[i].value = value } else { members.append(.init(key, value)) }
        return .object(members)
    }

    /// Now as a Kubernetes MicroTime: `2006-01-02T15:04:05.000000Z`.
    static func microTime() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return microTime(seconds: Int64(ts.tv_sec), micros: Int(ts.tv_nsec / 1000))
    }

    static func microTime(seconds: Int64, micros: Int) -> String {
        let base = Timestamp(seconds: seconds).rfc3339.dropLast()  // drop "Z"
        let m = String(min(max(micros, 0), 999_999))
        return base + "." + String(repeating: "0", count: 6 - m.count) + m + "Z"
    }
}
