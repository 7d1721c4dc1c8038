import Testing
import Foundation
import Synchronization
@testable import GantryAPI
@testable import ControllerRuntime
@testable import DirectorySource
@testable import Controllers
@testable import GantryServer

/// The two manifest layers of directory mode (the user's spec directory over the API's
/// directory), and the log reader the API serves replicas' logs with.
@Suite(.timeLimit(.minutes(1))) struct ManifestLayersTests {
    /// A sink that keeps what is in force, as the inventory would.
    final class Store: ManifestSink, @unchecked Sendable {
        let m = Mutex<[ObjectKey: ManifestObject]>([:])
        func apply(_ changes: [ManifestChange]) {
            m.withLock { st in
                for c in changes {
                    switch c {
                    case .upsert(let o): st[o.key] = o
                    case .delete(let k): st[k] = nil
                    default: break
                    }
                }
            }
        }
        func get(_ k: ObjectKey) -> ManifestObject? { m.withLock { $0[k] } }
    }

    func workload(_ name: String, file: String, priority: Int = 0) -> ManifestObject {
        var spec = WorkloadSpec(); spec.priority = priority
        return ManifestObject(meta: ObjectMeta(name: name, namespace: "team-a"), spec: .workload(spec), source: SourceRef(file: file, line: 1, index: 0))
    }

    @Test func theUsersManifestWinsAndTheAPIsCopyComesBack() {
        let store = Store()
        let layers = ManifestLayers(downstream: store, current: { store.get($0)?.source })
        let key = ObjectKey(.workload, namespace: "team-a", name: "w")
        // The API writes it first: in force, marked as the API's.
        layers.apiLayer.apply([.upsert(workload("w", file: "workloads/team-a/w.json"))])
        #expect(store.get(key)?.source.isAPIOwned == true)
        #expect(store.get(key)?.source.file == "@api/workloads/team-a/w.json")
        // A user's manifest declares it: the manifest's version is in force.
        layers.user.apply([.upsert(workload("w", file: "mine.yaml", priority: 1))])
        #expect(store.get(key)?.source.file == "mine.yaml")
        // The API's copy changes meanwhile: held back, not in force.
        layers.apiLayer.apply([.upsert(workload("w", file: "workloads/team-a/w.json", priority: 2))])
        #expect(store.get(key)?.spec.workload?.priority == 1)
        // The manifest goes: the API's (newest) copy comes back.
        layers.user.apply([.delete(key)])
        #expect(store.get(key)?.source.isAPIOwned == true)
        #expect(store.get(key)?.spec.workload?.priority == 2)
        // The API's file goes too: deleted.
        layers.apiLayer.apply([.delete(key)])
        #expect(store.get(key) == nil)
    }

    @Test func anAPIDeleteDoesNotTouchTheUsersObject() {
        let store = Store()
        let layers = ManifestLayers(downstream: store, current: { store.get($0)?.source })
        let key = ObjectKey(.workload, namespace: "team-a", name: "w")
        layers.user.apply([.upsert(workload("w", file: "mine.yaml"))])
        layers.apiLayer.apply([.upsert(workload("w", file: "workloads/team-a/w.json"))])
        #expect(store.get(key)?.source.file == "mine.yaml")
        layers.apiLayer.apply([.delete(key)])
        #expect(store.get(key)?.source.file == "mine.yaml", "the user's object stays")
        layers.user.apply([.delete(key)])
        #expect(store.get(key) == nil, "no API copy left to come back")
    }

    @Test func fileReportsOfTheAPIDirectoryNameIt() {
        final class Reports: ManifestSink, @unchecked Sendable {
            let files = Mutex<[String]>([])
            func apply(_ changes: [ManifestChange]) {
                for c in changes { if case .fileReport(let f, _, let e, _) = c { files.withLock { $0.append(f + "|" + (e.first?.file ?? "")) } } }
            }
        }
        let r = Reports()
        let layers = ManifestLayers(downstream: r, current: { _ in nil })
        layers.apiLayer.apply([.fileReport(file: "workloads/a/x.json", fatal: nil, errors: [FieldError(file: "workloads/a/x.json", line: 1, path: "spec", message: "bad")], warnings: [])])
        #expect(r.files.withLock { $0 } == ["@api/workloads/a/x.json|@api/workloads/a/x.json"])
    }
}

