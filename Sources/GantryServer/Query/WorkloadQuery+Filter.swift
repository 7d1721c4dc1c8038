import GantryAPI

// The compiled filters, the sort and the continue marker of `WorkloadQuery`. Everything
// here reads the stored fields of an object (no Values or Strings built per item) so a
// filtered page of 100,000 workloads stays within a few milliseconds.

extension WorkloadQuery {
    enum StringField: Sendable { case name, namespace, queue, user, description }
    enum NumberField: Sendable { case priority, gpus, replicas }
    enum DateField: Sendable { case createdAt, startedAt, completedAt }
    enum FilterField { case string(StringField), phase, type, number(NumberField), date(DateField) }

    /// seed 002's operators.
    enum Op: String, Sendable {
        case eq = "==", ne = "!=", le = "<=", ge = ">=", contains = "=@", notContains = "!@", prefix = "=^", suffix = "=$"
        var isOrdering: Bool { self == .eq || self == .ne || self == .le || self == .ge }

        func holds(_ a: Int64, _ b: Int64) -> Bool {
            switch self {
            case .eq: a == b
            case .ne: a != b
            case .le: a <= b
            case .ge: a >= b
            default: false
            }
        }

        func holds(_ a: String, _ b: String, ignoringCase: Bool = false) -> Bool {
            if ignoringCase { return holds(a.lowercased(), b.lowercased()) }
            switch self {
            case .eq: return a == b
            case .ne: return a != b
            case .le: return a <= b
            case .ge: return a >= b
            case .contains: return Bytes.contains(a, Array(b.utf8), foldCase: false)
            case .notContains: return !Bytes.contains(a, Array(b.utf8), foldCase: false)
            case .prefix: return Bytes.hasPrefix(a, Array(b.utf8))
            case .suffix: return Bytes.hasSuffix(a, Array(b.utf8))
            }
        }
    }

    enum Clause: Sendable {
        /// Bit i: WorkloadPhase.allCases[i] matches.
        case phaseMask(UInt32)
        /// Bit i: WorkloadType.allCases[i] matches.
        case typeMask(UInt32)
        case oneOf(StringField, [String])
        /// Substring ignoring ASCII case; the needle is lower-cased.
        case contains(StringField, [UInt8])
        case string(StringField, Op, String, [UInt8])
        case number(NumberField, Op, Int64)
        case date(DateField, Op, Int64)
        case labels(LabelSelector)

        func holds(_ o: APIObject) -> Bool {
            switch self {
            case .phaseMask(let m): return m & (1 << UInt32(Keys.phaseIndex(o))) != 0
            case .typeMask(let m): return m & (1 << UInt32(Keys.typeIndex(o))) != 0
            case .oneOf(let f, let vs):
                let s = Keys.string(f, o)
                return vs.contains(s)
            case .contains(let f, let needle): return Bytes.contains(Keys.string(f, o), needle, foldCase: true)
            case .string(let f, let op, let v, let vb):
                let s = Keys.string(f, o)
                switch op {
                case .contains: return Bytes.contains(s, vb, foldCase: false)
                case .notContains: return !Bytes.contains(s, vb, foldCase: false)
                case .prefix: return Bytes.hasPrefix(s, vb)
                case .suffix: return Bytes.hasSuffix(s, vb)
                default: return op.holds(s, v)
                }
            case .number(let f, let op, let n): return op.holds(Keys.number(f, o), n)
            case .date(let f, let op, let t):
                guard let d = Keys.date(f, o) else { return op == .ne }
                return op.holds(d, t)
            case .labels(let s): return s.matches(o.object.meta.labels)
            }
        }
    }

