import GantryAPI
import YAMLCodec

/// Which object each file declares and which declaration is in force. Pure bookkeeping with
/// no I/O: feed it each file's latest decode (or its removal) and it returns the changes.
///
/// Rules: the same identity in two files -> the file first in path order stays in force and
/// a `.duplicate` is reported. A file that fails to parse keeps its previous objects. A file
/// with a document that could not be identified keeps the objects it no longer lists (no
/// deletions are inferred from it). A document whose spec became invalid keeps its previous
/// valid spec in force; an object that was never valid is upserted with its errors.
public struct ManifestIndex: Sendable {
    /// A file's objects sorted by key: an array costs about a third of a dictionary of the
    /// same objects (a file of 100 keeps 256 hash buckets), and 1,000 such files are a large
    /// directory's index.
    struct FileEntry {
        private(set) var items: [(key: ObjectKey, object: ManifestObject)] = []
        init() {}
        init(_ objects: [ObjectKey: ManifestObject]) {
            items = objects.map { (key: $0.key, object: $0.value) }.sorted { $0.key < $1.key }
        }
        subscript(key: ObjectKey) -> ManifestObject? {
            var lo = 0, hi = items.count
            while lo < hi {
                let mid = lo + (hi - lo) / 2
                if items[mid].key < key { lo = mid + 1 } else { hi = mid }
            }
            return lo < items.count && items[lo].key == key ? items[lo].object : nil
        }
    }
    var files: [String: FileEntry] = [:]
    /// Paths declaring each key, sorted; the first is in force.
    var definitions: [ObjectKey: Paths] = [:]

    /// Sorted paths; the usual single one is kept without an array of its own.
    struct Paths {
        var first: String?
        var rest: [String] = []
        var count: Int { first == nil ? 0 : 1 + rest.count }
        var all: [String] { first.map { [$0] + rest } ?? [] }
        mutating func remove(_ path: String) {
            var a = all
            a.removeAll { $0 == path }
            first = a.first
            rest = Array(a.dropFirst())
        }
        mutating func insert(_ path: String) {
            guard let f = first else { first = path; return }
            var a = [f] + rest
            let i = a.firstIndex { $0 > path } ?? a.count
            a.insert(path, at: i)
            first = a[0]
            rest = Array(a.dropFirst())
        }
    }

    public init() {}

    public var objectCount: Int { definitions.count }
    public var fileCount: Int { files.count }
    public func object(_ key: ObjectKey) -> ManifestObject? { definitions[key]?.first.flatMap { files[$0]?[key] } }
    public func paths() -> [String] { Array(files.keys) }

    /// Applies the latest decode of one file.
    public mutating func update(_ file: ManifestFile) -> [ManifestChange] {
        var changes: [ManifestChange] = [.fileReport(file: file.path, fatal: file.fatal, errors: file.errors, warnings: file.warnings)]
        if file.fatal != nil { return changes }   // keep what the file declared before
        let old = files[file.path] ?? FileEntry()
        var new: [ObjectKey: ManifestObject] = [:]
        var extraErrors: [FieldError] = []
        for var obj in file.objects {
            let key = obj.key
            if let first = new[key] {
                extraErrors.append(FieldError(file: file.path, line: obj.source.line, path: "metadata.name",
                                              message: "\(key.kind.rawValue) \(key.qualifiedName) is already declared at line \(first.source.line) of this file; this document is ignored"))
                continue
            }
            if !obj.invalid.isEmpty, let prev = old[key], prev.invalid.isEmpty {
                changes.append(.invalidChangeKept(key, errors: obj.invalid))
                obj = prev
            }
            new[key] = obj
        }
        if !extraErrors.isEmpty {
            changes[0] = .fileReport(file: file.path, fatal: nil, errors: file.errors + extraErrors, warnings: file.warnings)
        }
        if file.incomplete {
            for (k, v) in old.items where new[k] == nil { new[k] = v }
        }
        // What is in force before this file's change, for the keys it touches.
        var before: [ObjectKey: ManifestObject?] = [:]
        for (k, _) in old.items where new[k] == nil { before[k] = object(k) }
        for (k, v) in new where old[k] != v { before[k] = object(k) }
        files[file.path] = FileEntry(new)
        for (k, _) in old.items where new[k] == nil { definitions[k]?.remove(file.path) }
        for k in new.keys where old[k] == nil { definitions[k, default: Paths()].insert(file.path) }
        resolve(before, into: &changes)
        return changes
    }

    /// Forgets a file that was deleted.
    public mutating func remove(path: String) -> [ManifestChange] {
        guard let entry = files[path] else { return [] }
        var before: [ObjectKey: ManifestObject?] = [:]
        for (k, _) in entry.items { before[k] = object(k) }
        files[path] = nil
        var changes: [ManifestChange] = [.fileReport(file: path, fatal: nil, errors: [], warnings: [])]
        for (k, _) in entry.items { definitions[k]?.remove(path) }
        resolve(before, into: &changes)
        return changes
    }

    /// Reports what changed for each key, given what was in force before.
    private mutating func resolve(_ before: [ObjectKey: ManifestObject?], into changes: inout [ManifestChange]) {
        for (k, prev) in before.sorted(by: { $0.key < $1.key }) {
            let defs = definitions[k] ?? Paths()
            guard let owner = defs.first, let obj = files[owner]?[k] else {
                definitions[k] = nil
                if prev != nil { changes.append(.delete(k)) }
                continue
            }
            if defs.count > 1 {
                changes.append(.duplicate(k, files: defs.all.compactMap { files[$0]?[k]?.source }))
            }
            if prev != obj { changes.append(.upsert(obj)) }
        }
    }
}
