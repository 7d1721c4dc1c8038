import Synchronization
import GantryAPI

/// What an event is about: an object, or a manifest file (kind "File", name = its path).
public struct InvolvedObject: Sendable, Hashable {
    public var kind: String
    public var namespace: String
    public var name: String
    public init(kind: String, namespace: String = "", name: String) { self.kind = kind; self.namespace = namespace; self.name = name }
    public init(_ key: ObjectKey) { self.init(kind: key.kind.rawValue, namespace: key.namespace, name: key.name) }
    public static func file(_ path: String) -> InvolvedObject { InvolvedObject(kind: "File", name: path) }
    /// `workload/team-a/x`, `queue/q`, `file/path.yaml` — the form `gantry events --for` takes.
    public var reference: String {
        let k = kind.lowercased()
        return namespace.isEmpty ? "\(k)/\(name)" : "\(k)/\(namespace)/\(name)"
    }
}

public enum EventType: String, Sendable { case normal = "Normal", warning = "Warning" }

/// A core/v1-like event after aggregation. `name` is stable across count bumps.
public struct EventRecord: Sendable, Equatable {
    public var name: String
    public var involved: InvolvedObject
    public var type: EventType
    public var reason: String
    public var message: String
    public var count: Int
    public var firstTimestamp: Double
    public var lastTimestamp: Double
    public init(name: String, involved: InvolvedObject, type: EventType, reason: String, message: String, count: Int, firstTimestamp: Double, lastTimestamp: Double) {
        self.name = name; self.involved = involved; self.type = type; self.reason = reason; self.message = message
        self.count = count; self.firstTimestamp = firstTimestamp; self.lastTimestamp = lastTimestamp
    }
}

/// Where recorded events go (the state store, a test array).
public protocol EventSink: Sendable {
    func write(_ event: EventRecord)
}

/// Records events with client-go's correlation: an identical event bumps `count` and
/// `lastTimestamp`; more than `similarLimit` events that differ only in message within
/// `similarWindow` collapse into one "(combined from similar events)" event; a per-object
/// token bucket (burst 25, one token per 5 minutes) drops spam.
public final class EventRecorder: Sendable {
    struct Identical: Hashable { var type: EventType; var reason: String; var message: String }
    struct Similar: Hashable { var type: EventType; var reason: String }
    struct Bucket { var tokens: Double; var last: Double }
    /// What is remembered about one object: kept per object so a deleted object's entries go
    /// with it (`forget`), and the number of objects is capped (`cacheLimit`).
    struct PerObject {
        var bucket: Bucket
        var identical: [Identical: EventRecord] = [:]
        var similar: [Similar: (messages: [String: Double], aggregate: EventRecord?)] = [:]
    }
    struct State {
        var objects: [InvolvedObject: PerObject] = [:]
        var seq: UInt64 = 0
    }

    public let sink: any EventSink
    let clock: any Clock
    public let burst: Double, refillSeconds: Double, similarLimit: Int, similarWindow: Double
    /// Objects remembered at most; past it the half least recently recorded are dropped.
    let cacheLimit: Int
    let state = Mutex(State())

    public init(sink: any EventSink, clock: any Clock, burst: Int = 25, refillSeconds: Double = 300, similarLimit: Int = 10, similarWindow: Double = 600,
                cacheLimit: Int = 8192) {
        self.sink = sink; self.clock = clock; self.burst = Double(burst); self.refillSeconds = refillSeconds
        self.similarLimit = similarLimit; self.similarWindow = similarWindow; self.cacheLimit = max(cacheLimit, 2)
    }

    @discardableResult public func normal(_ obj: InvolvedObject, _ reason: String, _ message: String) -> EventRecord? { record(obj, .normal, reason, message) }
    @discardableResult public func warning(_ obj: InvolvedObject, _ reason: String, _ message: String) -> EventRecord? { record(obj, .warning, reason, message) }

    /// Objects the recorder holds state for (tests: it stays bounded).
    public var rememberedObjects: Int { state.withLock { $0.objects.count } }

    /// Drops what is remembered about a deleted object (its spam-filter bucket, identical
    /// and similar events), so a long run's churn does not accumulate it.
    public func forget(_ obj: InvolvedObject) {
        _ = state.withLock { $0.objects.removeValue(forKey: obj) }
    }

    /// Returns the record written, or nil when the spam filter dropped it.
    @discardableResult
    public func record(_ obj: InvolvedObject, _ type: EventType, _ reason: String, _ message: String) -> EventRecord? {
        let now = clock.now()
        let out: EventRecord? = state.withLock { st in
            if st.objects[obj] == nil && st.objects.count >= cacheLimit {
                // Keep the half with the fewest tokens now (rate-limited, noisy objects: dropping
                // their buckets would hand them a fresh burst), the most recent among equals.
                func tokens(_ p: PerObject) -> Double { min(burst, p.bucket.tokens + (now - p.bucket.last) / refillSeconds) }
                let keep = st.objects.sorted { a, b in
                    let ta = tokens(a.value), tb = tokens(b.value)
                    return ta != tb ? ta < tb : a.value.bucket.last > b.value.bucket.last
                }.prefix(cacheLimit / 2)
                st.objects = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
            var po = st.objects.removeValue(forKey: obj) ?? PerObject(bucket: Bucket(tokens: burst, last: now))
            defer { st.objects[obj] = po }
            // Spam filter (per object).
            var b = po.bucket
            b.tokens = min(burst, b.tokens + (now - b.last) / refillSeconds)
            b.last = now
            guard b.tokens >= 1 else { po.bucket = b; return nil }
            b.tokens -= 1
            po.bucket = b

            if po.identical.count > 256 { po.identical = po.identical.filter { now - $0.value.lastTimestamp < similarWindow } }
            if po.similar.count > 256 { po.similar.removeAll() }

            // Similar-event aggregation.
            let sk = Similar(type: type, reason: reason)
            var entry = po.similar[sk] ?? (messages: [:], aggregate: nil)
            entry.messages = entry.messages.filter { now - $0.value < similarWindow }
            entry.messages[message] = now
            if entry.messages.count > similarLimit {
                var agg = entry.aggregate ?? EventRecord(name: eventName(obj, &st.seq, now), involved: obj, type: type, reason: reason,
                                                         message: "", count: 0, firstTimestamp: now, lastTimestamp: now)
                agg.message = "(combined from similar events): " + message
                agg.count += 1
                agg.lastTimestamp = now
                entry.aggregate = agg
                po.similar[sk] = entry
                return agg
            }
            po.similar[sk] = entry

            // Identical-event dedup.
            let ik = Identical(type: type, reason: reason, message: message)
            if var e = po.identical[ik], now - e.lastTimestamp < similarWindow * 6 {
                e.count += 1; e.lastTimestamp = now
                po.identical[ik] = e
                return e
            }
            let e = EventRecord(name: eventName(obj, &st.seq, now), involved: obj, type: type, reason: reason, message: message,
                                count: 1, firstTimestamp: now, lastTimestamp: now)
            po.identical[ik] = e
            return e
        }
        if let out { sink.write(out) }
        return out
    }

    private func eventName(_ obj: InvolvedObject, _ seq: inout UInt64, _ now: Double) -> String {
        seq += 1
        // Clamped: a clock before 1970 or past UInt64 nanoseconds must not trap (only uniqueness matters here).
        let nanos = (now > 0 && now < 1.8e10 ? UInt64(now * 1e9) : 0) &+ seq
        let base = obj.kind == "File" ? "file" : obj.name
        return "\(base).\(String(nanos, radix: 16))"
    }
}
