import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime
import DirectorySource
import StateStore
import YAMLCodec

/// The desired objects, as the sources declare them, with the metadata Gantry assigns (uid,
/// creation time, a generation that increases on every spec change and survives restarts).
/// Applies source changes: caches, persists and enqueues every key a change can affect, and
/// turns manifest problems into log lines and Warning events.
public final class Inventory: ManifestSink, Sendable {
    public static let byQueue = "queue", byPool = "pool", byParent = "parent", byQueuePool = "queuePool"

    public let desired: IndexedStore<ObjectKey, ManifestObject>
    public let statuses: StatusCache
    /// Upserts and deletes between changing `desired` and telling the store (see
    /// `StatusCache.unpersisted`).
    public let unpersisted = Atomic<Int>(0)
    let persistence: any StatePersistence
    let queue: WorkQueue<ObjectKey>
    let events: EventRecorder
    let clock: any Clock

    struct State {
        var restored: [ObjectKey: ObjectRow] = [:]
        /// During a bulk load (the initial scan) keys are collected here and reconciled once at
        /// the end: queues, pools and nodes first, so each workload's status is written once.
        var bulk: Set<ObjectKey>?
        var fileReports: [String: String] = [:]
        var duplicateReports: [ObjectKey: String] = [:]
        var invalidReports: [ObjectKey: String] = [:]
        /// Files whose last read failed (whole file, or a document that could not be identified).
        var failedFiles = Set<String>()
        /// Declared Node objects; with none, the local node stands in.
        var declaredNodes = 0
    }
    let state = Mutex(State())

    /// The node for this machine, used while no Node is declared (directory mode).
    let localNode = Mutex<ManifestObject?>(nil)

    /// Sets the stand-in node for this machine; it is in force while no Node is declared.
    public func setLocalNode(_ obj: ManifestObject?) { localNode.withLock { $0 = obj } }

    /// Adds the local node when no Node is declared, removes it when one is.
    func reconcileLocalNode(enqueue keys: inout [ObjectKey]) {
        guard let local = localNode.withLock({ $0 }) else { return }
        let declared = state.withLock { $0.declaredNodes }
        let present = desired.get(local.key)
        let isLocal = present?.source.file == LocalNode.sourceFile
        if declared == 0 && present == nil {
            Log.info("no Node declared: using this machine as node \"\(local.meta.name)\"", ["gpus": String(local.spec.node?.capacity.gpu ?? 0)])
            upsert(local, enqueue: &keys)
        } else if declared > 0 && isLocal {
            delete(local.key, enqueue: &keys)
        }
    }

    public init(persistence: any StatePersistence, statuses: StatusCache, queue: WorkQueue<ObjectKey>, events: EventRecorder, clock: any Clock) {
        self.persistence = persistence; self.statuses = statuses; self.queue = queue; self.events = events; self.clock = clock
        desired = IndexedStore(indexers: [
            Inventory.byQueue: { o in o.spec.workload.map { [$0.queue] } ?? [] },
            Inventory.byPool: { o in o.spec.node?.resourcePool.map { [$0] } ?? [] },
            Inventory.byParent: { o in o.spec.queue?.parent.map { [$0] } ?? [] },
            Inventory.byQueuePool: { o in o.spec.queue?.resourcePool.map { [$0] } ?? [] },
        ])
    }

    /// The generation after `g`; a stored Int64.max (a damaged row) starts again at 1 rather than trapping.
    static func next(_ g: Int64) -> Int64 { g < .max ? g + 1 : 1 }

    /// Rows from the state store of a previous run: generations, uids and creation times of
    /// objects seen again are kept, and their statuses restored.
    public func restore(_ rows: [ObjectRow]) {
        state.withLock { st in for r in rows { st.restored[r.key] = r } }
        for r in rows {
            guard let json = r.statusJSON, let v = try? JSON.parse(json) else { continue }
            statuses.restore(r.key, ObjectStatus.from(v, kind: r.key.kind))
        }
    }

