import Foundation
import GantryAPI
import Glibc

extension TestAPIServer {
    /// Kubelet stand-in: sets a Pod's status as a kubelet would report it (phase,
    /// startTime, one containerStatus per spec container with state waiting / running /
    /// terminated{exitCode}). A deleting Pod that reaches Succeeded or Failed goes away
    /// (once it has no finalizers). `exitCode` defaults to 0 for Succeeded, 1 for Failed.
    public func setPodPhase(namespace: String, name: String, phase: String, exitCode: Int32? = nil) {
        guard let p = ResourcePath("/api/v1/namespaces/\(namespace)/pods/\(name)") else { return }
        mutate { (c: inout Control) in c.store.setPodPhase(p, phase: phase, exitCode: exitCode) }
    }

    /// Starts (or reconfigures) a background kubelet that ticks every 20 ms: with
    /// `autoRun`, bound Pending Pods become Running; with an `exitCode`, Running Pods end
    /// (Succeeded for 0, Failed otherwise) `kubeletRunSeconds` after they started; bound
    /// Pods being deleted with a grace period are removed on the next tick.
    public func runKubelet(autoRun: Bool, exitCode: Int32?) {
        let start = state.withLock { c -> Bool in
            c.kubelet = KubeletConfig(autoRun: autoRun, exitCode: exitCode)
            if c.kubeletStarted || c.stopped { return false }
            c.kubeletStarted = true
            return true
        }
        if start { spawn { [self] in kubeletLoop() } }
    }

    /// How long the kubelet stand-in keeps a Pod Running before ending it (default 0.2 s).
    public var kubeletRunSeconds: Double {
        get { state.withLock { $0.kubeletRunSeconds } }
        set { state.withLock { $0.kubeletRunSeconds = max(0, newValue) } }
    }

    func kubeletLoop() {
        while true {
            let stopped = mutate { (c: inout Control) -> Bool in
                if c.stopped { return true }
                if let k = c.kubelet { c.store.kubeletTick(k, runSeconds: c.kubeletRunSeconds) }
                return false
            }
            if stopped { return }
            usleep(20_000)
        }
    }
}

extension ObjectStore {
    static func podStatus(_ pod: Value, phase: String, exitCode: Int32?, now: Double) -> Value {
        let old = pod["status"] ?? .object([])
        let ts = ObjectStore.timestamp(now)
        let startTime = old["startTime"] ?? ts
        var containers: [Value] = []
        for c in pod["spec"]?["containers"]?.arrayValue ?? [] {
            let name = c["name"]?.stringValue ?? "main"
            let state: Value
            switch phase {
            case "Running":
                state = .object([.init("running", .object([.init("startedAt", startTime)]))])
            case "Succeeded", "Failed":
                let code = Int64(exitCode ?? (phase == "Succeeded" ? 0 : 1))
                state = .object([.init("terminated", .object([
                    .init("exitCode", .int(code)), .init("reason", .string(code == 0 ? "Completed" : "Error")),
                    .init("startedAt", startTime), .init("finishedAt", ts),
                ]))])
            default:
                state = .object([.init("waiting", .object([.init("reason", .string("ContainerCreating"))]))])
            }
            containers.append(.object([
                .init("name", .string(name)), .init("image", c["image"] ?? .string("")),
                .init("ready", .bool(phase == "Running")), .init("restartCount", .int(0)), .init("state", state),
            ]))
        }
        var status = old.setting("phase", .string(phase))
        if phase != "Pending" { status = status.setting("startTime", startTime) }
        status = status.setting("containerStatuses", .array(containers))
        return status
    }

    mutating func setPodPhase(_ p: ResourcePath, phase: String, exitCode: Int32?) {
        guard let old = collections[p.collection]?[p.key] else { return }
        let now = ObjectStore.now()
        let new = old.setting("status", ObjectStore.podStatus(old, phase: phase, exitCode: exitCode, now: now))
        if phase == "Running" && runningSince[p.key] == nil { runningSince[p.key] = now }
        _ = commit(p, p.key, old: old, new: new)
    }

    mutating func kubeletTick(_ k: TestAPIServer.KubeletConfig, runSeconds: Double) {
        let now = ObjectStore.now()
        for key in kubeletPods.sorted() {
            guard let pod = collections["pods"]?[key] else { kubeletPods.remove(key); continue }
            let p = ResourcePath.pod(key)
            let bound = !(pod["spec"]?["nodeName"]?.stringValue ?? "").isEmpty
            let phase = pod["status"]?["phase"]?.stringValue ?? ""
            if ObjectStore.isDeleting(pod) {
                if (pod["metadata"]?["deletionGracePeriodSeconds"]?.intValue ?? 0) != 0 {
                    _ = commit(p, key, old: pod, new: pod.settingMeta("deletionGracePeriodSeconds", .int(0)))
                }
                continue
            }
            guard bound else { continue }
            if k.autoRun && (phase == "Pending" || phase.isEmpty) {
                setPodPhase(p, phase: "Running", exitCode: nil)
            } else if phase == "Running", let code = k.exitCode {
                let since = runningSince[key] ?? now
                if runningSince[key] == nil { runningSince[key] = now }
                if now - since >= runSeconds {
                    setPodPhase(p, phase: code == 0 ? "Succeeded" : "Failed", exitCode: code)
                }
            }
        }
    }
}

extension ResourcePath {
    static func pod(_ key: StoreKey) -> ResourcePath {
        ResourcePath(group: "", version: "v1", resource: "pods", namespace: key.namespace.isEmpty ? nil : key.namespace, name: key.name, subresource: nil)
    }

    init(group: String, version: String, resource: String, namespace: String?, name: String?, subresource: String?) {
        self.group = group; self.version = version; self.resource = resource
        self.namespace = namespace; self.name = name; self.subresource = subresource
    }
}
