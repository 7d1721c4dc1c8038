import Foundation

/// What a plain replay steers around: `GANTRY_FUZZ_AVOID` when set (empty: nothing, to
/// reproduce a finding), else the findings still open, as the tests do.
public let replayAvoid: Set<String> = getenv("GANTRY_FUZZ_AVOID") == nil ? SchedulerFuzz.knownOpen : envAvoid

/// Runs a fuzz entry over files given on the command line (directories: every file in them,
/// sorted), the way the non-fuzzer build of the fuzz executables replays a corpus.
/// Returns the number of inputs whose check failed.
public func replayFiles(_ paths: [String], name: String, _ check: ([UInt8]) -> String?) -> Int {
    var files: [String] = []
    for p in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            FileHandle.standardError.write(Data("\(name): no such file: \(p)\n".utf8)); return 1
        }
        if isDir.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []
            files += names.sorted().map { p + "/" + $0 }.filter { !$0.hasSuffix("/README") }
        } else {
            files.append(p)
        }
    }
    var failures = 0
    for f in files {
        guard let data = FileManager.default.contents(atPath: f) else { continue }
        if let problem = check([UInt8](data)) {
            failures += 1
            FileHandle.standardError.write(Data("\(name): \(f): \(problem)\n".utf8))
        }
    }
    print("\(name): replayed \(files.count) input\(files.count == 1 ? "" : "s"), \(failures) failed")
    return failures
}
