import Synchronization
import GantryAPI
import ControllerRuntime
import DirectorySource

/// Two manifest sources feeding one sink (the inventory): the user's spec directory and the
/// daemon-owned directory the HTTP API writes (directory mode). An object both declare is the
/// user's: the API's copy is held back while a user's manifest declares the key, and comes
/// into force when that manifest goes away. The API layer's objects carry
/// `SourceRef.file = "@api/<file>"` (`isAPIOwned`), its file reports likewise.
public final class ManifestLayers: Sendable {
    let downstream: any ManifestSink
    /// The source currently in force for a key (the inventory's), to tell who owns it.
    let current: @Sendable (ObjectKey) -> SourceRef?
    let events: EventRecorder?
    /// The API layer's objects (few), whether in force or held back.
    let api = Mutex<[ObjectKey: ManifestObject]>([:])
    /// Serializes the two sources' batches, so an ownership check and the change it leads
    /// to are one step (no I/O happens under it: the inventory only queues writes).
    let order = Mutex(())

    public init(downstream: any ManifestSink, current: @escaping @Sendable (ObjectKey) -> SourceRef?, events: EventRecorder? = nil) {
        self.downstream = downstream
        self.current = current
        self.events = events
    }

    /// The sink for the user's spec directory.
    public var user: any ManifestSink { Layer(owner: self, isAPI: false) }
    /// The sink for the daemon-owned API directory.
    public var apiLayer: any ManifestSink { Layer(owner: self, isAPI: true) }

    struct Layer: ManifestSink {
        let owner: ManifestLayers
        let isAPI: Bool
        func apply(_ changes: [ManifestChange]) {
            owner.order.withLock { _ in
                if isAPI { owner.applyAPI(changes) } else { owner.applyUser(changes) }
            }
        }
    }

    static func prefixed(_ ref: SourceRef) -> SourceRef {
        SourceRef(file: apiSourcePrefix + ref.file, line: ref.line, index: ref.index)
    }

    func userOwns(_ key: ObjectKey) -> Bool {
        guard let ref = current(key) else { return false }
        return !ref.isAPIOwned && ref.file != LocalNode.sourceFile
    }

    func applyUser(_ changes: [ManifestChange]) {
        var out: [ManifestChange] = []
        out.reserveCapacity(changes.count)
        for c in changes {
            switch c {
            case .upsert(let obj):
                if let shadowed = api.withLock({ $0[obj.key] }), !userOwns(obj.key) {
                    events?.warning(InvolvedObject(obj.key), "DeclaredByManifest",
                                    "\(obj.source.description) declares \(obj.key.kind.rawValue) \(obj.key.qualifiedName); the copy written through the API (\(shadowed.source.description)) is not in force while it does")
                }
                out.append(c)
            case .delete(let key):
                // The API's copy comes back into force when the user's manifest goes.
                if let obj = api.withLock({ $0[key] }) { out.append(.upsert(obj)) } else { out.append(c) }
            default:
                out.append(c)
            }
        }
        downstream.apply(out)
    }

    func applyAPI(_ changes: [ManifestChange]) {
        var out: [ManifestChange] = []
        for c in changes {
            switch c {
            case .upsert(var obj):
                obj.source = ManifestLayers.prefixed(obj.source)
                api.withLock { $0[obj.key] = obj }
                if !userOwns(obj.key) { out.append(.upsert(obj)) }
            case .delete(let key):
                api.withLock { _ = $0.removeValue(forKey: key) }
                if !userOwns(key) { out.append(.delete(key)) }
            case .fileReport(let file, let fatal, let errors, let warnings):
                func p(_ e: FieldError) -> FieldError { FieldError(file: apiSourcePrefix + e.file, line: e.line, path: e.path, message: e.message) }
                out.append(.fileReport(file: apiSourcePrefix + file, fatal: fatal.map(p), errors: errors.map(p), warnings: warnings.map(p)))
            case .duplicate(let key, let files):
                out.append(.duplicate(key, files: files.map(ManifestLayers.prefixed)))
            case .invalidChangeKept:
                out.append(c)
            }
        }
        if !out.isEmpty { downstream.apply(out) }
    }

    /// The API layer's copy of a key (in force or held back).
    public func apiObject(_ key: ObjectKey) -> ManifestObject? { api.withLock { $0[key] } }
}
