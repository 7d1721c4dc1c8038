import Foundation
import Synchronization
import CMicroHTTPD

/// An HTTP/1.1 server on libmicrohttpd: one thread per connection (at most `maxConnections`),
/// request bodies read whole before the handler runs (larger than `maxBodyBytes`: 413 without
/// calling the handler), `.stream` bodies sent with chunked transfer encoding from a thread of
/// their own. `stop()` (or the last reference going away) closes the listener, ends streams
/// (their `write` returns false) and waits for running handlers.
public final class HTTPServer: Sendable {
    /// The bound port (the chosen one for port 0).
    public let port: Int
    let context: ServerContext
    let daemon: Mutex<DaemonHandle?>

    /// Listens on `address` (":8080", "0.0.0.0:8080", "127.0.0.1:0", "[::1]:8080",
    /// "localhost:8080"; port 0 picks a free one). Throws `HTTPServerError` when the address
    /// is malformed or cannot be bound (in use, not local).
    public init(address: String, maxBodyBytes: Int = 1 << 20, maxConnections: Int = 64, idleTimeout: Int = 60,
                handler: any HTTPHandler) throws {
        let fd = try ListenAddress(address).listen(original: address)
        port = ListenAddress.boundPort(fd)
        let ctx = ServerContext(handler: handler, maxBodyBytes: max(maxBodyBytes, 0))
        context = ctx
        let cls = Unmanaged.passRetained(ctx).toOpaque()
        let flags = MHD_USE_AUTO_INTERNAL_THREAD.rawValue | MHD_USE_THREAD_PER_CONNECTION.rawValue
        let d = g_mhd_start(flags, fd, accessHandler, cls, requestCompleted, cls,
                            UInt32(clamping: max(idleTimeout, 0)), UInt32(clamping: max(maxConnections, 1)))
        guard let d else {
            close(fd)
            Unmanaged<ServerContext>.fromOpaque(cls).release()
            throw HTTPServerError(code: .cannotStart, message: "cannot start the HTTP server on \(address)")
        }
        daemon = Mutex(DaemonHandle(pointer: d, context: cls))
    }

    /// Stops listening, ends streams and waits for in-flight handlers; idempotent. Not from
    /// inside a handler (it would wait for itself).
    public func stop() {
        guard let d = daemon.withLock({ h -> DaemonHandle? in let d = h; h = nil; return d }) else { return }
        context.closeStreams()
        MHD_stop_daemon(d.pointer)
        Unmanaged<ServerContext>.fromOpaque(d.context).release()
    }

    deinit { stop() }
}

/// The daemon's C handle and the retained context its callbacks get.
// @unchecked: the pointers are handed to MHD_stop_daemon / release exactly once, by `stop`.
struct DaemonHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let context: UnsafeMutableRawPointer
}

/// What the C callbacks share: the handler, the body limit, the open streams.
final class ServerContext: Sendable {
    let handler: any HTTPHandler
    let maxBodyBytes: Int
    let streams = Mutex<(stopping: Bool, open: [ObjectIdentifier: StreamBuffer])>((false, [:]))

    init(handler: any HTTPHandler, maxBodyBytes: Int) {
        self.handler = handler
        self.maxBodyBytes = maxBodyBytes
    }

    /// Tracks a stream until `forget`; false (and the stream closed) when the server stops.
    func track(_ s: StreamBuffer) -> Bool {
        let ok = streams.withLock { st -> Bool in
            if st.stopping { return false }
            st.open[ObjectIdentifier(s)] = s
            return true
        }
        if !ok { s.close() }
        return ok
    }

    func forget(_ s: StreamBuffer) { _ = streams.withLock { $0.open.removeValue(forKey: ObjectIdentifier(s)) } }

    func closeStreams() {
        let open = streams.withLock { st -> [StreamBuffer] in st.stopping = true; return Array(st.open.values) }
        for s in open { s.close() }
    }
}

/// Per-request state kept in MHD's `con_cls` from the first callback to NOTIFY_COMPLETED;
/// MHD calls back for one request on its connection's thread only.
final class RequestState {
    var body: [UInt8] = []
    var tooLarge = false
    var responded = false
}

/// A stream's buffer with the context that tracks it (the content reader's closure).
final class StreamHandle: Sendable {
    let buffer: StreamBuffer
    let context: ServerContext
    let fd: Int32
    init(buffer: StreamBuffer, context: ServerContext, fd: Int32) { self.buffer = buffer; self.context = context; self.fd = fd }
}

/// Collects header fields or query arguments through MHD's iterator.
final class ValueCollector {
    var pairs: [(String, String)] = []
}

private let collectValue: MHD_KeyValueIterator = { cls, _, key, value in
    guard let cls, let key else { return .YES }
    let c = Unmanaged<ValueCollector>.fromOpaque(cls).takeUnretainedValue()
    c.pairs.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return .YES
}

