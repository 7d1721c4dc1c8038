import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import GantryShim
@testable import Controllers

/// A dispatch whose journal line could not be made durable must not start: a restarted daemon
/// would not know it, and would start the gang a second time beside the first.
@Suite(.timeLimit(.minutes(1))) struct JournalDurabilityTests {
    @Test func aDispatchThatCannotBeJournaledIsNotLaunched() throws {
        let d = try makeTemporaryDirectory("gantry-journal-")
        defer { removeTree(d) }
        // The "supervisor" leaves a mark when it is spawned at all.
        let mark = d + "/spawned"
        let rt = try ProcessRuntime(stateDir: d, shim: ["/bin/sh", "-c", "echo x >> '\(mark)'", "sh"], maxLogSize: 1 << 20, baseEnv: [:])
        _ = rt.recover()
        let got = Mutex<[RuntimeEvent]>([])
        rt.start { e in got.withLock { $0.append(e) } }
        defer { rt.stop() }
        let key = ObjectKey(.workload, namespace: "ns", name: "w")
        let intent = DispatchIntent(dispatch: 1, specHash: "h", masterPort: 3000, at: 9,
                                    assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0])])
        // The journal refuses writes (standing in for ENOSPC/EIO on its disk).
        let ro = open(rt.journal.path, O_RDONLY | O_CLOEXEC)
        try #require(ro >= 0)
        rt.journal.state.withLock { s in close(s.fd); s.fd = ro }
        rt.prepare([(key, intent)])
        let ref = ReplicaRef(key: key, dispatch: 1, rank: 0, attempt: 0)
        rt.launch(ReplicaLaunch(ref: ref, command: "true", env: [], header: "h"))
        #expect(poll(timeout: 10) { !got.withLock { $0.isEmpty } })
        #expect(got.withLock { $0 } == [.infrastructureFailed(ref, InfrastructureFault(errno: EBADF, op: "journal", path: rt.journal.path))])
        #expect(!FileManager.default.fileExists(atPath: mark), "no supervisor was spawned")
        // Nothing was journaled: a restart knows no dispatch of it.
        #expect(DispatchJournal(path: rt.journal.path).load()[key] == nil)

        // The disk works again: the gang's next dispatch is journaled and starts.
        let next = DispatchIntent(dispatch: 2, specHash: "h", masterPort: 3001, at: 10,
                                  assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0])])
        rt.prepare(key, next)
        rt.launch(ReplicaLaunch(ref: ReplicaRef(key: key, dispatch: 2, rank: 0, attempt: 0), command: "true", env: [], header: "h"))
        #expect(poll(timeout: 10) { FileManager.default.fileExists(atPath: mark) }, "the journaled dispatch's supervisor was spawned")
        #expect(DispatchJournal(path: rt.journal.path).load()[key] == next)
    }
}