    /// After the first full scan: objects stored by a previous run whose manifests are gone
    /// are deleted now. Objects whose file exists but does not read cleanly are kept, from
    /// their stored form, as a running daemon would keep them. Returns how many were deleted.
    @discardableResult
    public func dropUnseenRestored() -> Int {
        var local: [ObjectKey] = []
        reconcileLocalNode(enqueue: &local)
        let direct = state.withLock { st in
            guard st.bulk != nil else { return local }
            st.bulk!.formUnion(local)
            return []
        }
        queue.add(contentsOf: direct)
        let (unseen, failed) = state.withLock { st in (Array(st.restored.values), st.failedFiles) }
        var keys: [ObjectKey] = []
        var deleted = 0
        for row in unseen.sorted(by: { $0.key < $1.key }) {
            let (file, line) = Inventory.splitSource(row.source)
            if failed.contains(file), let obj = Inventory.decodeStored(row, file: file, line: line) {
                if row.key.kind == .node { state.withLock { $0.declaredNodes += 1 } }
                Log.warn("kept an object whose manifest file does not read cleanly", ["key": row.key.description, "file": file])
                events.warning(InvolvedObject(row.key), "ManifestUnreadable", "\(file) does not read cleanly; the last stored spec (generation \(row.generation)) stays in force")
                upsert(obj, enqueue: &keys)
                continue
            }
            state.withLock { _ = $0.restored.removeValue(forKey: row.key) }
            persistence.deleteObject(row.key)
            statuses.remove(row.key)
            deleted += 1
            Log.info("object removed while the daemon was down", ["key": row.key.description])
        }
        state.withLock { $0.restored = [:] }
        queue.add(contentsOf: keys)
        return deleted
    }

    /// An object back from its stored JSON (JSON is YAML, so the manifest decoder reads it).
    static func decodeStored(_ row: ObjectRow, file: String, line: Int) -> ManifestObject? {
        guard let doc = try? YAMLParser.parse(row.objectJSON).first?.root else { return nil }
        // Written by Gantry from a decoded object: nothing in it is new, whatever the mode.
        var decoder = ManifestDecoder(file: file, fieldValidation: .ignore)
        guard case .object(var obj, _) = decoder.decode(doc, index: 0), obj.key == row.key else { return nil }
        obj.meta.annotations["gantry.dev/source"] = nil
        obj.source = SourceRef(file: file, line: line, index: 0)
        return obj
    }

    /// An object back from a stored row whose source is in its `gantry.dev/source` annotation
    /// (history rows).
    public static func decodeStoredObject(_ row: ObjectRow) -> ManifestObject? {
        let source = (try? JSON.parse(row.objectJSON))?["metadata"]?["annotations"]?["gantry.dev/source"]?.stringValue ?? ""
        let (file, line) = splitSource(source)
        return decodeStored(row, file: file, line: line)
    }

    /// `path:line` (a `SourceRef` description) back into its parts.
    static func splitSource(_ source: String) -> (file: String, line: Int) {
        guard let colon = source.lastIndex(of: ":"), let line = Int(source[source.index(after: colon)...]) else { return (source, 0) }
        return (String(source[..<colon]), line)
    }

    // MARK: ManifestSink

    public func apply(_ changes: [ManifestChange]) {
        var keys: [ObjectKey] = []
        for c in changes {
            switch c {
            case .upsert(let obj): upsert(obj, enqueue: &keys)
            case .delete(let key): delete(key, enqueue: &keys)
            case .fileReport(let file, let fatal, let errors, let warnings): report(file: file, fatal: fatal, errors: errors, warnings: warnings)
            case .duplicate(let key, let files):
                let sig = files.map(\.description).joined(separator: ",")
                let isNew = state.withLock { st in st.duplicateReports.updateValue(sig, forKey: key) != sig }
                if isNew, let first = files.first {
                    let others = files.dropFirst().map(\.description).joined(separator: ", ")
                    let msg = "\(key.kind.rawValue) \(key.qualifiedName) is declared in \(first.description) and again in \(others); the first (by path order) is in force"
                    Log.warn("duplicate object", ["key": key.description, "files": sig])
                    events.warning(InvolvedObject(key), "DuplicateObject", msg)
                    for f in files.dropFirst() { events.warning(.file(f.file), "DuplicateObject", msg) }
                }
            case .invalidChangeKept(let key, let errors):
                let msg = errors.map(\.description).joined(separator: "; ")
                Log.error("invalid change not applied; previous spec stays in force", ["key": key.description, "error": msg])
                events.warning(InvolvedObject(key), Reason.invalidSpec, "change not applied, the previous valid spec stays in force: " + msg)
            }
        }
        if state.withLock({ $0.bulk == nil }) { reconcileLocalNode(enqueue: &keys) }
        let direct: [ObjectKey] = state.withLock { st in
            guard st.bulk != nil else { return keys }
            st.bulk!.formUnion(keys)
            return []
        }
        queue.add(contentsOf: direct)
    }

