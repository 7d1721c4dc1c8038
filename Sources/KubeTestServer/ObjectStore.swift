import Foundation
import GantryAPI

/// One change, as kept in the watch history: the object after the change (for DELETED, the
/// last state with the deletion's resourceVersion) and, for MODIFIED, the state before it
/// (so selector-filtered watches can turn a change into ADDED or DELETED).
struct WatchEvent: Sendable {
    var type: String
    var rv: Int64
    var collection: String
    var object: Value
    var old: Value?
}

/// An open watch stream: what it selects and the events waiting to be written to it.
struct Watcher: Sendable {
    var path: ResourcePath
    var labels: Selector
    var fields: Selector
    var queue: [Value] = []
    var dropped = false
    var bookmarkRequested = false
    let waker: Waker
    let socket: Socket
}

/// The server's whole state, with the storage semantics of kube-apiserver: one global
/// resourceVersion counter bumped by every write, system metadata, generation on spec
/// change, status subresources, finalizers, graceful Pod deletion and a bounded watch
/// history. Pure logic without I/O: the server calls it under its lock and collects
/// `wakes` (watch streams with new events) to signal once the lock is released.
struct ObjectStore: Sendable {
    var rv: Int64 = 1000
    var collections: [String: [StoreKey: Value]] = [:]
    var kinds: [String: String] = [:]
    var history: [WatchEvent] = []
    var historyLimit = 10_000
    /// Watches may start from any resourceVersion >= this; older ones are expired (410).
    var historyFloor: Int64 = 0
    var watchers: [Int: Watcher] = [:]
    var nextWatcherID = 1
    var wakes: [Waker] = []
    /// When the kubelet stand-in first saw each pod Running.
    var runningSince: [StoreKey: Double] = [:]
    /// Pods the kubelet stand-in may have to act on (bound and not finished, or deleting),
    /// so its tick does not scan every Pod.
    var kubeletPods: Set<StoreKey> = []

    /// Writes (or with nil removes) an object, keeping the kubelet's set of live Pods.
    mutating func store(_ p: ResourcePath, _ key: StoreKey, _ obj: Value?) {
        collections[p.collection, default: [:]][key] = obj
        guard p.isPods else { return }
        if let obj, ObjectStore.kubeletMayAct(obj) { kubeletPods.insert(key) } else { kubeletPods.remove(key) }
        if obj == nil { runningSince[key] = nil }
    }

    static func kubeletMayAct(_ pod: Value) -> Bool {
        if isDeleting(pod) { return true }
        let phase = pod["status"]?["phase"]?.stringValue ?? ""
        return !(pod["spec"]?["nodeName"]?.stringValue ?? "").isEmpty && phase != "Succeeded" && phase != "Failed"
    }

    static func now() -> Double { Date().timeIntervalSince1970 }
    static func timestamp(_ t: Double) -> Value { .string(Timestamp(secondsSince1970: t).rfc3339) }

    mutating func nextRV() -> Int64 { rv += 1; return rv }

    func kind(_ p: ResourcePath) -> String { kinds[p.collection] ?? p.derivedKind }

    // MARK: Reads

    func get(_ p: ResourcePath) throws(APIError) -> Value {
        guard p.name != nil, let obj = collections[p.collection]?[p.key] else { throw .notFound(p, p.name ?? "") }
        return obj
    }

