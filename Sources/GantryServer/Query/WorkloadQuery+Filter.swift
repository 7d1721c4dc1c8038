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

        func holds(_ ix: WorkloadIndex, _ i: Int) -> Bool {
            switch self {
            case .phaseMask(let m): return m & (1 << UInt32(ix.phase[i])) != 0
            case .typeMask(let m): return m & (1 << UInt32(ix.type[i])) != 0
            case .oneOf(let f, let vs): return vs.contains(ix.string(f, i))
            case .contains(let f, let needle): return Bytes.contains(ix.string(f, i), needle, foldCase: true)
            case .string(let f, let op, let v, let vb):
                let s = ix.string(f, i)
                switch op {
                case .contains: return Bytes.contains(s, vb, foldCase: false)
                case .notContains: return !Bytes.contains(s, vb, foldCase: false)
                case .prefix: return Bytes.hasPrefix(s, vb)
                case .suffix: return Bytes.hasSuffix(s, vb)
                default: return op.holds(s, v)
                }
            case .number(let f, let op, let n): return op.holds(ix.number(f, i), n)
            case .date(let f, let op, let t):
                let d = ix.date(f, i)
                guard d != WorkloadIndex.missing else { return op == .ne }
                return op.holds(d, t)
            case .labels(let s): return s.matches { ix.label(i, $0) }
            }
        }

        /// The index columns this clause reads.
        var columns: WorkloadIndex.Columns {
            switch self {
            case .phaseMask: return .phase
            case .typeMask: return .type
            case .oneOf(let f, _), .contains(let f, _), .string(let f, _, _, _): return WorkloadQuery.column(f)
            case .number(let f, _, _): return f == .priority ? .priority : f == .gpus ? .gpus : .replicas
            case .date(let f, _, _): return WorkloadQuery.column(f)
            case .labels: return .labels
            }
        }
    }

    static func column(_ f: StringField) -> WorkloadIndex.Columns {
        switch f { case .name, .namespace: []; case .queue: .queue; case .user: .user; case .description: .description }
    }
    static func column(_ f: DateField) -> WorkloadIndex.Columns {
        switch f { case .createdAt: .created; case .startedAt: .started; case .completedAt: .completed }
    }

    /// The columns the filters and the sort read.
    var neededColumns: WorkloadIndex.Columns {
        var c: WorkloadIndex.Columns = []
        for clause in clauses { c.formUnion(clause.columns) }
        switch sortBy {
        case .default, .name, .namespace: break
        case .createdAt: c.insert(.created)
        case .startedAt: c.insert(.started)
        case .completedAt: c.insert(.completed)
        case .phase: c.insert(.phase)
        case .type: c.insert(.type)
        case .queue: c.insert(.queue)
        case .priority: c.insert(.priority)
        case .gpus: c.insert(.gpus)
        case .user: c.insert(.user)
        }
        return c
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

/// Orders matched rows of an index and selects the first `count` (a bounded heap when that
/// is a small part of them, a full sort otherwise).
struct Sorter {
    let ix: WorkloadIndex
    let field: WorkloadQuery.SortField
    let descending: Bool

    struct Entry { var index: Int32; var key: Int64 }

    func top(_ matched: [Int32], count k: Int) -> [Int32] {
        guard k > 0, !matched.isEmpty else { return [] }
        var entries = matched.map { i in Entry(index: i, key: numericKey(Int(i))) }
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

    /// The key of numeric, date and enum sorts (`WorkloadIndex.missing` for a missing date).
    func numericKey(_ i: Int) -> Int64 {
        switch field {
        case .createdAt: return ix.created[i]
        case .startedAt: return ix.started[i]
        case .completedAt: return ix.completed[i]
        case .priority: return ix.priority[i]
        case .gpus: return ix.gpus[i]
        case .phase: return Int64(Sorter.phaseRank[Int(ix.phase[i])])
        case .type: return Int64(Sorter.typeRank[Int(ix.type[i])])
        default: return 0
        }
    }

    /// Alphabetical rank of each phase / type (sorting by them reads alphabetically).
    static let phaseRank: [Int] = rank(WorkloadPhase.allCases.map(\.rawValue))
    static let typeRank: [Int] = rank(WorkloadType.allCases.map(\.rawValue))
    static func rank(_ names: [String]) -> [Int] {
        let sorted = names.sorted()
        return names.map { n in sorted.firstIndex(of: n) ?? 0 }
    }

    func less(_ a: Entry, _ b: Entry) -> Bool {
        let ia = Int(a.index), ib = Int(b.index)
        var c = 0
        switch field {
        case .default: c = 0
        case .name: c = Sorter.compare(ix.name[ia], ix.name[ib])
        case .namespace: c = Sorter.compare(ix.namespace[ia], ix.namespace[ib])
        case .queue: c = Sorter.compare(ix.queue[ia], ix.queue[ib])
        case .user: c = Sorter.compare(ix.user[ia], ix.user[ib])
        default:
            let ma = a.key == WorkloadIndex.missing, mb = b.key == WorkloadIndex.missing
            if ma != mb { return mb }   // missing values last, either order
            c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0
        }
        if c != 0 { return descending ? c > 0 : c < 0 }
        let n = Sorter.compare(ix.namespace[ia], ix.namespace[ib])
        if n != 0 { return n < 0 }
        return ix.name[ia] < ix.name[ib]
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

    static func decode(_ marker: String, signature: UInt64) -> Int? { decodeWithRevision(marker, signature: signature)?.offset }

    /// The offset and, for a marker of a list that had one, the first page's resourceVersion
    /// (`v2:OFFSET:SIGNATURE:RV`): every page of one list answers as of that revision, and a
    /// page asked for once the store has moved on is refused (410), as a Kubernetes server
    /// refuses a continue token whose snapshot is gone.
    static func decodeWithRevision(_ marker: String, signature: UInt64) -> (offset: Int, revision: Int64?)? {
        guard marker.utf8.count <= 200, let bytes = Base64.decode(marker), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3 && parts[0] == "v1" || parts.count == 4 && parts[0] == "v2",
              let off = Int(parts[1]), off >= 0, off <= Int(Int32.max),
              let sig = UInt64(parts[2], radix: 16), sig == signature else { return nil }
        guard parts.count == 4 else { return (off, nil) }
        guard let rv = Int64(parts[3]), rv >= 0 else { return nil }
        return (off, rv)
    }

    /// A marker of this module's with the list's resourceVersion added (v2); others unchanged.
    static func withRevision(_ marker: String, _ revision: Int64) -> String {
        guard let bytes = Base64.decode(marker), let text = String(validating: bytes, as: UTF8.self) else { return marker }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3 || parts.count == 4 else { return marker }
        return Base64URL.encode(Array("v2:\(parts[1]):\(parts[2]):\(revision)".utf8))
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
