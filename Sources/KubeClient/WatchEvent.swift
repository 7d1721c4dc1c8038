import GantryAPI
import Synchronization

/// One event of a watch stream. `error` carries the ERROR event's `Status` (code 410 with
/// reason `Expired` means the resourceVersion is too old: relist) or an undecodable line.
public enum WatchEvent: Sendable {
    case added(Value)
    case modified(Value)
    case deleted(Value)
    case bookmark(resourceVersion: String)
    case error(KubeError)

    /// Decodes one line of a watch stream: `{"type":"ADDED","object":{...}}`.
    public static func decode(line: [UInt8]) -> WatchEvent {
        var bytes = line
        guard let v = try? JSON.parse(bytes: &bytes) else {
            return .error(KubeError(code: 0, reason: "BadWatchEvent", message: "undecodable watch event: \(String(decoding: line.prefix(200), as: UTF8.self))"))
        }
        let object = v["object"] ?? .null
        switch v["type"]?.stringValue {
        case "ADDED": return .added(object)
        case "MODIFIED": return .modified(object)
        case "DELETED": return .deleted(object)
        case "BOOKMARK": return .bookmark(resourceVersion: object["metadata"]?["resourceVersion"]?.stringValue ?? "")
        case "ERROR": return .error(KubeError.fromStatus(object, fallbackCode: 500))
        default:
            return .error(KubeError(code: 0, reason: "BadWatchEvent", message: "unknown watch event type \(v["type"].map { JSON.encode($0) } ?? "(none)")"))
        }
    }
}

/// A flag that stops a watch (and an informer's waits) from another thread. A watch notices
/// it within about a second even while the stream is idle.
public final class WatchCancel: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .releasing) }
    public var isCancelled: Bool { flag.load(ordering: .acquiring) }
}
