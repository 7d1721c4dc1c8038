import GantryAPI

/// The watch side of the store: history, fan-out to open watches, and their first events.
extension ObjectStore {
    /// Appends to the history (trimming it) and queues the event on matching watches.
    mutating func record(_ e: WatchEvent) {
        history.append(e)
        // Trimmed in batches (a quarter of the limit at a time), so a write costs O(1) amortized.
        if history.count > historyLimit + max(1, historyLimit / 4) {
            let drop = history.count - historyLimit
            historyFloor = max(historyFloor, history[drop - 1].rv)
            history.removeFirst(drop)
        }
        // Iterate over a copy of the ids, so the dictionary (and each queue) is mutated in place.
        for id in Array(watchers.keys) {
            guard let w = watchers[id], w.path.collection == e.collection, !w.dropped,
                  let ev = ObjectStore.filtered(e, for: w) else { continue }
            let waker = w.waker
            watchers[id]?.queue.append(ev)
            wakes.append(waker)
        }
    }

    /// The event as a watch with selectors sees it: an object that starts or stops
    /// matching arrives as ADDED or DELETED.
    static func filtered(_ e: WatchEvent, for w: Watcher) -> Value? {
        func matches(_ o: Value) -> Bool {
            (w.path.namespace == nil || o.namespace == w.path.namespace) && w.labels.matchesLabels(o) && w.fields.matchesFields(o)
        }
        var type = e.type
        let now = matches(e.object)
        if e.type == "MODIFIED", let old = e.old {
            let before = matches(old)
            switch (before, now) {
            case (true, true): type = "MODIFIED"
            case (false, true): type = "ADDED"
            case (true, false): type = "DELETED"
            case (false, false): return nil
            }
        } else if !now {
            return nil
        }
        return .object([.init("type", .string(type)), .init("object", e.object)])
    }

    /// Registers a watch and returns its first events: every current object as ADDED
    /// (resourceVersion "" or "0") or the history after the given resourceVersion.
    mutating func startWatch(_ w: Watcher, from rvText: String) throws(APIError) -> (Int, [Value]) {
        var initial: [Value] = []
        if rvText.isEmpty || rvText == "0" {
            for (_, obj) in items(w.path) where w.labels.matchesLabels(obj) && w.fields.matchesFields(obj) {
                initial.append(.object([.init("type", .string("ADDED")), .init("object", obj)]))
            }
        } else {
            guard let from = Int64(rvText) else { throw .badRequest("invalid resourceVersion \"\(rvText)\"") }
            guard from >= historyFloor else { throw .expired }
            // The history is in resourceVersion order: find the first event after `from`.
            var lo = 0, hi = history.count
            while lo < hi {
                let mid = lo + (hi - lo) / 2
                if history[mid].rv <= from { lo = mid + 1 } else { hi = mid }
            }
            for e in history[lo...] where e.collection == w.path.collection {
                if let ev = ObjectStore.filtered(e, for: w) { initial.append(ev) }
            }
        }
        let id = nextWatcherID
        nextWatcherID += 1
        watchers[id] = w
        return (id, initial)
    }

    func bookmark(_ p: ResourcePath) -> Value {
        .object([
            .init("type", .string("BOOKMARK")),
            .init("object", .object([
                .init("kind", .string(kind(p))), .init("apiVersion", .string(p.apiVersion)),
                .init("metadata", .object([.init("resourceVersion", .string(String(rv)))])),
            ])),
        ])
    }

    mutating func expireHistory() {
        history.removeAll()
        historyFloor = rv
    }
}
