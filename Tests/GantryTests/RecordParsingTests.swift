import Testing
@testable import GantryShim

/// Records are read on their UTF-8 bytes: lines end at a newline, fields at spaces (runs of
/// them too); a failed line's path runs to the end of its line, spaces and all.
@Suite(.timeLimit(.minutes(1))) struct RecordParsingTests {
    @Test func linesAndFieldsSplitOnBytes() {
        #expect(ReplicaRecord.fields("  started pid=5   shim=6 ") == ["started", "pid=5", "shim=6"])
        #expect(ReplicaRecord.fields("") == [])
        let r = ReplicaRecord(text: "started  pid=5 shim=6 shimstart=7 start=1.5\nexited pid=5 code=0 signal=0 start=1.5 end=2.5\n")
        #expect(r.started && r.pid == 5 && r.shimPid == 6 && r.shimStart == 7 && r.code == 0 && r.end == 2.5)
        let f = ReplicaRecord(text: "failed errno=28 op=open path=/state/logs/ns/a b é.log\n")
        #expect(f.fault == RecordedFault(errno: 28, op: "open", path: "/state/logs/ns/a b é.log"))
        // A line glued onto a torn one (a repeated key, a value that is no number) is ignored whole.
        let g = ReplicaRecord(text: "started pid=5 shim=6 shimstart=7 start=1.5\nexited pid=5 cexited pid=5 code=1 signal=0 start=1.5 end=2\n")
        #expect(g.started && !g.exited && g.pid == 5)
        #expect(!ReplicaRecord(text: "started pid=é shim=1\n").started)
    }
}
