import Foundation

/// `transform` applied to every item, spread over the machine's cores when there are at
/// least `minimum` items; the result keeps the input order. For CPU-bound work on
/// independent items (decoding files, encoding rows).
public func parallelMap<T, R>(_ items: [T], minimum: Int = 2, _ transform: (T) -> R) -> [R] {
    guard items.count >= max(2, minimum) else { return items.map(transform) }
    let workers = min(max(2, ProcessInfo.processInfo.activeProcessorCount), 8, items.count)
    let chunk = (items.count + workers - 1) / workers
    var out = [R?](repeating: nil, count: items.count)
    out.withUnsafeMutableBufferPointer { buf in
        withoutActuallyEscaping(transform) { transform in
            // Each iteration reads the shared input and writes only its own range of `buf`.
            let shared = DisjointRanges(input: items, output: buf, transform: transform)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = w * chunk, hi = min(shared.input.count, lo + chunk)
                guard lo < hi else { return }
                for i in lo..<hi { shared.output[i] = shared.transform(shared.input[i]) }
            }
        }
    }
    return out.map { $0! }   // cannot fail: the chunks cover every index once
}

private struct DisjointRanges<T, R>: @unchecked Sendable {
    let input: [T]
    let output: UnsafeMutableBufferPointer<R?>
    let transform: (T) -> R
}
