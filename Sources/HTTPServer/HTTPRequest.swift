/// One HTTP request as a handler sees it: the whole body is read (up to the server's limit)
/// before the handler runs.
public struct HTTPRequest: Sendable {
    /// "GET", "POST", ... as sent.
    public var method: String
    /// The path as sent, percent-escapes included, without the query ("/api/v1/x%2Fy").
    public var path: String
    /// Query arguments in order, percent- and `+`-decoded; an argument without `=` has "".
    public var query: [(String, String)]
    /// Header fields by lowercased name; repeated fields joined with ", ".
    public var headers: [String: String]
    public var body: [UInt8]
    /// "127.0.0.1:53412", "[::1]:53412", or "" when unknown.
    public var remoteAddress: String
    /// Values of a route's `{name}` segments, percent-decoded (set by `Router`).
    public var pathParameters: [String: String]

    public init(method: String, path: String, query: [(String, String)] = [], headers: [String: String] = [:],
                body: [UInt8] = [], remoteAddress: String = "", pathParameters: [String: String] = [:]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.pathParameters = pathParameters
    }

    /// The first value of query argument `name`, or nil.
    public func query(_ name: String) -> String? { query.first { $0.0 == name }?.1 }

    /// A header field by name (any case), or nil.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// A path parameter of the matched route, or nil.
    public func parameter(_ name: String) -> String? { pathParameters[name] }
}

/// Decodes `%HH` escapes (and `+` as a space when `plusAsSpace`); a malformed escape is kept
/// as written and invalid UTF-8 becomes U+FFFD, so any input decodes.
public func percentDecode<S: StringProtocol>(_ s: S, plusAsSpace: Bool = false) -> String {
    let bytes = Array(s.utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
    while i < bytes.count {
        let c = bytes[i]
        if c == UInt8(ascii: "%"), i + 2 < bytes.count,
           let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(plusAsSpace && c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
