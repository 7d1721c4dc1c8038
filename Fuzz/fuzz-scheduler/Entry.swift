import Foundation
import FuzzHarness

#if GANTRY_FUZZ
import CFuzzer

/// Built with `-sanitize=fuzzer -DGANTRY_FUZZ` (`make fuzz`): libFuzzer drives the input;
/// a failed check is a crash, with its message on stderr.
@main enum Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            let bytes = data.map { [UInt8](UnsafeBufferPointer(start: $0, count: size)) } ?? []
            if let problem = SchedulerFuzz.check(bytes) { fatalError("fuzz-scheduler: \(problem)") }
            return 0
        })
    }
}
#else
/// A plain build replays the files (or directories of files) given as arguments.
@main enum Replay {
    static func main() {
        let failed = replayFiles(Array(CommandLine.arguments.dropFirst()), name: "fuzz-scheduler") { SchedulerFuzz.check($0, avoid: replayAvoid) }
        exit(failed > 0 ? 1 : 0)
    }
}
#endif
