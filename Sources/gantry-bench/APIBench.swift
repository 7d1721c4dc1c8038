import Foundation
import Synchronization
import GantryAPI
import ControllerRuntime

/// `gantry-bench --api`: the HTTP API's figures against the real daemon (`gantry run --listen`),
/// printed as a table, not asserted:
/// 1. list latency: N workloads (plus the queue tree, nodes and pools of the load figures) in
///    a daemon with `--runtime none`; after the initial sync, `requests` sequential GETs of a
///    filtered, sorted page of 50 on one kept-alive connection, for a few queries: p50/p99;
/// 2. requests per second with 16 concurrent clients: wrk on the first query for
///    `wrkSeconds` (an in-process 16-thread client when wrk is missing, said so);
/// 5. the daemon's VmHWM and VmRSS after the initial load, and again after 1 and 2;
/// 3. create -> status: `creates` sequential POSTs, each timed until a GET of the object
///    shows status.observedGeneration >= 1 and an admission decision (admitted, or a queue
///    position), on the large daemon and on a small one (queues and nodes only);
/// 4. log follow: on a small daemon with the process runtime, a workload whose command
///    prints numbered lines at `logRate` per second for `logSeconds`, read with
///    `GET .../replicas/0/logs?follow=true` from its start: every number exactly once and in
///    order, lines per second received, delivery lag.
/// Every daemon is stopped on every path (and on SIGINT/SIGTERM/SIGHUP of the bench).
enum APIBench {
    struct Config {
        var gantry = ""
        var dir = NSTemporaryDirectory() + "gantry-apibench"
        var n = 100_000
        var perFile = 100
        var requests = 200
        /// At most this long for each query of figure 1 after the first (fewer samples then,
        /// said so); the first, also wrk's, always gets its `requests` (within 15 minutes).
        var querySeconds = 60.0
        var creates = 100
        var wrkSeconds = 10
        var wrkThreads = 2
        var clients = 16
        var logRate = 10_000
        var logSeconds = 10
        var keep = false
        /// Which figures: "1" ... "5"; empty = all.
        var only: Set<String> = []
    }

    static func want(_ c: Config, _ f: String) -> Bool { c.only.isEmpty || c.only.contains(f) }

    /// The rows of the final table: figure, value.
    final class Table {
        var rows: [(String, String)] = []
        func add(_ figure: String, _ value: String) { rows.append((figure, value)) }
    }

