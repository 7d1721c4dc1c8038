/// When the state store's checkpointer folds the write-ahead log back into the database, and
/// how, so the log stays bounded whatever the readers do.
///
/// A PASSIVE checkpoint never blocks the writer, but it only copies frames; the log file is
/// reused from its start (and cut to `journal_size_limit`) only when a write begins after a
/// checkpoint that copied everything while no reader was still using the log. A busy writer
/// (a stream of batches) never gives it that moment, so the writer itself copies the frames it
/// appended during the checkpointer's copy (at most about `catchUpFrames`), between batches,
/// and starts the log over (`StateStore.catchUpCheckpoint`). Readers that overlap one another
/// (a `get -w`, API requests) can still keep the log from being reused, and the file grows.
/// When it stays past `limitBytes` for `retrySeconds` the checkpointer runs a TRUNCATE checkpoint:
/// it holds the writer off, waits up to `busyMillis` for the readers of older snapshots to
/// finish (new readers then read the database file, not the log), and cuts the file to zero.
/// A reader that keeps a transaction open past that wait makes the attempt fail; it is retried
/// after `retrySeconds` so the writer is not stalled again and again meanwhile.
public struct CheckpointPolicy: Sendable, Equatable {
    /// Log bytes not yet copied into the database that start a PASSIVE checkpoint while
    /// writes go on (when writes pause, any amount does).
    public var passiveBytes: Int
    /// A log file larger than this starts a TRUNCATE checkpoint.
    public var limitBytes: Int
    /// How long a TRUNCATE checkpoint waits for the writer's transaction and for readers:
    /// with the copy it needs, the longest the writer can be held off.
    public var busyMillis: Int32
    /// After a TRUNCATE that readers kept from finishing, how long until the next one.
    public var retrySeconds: Double
    /// The checkpointer's polling interval.
    public var intervalSeconds: Double

    /// The size `journal_size_limit` is set to: a log reused from its start is cut to this.
    public var journalSizeLimit: Int

    /// Frames the writer appended while the checkpointer copied that the writer copies itself,
    /// between two batches, so the log can be reused (more: the checkpointer copies again).
    public var catchUpFrames: Int

    public init(passiveBytes: Int, limitBytes: Int, busyMillis: Int32, retrySeconds: Double, intervalSeconds: Double, journalSizeLimit: Int? = nil,
                catchUpFrames: Int = 256) {
        self.passiveBytes = passiveBytes; self.limitBytes = limitBytes; self.busyMillis = busyMillis
        self.retrySeconds = retrySeconds; self.intervalSeconds = intervalSeconds
        self.journalSizeLimit = max(journalSizeLimit ?? limitBytes / 2, 0)
        self.catchUpFrames = max(catchUpFrames, 0)
    }

    /// A passive checkpoint every 16 MiB of new log (as often as a bulk load allows without
    /// many more fsyncs than before), the file cut back past 64 MiB, and a log reused from its
    /// start cut to 16 MiB: the issue 12 churn soak saw 180 MB, when the former 64 MiB trigger
    /// was measured on the file's size (which a reused log keeps) instead of the new log.
    public static let standard = CheckpointPolicy(passiveBytes: 16 << 20, limitBytes: 64 << 20, busyMillis: 100,
                                                  retrySeconds: 2, intervalSeconds: 0.25, journalSizeLimit: 16 << 20)

    public enum Action: Sendable, Equatable { case none, passive, truncate }

    /// - Parameters:
    ///   - walFileBytes: the size of the `-wal` file now.
    ///   - pendingBytes: log bytes written since the last checkpoint copied them.
    ///   - idle: no commit for a while.
    ///   - sinceBusyTruncate: seconds since the last TRUNCATE that readers kept from finishing
    ///     (nil: none failed since the last one that succeeded).
    public func decide(walFileBytes: Int, pendingBytes: Int, idle: Bool, sinceBusyTruncate: Double?) -> Action {
        if walFileBytes > limitBytes && (sinceBusyTruncate.map { $0 >= retrySeconds } ?? true) { return .truncate }
        if pendingBytes >= passiveBytes || (idle && pendingBytes > 0) { return .passive }
        return .none
    }
}
