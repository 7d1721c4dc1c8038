import Foundation
import Synchronization
import ControllerRuntime
import HTTPServer

/// `gantry run --metrics-addr`: GET /healthz (200 "ok" while the daemon's loops are alive),
/// GET /readyz (200 once `setReady()` was called, after the initial sync; 503 with the reason
/// otherwise) and GET /metrics (the registry in Prometheus text format).
public final class ProbeServer: Sendable {
    /// The daemon loop beats every 100 ms; this long without a beat (after the first) is a stall.
    static let stallSeconds = 60.0

    let server: HTTPServer
    let state: ProbeState

    public var port: Int { server.port }

    public init(address: String, metrics: Metrics) throws {
        let state = ProbeState()
        self.state = state
        server = try HTTPServer(address: address, maxBodyBytes: 4096, maxConnections: 16, handler: ProbeServer.router(state: state, metrics: metrics))
    }

    /// The probes plus more routes (`--listen`: the HTTP API and the dashboard), with the
    /// API's body size and connection limits.
    public init(address: String, metrics: Metrics, maxBodyBytes: Int, maxConnections: Int, idleTimeout: Int, routes: (inout Router) -> Void) throws {
        let state = ProbeState()
        self.state = state
        var r = ProbeServer.router(state: state, metrics: metrics)
        routes(&r)
        server = try HTTPServer(address: address, maxBodyBytes: maxBodyBytes, maxConnections: maxConnections, idleTimeout: idleTimeout, handler: r)
    }

    static func router(state: ProbeState, metrics: Metrics) -> Router {
        var r = Router()
        r.register(method: "GET", pattern: "/healthz") { _ in
            if let stalled = state.stalledFor(now: monotonicSeconds()), stalled > stallSeconds {
                return .text("daemon loop stalled for \(Int(stalled))s\n", status: 503)
            }
            return .text("ok\n")
        }
        r.register(method: "GET", pattern: "/readyz") { _ in
            if let reason = state.notReadyReason() { return .text("not ready: \(reason)\n", status: 503) }
            return .text("ok\n")
        }
        r.register(method: "GET", pattern: "/metrics") { _ in
            HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: .bytes(Array(metrics.render().utf8)))
        }
        return r
    }

    /// Ready: /readyz answers 200.
    public func setReady() { state.setNotReady(nil) }
    /// Not ready for `reason` ("shutting down"): /readyz answers 503 with it.
    public func setNotReady(_ reason: String) { state.setNotReady(reason) }
    /// The daemon's loop is alive (call it every turn).
    public func beat() { state.beat(now: monotonicSeconds()) }
    public func stop() { server.stop() }
}

/// Readiness and the loop's last beat, shared by the daemon and the probe handlers.
final class ProbeState: Sendable {
    let reason = Mutex<String?>("initial sync not complete")
    /// Milliseconds (monotonic) of the last beat; 0: none yet.
    let lastBeat = Atomic<Int>(0)

    func setNotReady(_ r: String?) { reason.withLock { $0 = r } }
    func notReadyReason() -> String? { reason.withLock { $0 } }
    func beat(now: Double) { lastBeat.store(Int(now * 1000), ordering: .relaxed) }
    /// Seconds since the last beat; nil before the first.
    func stalledFor(now: Double) -> Double? {
        let b = lastBeat.load(ordering: .relaxed)
        return b == 0 ? nil : now - Double(b) / 1000
    }
}
