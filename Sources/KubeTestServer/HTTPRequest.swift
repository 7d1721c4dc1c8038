/// One HTTP/1.1 request as the test server reads it.
struct HTTPRequest: Sendable {
    var method: String
    var target: String
    var path: String
    var query: [String: String]
    /// Header names lower-cased.
    var headers: [String: String]
    var body: [UInt8]

    var keepAlive: Bool { headers["connection"]?.lowercased() != "close" }
    /// The media type without parameters (`application/json; charset=utf-8` -> `application/json`).
    var contentType: String {
        let raw = headers["content-type"] ?? ""
        return (raw.split(separator: ";").first.map { String($0) } ?? "").trimmingSpaces.lowercased()
    }
}

/// Reads requests from a connection, keeping bytes of a pipelined next request.
/// Limits: 1 MiB of headers, 64 MiB of body; anything malformed ends the connection.
struct RequestReader {
    let socket: Socket
    var buffer: [UInt8] = []

    init(socket: Socket) { self.socket = socket }

    enum Outcome { case request(HTTPRequest), closed, malformed(String) }

    private var scratch = [UInt8](repeating: 0, count: 32768)

    private mutating func fill() -> Bool {
        socket.receive(into: &buffer, scratch: &scratch)
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard !needle.isEmpty, buffer.count >= needle.count else { return nil }
        var i = 0
        outer: while i + needle.count <= buffer.count {
            for k in 0..<needle.count where buffer[i + k] != needle[k] { i += 1; continue outer }
            return i
        }
        return nil
    }

    mutating func next() -> Outcome {
        let crlf2: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int? = find(crlf2)
        while headEnd == nil {
            if buffer.count > 1 << 20 { return .malformed("request headers too large") }
            guard fill() else { return .closed }
            headEnd = find(crlf2)
        }
        guard let end = headEnd else { return .closed }
        let head = String(decoding: buffer[0..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return .malformed("empty request") }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3 else { return .malformed("bad request line") }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return .malformed("bad header line") }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingSpaces
        }
        var body: [UInt8] = []
        let hasBody = headers["transfer-encoding"] != nil || (headers["content-length"].flatMap { Int($0) } ?? 0) > 0
        if hasBody, headers["expect"]?.lowercased() == "100-continue", buffer.isEmpty {
            // curl waits (up to a second) for this before it sends a large body.
            guard socket.sendAll(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return .closed }
        }
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                var lineEnd = find([13, 10])
                while lineEnd == nil {
                    guard buffer.count < 4096, fill() else { return .malformed("bad chunk size line") }
                    lineEnd = find([13, 10])
                }
                guard let le = lineEnd else { return .closed }
                let sizeText = String(decoding: buffer[0..<le], as: UTF8.self).split(separator: ";").first.map { $0.trimmingSpaces } ?? ""
                guard let size = Int(sizeText, radix: 16), size >= 0, size <= 64 << 20, body.count + size <= 64 << 20 else {
                    return .malformed("bad chunk size")
                }
                buffer.removeFirst(le + 2)
                while buffer.count < size + 2 { guard fill() else { return .closed } }
                body.append(contentsOf: buffer[0..<size])
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        } else if let cl = headers["content-length"] {
            guard let n = Int(cl), n >= 0, n <= 64 << 20 else { return .malformed("bad content-length") }
            while buffer.count < n { guard fill() else { return .closed } }
            body = Array(buffer[0..<n])
            buffer.removeFirst(n)
        }
        let target = String(requestLine[1])
        let (path, query) = RequestReader.splitTarget(target)
        return .request(HTTPRequest(method: String(requestLine[0]).uppercased(), target: target, path: path, query: query, headers: headers, body: body))
    }

    static func splitTarget(_ target: String) -> (String, [String: String]) {
        guard let q = target.firstIndex(of: "?") else { return (percentDecode(target, plus: false), [:]) }
        var query: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = percentDecode(String(kv[0]), plus: true)
            query[k] = kv.count > 1 ? percentDecode(String(kv[1]), plus: true) : ""
        }
        return (percentDecode(String(target[..<q]), plus: false), query)
    }

    static func percentDecode(_ s: String, plus: Bool) -> String {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) {
                out.append(h << 4 | l); i += 3
            } else if plus && b[i] == UInt8(ascii: "+") {
                out.append(0x20); i += 1
            } else {
                out.append(b[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