    /// Objects of a collection in key order, limited to the path's namespace when it has one.
    func items(_ p: ResourcePath) -> [(StoreKey, Value)] {
        let all = collections[p.collection] ?? [:]
        return all.filter { p.namespace == nil || $0.key.namespace == p.namespace }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    func list(_ p: ResourcePath, query: [String: String]) throws(APIError) -> Value {
        guard let labels = Selector(query["labelSelector"]) else { throw .badRequest("unable to parse labelSelector \"\(query["labelSelector"] ?? "")\"") }
        guard let fields = Selector(query["fieldSelector"]) else { throw .badRequest("unable to parse fieldSelector \"\(query["fieldSelector"] ?? "")\"") }
        var limit = Int.max
        if let l = query["limit"], !l.isEmpty {
            guard let n = Int(l), n >= 0 else { throw .badRequest("invalid limit \"\(l)\"") }
            if n > 0 { limit = n }
        }
        var after: StoreKey? = nil
        if let c = query["continue"], !c.isEmpty {
            guard let (tokenRV, k) = ObjectStore.decodeContinue(c) else { throw .badRequest("invalid continue token") }
            if tokenRV < historyFloor {
                throw APIError(code: 410, reason: "Expired", message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
            }
            after = k
        }
        var out: [Value] = []
        var lastKey: StoreKey? = nil
        var remaining = 0
        for (key, obj) in items(p) {
            if let after, !(after < key) { continue }
            guard labels.matchesLabels(obj), fields.matchesFields(obj) else { continue }
            if out.count < limit { out.append(obj); lastKey = key } else { remaining += 1 }
        }
        var meta = ObjectBuilder()
        meta.set("resourceVersion", .string(String(rv)))
        if remaining > 0, let lastKey {
            meta.set("continue", .string(ObjectStore.encodeContinue(rv, lastKey)))
            meta.set("remainingItemCount", .int(Int64(remaining)))
        }
        return .object([
            .init("kind", .string(kind(p) + "List")), .init("apiVersion", .string(p.apiVersion)),
            .init("metadata", meta.value), .init("items", .array(out)),
        ])
    }

    /// A continue token: the list's resourceVersion and the last key returned, hex-encoded.
    static func encodeContinue(_ rv: Int64, _ k: StoreKey) -> String {
        let bytes = Array((String(rv) + "\u{0}" + k.namespace + "\u{0}" + k.name).utf8)
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeContinue(_ s: String) -> (Int64, StoreKey)? {
        let chars = Array(s.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        var bytes: [UInt8] = []
        var i = 0
        while i + 1 < chars.count {
            guard let h = nibble(chars[i]), let l = nibble(chars[i + 1]) else { return nil }
            bytes.append(h << 4 | l); i += 2
        }
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: "\u{0}", omittingEmptySubsequences: false)
        guard parts.count == 3, let rv = Int64(parts[0]) else { return nil }
        return (rv, StoreKey(namespace: String(parts[1]), name: String(parts[2])))
    }

    // MARK: Writes

    /// POST: a new object (409 when present), with server-set metadata.
    mutating func create(_ p: ResourcePath, _ body: Value) throws(APIError) -> Value {
        guard body.members != nil else { throw .badRequest("the request body must be a JSON object") }
        var obj = body
        if let ns = p.namespace {
            let bodyNS = obj.namespace
            if !bodyNS.isEmpty && bodyNS != ns {
                throw .badRequest("the namespace of the provided object does not match the namespace sent on the request")
            }
            obj = obj.settingMeta("namespace", .string(ns))
        } else {
            obj = obj.settingMeta("namespace", nil)
        }
        var name = obj.name
        if name.isEmpty {
            guard let gen = obj["metadata"]?["generateName"]?.stringValue, !gen.isEmpty else {
                throw .invalid("\(kind(p)) \"\" is invalid: metadata.name: Required value: name or generateName is required")
            }
            repeat {
                name = gen + ObjectStore.randomSuffix()
            } while collections[p.collection]?[StoreKey(namespace: p.namespace ?? "", name: name)] != nil
            obj = obj.settingMeta("name", .string(name))
        }
        let key = StoreKey(namespace: p.namespace ?? "", name: name)
        if collections[p.collection]?[key] != nil { throw .alreadyExists(p, name) }
        obj = withTypeMeta(obj, p).settingMeta("uid", nil)
        if !p.group.isEmpty && p.hasStatusSubresource { obj = obj.setting("status", nil) }
        if p.group == "apiextensions.k8s.io" && p.resource == "customresourcedefinitions" {
            obj = obj.setting("status", ObjectStore.establishedCRDStatus(obj))
        }
        if p.isPods && obj["status"]?["phase"] == nil {
            obj = obj.setting("status", (obj["status"] ?? .object([])).setting("phase", .string("Pending")))
        }
        return insert(p, key, obj)
    }

    /// What kube-apiserver reports for a CRD it has accepted: names accepted, Established.
    static func establishedCRDStatus(_ crd: Value) -> Value {
        let now = timestamp(ObjectStore.now())
        func condition(_ type: String, _ reason: String) -> Value {
            .object([.init("type", .string(type)), .init("status", .string("True")), .init("lastTransitionTime", now),
                     .init("reason", .string(reason)), .init("message", .string(""))])
        }
        return .object([
            .init("conditions", .array([condition("NamesAccepted", "NoConflicts"), condition("Established", "InitialNamesAccepted")])),
            .init("acceptedNames", crd["spec"]?["names"] ?? .object([])),
            .init("storedVersions", .array((crd["spec"]?["versions"]?.arrayValue ?? []).filter { $0["storage"]?.boolValue == true }.compactMap { $0["name"] })),
        ])
    }

    /// Adds type metadata (apiVersion, kind) in front when the body lacks it.
    func withTypeMeta(_ obj: Value, _ p: ResourcePath) -> Value {
        var members = obj.members ?? []
        if obj["kind"] == nil { members.insert(.init("kind", .string(kind(p))), at: 0) }
        if obj["apiVersion"] == nil { members.insert(.init("apiVersion", .string(p.apiVersion)), at: 0) }
        return .object(members)
    }

    mutating func insert(_ p: ResourcePath, _ key: StoreKey, _ body: Value) -> Value {
        let v = nextRV()
        var obj = body
        let now = ObjectStore.now()
        if (obj["metadata"]?["uid"]?.stringValue ?? "").isEmpty { obj = obj.settingMeta("uid", .string(UUID().uuidString.lowercased())) }
        obj = obj.settingMeta("creationTimestamp", ObjectStore.timestamp(now))
        obj = obj.settingMeta("resourceVersion", .string(String(v)))
        obj = obj.settingMeta("generation", .int(1))
        obj = obj.settingMeta("deletionTimestamp", nil).settingMeta("deletionGracePeriodSeconds", nil)
        if let k = obj["kind"]?.stringValue, !k.isEmpty { kinds[p.collection] = k }
        store(p, key, obj)
        record(WatchEvent(type: "ADDED", rv: v, collection: p.collection, object: obj, old: nil))
        return obj
    }

    static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement() ?? "x" })
    }

