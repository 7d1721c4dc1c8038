import Testing
import GantryAPI
@testable import GantryServer

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The 400's field of a throwing call, or nil when it succeeds.
private func fieldOf400<T>(_ body: () throws(APIError) -> T) -> String?? {
    do { _ = try body(); return .none } catch {
        #expect(error.status == 400, "\(error)")
        return .some(error.field)
    }
}

/// seed 000's create request, as its documentation shows it.
let seed000Body = """
{
  "displayName": "my-training-job",
  "description": "Training job description",
  "workspaceId": "cluster-workspace",
  "groupVersionKind": {
    "kind": "PyTorchJob",
    "version": "v1"
  },
  "image": "harbor.example.com/ai/pytorch:2.0",
  "entryPoint": "cHl0aG9uIHRyYWluLnB5",
  "resource": {
    "cpu": "128",
    "gpu": "8",
    "memory": "256Gi",
    "replica": 1
  },
  "priority": 0,
  "timeout": 3600,
  "maxRetry": 0,
  "env": {
    "NCCL_DEBUG": "INFO",
    "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"
  },
  "specifiedNodes": []
}
"""

@Suite(.timeLimit(.minutes(1))) struct APIQueryCreateTests {
    @Test func seed000BodyIsTranslated() throws {
        let o = try CreateRequest.decode(bytes(seed000Body), kind: .workload, namespace: "team-a")
        let s = try #require(o.spec.workload)
        #expect(o.meta.name == "my-training-job" && o.meta.namespace == "team-a")
        #expect(s.displayName == "my-training-job" && s.description == "Training job description")
        #expect(s.type == .pytorchJob && s.queue == "cluster-workspace")
        #expect(s.image == "harbor.example.com/ai/pytorch:2.0" && s.effectiveCommand == "python train.py")
        #expect(s.resources.gpu == 8 && s.resources["cpu"] == Quantity(units: 128) && s.resources["memory"].text == "256Gi")
        #expect(s.replicas == 1 && s.priority == 0 && s.timeout == 3600 && s.maxRetry == 0)
        #expect(s.env == ["NCCL_DEBUG": "INFO", "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"])
        #expect(o.invalid.isEmpty)
    }

    @Test func seed000Variants() throws {
        let body = """
        {"name": "job-2", "image": "img", "command": "python a.py", "replicas": 2, "gpu": 4, "gpuType": "A100", "priority": "2",
         "env": [{"name": "A", "value": "1"}], "queue": "research", "type": "mpijob", "labels": {"team": "ml"}, "isTolerateAll": false}
        """
        let o = try CreateRequest.decode(bytes(body), kind: .workload, namespace: "ns1")
        let s = try #require(o.spec.workload)
        #expect(o.meta.name == "job-2" && o.meta.labels == ["team": "ml"])
        #expect(s.replicas == 2 && s.resources.gpu == 4 && s.gpuType == "A100" && s.priority == 2 && s.type == .mpiJob)
        #expect(s.env == ["A": "1"] && s.queue == "research" && s.totalGPUs == 8)
        // specifiedNodes set the replica count (seed 000's note 2).
        let pinned = try CreateRequest.decode(bytes(#"{"name":"p","image":"i","resource":{"replica":5},"specifiedNodes":["n1","n2"]}"#), kind: .workload, namespace: "ns1")
        #expect(pinned.spec.workload?.replicas == 2)
        // A display name that is not a DNS label is made into one.
        let named = try CreateRequest.decode(bytes(#"{"displayName":"My Job #1!","image":"i"}"#), kind: .workload, namespace: "ns1")
        #expect(named.meta.name == "my-job-1")
    }

    static let badSeedBodies: [(String, String)] = [
        (#"{"displayName":"a","image":"i","priority":5}"#, "priority"),
        (#"{"displayName":"a","image":"i","priority":"urgent"}"#, "priority"),
        (#"{"displayName":"a","image":"i","resource":{"cpu":"abc"}}"#, "resource.cpu"),
        (#"{"displayName":"a","image":"i","resource":{"replica":0}}"#, "resource.replica"),
        (#"{"displayName":"a","image":"i","groupVersionKind":{"kind":"CronJob"}}"#, "groupVersionKind.kind"),
        (#"{"displayName":"a","image":"i","groupVersionKind":{"kind":"Job","flavor":"x"}}"#, "groupVersionKind.flavor"),
        (#"{"displayName":"a","image":"i","isTolerateAll":true}"#, "isTolerateAll"),
        (#"{"displayName":"a","image":"i","clusterId":"c1"}"#, "clusterId"),
        (#"{"displayName":"a","image":"i","sshEnabled":true}"#, "sshEnabled"),
        (#"{"image":"i"}"#, "name"),
        (#"{"displayName":"!!!","image":"i"}"#, "name"),
        (#"{"name":"Bad_Name","image":"i"}"#, "name"),
        (#"{"displayName":"a","image":"i","namespace":"other"}"#, "namespace"),
        (#"{"displayName":"a","entryPoint":"not base64!"}"#, "entryPoint"),
        (#"{"displayName":"a","image":"i","timeout":-1}"#, "timeout"),
        (#"{"displayName":"a","image":"i","env":"A=1"}"#, "env"),
        (#"{"displayName":"a","image":"i","resource":"big"}"#, "resource"),
        (#"{"displayName":"a"}"#, "command"),
    ]
    @Test(arguments: badSeedBodies)
    func badSeedBodiesAre400NamingTheField(body: String, field: String) {
        #expect(fieldOf400 { () throws(APIError) in try CreateRequest.decode(bytes(body), kind: .workload, namespace: "ns1") } == .some(field))
    }

    @Test func gantryShapeJSONAndYAML() throws {
        let json = """
        {"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"j1","uid":"forged","generation":7,"creationTimestamp":"2020-01-01T00:00:00Z",
         "annotations":{"gantry.dev/submitter":"mallory"}},"spec":{"command":"echo hi","replicas":2,"resources":{"gpu":1}},"status":{"phase":"Running"}}
        """
        let o = try CreateRequest.decode(bytes(json), kind: .workload, namespace: "team-a")
        #expect(o.meta.name == "j1" && o.meta.namespace == "team-a" && o.meta.uid == "" && o.meta.generation == 1 && o.meta.creationTimestamp.seconds == 0)
        #expect(o.spec.workload?.replicas == 2 && o.spec.workload?.totalGPUs == 2)
        // Left for the API layer to overwrite.
        #expect(o.meta.annotations[APIObject.submitterAnnotation] == "mallory")
        let yaml = """
        # a comment
        kind: Workload
        metadata:
          name: j2
          namespace: team-a
        spec:
          command: [python, train.py]
          priority: high
        """
        let y = try CreateRequest.decode(bytes(yaml), kind: .workload, namespace: "team-a")
        #expect(y.meta.name == "j2" && y.spec.workload?.priority == 1 && y.spec.workload?.command == "python train.py")
        let queue = try CreateRequest.decode(bytes(#"{"metadata":{"name":"research"},"spec":{"deserved":{"gpu":16}}}"#), kind: .queue, namespace: "")
        #expect(queue.spec.queue?.deserved.gpu == 16)
    }

    static let badGantryBodies: [(String, Kind, String?)] = [
        (#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"a"},"spec":{}}"#, .workload, "kind"),
        (#"{"kind":"Workload","metadata":{"name":"a","namespace":"other"},"spec":{"command":"x"}}"#, .workload, "metadata.namespace"),
        (#"{"kind":"Workload","metadata":{"name":"a"},"spec":{"command":"x","bogus":1}}"#, .workload, "spec.bogus"),
        (#"{"kind":"Workload","metadata":{"name":"a"},"spec":{"command":"x","replicas":"two"}}"#, .workload, "spec.replicas"),
        (#"{"kind":"Workload","spec":{"command":"x"}}"#, .workload, "metadata"),
        (#"{"kind":"Workload","metadata":{"name":"A!"},"spec":{"command":"x"}}"#, .workload, "metadata.name"),
        (#"{"kind":"Workload","metadata":"x","spec":{"command":"x"}}"#, .workload, "metadata"),
        (#"{"apiVersion":"v2","kind":"Workload","metadata":{"name":"a"},"spec":{"command":"x"}}"#, .workload, "apiVersion"),
        (#"{"name":"a"}"#, .queue, "apiVersion"),
        ("{not json", .workload, nil),
        ("[1, 2]", .workload, nil),
        ("", .workload, nil),
        ("   \n ", .workload, nil),
        ("a: 1\n---\nb: 2\n", .workload, nil),
        ("key: [unclosed", .workload, nil),
        ("just text", .workload, nil),
    ]
    @Test(arguments: badGantryBodies)
    func badGantryBodiesAre400(body: String, kind: Kind, field: String?) {
        #expect(fieldOf400 { () throws(APIError) in try CreateRequest.decode(bytes(body), kind: kind, namespace: "team-a") } == .some(field))
    }
}

private func patchTarget() -> ManifestObject {
    var meta = ObjectMeta(name: "j1", namespace: "team-a")
    meta.uid = "u1"; meta.generation = 3; meta.creationTimestamp = Timestamp(seconds: 77)
    meta.labels = ["keep": "yes"]
    meta.annotations = [APIObject.submitterAnnotation: "alice", APIObject.runAsAnnotation: "alice"]
    var s = WorkloadSpec()
    s.command = "python train.py"; s.env = ["A": "1", "B": "2"]; s.resources["gpu"] = Quantity(units: 2); s.queue = "research"
    return ManifestObject(meta: meta, spec: .workload(s), source: SourceRef(file: "@api/team-a/j1.yaml", line: 1, index: 0))
}

@Suite(.timeLimit(.minutes(1))) struct APIQueryPatchTests {
    @Test func mergePatchOfAllowedFields() throws {
        let patch = #"{"metadata":{"labels":{"x":"y","keep":null}},"spec":{"priority":1,"env":{"B":null,"C":"3"},"resources":{"cpu":"4"},"image":"img:2"}}"#
        let o = try ObjectPatch.apply(bytes(patch), to: patchTarget())
        let s = try #require(o.spec.workload)
        #expect(s.priority == 1 && s.env == ["A": "1", "C": "3"] && s.image == "img:2")
        #expect(s.resources.gpu == 2 && s.resources["cpu"] == Quantity(units: 4))
        #expect(s.command == "python train.py" && s.queue == "research")
        #expect(o.meta.labels == ["x": "y"])
        #expect(o.meta.uid == "u1" && o.meta.generation == 3 && o.meta.creationTimestamp.seconds == 77 && o.source.file == "@api/team-a/j1.yaml")
        #expect(o.meta.annotations[APIObject.submitterAnnotation] == "alice")
        // A GET's identity fields sent back are no-ops.
        let same = try ObjectPatch.apply(bytes(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"j1","namespace":"team-a","uid":"zz","generation":9}}"#), to: patchTarget())
        #expect(same.meta.uid == "u1" && same.spec == patchTarget().spec)
    }

    @Test func seed000PatchShape() throws {
        let o = try ObjectPatch.apply(bytes(#"{"priority":2,"replica":3,"gpu":"16","memory":"512Gi","description":"new","timeout":7200,"env":{"NEW_VAR":"value"}}"#), to: patchTarget())
        let s = try #require(o.spec.workload)
        #expect(s.priority == 2 && s.replicas == 3 && s.resources.gpu == 16 && s.description == "new" && s.timeout == 7200)
        #expect(s.env["NEW_VAR"] == "value" && s.env["A"] == "1")
    }

    static let refused: [(String, String?)] = [
        (#"{"spec":{"command":"rm -rf /"}}"#, "spec.command"),
        (#"{"spec":{"queue":"prod"}}"#, "spec.queue"),
        (#"{"metadata":{"name":"other"}}"#, "metadata.name"),
        (#"{"metadata":{"namespace":"other"}}"#, "metadata.namespace"),
        (#"{"metadata":{"finalizers":["x"]}}"#, "metadata.finalizers"),
        (#"{"metadata":null}"#, "metadata"),
        (#"{"kind":"Queue"}"#, "kind"),
        (#"{"apiVersion":"v1"}"#, "apiVersion"),
        (#"{"status":{"phase":"Running"}}"#, "status"),
        (#"{"spec":"x"}"#, "spec"),
        (#"{"spec":{"replicas":0}}"#, "spec.replicas"),
        (#"{"spec":{"resources":{"gpu":"lots"}}}"#, "spec.resources.gpu"),
        (#"{"spec":{"priority":"urgent"}}"#, "spec.priority"),
        (#"{"bogus":1}"#, "bogus"),
        (#"{"priority":9}"#, "priority"),
        ("[1]", nil),
        ("nope{", nil),
    ]
    @Test(arguments: refused)
    func refusedPatches(patch: String, field: String?) {
        #expect(fieldOf400 { () throws(APIError) in try ObjectPatch.apply(bytes(patch), to: patchTarget()) } == .some(field))
    }

    @Test func queuesTakeAnySpecFieldOtherKindsNone() throws {
        var meta = ObjectMeta(name: "research"); meta.uid = "q"
        let q = ManifestObject(meta: meta, spec: .queue(QueueSpec()), source: SourceRef(file: "@api/queues/research.yaml", line: 1, index: 0))
        let o = try ObjectPatch.apply(bytes(#"{"spec":{"deserved":{"gpu":16},"parent":"root","state":"Closed"}}"#), to: q)
        #expect(o.spec.queue?.deserved.gpu == 16 && o.spec.queue?.parent == "root" && o.spec.queue?.state == .closed)
        #expect(fieldOf400 { () throws(APIError) in try ObjectPatch.apply(bytes(#"{"spec":{"deserved":"x"}}"#), to: q) } == .some("spec.deserved"))
        let node = ManifestObject(meta: ObjectMeta(name: "n1"), spec: .node(NodeSpec()), source: SourceRef(file: "n.yaml", line: 1, index: 0))
        #expect(fieldOf400 { () throws(APIError) in try ObjectPatch.apply(bytes(#"{"spec":{"unschedulable":true}}"#), to: node) } == .some("kind"))
    }

    @Test func rfc7386Examples() throws {
        // From RFC 7386 §3.
        let target = try JSON.parse(#"{"a":"b","c":{"d":"e","f":"g"}}"#)
        let patch = try JSON.parse(#"{"a":"z","c":{"f":null}}"#)
        #expect(ObjectPatch.mergePatch(target, patch) == (try JSON.parse(#"{"a":"z","c":{"d":"e"}}"#)))
        #expect(ObjectPatch.mergePatch(try JSON.parse(#"{"a":["b"]}"#), try JSON.parse(#"{"a":"c"}"#)) == (try JSON.parse(#"{"a":"c"}"#)))
        #expect(ObjectPatch.mergePatch(try JSON.parse(#"["a","b"]"#), try JSON.parse(#"{"a":"b"}"#)) == (try JSON.parse(#"{"a":"b"}"#)))
        #expect(ObjectPatch.mergePatch(try JSON.parse(#"{"e":null}"#), try JSON.parse(#"{"a":1}"#)) == (try JSON.parse(#"{"e":null,"a":1}"#)))
        #expect(ObjectPatch.mergePatch(try JSON.parse(#"{}"#), try JSON.parse(#"{"a":{"bb":{"ccc":null}}}"#)) == (try JSON.parse(#"{"a":{"bb":{}}}"#)))
    }
}

@Suite(.timeLimit(.minutes(1))) struct APIQueryCloneTests {
    @Test func defaultNameSkipsExistingAndStripsIdentity() throws {
        let taken: Set<String> = ["j1", "j1-clone-1"]
        let c = try CloneRequest.apply([], to: patchTarget()) { taken.contains($0.name) && $0.namespace == "team-a" }
        #expect(c.meta.name == "j1-clone-2" && c.meta.namespace == "team-a")
        #expect(c.meta.uid == "" && c.meta.generation == 1 && c.meta.creationTimestamp.seconds == 0)
        #expect(c.meta.annotations[APIObject.submitterAnnotation] == nil && c.meta.annotations[APIObject.runAsAnnotation] == nil)
        #expect(c.meta.labels == ["keep": "yes"] && c.spec == patchTarget().spec)
        let first = try CloneRequest.apply(bytes("{}"), to: patchTarget()) { _ in false }
        #expect(first.meta.name == "j1-clone-1")
    }

    @Test func namedCloneWithOverridesInAnotherNamespace() throws {
        let c = try CloneRequest.apply(bytes(#"{"name":"copy","namespace":"team-b","overrides":{"spec":{"replicas":3,"priority":"high"},"metadata":{"labels":{"copy":"1"}}}}"#), to: patchTarget()) { _ in false }
        #expect(c.meta.name == "copy" && c.meta.namespace == "team-b" && c.meta.labels == ["keep": "yes", "copy": "1"])
        #expect(c.spec.workload?.replicas == 3 && c.spec.workload?.priority == 1)
    }

    @Test func longNamesStayDNSLabels() throws {
        var o = patchTarget()
        o.meta.name = String(repeating: "a", count: 63)
        let c = try CloneRequest.apply([], to: o) { _ in false }
        #expect(c.meta.name.count <= 63 && c.meta.name.hasSuffix("-clone-1") && ManifestDecoder.isDNS1123Label(c.meta.name))
        #expect(throws: APIError.conflict("no free name \(o.meta.name)-clone-N in namespace team-a; give a name")) {
            try CloneRequest.apply([], to: o) { _ in true }
        }
    }

    static let bad: [(String, String?)] = [
        (#"{"name":"Bad_Name"}"#, "name"),
        (#"{"name":5}"#, "name"),
        (#"{"namespace":"NS!"}"#, "namespace"),
        (#"{"overrides":{"spec":{"command":"x"}}}"#, "overrides.spec.command"),
        (#"{"overrides":"x"}"#, "overrides"),
        (#"{"overrides":{"spec":{"replicas":-1}}}"#, "spec.replicas"),
        (#"{"suffix":"-x"}"#, "suffix"),
        ("[]", nil),
    ]
    @Test(arguments: bad)
    func badCloneBodies(body: String, field: String?) {
        #expect(fieldOf400 { () throws(APIError) in try CloneRequest.apply(bytes(body), to: patchTarget()) { _ in false } } == .some(field))
    }
}

@Suite(.timeLimit(.minutes(1))) struct APIQueryViewTests {
    @Test func objectViewOfEveryKind() throws {
        var wl = queryWorkload("alpha", phase: .running, started: 150, owner: .manifest(file: "jobs.yaml"))
        wl.deletedAt = Timestamp(seconds: 900)
        let v = ObjectView.object(wl)
        #expect(v.members?.map(\.key) == ["apiVersion", "kind", "metadata", "spec", "status", "owner", "source", "deletedAt"])
        #expect(v["kind"] == .string("Workload") && v["owner"] == .string("manifest") && v["source"] == .string("jobs.yaml:3"))
        #expect(v["metadata"]?["annotations"]?["gantry.dev/source"] == nil)
        #expect(v["metadata"]?["uid"] == .string("uid-team-a-alpha"))
        #expect(v["status"]?["phase"] == .string("Running") && v["spec"]?["command"] == .string("python train.py"))
        #expect(v["deletedAt"] == .string("1970-01-01T00:15:00Z"))
        // No status yet: no status member; API-owned: no source.
        let fresh = ObjectView.object(queryWorkload("new", phase: nil))
        #expect(fresh["status"] == nil && fresh["source"] == nil && fresh["owner"] == .string("api"))
        let node = APIObject(object: ManifestObject(meta: ObjectMeta(name: "n1"), spec: .node(NodeSpec()), source: SourceRef(file: "n.yaml", line: 2, index: 0)),
                             status: .node(NodeStatus()), owner: .system)
        let nv = ObjectView.object(node)
        #expect(nv["kind"] == .string("Node") && nv["metadata"]?["namespace"] == nil && nv["status"]?["phase"] == .string("Ready"))
    }

    @Test func hierarchyListsEveryRank() throws {
        var o = queryWorkload("dist", gpus: 2, replicas: 3, phase: .running)
        var s = WorkloadStatus(); s.phase = .running; s.admissionQueue = "default"
        s.admission = [ReplicaAssignment(rank: 0, node: "n1", gpus: [0, 1]), ReplicaAssignment(rank: 1, node: "n2", gpus: [2, 3])]
        s.replicas = [ReplicaStatus(name: "dist-worker-0", rank: 0, node: "n1", phase: "Running", gpus: [0, 1], pid: 42, exitCode: nil, restarts: 1)]
        o.status = .workload(s)
        let h = ObjectView.hierarchy(o)
        #expect(h["workload"]?["name"] == .string("dist") && h["workload"]?["gpus"] == .int(6))
        let reps = try #require(h["replicas"]?.arrayValue)
        #expect(reps.count == 3)
        #expect(reps[0]["pid"] == .int(42) && reps[0]["restarts"] == .int(1) && reps[0]["exitCode"] == .null && reps[0]["gpuCount"] == .int(2))
        #expect(reps[1]["phase"] == .string("Admitted") && reps[1]["node"] == .string("n2"))
        #expect(reps[2]["phase"] == .string("Pending") && reps[2]["name"] == .string("dist-worker-2") && reps[2]["gpuCount"] == .int(2))
        let none = ObjectView.hierarchy(queryWorkload("solo", phase: nil))
        #expect(none["replicas"]?.arrayValue?.count == 1 && none["workload"]?["phase"] == .string("Pending"))
    }

    @Test func telemetryGroups() throws {
        var fleet = queryFleet
        var s = WorkloadStatus(); s.phase = .running; s.admissionQueue = "research"
        s.admission = [ReplicaAssignment(rank: 0, node: "n1", gpus: Array(0..<8))]
        fleet[0].status = .workload(s)
        var pool = NodeSpec(); pool.resourcePool = "a100"
        let nodes = [APIObject(object: ManifestObject(meta: ObjectMeta(name: "n1"), spec: .node(pool), source: SourceRef(file: "n", line: 1, index: 0)), status: nil, owner: .system)]
        let byQueue = try Telemetry.group(fleet, nodes: nodes, by: "queue")
        let groups = try #require(byQueue["groups"]?.arrayValue)
        #expect(groups.map { $0["key"] } == [.string("default"), .string("prod"), .string("research")])
        #expect(groups[2]["workloads"] == .int(2) && groups[2]["gpus"] == .int(10) && groups[2]["allocatedGPUs"] == .int(8))
        #expect(groups[2]["phases"] == .object([.init("Running", .int(1)), .init("Succeeded", .int(1))]))
        #expect(byQueue["totals"]?["workloads"] == .int(5) && byQueue["totals"]?["allocatedGPUs"] == .int(8))
        let byPool = try Telemetry.group(fleet, nodes: nodes, by: "CurrentNodepools")
        #expect(byPool["groupBy"] == .string("pool"))
        #expect(byPool["groups"]?.arrayValue?.map { $0["key"] } == [.string(""), .string("a100")])
        let byPhase = try Telemetry.group(fleet, nodes: [], by: "phase")
        #expect(byPhase["groups"]?.arrayValue?.first { $0["key"] == .string("Pending") }?["workloads"] == .int(2))
        #expect(try Telemetry.group([], nodes: [], by: "type")["groups"] == .array([]))
        #expect(fieldOf400 { () throws(APIError) in try Telemetry.group(fleet, nodes: [], by: "color") } == .some("groupBy"))
    }

    @Test func filterMetadata() {
        let m = WorkloadMetadata.of(queryFleet)
        #expect(m["phases"] == .array(["Failed", "Pending", "Running", "Succeeded"].map { .string($0) }))
        #expect(m["users"] == .array(["alice", "bob", "carol"].map { .string($0) }))
        #expect(m["queues"] == .array(["default", "prod", "research"].map { .string($0) }))
        #expect(m["namespaces"] == .array(["team-a", "team-b", "team-c"].map { .string($0) }))
        #expect(m["priorities"] == .array([-1, 0, 1, 2].map { .int($0) }))
        #expect(m["types"] == m["kinds"] && m["types"]?.arrayValue?.count == 4)
        #expect(WorkloadMetadata.of([])["phases"] == .array([]))
    }
}

@Suite(.timeLimit(.minutes(1))) struct APIQueryMetricTests {
    @Test func parseDefaultsAndForms() throws {
        #expect(try MetricQuery.parse([], now: 10_000) == MetricQuery(start: 6400, end: 10_000, step: 60))
        #expect(try MetricQuery.parse([("start", "0"), ("end", "100"), ("numberOfSamples", "10")], now: 0) == MetricQuery(start: 0, end: 100, step: 10))
        #expect(try MetricQuery.parse([("start", "1609459200000"), ("end", "1609462800"), ("step", "300")], now: 0) == MetricQuery(start: 1_609_459_200, end: 1_609_462_800, step: 300))
        #expect(try MetricQuery.parse([("start", "2021-01-01T00:00:00Z"), ("end", "2021-01-01T01:00:00.5Z"), ("step", "60"), ("numberOfSamples", "5")], now: 0).step == 60)
        #expect(try MetricQuery.parse([("start", "100"), ("numberOfSamples", "0"), ("metric", "loss")], now: 700).step == 10)
    }

    static let bad: [([(String, String)], String)] = [
        ([("step", "0")], "step"), ([("step", "-5")], "step"), ([("step", "nan")], "step"), ([("step", "x")], "step"),
        ([("start", "200"), ("end", "100")], "start"), ([("start", "soon")], "start"), ([("end", "inf")], "end"),
        ([("numberOfSamples", "5000")], "numberOfSamples"), ([("numberOfSamples", "-1")], "numberOfSamples"),
        ([("start", "0"), ("end", "100000"), ("step", "1")], "step"), ([("metricType", "x"), ("window", "5m")], "window"),
    ]
    @Test(arguments: bad)
    func badParameters(query: [(String, String)], field: String) {
        #expect(fieldOf400 { () throws(APIError) in try MetricQuery.parse(query, now: 10_000) } == .some(field))
    }

    @Test func aggregatesPerStep() {
        let q = MetricQuery(start: 0, end: 100, step: 10)
        let s = MetricSeries(name: "ns/w/gpu_utilization_percent{gpu=0}", samples: [
            .init(ts: 1, value: 1), .init(ts: 2, value: 3), .init(ts: 15, value: 5), .init(ts: 100, value: 7),
            .init(ts: 200, value: 9), .init(ts: -1, value: 9), .init(ts: 50, value: .nan),
        ])
        let out = q.aggregate([s, MetricSeries(name: "ns/w/loss{rank=0}", samples: [])])
        #expect(out.count == 2 && out[1].samples.isEmpty)
        #expect(out[0].samples == [.init(ts: 0, value: 2), .init(ts: 10, value: 5), .init(ts: 100, value: 7)])
    }

    @Test func seriesNamesAndResponse() throws {
        #expect(MetricSeriesName(parsing: "ns/w/gpu_utilization_percent{gpu=3}") == {
            var n = MetricSeriesName(metric: "gpu_utilization_percent", gpu: 3, rank: nil); n.namespace = "ns"; n.workload = "w"; return n
        }())
        #expect(MetricSeriesName(parsing: "ns/w/loss{rank=1}")?.rank == 1)
        #expect(MetricSeriesName(parsing: "ns/w/loss")?.metric == "loss")
        for bad in ["x", "ns/w", "ns/w/m{gpu=x}", "ns/w/m{foo=1}", "ns/w/{gpu=1}", "ns/w/m{gpu=1", "/w/m", "ns/w/m{gpu=-1}"] {
            #expect(MetricSeriesName(parsing: bad) == nil, "\(bad)")
        }
        let q = MetricQuery(start: 0, end: 120, step: 60)
        let r = q.response(workload: "ns/w", series: [
            MetricSeries(name: "ns/w/gpu_utilization_percent{gpu=1}", samples: [.init(ts: 60, value: 50.5)]),
            MetricSeries(name: "ns/w/gpu_utilization_percent{gpu=0}", samples: [.init(ts: 0, value: 10)]),
        ])
        #expect(r["workload"] == .string("ns/w") && r["step"] == .int(60) && r["start"] == .int(0) && r["end"] == .int(120))
        let series = try #require(r["series"]?.arrayValue)
        #expect(series.map { $0["gpu"] } == [.int(0), .int(1)])
        #expect(series[1]["metric"] == .string("gpu_utilization_percent") && series[1]["rank"] == .null)
        #expect(series[1]["samples"] == .array([.array([.int(60), .double(50.5)])]))
    }
}
