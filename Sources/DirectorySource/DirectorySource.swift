import Foundation
import Synchronization
import CShim
import GantryAPI
import YAMLCodec
import ControllerRuntime

/// Watches a spec directory (a GitOps checkout) and reports manifest changes to a sink.
///
/// Initial scan, then inotify over the whole tree (new subdirectories are watched, then
/// scanned), debounced; a full rescan on inotify queue overflow and every `resync` seconds.
/// Hidden files and directories and files not ending in .yaml/.yml/.json are ignored.
/// Unreadable, oversized, non-UTF-8, looping-symlink and malformed files are reported as
/// file problems; nothing in one file stops the others.
public final class DirectorySource: @unchecked Sendable {
    public struct Options: Sendable {
        public var maxFileSize: Int = 16 << 20
        public var debounce: Double = 0.01
        public var maxDebounce: Double = 0.1
        public var resync: Double = 300
        public var limits = YAMLLimits()
        /// What unknown fields are: errors (the object is invalid), warnings, or ignored.
        public var fieldValidation = FieldValidation.strict
        /// Directories never scanned or watched, whatever their names (the daemon's state
        /// directory when it lies inside the spec directory: its files are not manifests).
        public var excludeDirectories: [String] = []
        public init() {}
    }

    public let root: String
    let options: Options
    let sink: any ManifestSink
    let clock: any Clock
    // Owned by the watcher thread after start (and by the caller before it).
    var index = ManifestIndex()
    var fileStamps: [String: FileStamp] = [:]
    var watches: [Int32: String] = [:]          // wd -> relative dir ("" = root)
    var watchedDirs: [String: Int32] = [:]
    var inotifyFD: Int32 = -1
    let stopFlag = Atomic<Bool>(false)
    var thread: Thread?
    let done = DispatchSemaphore(value: 0)
    /// Microseconds spent reading and decoding files, and in the sink, during full scans.
    public let loadMicros = Atomic<Int>(0), applyMicros = Atomic<Int>(0)

    /// What tells a file changed without reading it.
    struct FileStamp: Equatable {
        var size: Int, mtime: Int, mtimeNsec: Int, inode: UInt64, dev: UInt64
        init(_ st: stat) {
            size = Int(st.st_size); mtime = Int(st.st_mtim.tv_sec); mtimeNsec = Int(st.st_mtim.tv_nsec)
            inode = UInt64(st.st_ino); dev = UInt64(st.st_dev)
        }
    }

    /// (device, inode) of `options.excludeDirectories` that exist at start.
    let excludedIDs: Set<[UInt64]>

    public init(root: String, options: Options = Options(), sink: any ManifestSink, clock: any Clock = SystemClock()) {
        excludedIDs = Set(options.excludeDirectories.compactMap { p -> [UInt64]? in
            var st = stat()
            return stat(p, &st) == 0 ? [UInt64(st.st_dev), UInt64(st.st_ino)] : nil
        })
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
        self.options = options
        self.sink = sink
        self.clock = clock
    }

    static func isManifestName(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json"))
    }

    func full(_ rel: String) -> String { rel.isEmpty ? root : root + "/" + rel }

    // MARK: start / stop

    /// Scans the tree and reports every object (synchronously), then starts watching.
    public func start(watch: Bool = true) throws {
        var st = stat()
        guard stat(root, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw SourceError("spec directory \(root) does not exist or is not a directory")
        }
        if watch {
            inotifyFD = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            if inotifyFD < 0 { Log.warn("inotify unavailable; relying on periodic resync", ["error": String(cString: strerror(errno))]) }
        }
        fullScan()
        guard watch else { return }
        let t = Thread { [self] in self.watchLoop(); self.done.signal() }
        t.name = "directory-source"
        thread = t
        t.start()
    }

    /// Makes a scan in progress (the initial one included) stop after its current chunk.
    public func cancel() { stopFlag.store(true, ordering: .relaxed) }
    /// True once `cancel` or `stop` was called: a scan may have ended before reading everything.
    public var cancelled: Bool { stopFlag.load(ordering: .relaxed) }

    public func stop() {
        stopFlag.store(true, ordering: .relaxed)
        if thread != nil { done.wait(); thread = nil }
        if inotifyFD >= 0 { close(inotifyFD); inotifyFD = -1 }
    }

    // MARK: scanning

    struct Walk {
        var files: [String] = []
        var dirs: [String] = []
        var problems: [(String, String)] = []
    }

