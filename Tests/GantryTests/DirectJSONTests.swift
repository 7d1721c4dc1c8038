import Testing
@testable import GantryAPI
@testable import YAMLCodec
@testable import DirectorySource

/// The state writer encodes objects and statuses straight to bytes; the text must be byte
/// for byte the `Value` path's (`JSON.encode(x.toValue())`), which stored rows, hashes and
/// readers were built on.
@Suite(.timeLimit(.minutes(1))) struct DirectJSONTests {
    static let manifests = """
    apiVersion: gantry.dev/v1alpha1
    kind: Workload
    metadata:
      name: wl-1
      namespace: team-1
      labels: {project: p1, owner: user-1}
      annotations: {note: "tab\\there", "we\\"ird": "line\\nbreak"}
    spec:
      displayName: training "run" 1
      type: PyTorchJob
      queue: leaf-1
      priority: high
      command: python train.py --seed 1
      args: ["a b", "it's", "\\u00e9"]
      replicas: 2
      resources: {gpu: 2, cpu: 500m, memory: 64Gi, nvidia.com/mig-1g.10gb: 1, gpuType: H100}
      specifiedNodes: [n1, n2]
      env: {B: "2", A: "1"}
      maxRetry: 2
      timeout: 7200
      ttlSecondsAfterFinished: 60
      suspend: true
    ---
    apiVersion: gantry.dev/v1alpha1
    kind: Workload
    metadata: {name: plain}
    spec:
      command: "true"
    ---
    apiVersion: gantry.dev/v1alpha1
    kind: Queue
    metadata: {name: leaf}
    spec:
      parent: root
      description: a queue
      deserved: {gpu: 88}
      guarantee: {gpu: 8, cpu: 1500m}
      capability: {}
      queueingStrategy: StrictFIFO
    ---
    apiVersion: gantry.dev/v1alpha1
    kind: Queue
    metadata: {name: root}
    spec: {}
    ---
    apiVersion: gantry.dev/v1alpha1
    kind: Node
    metadata: {name: node-1}
    spec:
      resourcePool: pool-1
      capacity: {gpu: 8, cpu: 128, memory: 1Ti}
      gpuType: H100
    ---
    apiVersion: gantry.dev/v1alpha1
    kind: ResourcePool
    metadata: {name: pool-1}
    spec: {description: "the \\\\ pool"}
    """

    @Test func objectsMatchTheValuePath() throws {
        let file = ManifestFile.decode(path: "dir/w.yaml", bytes: Array(DirectJSONTests.manifests.utf8))
        #expect(file.fatal == nil)
        #expect(file.objects.count == 6)
        #expect(file.objects.allSatisfy { $0.invalid.isEmpty })
        for var obj in file.objects {
            for (uid, gen, secs) in [("", Int64(1), Int64(0)), ("3f2a-uid", 7, 1_767_225_600), ("x", -12, -62_135_596_800 - 86400 * 400), ("y", .max, 253_402_300_799 + 86400)] {
                obj.meta.uid = uid; obj.meta.generation = gen; obj.meta.creationTimestamp = Timestamp(seconds: secs)
                let (object, spec) = obj.storedJSON()
                #expect(object == JSON.encode(obj.toValue()), "\(obj.key)")
                #expect(spec == JSON.encode(obj.spec.toValue()), "\(obj.key)")
            }
        }
    }

    @Test func statusesMatchTheValuePath() throws {
        let t = Timestamp(seconds: 1_767_225_600)
        let cond = [Condition(type: "Admitted", status: "False", reason: "WaitingForQuota", message: "waiting \"in\" queue\n", lastTransitionTime: t, observedGeneration: 3),
                    Condition(type: "Finished", status: "", reason: "", message: "", lastTransitionTime: Timestamp(seconds: 0), observedGeneration: -1)]
        var w = WorkloadStatus()
        var statuses: [ObjectStatus] = [.workload(w)]
        w.message = "quota reserved"; w.queuePosition = 0; w.admissionQueue = "leaf"; w.conditions = cond
        w.admission = [ReplicaAssignment(rank: 0, node: "n1", gpus: [0, 1]), ReplicaAssignment(rank: 1, node: "", gpus: [])]
        w.replicas = [ReplicaStatus(name: "r0", rank: 0, node: "n1", phase: "Running", gpus: [3], pid: 123, startTime: t, exitCode: nil, restarts: 2),
                      ReplicaStatus(name: "", rank: -1, node: "", phase: "", gpus: [], exitCode: -9, gpuCount: 4)]
        w.override = SuspendOverride(suspend: true, generation: 9, at: t, by: "alice")
        w.dispatchCount = 12; w.retryCount = Int.min; w.creationTime = t; w.startTime = t; w.endTime = Timestamp(seconds: 86399)
        w.observedGeneration = Int64.min; w.phase = .failed
        statuses.append(.workload(w))
        w.admissionQueue = nil; w.queuePosition = 12345678901
        statuses.append(.workload(w))
        var q = QueueStatus()
        statuses.append(.queue(q))
        q.deserved = ResourceList(["gpu": Quantity(units: 8), "cpu": Quantity(milli: 1500), "memory": Quantity(units: 1 << 40), "a.b/c": Quantity(milli: 1)])
        q.allocated = q.deserved; q.pending = 5; q.admitted = 2; q.running = 1; q.observedGeneration = 4; q.conditions = cond
        statuses.append(.queue(q))
        var n = NodeStatus()
        statuses.append(.node(n))
        n.phase = ""; n.capacity = q.deserved; n.workloads = 3; n.conditions = cond
        statuses.append(.node(n))
        var p = ResourcePoolStatus()
        statuses.append(.resourcePool(p))
        p.phase = ""; p.nodeCount = UsedTotal(total: 100, used: 7); p.gpuCount = UsedTotal(total: .max, used: .min); p.conditions = cond
        statuses.append(.resourcePool(p))
        for s in statuses {
            #expect(s.jsonText == JSON.encode(s.toValue()))
        }
    }

    /// Resource lists and labels repeated in one file share storage, but an equal amount
    /// written differently (`1Gi`, `1073741824`) keeps its own text.
    @Test func internedValuesKeepTheirText() throws {
        let yaml = """
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata: {name: a, labels: {x: "1"}}
        spec: {command: "true", resources: {gpu: 1, memory: 1Gi}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata: {name: b, labels: {x: "1"}}
        spec: {command: "true", resources: {gpu: 1, memory: 1073741824}}
        ---
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata: {name: c, labels: {x: "2"}}
        spec: {command: "true", resources: {gpu: 1, memory: 1Gi}}
        """
        let file = ManifestFile.decode(path: "w.yaml", bytes: Array(yaml.utf8))
        #expect(file.objects.count == 3)
        let texts = file.objects.map { $0.spec.workload?.resources.amounts["memory"]?.text }
        #expect(texts == ["1Gi", "1073741824", "1Gi"])
        #expect(file.objects.map { $0.meta.labels["x"] } == ["1", "1", "2"])
        let specs = file.objects.map { JSON.encode($0.spec.toValue()) }
        #expect(specs[0].contains("\"memory\":\"1Gi\""))
        #expect(specs[1].contains("\"memory\":1073741824"))
    }

    /// A ManifestObject shares one box between copies; changing a copy leaves the others.
    @Test func objectCopiesAreIndependent() throws {
        let file = ManifestFile.decode(path: "dir/w.yaml", bytes: Array(DirectJSONTests.manifests.utf8))
        let original = try #require(file.objects.first)
        var copy = original
        #expect(copy == original)
        copy.meta.uid = "changed"
        copy.meta.annotations["k"] = "v"
        copy.source.line = 99
        copy.invalid.append(FieldError(file: "f", line: 1, path: "spec", message: "bad"))
        #expect(original.meta.uid == "")
        #expect(original.meta.annotations["k"] == nil)
        #expect(original.source.line != 99)
        #expect(original.invalid.isEmpty)
        #expect(copy != original)
        var again = copy
        again.meta.uid = ""
        again.meta.annotations["k"] = nil
        again.source.line = original.source.line
        again.invalid = []
        #expect(again == original)
        #expect(copy.meta.uid == "changed")
    }

    /// The byte-scanning name check accepts and rejects exactly what the split-based one did.
    @Test func qualifiedNamesAsBefore() {
        func reference(_ d: ManifestDecoder, _ k: String) -> Bool {
            let parts = k.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let name = parts.last, !name.isEmpty, name.count <= 63 else { return false }
            if parts.count == 2 && !d.isNodeName(String(parts[0])) { return false }
            let b = Array(name.utf8)
            func an(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) }
            return an(b.first!) && an(b.last!) && b.allSatisfy { an($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
        }
        let d = ManifestDecoder(file: "f")
        let long = String(repeating: "a", count: 63)
        let cases = ["gpu", "cpu", "nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "a", "A_b.c-d", "-a", "a-", "_a", "a.", "", "/", "/a", "a/", "a//b",
                     "a/b/c", "example.com/" + long, "example.com/" + long + "a", long, long + "b", "Bad_Prefix/x", "é", "aé", "a b", "x.y/z",
                     "hugepages-2Mi", "1", "a\u{301}"]
        for c in cases { #expect(d.isQualifiedName(c) == reference(d, c), "\(c)") }
    }

    /// The index keeps a key's declaring paths sorted (the first in force) without an array
    /// per key: three files declaring one key, added out of order and removed one by one.
    @Test func indexPathsStaySorted() {
        func doc(_ p: Int) -> String {
            "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: w, namespace: ns}\nspec: {command: \"true\", priority: \(p)}\n"
        }
        func dupFiles(_ cs: [ManifestChange]) -> [String]? {
            for c in cs { if case .duplicate(_, let files) = c { return files.map(\.file) } }
            return nil
        }
        func upserted(_ cs: [ManifestChange]) -> Int? {
            for c in cs { if case .upsert(let o) = c { return o.spec.workload?.priority } }
            return nil
        }
        var idx = ManifestIndex()
        #expect(upserted(idx.update(ManifestFile.decode(path: "c.yaml", bytes: Array(doc(3).utf8)))) == 3)
        let a = idx.update(ManifestFile.decode(path: "a.yaml", bytes: Array(doc(1).utf8)))
        #expect(dupFiles(a) == ["a.yaml", "c.yaml"])
        #expect(upserted(a) == 1)
        let b = idx.update(ManifestFile.decode(path: "b.yaml", bytes: Array(doc(2).utf8)))
        #expect(dupFiles(b) == ["a.yaml", "b.yaml", "c.yaml"])
        #expect(upserted(b) == nil)
        let ra = idx.remove(path: "a.yaml")
        #expect(dupFiles(ra) == ["b.yaml", "c.yaml"])
        #expect(upserted(ra) == 2)
        let rc = idx.remove(path: "c.yaml")
        #expect(dupFiles(rc) == nil)
        #expect(upserted(rc) == nil)
        #expect(idx.objectCount == 1)
        let rb = idx.remove(path: "b.yaml")
        #expect(rb.contains { if case .delete(let k) = $0 { return k.name == "w" }; return false })
        #expect(idx.objectCount == 0)
    }
}
