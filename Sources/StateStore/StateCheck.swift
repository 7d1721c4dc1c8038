import Foundation

/// Start-up checks of a state directory: a file that is not a Gantry state database (another
/// program's SQLite file, a damaged or foreign file) or one written by a newer Gantry is
/// refused with a message that names the file and says what to do, before anything reads or
/// writes it.
enum StateCheck {
    /// Makes `dir` and its missing parents; says which component is in the way when one is
    /// not a directory or cannot be created.
    static func makeDirectory(_ dir: String, stateDir: String? = nil) throws {
        let stateDir = stateDir ?? dir
        var st = stat()
        if stat(dir, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw StoreError("cannot use state directory \(stateDir): \(dir) is not a directory; pass --state-dir a directory (it is created when missing)")
            }
            return
        }
        let parent = (dir as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != dir { try makeDirectory(parent, stateDir: stateDir) }
        if mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw StoreError("cannot create state directory \(stateDir): \(dir): \(String(cString: strerror(errno))); pass --state-dir a directory this user can write")
        }
    }

    /// Checks that `db` is a Gantry state database this version reads. An empty database is
    /// accepted when `allowEmpty` (the daemon creates the schema in it).
    static func verify(_ db: SQLiteDB, allowEmpty: Bool) throws {
        var tables = Set<String>()
        let st = try db.prepare("SELECT name FROM sqlite_master WHERE type='table'")
        while try st.step() { tables.insert(st.text(0)) }
        if tables.isEmpty {
            if allowEmpty { return }
            throw StoreError("\(db.path) holds no Gantry state yet: start the daemon (gantry run --state-dir \((db.path as NSString).deletingLastPathComponent)) or pass a different --state-dir")
        }
        let needed: Set<String> = ["meta", "objects", "statuses", "events"]
        guard needed.isSubset(of: tables) else {
            let found = tables.sorted().prefix(5).joined(separator: ", ")
            throw StoreError("\(db.path) is not a Gantry state database (it holds tables \(found)); \(SQLiteDB.advice)")
        }
        let v = try db.prepare("SELECT value FROM meta WHERE key='schema_version'")
        guard try v.step(), let version = Int(v.text(0)) else {
            throw StoreError("\(db.path) is not a Gantry state database (no schema version); \(SQLiteDB.advice)")
        }
        guard version <= Schema.version else {
            throw StoreError("\(db.path) was written by a newer Gantry (state schema \(version); this one reads up to \(Schema.version)): run that version, or \(SQLiteDB.advice)")
        }
    }
}