    /// Walks from `rel`, adding watches to directories, and lists manifest files.
    func walk(from start: String) -> Walk {
        var w = Walk()
        var visited = Set<[UInt64]>()
        // The real ancestors of the start directory, so a symlink back up is seen as a cycle
        // even when only a subdirectory is walked.
        var startAncestors: [[UInt64]] = []
        if !start.isEmpty {
            var prefix = ""
            for comp in [""] + start.split(separator: "/").dropLast().map(String.init) {
                prefix = comp.isEmpty ? "" : (prefix.isEmpty ? comp : prefix + "/" + comp)
                var st = stat()
                if stat(full(prefix), &st) == 0 { startAncestors.append([UInt64(st.st_dev), UInt64(st.st_ino)]) }
            }
        }
        var stack: [(String, [[UInt64]])] = [(start, startAncestors)]
        while let (rel, ancestors) = stack.popLast() {
            let path = full(rel)
            var st = stat()
            guard stat(path, &st) == 0 else { w.problems.append((rel, "cannot read directory: \(String(cString: strerror(errno)))")); continue }
            let id = [UInt64(st.st_dev), UInt64(st.st_ino)]
            if ancestors.contains(id) { w.problems.append((rel, "directory symlink cycle: \(rel) leads back to one of its parent directories; not followed")); continue }
            if excludedIDs.contains(id) { continue }
            if !visited.insert(id).inserted { w.problems.append((rel, "directory reached twice through symlinks; scanned once only")); continue }
            w.dirs.append(rel)
            addWatch(rel)
            guard let dir = opendir(path) else { w.problems.append((rel, "cannot open directory: \(String(cString: strerror(errno)))")); continue }
            var entries: [(String, UInt8)] = []
            while let e = readdir(dir) {
                // baseAddress! cannot fail: d_name is a fixed-size array inside the entry.
                let name = withUnsafeBytes(of: e.pointee.d_name) { raw in String(cString: raw.bindMemory(to: CChar.self).baseAddress!) }
                if name.hasPrefix(".") { continue }
                entries.append((name, e.pointee.d_type))
            }
            closedir(dir)
            for (name, dtype) in entries.sorted(by: { $0.0 < $1.0 }) {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                var isDir = dtype == UInt8(DT_DIR)
                if dtype == UInt8(DT_LNK) || dtype == UInt8(DT_UNKNOWN) {
                    var cst = stat()
                    if stat(full(childRel), &cst) != 0 {
                        if errno == ELOOP { w.problems.append((childRel, "symlink loop: too many levels of symbolic links")) } else if DirectorySource.isManifestName(name) {
                            w.problems.append((childRel, "cannot follow symlink: \(String(cString: strerror(errno)))"))
                        }
                        continue
                    }
                    isDir = (cst.st_mode & S_IFMT) == S_IFDIR
                }
                if isDir { stack.append((childRel, ancestors + [id])) } else if DirectorySource.isManifestName(name) { w.files.append(childRel) }
            }
        }
        return w
    }

    func addWatch(_ rel: String) {
        guard inotifyFD >= 0, watchedDirs[rel] == nil else { return }
        let mask = UInt32(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK | IN_ATTRIB)
        let wd = inotify_add_watch(inotifyFD, full(rel), mask)
        if wd < 0 {
            Log.warn("cannot watch directory; changes there are seen at the next resync", ["dir": full(rel), "error": String(cString: strerror(errno))])
            return
        }
        if let old = watches[wd], old != rel { watchedDirs[old] = nil }
        watches[wd] = rel
        watchedDirs[rel] = wd
    }

    /// Reads and decodes one file, or reports why it could not.
    func load(_ rel: String) -> (ManifestFile, FileStamp?) {
        DirectorySource.readFile(path: full(rel), display: rel, options: options)
    }

    /// Reads and decodes one manifest file outside any watch (for `gantry validate`).
    public static func readManifest(path: String, display: String, options: Options = Options()) -> ManifestFile {
        readFile(path: path, display: display, options: options).0
    }

