import Testing
import Foundation
@testable import GantryAPI
@testable import GantryShim
@testable import Controllers

@Suite(.timeLimit(.minutes(1))) struct ShimTests {
    /// A fresh directory; the caller removes it.
    func tempDir() throws -> String { try makeTemporaryDirectory("gantry-shim-") }

    @Test func recordsTakeCompleteLinesOnly() {
        var r = ReplicaRecord()
        r.pid = 42; r.shimPid = 41; r.shimStart = 7; r.start = 100.5
        let started = r.startedLine
        var x = ReplicaRecord(text: started + "exited pid=42 code=3 sig")   // torn exit line
        #expect(x.started && !x.exited && x.pid == 42 && x.shimPid == 41 && x.start == 100.5)
        r.code = 3; r.end = 101
        x = ReplicaRecord(text: started + r.exitedLine)
        #expect(x.exited && x.code == 3 && x.end == 101)
        #expect(!ReplicaRecord(text: "").started)
    }

    @Test func metricLinesAcrossChunksAndOverlongLines() {
        var m = MetricLines()
        var got: [String] = []
        m.feed(Array("epoch 1\ngantry.metric loss=0.5 ".utf8)) { got.append($0) }
        m.feed(Array("step=3\r\nnoise gantry.metric x=1\n".utf8)) { got.append($0) }
        m.feed(Array(("gantry.metric big=" + String(repeating: "9", count: 5000) + "\ngantry.metric ok=1\n").utf8)) { got.append($0) }
        #expect(got == ["loss=0.5 step=3", "ok=1"])
    }

    @Test func cappedLogKeepsTheNewestOutput() throws {
        let d = try tempDir()
        defer { removeTree(d) }
        var log = CappedLog(path: d + "/r.log", max: 100)
        for i in 0..<30 { log.write(Array("line \(i)\n".utf8)) }
        log.close()
        let size = { (p: String) in ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? Int) ?? 0 }
        #expect(size(d + "/r.log") + size(d + "/r.log.1") <= 100)
        let tail = LogFiles.tail(d + "/r.log", lines: 3)
        #expect(tail == ["line 27", "line 28", "line 29"])
        #expect(LogFiles.tail(d + "/r.log", lines: 1000).first != "line 0")
        #expect(LogFiles.tail(d + "/r.log", lines: 1000).count >= 8)
    }

    @Test func dispatchJournalKeepsTheNewestDispatchPerWorkload() throws {
        let d = try tempDir()
        defer { removeTree(d) }
        let a = ObjectKey(.workload, namespace: "ns", name: "a"), b = ObjectKey(.workload, namespace: "ns", name: "b")
        let j = DispatchJournal(path: d + "/j")
        _ = j.load()
        let intent = { (n: Int) in DispatchIntent(dispatch: n, specHash: "h\(n)", masterPort: 1000 + n, at: 5,
                                                  assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0, 1]), ReplicaAssignment(rank: 1, node: "n2", gpus: [])]) }
        j.record(a, intent(1)); j.record(a, intent(2)); j.record(b, intent(1)); j.forget(b)
        var loaded = DispatchJournal(path: d + "/j").load()
        #expect(loaded[a] == intent(2) && loaded[b] == nil)
        // A torn last line (crash mid-append) is not a dispatch.
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: d + "/j"))
        try fh.seekToEnd(); try fh.write(contentsOf: Data("intent ns b dispatch=9 spec=x".utf8)); try fh.close()
        loaded = DispatchJournal(path: d + "/j").load()
        #expect(loaded[b] == nil && loaded.count == 1)
        // Compaction: many dispatches of one workload shrink to its newest.
        let k = DispatchJournal(path: d + "/k")
        _ = k.load()
        for n in 1...5000 { k.record(a, intent(n)) }
        let lines = try String(contentsOfFile: d + "/k", encoding: .utf8).split(separator: "\n").count
        #expect(lines > 0 && lines < 5000)
        #expect(DispatchJournal(path: d + "/k").load()[a]?.dispatch == 5000)
    }

    @Test func metricParsing() {
        let key = ObjectKey(.workload, namespace: "t", name: "w")
        let s = RunMetrics.parseTraining("10.5 loss=0.25 epoch=2 bad=x =3 acc=nan\n11 loss=0.2\n12 partial=1", key: key, rank: 1)
        #expect(s.map(\.series) == ["t/w/loss{rank=1}", "t/w/epoch{rank=1}", "t/w/loss{rank=1}"])
        #expect(s.map(\.value) == [0.25, 2, 0.2] && s.first?.ts == 10.5)
        let nv = RunMetrics.parseNvidia("0, 87, 40000, 310.5\n1, 0, 3, [N/A]\n")
        #expect(nv[0] == RunMetrics.GPUSample(util: 87, mem: 40000, power: 310.5))
        #expect(nv[1]?.power == nil && nv[1]?.util == 0)
        let amd = RunMetrics.parseAMD("gpu,gfx_activity,used_vram,socket_power\n0,55,1024,300\n1,N/A,0,90\n")
        #expect(amd[0] == RunMetrics.GPUSample(util: 55, mem: 1024, power: 300) && amd[1]?.util == nil)
    }

    /// The real supervisor binary: output to a capped log, metric lines apart, exit recorded.
    @Test func supervisorRecordsTheExitAndSeparatesMetrics() throws {
        let bin = URL(fileURLWithPath: DaemonUnderTest.binary).deletingLastPathComponent().appendingPathComponent("gantry-shim").path
        let d = try tempDir()
        defer { removeTree(d) }
        let shim = runProcess(bin, ["--record", d + "/r", "--log", d + "/logs/x.log", "--metrics", d + "/logs/x.metrics", "--workdir", d + "/work/w",
                                    "--max-log-size", "1000000", "--header", "== start", "--", "/bin/sh", "-c",
                                    "pwd; echo out; echo err >&2; echo 'gantry.metric loss=1.5'; sleep 30 & exit 3"], timeout: 20)
        try #require(!shim.timedOut, "the supervisor exits when its replica does")
        let rec = ReplicaRecord(text: try String(contentsOfFile: d + "/r.rec", encoding: .utf8))
        try #require(rec.started && rec.pid > 1, "a started record with the replica's pid")
        #expect(rec.code == 3)
        // The group, the background sleep included, is gone.
        #expect(poll(timeout: 5) { !groupHasLiveMembers(rec.pid) }, "replica group \(rec.pid) gone")
        let log = try String(contentsOfFile: d + "/logs/x.log", encoding: .utf8)
        #expect(log.hasPrefix("== start\n") && log.contains(d + "/work/w\n") && log.contains("out\n") && log.contains("err\n"))
        let metrics = try String(contentsOfFile: d + "/logs/x.metrics", encoding: .utf8)
        #expect(metrics.hasSuffix(" loss=1.5\n"))
    }
}
