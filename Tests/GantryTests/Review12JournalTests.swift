import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import GantryShim
@testable import Controllers

/// Review of the dispatch journal's group commit: a failed append (ENOSPC part way through a
/// batch leaves a torn line) must not take the next dispatch down with it.
@Suite(.timeLimit(.minutes(1))) struct Review12JournalTests {
    @Test func aFailedAppendDoesNotLoseTheNextDispatch() throws {
        let d = try makeTemporaryDirectory("gantry-review12-")
        defer { removeTree(d) }
        let path = d + "/j"
        let keys = (0..<3).map { ObjectKey(.workload, namespace: "ns", name: "w\($0)") }
        let intent = { (n: Int) in DispatchIntent(dispatch: n, specHash: "h\(n)", masterPort: 3000 + n, at: 9,
                                                  assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0])]) }
        let j = DispatchJournal(path: path)
        _ = j.load()
        j.record(keys[0], intent(1))
        // The append of a batch fails part way: its descriptor refuses writes (standing in
        // for ENOSPC/EIO), and the bytes it did write end in a torn line.
        let ro = open(path, O_RDONLY | O_CLOEXEC)
        #expect(ro >= 0)
        j.state.withLock { s in close(s.fd); s.fd = ro }
        j.record([(keys[1], intent(1)), (keys[2], intent(1))])
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try fh.seekToEnd(); try fh.write(contentsOf: Data("intent ns w1 dispatch=1 spe".utf8)); try fh.close()
        // The disk has room again: the next dispatch is journaled before its replicas start
        // and must read back after a crash.
        let next = ObjectKey(.workload, namespace: "ns", name: "next")
        j.record(next, intent(4))
        let loaded = DispatchJournal(path: path).load()
        #expect(loaded[keys[0]] == intent(1))
        #expect(loaded[next] == intent(4))
    }

    /// A forget whose line cannot be written (a full disk) still forgets the dispatch in
    /// memory, so the next compaction does not write the deleted workload's dispatch back
    /// as live (a re-created workload of that name would be adopted with it on restart).
    @Test func aForgetThatCannotBeWrittenIsNotCompactedBackIn() throws {
        let d = try makeTemporaryDirectory("gantry-review13-")
        defer { removeTree(d) }
        let path = d + "/j"
        let gone = ObjectKey(.workload, namespace: "ns", name: "gone")
        let intent = DispatchIntent(dispatch: 1, specHash: "h", masterPort: 3001, at: 9,
                                    assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0])])
        let j = DispatchJournal(path: path)
        _ = j.load()
        j.record(gone, intent)
        let ro = open(path, O_RDONLY | O_CLOEXEC)
        #expect(ro >= 0)
        j.state.withLock { s in close(s.fd); s.fd = ro }
        j.forget(gone)
        #expect(j.state.withLock { $0.latest[gone] } == nil)
    }
}
