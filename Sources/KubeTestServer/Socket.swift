import Glibc
import Synchronization

/// A connected (or listening) socket descriptor. Its owning thread reads, writes and
/// finally closes it; other threads may only `shutdown` it (to wake a blocked read or end
/// a stream), which the mutex keeps from touching a descriptor number after it was closed
/// and reused. The calls under the mutex never block.
final class Socket: Sendable {
    private let fdBox: Mutex<Int32>
    /// The descriptor for the owner's own reads and writes (valid until `close`).
    let fd: Int32

    init(fd: Int32) {
        self.fd = fd
        fdBox = Mutex(fd)
    }

    /// Ends both directions now: a blocked read returns, the peer sees the stream end.
    func shutdown() {
        fdBox.withLock { fd in
            if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Resets the connection (RST rather than FIN) and ends it, for abrupt drops.
    func abort() {
        fdBox.withLock { fd in
            guard fd >= 0 else { return }
            var l = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
            _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    func close() {
        fdBox.withLock { fd in
            if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
        }
    }

    /// Writes all bytes; false when the peer is gone.
    func sendAll(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return send(fd, base + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Appends what is available (blocking) to `out`, reading through `scratch`; false at
    /// end of stream or on error.
    func receive(into out: inout [UInt8], scratch: inout [UInt8]) -> Bool {
        let max = scratch.count
        while true {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            out.append(contentsOf: scratch[0..<n])
            return true
        }
    }
}

/// A non-blocking pipe that wakes a watch stream's thread when events are queued for it.
/// `signal` may come from any thread; the owner closes it once the watch is unregistered.
final class Waker: Sendable {
    private let writeBox: Mutex<Int32>
    /// The read end, polled and drained by the owner.
    let fd: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for f in fds {
                _ = fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK)
                _ = fcntl(f, F_SETFD, FD_CLOEXEC)
            }
        }
        fd = fds[0]
        writeBox = Mutex(fds[1])
    }

    func signal() {
        writeBox.withLock { w in
            guard w >= 0 else { return }
            var one: UInt8 = 1
            _ = write(w, &one, 1)
        }
    }

    func drain() {
        var buf = [UInt8](repeating: 0, count: 256)
        while buf.withUnsafeMutableBytes({ read(fd, $0.baseAddress, 256) }) > 0 {}
    }

    func close() {
        writeBox.withLock { w in
            if w >= 0 { _ = Glibc.close(w); w = -1 }
        }
        if fd >= 0 { _ = Glibc.close(fd) }
    }
}