    /// Field reads of an object; non-workloads read as empty.
    enum Keys {
        static func phaseIndex(_ o: APIObject) -> Int {
            guard case .workload(let s)? = o.status else { return 0 }
            switch s.phase { case .pending: return 0; case .running: return 1; case .succeeded: return 2; case .failed: return 3; case .stopped: return 4; case .updating: return 5 }
        }
        static func typeIndex(_ o: APIObject) -> Int {
            guard case .workload(let w) = o.object.spec else { return 0 }
            switch w.type { case .pytorchJob: return 0; case .mpiJob: return 1; case .job: return 2; case .deployment: return 3; case .statefulSet: return 4; case .authoring: return 5 }
        }
        static func string(_ f: StringField, _ o: APIObject) -> String {
            switch f {
            case .name: return o.object.meta.name
            case .namespace: return o.object.meta.namespace
            case .user: return o.object.meta.annotations[APIObject.submitterAnnotation] ?? ""
            case .queue:
                guard case .workload(let w) = o.object.spec else { return "" }
                return w.queue
            case .description:
                guard case .workload(let w) = o.object.spec else { return "" }
                return w.description
            }
        }
        static func number(_ f: NumberField, _ o: APIObject) -> Int64 {
            guard case .workload(let w) = o.object.spec else { return 0 }
            switch f {
            case .priority: return Int64(w.priority)
            case .gpus: return w.totalGPUs
            case .replicas: return Int64(w.replicas)
            }
        }
        static func date(_ f: DateField, _ o: APIObject) -> Int64? {
            switch f {
            case .createdAt: return o.object.meta.creationTimestamp.seconds
            case .startedAt:
                guard case .workload(let s)? = o.status else { return nil }
                return s.startTime?.seconds
            case .completedAt:
                guard case .workload(let s)? = o.status else { return nil }
                return s.endTime?.seconds
            }
        }
    }
}

/// Byte-level string tests (no allocation, ASCII case folding).
enum Bytes {
    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

    /// Whether `needle` occurs in `s`; with `foldCase` the needle must be lower-case already.
    static func contains(_ s: String, _ needle: [UInt8], foldCase: Bool) -> Bool {
        if needle.isEmpty { return true }
        var s = s
        return s.withUTF8 { h in
            let n = needle.count
            guard h.count >= n else { return false }
            let first = needle[0]
            var i = 0
            while i + n <= h.count {
                let c = foldCase ? lower(h[i]) : h[i]
                if c == first {
                    var j = 1
                    while j < n, (foldCase ? lower(h[i + j]) : h[i + j]) == needle[j] { j += 1 }
                    if j == n { return true }
                }
                i += 1
            }
            return false
        }
    }
    static func hasPrefix(_ s: String, _ p: [UInt8]) -> Bool {
        var s = s
        return s.withUTF8 { h in h.count >= p.count && h.prefix(p.count).elementsEqual(p) }
    }
    static func hasSuffix(_ s: String, _ p: [UInt8]) -> Bool {
        var s = s
        return s.withUTF8 { h in h.count >= p.count && h.suffix(p.count).elementsEqual(p) }
    }
}

/// Orders matched items and selects the first `count` (a bounded heap when that is a small
/// part of them, a full sort otherwise).
struct Sorter {
    let items: [APIObject]
    let field: WorkloadQuery.SortField
    let descending: Bool

    struct Entry { var index: Int32; var key: Int64; var has: Bool }

    func top(_ matched: [Int32], count k: Int) -> [Int32] {
        guard k > 0, !matched.isEmpty else { return [] }
        var entries = matched.map { i in
            let (key, has) = numericKey(items[Int(i)])
            return Entry(index: i, key: key, has: has)
        }
        let less = self.less
        if k * 4 < entries.count {
            // Max-heap of the k smallest so far.
            var heap: [Entry] = []
            heap.reserveCapacity(k)
            for e in entries {
                if heap.count < k {
                    heap.append(e)
                    var c = heap.count - 1
                    while c > 0 { let p = (c - 1) / 2; if less(heap[p], heap[c]) { heap.swapAt(p, c); c = p } else { break } }
                } else if less(e, heap[0]) {
                    heap[0] = e
                    var p = 0
                    while true {
                        let l = 2 * p + 1, r = l + 1
                        var m = p
                        if l < heap.count, less(heap[m], heap[l]) { m = l }
                        if r < heap.count, less(heap[m], heap[r]) { m = r }
                        if m == p { break }
                        heap.swapAt(p, m); p = m
                    }
                }
            }
            heap.sort(by: less)
            return heap.map(\.index)
        }
        entries.sort(by: less)
        return entries.prefix(k).map(\.index)
    }