    static func run(_ c: Config, say: @escaping (String) -> Void) {
        installSignalHandlers()
        say("gantry-bench --api: N=\(c.n) workloads, \(c.requests) sequential requests per query, wrk \(c.clients) connections x \(c.wrkSeconds) s, "
            + "\(c.creates) creates, log \(c.logRate) lines/s x \(c.logSeconds) s; \(Date()) (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
        let table = Table()
        if want(c, "1") || want(c, "2") || want(c, "3") || want(c, "5") { large(c, table, say: say) }
        if want(c, "3") { small(c, table, say: say) }
        if want(c, "4") { logFollow(c, table, say: say) }
        say("")
        say("API figures (N=\(c.n) workloads; gantry run --listen, release build; sequential figures from one in-process keep-alive client)")
        let w = max(6, table.rows.map { $0.0.count }.max() ?? 0)
        say("figure".padding(toLength: w, withPad: " ", startingAt: 0) + " | value")
        say(String(repeating: "-", count: w) + "-+-" + String(repeating: "-", count: 60))
        for (f, v) in table.rows { say(f.padding(toLength: w, withPad: " ", startingAt: 0) + " | " + v) }
    }

    // MARK: The large daemon: figures 1, 2, 5 and 3 with N loaded

    /// Queries of figure 1 (path after /api/v1/workloads, query pairs, a label). The first is
    /// also wrk's.
    static let queries: [(label: String, query: [(String, String)])] = [
        ("filterBy phase==Pending,gpus>=2, sortBy createdAt desc, limit 50",
         [("filterBy", "phase==Pending,gpus>=2"), ("sortBy", "createdAt"), ("sortOrder", "desc"), ("limit", "50")]),
        ("queue=leaf-7,leaf-8, sortBy priority desc, limit 50",
         [("queue", "leaf-7,leaf-8"), ("sortBy", "priority"), ("sortOrder", "desc"), ("limit", "50")]),
        ("labels project=p2, name contains 1, sortBy gpus, offset 1000, limit 50",
         [("labels", "project=p2"), ("name", "1"), ("sortBy", "gpus"), ("offset", "1000"), ("limit", "50")]),
        ("no filter, default sort (namespace, name), limit 50",
         [("limit", "50")]),
    ]

    static func large(_ c: Config, _ table: Table, say: @escaping (String) -> Void) {
        var o = Options()
        o.n = c.n; o.perFile = c.perFile; o.dir = c.dir + "-large"
        let gen0 = monotonicSeconds()
        do { _ = try generate(o) } catch { say("api: cannot generate the manifests in \(o.dir): \(error)"); return }
        defer { if !c.keep { try? FileManager.default.removeItem(atPath: o.dir) } }
        say(String(format: "api: generated %d workloads, 100 queues, 1,000 nodes, 10 pools in %.1f s", c.n, monotonicSeconds() - gen0))
        sync()
        let t0 = monotonicSeconds()
        let d: Daemon
        switch Daemon.start(c.gantry, args: ["--spec-dir", o.dir + "/spec", "--state-dir", o.dir + "/state", "--runtime", "none", "--metrics-interval", "0"],
                            log: o.dir + "/daemon.log", timeout: 900) {
        case .success(let x): d = x
        case .failure(let e): say("api: \(e.description)"); return
        }
        defer { let s = d.stop(); say(String(format: "api: large daemon SIGTERM -> exit %d in %.2f s", s.status, s.seconds)) }
        let total = c.n
        let client = HTTPClient(port: d.port)
        defer { client.close() }
        // The API serves from the daemon's memory: wait until it counts every workload.
        var counted = -1
        let end = monotonicSeconds() + 120
        while monotonicSeconds() < end {
            if let r = try? client.request("GET", "/api/v1/workloads/count"), r.status == 200,
               let v = try? JSON.parse(String(decoding: r.body, as: UTF8.self)), let n = v["count"]?.intValue {
                counted = Int(n)
                if n >= total { break }
            }
            usleep(50_000)
        }
        let loaded = monotonicSeconds() - t0
        say(String(format: "api: initial sync complete and %d workloads counted through the API %.1f s after the daemon started (daemon CPU %.1f s)",
                   counted, loaded, cpuSeconds(d.pid)))
        if counted < total { say("api: only \(counted) of \(total) workloads visible through the API") }
        let m0 = KubeBench.memory(d.pid)
        table.add("daemon memory after the initial load (N=\(c.n))", "VmHWM \(mb(m0.hwm)), VmRSS \(mb(m0.rss))")

        if want(c, "1") {
            for (i, q) in queries.enumerated() {
                let path = "/api/v1/workloads?" + queryString(q.query)
                guard let r = listLatency(client, path: path, requests: c.requests, maxSeconds: i == 0 ? 900 : c.querySeconds, say: say) else { continue }
                say("api 1: GET \(path): \(r.samples) requests, p50 \(fmt(r.p50)) ms, p99 \(fmt(r.p99)) ms, max \(fmt(r.max)) ms; "
                    + "totalCount \(r.totalCount), \(r.items) items, \(r.bytes) bytes per answer")
                table.add("1. list \(c.n) [\(i + 1)] \(q.label)",
                          "p50 \(fmt(r.p50)) ms, p99 \(fmt(r.p99)) ms, max \(fmt(r.max)) ms (\(r.samples) sequential; \(r.totalCount) match, \(r.bytes) B)")
            }
        }
        if want(c, "2") {
            let path = "/api/v1/workloads?" + queryString(queries[0].query)
            let cpu0 = cpuSeconds(d.pid)
            if let w = wrk(port: d.port, path: path, c: c, say: say) {
                let cpu = cpuSeconds(d.pid) - cpu0
                table.add("2. list \(c.n) [1], \(c.clients) concurrent clients, \(c.wrkSeconds) s (\(w.tool))",
                          w.requests == 0
                            ? "no request completed within \(c.wrkSeconds) s (every one took longer); \(w.errors); daemon CPU \(fmt(cpu, 1)) s"
                            : "\(fmt(w.rps, 1)) requests/s; latency p50 \(w.p50), p75 \(w.p75), p90 \(w.p90), p99 \(w.p99); \(w.requests) requests, \(w.errors); daemon CPU \(fmt(cpu, 1)) s")
                let q = quiesce(d.pid)
                say("api 2: the daemon's in-flight requests drained \(fmt(q, 1)) s after wrk ended")
                if w.requests < 2 * c.clients && w.tool.hasPrefix("wrk") {
                    // Too slow for wrk's window to say anything: a longer in-process run that
                    // counts every request it started.
                    var longer = c
                    longer.wrkSeconds = max(60, c.wrkSeconds)
                    say("api 2: wrk completed \(w.requests) requests in \(c.wrkSeconds) s; \(c.clients) in-process clients for \(longer.wrkSeconds) s instead")
                    let cpu1 = cpuSeconds(d.pid)
                    if let r = inProcessLoad(port: d.port, path: path, c: longer, say: say) {
                        table.add("2. list \(c.n) [1], \(c.clients) concurrent clients, \(longer.wrkSeconds) s (in-process, wrk's window too short)",
                                  "\(fmt(r.rps, 2)) requests/s; latency p50 \(r.p50), p75 \(r.p75), p90 \(r.p90), p99 \(r.p99); \(r.requests) requests, \(r.errors); daemon CPU \(fmt(cpuSeconds(d.pid) - cpu1, 1)) s")
                    }
                }
            }
        }
        if want(c, "1") || want(c, "2") || want(c, "5") {
            let m1 = KubeBench.memory(d.pid)
            say("api 5: daemon VmHWM \(mb(m1.hwm)), VmRSS \(mb(m1.rss)) after the list load (after the initial load: VmHWM \(mb(m0.hwm)), VmRSS \(mb(m0.rss)))")
            table.add("5. daemon memory after the list load of 1-2", "VmHWM \(mb(m1.hwm)), VmRSS \(mb(m1.rss))")
        }
        if want(c, "3") {
            _ = quiesce(d.pid)
            if let r = createLatency(client, creates: c.creates, namespace: "apibench", queue: "leaf-0", say: say) {
                table.add("3. create -> status decided (\(c.n) loaded)", r)
            }
        }
    }

    /// Figure 3 on a daemon with the queue tree and nodes only.
    static func small(_ c: Config, _ table: Table, say: @escaping (String) -> Void) {
        var o = Options()
        o.n = 0; o.dir = c.dir + "-small"
        do { _ = try generate(o) } catch { say("api: cannot generate the manifests in \(o.dir): \(error)"); return }
        defer { if !c.keep { try? FileManager.default.removeItem(atPath: o.dir) } }
        let d: Daemon
        switch Daemon.start(c.gantry, args: ["--spec-dir", o.dir + "/spec", "--state-dir", o.dir + "/state", "--runtime", "none", "--metrics-interval", "0"],
                            log: o.dir + "/daemon.log", timeout: 120) {
        case .success(let x): d = x
        case .failure(let e): say("api: \(e.description)"); return
        }
        defer { _ = d.stop() }
        let client = HTTPClient(port: d.port)
        defer { client.close() }
        if let r = createLatency(client, creates: c.creates, namespace: "apibench", queue: "leaf-0", say: say) {
            table.add("3. create -> status decided (small store: 0 workloads before)", r)
        }
    }

    // MARK: 1. Sequential list latency

    struct ListResult { var samples = 0; var p50 = 0.0, p99 = 0.0, max = 0.0; var totalCount = 0, items = 0, bytes = 0 }

    static func listLatency(_ client: HTTPClient, path: String, requests: Int, maxSeconds: Double, say: (String) -> Void) -> ListResult? {
        var r = ListResult()
        do {
            let first = try client.request("GET", path)
            guard first.status == 200 else {
                say("api 1: GET \(path): status \(first.status): \(String(decoding: first.body.prefix(300), as: UTF8.self))")
                return nil
            }
            let v = try JSON.parse(String(decoding: first.body, as: UTF8.self))
            r.totalCount = Int(v["totalCount"]?.intValue ?? -1)
            r.items = v["items"]?.arrayValue?.count ?? -1
            r.bytes = first.body.count
            for _ in 0..<5 { _ = try client.request("GET", path) }   // warm-up
            var lat: [Double] = []
            lat.reserveCapacity(requests)
            let end = monotonicSeconds() + maxSeconds
            for _ in 0..<requests {
                if monotonicSeconds() > end {
                    say("api 1: GET \(path): stopped after \(lat.count) requests (\(Int(maxSeconds)) s per query; --api-query-seconds)")
                    break
                }
                let t0 = monotonicSeconds()
                let resp = try client.request("GET", path)
                let ms = (monotonicSeconds() - t0) * 1000
                guard resp.status == 200 else { say("api 1: GET \(path): status \(resp.status)"); return nil }
                lat.append(ms)
            }
            r.samples = lat.count
            r.p50 = percentile(lat, 0.5); r.p99 = percentile(lat, 0.99); r.max = lat.max() ?? 0
            return r
        } catch {
            say("api 1: GET \(path): \(error)")
            return nil
        }
    }

    // MARK: 2. Concurrent clients

    struct WrkResult { var tool = ""; var rps = 0.0; var p50 = "?", p75 = "?", p90 = "?", p99 = "?"; var requests = 0; var errors = "" }

    static func wrk(port: Int, path: String, c: Config, say: (String) -> Void) -> WrkResult? {
        let url = "http://127.0.0.1:\(port)\(path)"
        guard let exe = findExecutable("wrk") else {
            say("api 2: wrk not found (apt-get install -y wrk): in-process client with \(c.clients) threads instead")
            var r = inProcessLoad(port: port, path: path, c: c, say: say)
            r?.tool += " (wrk not installed)"
            return r
        }
        let args = ["-t", String(max(1, min(c.wrkThreads, c.clients))), "-c", String(c.clients), "-d", "\(c.wrkSeconds)s", "--timeout", "30s", "--latency", url]
        say("api 2: \(exe) " + args.joined(separator: " "))
        guard let (status, out) = runCapturing(exe, args, timeout: Double(c.wrkSeconds) + 60) else {
            say("api 2: wrk did not finish in time")
            return nil
        }
        say(out.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        guard status == 0 else { say("api 2: wrk exit \(status)"); return nil }
        var r = WrkResult(tool: "wrk -t \(max(1, min(c.wrkThreads, c.clients))) -c \(c.clients)")
        var inDistribution = false
        var non2xx = 0
        var socketErrors = ""
        for raw in out.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if line.hasPrefix("Latency Distribution") { inDistribution = true; continue }
            if inDistribution, f.count == 2, f[0].hasSuffix("%") {
                switch f[0] {
                case "50%": r.p50 = f[1]
                case "75%": r.p75 = f[1]
                case "90%": r.p90 = f[1]
                case "99%": r.p99 = f[1]
                default: break
                }
                continue
            }
            inDistribution = false
            if line.hasPrefix("Requests/sec:"), f.count >= 2 { r.rps = Double(f[1]) ?? 0 }
            if line.contains(" requests in "), let n = Int(f.first ?? "") { r.requests = n }
            if line.hasPrefix("Non-2xx or 3xx responses:"), let n = Int(f.last ?? "") { non2xx = n }
            if line.hasPrefix("Socket errors:") { socketErrors = line }
        }
        r.errors = "\(non2xx) non-2xx" + (socketErrors.isEmpty ? ", no socket errors" : "; " + socketErrors)
        return r
    }

    /// The fallback of figure 2: `clients` threads, each with its own kept-alive connection,
    /// sending the request back to back for `wrkSeconds`.
    static func inProcessLoad(port: Int, path: String, c: Config, say: (String) -> Void) -> WrkResult? {
        let latencies = Locked<[Double]>([])
        let failures = Counter()
        let deadline = monotonicSeconds() + Double(c.wrkSeconds)
        let t0 = monotonicSeconds()
        KubeBench.parallel(c.clients, c.clients) { _ in
            let client = HTTPClient(port: port, timeout: 300)
            defer { client.close() }
            var mine: [Double] = []
            while monotonicSeconds() < deadline {
                let s = monotonicSeconds()
                if let r = try? client.request("GET", path), r.status == 200 { mine.append((monotonicSeconds() - s) * 1000) } else {
                    _ = failures.increment()
                    client.close()
                }
            }
            latencies.with { $0 += mine }
        }
        let dt = monotonicSeconds() - t0
        let lat = latencies.with { $0 }
        var r = WrkResult(tool: "in-process, \(c.clients) threads")
        r.requests = lat.count
        r.rps = Double(lat.count) / max(dt, 1e-9)
        r.p50 = fmt(percentile(lat, 0.5)) + "ms"; r.p75 = fmt(percentile(lat, 0.75)) + "ms"
        r.p90 = fmt(percentile(lat, 0.9)) + "ms"; r.p99 = fmt(percentile(lat, 0.99)) + "ms"
        r.errors = "\(failures.current) failed"
        say("api 2 (in-process): \(r.requests) requests in \(fmt(dt)) s: \(fmt(r.rps, 2)) requests/s, p50 \(r.p50), p99 \(r.p99), \(r.errors)")
        return r
    }

    /// Waits (up to 120 s) until the daemon uses under 10% of a core over half a second: the
    /// requests of clients that left are still being answered. Returns the seconds waited.
    static func quiesce(_ pid: Int32) -> Double {
        let t0 = monotonicSeconds()
        var last = cpuSeconds(pid)
        while monotonicSeconds() - t0 < 120 {
            usleep(500_000)
            let now = cpuSeconds(pid)
            if now - last < 0.05 { break }
            last = now
        }
        return monotonicSeconds() - t0
    }

    // MARK: 3. Create -> status

    static func workloadBody(_ name: String, namespace: String, queue: String, command: String = "sleep 3600", gpus: Int = 1) -> [UInt8] {
        let spec: Value = .object([
            .init("type", .string("Job")), .init("queue", .string(queue)), .init("command", .string(command)),
            .init("priority", .int(0)), .init("resources", .object([.init("gpu", .int(Int64(gpus)))])),
        ])
        let v: Value = .object([
            .init("apiVersion", .string("gantry.dev/v1alpha1")), .init("kind", .string("Workload")),
            .init("metadata", .object([.init("name", .string(name)), .init("namespace", .string(namespace))])),
            .init("spec", spec),
        ])
        return Array(JSON.encode(v).utf8)
    }

    /// Admission decided: observedGeneration >= 1 and admitted, or given a queue position, or
    /// an Admitted condition False with a reason.
    static func decided(_ status: Value?) -> (decided: Bool, admitted: Bool) {
        guard let s = status, (s["observedGeneration"]?.intValue ?? 0) >= 1 else { return (false, false) }
        if s["admission"] != nil { return (true, true) }
        if s["queuePosition"]?.intValue != nil { return (true, false) }
        for c in s["conditions"]?.arrayValue ?? [] where c["type"]?.stringValue == ConditionType.admitted {
            if c["status"]?.stringValue == "True" { return (true, true) }
            if !(c["reason"]?.stringValue ?? "").isEmpty { return (true, false) }
        }
        return (false, false)
    }

    /// `creates` sequential creates, each polled (GET every millisecond) until decided.
    static func createLatency(_ client: HTTPClient, creates: Int, namespace: String, queue: String, say: (String) -> Void) -> String? {
        var post: [Double] = [], decide: [Double] = []
        var admitted = 0, failed = 0
        let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        // A fresh connection: the kept one may have idled past the server's timeout.
        client.close()
        for i in 0..<creates {
            let name = "api-\(runID)-\(i)"
            let t0 = monotonicSeconds()
            do {
                let r = try client.request("POST", "/api/v1/namespaces/\(namespace)/workloads", body: workloadBody(name, namespace: namespace, queue: queue),
                                           contentType: "application/json")
                let tPost = monotonicSeconds()
                guard r.status == 201 else {
                    failed += 1
                    say("api 3: create \(name): status \(r.status): \(String(decoding: r.body.prefix(300), as: UTF8.self))")
                    if failed > 5 { break }
                    continue
                }
                post.append((tPost - t0) * 1000)
                var done: (decided: Bool, admitted: Bool) = (false, false)
                if let v = try? JSON.parse(String(decoding: r.body, as: UTF8.self)) { done = decided(v["status"]) }
                while !done.decided && monotonicSeconds() - t0 < 10 {
                    usleep(1000)
                    let g = try client.request("GET", "/api/v1/namespaces/\(namespace)/workloads/\(name)")
                    if g.status == 200, let v = try? JSON.parse(String(decoding: g.body, as: UTF8.self)) { done = decided(v["status"]) }
                }
                if done.decided {
                    decide.append((monotonicSeconds() - t0) * 1000)
                    if done.admitted { admitted += 1 }
                } else {
                    failed += 1
                    say("api 3: create \(name): no decision within 10 s")
                }
            } catch {
                failed += 1
                say("api 3: create \(name): \(error)")
                client.close()
                if failed > 5 { break }
            }
            usleep(20_000)
        }
        guard !decide.isEmpty else { say("api 3: no create was decided"); return nil }
        let text = "POST -> decided: p50 \(fmt(percentile(decide, 0.5))) ms, p99 \(fmt(percentile(decide, 0.99))) ms, max \(fmt(decide.max() ?? 0)) ms; "
            + "POST answered (201): p50 \(fmt(percentile(post, 0.5))) ms, p99 \(fmt(percentile(post, 0.99))) ms; \(decide.count) of \(creates) decided (\(admitted) admitted)"
            + (failed > 0 ? ", \(failed) failed" : "")
        say("api 3: " + text)
        return text
    }

    // MARK: 4. Log follow

    /// What one follow of the log read.
    struct FollowResult {
        var received = 0, lost = 0, duplicates = 0, malformed = 0, supervisor = 0
        var expected = 0
        var firstAt = 0.0, lastAt = 0.0, firstStamp = 0.0, lastStamp = 0.0
        var lags: [Double] = []
        var opened = false
        var error: String?
    }

    /// Follows the replica's log from its start (retrying while it has no log yet) until the
    /// stream ends or `seconds` pass; checks the numbering of `N TIME` lines.
    static func follow(_ port: Int, path: String, total: Int, seconds: Double) -> FollowResult {
        var r = FollowResult()
        r.lags.reserveCapacity(total)
        let stream = HTTPClient(port: port, timeout: 30)
        defer { stream.close() }
        var partial: [UInt8] = []
        let start = monotonicSeconds()
        while monotonicSeconds() - start < 30 {
            do {
                let head = try stream.send("GET", path)
                if head.status == 404 { try stream.readBody(head) { _ in true }; usleep(5_000); continue }
                guard head.status == 200 else { r.error = "status \(head.status)"; return r }
                r.opened = true
                let deadline = monotonicSeconds() + seconds
                try stream.readBody(head) { chunk in
                    let now = Date().timeIntervalSince1970
                    partial.append(contentsOf: chunk)
                    guard let nl = partial.lastIndex(of: 10) else { return monotonicSeconds() < deadline }
                    for line in partial[...nl].split(separator: 10) {
                        if line.starts(with: Array("[gantry]".utf8)) { r.supervisor += 1; continue }
                        let f = line.split(separator: 32)
                        guard f.count == 2, let k = Int(String(decoding: f[0], as: UTF8.self)), let t = Double(String(decoding: f[1], as: UTF8.self)) else {
                            r.malformed += 1; continue
                        }
                        r.received += 1
                        if r.firstAt == 0 { r.firstAt = now; r.firstStamp = t }
                        r.lastAt = now; r.lastStamp = t
                        r.lags.append((now - t) * 1000)
                        if k == r.expected { r.expected += 1 } else if k > r.expected { r.lost += k - r.expected; r.expected = k + 1 } else { r.duplicates += 1 }
                    }
                    partial.removeFirst(nl + 1)
                    return monotonicSeconds() < deadline
                }
                break
            } catch {
                r.error = "\(error)"
                if r.opened { break }
                stream.close()
                usleep(50_000)
            }
        }
        if r.expected < total { r.lost += total - r.expected }
        return r
    }

    static func describe(_ r: FollowResult, total: Int) -> String {
        let span = max(r.lastAt - r.firstAt, 1e-9)
        return "\(r.received) of \(total) lines received in order, \(r.lost) lost, \(r.duplicates) duplicated or out of order"
            + (r.malformed > 0 ? ", \(r.malformed) malformed" : "") + "; \(fmt(Double(r.received) / span, 0)) lines/s received over \(fmt(span)) s "
            + "(written over \(fmt(r.lastStamp - r.firstStamp)) s); delivery lag p50 \(fmt(percentile(r.lags, 0.5), 0)) ms, "
            + "p99 \(fmt(percentile(r.lags, 0.99), 0)) ms, max \(fmt(r.lags.max() ?? 0, 0)) ms" + (r.error.map { "; error: \($0)" } ?? "")
    }

    /// The workload's status (nil when it cannot be read).
    static func workloadStatus(_ client: HTTPClient, _ path: String) -> Value? {
        guard let g = try? client.request("GET", path), g.status == 200, let v = try? JSON.parse(String(decoding: g.body, as: UTF8.self)) else { return nil }
        return v["status"]
    }

    static func logFollow(_ c: Config, _ table: Table, say: (String) -> Void) {
        let dir = c.dir + "-log"
        try? FileManager.default.removeItem(atPath: dir)
        defer { if !c.keep { try? FileManager.default.removeItem(atPath: dir) } }
        do {
            try FileManager.default.createDirectory(atPath: dir + "/spec", withIntermediateDirectories: true)
            try "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: batch}\nspec:\n  deserved: {gpu: 8}\n"
                .write(toFile: dir + "/spec/queue.yaml", atomically: true, encoding: .utf8)
        } catch { say("api 4: \(error)"); return }
        // A system python3 first: the replica may run as another account (below), which
        // cannot read a python under /root.
        guard let python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : findExecutable("python3") else {
            say("api 4: python3 not found (the log writer is a python3 loop)"); return
        }
        // A daemon running as root runs an anonymous API workload only with --run-as.
        let runAs = getuid() == 0 && getpwnam("nobody") != nil ? ["--run-as", "nobody"] : []
        let d: Daemon
        switch Daemon.start(c.gantry, args: ["--spec-dir", dir + "/spec", "--state-dir", dir + "/state", "--local-gpus", "8", "--metrics-interval", "0"] + runAs,
                            log: dir + "/daemon.log", timeout: 120) {
        case .success(let x): d = x
        case .failure(let e): say("api 4: \(e.description)"); return
        }
        let total = c.logRate * c.logSeconds
        // Numbered lines "I TIME" in batches of rate/100 every 10 ms, paced against the start
        // (a late batch is caught up at once); os.write, no buffering.
        let script = """
            import os,time
            n=\(total); rate=\(c.logRate); b=max(1,rate//100); t0=time.time(); i=0
            while i<n:
                d=t0+i/rate-time.time()
                if d>0: time.sleep(d)
                now=time.time()
                os.write(1,"".join("%d %.6f\\n"%(k,now) for k in range(i,min(i+b,n))).encode())
                i+=b
            """
        let command = "exec \(python) -c '\(script)'"
        let client = HTTPClient(port: d.port, timeout: 30)
        let name = "logs-\(c.logRate)"
        let wpath = "/api/v1/namespaces/bench/workloads/\(name)"
        var finished = false
        defer {
            // The replica must not outlive the bench: wait for it to end, else delete it, and
            // as a last resort kill what the supervisor records name.
            if !finished {
                let end = monotonicSeconds() + Double(c.logSeconds) + 30
                while monotonicSeconds() < end {
                    let phase = workloadStatus(client, wpath)?["phase"]?.stringValue ?? ""
                    if phase == "Succeeded" || phase == "Failed" { finished = true; break }
                    usleep(200_000)
                }
                if !finished {
                    _ = try? client.request("DELETE", wpath)
                    usleep(2_000_000)
                }
            }
            client.close()
            _ = d.stop()
            if !finished { ReclaimBench.killReplicas(dir + "/state") }
        }
        do {
            let r = try client.request("POST", "/api/v1/namespaces/bench/workloads", body: workloadBody(name, namespace: "bench", queue: "batch", command: command),
                                       contentType: "application/json")
            guard r.status == 201 else { say("api 4: create: status \(r.status): \(String(decoding: r.body.prefix(300), as: UTF8.self))"); return }
        } catch { say("api 4: create: \(error)"); return }
        let path = wpath + "/replicas/0/logs?follow=true"
        // As a client would: follow from the moment the workload is created.
        let f0 = monotonicSeconds()
        var r = follow(d.port, path: path, total: total, seconds: Double(c.logSeconds) + 60)
        var note = ""
        if r.received < total {
            let st = workloadStatus(client, wpath)
            let phase = st?["phase"]?.stringValue ?? "without status"
            let replicas = st?["replicas"].map { JSON.encode($0) } ?? "none"
            note = "a follow opened right after the create ended after \(fmt((monotonicSeconds() - f0) * 1000, 0)) ms with \(r.received) lines "
                + "(and \(r.supervisor) supervisor lines\(r.error.map { "; \($0)" } ?? "")); just after, the workload was \(phase), replicas \(replicas.prefix(200))"
            say("api 4: \(note); following again once the replica is Running")
            let end = monotonicSeconds() + 30
            while monotonicSeconds() < end {
                let st = workloadStatus(client, wpath)
                let running = st?["replicas"]?.arrayValue?.contains { $0["rank"]?.intValue == 0 && $0["phase"]?.stringValue == "Running" } ?? false
                let phase = st?["phase"]?.stringValue ?? ""
                if running || phase == "Succeeded" || phase == "Failed" { break }
                usleep(5_000)
            }
            r = follow(d.port, path: path, total: total, seconds: Double(c.logSeconds) + 60)
        }
        let text = describe(r, total: total)
        say("api 4: follow \(path): " + text)
        table.add("4. log follow at \(c.logRate) lines/s for \(c.logSeconds) s\(runAs.isEmpty ? "" : " (--run-as nobody)")", text)
        if !note.isEmpty { table.add("4. (first follow, opened at the create)", note) }
    }

    // MARK: Helpers

    static func mb(_ kb: Int) -> String { "\(fmt(Double(kb) / 1024, 0)) MB" }

    /// `k=v&...`, every name and value percent-encoded (unreserved characters kept).
    static func queryString(_ pairs: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
        allowed.insert(charactersIn: "-._~")
        return pairs.map { ($0.0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.0) + "=" + ($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1) }
            .joined(separator: "&")
    }

    static func findExecutable(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// Runs a program to its end (killed after `timeout`); nil when it could not start or ran
    /// past the time.
    static func runCapturing(_ exe: String, _ args: [String], timeout: Double) -> (Int32, String)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = NSTemporaryDirectory() + "gantry-apibench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: out) }
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = p.standardOutput
        do { try p.run() } catch { return nil }
        apiBenchHelper.store(p.processIdentifier, ordering: .relaxed)
        defer { apiBenchHelper.store(0, ordering: .relaxed) }
        let end = monotonicSeconds() + timeout
        while p.isRunning && monotonicSeconds() < end { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return nil }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    static func installSignalHandlers() {
        for s in [SIGINT, SIGTERM, SIGHUP] {
            signal(s) { sig in
                let d = apiBenchDaemon.load(ordering: .relaxed)
                if d > 0 { kill(d, SIGTERM) }
                let h = apiBenchHelper.load(ordering: .relaxed)
                if h > 0 { kill(h, SIGKILL) }
                _exit(128 + sig)
            }
        }
    }

    // MARK: The daemon

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// `gantry run --listen 127.0.0.1:0 ...`, started and stopped; the port is read from its log.
    final class Daemon {
        let process: Process
        let pid: Int32
        let port: Int
        let log: String
        private var stopped = false

        private init(process: Process, port: Int, log: String) {
            self.process = process; self.pid = process.processIdentifier; self.port = port; self.log = log
        }

        /// Starts the daemon and waits (up to `timeout` s) for its initial sync and its API port.
        static func start(_ gantry: String, args: [String], log: String, timeout: Double) -> Result<Daemon, Failure> {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: gantry)
            p.arguments = ["run", "--listen", "127.0.0.1:0"] + args
            p.standardError = FileHandle(forWritingAtPath: log)
            p.standardOutput = p.standardError
            do { try p.run() } catch { return .failure(Failure(description: "cannot start \(gantry): \(error)")) }
            apiBenchDaemon.store(p.processIdentifier, ordering: .relaxed)
            let end = monotonicSeconds() + timeout
            var port: Int?
            while true {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if port == nil { port = portIn(text) }
                if let port, text.contains("initial sync complete") { return .success(Daemon(process: p, port: port, log: log)) }
                if !p.isRunning {
                    apiBenchDaemon.store(0, ordering: .relaxed)
                    return .failure(Failure(description: "the daemon exited (\(p.terminationStatus)); log:\n" + String(text.suffix(3000))))
                }
                if monotonicSeconds() > end {
                    stop(p)
                    return .failure(Failure(description: "the daemon did not complete its initial sync (and serve the API) within \(Int(timeout)) s; log:\n" + String(text.suffix(3000))))
                }
                usleep(20_000)
            }
        }

        /// The port of "serving the HTTP API ... port=N".
        static func portIn(_ log: String) -> Int? {
            for line in log.split(separator: "\n") where line.contains("serving the HTTP API") {
                guard let r = line.range(of: " port=") else { continue }
                return Int(line[r.upperBound...].prefix { $0.isNumber })
            }
            return nil
        }

        /// SIGTERM, then SIGKILL after 30 s.
        @discardableResult
        static func stop(_ p: Process) -> (status: Int32, seconds: Double) {
            let t0 = monotonicSeconds()
            if p.isRunning { p.terminate() }
            while p.isRunning && monotonicSeconds() - t0 < 30 { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            apiBenchDaemon.store(0, ordering: .relaxed)
            return (p.terminationStatus, monotonicSeconds() - t0)
        }

        func stop() -> (status: Int32, seconds: Double) {
            if stopped { return (process.terminationStatus, 0) }
            stopped = true
            return Daemon.stop(process)
        }

        deinit { if !stopped { Daemon.stop(process) } }
    }
}

/// The daemon the API bench runs now (0: none) and a helper process (wrk), for the signal handler.
let apiBenchDaemon = Atomic<Int32>(0)
let apiBenchHelper = Atomic<Int32>(0)

// MARK: - A small HTTP/1.1 client

/// A plain-socket HTTP/1.1 client on 127.0.0.1 with one kept-alive connection: Content-Length
/// and chunked bodies, send and receive timeouts. For one thread at a time.
final class HTTPClient {
    struct Response { var status: Int; var body: [UInt8] }
    struct Head { var status: Int; var contentLength: Int?; var chunked: Bool; var close: Bool }
    struct Failure: Error, CustomStringConvertible { let description: String }

    let port: Int
    let timeout: Double
    private var fd: Int32 = -1
    private var buf: [UInt8] = []
    private var pos = 0

    init(port: Int, timeout: Double = 30) { self.port = port; self.timeout = timeout }
    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1; buf = []; pos = 0
    }

    private func connect() throws {
        close()
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else {
            let e = String(cString: strerror(errno))
            Glibc.close(s)
            throw Failure(description: "connect 127.0.0.1:\(port): \(e)")
        }
        fd = s
    }

    /// A whole request and answer; a GET is retried once on a fresh connection when a kept
    /// connection turns out closed.
    func request(_ method: String, _ target: String, body: [UInt8]? = nil, contentType: String? = nil) throws -> Response {
        let reused = fd >= 0
        do {
            let head = try send(method, target, body: body, contentType: contentType)
            var out: [UInt8] = []
            try readBody(head) { out.append(contentsOf: $0); return true }
            return Response(status: head.status, body: out)
        } catch let e as Failure where reused && method == "GET" && e.description.hasPrefix("connection closed before") {
            close()
            let head = try send(method, target, body: body, contentType: contentType)
            var out: [UInt8] = []
            try readBody(head) { out.append(contentsOf: $0); return true }
            return Response(status: head.status, body: out)
        }
    }

    /// Sends a request and reads the answer's head.
    func send(_ method: String, _ target: String, body: [UInt8]? = nil, contentType: String? = nil) throws -> Head {
        if fd < 0 { try connect() }
        var req = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: gantry-bench\r\nAccept: */*\r\n"
        if let ct = contentType { req += "Content-Type: \(ct)\r\n" }
        if let b = body { req += "Content-Length: \(b.count)\r\n" }
        req += "\r\n"
        var bytes = Array(req.utf8)
        if let b = body { bytes += b }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = String(cString: strerror(errno)); close()
                throw Failure(description: "connection closed before the answer (send: \(e))")
            }
            done += n
        }
        // Status line and headers.
        guard let statusLine = try readLine(first: true) else { close(); throw Failure(description: "connection closed before the answer") }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            close(); throw Failure(description: "bad status line: \(statusLine.prefix(100))")
        }
        var head = Head(status: status, contentLength: nil, chunked: false, close: false)
        while true {
            guard let line = try readLine(first: false) else { close(); throw Failure(description: "connection closed in the headers") }
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-length": head.contentLength = Int(value)
            case "transfer-encoding": head.chunked = value.lowercased().contains("chunked")
            case "connection": head.close = value.lowercased().contains("close")
            default: break
            }
        }
        if method == "HEAD" || status == 204 || status == 304 { head.contentLength = 0; head.chunked = false }
        return head
    }

    /// Reads the body of `head`, handing each piece to `emit` (false: stop, the connection is
    /// closed).
    func readBody(_ head: Head, _ emit: ([UInt8]) -> Bool) throws {
        if head.chunked {
            while true {
                guard let sizeLine = try readLine(first: false) else { close(); throw Failure(description: "connection closed in a chunked body") }
                let hex = sizeLine.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                guard let size = Int(hex, radix: 16), size >= 0, size <= 1 << 30 else { close(); throw Failure(description: "bad chunk size \(sizeLine.prefix(40))") }
                if size == 0 {
                    while let t = try readLine(first: false), !t.isEmpty {}
                    break
                }
                let data = try readExactly(size)
                guard try readLine(first: false) == "" else { close(); throw Failure(description: "chunk without its CRLF") }
                if !emit(data) { close(); return }
            }
        } else if let n = head.contentLength {
            guard n >= 0 else { close(); throw Failure(description: "bad Content-Length") }
            if n > 0, !emit(try readExactly(n)) { close(); return }
        } else {
            // Until the server closes.
            while try fill() { }
            let rest = Array(buf[pos...])
            close()
            _ = emit(rest)
            return
        }
        if head.close { close() }
        if pos > 1 << 16 { buf.removeFirst(pos); pos = 0 }
    }

    /// More bytes into the buffer; false at the end of the stream.
    private func fill() throws -> Bool {
        if fd < 0 { return false }
        var tmp = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buf.append(contentsOf: tmp[0..<n]); return true }
            if n == 0 { return false }
            if errno == EINTR { continue }
            let e = errno
            close()
            throw Failure(description: e == EAGAIN || e == EWOULDBLOCK ? "timed out after \(timeout) s waiting for the server" : "recv: \(String(cString: strerror(e)))")
        }
    }

    /// A CRLF-terminated line without its CRLF; nil when the stream ends first (for the
    /// status line only when nothing at all was read).
    private func readLine(first: Bool) throws -> String? {
        var from = pos
        while true {
            if let i = buf[from...].firstIndex(of: 10) {
                var end = i
                if end > pos && buf[end - 1] == 13 { end -= 1 }
                let line = String(decoding: buf[pos..<end], as: UTF8.self)
                pos = i + 1
                return line
            }
            from = buf.count
            if buf.count - pos > 1 << 20 { close(); throw Failure(description: "a header line over 1 MiB") }
            guard try fill() else { return nil }
        }
    }

    private func readExactly(_ n: Int) throws -> [UInt8] {
        while buf.count - pos < n {
            guard try fill() else { close(); throw Failure(description: "connection closed in the body") }
        }
        let out = Array(buf[pos..<(pos + n)])
        pos += n
        if pos == buf.count { buf.removeAll(keepingCapacity: true); pos = 0 }
        return out
    }
}
