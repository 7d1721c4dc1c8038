import Foundation
import GantryAPI
import Glibc

/// A deliberately small HTTP/1.1 client on a raw socket, for testing the test API server
/// byte by byte: whole responses (Content-Length or chunked) and watch streams read chunk
/// by chunk. Every read waits at most its timeout, so a broken server fails a test
/// instead of hanging it.
final class RawHTTPConnection {
    let fd: Int32
    private var buffer: [UInt8] = []
    /// Chunks of a chunked body read so far (with their sizes), for split-chunk checks.
    private(set) var chunkSizes: [Int] = []

    struct ConnectError: Error {}

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ConnectError() }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else { Glibc.close(fd); throw ConnectError() }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return Glibc.send(fd, base + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    enum Fill { case more, eof, timeout }

    private func fill(timeout: Double) -> Fill {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&p, 1, Int32(timeout * 1000)) > 0 else { return .timeout }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
        if n <= 0 { return .eof }
        buffer.append(contentsOf: buf[0..<n])
        return .more
    }

    private func line(timeout: Double) -> String? {
        while true {
            if let i = buffer.indices.dropLast().first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                let s = String(decoding: buffer[0..<i], as: UTF8.self)
                buffer.removeFirst(i + 2)
                return s
            }
            guard fill(timeout: timeout) == .more else { return nil }
        }
    }

    /// Status code and lower-cased headers of the next response.
    func readHead(timeout: Double = 5) -> (Int, [String: String])? {
        guard let status = line(timeout: timeout) else { return nil }
        let parts = status.split(separator: " ")
        guard parts.count >= 2, let code = Int(parts[1]) else { return nil }
        var headers: [String: String] = [:]
        while let l = line(timeout: timeout), !l.isEmpty {
            if let c = l.firstIndex(of: ":") {
                headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return (code, headers)
    }

    enum Chunk: Equatable { case data([UInt8]), end, eof, timeout }

    /// The next chunk of a chunked body: data, the terminating chunk, or the stream ending
    /// without one (eof).
    func nextChunk(timeout: Double = 5) -> Chunk {
        while true {
            if let i = buffer.indices.dropLast().first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                guard let size = Int(String(decoding: buffer[0..<i], as: UTF8.self), radix: 16) else { return .eof }
                if buffer.count >= i + 2 + size + 2 {
                    let data = Array(buffer[(i + 2)..<(i + 2 + size)])
                    buffer.removeFirst(i + 2 + size + 2)
                    if size == 0 { return .end }
                    chunkSizes.append(size)
                    return .data(data)
                }
            }
            switch fill(timeout: timeout) {
            case .more: continue
            case .eof: return .eof
            case .timeout: return .timeout
            }
        }
    }

    func readBody(_ headers: [String: String], timeout: Double = 5) -> [UInt8]? {
        if let cl = headers["content-length"], let n = Int(cl) {
            while buffer.count < n { guard fill(timeout: timeout) == .more else { return nil } }
            let body = Array(buffer[0..<n])
            buffer.removeFirst(n)
            return body
        }
        var body: [UInt8] = []
        while true {
            switch nextChunk(timeout: timeout) {
            case .data(let d): body += d
            case .end: return body
            default: return nil
            }
        }
    }

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var json: Value { var b = body; return (try? JSON.parse(bytes: &b)) ?? .null }
    }

    /// Sends one request on this (kept-alive) connection and reads the whole response.
    func request(_ method: String, _ target: String, body: String? = nil, contentType: String = "application/json",
                 headers: [String: String] = [:]) -> Response? {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if let body {
            text += "Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            text += "\r\n"
        }
        guard send(text), let (code, h) = readHead(), let b = readBody(h) else { return nil }
        return Response(status: code, headers: h, body: b)
    }
}

/// A watch stream: events decoded from newline-delimited JSON across any chunking.
final class RawWatch {
    let conn: RawHTTPConnection
    let status: Int
    let headers: [String: String]
    private var line: [UInt8] = []
    private var pending: [Value] = []

    enum Read { case event(Value), end, broken, timeout }

    init?(port: Int, _ target: String, headers: [String: String] = [:]) {
        guard let c = try? RawHTTPConnection(port: port) else { return nil }
        var text = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        guard c.send(text + "\r\n"), let (code, h) = c.readHead() else { return nil }
        conn = c
        status = code
        self.headers = h
    }

    func next(timeout: Double = 5) -> Read {
        while true {
            if !pending.isEmpty { return .event(pending.removeFirst()) }
            switch conn.nextChunk(timeout: timeout) {
            case .data(let d):
                for b in d {
                    if b == 10 {
                        var l = line
                        line = []
                        if let v = try? JSON.parse(bytes: &l) { pending.append(v) }
                    } else {
                        line.append(b)
                    }
                }
            case .end: return .end
            case .eof: return .broken
            case .timeout: return .timeout
            }
        }
    }

    /// The next event that is not a BOOKMARK (bookmarks are skipped).
    func nextChange(timeout: Double = 5) -> Value? {
        while case .event(let e) = next(timeout: timeout) {
            if e["type"]?.stringValue != "BOOKMARK" { return e }
        }
        return nil
    }
}
