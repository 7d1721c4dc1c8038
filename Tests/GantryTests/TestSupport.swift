import Testing
import Foundation
import Synchronization

// Helpers that keep a failing precondition from passing a test or harming the machine:
// bounded waits, bounded child processes, signals only to processes that are demonstrably
// someone else than the test runner, temporary directories that are removed.

/// A fresh directory under the temporary directory. The caller removes it (`removeTree`).
func makeTemporaryDirectory(_ prefix: String = "gantry-test-") throws -> String {
    let path = NSTemporaryDirectory() + prefix + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Removes a tree the test created; a failure to remove is recorded, not ignored.
func removeTree(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard FileManager.default.fileExists(atPath: path) else { return }
    do { try FileManager.default.removeItem(atPath: path) } catch {
        // A process being killed may still write into it: one more try after a moment.
        usleep(100_000)
        do { try FileManager.default.removeItem(atPath: path) } catch {
            Issue.record("could not remove \(path): \(error)", sourceLocation: sourceLocation)
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` seconds passed; returns whether it
/// held. Errors thrown by `cond` end the wait and propagate.
@discardableResult
func poll(timeout: Double, _ cond: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try cond() { return true }
        usleep(10_000)
    }
    return try cond()
}

/// Whether `pid` names a live process (a zombie, killed and not yet reaped, is not live).
func isAlive(_ pid: Int32) -> Bool {
    guard pid > 0, kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state != "Z" && state != "X"
}

/// Whether a live (not zombie) process is in process group `pgid`; reads /proc, sends nothing.
func groupHasLiveMembers(_ pgid: Int32) -> Bool {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
    for e in entries {
        guard let pid = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        // After "comm)": state, ppid, pgrp, ...
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 2, Int32(fields[2]) == pgid, fields[0] != "Z", fields[0] != "X", pid > 0 { return true }
    }
    return false
}

/// Whether a signal to `pid`, or to the group it leads, could reach the test runner itself:
/// 0, -1 and negative ids (groups, everything), 1, the runner, its parent, its group.
func signalWouldHitTheRunner(_ pid: Int32) -> Bool {
    pid <= 1 || pid == getpid() || pid == getppid() || pid == getpgrp()
}

/// Sends `sig` to process `pid` (or its group), refusing, and recording an issue for, any
/// id that could reach the test runner. Returns kill's result, or -1 when refused.
@discardableResult
func signalProcess(_ pid: Int32, _ sig: Int32, group: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) -> Int32 {
    if signalWouldHitTheRunner(pid) {
        Issue.record("refused to send signal \(sig) to \(group ? "group " : "")\(pid): it could reach the test runner", sourceLocation: sourceLocation)
        return -1
    }
    return kill(group ? -pid : pid, sig)
}

/// A child process's exit status and its standard output and error together.
struct ProcessOutcome: Sendable {
    var status: Int32
    var output: String
    var timedOut: Bool
}

/// Runs `executable` with `args`, its output collected, killed (SIGKILL) when it runs past
/// `timeout` seconds: the outcome then says `timedOut`, and an issue is recorded unless
/// `recordTimeout` is false.
func runProcess(_ executable: String, _ args: [String], timeout: Double = 30, recordTimeout: Bool = true,
                environment: [String: String]? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> ProcessOutcome {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let environment { p.environment = environment }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch {
        Issue.record("could not start \(executable): \(error)", sourceLocation: sourceLocation)
        return ProcessOutcome(status: -1, output: "", timedOut: false)
    }
    // Read on another thread: a child that never exits must not block the test forever.
    let collected = Mutex(Data())
    let done = DispatchSemaphore(value: 0)
    let reader = pipe.fileHandleForReading
    Thread.detachNewThread {
        let data = reader.readDataToEndOfFile()
        collected.withLock { $0 = data }
        done.signal()
    }
    let exited = poll(timeout: timeout) { !p.isRunning }
    if !exited {
        let pid = p.processIdentifier
        if pid > 0 { signalProcess(pid, SIGKILL, sourceLocation: sourceLocation) }
        poll(timeout: 5) { !p.isRunning }
        if recordTimeout { Issue.record("\(executable) \(args.joined(separator: " ")) ran past \(timeout) s and was killed", sourceLocation: sourceLocation) }
    }
    // A grandchild may still hold the pipe open: wait a little for the output, not forever.
    _ = done.wait(timeout: .now() + 5)
    let output = String(decoding: collected.withLock { $0 }, as: UTF8.self)
    return ProcessOutcome(status: p.isRunning ? -1 : p.terminationStatus, output: output, timedOut: !exited)
}

@Suite(.timeLimit(.minutes(1))) struct TestSupportTests {
    @Test func signalsThatCouldReachTheRunnerAreRefused() {
        for pid in [0, -1, -getpgrp(), 1, getpid(), getppid(), getpgrp()] as [Int32] { #expect(signalWouldHitTheRunner(pid), "\(pid)") }
    }

    @Test func aChildPastItsTimeoutIsKilled() {
        let o = runProcess("/bin/sh", ["-c", "echo started; exec sleep 30"], timeout: 0.5, recordTimeout: false)
        #expect(o.timedOut && o.output == "started\n")
    }
}
