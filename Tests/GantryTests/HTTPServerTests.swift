import Testing
import Foundation
import Synchronization
@testable import HTTPServer
@testable import GantryCLI
import ControllerRuntime

/// A response as a raw client read it: status, lowercased headers, body (chunks decoded).
struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking TCP client for tests: connect, send bytes, read with a receive timeout.
final class RawClient {
    private(set) var fd: Int32

    init(port: Int, host: String = "127.0.0.1") throws {
        struct ConnectError: Error { let errno: Int32 }
        let v6 = host.contains(":")
        fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var rc: Int32
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6); a.sin6_port = UInt16(port).bigEndian
            inet_pton(AF_INET6, host, &a.sin6_addr)
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET); a.sin_port = UInt16(port).bigEndian
            inet_pton(AF_INET, host, &a.sin_addr)
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if rc != 0 { let e = errno; close(); throw ConnectError(errno: e) }
    }

    func send(_ s: String) { send(Array(s.utf8)) }
    func send(_ b: [UInt8]) {
        var off = 0
        while off < b.count {
            let n = b[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Up to `max` bytes; [] at EOF or timeout.
    func read(max: Int = 65536) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        return n > 0 ? Array(buf[..<n]) : []
    }

    /// Everything until the server closes the connection (or 5 s pass without data).
    func readToEnd() -> [UInt8] {
        var all: [UInt8] = []
        while true { let b = read(); if b.isEmpty { return all }; all += b }
    }

    /// Reads until `pred` holds on what was read so far (or EOF/timeout); returns it.
    func read(until pred: ([UInt8]) -> Bool) -> [UInt8] {
        var all: [UInt8] = []
        while !pred(all) { let b = read(); if b.isEmpty { break }; all += b }
        return all
    }

    /// Closes the socket once (the descriptor number may be reused at once by other threads).
    func close() { if fd >= 0 { Glibc.close(fd); fd = -1 } }
    deinit { close() }
}

/// One request with `Connection: close`; the whole response parsed.
func rawRequest(_ port: Int, _ method: String, _ target: String, headers: [String] = [], body: [UInt8] = [],
                host: String = "127.0.0.1") throws -> RawResponse {
    let c = try RawClient(port: port, host: host)
    var head = "\(method) \(target) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    for h in headers { head += h + "\r\n" }
    if !body.isEmpty && !headers.contains(where: { $0.lowercased().hasPrefix("transfer-encoding") }) { head += "Content-Length: \(body.count)\r\n" }
    c.send(head + "\r\n")
    c.send(body)
    return try #require(parseResponse(c.readToEnd()), "a parsable response")
}

func parseResponse(_ bytes: [UInt8]) -> RawResponse? {
    let sep: [UInt8] = Array("\r\n\r\n".utf8)
    guard let end = (0..<max(bytes.count - 3, 0)).first(where: { Array(bytes[$0..<$0 + 4]) == sep }) else { return nil }
    let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
    guard let statusLine = head.first, statusLine.split(separator: " ").count >= 2, let status = Int(statusLine.split(separator: " ")[1]) else { return nil }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(bytes[(end + 4)...])
    if headers["transfer-encoding"] == "chunked" {
        guard let decoded = dechunk(body) else { return nil }
        body = decoded
    }
    return RawResponse(status: status, headers: headers, body: body)
}

/// A chunked body decoded; nil when it is malformed or not terminated.
func dechunk(_ b: [UInt8]) -> [UInt8]? {
    var out: [UInt8] = [], i = 0
    while true {
        guard let lineEnd = (i..<max(b.count - 1, i)).first(where: { b[$0] == 13 && b[$0 + 1] == 10 }),
              let size = Int(String(decoding: b[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16) else { return nil }
        i = lineEnd + 2
        if size == 0 { return out }
        guard i + size + 2 <= b.count else { return nil }
        out += b[i..<i + size]
        i += size + 2
    }
}

@Suite(.timeLimit(.minutes(1))) struct HTTPServerTests {
    static func echoRouter() -> Router {
        var r = Router()
        r.register(method: "GET", pattern: "/api/v1/namespaces/{ns}/workloads/{name}") { req in
            .text("workload \(req.parameter("ns") ?? "?")/\(req.parameter("name") ?? "?")")
        }
        r.register(method: "GET", pattern: "/api/v1/namespaces/{ns}/workloads/special") { _ in .text("literal wins") }
        r.register(method: "DELETE", pattern: "/api/v1/namespaces/{ns}/workloads/{name}") { req in .text("deleted \(req.parameter("name") ?? "?")") }
        r.register(method: "POST", pattern: "/echo") { req in
            let q = req.query.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
            return .text("\(req.method) \(req.path) q[\(q)] a=\(req.query("a") ?? "-") x-test=\(req.header("X-Test") ?? "-") remote=\(req.remoteAddress) body=\(String(decoding: req.body, as: UTF8.self))")
        }
        return r
    }

    @Test func routerMatchesPatternsAndParameters() {
        let r = HTTPServerTests.echoRouter()
        func text(_ m: String, _ p: String) -> (Int, String, String?) {
            let resp = r.handle(HTTPRequest(method: m, path: p))
            guard case .bytes(let b) = resp.body else { return (resp.status, "<stream>", nil) }
            return (resp.status, String(decoding: b, as: UTF8.self), resp.header("allow"))
        }
        #expect(text("GET", "/api/v1/namespaces/team-a/workloads/llama").1 == "workload team-a/llama")
        #expect(text("GET", "/api/v1/namespaces/team-a/workloads/llama/").1 == "workload team-a/llama")
        #expect(text("GET", "/api/v1/namespaces/team-a/workloads/special").1 == "literal wins")
        #expect(text("GET", "/api/v1/namespaces/a%2Fb/workloads/x%20y").1 == "workload a/b/x y")
        #expect(text("DELETE", "/api/v1/namespaces/team-a/workloads/llama").1 == "deleted llama")
        #expect(text("HEAD", "/api/v1/namespaces/team-a/workloads/llama").0 == 200)
        let notFound = text("GET", "/api/v1/namespaces/team-a/queues/q")
        #expect(notFound.0 == 404)
        #expect(text("GET", "/api/v1/namespaces/team-a/workloads").0 == 404)
        let wrongMethod = text("PUT", "/api/v1/namespaces/team-a/workloads/llama")
        #expect(wrongMethod.0 == 405)
        #expect(wrongMethod.2 == "GET, DELETE")
        #expect(text("GET", "/echo").0 == 405)
    }

    @Test func percentDecoding() {
        #expect(percentDecode("a%20b%2Fc") == "a b/c")
        #expect(percentDecode("a+b", plusAsSpace: true) == "a b")
        #expect(percentDecode("a+b") == "a+b")
        #expect(percentDecode("100%") == "100%")
        #expect(percentDecode("%zz%4") == "%zz%4")
        #expect(percentDecode("%C3%A9") == "é")
        #expect(percentDecode("%FF") == "\u{FFFD}")
    }

    @Test func serverPassesMethodPathQueryHeadersAndBody() throws {
        let s = try HTTPServer(address: "127.0.0.1:0", handler: HTTPServerTests.echoRouter())
        defer { s.stop() }
        #expect(s.port > 0)
        let r = try rawRequest(s.port, "POST", "/echo?a=1&b=x+y&c=%2F&flag", headers: ["X-Test: yes"], body: Array("hello".utf8))
        #expect(r.status == 200)
        #expect(r.headers["content-type"] == "text/plain; charset=utf-8")
        #expect(r.text.hasPrefix("POST /echo q[a=1&b=x y&c=/&flag=] a=1 x-test=yes remote=127.0.0.1:"))
        #expect(r.text.hasSuffix(" body=hello"))
        let p = try rawRequest(s.port, "GET", "/api/v1/namespaces/a%2Fb/workloads/w")
        #expect(p.text == "workload a/b/w")
        #expect(try rawRequest(s.port, "GET", "/missing").status == 404)
        let m = try rawRequest(s.port, "PATCH", "/echo")
        #expect(m.status == 405)
        #expect(m.headers["allow"] == "POST")
    }

    @Test func bodiesOverTheLimitGet413WithoutReachingTheHandler() throws {
        let calls = Atomic<Int>(0)
        let s = try HTTPServer(address: "127.0.0.1:0", maxBodyBytes: 16, handler: HandlerFunction { req in
            calls.add(1, ordering: .relaxed)
            return .text("got \(req.body.count)")
        })
        defer { s.stop() }
        let atLimit = try rawRequest(s.port, "POST", "/", body: Array(repeating: 65, count: 16))
        #expect(atLimit.status == 200)
        #expect(atLimit.text == "got 16")
        #expect(try rawRequest(s.port, "POST", "/", body: Array(repeating: 65, count: 17)).status == 413)
        // Chunked upload, no Content-Length: the limit applies as the body arrives.
        let chunked = Array("a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n".utf8)
        #expect(try rawRequest(s.port, "POST", "/", headers: ["Transfer-Encoding: chunked"], body: chunked).status == 413)
        #expect(calls.load(ordering: .relaxed) == 1)
    }

    @Test func streamsArriveChunkedInOrderWhileTheProducerRuns() throws {
        let gate = DispatchSemaphore(value: 0)
        let s = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in
            .stream(contentType: "text/plain") { write in
                guard write(Array("first\n".utf8)) else { return }
                // The rest only after the client has seen the first line: the body is not buffered whole.
                guard gate.wait(timeout: .now() + 10) == .success else { return }
                for i in 0..<200 { guard write(Array("line \(i)\n".utf8)) else { return } }
            }
        })
        defer { s.stop() }
        let c = try RawClient(port: s.port)
        c.send("GET /logs HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        var got = c.read { String(decoding: $0, as: UTF8.self).contains("first\n") }
        #expect(String(decoding: got, as: UTF8.self).contains("first\n"))
        gate.signal()
        got += c.readToEnd()
        let r = try #require(parseResponse(got))
        #expect(r.status == 200)
        #expect(r.headers["transfer-encoding"] == "chunked")
        #expect(r.text == "first\n" + (0..<200).map { "line \($0)\n" }.joined())
    }

    @Test func aProducerSeesTheClientGo() throws {
        let stopped = Atomic<Bool>(false)
        let s = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in
            .stream(contentType: "text/plain") { write in
                while write(Array("tick\n".utf8)) { usleep(1000) }
                stopped.store(true, ordering: .relaxed)
            }
        })
        defer { s.stop() }
        let c = try RawClient(port: s.port)
        c.send("GET /follow HTTP/1.1\r\nHost: test\r\n\r\n")
        let first = c.read { String(decoding: $0, as: UTF8.self).contains("tick") }
        #expect(String(decoding: first, as: UTF8.self).contains("tick"))
        let stillWriting = !stopped.load(ordering: .relaxed)
        #expect(stillWriting)
        c.close()
        #expect(poll(timeout: 10) { stopped.load(ordering: .relaxed) }, "write returned false after the client closed")
    }

    /// A stream quiet for longer than the server's idle timeout (a watch with no changes, the
    /// log of a silent replica) is not cut: its producer ends it. (It was closed mid-stream,
    /// without its last chunk, after the idle timeout: 120 s in the daemon.)
    @Test func aStreamQuietPastTheIdleTimeoutIsNotCut() throws {
        let s = try HTTPServer(address: "127.0.0.1:0", idleTimeout: 1, handler: HandlerFunction { _ in
            .stream(contentType: "text/plain") { write in
                guard write(Array("first\n".utf8)) else { return }
                // Twice the idle timeout with nothing to send (the time is what is tested).
                let until = Date().addingTimeInterval(2.2)
                while Date() < until { guard write([]) else { return }; usleep(50_000) }
                _ = write(Array("last\n".utf8))
            }
        })
        defer { s.stop() }
        let c = try RawClient(port: s.port)
        c.send("GET /watch HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        let r = try #require(parseResponse(c.readToEnd()))
        #expect(r.status == 200)
        #expect(r.text == "first\nlast\n")
        // Its connection closes after it: the stream's longer timeout ends with it.
        #expect(r.headers["connection"]?.lowercased() == "close")
    }

    /// A client that stops reading: the producer's write gives up after the stall limit
    /// (closing the buffer) instead of blocking for as long as the connection stays open.
    @Test func aWriteGivesUpOnAClientThatStoppedReading() {
        let b = StreamBuffer(capacity: 8, stallLimit: 0.1)
        #expect(b.write(Array("12345678".utf8)))
        #expect(!b.write(Array("more".utf8)), "nothing was read: no room, given up")
        #expect(b.isClosed)
    }

    @Test func aQuietProducerSeesTheClientGo() throws {
        let stopped = Atomic<Bool>(false)
        let s = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in
            .stream(contentType: "text/plain") { write in
                _ = write(Array("hello\n".utf8))
                // Nothing more to send: only the server's check of the idle socket ends this.
                while write([]) { usleep(5000) }
                stopped.store(true, ordering: .relaxed)
            }
        })
        defer { s.stop() }
        let c = try RawClient(port: s.port)
        c.send("GET /watch HTTP/1.1\r\nHost: test\r\n\r\n")
        #expect(String(decoding: c.read { String(decoding: $0, as: UTF8.self).contains("hello") }, as: UTF8.self).contains("hello"))
        let stillWatching = !stopped.load(ordering: .relaxed)
        #expect(stillWatching)
        c.close()
        #expect(poll(timeout: 10) { stopped.load(ordering: .relaxed) }, "write returned false after the client closed")
    }

    @Test func aQuietProducerIsEndedByStop() throws {
        let ended = Atomic<Bool>(false)
        let s = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in
            .stream(contentType: "text/plain") { write in
                _ = write(Array("hello\n".utf8))
                // A watch with nothing to say: it learns of the end at its next write.
                while write([]) { usleep(5000) }
                ended.store(true, ordering: .relaxed)
            }
        })
        let c = try RawClient(port: s.port)
        c.send("GET /watch HTTP/1.1\r\nHost: test\r\n\r\n")
        #expect(String(decoding: c.read { String(decoding: $0, as: UTF8.self).contains("hello") }, as: UTF8.self).contains("hello"))
        s.stop()
        #expect(poll(timeout: 10) { ended.load(ordering: .relaxed) })
        #expect((try? rawRequest(s.port, "GET", "/")) == nil, "nothing listens after stop")
    }

    @Test func requestsAreServedConcurrently() throws {
        let inside = Atomic<Int>(0)
        let n = 4
        let s = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in
            inside.add(1, ordering: .relaxed)
            // Each handler waits until all are in: only concurrent handling lets them finish together.
            let together = poll(timeout: 10) { inside.load(ordering: .relaxed) >= n }
            return .text(together ? "together" : "alone")
        })
        defer { s.stop() }
        let results = Mutex<[String]>([])
        // One thread per client (concurrentPerform would run only as many as there are cores).
        let done = DispatchGroup()
        let port = s.port
        for _ in 0..<n {
            done.enter()
            Thread.detachNewThread {
                let t = (try? rawRequest(port, "GET", "/"))?.text ?? "failed"
                results.withLock { $0.append(t) }
                done.leave()
            }
        }
        #expect(done.wait(timeout: .now() + 20) == .success)
        #expect(results.withLock { $0 } == Array(repeating: "together", count: n))
    }

    @Test(arguments: ["nonsense", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:http", "::1:80", "[::1:80", "[::1]80", "no-such-host.invalid:80", "192.0.2.1:0"])
    func badAddressesAreClearErrors(_ address: String) {
        do {
            let s = try HTTPServer(address: address, handler: HandlerFunction { _ in .notFound })
            s.stop()
            Issue.record("\(address) was accepted")
        } catch let e as HTTPServerError {
            #expect(e.code == .badAddress)
            #expect(e.description.contains(address))
        } catch { Issue.record("unexpected error \(error)") }
    }

    @Test func anAddressInUseIsAClearError() throws {
        let a = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in .notFound })
        defer { a.stop() }
        do {
            let b = try HTTPServer(address: "127.0.0.1:\(a.port)", handler: HandlerFunction { _ in .notFound })
            b.stop()
            Issue.record("a second server bound port \(a.port)")
        } catch let e as HTTPServerError {
            #expect(e.code == .addressInUse)
            #expect(e.description.contains("already in use"))
        }
    }

    @Test(arguments: [":0", "localhost:0", "0.0.0.0:0", "127.0.0.1:0"])
    func ephemeralPortsAreReported(_ address: String) throws {
        let s = try HTTPServer(address: address, handler: HandlerFunction { .text("hi \($0.path)") })
        defer { s.stop() }
        #expect(s.port > 0)
        #expect(try rawRequest(s.port, "GET", "/x").text == "hi /x")
    }

    @Test func ipv6Loopback() throws {
        let s: HTTPServer
        do { s = try HTTPServer(address: "[::1]:0", handler: HandlerFunction { .text("v6 \($0.remoteAddress.hasPrefix("[::1]:"))") }) } catch let e as HTTPServerError where e.code != .badAddress {
            return   // no IPv6 on this machine
        }
        defer { s.stop() }
        #expect(try rawRequest(s.port, "GET", "/", host: "::1").text == "v6 true")
    }

    @Test func probeRoutes() {
        let state = ProbeState()
        let metrics = Metrics()
        metrics.gauge("workqueue_depth", ["name": "gantry"]).set(3)
        let r = ProbeServer.router(state: state, metrics: metrics)
        func get(_ p: String) -> (Int, String, String?) {
            let resp = r.handle(HTTPRequest(method: "GET", path: p))
            guard case .bytes(let b) = resp.body else { return (0, "", nil) }
            return (resp.status, String(decoding: b, as: UTF8.self), resp.header("content-type"))
        }
        #expect(get("/healthz").0 == 200)
        #expect(get("/readyz").0 == 503)
        #expect(get("/readyz").1.contains("initial sync not complete"))
        state.setNotReady(nil)
        #expect(get("/readyz").0 == 200)
        state.setNotReady("shutting down")
        #expect(get("/readyz").1.contains("shutting down"))
        let m = get("/metrics")
        #expect(m.0 == 200)
        #expect(m.2 == "text/plain; version=0.0.4; charset=utf-8")
        #expect(m.1.contains("workqueue_depth{name=\"gantry\"} 3"))
        // A loop that stopped beating is a failed liveness probe.
        state.beat(now: monotonicSeconds() - ProbeServer.stallSeconds - 5)
        #expect(get("/healthz").0 == 503)
        state.beat(now: monotonicSeconds())
        #expect(get("/healthz").0 == 200)
    }
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct ProbeEndToEndTests {
    /// The port the daemon logged for `--metrics-addr 127.0.0.1:0`.
    func probePort(_ d: DaemonUnderTest) -> Int? {
        var port: Int?
        d.wait {
            guard let line = d.log.split(separator: "\n").first(where: { $0.contains("serving probes and metrics") }),
                  let r = line.range(of: "port=") else { return false }
            port = Int(line[r.upperBound...].prefix { $0.isNumber })
            return true
        }
        return port
    }

    @Test func probesAndMetricsOfARunningDaemon() throws {
        let d = try DaemonUnderTest(extra: ["--metrics-addr", "127.0.0.1:0"])
        d.write("queues.yaml", queueManifest)
        d.write("w.yaml", wl("train"))
        let port = try #require(probePort(d), "the daemon logged its probe port")
        #expect(try rawRequest(port, "GET", "/healthz").text == "ok\n")
        try #require(d.wait { (try? rawRequest(port, "GET", "/readyz"))?.status == 200 }, "ready after the initial sync")
        #expect(d.log.contains("initial sync complete"))
        try #require(d.wait { d.status(.workload, "train") != nil }, "train reconciled")
        let m = try rawRequest(port, "GET", "/metrics")
        #expect(m.status == 200)
        #expect(m.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(m.text.contains("workqueue_depth{name=\"gantry\"}"))
        #expect(m.text.contains("controller_runtime_reconcile_total{controller=\"workload\",result=\"success\"}"))
        #expect(d.terminate() == 0)
    }

    @Test func anAddressThatCannotBeBoundStopsStartup() throws {
        let busy = try HTTPServer(address: "127.0.0.1:0", handler: HandlerFunction { _ in .notFound })
        defer { busy.stop() }
        let base = try makeTemporaryDirectory("gantry-probe-")
        defer { removeTree(base) }
        try FileManager.default.createDirectory(atPath: base + "/spec", withIntermediateDirectories: true)
        let (status, output) = runCLI(["run", "--spec-dir", base + "/spec", "--state-dir", base + "/state", "--local-gpus", "0",
                                       "--metrics-addr", "127.0.0.1:\(busy.port)"])
        #expect(status == 1)
        #expect(output.contains("--metrics-addr: cannot listen on 127.0.0.1:\(busy.port): the address is already in use"))
        let (badStatus, badOutput) = runCLI(["run", "--spec-dir", base + "/spec", "--state-dir", base + "/state", "--local-gpus", "0",
                                             "--metrics-addr", "localhost"])
        #expect(badStatus == 1)
        #expect(badOutput.contains("bad listen address \"localhost\""))
    }
}
