import GantryAPI

/// What one watch has told its client, and the events the next changes of the feed make.
/// No I/O: the caller reads the feed and the objects and writes the events.
///
/// Contract:
/// - `apply` takes the feed's changes after `position` in order; several changes of one key
///   become one event (the object is read once, in its current form), stamped with the
///   sequence of that key's last change, and events come in the order of those sequences,
///   so a client resuming from any event's resourceVersion loses nothing.
/// - An object in the selection that changed is MODIFIED (nothing when its JSON is the same
///   as the one sent last); one that enters it is ADDED; one deleted, or leaving the
///   selection (a filter no longer holds), is DELETED with the last object sent (or, for a
///   deleted object this watch never sent, a minimal one with kind, namespace and name).
/// - A watch that began with the whole selection (`complete`) knows which objects its client
///   holds. One that began at a resourceVersion knows it once `seed` gave it the selection at
///   a later position P, for every object not changed between the resourceVersion and P. For
///   the others (changed in that window, or no seed: its filters are on the key alone, or the
///   backend could not read a consistent selection) it takes "created after that version"
///   (the first change it reads is the object's creation: an object change of generation 1)
///   as not held, and anything else as possibly held, so it may send one DELETED for an
///   object its client never had (clients ignore a delete of an object they do not hold, as
///   informers do), but never misses one that left.
struct WatchSession: Sendable {
    enum EventType: String { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK", error = "ERROR" }

    struct Event {
        var type: EventType
        var object: Value
        /// The resourceVersion the object carries.
        var rv: Int64
    }

    let kind: Kind
    /// The feed sequence read up to.
    private(set) var position: Int64
    /// Whether membership of every object is known (the watch began with the selection).
    let complete: Bool
    /// Objects the client holds, with a hash of the JSON last sent.
    private(set) var held: [ObjectKey: Int] = [:]
    /// Objects known not to be held (when not `complete`); bounded.
    private var absent: Set<ObjectKey> = []
    /// The objects sent last by changes (for DELETED); bounded.
    private var last: [ObjectKey: Value] = [:]
    /// Set by `seed`: the position of the selection held, after which membership is exact.
    private var seededAt: Int64?
    /// Keys whose namespace the watch may see (the caller's namespaces, the path's).
    let admits: @Sendable (ObjectKey) -> Bool
    /// Whether the selection depends on the key alone (no filter on other fields).
    let keyOnly: Bool

    static let lastKept = 4096
    static let absentKept = 65536

    init(kind: Kind, position: Int64, complete: Bool, keyOnly: Bool, admits: @escaping @Sendable (ObjectKey) -> Bool) {
        self.kind = kind; self.position = position; self.complete = complete; self.keyOnly = keyOnly; self.admits = admits
    }

    /// Moves the start to `head` (a watch without resourceVersion whose selection was read at
    /// exactly that position); only before any change is applied.
    mutating func begin(at head: Int64) { position = head }

    /// The keys of the selection at feed position `head` (at or after `position`): the client
    /// held those, except objects changed between `position` and `head`, which stay unknown.
    mutating func seed(_ keys: [ObjectKey], at head: Int64) {
        guard !complete, head >= position else { return }
        for k in keys where admits(k) { held[k] = WatchSession.unknownHash }
        seededAt = head
    }

    /// The hash of an object whose JSON the client's copy may not match (any change is sent).
    static let unknownHash = 0

    /// ADDED for every object of the selection read at `position` (a watch without a
    /// resourceVersion).
    mutating func start(_ items: [APIObject], view: (APIObject) -> Value) -> [Event] {
        var out: [Event] = []
        out.reserveCapacity(items.count)
        for o in items where admits(o.key) {
            let v = view(o)
            held[o.key] = WatchSession.hash(v)
            out.append(Event(type: .added, object: WatchSession.stamped(v, position), rv: position))
        }
        return out
    }

    /// The events of `changes` (the feed after `position`, oldest first). `current` reads an
    /// object's current form (nil: gone); `matches` applies the watch's filters.
    mutating func apply(_ changes: [FeedChange], current: (ObjectKey) -> APIObject?, matches: (APIObject) -> Bool,
                        view: (APIObject) -> Value) -> [Event] {
        guard let newest = changes.last?.seq else { return [] }
        struct Seen { var firstOp: String; var firstSeq: Int64; var lastSeq: Int64; var deleted: Bool }
        var seen: [ObjectKey: Seen] = [:]
        var keys: [ObjectKey] = []
        for c in changes where c.key.kind == kind && admits(c.key) {
            if var s = seen[c.key] {
                s.lastSeq = c.seq
                if c.op == "delete" { s.deleted = true }
                seen[c.key] = s
            } else {
                seen[c.key] = Seen(firstOp: c.op, firstSeq: c.seq, lastSeq: c.seq, deleted: c.op == "delete")
                keys.append(c.key)
            }
        }
        position = max(position, newest)
        keys.sort { (seen[$0]?.lastSeq ?? 0) < (seen[$1]?.lastSeq ?? 0) }
        var out: [Event] = []
        for k in keys {
            guard let s = seen[k] else { continue }
            // Unchanged since the seed's position: the seed says whether the client holds it.
            let seededExactly = seededAt.map { s.firstSeq > $0 } ?? false
            out += decide(k, s.lastSeq, firstOp: s.firstOp, deleted: s.deleted, seededExactly: seededExactly, current(k), matches, view)
        }
        return out
    }