    func report(file: String, fatal: FieldError?, errors: [FieldError], warnings: [FieldError]) {
        let all = (fatal.map { [$0] } ?? []) + errors
        let sig = (all + warnings).map(\.description).joined(separator: "\n")
        let changed = state.withLock { st in
            if all.isEmpty { st.failedFiles.remove(file) } else { st.failedFiles.insert(file) }
            let old = st.fileReports[file] ?? ""
            if sig.isEmpty { st.fileReports[file] = nil } else { st.fileReports[file] = sig }
            return old != sig
        }
        guard changed else { return }
        for e in all {
            Log.error("invalid manifest", ["file": e.file, "line": String(e.line), "field": e.path, "error": e.message])
            events.warning(.file(file), fatal != nil ? "InvalidManifest" : "InvalidDocument", e.description)
        }
        for w in warnings {
            Log.warn("manifest warning", ["file": w.file, "line": String(w.line), "field": w.path, "warning": w.message])
            events.warning(.file(file), "ManifestWarning", w.description)
        }
    }

    /// The stored row of an object: JSON of apiVersion, kind, metadata and spec, with a hash
    /// of the spec (to tell spec changes across restarts).
    public func row(for key: ObjectKey) -> ObjectRow? {
        guard let obj = desired.get(key) else { return nil }
        return Inventory.row(obj)
    }

    static func row(_ obj: ManifestObject) -> ObjectRow {
        let key = obj.key
        // Written straight to bytes (the same text as JSON.encode of the Value forms).
        let (objectJSON, specJSON) = obj.storedJSON()
        var row = ObjectRow(key: key, uid: obj.meta.uid, generation: obj.meta.generation, specHash: specHash(specJSON, invalid: !obj.invalid.isEmpty),
                            objectHash: fnv1a(objectJSON), creationTime: obj.meta.creationTimestamp.seconds, source: obj.source.description, objectJSON: objectJSON)
        // The workload index's fields from the typed spec, so the store need not parse the JSON.
        if case .workload(let w) = obj.spec { row.fields = WorkloadFields(spec: w, labels: obj.meta.labels) }
        return row
    }

    static func specHash(_ specJSON: String, invalid: Bool) -> String { fnv1a(invalid ? specJSON + "#invalid" : specJSON) }

    /// The desired object for a reconcile; when it is gone, its cached status goes too.
    func current(_ key: ObjectKey) -> ManifestObject? {
        if let obj = desired.get(key) { return obj }
        statuses.remove(key)
        return nil
    }

    /// Starts a bulk load (the initial scan): queue and pool keys wait for `endBulk`.
    public func beginBulk() { state.withLock { $0.bulk = [] } }
    public func endBulk() {
        let keys = state.withLock { st in let k = st.bulk ?? []; st.bulk = nil; return k }
        queue.add(contentsOf: keys.filter { $0.kind != .workload }.sorted())
        queue.add(contentsOf: keys.filter { $0.kind == .workload })
    }

