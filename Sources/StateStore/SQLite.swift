import CSQLite
import Foundation
import Synchronization

/// An SQLite error with the statement or operation that failed.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}

/// A thin owner of one SQLite connection. Not thread-safe by itself: each user keeps one
/// connection on one thread (the writer thread, or a CLI command). `@unchecked Sendable`
/// because it wraps a C handle that its owner confines to a single thread at a time.
public final class SQLiteDB: @unchecked Sendable {
    let db: OpaquePointer
    public let path: String

    public init(path: String, readOnly: Bool) throws {
        var h: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let rc = sqlite3_open_v2(path, &h, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let h else {
            let msg = h.map { String(cString: sqlite3_errmsg($0)) } ?? "rc \(rc)"
            if let h { sqlite3_close(h) }
            throw StoreError("cannot open state database \(path): \(msg); \(SQLiteDB.advice)")
        }
        db = h
        self.path = path
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close_v2(db) }

    /// What to do with a state database that cannot be used.
    static let advice = "move it away (the daemon then starts afresh from the manifests) or pass a different --state-dir"

    /// The error for a failed call: a damaged file or one that is not a database names the
    /// file and what to do; anything else keeps SQLite's message and the statement.
    func failure(_ rc: Int32, _ message: String, in sql: String? = nil) -> StoreError {
        let primary = rc & 0xFF
        if primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB {
            return StoreError("\(path) is damaged or is not a Gantry state database (\(message)); \(SQLiteDB.advice)")
        }
        return StoreError(sql.map { "\(message) (in: \($0.prefix(80)))" } ?? message)
    }

    public func exec(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let m = err.map { String(cString: $0) } ?? "error"
            sqlite3_free(err)
            throw failure(rc, m, in: sql)
        }
    }

    /// Whether a table of that name exists (a database written by an older version may lack one).
    public func tableExists(_ name: String) throws -> Bool {
        let st = try prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").bind([.text(name)])
        return try st.step()
    }

    public func prepare(_ sql: String) throws -> Statement {
        var s: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &s, nil)
        guard rc == SQLITE_OK, let s else {
            throw failure(rc == SQLITE_OK ? SQLITE_ERROR : rc, String(cString: sqlite3_errmsg(db)), in: sql)
        }
        return Statement(s, owner: self)
    }

    public var changes: Int { Int(sqlite3_changes(db)) }

    /// Bytes of page cache this connection holds now.
    public var cacheBytes: Int {
        var cur: Int32 = 0, high: Int32 = 0
        return sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_USED, &cur, &high, 0) == SQLITE_OK ? Int(cur) : 0
    }

    /// Makes the call running on this connection (a statement, a checkpoint's copy) stop soon
    /// with SQLITE_INTERRUPT; safe from any thread while the connection is open.
    public func interrupt() { sqlite3_interrupt(db) }

    /// How long a call waits for a lock another connection holds before it fails with BUSY.
    public func setBusyTimeout(milliseconds: Int32) { sqlite3_busy_timeout(db, milliseconds) }

    /// Whether a statement of this connection is part-way through its rows, which keeps a read
    /// transaction (a WAL snapshot) open.
    public var hasActiveStatement: Bool {
        var s = sqlite3_next_stmt(db, nil)
        while let st = s {
            if sqlite3_stmt_busy(st) != 0 { return true }
            s = sqlite3_next_stmt(db, st)
        }
        return false
    }

    /// Resets every statement still part-way through its rows and ends an open transaction,
    /// so this connection holds no snapshot that would keep the WAL from being checkpointed.
    public func endReads() {
        var s = sqlite3_next_stmt(db, nil)
        while let st = s {
            if sqlite3_stmt_busy(st) != 0 { sqlite3_reset(st) }
            s = sqlite3_next_stmt(db, st)
        }
        if sqlite3_get_autocommit(db) == 0 { _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil) }
    }

    public enum CheckpointMode: Sendable { case passive, truncate }

    /// One WAL checkpoint on this connection. `log`: frames in the log; `checkpointed`: frames
    /// copied into the database; `busy`: a TRUNCATE could not take the locks it needs (the
    /// writer, or a reader still using the log) within the busy timeout.
    public func checkpoint(_ mode: CheckpointMode) throws -> (busy: Bool, log: Int, checkpointed: Int) {
        var log: Int32 = -1, done: Int32 = -1
        let rc = sqlite3_wal_checkpoint_v2(db, nil, mode == .passive ? SQLITE_CHECKPOINT_PASSIVE : SQLITE_CHECKPOINT_TRUNCATE, &log, &done)
        if rc == SQLITE_BUSY { return (true, Int(log), Int(done)) }
        guard rc == SQLITE_OK else { throw failure(rc, String(cString: sqlite3_errmsg(db))) }
        return (false, Int(log), Int(done))
    }

    /// Records in `counter` the number of frames in the WAL after each commit on this
    /// connection (SQLite's WAL hook). The caller keeps `counter` alive as long as this connection.
    public func trackWALFrames(_ counter: WALFrameCounter) {
        let hook: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 = { ctx, _, _, frames in
            if let ctx {
                let c = Unmanaged<WALFrameCounter>.fromOpaque(ctx).takeUnretainedValue()
                // Fewer frames than last time: the log was started over.
                if Int(frames) < c.frames.load(ordering: .relaxed) { c.restarts.add(1, ordering: .relaxed) }
                c.frames.store(Int(frames), ordering: .relaxed)
            }
            return SQLITE_OK
        }
        _ = sqlite3_wal_hook(db, hook, Unmanaged.passUnretained(counter).toOpaque())
    }
}

