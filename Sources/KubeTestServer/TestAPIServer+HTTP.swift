import Foundation
import GantryAPI
import Glibc
import Synchronization

extension TestAPIServer {
    func acceptLoop() {
        while true {
            let fd = accept(listener.fd, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                if state.withLock({ $0.stopped }) { return }
                usleep(10_000)
                continue
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let sock = Socket(fd: fd)
            let id: Int? = state.withLock { c in
                guard !c.stopped else { return nil }
                let id = c.nextConnection
                c.nextConnection += 1
                c.connections[id] = sock
                return id
            }
            guard let id else { sock.close(); return }
            spawn { [self] in
                serve(sock)
                state.withLock { _ = $0.connections.removeValue(forKey: id) }
                sock.close()
            }
        }
    }

    func serve(_ sock: Socket) {
        var reader = RequestReader(socket: sock)
        while true {
            switch reader.next() {
            case .closed:
                return
            case .malformed(let why):
                _ = respond(sock, APIError.badRequest(why).status, code: 400, close: true)
                return
            case .request(let req):
                guard handle(req, sock), req.keepAlive else { return }
            }
        }
    }

    static func reasonPhrase(_ code: Int) -> String {
        switch code {
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Entity"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }

    /// Writes a whole JSON response; false when the peer is gone.
    func respond(_ sock: Socket, _ body: Value, code: Int, close: Bool = false, extraHeaders: String = "") -> Bool {
        var bytes: [UInt8] = []
        JSON.write(body, into: &bytes, pretty: false, indent: 0)
        var head = "HTTP/1.1 \(code) \(TestAPIServer.reasonPhrase(code))\r\nContent-Type: application/json\r\nContent-Length: \(bytes.count)\r\n"
        head += extraHeaders
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        return sock.sendAll(Array(head.utf8) + bytes)
    }

    func respond(_ sock: Socket, _ error: APIError, close: Bool = false) -> Bool {
        let retry = error.code == 429 ? state.withLock { $0.retryAfterSeconds } : nil
        let extra = retry.map { "Retry-After: \($0)\r\n" } ?? ""
        return respond(sock, error.status, code: error.code, close: close, extraHeaders: extra)
    }

    /// Serves one request; false ends the connection.
    func handle(_ req: HTTPRequest, _ sock: Socket) -> Bool {
        let ok = handleRequest(req, sock)
        return ok && req.keepAlive
    }

    func handleRequest(_ req: HTTPRequest, _ sock: Socket) -> Bool {
        let authorized = token.map { req.headers["authorization"] == "Bearer \($0)" } ?? true
        let (injected, delay): (APIError?, Double) = state.withLock { c in
            // Bounded for long benchmark runs: past a million entries the oldest half goes.
            if c.log.count >= 1_000_000 { c.log.removeFirst(500_000) }
            c.log.append("\(req.method) \(req.target)")
            c.counts[req.method, default: 0] += 1
            guard authorized else { return (nil, c.responseDelay) }
            if let i = c.failRules.firstIndex(where: { ($0.method == "*" || $0.method == req.method) && req.path.hasPrefix($0.pathPrefix) && $0.remaining > 0 }) {
                c.failRules[i].remaining -= 1
                let status = c.failRules[i].status
                if c.failRules[i].remaining <= 0 { c.failRules.remove(at: i) }
                return (APIError(code: status, reason: APIError.reason(for: status), message: "injected failure (\(status))"), c.responseDelay)
            }
            return (nil, c.responseDelay)
        }
        if delay > 0 {
            // In short steps, so that stop() need not wait for a long delay.
            let until = Date().addingTimeInterval(delay)
            while Date() < until && !state.withLock({ $0.stopped }) { usleep(10_000) }
        }
        guard authorized else {
            return respond(sock, APIError(code: 401, reason: "Unauthorized", message: "Unauthorized"), close: !req.keepAlive)
        }
        if let injected { return respond(sock, injected, close: !req.keepAlive) }
        switch req.path {
        case "/healthz", "/readyz", "/livez":
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
            return sock.sendAll(Array(head.utf8))
        case "/version":
            return respond(sock, .object([.init("major", .string("1")), .init("minor", .string("28")),
                                          .init("gitVersion", .string("v1.28.4-gantry-test"))]), code: 200)
        default: break
        }
        guard let p = ResourcePath(req.path) else {
            return respond(sock, APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource"))
        }
        if (req.method == "POST" || req.method == "PUT") && !req.contentType.isEmpty && !req.contentType.contains("json") {
            return respond(sock, APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json"))
        }
        do throws(APIError) {
            switch req.method {
            case "GET":
                if p.isPods, p.subresource == "log", p.name != nil { return servePodLog(req, p, sock) }
                if p.name == nil {
                    let w = req.query["watch"] ?? ""
                    if w == "1" || w == "true" { return serveWatch(req, p, sock) }
                    let list = try apply { (c: inout Control) throws(APIError) in try c.store.list(p, query: req.query) }
                    return respond(sock, list, code: 200)
                }
                let obj = try apply { (c: inout Control) throws(APIError) in try c.store.get(p) }
                return respond(sock, obj, code: 200)
            case "POST":
                guard p.name == nil else { throw APIError(code: 405, reason: "MethodNotAllowed", message: "POST is not supported on an object path") }
                let body = try TestAPIServer.parseBody(req)
                let obj = try apply { (c: inout Control) throws(APIError) in try c.store.create(p, body) }
                return respond(sock, obj, code: 201)
            case "PUT":
                let body = try TestAPIServer.parseBody(req)
                let obj = try apply { (c: inout Control) throws(APIError) in try c.store.update(p, body) }
                return respond(sock, obj, code: 200)
            case "PATCH":
                let ct = req.contentType
                let obj = try apply { (c: inout Control) throws(APIError) in try c.store.patch(p, contentType: ct, body: req.body) }
                return respond(sock, obj, code: 200)
            case "DELETE":
                let options = req.body.isEmpty ? Value.object([]) : try TestAPIServer.parseBody(req)
                let grace = req.query["gracePeriodSeconds"].flatMap { Int64($0) }
                if p.name == nil {
                    let list = try apply { (c: inout Control) throws(APIError) in try c.store.deleteCollection(p, query: req.query, options: options, queryGrace: grace) }
                    return respond(sock, list, code: 200)
                }
                let obj = try apply { (c: inout Control) throws(APIError) in try c.store.delete(p, options: options, queryGrace: grace) }
                return respond(sock, obj, code: 200)
            default:
                throw APIError(code: 405, reason: "MethodNotAllowed", message: "method \(req.method) is not supported")
            }
        } catch {
            return respond(sock, error)
        }
    }

    static func parseBody(_ req: HTTPRequest) throws(APIError) -> Value {
        var bytes = req.body
        do { return try JSON.parse(bytes: &bytes) } catch { throw .badRequest("invalid JSON body: \(error)") }
    }

    // MARK: Watch

    static func chunk(_ data: [UInt8]) -> [UInt8] {
        Array(String(data.count, radix: 16).utf8) + [13, 10] + data + [13, 10]
    }

    func writeEvent(_ sock: Socket, _ event: Value, split: Bool) -> Bool {
        writeEvents(sock, [event], split: split)
    }

    /// Writes events as newline-terminated JSON: one chunk per event, or (split) the whole
    /// batch cut into 7-byte chunks, each its own write, so chunk boundaries fall anywhere
    /// (inside an event, or across the end of one and the start of the next).
    func writeEvents(_ sock: Socket, _ events: [Value], split: Bool) -> Bool {
        var bytes: [UInt8] = []
        if !split {
            for ev in events {
                var line: [UInt8] = []
                JSON.write(ev, into: &line, pretty: false, indent: 0)
                line.append(10)
                bytes += TestAPIServer.chunk(line)
            }
            return bytes.isEmpty || sock.sendAll(bytes)
        }
        for ev in events {
            JSON.write(ev, into: &bytes, pretty: false, indent: 0)
            bytes.append(10)
        }
        var i = 0
        while i < bytes.count {
            let j = min(bytes.count, i + 7)
            guard sock.sendAll(TestAPIServer.chunk(Array(bytes[i..<j]))) else { return false }
            i = j
        }
        return true
    }

    /// Streams a watch; true when it ended cleanly (timeout, expiry) and the connection
    /// may serve another request.
    func serveWatch(_ req: HTTPRequest, _ p: ResourcePath, _ sock: Socket) -> Bool {
        guard let labels = Selector(req.query["labelSelector"]), let fields = Selector(req.query["fieldSelector"]) else {
            return respond(sock, APIError.badRequest("unable to parse selector"))
        }
        var timeout: Double? = nil
        if let t = req.query["timeoutSeconds"], let n = Int64(t), n > 0 { timeout = Double(min(n, 1 << 30)) }
        let bookmarks = ["true", "1"].contains(req.query["allowWatchBookmarks"] ?? "")
        let waker = Waker()
        let watcher = Watcher(path: p, labels: labels, fields: fields, waker: waker, socket: sock)
        let rvText = req.query["resourceVersion"] ?? ""
        let started: Result<(Int, [Value]), APIError> = mutate { c in
            do throws(APIError) { return .success(try c.store.startWatch(watcher, from: rvText)) } catch { return .failure(error) }
        }
        let (asEvent, split, interval) = state.withLock { ($0.watch410AsEvent, $0.splitWatchChunks, $0.bookmarkInterval) }
        let head = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache, private\r\n\r\n".utf8)
        let id: Int
        let initial: [Value]
        switch started {
        case .failure(let error):
            waker.close()
            if error.code == 410 && asEvent {
                let ev = Value.object([.init("type", .string("ERROR")), .init("object", error.status)])
                return sock.sendAll(head) && writeEvent(sock, ev, split: split) && sock.sendAll(Array("0\r\n\r\n".utf8))
            }
            return respond(sock, error)
        case .success(let s):
            (id, initial) = s
        }
        func unregister() {
            state.withLock { _ = $0.store.watchers.removeValue(forKey: id) }
            waker.close()
        }
        guard sock.sendAll(head) else { unregister(); return false }
        guard writeEvents(sock, initial, split: split) else { unregister(); return false }
        let start = Date().timeIntervalSince1970
        let deadline = timeout.map { start + $0 }
        var nextBookmark = start + interval
        var watchSocket = true
        while true {
            let (events, ended, requested, bookmark, splitNow) = state.withLock { c -> ([Value], Bool, Bool, Value, Bool) in
                guard var w = c.store.watchers[id] else { return ([], true, false, .null, false) }
                let q = w.queue
                let req = w.bookmarkRequested
                w.queue = []
                w.bookmarkRequested = false
                c.store.watchers[id] = w
                return (q, w.dropped || c.stopped, req, c.store.bookmark(p), c.splitWatchChunks)
            }
            if ended {
                unregister()
                return false
            }
            guard writeEvents(sock, events, split: splitNow) else { unregister(); return false }
            let now = Date().timeIntervalSince1970
            if bookmarks && (requested || now >= nextBookmark) {
                guard writeEvent(sock, bookmark, split: splitNow) else { unregister(); return false }
                nextBookmark = now + interval
            }
            if let deadline, now >= deadline {
                unregister()
                return sock.sendAll(Array("0\r\n\r\n".utf8))
            }
            var wakeAt = deadline ?? (now + 1)
            if bookmarks { wakeAt = min(wakeAt, nextBookmark) }
            let ms = Int32(max(1, min(1000, (wakeAt - now) * 1000)))
            var fds = [pollfd(fd: waker.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: sock.fd, events: watchSocket ? Int16(POLLIN) : 0, revents: 0)]
            let n = poll(&fds, 2, ms)
            if n > 0 {
                if fds[0].revents != 0 { waker.drain() }
                if fds[1].revents != 0 {
                    var b: UInt8 = 0
                    let r = recv(sock.fd, &b, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                    if r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR) {
                        unregister()
                        return false
                    }
                    if r > 0 { watchSocket = false }
                }
            }
        }
    }
}
