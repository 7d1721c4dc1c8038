import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Random (version 4) UUIDs in lower case, as object uids: the bytes come from the system's
/// generator 4 KiB at a time (one read of /dev/urandom). `UUID().uuidString.lowercased()` asked the kernel for each one
/// and built two strings; a 100,000-object load spent 0.14 s of its main thread there.
public enum RandomUID {
    struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var next = 4096
    }
    static let pool = Mutex(Pool())
    static let hex = Array("0123456789abcdef".utf8)

    /// A new uid, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` (y one of 8, 9, a, b).
    public static func next() -> String {
        var raw = pool.withLock { p -> [UInt8] in
            if p.next + 16 > p.bytes.count {
                p.bytes.withUnsafeMutableBytes { buf in
                    // One read of the kernel's generator for the lot; anything short of it
                    // (no /dev/urandom in a chroot, a signal) from Swift's system generator.
                    var got = -1
                    let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
                    if fd >= 0, let base = buf.baseAddress {
                        got = read(fd, base, buf.count)
                    }
                    if fd >= 0 { _ = close(fd) }
                    if got != buf.count {
                        var g = SystemRandomNumberGenerator()
                        let words = buf.bindMemory(to: UInt64.self)
                        for i in words.indices { words[i] = g.next() }
                    }
                }
                p.next = 0
            }
            defer { p.next += 16 }
            return Array(p.bytes[p.next..<p.next + 16])
        }
        raw[6] = raw[6] & 0x0f | 0x40   // version 4
        raw[8] = raw[8] & 0x3f | 0x80   // RFC 4122 variant
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (i, b) in raw.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