    /// PUT on the object or its `/status`. The main resource keeps the stored status (for
    /// resources with a status subresource); `/status` takes only status from the body.
    mutating func update(_ p: ResourcePath, _ body: Value) throws(APIError) -> Value {
        guard let name = p.name else { throw .badRequest("an update needs an object name") }
        guard body.members != nil else { throw .badRequest("the request body must be a JSON object") }
        guard let old = collections[p.collection]?[p.key] else { throw .notFound(p, name) }
        if let sub = p.subresource, sub != "status" { throw .notFound(p, name) }
        let bodyName = body.name
        if !bodyName.isEmpty && bodyName != name {
            throw .badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        if let ns = p.namespace, !body.namespace.isEmpty, body.namespace != ns {
            throw .badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        let bodyRV = body["metadata"]?["resourceVersion"]?.stringValue ?? ""
        let oldRV = old["metadata"]?["resourceVersion"]?.stringValue ?? ""
        if !bodyRV.isEmpty && bodyRV != oldRV { throw .conflict(p, name) }
        var new: Value
        if p.subresource == "status" {
            new = old.setting("status", body["status"])
        } else {
            new = withTypeMeta(body, p)
            if p.hasStatusSubresource { new = new.setting("status", old["status"]) }
            for k in ["name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"] {
                new = new.settingMeta(k, old["metadata"]?[k])
            }
            if let dt = old["metadata"]?["deletionTimestamp"], !dt.isNull {
                // Like kube-apiserver: no new finalizers once deletion has begun.
                let oldF = Set(old.finalizers.compactMap { $0.stringValue })
                if new.finalizers.contains(where: { !oldF.contains($0.stringValue ?? "") }) {
                    throw .invalid("\(p.qualifiedResource) \"\(name)\" is being deleted: no new finalizers can be added")
                }
            }
            if new["spec"] != old["spec"] {
                let g = old["metadata"]?["generation"]?.intValue ?? 1
                new = new.settingMeta("generation", .int(g &+ 1))
            }
        }
        return commit(p, p.key, old: old, new: new)
    }

    /// Stores `new` over `old`: no change = no write; a deleting object whose last
    /// finalizer went (and, for a Pod, that no kubelet still has to stop) is removed.
    mutating func commit(_ p: ResourcePath, _ key: StoreKey, old: Value, new input: Value) -> Value {
        var new = input.settingMeta("resourceVersion", old["metadata"]?["resourceVersion"])
        if new == old { return old }
        if ObjectStore.isDeleting(new) && new.finalizers.isEmpty && (!p.isPods || ObjectStore.podCanGo(new)) {
            return removeNow(p, key, new)
        }
        let v = nextRV()
        new = new.settingMeta("resourceVersion", .string(String(v)))
        store(p, key, new)
        record(WatchEvent(type: "MODIFIED", rv: v, collection: p.collection, object: new, old: old))
        return new
    }

    static func isDeleting(_ obj: Value) -> Bool {
        if let dt = obj["metadata"]?["deletionTimestamp"], !dt.isNull { return true }
        return false
    }

    /// A Pod that no kubelet has to stop: unbound, finished, or forced (grace 0).
    static func podCanGo(_ pod: Value) -> Bool {
        let phase = pod["status"]?["phase"]?.stringValue ?? ""
        if phase == "Succeeded" || phase == "Failed" { return true }
        if (pod["spec"]?["nodeName"]?.stringValue ?? "").isEmpty { return true }
        if let g = pod["metadata"]?["deletionGracePeriodSeconds"]?.intValue, g == 0 { return true }
        return false
    }

    mutating func removeNow(_ p: ResourcePath, _ key: StoreKey, _ obj: Value) -> Value {
        let v = nextRV()
        let last = obj.settingMeta("resourceVersion", .string(String(v)))
        store(p, key, nil)
        record(WatchEvent(type: "DELETED", rv: v, collection: p.collection, object: last, old: nil))
        return last
    }

    /// PATCH: merge patch or JSON patch applied to the stored object, then stored as a PUT
    /// of the same (sub)resource would be.
    mutating func patch(_ p: ResourcePath, contentType: String, body: [UInt8]) throws(APIError) -> Value {
        guard let name = p.name else { throw .badRequest("a patch needs an object name") }
        guard let old = collections[p.collection]?[p.key] else { throw .notFound(p, name) }
        var bytes = body
        let doc: Value
        do { doc = try JSON.parse(bytes: &bytes) } catch { throw .badRequest("invalid JSON patch document: \(error)") }
        let patched: Value
        switch contentType {
        case "application/merge-patch+json":
            patched = Patch.merge(old, doc)
        case "application/json-patch+json":
            do { patched = try Patch.json(old, doc) } catch {
                throw APIError(code: error.code, reason: error.code == 422 ? "Invalid" : "BadRequest", message: error.message)
            }
        default:
            throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json")
        }
        guard patched.members != nil else { throw .badRequest("the patched object is not a JSON object") }
        return try update(p, patched)
    }

    /// DELETE with DeleteOptions. Objects with finalizers, and bound running Pods deleted
    /// with a grace period, get deletionTimestamp and stay; anything else goes now.
    mutating func delete(_ p: ResourcePath, options: Value, queryGrace: Int64?) throws(APIError) -> Value {
        guard let name = p.name else { throw .badRequest("a delete needs an object name") }
        guard let old = collections[p.collection]?[p.key] else { throw .notFound(p, name) }
        if let uid = options["preconditions"]?["uid"]?.stringValue, uid != (old["metadata"]?["uid"]?.stringValue ?? "") {
            throw .conflict(p, name, "Precondition failed: UID in precondition: \(uid), UID in object meta: \(old["metadata"]?["uid"]?.stringValue ?? "")")
        }
        if let prv = options["preconditions"]?["resourceVersion"]?.stringValue, prv != (old["metadata"]?["resourceVersion"]?.stringValue ?? "") {
            throw .conflict(p, name, "Precondition failed: ResourceVersion in precondition: \(prv), ResourceVersion in object meta: \(old["metadata"]?["resourceVersion"]?.stringValue ?? "")")
        }
        let defaultGrace: Int64 = p.isPods ? (old["spec"]?["terminationGracePeriodSeconds"]?.intValue ?? 30) : 0
        let grace = max(0, options["gracePeriodSeconds"]?.intValue ?? queryGrace ?? defaultGrace)
        if ObjectStore.isDeleting(old) {
            if p.isPods && grace == 0 {
                return commit(p, p.key, old: old, new: old.settingMeta("deletionGracePeriodSeconds", .int(0)))
            }
            return old
        }
        let podGrace: Int64 = p.isPods ? grace : 0
        var marked = old.settingMeta("deletionTimestamp", ObjectStore.timestamp(ObjectStore.now() + Double(podGrace)))
        marked = marked.settingMeta("deletionGracePeriodSeconds", .int(podGrace))
        if old.finalizers.isEmpty && (!p.isPods || ObjectStore.podCanGo(marked)) {
            return removeNow(p, p.key, old)
        }
        return commit(p, p.key, old: old, new: marked)
    }

    /// DELETE on a collection: deletes each object the selectors match, as `delete` would.
    mutating func deleteCollection(_ p: ResourcePath, query: [String: String], options: Value, queryGrace: Int64?) throws(APIError) -> Value {
        guard let labels = Selector(query["labelSelector"]), let fields = Selector(query["fieldSelector"]) else {
            throw .badRequest("unable to parse selector")
        }
        var deleted: [Value] = []
        for (key, obj) in items(p) where labels.matchesLabels(obj) && fields.matchesFields(obj) {
            var op = p
            op.namespace = key.namespace.isEmpty ? nil : key.namespace
            op.name = key.name
            deleted.append(try delete(op, options: options, queryGrace: queryGrace))
        }
        return .object([
            .init("kind", .string(kind(p) + "List")), .init("apiVersion", .string(p.apiVersion)),
            .init("metadata", .object([.init("resourceVersion", .string(String(rv)))])), .init("items", .array(deleted)),
        ])
    }

    // MARK: Direct access (tests)

    /// Creates or replaces an object as given (status included), with server metadata.
    mutating func putDirect(_ p: ResourcePath, _ body: Value) {
        guard let name = p.name else { return }
        var obj = withTypeMeta(body, p).settingMeta("name", .string(name))
        obj = obj.settingMeta("namespace", p.namespace.map { .string($0) })
        guard let old = collections[p.collection]?[p.key] else {
            let kept = obj
            var inserted = insert(p, p.key, kept)
            // Keep a deletionTimestamp the test set on purpose.
            if let dt = body["metadata"]?["deletionTimestamp"] {
                inserted = inserted.settingMeta("deletionTimestamp", dt)
                store(p, p.key, inserted)
            }
            return
        }
        for k in ["uid", "creationTimestamp", "generation"] where obj["metadata"]?[k] == nil {
            obj = obj.settingMeta(k, old["metadata"]?[k])
        }
        if obj["spec"] != old["spec"] {
            obj = obj.settingMeta("generation", .int((old["metadata"]?["generation"]?.intValue ?? 1) &+ 1))
        }
        _ = commit(p, p.key, old: old, new: obj)
    }

    mutating func removeDirect(_ p: ResourcePath) {
        guard let old = collections[p.collection]?[p.key] else { return }
        _ = removeNow(p, p.key, old)
    }
}

extension Value {
    var isNull: Bool { if case .null = self { return true }; return false }
}
