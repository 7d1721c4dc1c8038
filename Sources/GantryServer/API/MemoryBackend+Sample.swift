import Foundation
import GantryAPI

extension MemoryBackend {
    /// A small cluster for demos and browser tests: pool `pool-a` with nodes `node-1` and
    /// `node-2` (8 GPUs each), queues `research` (child `research-nlp`), workloads in
    /// `team-a` and `team-b` (one running with two replicas on node-1 GPUs 0-3, with a log,
    /// events, GPU and training metrics; three pending in queue order; one succeeded; one
    /// declared by a manifest file). The running replica's log keeps growing while `live`.
    public static func sample(now: Double = Date().timeIntervalSince1970, mode: String = "directory") -> MemoryBackend {
        func meta(_ name: String, _ ns: String = "", created: Double) -> ObjectMeta {
            var m = ObjectMeta(name: name, namespace: ns)
            m.uid = "uid-\(ns.isEmpty ? "" : ns + "-")\(name)"
            m.creationTimestamp = Timestamp(secondsSince1970: created)
            return m
        }
        func src(_ file: String) -> SourceRef { SourceRef(file: file, line: 1, index: 0) }
        var objects: [APIObject] = []

        var pool = ResourcePoolSpec(); pool.description = "A100 nodes"
        var ps = ResourcePoolStatus(); ps.nodeCount = UsedTotal(total: 2, used: 1); ps.gpuCount = UsedTotal(total: 16, used: 4)
        objects.append(APIObject(object: ManifestObject(meta: meta("pool-a", created: now - 86400), spec: .resourcePool(pool), source: src("cluster.yaml")),
                                 status: .resourcePool(ps), owner: .manifest(file: "cluster.yaml")))
        for n in ["node-1", "node-2"] {
            var spec = NodeSpec(); spec.resourcePool = "pool-a"; spec.gpuType = "A100"
            spec.capacity = ResourceList(["gpu": Quantity(units: 8), "cpu": Quantity(units: 64)])
            var st = NodeStatus(); st.capacity = spec.capacity
            if n == "node-1" { st.allocated = ResourceList(["gpu": Quantity(units: 4)]); st.workloads = 1 }
            objects.append(APIObject(object: ManifestObject(meta: meta(n, created: now - 86400), spec: .node(spec), source: src("cluster.yaml")),
                                     status: .node(st), owner: .manifest(file: "cluster.yaml")))
        }
        for (name, parent, gpus) in [("research", nil as String?, 16), ("research-nlp", "research", 8)] {
            var q = QueueSpec(); q.parent = parent; q.resourcePool = "pool-a"; q.description = "\(name) team"
            q.deserved = ResourceList(["gpu": Quantity(units: Int64(gpus))])
            q.capability = ResourceList(["gpu": Quantity(units: Int64(gpus * 2))])
            var st = QueueStatus(); st.deserved = q.deserved
            if name == "research" { st.allocated = ResourceList(["gpu": Quantity(units: 4)]); st.pending = 1; st.admitted = 1; st.running = 1 }
            if name == "research-nlp" { st.pending = 2 }
            objects.append(APIObject(object: ManifestObject(meta: meta(name, created: now - 86400), spec: .queue(q), source: src("queues.yaml")),
                                     status: .queue(st), owner: .api))
        }
        func workload(_ ns: String, _ name: String, queue: String, gpus: Int64, replicas: Int, created: Double, labels: [String: String] = [:]) -> ManifestObject {
            var w = WorkloadSpec(); w.type = replicas > 1 ? .pytorchJob : .job; w.queue = queue; w.image = "registry.local/train:1"
            w.command = "python train.py"; w.replicas = replicas; w.description = "\(name) in \(ns)"
            w.resources = ResourceList(["gpu": Quantity(units: gpus), "cpu": Quantity(units: 4)])
            var m = meta(name, ns, created: created); m.labels = labels
            m.annotations[APIObject.submitterAnnotation] = ns == "team-a" ? "alice" : "bob"
            return ManifestObject(meta: m, spec: .workload(w), source: src("@api/workloads/\(ns)/\(name).yaml"))
        }
        let train = workload("team-a", "llama-finetune", queue: "research", gpus: 2, replicas: 2, created: now - 7200, labels: ["app": "llm"])
        var ts = WorkloadStatus(); ts.phase = .running; ts.admissionQueue = "research"; ts.message = "all replicas running"
        ts.creationTime = train.meta.creationTimestamp; ts.startTime = Timestamp(secondsSince1970: now - 7000)
        ts.admission = [ReplicaAssignment(rank: 0, node: "node-1", gpus: [0, 1]), ReplicaAssignment(rank: 1, node: "node-1", gpus: [2, 3])]
        ts.replicas = [
            ReplicaStatus(name: "llama-finetune-master-0", rank: 0, node: "node-1", phase: "Running", gpus: [0, 1], pid: 4100, startTime: ts.startTime),
            ReplicaStatus(name: "llama-finetune-worker-1", rank: 1, node: "node-1", phase: "Running", gpus: [2, 3], pid: 4101, startTime: ts.startTime, restarts: 1),
        ]
        ts.conditions = [Condition(type: ConditionType.admitted, status: "True", reason: Reason.quotaReserved, message: "admitted to research", lastTransitionTime: Timestamp(secondsSince1970: now - 7100), observedGeneration: 1),
                         Condition(type: ConditionType.running, status: "True", reason: Reason.allReplicasRunning, message: "2/2 running", lastTransitionTime: ts.startTime ?? Timestamp(seconds: 0), observedGeneration: 1)]
        objects.append(APIObject(object: train, status: .workload(ts), owner: .api))
        for (i, (ns, name)) in [("team-b", "bert-sweep"), ("team-a", "eval-batch"), ("team-b", "rl-agent")].enumerated() {
            let o = workload(ns, name, queue: i == 0 ? "research" : "research-nlp", gpus: 8, replicas: 1, created: now - Double(3600 - i * 60))
            var s = WorkloadStatus(); s.queuePosition = i + 1; s.message = "waiting for quota: needs 8 gpu"; s.creationTime = o.meta.creationTimestamp
            objects.append(APIObject(object: o, status: .workload(s), owner: .api))
        }
        let done = workload("team-a", "data-prep", queue: "research", gpus: 0, replicas: 1, created: now - 20000)
        var ds = WorkloadStatus(); ds.phase = .succeeded; ds.message = "completed"; ds.creationTime = done.meta.creationTimestamp
        ds.startTime = Timestamp(secondsSince1970: now - 19000); ds.endTime = Timestamp(secondsSince1970: now - 15000)
        objects.append(APIObject(object: done, status: .workload(ds), owner: .api))
        var fromFile = workload("team-a", "nightly", queue: "research", gpus: 1, replicas: 1, created: now - 40000)
        fromFile.meta.annotations = [:]
        fromFile.source = SourceRef(file: "jobs/nightly.yaml", line: 1, index: 0)
        var ns = WorkloadStatus(); ns.phase = .stopped; ns.message = "stopped"; ns.creationTime = fromFile.meta.creationTimestamp
        objects.append(APIObject(object: fromFile, status: .workload(ns), owner: .manifest(file: "jobs/nightly.yaml")))

        let key = train.key
        let events = [
            EventRecord(type: "Normal", reason: "Admitted", message: "admitted to queue research", kind: "Workload", namespace: "team-a", name: key.name, count: 1, firstTimestamp: now - 7100, lastTimestamp: now - 7100),
            EventRecord(type: "Normal", reason: "Started", message: "replica llama-finetune-master-0 started on node-1", kind: "Workload", namespace: "team-a", name: key.name, count: 1, firstTimestamp: now - 7000, lastTimestamp: now - 7000),
            EventRecord(type: "Warning", reason: "ReplicaRestarting", message: "replica llama-finetune-worker-1 exited with 1; restarting", kind: "Workload", namespace: "team-a", name: key.name, count: 1, firstTimestamp: now - 5000, lastTimestamp: now - 5000),
            EventRecord(type: "Normal", reason: "WaitingForQuota", message: "needs 8 gpu; research has 12 free of 16", kind: "Workload", namespace: "team-b", name: "bert-sweep", count: 3, firstTimestamp: now - 3500, lastTimestamp: now - 600),
        ]
        var metrics: [MetricSeries] = []
        for g in 0..<4 {
            let samples = (0..<120).map { i in MetricSeries.Sample(ts: now - 7200 + Double(i) * 60, value: 60 + Double((i * 7 + g * 13) % 35)) }
            metrics.append(MetricSeries(name: "team-a/\(key.name)/gpu_utilization_percent{gpu=\(g)}", samples: samples))
            metrics.append(MetricSeries(name: "team-a/\(key.name)/gpu_memory_used_mib{gpu=\(g)}", samples: samples.map { .init(ts: $0.ts, value: 30000 + $0.value * 100) }))
            metrics.append(MetricSeries(name: "team-a/\(key.name)/gpu_power_watts{gpu=\(g)}", samples: samples.map { .init(ts: $0.ts, value: 150 + $0.value * 2) }))
        }
        for r in 0..<2 {
            metrics.append(MetricSeries(name: "team-a/\(key.name)/loss{rank=\(r)}",
                                        samples: (0..<100).map { i in .init(ts: now - 7000 + Double(i) * 70, value: 3.0 * exp(-Double(i) / 40) + 0.2 + Double(r) * 0.01) }))
        }
        let b = MemoryBackend(objects: objects, events: events, metrics: metrics, mode: mode, clock: { Date().timeIntervalSince1970 })
        b.appendLog(key, rank: 0, (1...50).map { "step \($0) loss \(String(format: "%.3f", 3.0 * exp(-Double($0) / 40) + 0.2))\n" }.joined())
        b.appendLog(key, rank: 1, "worker 1 ready\n")
        b.appendLog(done.key, rank: 0, "prepared 1000 shards\n")
        b.endLog(done.key, rank: 0)
        return b
    }
}
