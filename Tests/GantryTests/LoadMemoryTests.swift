import Testing
import Foundation
@testable import GantryAPI
@testable import ControllerRuntime
@testable import DirectorySource
@testable import Scheduler

/// What a big load leaves behind (issue 12: peak RSS at 100,000 workloads). Each test checks
/// one structure's shape, not a byte count, so it holds on any allocator.
@Suite(.timeLimit(.minutes(1))) struct LoadMemoryTests {
    @Test func workQueueGivesBackItsStorageOnceABigBacklogDrains() {
        let q = WorkQueue<Int>(name: "t", clock: ManualClock())
        q.add(contentsOf: 0..<20_000)
        #expect(q.storageCapacity >= 20_000)
        var seen = Set<Int>()
        while let k = q.tryGet() { seen.insert(k); q.done(k) }
        #expect(seen.count == 20_000)
        #expect(q.isIdle())
        #expect(q.storageCapacity < 3 * 4096)
        // Still a working queue afterwards: a key added while processing comes back once.
        q.add(7)
        let k = q.tryGet()
        #expect(k == 7)
        q.add(7)
        #expect(q.tryGet() == nil)
        q.done(7)
        #expect(q.tryGet() == 7)
    }

    @Test func workloadsOfOneShapeShareTheirResourceVectors() throws {
        let s = SchedulerState()
        for i in 0..<500 {
            s.setWorkload(wkey("w\(i)"), WorkloadRequest(queue: "q", replicas: 2, resources: res(4, cpu: "16")))
        }
        s.setWorkload(wkey("other"), WorkloadRequest(queue: "q", replicas: 3, resources: res(1)))
        func storage(_ v: [Int64]) -> UnsafeRawPointer? { v.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
        let first = try #require(s.workloadIndex[wkey("w0")].map { s.workloads[Int($0)] })
        let last = try #require(s.workloadIndex[wkey("w499")].map { s.workloads[Int($0)] })
        let other = try #require(s.workloadIndex[wkey("other")].map { s.workloads[Int($0)] })
        #expect(storage(first.perReplica) == storage(last.perReplica))
        #expect(storage(first.total) == storage(last.total))
        #expect(first.total[ResourceSlots.gpu] == 8000)
        #expect(other.perReplica != first.perReplica && other.total[ResourceSlots.gpu] == 3000)
        #expect(s.vectorPool.count == 4)
        // A changed request gets its own vectors; the others keep theirs.
        s.setWorkload(wkey("w0"), WorkloadRequest(queue: "q", replicas: 1, resources: res(4, cpu: "16")))
        let changed = try #require(s.workloadIndex[wkey("w0")].map { s.workloads[Int($0)] })
        #expect(changed.total[ResourceSlots.gpu] == 4000)
        #expect(s.workloads[Int(s.workloadIndex[wkey("w1")]!)].total[ResourceSlots.gpu] == 8000)
    }

    @Test func aFileOfManyObjectsIsIndexedAndDiffedByKey() throws {
        var idx = ManifestIndex()
        let names = (0..<300).map { "w\($0)" }.shuffled()
        let text = names.map { workloadYAML($0) }.joined(separator: "\n---\n")
        let first = idx.update(manifest("many.yaml", text))
        #expect(first.filter { if case .upsert = $0 { return true }; return false }.count == 300)
        for n in names { #expect(idx.object(ObjectKey(.workload, namespace: "team-a", name: n))?.meta.name == n) }
        #expect(idx.object(ObjectKey(.workload, namespace: "team-a", name: "w300")) == nil)
        // Change every fifth (same line count, so the others' sources stay): exactly those.
        let bumped = Set(names.enumerated().filter { $0.offset % 5 == 0 }.map(\.element))
        let edited = names.map { bumped.contains($0) ? workloadYAML($0, priority: "7") : workloadYAML($0) }
        let changes = idx.update(manifest("many.yaml", edited.joined(separator: "\n---\n")))
        var upserts = Set<String>()
        for c in changes { if case .upsert(let o) = c { upserts.insert(o.meta.name) } }
        #expect(upserts == bumped)
        #expect(!changes.contains { if case .delete = $0 { return true }; return false })
        // Drop every third: exactly those are deleted (the rest move lines, so they are upserts).
        let dropped = Set(names.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))
        let rest = names.enumerated().filter { !dropped.contains($0.element) }.map { edited[$0.offset] }
        var deletes = Set<String>()
        for c in idx.update(manifest("many.yaml", rest.joined(separator: "\n---\n"))) {
            if case .delete(let k) = c { deletes.insert(k.name) }
            if case .upsert(let o) = c { #expect(!dropped.contains(o.meta.name)) }
        }
        #expect(deletes == dropped)
        #expect(idx.objectCount == 200)
        let kept = try #require(names.first { bumped.contains($0) && !dropped.contains($0) })
        #expect(idx.object(ObjectKey(.workload, namespace: "team-a", name: kept))?.spec.workload?.priority == 7)
        let gone = idx.remove(path: "many.yaml")
        #expect(gone.filter { if case .delete = $0 { return true }; return false }.count == 200)
        #expect(idx.objectCount == 0)
    }
}
