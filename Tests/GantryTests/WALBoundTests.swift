import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import StateStore

/// The state store's write-ahead log stays bounded whatever its readers do (issue 12, "Long
/// runs stay flat"): readers holding or overlapping snapshots delay checkpoints, never starve them.
@Suite(.timeLimit(.minutes(1))) struct WALBoundTests {
    /// A small bound so a test reaches it with a few megabytes of writes.
    static let small = CheckpointPolicy(passiveBytes: 64 << 10, limitBytes: 256 << 10, busyMillis: 200, retrySeconds: 0.05, intervalSeconds: 0.01)

    @Test func policyChoosesTheCheckpoint() {
        let p = CheckpointPolicy(passiveBytes: 100, limitBytes: 1000, busyMillis: 50, retrySeconds: 2, intervalSeconds: 0.25)
        // Nothing new: nothing to do, busy or idle.
        #expect(p.decide(walFileBytes: 500, pendingBytes: 0, idle: true, sinceBusyTruncate: nil) == .none)
        #expect(p.decide(walFileBytes: 500, pendingBytes: 99, idle: false, sinceBusyTruncate: nil) == .none)
        // A pause in the writes, or enough new log: a passive one.
        #expect(p.decide(walFileBytes: 500, pendingBytes: 1, idle: true, sinceBusyTruncate: nil) == .passive)
        #expect(p.decide(walFileBytes: 500, pendingBytes: 100, idle: false, sinceBusyTruncate: nil) == .passive)
        // Past the limit the file is cut back, even with nothing new to copy (a reader kept
        // the log from being reused) ...
        #expect(p.decide(walFileBytes: 1001, pendingBytes: 0, idle: false, sinceBusyTruncate: nil) == .truncate)
        #expect(p.decide(walFileBytes: 1000, pendingBytes: 0, idle: false, sinceBusyTruncate: nil) == .none)
        // ... but not again right after readers kept one from finishing: passive meanwhile.
        #expect(p.decide(walFileBytes: 5000, pendingBytes: 100, idle: false, sinceBusyTruncate: 1) == .passive)
        #expect(p.decide(walFileBytes: 5000, pendingBytes: 0, idle: false, sinceBusyTruncate: 1) == .none)
        #expect(p.decide(walFileBytes: 5000, pendingBytes: 0, idle: false, sinceBusyTruncate: 2) == .truncate)
        // A reused log is cut to half the limit.
        #expect(p.journalSizeLimit == 500)
        #expect(CheckpointPolicy.standard.limitBytes <= 64 << 20 && CheckpointPolicy.standard.journalSizeLimit <= 16 << 20)
    }

    /// A stream of bulk statuses (queue positions, the low lane) is paced on the checkpoint:
    /// the log never holds much more than `passiveBytes` not yet copied (a batch or two past it),
    /// where unpaced the positions of many edits outran the copy (the log grew past its limit
    /// and the writer's own copy then ran in front of an edit). Every status still lands.
    /// (Unpaced, the same run left 10.7–18 MB of log uncopied.)
    @Test func bulkStatusesArePacedOnTheCheckpoint() throws {
        let dir = try makeTemporaryDirectory("gantry-wal-")
        defer { removeTree(dir) }
        let policy = CheckpointPolicy(passiveBytes: 256 << 10, limitBytes: 256 << 20, busyMillis: 200, retrySeconds: 0.05, intervalSeconds: 0.05)
        final class Box: @unchecked Sendable { weak var store: StateStore?; let most = Mutex(0) }
        let box = Box()
        let store = try StateStore(directory: dir, batchDelay: 0, checkpointPolicy: policy, onCommit: { _ in
            guard let s = box.store else { return }
            let n = s.uncopiedLogBytes
            box.most.withLock { $0 = max($0, n) }
        })
        box.store = store
        store.lowLaneMaxPause = 30
        store.startWriter()
        defer { store.close() }
        let keys = (0..<6000).map { ObjectKey(.workload, namespace: "ns\($0 % 37)", name: "w\($0)") }
        store.objectProvider = { k in
            ObjectRow(key: k, uid: "u", generation: 1, specHash: "h", objectHash: "o", creationTime: 1, source: "f.yaml", objectJSON: "{}")
        }
        let round = Atomic<Int>(0)
        let pad = String(repeating: "p", count: 600)
        store.statusProvider = { k in "{\"phase\":\"Pending\",\"queuePosition\":\(round.load(ordering: .relaxed)),\"m\":\"\(pad)\"}" }
        for k in keys { store.markObjectDirty(k) }
        try store.flush()
        box.most.withLock { $0 = 0 }
        for r in 1...4 {
            round.store(r, ordering: .relaxed)
            store.markStatusesDirty(keys.shuffled())
        }
        // Every position lands (the last round's).
        let reader = try StateReader(directory: dir)
        #expect(poll(timeout: 30) {
            (try? reader.db.prepare("SELECT count(*) FROM statuses WHERE status LIKE '%\"queuePosition\":4,%'")).flatMap { st in (try? st.step()) == true ? st.int(0) : nil } == Int64(keys.count)
        })
        let most = box.most.withLock { $0 }
        // One low batch past the threshold: 512 statuses of about 700 bytes, a page (8 KiB)
        // each, and the change feed's and the B-tree's other pages.
        let bound = policy.passiveBytes + 2 * 512 * 8216
        #expect(most <= bound, "\(most) bytes of log not copied")
    }

    /// Writes `count` workload rows of about 4 KB (about 5 MB of log for 1,000).
    static func write(_ store: StateStore, _ count: Int, round: Int) throws {
        let body = String(repeating: "x", count: 4000)
        store.objectProvider = { k in
            ObjectRow(key: k, uid: "u", generation: Int64(round), specHash: "h", objectHash: "o", creationTime: 1, source: "f.yaml",
                      objectJSON: "{\"r\":\(round),\"b\":\"\(body)\"}")
        }
        for i in 0..<count { store.markObjectDirty(ObjectKey(.workload, namespace: "ns", name: "w\(i)")) }
        try store.flush()
    }

    @Test func aReaderHoldingASnapshotDelaysTheCutNeverStarvesIt() throws {
        let dir = try makeTemporaryDirectory("gantry-wal-")
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, checkpointPolicy: WALBoundTests.small)
        store.startWriter()
        defer { store.close() }
        try WALBoundTests.write(store, 200, round: 1)
        let reader = try StateReader(directory: dir)
        // A read left part-way: its snapshot keeps the log from being reused or cut.
        var held: Statement? = try reader.db.prepare("SELECT name FROM objects")
        #expect(try held?.step() == true)
        #expect(reader.holdsSnapshot)
        for round in 2...4 { try WALBoundTests.write(store, 200, round: round) }   // the writer is not stopped by the reader
        #expect(store.walFileBytes() > WALBoundTests.small.limitBytes)
        // The checkpointer tried and gave up without waiting forever.
        let tried = poll(timeout: 10) { store.busyTruncations.load(ordering: .relaxed) > 0 }
        #expect(tried)
        held = nil
        #expect(!reader.holdsSnapshot)
        // Once the reader is done, the log is cut back below the bound.
        #expect(poll(timeout: 10) { store.walFileBytes() <= WALBoundTests.small.limitBytes })
        // And everything written is there.
        #expect(try reader.objects(kind: .workload).count == 200)
        #expect(try reader.objects(kind: .workload, name: "w7").first?.objectJSON.hasPrefix("{\"r\":4,") == true)
    }

    @Test func overlappingReadersDoNotKeepTheLogGrowing() throws {
        let dir = try makeTemporaryDirectory("gantry-wal-")
        defer { removeTree(dir) }
        let store = try StateStore(directory: dir, checkpointPolicy: WALBoundTests.small)
        store.startWriter()
        defer { store.close() }
        try WALBoundTests.write(store, 100, round: 1)
        // Two readers taking turns so that at every moment one of them has a snapshot open:
        // with passive checkpoints alone the log is never reused and only grows.
        let stop = Atomic<Bool>(false), turns = Atomic<Int>(0)
        let t = Thread {
            guard let a = try? StateReader(directory: dir), let b = try? StateReader(directory: dir) else { return }
            var open: (StateReader, Statement?) = (a, nil)
            var other = b
            while !stop.load(ordering: .relaxed) {
                // The other reader opens a snapshot before this one's ends.
                let next = try? other.db.prepare("SELECT name FROM objects")
                _ = try? next?.step()
                open.1 = nil
                let done = open.0
                open = (other, next)
                other = done
                turns.add(1, ordering: .relaxed)
                usleep(5_000)
            }
        }
        t.start()
        defer { stop.store(true, ordering: .relaxed); while t.isExecuting { usleep(1_000) } }
        for round in 2...6 { try WALBoundTests.write(store, 100, round: round) }
        #expect(turns.load(ordering: .relaxed) > 0)
        #expect(poll(timeout: 10) { store.walFileBytes() <= WALBoundTests.small.limitBytes })
    }
}
