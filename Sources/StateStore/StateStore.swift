import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime

/// The daemon's state directory: an SQLite database in WAL mode (`state.db`) that only the
/// daemon writes, guarded by an exclusive `flock` on `gantry.lock` so a second daemon on the
/// same directory refuses to start.
///
/// Writes are buffered and coalesced per key, then committed by a single writer thread in one
/// transaction per batch; `flush()` commits synchronously. A `kill -9` loses at most the
/// batch in flight, which the daemon recomputes from the manifests on restart.
public final class StateStore: EventSink, @unchecked Sendable {
    public let directory: String
    let db: SQLiteDB
    private var lockFD: Int32
    // Pending writes, guarded by `cond`.
    private let cond = NSCondition()
    private var pendingObjectKeys = Set<ObjectKey>()
    private var pendingStatus = Set<ObjectKey>()
    /// Bulk status changes (queue positions): written after the others, in bounded slices,
    /// so a status that matters now never waits behind thousands of them.
    private var pendingLow = Set<ObjectKey>()
    static let lowBatch = 512
    /// Bulk statuses a batch writes before it stops for an urgent write.
    static let lowMinimum = 16
    private var pendingDeletes = Set<ObjectKey>()
    private var pendingEvents: [String: EventRecord] = [:]
    private var pendingSQL: [(String, [SQLValue])] = []
    private var writing = false
    /// Batches finished (committed, empty or failed), under `cond`.
    private var settled: UInt64 = 0
    private var stopped = false
    private var writerThread: Thread?
    /// Set while a status, object or delete is pending: a batch of bulk statuses (the
    /// low-priority lane) stops early and commits what it wrote, so the urgent write waits
    /// for a few rows, not for hundreds.
    private let urgentPending = Atomic<Bool>(false)
    /// Set by the checkpointer when its checkpoint left frames the writer appended meanwhile:
    /// the writer copies those few itself between batches, so the log is complete in the
    /// database when the next transaction starts and SQLite reuses it from its start (cut to
    /// `journal_size_limit`). Without this a busy writer never lets the log be reused, the file
    /// grows until a TRUNCATE checkpoint, and that holds the writer off for hundreds of ms.
    let catchUpRequested = Atomic<Int>(StateStore.noCatchUp)
    static let noCatchUp = 0, catchUpWhenFree = 1, catchUpNow = 2
    /// Checkpoints the writer ran between batches (see `catchUpRequested`).
    public let writerCheckpoints = Atomic<Int>(0)
    /// Whether the writer is copying the log in an interruptible catch-up checkpoint; an urgent
    /// write interrupts it (`interruptCatchUp`). Guarded so that no interrupt reaches the
    /// writer's connection once the copy returned (it would abort the batch that follows).
    private let catchUpInFlight = Mutex<Bool>(false)
    /// Interrupts the writer's catch-up copy, if one runs: the edit's status goes first.
    private func interruptCatchUp() {
        catchUpInFlight.withLock { if $0 { db.interrupt() } }
    }
    /// Frames of the current log the checkpointer has copied into the database (its last count).
    private let copiedFrames = Atomic<Int>(0)
    /// `walFrames.restarts` when that copy began: a log started over since has copied nothing.
    private let copiedEpoch = Atomic<Int>(0)
    /// Records a copy of `frames` frames of the log as it was at `epoch`.
    private func noteCopied(_ frames: Int, epoch: Int) {
        copiedFrames.store(frames, ordering: .relaxed)
        copiedEpoch.store(epoch, ordering: .relaxed)
    }
    /// Frames of the current log not yet copied into the database.
    private var uncopiedFrames: Int {
        let frames = walFrames.frames.load(ordering: .relaxed)
        guard copiedEpoch.load(ordering: .relaxed) == walFrames.restarts.load(ordering: .relaxed) else { return frames }
        let copied = copiedFrames.load(ordering: .relaxed)
        return frames >= copied ? frames - copied : frames
    }
    /// When the writer last brought back a log past the limit (writer thread only).
    private var lastForcedCatchUp = -Double.infinity
    private var flushedGeneration: UInt64 = 0
    private var requestedGeneration: UInt64 = 0
    /// Called after each committed batch with the keys whose status was written (tests, benchmarks).
    public let onCommit: (@Sendable ([ObjectKey]) -> Void)?
    public let batchDelay: Double
    /// Seconds spent building and committing batches, and batches committed (for logs).
    let lastCommitEnd = Mutex<Double>(0)
    public let commitSeconds = Atomic<Int>(0), commits = Atomic<Int>(0), buildMicros = Atomic<Int>(0)
    public let checkpointMicros = Atomic<Int>(0), checkpoints = Atomic<Int>(0)
    /// TRUNCATE checkpoints run, those readers kept from finishing, and the longest one in
    /// microseconds (the longest the writer was held off by a checkpoint).
    public let truncations = Atomic<Int>(0), busyTruncations = Atomic<Int>(0), maxTruncateMicros = Atomic<Int>(0)
    public let checkpointPolicy: CheckpointPolicy
    /// Frames in the WAL after the writer's last commit.
    let walFrames = WALFrameCounter()
    private var frameBytes = 8192 + 24