private func values(_ conn: OpaquePointer, _ kind: MHD_ValueKind) -> [(String, String)] {
    let c = ValueCollector()
    let u = Unmanaged.passRetained(c)
    _ = MHD_get_connection_values(conn, kind, collectValue, u.toOpaque())
    u.release()
    return c.pairs
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, conn, url, method, _, uploadData, uploadSize, conCls in
    guard let cls, let conn, let url, let method, let uploadSize, let conCls else { return .NO }
    let ctx = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()
    guard let raw = conCls.pointee else {
        // First call: headers are in.
        let st = RequestState()
        conCls.pointee = Unmanaged.passRetained(st).toOpaque()
        if let cl = values(conn, .HEADER_KIND).first(where: { $0.0.lowercased() == "content-length" })?.1,
           let n = UInt64(cl.trimmingCharacters(in: .whitespaces)), n > UInt64(ctx.maxBodyBytes) {
            st.tooLarge = true
            st.responded = true
            return send(.payloadTooLarge(limit: ctx.maxBodyBytes), conn, ctx)
        }
        return .YES
    }
    let st = Unmanaged<RequestState>.fromOpaque(raw).takeUnretainedValue()
    let n = uploadSize.pointee
    if n > 0 {
        if !st.tooLarge, let uploadData {
            if n > ctx.maxBodyBytes - st.body.count {
                st.tooLarge = true
                st.body = []
            } else {
                st.body.append(contentsOf: UnsafeRawBufferPointer(start: uploadData, count: n))
            }
        }
        uploadSize.pointee = 0
        return .YES
    }
    if st.responded { return .YES }
    st.responded = true
    if st.tooLarge { return send(.payloadTooLarge(limit: ctx.maxBodyBytes), conn, ctx) }
    var headers: [String: String] = [:]
    for (k, v) in values(conn, .HEADER_KIND) {
        let name = k.lowercased()
        if let old = headers[name] { headers[name] = old + ", " + v } else { headers[name] = v }
    }
    let query = values(conn, .GET_ARGUMENT_KIND).map { (percentDecode($0.0, plusAsSpace: true), percentDecode($0.1, plusAsSpace: true)) }
    let remote = g_mhd_client_address(conn).map { ListenAddress.describe($0) } ?? ""
    let request = HTTPRequest(method: String(cString: method), path: String(cString: url), query: query, headers: headers,
                              body: st.body, remoteAddress: remote)
    st.body = []
    return send(ctx.handler.handle(request), conn, ctx)
}

private let requestCompleted: MHD_RequestCompletedCallback = { _, _, conCls, _ in
    guard let conCls, let raw = conCls.pointee else { return }
    Unmanaged<RequestState>.fromOpaque(raw).release()
    conCls.pointee = nil
}

private func send(_ response: HTTPResponse, _ conn: OpaquePointer, _ ctx: ServerContext) -> MHD_Result {
    let status = (100...999).contains(response.status) ? response.status : 500
    let resp: OpaquePointer?
    var producer: (@Sendable () -> Void)?
    switch response.body {
    case .bytes(let bytes):
        resp = bytes.withUnsafeBytes { b in
            MHD_create_response_from_buffer(b.count, UnsafeMutableRawPointer(mutating: b.baseAddress), .RESPMEM_MUST_COPY)
        }
    case .stream(let produce):
        let buffer = StreamBuffer(capacity: 256 << 10)
        let handle = StreamHandle(buffer: buffer, context: ctx, fd: g_mhd_connection_fd(conn))
        let cls = Unmanaged.passRetained(handle).toOpaque()
        resp = MHD_create_response_from_callback(g_mhd_size_unknown(), 32 << 10, readStream, cls, freeStream)
        if resp == nil {
            Unmanaged<StreamHandle>.fromOpaque(cls).release()
        } else if ctx.track(buffer) {
            producer = {
                produce { bytes in buffer.write(bytes) }
                buffer.finish()
            }
        }
    }
    guard let resp else { return .NO }
    defer { MHD_destroy_response(resp) }
    for (name, value) in response.headers {
        _ = MHD_add_response_header(resp, name, value)
    }
    if producer != nil { _ = MHD_add_response_header(resp, "Connection", "close") }
    let queued = MHD_queue_response(conn, UInt32(status), resp)
    // A stream that could not be queued never starts its producer (freeStream closes it).
    // One that was may stay quiet longer than the idle timeout (a watch with no changes, the
    // log of a quiet replica), which closed it mid-stream: it gets `streamIdleTimeout`
    // instead, and ends at its producer's deadline, when the client leaves (polled) or when
    // the server stops. Its connection closes after it (`Connection: close`), so the longer
    // timeout never applies to a later request on it.
    if queued == .YES, let producer {
        _ = g_mhd_set_idle_timeout(conn, UInt32(streamIdleTimeout))
        Thread.detachNewThread(producer)
    }
    return queued
}

/// Seconds a stream's connection may send nothing before it is closed: longer than any watch
/// (at most `--watch-max-seconds`, 1,800 by default) and than a quiet replica's log is
/// usually followed; a client that stopped reading (or vanished without a FIN) is cut then.
let streamIdleTimeout = 3600

/// Polls the wait for data so a client that went away while the producer is quiet is noticed.
private let readStream: MHD_ContentReaderCallback = { cls, _, buf, max in
    guard let cls, let buf else { return g_mhd_end_with_error() }
    let h = Unmanaged<StreamHandle>.fromOpaque(cls).takeUnretainedValue()
    switch h.buffer.read(into: buf, max: max, wait: 0.2) {
    case .bytes(let n): return n
    case .end: return g_mhd_end_of_stream()
    case .closed: return g_mhd_end_with_error()
    case .idle:
        if clientGone(h.fd) {
            h.buffer.close()
            return g_mhd_end_with_error()
        }
        return 0
    }
}

private let freeStream: MHD_ContentReaderFreeCallback = { cls in
    guard let cls else { return }
    let h = Unmanaged<StreamHandle>.fromOpaque(cls).takeRetainedValue()
    h.buffer.close()
    h.context.forget(h.buffer)
}

/// Whether the peer of `fd` closed or reset the connection (EOF or an error pending).
private func clientGone(_ fd: Int32) -> Bool {
    guard fd >= 0 else { return false }
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&p, 1, 0) == 1 else { return false }
    if p.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return true }
    var byte: UInt8 = 0
    let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
}
