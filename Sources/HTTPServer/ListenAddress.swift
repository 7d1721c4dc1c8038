import Foundation
import CMicroHTTPD

/// Why a server could not start; `description` is a message a user can act on.
public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable { case badAddress, addressInUse, cannotListen, cannotStart }
    public let code: Code
    public let message: String
    public var description: String { message }
}

/// A parsed listen address: ":8080", "0.0.0.0:8080", "127.0.0.1:0", "[::1]:8080", "localhost:8080".
/// An empty host means every IPv4 interface; "localhost" means 127.0.0.1.
struct ListenAddress {
    var host: String
    var port: UInt16

    init(_ text: String) throws {
        func bad(_ why: String) -> HTTPServerError {
            HTTPServerError(code: .badAddress, message: "bad listen address \"\(text)\": \(why) (expected HOST:PORT, :PORT or [IPv6]:PORT)")
        }
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("missing ]") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("missing :PORT") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw bad("missing :PORT") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { throw bad("put an IPv6 address in brackets") }
        }
        guard !portPart.isEmpty, portPart.allSatisfy(\.isASCII), let p = UInt16(portPart) else { throw bad("the port must be a number from 0 to 65535") }
        port = p
        host = hostPart.isEmpty ? "0.0.0.0" : hostPart == "localhost" ? "127.0.0.1" : String(hostPart)
    }

    /// A listening, non-blocking, close-on-exec socket bound to this address.
    func listen(original: String) throws -> Int32 {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var family: Int32 = AF_INET
        var v4 = sockaddr_in(), v6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeBytes(of: v4) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeBytes(of: v6) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_ADDRCONFIG
            var res: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &res)
            defer { if let res { freeaddrinfo(res) } }
            guard rc == 0, let first = res, let addr = first.pointee.ai_addr,
                  Int(first.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size else {
                throw HTTPServerError(code: .badAddress, message: "bad listen address \"\(original)\": cannot resolve host \"\(host)\"")
            }
            family = first.pointee.ai_family
            length = first.pointee.ai_addrlen
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: Int(length))) }
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerError(code: .cannotListen, message: "cannot listen on \(original): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if family == AF_INET6 { _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        if bound != 0 || Glibc.listen(fd, SOMAXCONN) != 0 {
            let err = errno
            close(fd)
            if err == EADDRINUSE { throw HTTPServerError(code: .addressInUse, message: "cannot listen on \(original): the address is already in use") }
            if err == EADDRNOTAVAIL { throw HTTPServerError(code: .badAddress, message: "cannot listen on \(original): no such local address") }
            throw HTTPServerError(code: .cannotListen, message: "cannot listen on \(original): \(String(cString: strerror(err)))")
        }
        return fd
    }

    /// The port a listening socket is bound to.
    static func boundPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard rc == 0 else { return 0 }
        return numericAddress(&storage).port
    }

    /// "host:port" ("[v6]:port") of a socket address.
    static func describe(_ addr: UnsafePointer<sockaddr>) -> String {
        var storage = sockaddr_storage()
        let size = addr.pointee.sa_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: size)) }
        let (host, port) = numericAddress(&storage)
        return storage.ss_family == sa_family_t(AF_INET6) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func numericAddress(_ storage: inout sockaddr_storage) -> (host: String, port: Int) {
        var host = [CChar](repeating: 0, count: 1025), serv = [CChar](repeating: 0, count: 32)
        let len = socklen_t(storage.ss_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return ("", 0) }
        return (String(cString: host), Int(String(cString: serv)) ?? 0)
    }
}

extension HTTPServer {
    /// Whether a listen address (as `init(address:)` takes it) binds only the loopback
    /// interface: 127.0.0.0/8, ::1 or "localhost". Throws for a malformed address.
    public static func isLoopback(address: String) throws -> Bool {
        let a = try ListenAddress(address)
        if a.host == "::1" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, a.host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        return false
    }
}