    public static func databasePath(_ dir: String) -> String { dir + "/state.db" }
    static let traceOn = getenv("GANTRY_STORE_TRACE") != nil
    static func trace(_ s: @autoclosure () -> String) {
        guard traceOn else { return }
        let line = String(format: "TRACE %.4f ", monotonicSeconds()) + s() + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
    /// Bytes of SQLite page cache the writer's connection holds (grows with the database up to `cache_size`).
    public var writerCacheBytes: Int { db.cacheBytes }
    // Statements prepared once; used only by whoever holds `writing`.
    private var upsertObject: Statement?
    private var upsertStatus: Statement?
    private var upsertStatusKnown: Statement?
    private var upsertEvent: Statement?
    /// `enqueueSQL`'s statements by their text (a handful of fixed ones in practice; emptied
    /// past `otherStatementsKept`, so a caller building SQL per call cannot grow it).
    private var otherStatements: [String: Statement] = [:]
    static let otherStatementsKept = 64
    private lazy var indexWriter = IndexWriter(db: db)
    /// Keys in a batch from which its rows are built in chunks on another thread, and the
    /// chunks' size (set before the first write; tests lower them).
    nonisolated(unsafe) var pipelineMinimum = BatchSource.pipelineMinimum, pipelineChunk = BatchSource.chunkSize
    /// Change-feed rows kept (set before the first write; tests lower it).
    nonisolated(unsafe) public var changesKept: Int64 = Schema.changesKept

    private func statement(_ slot: inout Statement?, _ sql: String) throws -> Statement {
        if let s = slot { return s }
        let s = try db.prepare(sql)
        slot = s
        return s
    }

    /// Most object rows, and most statuses, written in one transaction.
    static let maxBatch = 8192

    /// Opens (creating) the state directory for the daemon. Throws with a clear message if
    /// another daemon holds the lock.
    public init(directory: String, batchDelay: Double = 0.002, checkpointPolicy: CheckpointPolicy = .standard,
                onCommit: (@Sendable ([ObjectKey]) -> Void)? = nil) throws {
        self.directory = directory
        self.checkpointPolicy = checkpointPolicy
        self.batchDelay = batchDelay
        self.onCommit = onCommit
        try StateCheck.makeDirectory(directory)
        let lockPath = directory + "/gantry.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buf = [UInt8](repeating: 0, count: 64)
            let n = read(fd, &buf, 63)
            let pid = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            Glibc.close(fd)
            throw StoreError("another gantry daemon (pid \(pid)) is already using state directory \(directory); stop it first or pass a different --state-dir")
        }
        ftruncate(fd, 0)
        let pidText = "\(getpid())\n"
        _ = pidText.withCString { pwrite(fd, $0, strlen($0), 0) }
        lockFD = fd
        do {
            db = try SQLiteDB(path: StateStore.databasePath(directory), readOnly: false)
            try StateCheck.verify(db, allowEmpty: true)
            try db.exec("PRAGMA page_size=8192")
            try db.exec("PRAGMA journal_mode=WAL")
            // Checkpoints run on their own connection and thread so commits never wait for one.
            try db.exec("PRAGMA wal_autocheckpoint=0")
            // 16 MiB of page cache: the writer inserts in key order, so a bigger cache mostly
            // holds pages it will not touch again (32 MiB cost 16 MB of RSS at 100,000 workloads).
            try db.exec("PRAGMA cache_size=-16384")
            // A log reused from its start is cut back to `journalSizeLimit` only by the writer's
            // own checkpoint (`catchUpCheckpoint`), never in a batch an edit's status waits for.
            try db.exec("PRAGMA journal_size_limit=-1")
            try db.exec("PRAGMA synchronous=NORMAL")
            try db.exec("PRAGMA foreign_keys=OFF")
            try db.exec("BEGIN IMMEDIATE")
            for s in Schema.statements { try db.exec(s) }
            // A database written before the workload index existed gets it built now.
            if try !db.hasWorkloadIndex() { try IndexWriter(db: db).rebuild() }
            // An initial load stopped (a crash) while its rows held provisional phases: those
            // with no status go back to "", the phase of a workload without status.
            let flag = try db.prepare("SELECT 1 FROM meta WHERE key=?")
            flag.bind(1, StateStore.provisionalFlag)
            let flagged = try flag.step()
            flag.reset()
            if flagged {
                try IndexWriter(db: db).clearProvisionalPhases(StateStore.provisionalPhase)
                // Its writes left no rows in the change feed: readers must read everything.
                try IndexWriter(db: db).feedGap()
                try db.exec("DELETE FROM meta WHERE key='\(StateStore.provisionalFlag)'")
            }
            try db.exec("INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', '\(Schema.version)')")
            try db.exec("COMMIT")
            let ps = try db.prepare("PRAGMA page_size")
            if try ps.step(), ps.int(0) > 0, ps.int(0) <= 65536 { frameBytes = Int(ps.int(0)) + 24 }
            db.trackWALFrames(walFrames)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { if lockFD >= 0 { Glibc.close(lockFD) } }

    // MARK: reading at start-up (daemon thread, before the writer starts)

    /// Every stored object row (for restoring generations, uids, creation times and statuses).
    public func loadObjects() throws -> [ObjectRow] {
        try StateReader.rows(try db.prepare(StateReader.objectSelect))
    }

    /// Stored `gantry stop`/`resume` overrides.
    public func loadOverrides() throws -> [(ObjectKey, SuspendOverride)] {
        let st = try db.prepare("SELECT kind, namespace, name, value, generation, at FROM overrides WHERE field='suspend'")
        var out: [(ObjectKey, SuspendOverride)] = []
        while try st.step() {
            guard let kind = Kind(rawValue: st.text(0)) else { continue }
            let key = ObjectKey(kind, namespace: st.text(1), name: st.text(2))
            out.append((key, SuspendOverride(suspend: st.text(3) == "true", generation: st.int(4), at: Timestamp(seconds: Int64(exactly: st.double(5).rounded(.down)) ?? 0), by: st.text(3) == "true" ? "gantry stop" : "gantry resume")))
        }
        return out
    }

    // MARK: buffered writes

    /// Supplies the current row of a key at commit time (nil: the object is gone). Set
    /// before `startWriter`; lets callers mark objects dirty without building JSON themselves.
    nonisolated(unsafe) public var objectProvider: (@Sendable (ObjectKey) -> ObjectRow?)?

    /// Marks an object as changed; the writer stores what `objectProvider` returns then.
    public func markObjectDirty(_ key: ObjectKey) {
        defer { interruptCatchUp() }
        cond.lock(); defer { cond.unlock() }
        pendingDeletes.remove(key)
        pendingObjectKeys.insert(key)
        wakeUrgentLocked()
    }

    /// Supplies the current status JSON of a key at commit time (nil: no status to write).
    /// Set before `startWriter`. Encoding at commit time means the newest status always wins.
    nonisolated(unsafe) public var statusProvider: (@Sendable (ObjectKey) -> String?)?

    /// Marks a key's status as changed; the writer stores what `statusProvider` returns then.
    public func markStatusDirty(_ key: ObjectKey) {
        cond.lock()
        pendingStatus.insert(key)
        // Held for the end of an initial load: nothing to wake the writer for (the first
        // pass marks 100,000, and each wake was a futex call and a context switch).
        let held = holdStatuses
        if !held { wakeUrgentLocked() }
        cond.unlock()
        if !held { interruptCatchUp() }
    }

    /// Many statuses at once (queue positions): the low-priority lane.
    public func markStatusesDirty(_ keys: [ObjectKey]) {
        guard !keys.isEmpty else { return }
        cond.lock(); defer { cond.unlock() }
        pendingLow.formUnion(keys)
        if !holdStatuses { wakeLocked() }
    }

    public func deleteObject(_ key: ObjectKey) {
        defer { interruptCatchUp() }
        cond.lock(); defer { cond.unlock() }
        pendingObjectKeys.remove(key)
        pendingStatus.remove(key)
        pendingLow.remove(key)
        pendingDeletes.insert(key)
        wakeUrgentLocked()
    }

    /// Any other statement, run in order inside the next batch.
    public func enqueueSQL(_ sql: String, _ args: [SQLValue]) {
        cond.lock(); defer { cond.unlock() }
        pendingSQL.append((sql, args))
        wakeLocked()
    }

    public func write(_ event: EventRecord) {
        cond.lock(); defer { cond.unlock() }
        pendingEvents[event.name] = event
        wakeLocked()
    }

    /// A number that stays the same while every write handed to the store is committed and
    /// none is being written (nil while any is pending or a batch is in progress): a reader
    /// that reads it before and after a query, equal both times, read every write marked
    /// before the first call, and only from one committed state.
    /// Also nil while an initial load writes without change-feed rows (until the batch that
    /// ends it, normally before the daemon is ready; later only when that batch failed, a
    /// full disk): the feed's head then says nothing about what changed.
    public func settledGeneration() -> UInt64? {
        cond.lock(); defer { cond.unlock() }
        return writing || hasPendingLocked || provisionalFlagSet ? nil : settled
    }

    private func wakeLocked() { requestedGeneration &+= 1; cond.broadcast() }
    /// Wakes the writer for an object, status or delete: a batch of bulk statuses in progress
    /// stops early for it (the caller interrupts a catch-up copy once it has unlocked).
    private func wakeUrgentLocked() { urgentPending.store(true, ordering: .relaxed); wakeLocked() }

    /// Starts the writer thread that commits pending writes in batches, and the checkpointer
    /// that folds the write-ahead log back into the database in the background.
    public func startWriter() {
        let t = Thread { [self] in self.writerLoop() }
        t.name = "state-writer"
        writerThread = t
        t.start()
        let c = Thread { [self] in self.checkpointLoop() }
        c.name = "state-checkpoint"
        c.start()
    }

    /// The size of the `-wal` file (0 when there is none).
    public func walFileBytes() -> Int {
        var st = stat()
        return stat(StateStore.databasePath(directory) + "-wal", &st) == 0 ? Int(st.st_size) : 0
    }

    /// Folds the log back into the database as `checkpointPolicy` says (see there). PASSIVE
    /// checkpoints never block the writer; a TRUNCATE one is run only past the size limit, after
    /// a PASSIVE one has copied the bulk, so it holds the writer off only for what was written
    /// meanwhile and for the readers of older snapshots (at most `busyMillis`).
    private func checkpointLoop() {
        guard let conn = try? SQLiteDB(path: StateStore.databasePath(directory), readOnly: false) else { return }
        var lastAnalyze = -Double.infinity, lastIndexTry = -Double.infinity
        let policy = checkpointPolicy
        conn.setBusyTimeout(milliseconds: policy.busyMillis)
        // A connection finds the database in WAL mode only when it first reads it; until then a
        // checkpoint on it does nothing.
        try? conn.exec("SELECT count(*) FROM sqlite_master")
        try? conn.exec("PRAGMA analysis_limit=\(StateStore.analysisLimit)")
        var busySince: Double?      // when the last TRUNCATE that readers kept from finishing ran
        var overLimitSince: Double?   // when the log file was first seen past the limit
        while true {
            cond.lock()
            let stop = stopped
            cond.unlock()
            if stop { return }
            let now = monotonicSeconds()
            let idle = now - lastCommitEnd.withLock { $0 } > 0.5
            let frames = walFrames.frames.load(ordering: .relaxed)
            // The log as this copy finds it (started over since the last: nothing of it copied).
            let epoch = walFrames.restarts.load(ordering: .relaxed)
            var action = policy.decide(walFileBytes: walFileBytes(), pendingBytes: uncopiedFrames * frameBytes, idle: idle,
                                       sinceBusyTruncate: busySince.map { now - $0 })
            // Past the limit the writer brings the log back itself (`catchUpCheckpoint`, cheap);
            // a TRUNCATE (which holds the writer off) only when that did not within `retrySeconds`.
            if action == .truncate {
                if overLimitSince == nil { overLimitSince = now }
                if let t = overLimitSince, now - t < policy.retrySeconds { action = .passive }
            } else if walFileBytes() <= policy.limitBytes {
                overLimitSince = nil
            }
            if action != .none {
                let c0 = monotonicSeconds()
                var r = try? conn.checkpoint(.passive)
                StateStore.trace(String(format: "ckpt passive %.1f ms", (monotonicSeconds() - c0) * 1000) + " action \(action) log \(r?.log ?? -1) ckpt \(r?.checkpointed ?? -1) wal \(walFileBytes())")
                // What the writer appended during the copy (a checkpoint copies the log as it
                // was when it began): copied again here while it is a lot, and the last few
                // frames by the writer itself (`catchUpRequested`).
                var rounds = 0
                while let p = r, p.checkpointed >= 0, walFrames.frames.load(ordering: .relaxed) - p.checkpointed > policy.catchUpFrames, rounds < 3 {
                    rounds += 1
                    guard let again = try? conn.checkpoint(.passive), again.checkpointed > p.checkpointed else { break }   // a reader holds the rest
                    r = again
                }
                if let r, r.checkpointed >= 0 {
                    noteCopied(r.checkpointed, epoch: epoch)
                    // Bulk statuses paced on the copy may go on.
                    cond.lock(); cond.broadcast(); cond.unlock()
                    // Asked once the log is past `journal_size_limit` (so the file stays about
                    // that size and cutting it back is cheap), and insisted on past the limit
                    // (still after an urgent write waiting, unless past twice the limit).
                    let logBytes = walFrames.frames.load(ordering: .relaxed) * frameBytes
                    if action != .truncate && walFrames.frames.load(ordering: .relaxed) > r.checkpointed && logBytes >= policy.journalSizeLimit {
                        // The writer's copy starts with an fsync of the log: what was appended since
                        // this copy began is flushed here first, so that fsync (tens of ms on a
                        // busy disk) is not run on the writer while an edit may arrive.
                        syncLogFile()
                        catchUpRequested.store(walFileBytes() > policy.limitBytes ? StateStore.catchUpNow : StateStore.catchUpWhenFree, ordering: .relaxed)
                    }
                }
                if action == .truncate {
                    let t0 = monotonicSeconds()
                    let r = try? conn.checkpoint(.truncate)
                    let micros = Int((monotonicSeconds() - t0) * 1e6)
                    StateStore.trace("ckpt TRUNCATE \(micros / 1000) ms busy \(r?.busy ?? true)")
                    truncations.add(1, ordering: .relaxed)
                    maxTruncateMicros.max(micros, ordering: .relaxed)
                    if let r, !r.busy {
                        busySince = nil
                        // The log is empty: all of it counts as copied until the next commit
                        // (whose smaller count starts a new epoch).
                        noteCopied(walFrames.frames.load(ordering: .relaxed), epoch: walFrames.restarts.load(ordering: .relaxed))
                    } else {
                        busySince = monotonicSeconds()
                        busyTruncations.add(1, ordering: .relaxed)
                    }
                }
                checkpointMicros.add(Int((monotonicSeconds() - c0) * 1e6), ordering: .relaxed)
                checkpoints.add(1, ordering: .relaxed)
            }
            // The workload index's statistics let SQLite pick the index a page query scans
            // (a filter that matches nearly everything, or one that matches a few rows).
            // Refreshed when writes pause, at most every 5 minutes (tens of ms at 100,000).
            // Indexes an initial load could not build (a full disk at its end): again when
            // writes pause, at most every 30 s, until they exist.
            if idle && bulkIndexes.load(ordering: .relaxed) && !initialLoad.load(ordering: .relaxed) && now - lastIndexTry > indexRetrySeconds {
                lastIndexTry = now
                do { try buildBulkIndexes() } catch { Log.warn("cannot build the workload index's indexes; retrying in 30 s", ["error": "\(error)"]) }
            }
            // Statistics the end of a load just gathered in full (before ready) count as fresh:
            // a sampled ANALYZE right after would replace them and take the write lock as the
            // first edits arrive.
            if freshStatistics.exchange(false, ordering: .relaxed) { lastAnalyze = monotonicSeconds() }
            if idle && monotonicSeconds() - lastAnalyze > 300 {
                let ta = monotonicSeconds()
                try? conn.exec("ANALYZE wl_index")
                lastAnalyze = monotonicSeconds()
                StateStore.trace(String(format: "ANALYZE %.1f ms", (lastAnalyze - ta) * 1000))
            }
            Thread.sleep(forTimeInterval: policy.intervalSeconds)
        }
    }

    private var hasPendingLocked: Bool {
        unheldPendingLocked || !pendingStatus.isEmpty || !pendingLow.isEmpty || endOfHoldPendingLocked
    }

    /// An initial load's hold was released and the batch that ends it (the meta flag deleted,
    /// the feed's gap written) has not committed: due even with nothing else to write.
    private var endOfHoldPendingLocked: Bool { provisionalFlagSet && !holdStatuses }

    /// Objects, deletes, events or SQL pending: what a load's hold does not hold back.
    private var unheldPendingLocked: Bool {
        !pendingObjectKeys.isEmpty || !pendingDeletes.isEmpty || !pendingEvents.isEmpty || !pendingSQL.isEmpty
    }

    /// Bulk statuses (queue positions) are all that is pending, outside a load's hold.
    private var onlyBulkPendingLocked: Bool {
        !holdStatuses && !pendingLow.isEmpty && pendingStatus.isEmpty && !unheldPendingLocked && !endOfHoldPendingLocked
    }

    /// What the writer thread may take now: statuses wait while an initial load holds them,
    /// and bulk statuses alone while the log is far ahead of the database (`lowLanePaused`).
    private var writerHasWorkLocked: Bool {
        if holdStatuses { return unheldPendingLocked }
        return onlyBulkPendingLocked ? !lowLanePaused : hasPendingLocked
    }

    /// Whether bulk statuses (queue positions) wait: the log holds `passiveBytes` or more not
    /// yet copied into the database. The checkpointer copies them meanwhile (on its own
    /// connection, beside the writer) and wakes the writer. Unpaced, 100 priority edits
    /// rewrote about 110,000 positions (a page each) faster than they were copied: the log
    /// grew past the limit, and the writer's own copy of it (tens of ms) then ran in front of
    /// an edit's status (issue 12's edit p99).
    /// A reader keeping the checkpointer from copying holds them back at most
    /// `lowLaneMaxPause` seconds: then one batch goes.
    private var lowLanePaused: Bool {
        guard uncopiedLogBytes >= checkpointPolicy.passiveBytes else { return false }
        return Int(monotonicSeconds() * 1e6) - lastLowBatchMicros.load(ordering: .relaxed) < Int(lowLaneMaxPause * 1e6)
    }
    /// (Tests set more, so a slow machine's copy does not let an extra batch through.)
    nonisolated(unsafe) var lowLaneMaxPause = 1.0
    /// Log bytes appended since the last checkpoint's copy.
    var uncopiedLogBytes: Int { uncopiedFrames * frameBytes }
    /// When a batch last wrote bulk statuses (monotonic microseconds).
    private let lastLowBatchMicros = Atomic<Int>(0)

    /// Set by `beginBulkLoad` until the next `flush`: statuses stay pending, so the load's
    /// 100,000 first statuses go into one batch in key order. Taken as the first pass makes
    /// them, each batch inserted rows all over the (empty) status table and wrote most of its
    /// pages again: twice the log and twice the checkpoint copying. Guarded by `cond`.
    private var holdStatuses = false

    private func writerLoop() {
        // A write that keeps failing (a full disk) is logged once, then every 30 s, not ten
        // times a second; a line says when writes succeed again.
        var failures = RepeatedFailureLog(interval: 30)
        while true {
            cond.lock()
            while !writerHasWorkLocked && !stopped {
                // Paced bulk statuses: the checkpointer's copy wakes the writer; a timeout too.
                if pendingLow.isEmpty || holdStatuses { cond.wait() } else { _ = cond.wait(until: Date(timeIntervalSinceNow: checkpointPolicy.intervalSeconds)) }
            }
            let backlog = pendingObjectKeys.count + pendingStatus.count
            if stopped && !writerHasWorkLocked { cond.unlock(); return }
            cond.unlock()
            // A short pause lets writes that arrive together share a transaction; with a
            // backlog there is no reason to wait.
            if batchDelay > 0 && backlog < StateStore.maxBatch { Thread.sleep(forTimeInterval: batchDelay) }
            // Paced bulk statuses go on right after the checkpointer's copy: the log is
            // started over first, while that copy left little to do. Held back while they
            // streamed, the request waited until the file passed the limit, and the long copy
            // it then forced (25-40 ms) met an edit's status.
            cond.lock()
            let bulkOnly = onlyBulkPendingLocked
            cond.unlock()
            if bulkOnly && catchUpRequested.load(ordering: .relaxed) == StateStore.catchUpWhenFree { catchUpCheckpoint(beforeBulk: true) }
            do {
                try commitBatch(paced: true)
                if let n = failures.success() { Log.info("state store writes succeed again", ["failedAttempts": String(n)]) }
                catchUpCheckpoint()
            } catch {
                if let suppressed = failures.failure(now: monotonicSeconds()) {
                    var fields = ["error": "\(error)", "directory": directory]
                    if suppressed > 0 { fields["suppressed"] = String(suppressed) }
                    Log.error("state store write failed; retrying (logged at most every 30 s while it fails)", fields)
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }

    /// The writer's share of a checkpoint (`catchUpRequested`): between batches, never in front
    /// of an urgent write (see `catchUpWaitsForUrgent`). Internal for tests.
    /// `beforeBulk`: called before a batch of bulk statuses alone (paced on the checkpoint,
    /// see `lowLanePaused`), whose waiting does not hold the request back.
    func catchUpCheckpoint(beforeBulk: Bool = false) {
        var request = catchUpRequested.load(ordering: .relaxed)
        // A log file past the limit (a bulk load keeps the writer busy, so the checkpointer's
        // requests find no gap): the writer brings it back itself, at most once per checkpointer
        // interval (a reader holding the log makes the attempt useless until it is done).
        let now = monotonicSeconds()
        let walBytes = walFileBytes()
        var forced = false
        if request != StateStore.catchUpNow && now - lastForcedCatchUp >= checkpointPolicy.intervalSeconds
            && walFrames.frames.load(ordering: .relaxed) > 0 && walBytes > checkpointPolicy.limitBytes {
            request = StateStore.catchUpNow
            forced = true
        }
        guard request != StateStore.noCatchUp else { return }
        // Asked for when free: not while bulk statuses stream either (their batches follow one
        // another, and an edit arriving during the copy's fsyncs waits for them); the log
        // passing the limit makes the request insistent.
        if request == StateStore.catchUpWhenFree && !beforeBulk {
            cond.lock()
            let lowWaiting = !pendingLow.isEmpty
            cond.unlock()
            if lowWaiting { return }
        }
        // Outside an initial load, only a copy of a few frames: what the checkpointer has not
        // copied yet would otherwise be copied here, on the writer, for up to 100 ms while an
        // edit's status arrives behind it. The checkpointer copies the bulk and asks again.
        let uncopied = uncopiedFrames
        if !initialLoad.load(ordering: .relaxed) && !StateStore.catchUpIsSmall(uncopiedFrames: uncopied, policy: checkpointPolicy) {
            StateStore.trace("catch-up skipped: \(uncopied) frames uncopied")
            if !forced { catchUpRequested.store(StateStore.noCatchUp, ordering: .relaxed) }
            return
        }
        // An edit's status waiting goes first: the copy takes tens of ms (two fsyncs) under a
        // stream of bulk statuses, and it was the edits' worst wait (issue 12's p99). The request
        // stays and is served after the urgent batch, which is small; only a file past twice
        // the limit (urgent writes that never leave a gap) is brought back in front of them.
        if urgentPending.load(ordering: .relaxed) && !StateStore.catchUpWaitsForUrgent(walFileBytes: walBytes, policy: checkpointPolicy) {
            if forced { catchUpRequested.store(StateStore.catchUpNow, ordering: .relaxed) }
            return
        }
        if forced { lastForcedCatchUp = now }
        cond.lock()
        if writing { cond.unlock(); return }   // a flush() is committing on another thread
        writing = true
        cond.unlock()
        defer { cond.lock(); writing = false; cond.broadcast(); cond.unlock() }
        catchUpRequested.store(StateStore.noCatchUp, ordering: .relaxed)
        copyLogAndStartOver(urgentMayWait: request == StateStore.catchUpNow,
                            interruptible: !StateStore.catchUpWaitsForUrgent(walFileBytes: walFileBytes(), policy: checkpointPolicy))
    }

    /// Flushes the `-wal` file's written pages to disk (any descriptor of the file does).
    private func syncLogFile() {
        let fd = open(StateStore.databasePath(directory) + "-wal", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fdatasync(fd)
        Glibc.close(fd)
    }

    /// Whether a catch-up checkpoint's copy is short enough to run on the writer between batches.
    static func catchUpIsSmall(uncopiedFrames: Int, policy: CheckpointPolicy) -> Bool {
        uncopiedFrames <= policy.catchUpFrames * 4
    }

    /// Whether a catch-up checkpoint runs although an urgent write waits: only for a log file
    /// past twice the limit.
    static func catchUpWaitsForUrgent(walFileBytes: Int, policy: CheckpointPolicy) -> Bool {
        walFileBytes / 2 > policy.limitBytes
    }

    /// A PASSIVE checkpoint on the writer's connection (the caller is the only writer); when it
    /// copied everything, a small write makes SQLite start the log over and cut the file back
    /// to `journal_size_limit` here, rather than in the next batch (an urgent one).
    /// `interruptible`: an urgent write marked meanwhile stops the copy (what it copied stays
    /// copied; the checkpointer asks again).
    @discardableResult
    private func copyLogAndStartOver(urgentMayWait: Bool, interruptible: Bool) -> Bool {
        let tc0 = monotonicSeconds()
        if interruptible {
            catchUpInFlight.withLock { $0 = true }
            // Marked between the check and here: not started at all.
            if urgentPending.load(ordering: .relaxed) { catchUpInFlight.withLock { $0 = false }; return false }
        }
        let epoch = walFrames.restarts.load(ordering: .relaxed)
        let r = try? db.checkpoint(.passive)
        if interruptible { catchUpInFlight.withLock { $0 = false } }
        StateStore.trace(String(format: "writer catch-up %.1f ms log %d ckpt %d urgent %d wal %d", (monotonicSeconds() - tc0) * 1000, r?.log ?? -1, r?.checkpointed ?? -1, urgentPending.load(ordering: .relaxed) ? 1 : 0, walFileBytes()))
        writerCheckpoints.add(1, ordering: .relaxed)
        if let r, r.checkpointed >= 0 { noteCopied(r.checkpointed, epoch: epoch) }
        if let r, !r.busy, r.log == r.checkpointed, urgentMayWait || !urgentPending.load(ordering: .relaxed) {
            try? db.exec("PRAGMA journal_size_limit=\(checkpointPolicy.journalSizeLimit)")
            try? db.exec("INSERT OR REPLACE INTO meta(key, value) VALUES('log_reused_at', '\(Int(SystemClock().now()))')")
            try? db.exec("PRAGMA journal_size_limit=-1")
        }
        // BUSY: the checkpointer was copying at the same moment (log and count then -1).
        if let r, !r.busy { return true }
        return false
    }

    /// Commits everything pending now, on the calling thread.
    public func flush() throws {
        cond.lock()
        if holdStatuses {
            // The writer takes over what this flush leaves (should it fail).
            holdStatuses = false
            wakeLocked()
        }
        cond.unlock()
        try commitOnThisThread { $0.hasPendingLocked }
    }

    /// Commits batches on the calling thread while `more` (read with `cond` locked, no batch
    /// in flight) says there is something to take.
    private func commitOnThisThread(while more: (StateStore) -> Bool) throws {
        while true {
            cond.lock()
            while writing { cond.wait() }
            let any = more(self)
            cond.unlock()
            if !any { return }
            try commitBatch()
        }
    }

    /// Runs `body` on the calling thread as the only writer (no batch is in flight meanwhile).
    private func exclusively<T>(_ body: () throws -> T) rethrows -> T {
        cond.lock()
        while writing { cond.wait() }
        writing = true
        cond.unlock()
        defer { cond.lock(); writing = false; cond.broadcast(); cond.unlock() }
        return try body()
    }

    /// Whether the workload index's secondary indexes wait for `endBulkLoad` (or, when that
    /// failed, for the checkpointer to build them once writes pause).
    private let bulkIndexes = Atomic<Bool>(false)
    /// Whether an initial load into an empty store runs (batches uncapped, in key order).
    /// Cleared by `endBulkLoad` whatever its outcome, so a failed index build or flush at
    /// the end of a load does not leave every later batch uncapped.
    private let initialLoad = Atomic<Bool>(false)
    /// Whether an initial load runs (for tests).
    var isInitialLoad: Bool { initialLoad.load(ordering: .relaxed) }
    /// Whether the workload index's secondary indexes are still to be built (for tests).
    var indexesPending: Bool { bulkIndexes.load(ordering: .relaxed) }
    /// How often the checkpointer retries building indexes an initial load could not build.
    nonisolated(unsafe) var indexRetrySeconds: Double = 30
    /// Set when the indexes were built and their statistics gathered (for tests).
    let analyzed = Atomic<Bool>(false)
    /// Set when the end of a load gathered the index's statistics: the checkpointer's periodic
    /// ANALYZE starts its 5 minutes from then.
    private let freshStatistics = Atomic<Bool>(false)
    /// Rows of each index the periodic ANALYZE reads (`PRAGMA analysis_limit`): it takes the
    /// write lock, so it stays a few ms at any size.
    static let analysisLimit = 1000

    /// Starts an initial load. Into a store with no workload yet, the workload index's
    /// secondary indexes are dropped and built once by `endBulkLoad`: one sort each instead
    /// of a scattered insert per workload, and a second one per index when its first status
    /// (the phase) lands in a later batch than its object. Readers meanwhile get the same
    /// answers, by scanning. A crash before `endBulkLoad` leaves the tables consistent and the
    /// next open builds the indexes (`Schema.statements`). Returns whether they were dropped.
    @discardableResult
    public func beginBulkLoad() throws -> Bool {
        try exclusively {
            let any = try db.prepare("SELECT 1 FROM wl_index LIMIT 1")
            guard try !any.step() else { return false }
            try inTransaction {
                for ix in Schema.workloadIndexes { try db.exec("DROP INDEX IF EXISTS \(ix.name)") }
                // Rows are written with provisional phases from now until the hold ends (a
                // crash before: the next open puts those without status back to "").
                try db.exec("INSERT OR REPLACE INTO meta(key, value) VALUES('\(StateStore.provisionalFlag)', '1')")
            }
            bulkIndexes.store(true, ordering: .relaxed)
            initialLoad.store(true, ordering: .relaxed)
            cond.lock(); holdStatuses = true; provisionalFlagSet = true; cond.unlock()
            return true
        }
    }

    /// The middle of an initial load, once every object is handed to the store (the scan is
    /// over) and before the first statuses (held, see `holdStatuses`): commits the objects,
    /// then builds the workload index's indexes and their statistics. The daemon calls it
    /// while its workers reconcile, when this thread and the writer would otherwise wait.
    /// The statuses that follow change the indexed phase only where it differs from the
    /// provisional one the rows were written with (see `provisionalPhase`).
    public func indexLoadedObjects() throws {
        guard initialLoad.load(ordering: .relaxed) else { return }
        // Every object is about to get its first status (held): the set is sized once
        // instead of growing by doubling through 100,000 marks of the first pass.
        cond.lock()
        if holdStatuses { pendingStatus.reserveCapacity(pendingStatus.count + pendingObjectKeys.count) }
        cond.unlock()
        try commitOnThisThread { $0.writerHasWorkLocked }
        try buildBulkIndexes()
        indexedBeforeStatuses = true
    }

    /// Set when `indexLoadedObjects` built the indexes (and their statistics) while every
    /// phase was provisional: `endBulkLoad` gathers the phase index's statistics again.
    private var indexedBeforeStatuses = false

    /// The phase a workload's index row gets when its object is written while the load holds
    /// statuses: "pending", what the first pass gives every new workload but a suspended one
    /// (which its status then corrects). Written as "" instead, every one of the 100,000 first
    /// statuses moved its row in four indexes.
    static let provisionalPhase = "pending"
    /// Statuses per transaction when an initial load writes them (see `commitBatch`; tests
    /// set fewer).
    nonisolated(unsafe) var loadCommitRows = 16384
    /// From this many statuses in a batch, the keys of the stored objects are read at once
    /// rather than looked up row by row (see `commitBatch`; tests set fewer).
    nonisolated(unsafe) var existenceScanAbove = 4096

    /// The keys of every stored object (read in the batch's transaction).
    /// The stored objects' keys among `wanted`, in the objects index's order (SQLite's byte
    /// order of kind, namespace and name: the order the status table's B-tree is in). A large
    /// status batch takes its keys from this one read: it is both the existence check and the
    /// sort, which for 100,000 keys compared as Swift strings cost about 0.3 s.
    private func storedKeys(among wanted: Set<ObjectKey>) throws -> [ObjectKey] {
        let st = try db.prepare("SELECT kind, namespace, name FROM objects ORDER BY kind, namespace, name")
        var out: [ObjectKey] = []
        out.reserveCapacity(wanted.count)
        while try st.step() {
            guard let kind = Kind(rawValue: st.text(0)) else { continue }
            let k = ObjectKey(kind, namespace: st.text(1), name: st.text(2))
            if wanted.contains(k) { out.append(k) }
        }
        return out
    }
    /// Workload rows written with the provisional phase, and workload statuses written since
    /// the hold began (committed batches only; touched only by the batch in flight). When the
    /// hold ends with fewer statuses than provisional rows (a workload given no status, one
    /// deleted or written twice), rows still provisional without a status go back to "", the
    /// phase of a workload without status: one pass over the phase index. In a plain load the
    /// counts match and nothing is read.
    private var provisionalRows = 0, statusesSinceHold = 0
    /// The meta row saying provisional phases may be in the index (set by `beginBulkLoad`,
    /// deleted by the batch that ends the hold).
    static let provisionalFlag = "provisional_phases"
    /// Set with the meta row; guarded by `cond` (read there by `settledGeneration`).
    private var provisionalFlagSet = false

    /// Ends an initial load: commits what is pending, then builds the indexes
    /// `beginBulkLoad` dropped (nothing when it dropped none).
    public func endBulkLoad() throws {
        defer { initialLoad.store(false, ordering: .relaxed) }
        try flush()
        try buildBulkIndexes()
        if indexedBeforeStatuses {
            indexedBeforeStatuses = false
            let ta = monotonicSeconds()
            exclusively { _ = try? db.exec("ANALYZE wl_index_phase") }
            StateStore.trace(String(format: "ANALYZE wl_index_phase %.1f ms", (monotonicSeconds() - ta) * 1000))
        }
        // The log the load left (the index build's pages last; up to hundreds of MB) copied and
        // started over now, before the daemon reports ready, so the first edits find neither
        // a copy of it in progress on the writer nor a file past the limit to cut back.
        let tc = monotonicSeconds()
        // A PASSIVE checkpoint fails at once while the checkpointer runs one: tried again
        // for up to a second (nothing else writes before ready).
        exclusively {
            for _ in 0..<200 where !isStopping {
                if copyLogAndStartOver(urgentMayWait: true, interruptible: false) { break }
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
        StateStore.trace(String(format: "ready cut %.1f ms wal %d", (monotonicSeconds() - tc) * 1000, walFileBytes()))
    }

    /// Whether `close` was called.
    private var isStopping: Bool { cond.lock(); defer { cond.unlock() }; return stopped }

    /// `body` in one `BEGIN IMMEDIATE` transaction: committed, or rolled back when it throws.
    private func inTransaction(_ body: () throws -> Void) throws {
        try db.exec("BEGIN IMMEDIATE")
        do { try body(); try db.exec("COMMIT") } catch { try? db.exec("ROLLBACK"); throw error }
    }

    private func buildBulkIndexes() throws {
        let ti = monotonicSeconds()
        defer { StateStore.trace(String(format: "index build %.1f ms", (monotonicSeconds() - ti) * 1000)) }
        try exclusively {
            guard bulkIndexes.load(ordering: .relaxed) else { return }
            try inTransaction { for ix in Schema.workloadIndexes { try db.exec(ix.create) } }
            bulkIndexes.store(false, ordering: .relaxed)
            // Their statistics now, while this is the only writer (before the daemon reports
            // ready): an ANALYZE the checkpointer ran later took the write lock for as long as
            // it read the 100,000-row index, and an edit's batch waited behind it.
            // Built later (a retry after a failed build, with edits arriving): the statistics
            // are left to the checkpointer's bounded ANALYZE on its own connection.
            guard initialLoad.load(ordering: .relaxed) else { return }
            let ta = monotonicSeconds()
            if (try? db.exec("ANALYZE wl_index")) != nil {
                analyzed.store(true, ordering: .relaxed)
                freshStatistics.store(true, ordering: .relaxed)
            }
            StateStore.trace(String(format: "ANALYZE (writer) %.1f ms", (monotonicSeconds() - ta) * 1000))
        }
    }

    /// Stops the writer thread after committing what is pending.
    public func close() {
        cond.lock(); stopped = true; cond.broadcast(); cond.unlock()
        try? flush()
        while writerThread?.isExecuting == true { Thread.sleep(forTimeInterval: 0.001) }
        // Stopped during an initial load: the indexes now, not at the next open.
        try? buildBulkIndexes()
        try? db.exec("ANALYZE wl_index")   // fresh statistics for the next reader (see checkpointLoop)
        try? db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        if lockFD >= 0 { flock(lockFD, LOCK_UN); Glibc.close(lockFD); lockFD = -1 }
    }

    /// `paced`: bulk statuses wait while `lowLanePaused` (the writer thread's batches; a
    /// `flush` writes everything).
    private func commitBatch(paced: Bool = false) throws {
        cond.lock()
        while writing { cond.wait() }
        writing = true
        let t0 = monotonicSeconds()
        defer {
            let end = monotonicSeconds()
            lastCommitEnd.withLock { $0 = end }
            commitSeconds.add(Int((end - t0) * 1e6), ordering: .relaxed); commits.add(1, ordering: .relaxed)
        }
        let deletes = pendingDeletes, events = pendingEvents, sql = pendingSQL
        // Bounded batches keep the rows built in memory at once small. A status waits while
        // its object's row is still pending, so it is never written before its object.
        // During an initial load into an empty store (`beginBulkLoad`) a batch takes all that
        // is pending: a large one is built in chunks (its rows are never all in memory), and
        // capped batches, taken in hash order, would each rewrite pages all over every table
        // and index (the 100,000-status flush wrote its tables about 13 times over).
        let maxBatch = initialLoad.load(ordering: .relaxed) ? Int.max : StateStore.maxBatch
        var objectKeys = Set<ObjectKey>(), statuses = Set<ObjectKey>()
        if pendingObjectKeys.count <= maxBatch { objectKeys = pendingObjectKeys; pendingObjectKeys = [] } else {
            for k in pendingObjectKeys { objectKeys.insert(k); if objectKeys.count == maxBatch { break } }
            pendingObjectKeys.subtract(objectKeys)
        }
        if holdStatuses {
            // Held for the end of an initial load (`holdStatuses`).
        } else if pendingObjectKeys.isEmpty && pendingStatus.count <= maxBatch { statuses = pendingStatus } else {
            for k in pendingStatus where !pendingObjectKeys.contains(k) {
                statuses.insert(k)
                if statuses.count == maxBatch { break }
            }
        }
        if statuses.count == pendingStatus.count { pendingStatus = [] } else { pendingStatus.subtract(statuses) }
        pendingLow.subtract(statuses)
        var lowKeys: [ObjectKey] = []
        if statuses.count < maxBatch && !holdStatuses && !(paced && lowLanePaused) {
            // Beside statuses that matter now, only a few bulk ones: this batch stays quick.
            let cap = statuses.isEmpty && objectKeys.isEmpty ? StateStore.lowBatch : 32
            for k in pendingLow where !pendingObjectKeys.contains(k) {
                lowKeys.append(k)
                if lowKeys.count == cap { break }
            }
            pendingLow.subtract(lowKeys)
            lowKeys.sort()
        }
        pendingDeletes = []; pendingEvents = [:]; pendingSQL = []
        let held = holdStatuses
        // An initial load into an empty store writes no change-feed rows (200,000 of them,
        // then pruned): the batch that ends it writes one gap instead, which sends every
        // reader of the feed back to a full read (`IndexWriter.feedGap`).
        let feedless = provisionalFlagSet
        // Whatever urgent is left (past maxBatch) keeps the low lane short in this batch too.
        urgentPending.store(!pendingObjectKeys.isEmpty || !pendingStatus.isEmpty || !pendingDeletes.isEmpty, ordering: .relaxed)
        cond.unlock()
        defer { cond.lock(); writing = false; settled &+= 1; cond.broadcast(); cond.unlock() }
        if objectKeys.isEmpty && statuses.isEmpty && lowKeys.isEmpty && deletes.isEmpty && events.isEmpty && sql.isEmpty && !(feedless && !held) { return }
        // The batch stops storing bulk statuses as soon as an urgent write arrives;
        // `lowWritten` of them were written.
        var lowWritten = 0, lowStored: [ObjectKey] = []
        var tBegun = 0.0
        defer {
            let d = monotonicSeconds() - t0
            if d > 0.010 { StateStore.trace(String(format: "commit %.1f ms (begin wait %.1f ms) obj %d st %d low %d/%d del %d ev %d sql %d", d * 1000, (tBegun - t0) * 1000, objectKeys.count, statuses.count, lowWritten, lowKeys.count, deletes.count, events.count, sql.count)) }
        }
        // Build rows and status JSON (the costly part) in parallel for large batches; the
        // SQL itself stays on this connection.
        let tb = monotonicSeconds()
        // Key order keeps B-tree inserts local (far fewer page splits than random order).
        let keyList = objectKeys.sorted()
        // Many statuses (an initial load's): which objects exist is read once, in the
        // transaction (after its deletes and objects), in key order, instead of an existence
        // lookup per row (about 0.4 s per 100,000) and a sort of the keys (about 0.3 s).
        let bulkStatuses = statuses.count >= existenceScanAbove
        let statusList = bulkStatuses ? [] : statuses.sorted()
        // The status of an object written in this batch is encoded first: the object's index
        // row takes its phase from the same JSON the status row gets.
        let paired = objectKeys.isEmpty ? [] : keyList.filter { statuses.contains($0) }
        let pairedJSON = parallelMap(paired, minimum: 512) { [statusProvider] k in statusProvider?(k) }
        var statusByKey: [ObjectKey: String] = [:]
        statusByKey.reserveCapacity(paired.count)
        for (i, k) in paired.enumerated() { if let j = pairedJSON[i] { statusByKey[k] = j } }
        let unpaired = paired.isEmpty ? statusList : statusList.filter { statusByKey[$0] == nil && !objectKeys.contains($0) }
        // Rows and status JSON (the costly part, beside the SQL): a large batch is built in
        // chunks on another thread while this one runs the SQL of the chunk before; a small
        // one (an edit's) is built here, in parallel.
        let source = BatchSource(objectKeys: keyList, statusKeys: unpaired, pipelineMinimum: pipelineMinimum, chunkSize: pipelineChunk,
                                 objectProvider: objectProvider, statusProvider: statusProvider)
        // Bulk statuses too (in parallel when there are many: the first pass's positions);
        // the batch may stop before storing them all.
        let lowJSON = parallelMap(lowKeys, minimum: 512) { [statusProvider] k in statusProvider?(k) }
        buildMicros.add(Int((monotonicSeconds() - tb) * 1e6), ordering: .relaxed)
        defer { source.cancel() }
        do {
            let tb0 = monotonicSeconds()
            try db.exec("BEGIN IMMEDIATE")
            tBegun = monotonicSeconds()
            if tBegun - tb0 > 0.005 { StateStore.trace(String(format: "BEGIN waited %.1f ms", (tBegun - tb0) * 1000)) }
            let now = SystemClock().now()
            // Counted into `provisionalRows` and `statusesSinceHold` once the batch commits.
            var provisionalAdded = 0, workloadStatuses = 0
            if !deletes.isEmpty {
                let del = try db.prepare("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?")
                let delStatus = try db.prepare("DELETE FROM statuses WHERE kind=? AND namespace=? AND name=?")
                let keep = try db.prepare("""
                    INSERT OR REPLACE INTO history(namespace, name, uid, deleted_at, object, status)
                    SELECT o.namespace, o.name, o.uid, ?, o.object, s.status FROM objects o
                    LEFT JOIN statuses s ON s.kind=o.kind AND s.namespace=o.namespace AND s.name=o.name
                    WHERE o.kind='Workload' AND o.namespace=? AND o.name=?
                    """)
                for k in deletes.sorted() {
                    let args: [SQLValue] = [.text(k.kind.rawValue), .text(k.namespace), .text(k.name)]
                    if k.kind == .workload { try keep.bind([.double(now), .text(k.namespace), .text(k.name)]).run() }
                    try del.bind(args).run()
                    let existed = db.changes > 0
                    try delStatus.bind(args).run()
                    if k.kind == .workload { try indexWriter.delete(namespace: k.namespace, name: k.name) }
                    if existed && !feedless { try indexWriter.change(k, "delete") }
                }
            }
            // Workloads whose index row took its phase from this batch's status (no second update).
            var phased = Set<ObjectKey>()
            var wroteObjects = false, wroteStatuses = false
            if !keyList.isEmpty {
                let up = try statement(&upsertObject, """
                    INSERT INTO objects(kind, namespace, name, uid, generation, spec_hash, object_hash, creation_time, source, object, updated_at)
                    VALUES(?,?,?,?,?,?,?,?,?,?,?)
                    ON CONFLICT(kind, namespace, name) DO UPDATE SET uid=excluded.uid, generation=excluded.generation, spec_hash=excluded.spec_hash,
                      object_hash=excluded.object_hash, creation_time=excluded.creation_time, source=excluded.source, object=excluded.object,
                      updated_at=excluded.updated_at
                    """)
                while let chunk = source.nextObjects() {
                    for case let (r, f)? in chunk {
                        up.reset()
                        up.bind(1, r.key.kind.rawValue); up.bind(2, r.key.namespace); up.bind(3, r.key.name); up.bind(4, r.uid)
                        up.bind(5, r.generation); up.bind(6, r.specHash); up.bind(7, r.objectHash); up.bind(8, r.creationTime)
                        up.bind(9, r.source); up.bind(10, r.objectJSON); up.bind(11, now)
                        try up.run()
                        wroteObjects = true
                        if let f {
                            let phase = statusByKey[r.key].flatMap(IndexWriter.leadingPhase)
                            try indexWriter.upsert(namespace: r.key.namespace, name: r.key.name, creationTime: r.creationTime, fields: f,
                                                   phase: phase ?? (held ? StateStore.provisionalPhase : nil))
                            if phase != nil { phased.insert(r.key) } else if held { provisionalAdded += 1 }
                        }
                        if !feedless { try indexWriter.change(r.key, "object") }
                    }
                }
            }
            if !statuses.isEmpty || !lowKeys.isEmpty {
                // Only for objects that exist: a late status of a deleted object is dropped.
                let checked = try statement(&upsertStatus, """
                    INSERT INTO statuses(kind, namespace, name, status, updated_at)
                    SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM objects WHERE kind=?1 AND namespace=?2 AND name=?3)
                    ON CONFLICT(kind, namespace, name) DO UPDATE SET status=excluded.status, updated_at=excluded.updated_at
                    """)
                // For keys read from the objects table in this transaction (`storedKeys`).
                let known = !bulkStatuses ? nil : try statement(&upsertStatusKnown, """
                    INSERT INTO statuses(kind, namespace, name, status, updated_at) VALUES(?1, ?2, ?3, ?4, ?5)
                    ON CONFLICT(kind, namespace, name) DO UPDATE SET status=excluded.status, updated_at=excluded.updated_at
                    """)
                // A bulk batch's statuses: only those of stored objects (this batch's written
                // first, above), built on another thread while the SQL runs.
                let bulkSource = !bulkStatuses ? nil : BatchSource(
                    objectKeys: [], statusKeys: try storedKeys(among: statuses).filter { statusByKey[$0] == nil && !objectKeys.contains($0) },
                    pipelineMinimum: pipelineMinimum, chunkSize: pipelineChunk, objectProvider: nil, statusProvider: statusProvider)
                defer { bulkSource?.cancel() }
                func write(_ k: ObjectKey, _ json: String, stored: Bool = false) throws {
                    let st = stored ? known ?? checked : checked
                    st.reset()
                    st.bind(1, k.kind.rawValue); st.bind(2, k.namespace); st.bind(3, k.name); st.bind(4, json); st.bind(5, now)
                    try st.run()
                    guard db.changes > 0 else { return }
                    wroteStatuses = true
                    // Only statuses of rows written earlier (the provisional ones, in a load).
                    if k.kind == .workload && !phased.contains(k) { workloadStatuses += 1 }
                    if k.kind == .workload && !phased.contains(k) { try indexWriter.setPhase(namespace: k.namespace, name: k.name, statusJSON: json) }
                    if !feedless { try indexWriter.change(k, "status") }
                }
                for (k, json) in statusByKey.sorted(by: { $0.key < $1.key }) { try write(k, json) }
                // An initial load's statuses (100,000 in key order) commit every `loadCommitRows`:
                // one transaction dirtied more pages than the page cache holds, and the
                // existence check of each row read its index pages back from the file.
                var sinceCommit = 0
                let splits = initialLoad.load(ordering: .relaxed)
                // The bulk source's keys exist (read above, in this transaction); every other
                // status (one paired with an object whose row was not written, a queue
                // position) is checked row by row.
                let statusChunks = bulkSource ?? source
                while let chunk = statusChunks.nextStatuses() {
                    for (k, json) in chunk { if let json { try write(k, json, stored: bulkSource != nil) } }
                    sinceCommit += chunk.count
                    if splits && sinceCommit >= loadCommitRows {
                        try db.exec("COMMIT")
                        try db.exec("BEGIN IMMEDIATE")
                        sinceCommit = 0
                    }
                }
                if !lowKeys.isEmpty { lastLowBatchMicros.store(Int(monotonicSeconds() * 1e6), ordering: .relaxed) }
                for (i, k) in lowKeys.enumerated() {
                    // At least a few per batch, so the lane moves on under a stream of urgent writes.
                    if lowWritten >= StateStore.lowMinimum && urgentPending.load(ordering: .relaxed) { break }
                    lowWritten += 1
                    guard let json = lowJSON[i] else { continue }
                    try write(k, json)
                    lowStored.append(k)
                }
            }
            if !events.isEmpty {
                let up = try statement(&upsertEvent, """
                    INSERT INTO events(name, kind, namespace, obj_name, type, reason, message, count, first_ts, last_ts) VALUES(?,?,?,?,?,?,?,?,?,?)
                    ON CONFLICT(name) DO UPDATE SET message=excluded.message, count=excluded.count, last_ts=excluded.last_ts
                    """)
                for e in events.values {
                    try up.bind([.text(e.name), .text(e.involved.kind), .text(e.involved.namespace), .text(e.involved.name), .text(e.type.rawValue),
                                 .text(e.reason), .text(e.message), .int(Int64(e.count)), .double(e.firstTimestamp), .double(e.lastTimestamp)]).run()
                }
            }
            for (text, args) in sql {
                if otherStatements[text] == nil && otherStatements.count >= StateStore.otherStatementsKept { otherStatements = [:] }
                let st = try otherStatements[text] ?? db.prepare(text)
                otherStatements[text] = st
                try st.bind(args).run()
            }
            if !feedless && (wroteObjects || wroteStatuses || !deletes.isEmpty) { try indexWriter.pruneChanges(keep: changesKept) }
            var provisional = (rows: provisionalRows + provisionalAdded, statuses: statusesSinceHold + workloadStatuses)
            let endsHold = !held && feedless
            if !held && provisional.rows > 0 {
                if provisional.statuses < provisional.rows { try indexWriter.clearProvisionalPhases(StateStore.provisionalPhase) }
                provisional = (0, 0)
            }
            if endsHold {
                try db.exec("DELETE FROM meta WHERE key='\(StateStore.provisionalFlag)'")
                try indexWriter.feedGap()
            }
            try db.exec("COMMIT")
            (provisionalRows, statusesSinceHold) = provisional
            if endsHold { cond.lock(); provisionalFlagSet = false; cond.unlock() }
            if lowWritten < lowKeys.count {
                // Stopped for an urgent write: the rest go back (newer marks win).
                cond.lock()
                for k in lowKeys[lowWritten...] where !pendingDeletes.contains(k) && !pendingStatus.contains(k) { pendingLow.insert(k) }
                cond.unlock()
            }
        } catch {
            try? db.exec("ROLLBACK")
            // Put the batch back (newer pending values win) so nothing is lost.
            cond.lock()
            for k in objectKeys where !pendingDeletes.contains(k) { pendingObjectKeys.insert(k) }
            for k in statuses where !pendingDeletes.contains(k) { pendingStatus.insert(k) }
            for k in lowKeys where !pendingDeletes.contains(k) { pendingLow.insert(k) }
            pendingLow.subtract(pendingStatus)
            for k in deletes where !pendingObjectKeys.contains(k) { pendingDeletes.insert(k) }
            for (k, v) in events where pendingEvents[k] == nil { pendingEvents[k] = v }
            pendingSQL = sql + pendingSQL
            cond.unlock()
            throw error
        }
        onCommit?(Array(statuses) + lowStored)
    }

    /// Deletes events last seen before `cutoff` (epoch seconds), in the next batch.
    public func expireEvents(before cutoff: Double) {
        enqueueSQL("DELETE FROM events WHERE last_ts < ?", [.double(cutoff)])
    }
}