@Suite(.timeLimit(.minutes(1))) struct FileLogReaderTests {
    func read(_ r: FileLogReader, _ o: LogOptions) throws -> String {
        var out: [UInt8] = []
        try r.read(o) { out += $0; return true }
        return String(decoding: out, as: UTF8.self)
    }

    func reader(_ dir: String, now: Double = 1000, live: Bool = false) -> FileLogReader {
        FileLogReader(path: dir + "/r.log", pollInterval: 0.01, times: { LogTimes.load(path: $0) }, now: { now }, isLive: { live })
    }

    @Test func tailSinceTimestampsAndTheOlderHalf() throws {
        let dir = try makeTemporaryDirectory("gantry-logreader-")
        defer { removeTree(dir) }
        // The older half (rotated by the size cap) and the current file, each with its index.
        try "a1\na2\n".write(toFile: dir + "/r.log.1", atomically: true, encoding: .utf8)
        try "0 900.0\n3 910.0\n".write(toFile: dir + "/r.log.1.times", atomically: true, encoding: .utf8)
        try "b1\nb2\nb3\n".write(toFile: dir + "/r.log", atomically: true, encoding: .utf8)
        try "0 950.0\n6 990.0\n".write(toFile: dir + "/r.log.times", atomically: true, encoding: .utf8)
        let r = reader(dir)
        #expect(try read(r, LogOptions()) == "a1\na2\nb1\nb2\nb3\n", "everything: the older half first")
        #expect(try read(r, LogOptions(tail: 2)) == "b2\nb3\n")
        #expect(try read(r, LogOptions(tail: 4)) == "a2\nb1\nb2\nb3\n", "a tail reaching back into the older half")
        #expect(try read(r, LogOptions(tail: 0)) == "")
        #expect(try read(r, LogOptions(sinceSeconds: 20)) == "b3\n", "lines read in the last 20 s (now = 1000)")
        #expect(try read(r, LogOptions(sinceSeconds: 95)) == "a2\nb1\nb2\nb3\n", "since reaching back into the older half")
        let stamped = try read(r, LogOptions(tail: 1, timestamps: true))
        #expect(stamped == FileLogReader.rfc3339Nanos(990) + " b3\n")
        #expect(try read(r, LogOptions(limitBytes: 4)) == "a1\na")
    }

    /// A follow of a log on a thread of its own: what it emitted so far, and a signal when it returned.
    final class Following: Sendable {
        let got = Mutex<[UInt8]>([])
        let done = DispatchSemaphore(value: 0)
        var text: String { got.withLock { String(decoding: $0, as: UTF8.self) } }
        init(_ r: FileLogReader) {
            Thread.detachNewThread { [self] in
                try? r.read(LogOptions(follow: true)) { b in got.withLock { $0 += b }; return true }
                done.signal()
            }
        }
    }

    @Test func followReadsWhatIsAppendedUntilTheReplicaEnds() throws {
        let dir = try makeTemporaryDirectory("gantry-logfollow-")
        defer { removeTree(dir) }
        try "first\n".write(toFile: dir + "/r.log", atomically: true, encoding: .utf8)
        let live = Atomic<Bool>(true)
        let r = FileLogReader(path: dir + "/r.log", pollInterval: 0.01, times: { _ in [] }, now: { 0 }, isLive: { live.load(ordering: .relaxed) })
        let f = Following(r)
        #expect(poll(timeout: 5) { f.text == "first\n" })
        let h = try #require(FileHandle(forWritingAtPath: dir + "/r.log"))
        h.seekToEndOfFile(); h.write(Data("second\nthird without newline".utf8)); try h.close()
        #expect(poll(timeout: 5) { f.text.hasSuffix("second\n") })
        live.store(false, ordering: .relaxed)
        #expect(f.done.wait(timeout: .now() + 5) == .success, "the follow ends once the replica has")
        #expect(f.text == "first\nsecond\nthird without newline")
    }

    @Test func aFollowWaitsForTheLogOfAReplicaNotStartedYet() throws {
        let dir = try makeTemporaryDirectory("gantry-logwait-")
        defer { removeTree(dir) }
        let live = Atomic<Bool>(true)
        let r = FileLogReader(path: dir + "/r.log", pollInterval: 0.01, times: { _ in [] }, now: { 0 }, isLive: { live.load(ordering: .relaxed) })
        let f = Following(r)
        #expect(f.done.wait(timeout: .now() + 0.3) == .timedOut, "still waiting for the log")
        try "hello\n".write(toFile: dir + "/r.log", atomically: true, encoding: .utf8)
        #expect(poll(timeout: 5) { f.text == "hello\n" })
        live.store(false, ordering: .relaxed)
        #expect(f.done.wait(timeout: .now() + 5) == .success)
    }

    @Test func aMissingLogIs404() throws {
        let dir = try makeTemporaryDirectory("gantry-lognone-")
        defer { removeTree(dir) }
        #expect(throws: APIError.self) { try read(reader(dir), LogOptions()) }
    }
}