    /// The key of numeric, date and enum sorts; `has` is false for a missing date.
    func numericKey(_ o: APIObject) -> (Int64, Bool) {
        typealias K = WorkloadQuery.Keys
        switch field {
        case .createdAt: return (o.object.meta.creationTimestamp.seconds, true)
        case .startedAt: return K.date(.startedAt, o).map { ($0, true) } ?? (0, false)
        case .completedAt: return K.date(.completedAt, o).map { ($0, true) } ?? (0, false)
        case .priority: return (K.number(.priority, o), true)
        case .gpus: return (K.number(.gpus, o), true)
        case .phase: return (Int64(Sorter.phaseRank[K.phaseIndex(o)]), true)
        case .type: return (Int64(Sorter.typeRank[K.typeIndex(o)]), true)
        default: return (0, true)
        }
    }

    /// Alphabetical rank of each phase / type (sorting by them reads alphabetically).
    static let phaseRank: [Int] = rank(WorkloadPhase.allCases.map(\.rawValue))
    static let typeRank: [Int] = rank(WorkloadType.allCases.map(\.rawValue))
    static func rank(_ names: [String]) -> [Int] {
        let sorted = names.sorted()
        return names.map { n in sorted.firstIndex(of: n) ?? 0 }
    }

    var less: (Entry, Entry) -> Bool {
        let items = items, field = field, descending = descending
        return { a, b in
            let oa = items[Int(a.index)], ob = items[Int(b.index)]
            var c = 0
            switch field {
            case .default: c = 0
            case .name: c = Sorter.compare(oa.object.meta.name, ob.object.meta.name)
            case .namespace: c = Sorter.compare(oa.object.meta.namespace, ob.object.meta.namespace)
            case .queue: c = Sorter.compare(WorkloadQuery.Keys.string(.queue, oa), WorkloadQuery.Keys.string(.queue, ob))
            case .user: c = Sorter.compare(WorkloadQuery.Keys.string(.user, oa), WorkloadQuery.Keys.string(.user, ob))
            default:
                if a.has != b.has { return a.has }   // missing values last, either order
                c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0
            }
            if c != 0 { return descending ? c > 0 : c < 0 }
            let n = Sorter.compare(oa.object.meta.namespace, ob.object.meta.namespace)
            if n != 0 { return n < 0 }
            return oa.object.meta.name < ob.object.meta.name
        }
    }

    static func compare(_ a: String, _ b: String) -> Int { a == b ? 0 : a < b ? -1 : 1 }
}

/// The opaque `continue` marker: base64url of `v1:<offset>:<signature of the query>`.
enum Marker {
    /// FNV-1a 64 of the query's canonical text: stable across restarts.
    static func signature(_ canonical: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in canonical.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    static func encode(offset: Int, signature: UInt64) -> String {
        Base64URL.encode(Array("v1:\(offset):\(String(signature, radix: 16))".utf8))
    }

    static func decode(_ marker: String, signature: UInt64) -> Int? {
        guard marker.utf8.count <= 200, let bytes = Base64.decode(marker), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let off = Int(parts[1]), off >= 0, off <= Int(Int32.max),
              let sig = UInt64(parts[2], radix: 16), sig == signature else { return nil }
        return off
    }
}

/// Base64url without padding (RFC 4648 §5).
enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i]), b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)]); out.append(alphabet[Int(v >> 12 & 63)])
            if i + 1 < bytes.count { out.append(alphabet[Int(v >> 6 & 63)]) }
            if i + 2 < bytes.count { out.append(alphabet[Int(v & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
