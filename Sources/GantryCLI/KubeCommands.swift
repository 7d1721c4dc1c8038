import Foundation
import GantryAPI
import KubeClient
import KubeMode

extension LogsCommand {
    /// `gantry logs --kube`: the log of the replica's Pod (container `worker`); `-f` polls
    /// every second for new lines (by their timestamps) until the Pod finishes or goes.
    func runKube(_ k: KubeReader) throws -> Int32 {
        guard let row = try storedWorkload(k, key) else { return 1 }
        let workload = StoredObject(row)
        let replicas = workload.replicas
        guard rank < max(replicas, 1) else {
            errOut("gantry: workload \(key.qualifiedName) has \(replicas) replica\(replicas == 1 ? "" : "s") (ranks 0-\(max(replicas, 1) - 1))")
            return 1
        }
        guard let pod = try k.replicaPod(key, rank: rank, type: workload.spec["type"]?.stringValue) else {
            errOut("gantry: no Pod for \(key.qualifiedName) rank \(rank) (it has not started, or its Pods were removed)")
            return 1
        }
        var query: [(String, String)] = [("container", PodRuntime.containerName)]
        if let tail { query.append(("tailLines", String(tail))) }
        guard follow else {
            let text = try k.call("read the log of Pod \(key.namespace)/\(pod)") { () throws(KubeError) in try k.client.text(k.podPath(key.namespace, pod, log: true), query: query) }
            if !text.isEmpty { FileHandle.standardOutput.write(Data(text.utf8)) }
            return 0
        }
        var cursor = LogCursor()
        query.append(("timestamps", "true"))
        while true {
            // Read the phase first: lines written before the Pod finished are in the read after it.
            guard let p = try k.getIfPresent(k.podPath(key.namespace, pod, log: false), "read Pod \(key.namespace)/\(pod)") else { return 0 }
            let finished = ["Succeeded", "Failed"].contains(p["status"]?["phase"]?.stringValue ?? "")
            var q = query
            if let since = cursor.sinceTime {
                q.removeAll { $0.0 == "tailLines" }
                q.append(("sinceTime", since))
            }
            do throws(KubeError) {
                let text = try k.client.text(k.podPath(key.namespace, pod, log: true), query: q)
                let lines = cursor.fresh(text)
                if !lines.isEmpty { out(lines.joined(separator: "\n")) }
            } catch {
                // 400: the container is not running yet; wait for it.
                if error.code != 400 { throw k.explain(error, "read the log of Pod \(key.namespace)/\(pod)") }
            }
            if finished { return 0 }
            Thread.sleep(forTimeInterval: 1)
        }
    }
}

extension SuspendCommand {
    /// `gantry stop|resume --kube`: a merge patch of the Workload's `spec.suspend`.
    func runKube(_ k: KubeReader, _ key: ObjectKey) throws -> Int32 {
        guard try storedWorkload(k, key) != nil else { return 1 }
        let suspend = verb == "stop"
        let path = GroupVersionResource.workloads.path(namespace: key.namespace, name: key.name)
        let body: Value = .object([.init("spec", .object([.init("suspend", .bool(suspend))]))])
        _ = try k.call("patch workloads.gantry.dev \(key.qualifiedName)") { () throws(KubeError) in try k.client.patch(path, body, type: .merge) }
        out(suspend
            ? "workload \(key.qualifiedName) stopping: spec.suspend=true patched on the Workload (Gantry deletes its Pods, SIGTERM then SIGKILL after the grace period)"
            : "workload \(key.qualifiedName) resumed: spec.suspend=false patched on the Workload (it waits for admission again)")
        return 0
    }
}

extension KubeReader {
    func podPath(_ namespace: String, _ pod: String, log: Bool) -> String {
        GroupVersionResource.pods.path(namespace: namespace, name: pod, subresource: log ? "log" : nil)
    }

    /// The Pod of a workload's replica: by its labels (the newest dispatch when several,
    /// one not being deleted first), else by the name Gantry gives it; nil when none exists.
    func replicaPod(_ key: ObjectKey, rank: Int, type: String?) throws -> String? {
        let selector = "\(KubeObjects.labelWorkload)=\(key.name),\(KubeObjects.labelRank)=\(rank)"
        let pods = try call("list pods in \(key.namespace)") { () throws(KubeError) in
            try client.list(GroupVersionResource.pods.path(namespace: key.namespace), labelSelector: selector).items
        }
        func order(_ p: Value) -> (Int, Int64, Int64) {
            let sm = KubeObjects.ServerMeta(p)
            let dispatch = KubeObjects.stringMap(p["metadata"]?["labels"])[KubeObjects.labelDispatch].flatMap { Int64($0) } ?? 0
            return (sm.deleting ? 0 : 1, dispatch, sm.creation.seconds)
        }
        if let best = pods.max(by: { order($0) < order($1) }), let name = best["metadata"]?["name"]?.stringValue { return name }
        let name = PodRuntime.podName(key, rank: rank, type: type.flatMap { WorkloadType(rawValue: $0) })
        return try getIfPresent(podPath(key.namespace, name, log: false), "read Pod \(key.namespace)/\(name)") == nil ? nil : name
    }
}
