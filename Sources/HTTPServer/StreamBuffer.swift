import Foundation

/// The bounded buffer between a stream's producer thread and the connection that sends it.
/// `write` blocks while `capacity` bytes wait to be sent; `close` (client gone, server
/// stopping) makes every later `write` return false at once.
// @unchecked: every stored property is read and written only with `cond` locked; an
// NSCondition because both sides wait (Mutex cannot).
final class StreamBuffer: @unchecked Sendable {
    enum ReadResult: Equatable { case bytes(Int), end, closed, idle }

    private let cond = NSCondition()
    /// Chunks waiting; those before `head` are sent.
    private var chunks: [[UInt8]] = []
    private var head = 0
    private var offset = 0
    private var buffered = 0
    private var finished = false
    private var closed = false
    let capacity: Int

    init(capacity: Int, stallLimit: Double = 120) { self.capacity = max(capacity, 1); self.stallLimit = stallLimit }

    /// Seconds `write` waits for room before it gives up on the client (one that stopped
    /// reading): the buffer closes, and the producer ends.
    let stallLimit: Double

    /// Queues `bytes`; false once the buffer is closed, or when the client took nothing for
    /// `stallLimit` seconds.
    func write(_ bytes: [UInt8]) -> Bool {
        cond.lock()
        let deadline = Date(timeIntervalSinceNow: stallLimit)
        while !closed && buffered >= capacity {
            if !cond.wait(until: deadline) && buffered >= capacity {
                cond.unlock()
                close()
                return false
            }
        }
        defer { cond.unlock() }
        if closed { return false }
        guard !bytes.isEmpty else { return true }
        chunks.append(bytes)
        buffered += bytes.count
        cond.broadcast()
        return true
    }

    /// The producer is done: the reader sees `.end` once the buffer is drained.
    func finish() {
        cond.lock(); finished = true; cond.broadcast(); cond.unlock()
    }

    func close() {
        cond.lock(); closed = true; chunks = []; head = 0; buffered = 0; offset = 0; cond.broadcast(); cond.unlock()
    }

    var isClosed: Bool { cond.lock(); defer { cond.unlock() }; return closed }

    /// Copies up to `max` buffered bytes to `dest`, waiting up to `wait` seconds for some.
    func read(into dest: UnsafeMutableRawPointer, max: Int, wait: Double) -> ReadResult {
        cond.lock(); defer { cond.unlock() }
        let deadline = Date(timeIntervalSinceNow: wait)
        while head == chunks.count && !finished && !closed {
            if !cond.wait(until: deadline) { break }
        }
        if closed { return .closed }
        guard head < chunks.count else { return finished ? .end : .idle }
        let first = chunks[head]
        let n = min(max, first.count - offset)
        guard n > 0 else { return .idle }
        first.withUnsafeBytes { src in
            if let base = src.baseAddress { dest.copyMemory(from: base + offset, byteCount: n) }
        }
        offset += n
        buffered -= n
        if offset >= first.count {
            chunks[head] = []
            head += 1; offset = 0
            if head == chunks.count { chunks.removeAll(keepingCapacity: true); head = 0 } else if head >= 64 { chunks.removeFirst(head); head = 0 }
        }
        cond.broadcast()
        return .bytes(n)
    }
}
