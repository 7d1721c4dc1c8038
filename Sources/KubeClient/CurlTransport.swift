import CCurl
import Foundation
import Synchronization

/// One HTTP exchange as the client asks for it.
struct HTTPRequest {
    var method: String
    var url: String
    var headers: [String] = []
    var body: [UInt8]?
    /// Whole-transfer limit in seconds (0 = none).
    var timeout: Int = 60
}

/// What came back: the final status line's code, the headers of that response, the body
/// (unless it was streamed to `onData`).
struct HTTPResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last(where: { $0.0 == lower })?.1
    }
}

/// The TLS and identity settings every request uses.
struct TLSSettings: Sendable {
    var caFile: String?
    var caData: [UInt8]?
    var insecure: Bool
    var certFile: String?
    var certData: [UInt8]?
    var keyFile: String?
    var keyData: [UInt8]?
    var userAgent: String
    /// `host:port:realhost:realport` when tls-server-name renames the host we verify.
    var connectTo: String?
}

/// State one transfer's C callbacks reach through `CURLOPT_*DATA`. Used by one thread: the
/// one inside `curl_easy_perform`.
final class TransferContext {
    var status = 0
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    let maxBody: Int
    var bodyTooLarge = false
    /// For streams: called with each chunk of a 2xx body; false aborts the transfer.
    var onData: ((UnsafeRawBufferPointer) -> Bool)?
    var cancel: WatchCancel?

    init(maxBody: Int = 512 << 20) { self.maxBody = maxBody }
}

private let writeCallback: gantry_curl_data_cb = { data, size, count, userdata in
    guard let userdata else { return 0 }
    let (n, overflow) = size.multipliedReportingOverflow(by: count)
    guard !overflow else { return 0 }
    let ctx = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
    if ctx.cancel?.isCancelled == true { return 0 }
    guard n > 0, let data else { return n }
    let chunk = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: n)
    if let onData = ctx.onData, (200..<300).contains(ctx.status) {
        return onData(chunk) ? n : 0
    }
    guard ctx.body.count + n <= ctx.maxBody else { ctx.bodyTooLarge = true; return 0 }
    ctx.body.append(contentsOf: chunk)
    return n
}

private let headerCallback: gantry_curl_data_cb = { data, size, count, userdata in
    guard let userdata else { return 0 }
    let (n, overflow) = size.multipliedReportingOverflow(by: count)
    guard !overflow else { return 0 }
    guard n > 0, let data else { return n }
    let ctx = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: n), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
        // A new response (after a 100 Continue or a redirect): its status line.
        let parts = line.split(separator: " ", maxSplits: 2)
        ctx.status = parts.count >= 2 ? Int(parts[1]) ?? 0 : 0
        ctx.headers.removeAll()
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        if ctx.headers.count < 200 { ctx.headers.append((name, value)) }
    }
    return n
}

private let progressCallback: gantry_curl_xferinfo_cb = { userdata, _, _, _, _ in
    guard let userdata else { return 0 }
    let ctx = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
    return ctx.cancel?.isCancelled == true ? 1 : 0
}

/// A libcurl easy handle. Owned by one request at a time (the pool hands it out
/// exclusively), hence `@unchecked Sendable`.
final class EasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard let h = gantry_curl_easy_init() else { return nil }
        raw = h
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        gantry_curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }
}

/// Runs HTTP exchanges with libcurl, keeping a few idle easy handles so their connections
/// are reused. Any number of threads may call `perform`; each gets its own handle.
final class CurlTransport: Sendable {
    private static let globalInit: CURLcode = gantry_curl_global_init()
    private let idle = Mutex<[EasyHandle]>([])
    private let maxIdle: Int
    let tls: TLSSettings

    init(tls: TLSSettings, maxIdle: Int = 8) {
        _ = CurlTransport.globalInit
        self.tls = tls
        self.maxIdle = maxIdle
    }

