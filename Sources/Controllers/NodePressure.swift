import GantryAPI
import ControllerRuntime

/// A node condition in force after an infrastructure fault there: `DiskPressure` (ENOSPC,
/// EDQUOT) or `ResourcePressure` (EMFILE, ENFILE, EAGAIN, ENOMEM).
struct NodePressure: Equatable {
    var type: String
    var fault: InfrastructureFault
    var since: Double
}

extension Admission {
    /// Seconds between probes of the runtime while a node is under pressure.
    static let probeInterval = 10.0

    /// An infrastructure fault on `node`: with a pressure errno the node gets the condition
    /// and admits nothing new (running replicas stay) until `relievePressure`.
    func notePressure(_ node: String, _ fault: InfrastructureFault) {
        guard let type = fault.pressure else { return }
        let now = clock.now()
        let isNew = pressure[node] == nil
        pressure[node] = NodePressure(type: type, fault: fault, since: pressure[node]?.since ?? now)
        if isNew { nextProbe = now + Admission.probeInterval }
        let key = ObjectKey(.node, name: node)
        guard let obj = inventory.desired.get(key) else { return }
        if isNew {
            state.setNode(node, spec: obj.spec.node, ready: false)
            kick()
            Log.warn("node under pressure: it admits nothing new until a probe succeeds", ["node": node, "condition": type, "fault": fault.description])
            events.warning(InvolvedObject(key), type, "\(fault.description); the node admits nothing new until the fault is over")
        }
        let ts = clock.timestamp
        statuses.update(key, initial: { .node(NodeStatus()) }) { status in
            var s = status.node ?? NodeStatus()
            if s.phase == "Ready" { s.phase = type }
            s.conditions.set(type: type, status: "True", reason: Reason.infrastructureFailure, message: fault.description + "; admits nothing new", now: ts, generation: s.observedGeneration)
            status = .node(s)
        }
    }

    /// The fault on `node` is over: the condition goes False and the node admits again.
    func relievePressure(_ node: String, because why: String) {
        guard let p = pressure.removeValue(forKey: node) else { return }
        let key = ObjectKey(.node, name: node)
        guard let obj = inventory.desired.get(key) else { return }
        state.setNode(node, spec: obj.spec.node, ready: nodeReady[node] ?? true)
        kick()
        Log.info("node pressure over", ["node": node, "condition": p.type, "why": why])
        events.normal(InvolvedObject(key), p.type + "Relieved", "\(why); the node admits again (it had: \(p.fault.description))")
        let ts = clock.timestamp
        statuses.update(key, initial: { .node(NodeStatus()) }) { status in
            var s = status.node ?? NodeStatus()
            if s.phase == p.type { s.phase = "Ready" }
            s.conditions.set(type: p.type, status: "False", reason: "Relieved", message: why, now: ts, generation: s.observedGeneration)
            status = .node(s)
        }
    }

    /// Whether a probe of the runtime is due (nodes under pressure, interval passed).
    func probeDue(now: Double) -> Bool { !pressure.isEmpty && now >= nextProbe }

    /// The probe's outcome: success relieves every node; a fault keeps them, probing again later.
    func applyProbe(_ fault: InfrastructureFault?, now: Double) {
        nextProbe = now + Admission.probeInterval
        guard fault == nil else { return }
        for node in pressure.keys.sorted() { relievePressure(node, because: "a probe of the state directory succeeded") }
    }

    /// The condition type in force on a node, if any (node status).
    public func nodePressure(_ node: String) -> String? { locked { pressure[node]?.type } }
}