    static func readFile(path: String, display rel: String, options: Options) -> (ManifestFile, FileStamp?) {
        var result = ManifestFile(path: rel)
        func fail(_ m: String) -> (ManifestFile, FileStamp?) {
            result.fatal = FieldError(file: rel, line: 0, path: "", message: m); return (result, nil)
        }
        var st = stat()
        guard stat(path, &st) == 0 else { return fail(errno == ELOOP ? "symlink loop: too many levels of symbolic links" : "cannot read file: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return fail("not a regular file") }
        let stamp = FileStamp(st)
        if Int(st.st_size) > options.maxFileSize {
            return (ManifestFile(path: rel, fatalMessage: "file is \(st.st_size) bytes, over the \(options.maxFileSize)-byte limit (--max-file-size); not read"), stamp)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return fail("cannot read file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var n = 0
        while true {
            if n == bytes.count {
                if bytes.count > options.maxFileSize { return (ManifestFile(path: rel, fatalMessage: "file grew past the \(options.maxFileSize)-byte limit (--max-file-size)"), stamp) }
                bytes.append(contentsOf: repeatElement(0, count: max(4096, bytes.count)))
            }
            let r = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + n, $0.count - n) }
            if r < 0 { if errno == EINTR { continue }; return fail("cannot read file: \(String(cString: strerror(errno)))") }
            if r == 0 { break }
            n += r
        }
        bytes.removeSubrange(n...)
        return (ManifestFile.decode(path: rel, bytes: bytes, limits: options.limits, fieldValidation: options.fieldValidation), stamp)
    }

    /// Scans everything: reads new and changed files (in parallel), forgets vanished ones.
    func fullScan() {
        let w = walk(from: "")
        var changes: [ManifestChange] = []
        for (rel, msg) in w.problems {
            changes.append(.fileReport(file: rel, fatal: FieldError(file: rel, line: 0, path: "", message: msg), errors: [], warnings: []))
        }
        let present = Set(w.files)
        for gone in fileStamps.keys where !present.contains(gone) { changes += removeFile(gone) }
        for gone in index.paths() where !present.contains(gone) && fileStamps[gone] == nil { changes += index.remove(path: gone) }
        // Stat first; read only what changed.
        var toRead: [String] = []
        for rel in w.files {
            var st = stat()
            if stat(full(rel), &st) == 0, fileStamps[rel] == FileStamp(st) { continue }
            toRead.append(rel)
        }
        if !changes.isEmpty { sink.apply(changes) }
        // Read in path order (so the first declaration of a duplicate is seen first) and in
        // chunks, so reconciling starts early and decoded files do not pile up in memory.
        // While one chunk is indexed and applied (on this thread), the next is decoded (on
        // the others): applying is sequential, and would otherwise leave cores idle.
        toRead.sort()
        var start = 0
        func nextChunk() -> [String] {
            let chunk = Array(toRead[start..<min(toRead.count, start + 64)])
            start += chunk.count
            return chunk
        }
        let decodeAhead = DecodedChunk()
        let group = DispatchGroup()
        @Sendable func decode(_ chunk: [String]) -> [(ManifestFile, FileStamp?)] {
            let t0 = monotonicSeconds()
            let d = parallelMap(chunk) { self.load($0) }
            loadMicros.add(Int((monotonicSeconds() - t0) * 1e6), ordering: .relaxed)
            return d
        }
        var decoded = start < toRead.count && !stopFlag.load(ordering: .relaxed) ? decode(nextChunk()) : []
        while !decoded.isEmpty {
            let following = stopFlag.load(ordering: .relaxed) ? [] : nextChunk()
            if !following.isEmpty {
                DispatchQueue.global().async(group: group) { let d = decode(following); decodeAhead.files.withLock { $0 = d } }
            }
            let t1 = monotonicSeconds()
            let c = indexFiles(decoded)
            if !c.isEmpty { sink.apply(c) }
            applyMicros.add(Int((monotonicSeconds() - t1) * 1e6), ordering: .relaxed)
            group.wait()
            decoded = decodeAhead.files.withLock { d in let x = d; d = []; return x }
        }
    }

    /// The chunk decoded ahead, handed from the decoding threads to the scanning one.
    final class DecodedChunk: Sendable { let files = Mutex<[(ManifestFile, FileStamp?)]>([]) }

    /// Records decoded files' stamps and index entries; returns what changed.
    func indexFiles(_ decoded: [(ManifestFile, FileStamp?)]) -> [ManifestChange] {
        var changes: [ManifestChange] = []
        for (file, stamp) in decoded {
            fileStamps[file.path] = stamp
            changes += index.update(file)
        }
        return changes
    }

    /// Reads and decodes `files` in parallel, records their stamps, and returns what changed.
    func readFiles(_ files: [String]) -> [ManifestChange] {
        indexFiles(parallelMap(files, { self.load($0) }))
    }

    func removeFile(_ rel: String) -> [ManifestChange] {
        fileStamps[rel] = nil
        return index.remove(path: rel)
    }

    // MARK: watching

    func watchLoop() {
        var dirty = Set<String>()
        var dirtyDirs = Set<String>()
        var firstDirty = 0.0, lastEvent = 0.0
        // A manifest renamed into place is complete (the atomic-replace idiom of editors,
        // GitOps tools and `kubectl`-like writers): read at once, not after the debounce.
        var movedIn = false
        var nextResync = monotonicSeconds() + options.resync
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while !stopFlag.load(ordering: .relaxed) {
            var timeout = 200
            if !dirty.isEmpty || !dirtyDirs.isEmpty {
                let now = monotonicSeconds()
                let due = min(lastEvent + options.debounce, firstDirty + options.maxDebounce)
                // At most the idle poll (the loop recomputes), so a huge --debounce cannot overflow Int32.
                timeout = Int(max(0, min(200, (due - now) * 1000)))
            }
            if inotifyFD >= 0 {
                var pfd = pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, Int32(timeout))
            } else {
                usleep(UInt32(timeout * 1000))
            }
            var overflow = false
            if inotifyFD >= 0 {
                while true {
                    let n = buf.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    let now = monotonicSeconds()
                    if dirty.isEmpty && dirtyDirs.isEmpty { firstDirty = now }
                    lastEvent = now
                    buf.withUnsafeBytes { raw in
                        var off = 0
                        while off + 16 <= n {
                            let ev = raw.loadUnaligned(fromByteOffset: off, as: inotify_event.self)
                            let len = Int(ev.len)
                            var name = ""
                            if len > 0 {
                                let p = raw.baseAddress!.advanced(by: off + 16).assumingMemoryBound(to: CChar.self)
                                name = String(cString: p)
                            }
                            off += 16 + len
                            let mask = ev.mask
                            if mask & UInt32(IN_Q_OVERFLOW) != 0 { overflow = true; continue }
                            guard let dirRel = watches[ev.wd] else { continue }
                            if mask & UInt32(IN_IGNORED) != 0 {
                                watches[ev.wd] = nil
                                if watchedDirs[dirRel] == ev.wd { watchedDirs[dirRel] = nil }
                                continue
                            }
                            if mask & (UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)) != 0 { dirtyDirs.insert(dirRel); continue }
                            if name.isEmpty || name.hasPrefix(".") { continue }
                            let rel = dirRel.isEmpty ? name : dirRel + "/" + name
                            if mask & UInt32(IN_ISDIR) != 0 { dirtyDirs.insert(rel) } else if DirectorySource.isManifestName(name) {
                                dirty.insert(rel)
                                if mask & UInt32(IN_MOVED_TO) != 0 { movedIn = true }
                            } else if mask & (UInt32(IN_CREATE) | UInt32(IN_MOVED_TO)) != 0 {
                                // Could be a symlink to a directory.
                                dirtyDirs.insert(rel)
                            }
                        }
                    }
                }
            }
            if overflow {
                Log.warn("inotify queue overflowed; rescanning the spec directory")
                dirty.removeAll(); dirtyDirs.removeAll(); movedIn = false
                fullScan()
                continue
            }
            let now = monotonicSeconds()
            if (!dirty.isEmpty || !dirtyDirs.isEmpty) && (movedIn || now >= lastEvent + options.debounce || now >= firstDirty + options.maxDebounce) {
                movedIn = false
                process(files: dirty, dirs: dirtyDirs)
                dirty.removeAll(); dirtyDirs.removeAll()
            }
            if now >= nextResync {
                nextResync = now + options.resync
                fullScan()
            }
        }
    }