/// The frame count of a WAL as its writer last committed it.
public final class WALFrameCounter: Sendable {
    public let frames = Atomic<Int>(0)
    /// Times the log was seen started over (a commit with fewer frames than the one before).
    public let restarts = Atomic<Int>(0)
    public init() {}
}

/// A prepared statement; reset and rebound for each use.
public final class Statement {
    let s: OpaquePointer
    let db: OpaquePointer
    let owner: SQLiteDB
    init(_ s: OpaquePointer, owner: SQLiteDB) { self.s = s; self.db = owner.db; self.owner = owner }
    deinit { sqlite3_finalize(s) }

    @discardableResult
    public func bind(_ values: [SQLValue]) -> Statement {
        sqlite3_reset(s)
        sqlite3_clear_bindings(s)
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            switch v {
            case .null: sqlite3_bind_null(s, idx)
            case .int(let x): sqlite3_bind_int64(s, idx, x)
            case .double(let x): sqlite3_bind_double(s, idx, x)
            case .text(let t):
                var t = t
                t.withUTF8 { b in
                    b.withMemoryRebound(to: CChar.self) { c in
                        if let base = c.baseAddress { _ = g_sqlite_bind_text(s, idx, base, Int32(c.count)) } else { _ = g_sqlite_bind_text(s, idx, "", 0) }
                    }
                }
            }
        }
        return self
    }

    /// Binds without building an argument array (hot write loops): call `reset()` first.
    public func reset() { sqlite3_reset(s) }
    public func bind(_ idx: Int32, _ v: Int64) { sqlite3_bind_int64(s, idx, v) }
    public func bind(_ idx: Int32, _ v: Double) { sqlite3_bind_double(s, idx, v) }
    public func bindNull(_ idx: Int32) { sqlite3_bind_null(s, idx) }
    public func bind(_ idx: Int32, _ t: String) {
        var t = t
        t.withUTF8 { b in
            b.withMemoryRebound(to: CChar.self) { c in
                if let base = c.baseAddress { _ = g_sqlite_bind_text(s, idx, base, Int32(c.count)) } else { _ = g_sqlite_bind_text(s, idx, "", 0) }
            }
        }
    }

    /// Runs to completion (for writes).
    public func run() throws {
        let rc = sqlite3_step(s)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw owner.failure(rc, String(cString: sqlite3_errmsg(db))) }
        sqlite3_reset(s)
    }

    /// Steps once; true when a row is available.
    public func step() throws -> Bool {
        let rc = sqlite3_step(s)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw owner.failure(rc, String(cString: sqlite3_errmsg(db)))
    }

    public func int(_ col: Int32) -> Int64 { sqlite3_column_int64(s, col) }
    public func double(_ col: Int32) -> Double { sqlite3_column_double(s, col) }
    public func isNull(_ col: Int32) -> Bool { sqlite3_column_type(s, col) == SQLITE_NULL }
    public func text(_ col: Int32) -> String {
        guard let p = sqlite3_column_text(s, col) else { return "" }
        let n = Int(sqlite3_column_bytes(s, col))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }
    public func bytes(_ col: Int32) -> [UInt8] {
        guard let p = sqlite3_column_text(s, col) else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, col))))
    }
}

public enum SQLValue: Sendable {
    case null, int(Int64), double(Double), text(String)
}