    /// Performs `request`; a transport failure is a `KubeError` with code 0 (or nil error
    /// with the response). A cancelled stream returns its response so far.
    func perform(_ request: HTTPRequest, context ctx: TransferContext) -> Result<HTTPResponse, KubeError> {
        guard let handle = idle.withLock({ $0.popLast() }) ?? EasyHandle() else {
            let why = gantry_curl_available() != 0 ? "curl_easy_init failed" : String(cString: gantry_curl_error())
            return .failure(KubeError(code: 0, reason: "Transport", message: why))
        }
        var reusable = true
        defer {
            if reusable {
                idle.withLock { pool in if pool.count < maxIdle { pool.append(handle) } }
            }
        }
        let h = handle.raw
        gantry_curl_easy_reset(h)
        handle.errorBuffer[0] = 0
        var headerList: UnsafeMutablePointer<curl_slist>?
        var connectList: UnsafeMutablePointer<curl_slist>?
        defer {
            gantry_curl_slist_free_all(headerList)
            gantry_curl_slist_free_all(connectList)
        }
        var setupFailed: CURLcode = CURLE_OK
        func check(_ rc: CURLcode) { if rc != CURLE_OK && setupFailed == CURLE_OK { setupFailed = rc } }

        check(gantry_curl_setopt_string(h, CURLOPT_URL, request.url))
        check(gantry_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        check(gantry_curl_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(gantry_curl_setopt_string(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
        check(gantry_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0))
        check(gantry_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT, 10))
        check(gantry_curl_setopt_long(h, CURLOPT_TIMEOUT, request.timeout))
        check(gantry_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1))
        check(gantry_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, handle.errorBuffer))
        check(gantry_curl_setopt_string(h, CURLOPT_USERAGENT, tls.userAgent))
        // TLS: verification stays on unless the configuration explicitly turns it off.
        if tls.insecure {
            check(gantry_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 0))
            check(gantry_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 0))
        } else {
            check(gantry_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1))
            check(gantry_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2))
        }
        if let data = tls.caData {
            data.withUnsafeBytes { check(gantry_curl_setopt_blob(h, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count)) }
        } else if let file = tls.caFile {
            check(gantry_curl_setopt_string(h, CURLOPT_CAINFO, file))
        }
        if let data = tls.certData {
            data.withUnsafeBytes { check(gantry_curl_setopt_blob(h, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count)) }
            check(gantry_curl_setopt_string(h, CURLOPT_SSLCERTTYPE, "PEM"))
        } else if let file = tls.certFile {
            check(gantry_curl_setopt_string(h, CURLOPT_SSLCERT, file))
        }
        if let data = tls.keyData {
            data.withUnsafeBytes { check(gantry_curl_setopt_blob(h, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count)) }
            check(gantry_curl_setopt_string(h, CURLOPT_SSLKEYTYPE, "PEM"))
        } else if let file = tls.keyFile {
            check(gantry_curl_setopt_string(h, CURLOPT_SSLKEY, file))
        }
        if let connectTo = tls.connectTo {
            connectList = gantry_curl_slist_append(nil, connectTo)
            check(gantry_curl_setopt_slist(h, CURLOPT_CONNECT_TO, connectList))
        }
        for header in request.headers + ["Expect:"] {
            if let next = gantry_curl_slist_append(headerList, header) { headerList = next }
        }
        check(gantry_curl_setopt_slist(h, CURLOPT_HTTPHEADER, headerList))

        switch request.method {
        case "GET": check(gantry_curl_setopt_long(h, CURLOPT_HTTPGET, 1))
        case "POST": check(gantry_curl_setopt_long(h, CURLOPT_POST, 1))
        default: check(gantry_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method))
        }
        if let body = request.body {
            check(gantry_curl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            body.withUnsafeBytes { buf in
                // COPYPOSTFIELDS copies the bytes now; an empty body still needs a valid pointer.
                let empty: [UInt8] = [0]
                if let base = buf.baseAddress, buf.count > 0 {
                    check(gantry_curl_setopt_ptr(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base)))
                } else {
                    empty.withUnsafeBytes { e in
                        check(gantry_curl_setopt_ptr(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: e.baseAddress)))
                    }
                }
            }
        }

        let opaque = Unmanaged.passUnretained(ctx).toOpaque()
        check(gantry_curl_setopt_data_cb(h, CURLOPT_WRITEFUNCTION, writeCallback))
        check(gantry_curl_setopt_ptr(h, CURLOPT_WRITEDATA, opaque))
        check(gantry_curl_setopt_data_cb(h, CURLOPT_HEADERFUNCTION, headerCallback))
        check(gantry_curl_setopt_ptr(h, CURLOPT_HEADERDATA, opaque))
        if ctx.cancel != nil {
            check(gantry_curl_setopt_xferinfo_cb(h, CURLOPT_XFERINFOFUNCTION, progressCallback))
            check(gantry_curl_setopt_ptr(h, CURLOPT_XFERINFODATA, opaque))
            check(gantry_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0))
        }
        guard setupFailed == CURLE_OK else {
            reusable = false
            return .failure(KubeError(code: 0, reason: "Transport", message: "curl setup: \(String(cString: gantry_curl_easy_strerror(setupFailed)))"))
        }

        let rc = withExtendedLifetime(ctx) { gantry_curl_easy_perform(h) }
        if rc != CURLE_OK {
            if ctx.cancel?.isCancelled == true {
                return .success(HTTPResponse(status: ctx.status, headers: ctx.headers, body: ctx.body))
            }
            if ctx.bodyTooLarge {
                return .failure(KubeError(code: 0, reason: "ResponseTooLarge", message: "response body over \(ctx.maxBody) bytes"))
            }
            let detail = String(cString: handle.errorBuffer)
            let summary = String(cString: gantry_curl_easy_strerror(rc))
            return .failure(KubeError(code: 0, reason: "Transport", message: "\(request.method) \(request.url): \(detail.isEmpty ? summary : detail)"))
        }
        var code: Int = 0
        if gantry_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code == 0 { code = ctx.status }
        return .success(HTTPResponse(status: code, headers: ctx.headers, body: ctx.body))
    }
}
