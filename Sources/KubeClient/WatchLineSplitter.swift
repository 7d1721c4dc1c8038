/// Splits a byte stream into lines at `\n`, buffering a partial line across chunks however
/// the stream was cut. Empty lines (and a trailing `\r`) are dropped. A line longer than
/// `maxLine` bytes is an error (`feed` returns nil) so a hostile stream cannot grow the
/// buffer without bound.
public struct WatchLineSplitter: Sendable {
    public let maxLine: Int
    private var partial: [UInt8] = []

    public init(maxLine: Int = 64 << 20) { self.maxLine = maxLine }

    /// The complete lines this chunk finishes, in order; nil when a line exceeds `maxLine`.
    public mutating func feed<C: Collection>(_ chunk: C) -> [[UInt8]]? where C.Element == UInt8 {
        var lines: [[UInt8]] = []
        for b in chunk {
            if b == 0x0A {
                if let line = take() { lines.append(line) }
            } else {
                guard partial.count < maxLine else { return nil }
                partial.append(b)
            }
        }
        return lines
    }

    /// What is left after the stream ended without a final newline, if anything.
    public mutating func finish() -> [UInt8]? { take() }

    /// Bytes buffered for the line in progress.
    public var pendingCount: Int { partial.count }

    private mutating func take() -> [UInt8]? {
        if partial.last == 0x0D { partial.removeLast() }
        defer { partial.removeAll(keepingCapacity: true) }
        if partial.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        return partial
    }
}