    /// Re-reads changed files; for changed directories, drops what vanished and scans what appeared.
    func process(files: Set<String>, dirs: Set<String>) {
        var changes: [ManifestChange] = []
        var toRead = Set<String>()
        for d in dirs {
            var st = stat()
            let exists = stat(full(d), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            // Files known under this directory that are gone.
            let prefix = d.isEmpty ? "" : d + "/"
            for known in Array(fileStamps.keys) where known.hasPrefix(prefix) || d.isEmpty {
                if access(full(known), F_OK) != 0 { changes += removeFile(known) }
            }
            if exists {
                let w = walk(from: d)
                for (rel, msg) in w.problems { changes.append(.fileReport(file: rel, fatal: FieldError(file: rel, line: 0, path: "", message: msg), errors: [], warnings: [])) }
                toRead.formUnion(w.files)
            } else {
                for rel in watchedDirs.keys where rel == d || (!d.isEmpty && rel.hasPrefix(prefix)) { watchedDirs[rel] = nil }
            }
        }
        for f in files {
            var st = stat()
            if lstat(full(f), &st) != 0 && stat(full(f), &st) != 0 {
                if fileStamps[f] != nil || index.paths().contains(f) { changes += removeFile(f) }
                continue
            }
            toRead.insert(f)
        }
        changes += readFiles(toRead.sorted())
        if !changes.isEmpty { sink.apply(changes) }
    }
}

/// A start-up error of the directory source.
public struct SourceError: Error, CustomStringConvertible { public let description: String; init(_ d: String) { description = d } }

extension ManifestFile {
    init(path: String, fatalMessage: String) {
        self.init(path: path)
        fatal = FieldError(file: path, line: 0, path: "", message: fatalMessage)
    }
}