    func upsert(_ input: ManifestObject, enqueue keys: inout [ObjectKey]) {
        let key = input.key
        var obj = input
        let prev = desired.get(key)
        let now = clock.timestamp
        let restoredRow: ObjectRow? = prev == nil ? state.withLock { $0.restored.removeValue(forKey: key) } : nil
        var changed = true
        if !input.meta.uid.isEmpty {
            // The source owns the metadata (the API server in kube mode): uid, creation time
            // and generation are in force as delivered.
            changed = prev == nil || prev != obj
        } else if let prev {
            obj.meta.uid = prev.meta.uid
            obj.meta.creationTimestamp = prev.meta.creationTimestamp
            let specChanged = prev.spec != obj.spec || prev.invalid.isEmpty != obj.invalid.isEmpty
            obj.meta.generation = specChanged ? Inventory.next(prev.meta.generation) : prev.meta.generation
        } else if let row = restoredRow {
            obj.meta.uid = row.uid
            obj.meta.creationTimestamp = Timestamp(seconds: row.creationTime)
            obj.meta.generation = row.generation
            let fresh = Inventory.row(obj)
            if fresh.specHash != row.specHash { obj.meta.generation = Inventory.next(row.generation) } else { changed = fresh.objectJSON != row.objectJSON }
        } else {
            obj.meta.uid = RandomUID.next()
            obj.meta.creationTimestamp = now
            obj.meta.generation = 1
        }
        if key.kind == .node && obj.source.file != LocalNode.sourceFile && (prev == nil || prev?.source.file == LocalNode.sourceFile) {
            state.withLock { $0.declaredNodes += 1 }
        }
        unpersisted.add(1, ordering: .sequentiallyConsistent)
        desired.upsert(key, obj)
        if changed { persistence.markObjectDirty(key) }
        unpersisted.subtract(1, ordering: .sequentiallyConsistent)

        let invalidSig = obj.invalid.map(\.description).joined(separator: "; ")
        let invalidChanged = state.withLock { st in
            let old = st.invalidReports[key] ?? ""
            st.invalidReports[key] = invalidSig.isEmpty ? nil : invalidSig
            return old != invalidSig
        }
        if invalidChanged && !invalidSig.isEmpty {
            Log.error("invalid spec", ["key": key.description, "error": invalidSig])
            events.warning(InvolvedObject(key), Reason.invalidSpec, invalidSig)
        }
        keys.append(key)
        related(key, old: prev, new: obj, into: &keys)
    }

    func delete(_ key: ObjectKey, enqueue keys: inout [ObjectKey]) {
        unpersisted.add(1, ordering: .sequentiallyConsistent)
        defer { unpersisted.subtract(1, ordering: .sequentiallyConsistent) }
        let old = desired.delete(key)
        if key.kind == .node, let old, old.source.file != LocalNode.sourceFile { state.withLock { $0.declaredNodes -= 1 } }
        state.withLock { st in
            st.duplicateReports[key] = nil; st.invalidReports[key] = nil
            st.restored[key] = nil
        }
        persistence.deleteObject(key)
        statuses.remove(key)
        if old != nil {
            events.normal(InvolvedObject(key), "Deleted", "manifest removed; \(key.kind.rawValue) deleted")
            // The recorder's dedup and spam-filter state for it would otherwise stay (issue 12's churn).
            events.forget(InvolvedObject(key))
        }
        keys.append(key)
        related(key, old: old, new: nil, into: &keys)
    }

    /// Keys whose status can change when this object changes.
    func related(_ key: ObjectKey, old: ManifestObject?, new: ManifestObject?, into keys: inout [ObjectKey]) {
        switch key.kind {
        case .workload:
            break   // queue counts and positions come from admission
        case .queue:
            keys.append(contentsOf: desired.keys(index: Inventory.byParent, value: key.name))
            for p in Set([old?.spec.queue?.parent, new?.spec.queue?.parent].compactMap { $0 }) { keys.append(ObjectKey(.queue, name: p)) }
        case .node:
            for p in Set([old?.spec.node?.resourcePool, new?.spec.node?.resourcePool].compactMap { $0 }) { keys.append(ObjectKey(.resourcePool, name: p)) }
        case .resourcePool:
            keys.append(contentsOf: desired.keys(index: Inventory.byPool, value: key.name))
            keys.append(contentsOf: desired.keys(index: Inventory.byQueuePool, value: key.name))
        }
    }
}
