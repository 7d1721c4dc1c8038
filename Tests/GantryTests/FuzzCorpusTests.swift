import Testing
import Foundation
import FuzzHarness

/// The committed fuzz seed corpus (`Fuzz/corpus`) through the fuzz targets' checks, so the
/// checks and the seeds keep building and passing without libFuzzer (`make fuzz` runs them
/// coverage-guided). The replay steers around the findings still open (`knownOpen`).
struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus").path

    static func inputs(_ target: String) -> [String] {
        let dir = root + "/" + target
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    @Test func manifestSeedsPassTheChecks() throws {
        let files = Self.inputs("manifest")
        #expect(files.count >= 5)
        for f in files {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: f)))
            #expect(ManifestFuzz.check(bytes, avoid: SchedulerFuzz.knownOpen) == nil, "\(f)")
        }
    }

    @Test func schedulerSeedsPassTheChecks() throws {
        let files = Self.inputs("scheduler")
        #expect(files.count >= 3)
        for f in files {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: f)))
            #expect(SchedulerFuzz.check(bytes, avoid: SchedulerFuzz.knownOpen) == nil, "\(f)")
        }
    }

    /// The harness itself catches a broken model: an empty input is a valid program.
    @Test func emptyInputsAreValidPrograms() {
        #expect(ManifestFuzz.check([]) == nil)
        #expect(SchedulerFuzz.check([]) == nil)
    }
}