    private mutating func decide(_ k: ObjectKey, _ rv: Int64, firstOp: String, deleted: Bool, seededExactly: Bool, _ cur: APIObject?,
                                 _ matches: (APIObject) -> Bool, _ view: (APIObject) -> Value) -> [Event] {
        let wasHeld = held[k] != nil
        let known = complete || wasHeld || seededExactly || absent.contains(k)
        guard let cur else {
            // Gone.
            if wasHeld || !known {
                let final = last[k] ?? minimal(k)
                forget(k)
                return [Event(type: .deleted, object: WatchSession.stamped(final, rv), rv: rv)]
            }
            return []
        }
        let v = view(cur)
        let h = WatchSession.hash(v)
        if matches(cur) {
            var out: [Event] = []
            if wasHeld && deleted {
                // Deleted and created again since the last read: the client sees both.
                out.append(Event(type: .deleted, object: WatchSession.stamped(last[k] ?? minimal(k), rv), rv: rv))
                held[k] = nil
            }
            if let old = held[k] {
                guard old != h else { return out }
                out.append(Event(type: .modified, object: WatchSession.stamped(v, rv), rv: rv))
            } else {
                let created = known || deleted || (firstOp == "object" && cur.object.meta.generation <= 1)
                out.append(Event(type: created ? .added : .modified, object: WatchSession.stamped(v, rv), rv: rv))
            }
            hold(k, h, v)
            return out
        }
        // Present but outside the selection.
        if wasHeld {
            forget(k)
            return [Event(type: .deleted, object: WatchSession.stamped(v, rv), rv: rv)]
        }
        let createdSince = firstOp == "object" && cur.object.meta.generation <= 1
        if known || keyOnly || createdSince || deleted {
            markAbsent(k)
            return []
        }
        forget(k)
        return [Event(type: .deleted, object: WatchSession.stamped(v, rv), rv: rv)]
    }

    private mutating func hold(_ k: ObjectKey, _ h: Int, _ v: Value) {
        held[k] = h
        absent.remove(k)
        if last.count >= WatchSession.lastKept && last[k] == nil { last.removeAll(keepingCapacity: true) }
        last[k] = v
    }

    private mutating func forget(_ k: ObjectKey) {
        held[k] = nil
        last[k] = nil
        markAbsent(k)
    }

    private mutating func markAbsent(_ k: ObjectKey) {
        guard !complete else { return }
        // Past the bound the set starts again: those keys become unknown (at most a DELETED more each).
        if absent.count >= WatchSession.absentKept { absent.removeAll(keepingCapacity: true) }
        absent.insert(k)
    }

    func minimal(_ k: ObjectKey) -> Value {
        var meta: [Value.Member] = [.init("name", .string(k.name))]
        if k.kind.isNamespaced { meta.append(.init("namespace", .string(k.namespace))) }
        return .object([.init("apiVersion", .string(gantryAPIVersion)), .init("kind", .string(k.kind.rawValue)), .init("metadata", .object(meta))])
    }

    /// A BOOKMARK at `position`: only the resourceVersion matters.
    func bookmark() -> Event {
        let v: Value = .object([.init("apiVersion", .string(gantryAPIVersion)), .init("kind", .string(kind.rawValue)), .init("metadata", .object([]))])
        return Event(type: .bookmark, object: WatchSession.stamped(v, position), rv: position)
    }

    /// An ERROR event carrying a Kubernetes `Status` (410 Expired: list again).
    static func error(code: Int, reason: String, message: String) -> Event {
        let status: Value = .object([
            .init("kind", .string("Status")), .init("apiVersion", .string("v1")), .init("metadata", .object([])),
            .init("status", .string("Failure")), .init("message", .string(message)), .init("reason", .string(reason)), .init("code", .int(Int64(code))),
        ])
        return Event(type: .error, object: status, rv: 0)
    }

    static func hash(_ v: Value) -> Int {
        let h = JSON.encode(v).hashValue
        return h == unknownHash ? 1 : h
    }

    /// `v` with `metadata.resourceVersion` set to `rv`.
    static func stamped(_ v: Value, _ rv: Int64) -> Value {
        guard case .object(var m) = v else { return v }
        let stamp = Value.Member("resourceVersion", .string(String(rv)))
        if let i = m.firstIndex(where: { $0.key == "metadata" }), case .object(var meta) = m[i].value {
            meta.removeAll { $0.key == "resourceVersion" }
            meta.append(stamp)
            m[i].value = .object(meta)
        } else {
            m.append(.init("metadata", .object([stamp])))
        }
        return .object(m)
    }

    /// One line of the stream: `{"type":...,"object":...}` and a newline.
    static func line(_ e: Event) -> [UInt8] {
        Array((JSON.encode(.object([.init("type", .string(e.type.rawValue)), .init("object", e.object)])) + "\n").utf8)
    }
}
