import Testing
import GantryAPI
import Controllers
import ControllerRuntime
import KubeClient
@testable import KubeMode

/// The pure parts of kube mode: object translation, merge patches, Pod construction and the
/// reading of Pod states.
@Suite(.timeLimit(.minutes(1)))
struct KubeModeUnitTests {
    func json(_ s: String) -> Value { (try? JSON.parse(s)) ?? .null }

    @Test func mergePatchSetsChangedAndNullsRemovedKeys() {
        let old = json(#"{"phase":"Pending","queuePosition":3,"admission":{"node":"a"},"conditions":[{"type":"A"}]}"#)
        let new = json(#"{"phase":"Running","admission":{"node":"a"},"conditions":[{"type":"A"},{"type":"B"}],"startTime":"x"}"#)
        let p = KubeObjects.mergePatch(from: old, to: new)
        #expect(p?["phase"] == .string("Running"))
        #expect(p?["queuePosition"] == .null)
        #expect(p?["admission"] == nil)
        #expect(p?["conditions"]?.arrayValue?.count == 2)
        #expect(p?["startTime"] == .string("x"))
        // Same content in another key order: nothing to write.
        #expect(KubeObjects.mergePatch(from: json(#"{"b":1,"a":{"y":2,"x":1}}"#), to: json(#"{"a":{"x":1,"y":2},"b":1}"#)) == nil)
        // From nothing: the whole status.
        #expect(KubeObjects.mergePatch(from: json("{}"), to: json(#"{"a":1}"#)) == json(#"{"a":1}"#))
    }

    @Test func workloadFromTheAPIKeepsServerMetadataAndNeedsAnImage() {
        let v = json(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"llama","namespace":"team-a","uid":"u-1","generation":4,"resourceVersion":"77","creationTimestamp":"2026-01-02T03:04:05Z","finalizers":["gantry.dev/cleanup"],"managedFields":[{"manager":"kubectl"}]},"spec":{"command":"echo hi","replicas":2},"status":{"phase":"Running"}}"#)
        guard case .object(let obj, let warnings) = KubeObjects.decode(v, kind: .workload, fieldValidation: .strict) else { Issue.record("rejected"); return }
        #expect(warnings.isEmpty)
        #expect(obj.meta.uid == "u-1")
        #expect(obj.meta.generation == 4)
        #expect(obj.meta.creationTimestamp == Timestamp(rfc3339: "2026-01-02T03:04:05Z"))
        #expect(obj.key == ObjectKey(.workload, namespace: "team-a", name: "llama"))
        #expect(obj.invalid.map(\.path) == ["spec.image"])
        #expect(obj.source.file == "Workload team-a/llama")

        let ok = json(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"w","namespace":"n","uid":"u","deletionTimestamp":"2026-01-02T03:04:05Z"},"spec":{"image":"busybox","command":"true"}}"#)
        guard case .object(let o2, _) = KubeObjects.decode(ok, kind: .workload, fieldValidation: .strict) else { Issue.record("rejected"); return }
        #expect(o2.invalid.isEmpty)
        #expect(KubeObjects.ServerMeta(ok).deleting)
    }

    @Test func unknownSpecFieldsFollowFieldValidation() {
        let v = json(#"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"q","uid":"u"},"spec":{"deserved":{"gpu":8},"bogus":1}}"#)
        guard case .object(let strict, _) = KubeObjects.decode(v, kind: .queue, fieldValidation: .strict) else { Issue.record("rejected"); return }
        #expect(!strict.invalid.isEmpty)
        guard case .object(let warn, let warnings) = KubeObjects.decode(v, kind: .queue, fieldValidation: .warn) else { Issue.record("rejected"); return }
        #expect(warn.invalid.isEmpty && warnings.count == 1)
        #expect(warnings.first?.file == "Queue q")
    }

    @Test func coreNodesBecomeGantryNodes() {
        let ready = #"{"type":"Ready","status":"True"}"#
        let gpu = json(#"{"metadata":{"name":"n1","uid":"x","labels":{"nvidia.com/gpu.product":"NVIDIA-A100-SXM4-80GB","gantry.dev/resource-pool":"p1"}},"spec":{},"status":{"allocatable":{"nvidia.com/gpu":"8","cpu":"96","memory":"1Ti"},"conditions":[\#(ready)]}}"#)
        let n = KubeObjects.node(gpu)
        #expect(n?.spec.node?.capacity.gpu == 8)
        #expect(n?.spec.node?.gpuVendor == .nvidia)
        #expect(n?.spec.node?.gpuType == "A100")
        #expect(n?.spec.node?.resourcePool == "p1")
        #expect(n?.spec.node?.unschedulable == false)
        #expect(n?.spec.node?.capacity["cpu"] == Quantity(units: 96))

        let amd = json(#"{"metadata":{"name":"n2"},"status":{"allocatable":{"amd.com/gpu":4},"conditions":[\#(ready)]}}"#)
        #expect(KubeObjects.node(amd)?.spec.node?.gpuVendor == .amd)
        #expect(KubeObjects.node(amd)?.spec.node?.capacity.gpu == 4)

        let cordoned = json(#"{"metadata":{"name":"n3"},"spec":{"unschedulable":true},"status":{"conditions":[\#(ready)]}}"#)
        #expect(KubeObjects.node(cordoned)?.spec.node?.unschedulable == true)
        let tainted = json(#"{"metadata":{"name":"n4"},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]},"status":{"conditions":[\#(ready)]}}"#)
        #expect(KubeObjects.node(tainted)?.spec.node?.unschedulable == true)
        // Condition taints are read from the conditions themselves.
        let notReadyTaint = json(#"{"metadata":{"name":"n8"},"spec":{"taints":[{"key":"node.kubernetes.io/not-ready","effect":"NoSchedule"}]},"status":{"conditions":[\#(ready)]}}"#)
        #expect(KubeObjects.node(notReadyTaint)?.spec.node?.unschedulable == false)
        let preferNo = json(#"{"metadata":{"name":"n5"},"spec":{"taints":[{"key":"k","effect":"PreferNoSchedule"}]},"status":{"conditions":[\#(ready)]}}"#)
        #expect(KubeObjects.node(preferNo)?.spec.node?.unschedulable == false)
        let notReady = json(#"{"metadata":{"name":"n6"},"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#)
        #expect(KubeObjects.node(notReady)?.spec.node?.unschedulable == true)
        #expect(KubeObjects.node(json(#"{"metadata":{}}"#)) == nil)
        // A garbage quantity is no GPUs, not a crash.
        let bad = json(#"{"metadata":{"name":"n7"},"status":{"allocatable":{"nvidia.com/gpu":"lots"},"conditions":[\#(ready)]}}"#)
        #expect(KubeObjects.node(bad)?.spec.node?.capacity.gpu == 0)
    }

    @Test func podOfAReplica() {
        let key = ObjectKey(.workload, namespace: "team-a", name: "llama")
        var spec = WorkloadSpec()
        spec.type = .pytorchJob
        spec.image = "pytorch:2"
        spec.replicas = 2
        spec.resources = ResourceList(["gpu": Quantity(units: 4), "cpu": Quantity(units: 8), "memory": (try? Quantity.parse("32Gi")) ?? .zero])
        let intent = DispatchIntent(dispatch: 3, specHash: "h", masterPort: 29500, at: 1, assignments: [ReplicaAssignment(rank: 0, node: "n1", gpus: [0, 1, 2, 3]), ReplicaAssignment(rank: 1, node: "n2", gpus: [4, 5, 6, 7])])
        let launch = ReplicaLaunch(ref: ReplicaRef(key: key, dispatch: 3, rank: 1, attempt: 0), command: "python train.py",
                                   env: ["MASTER_ADDR=127.0.0.1", "MASTER_PORT=1234", "CUDA_VISIBLE_DEVICES=4,5,6,7", "RANK=1", "GANTRY_WORK_DIR=/x", "HOME=/root"], header: "")
        let pod = PodRuntime.podObject(launch, spec: spec, uid: "uid-1", intent: intent, assignment: intent.assignments[1], vendor: .nvidia, grace: 30)
        #expect(pod["metadata"]?["name"] == .string("llama-worker-1"))
        #expect(PodRuntime.podName(key, rank: 0, type: .pytorchJob) == "llama-master-0")
        #expect(PodRuntime.podName(key, rank: 0, type: .job) == "llama-worker-0")
        let labels = KubeObjects.stringMap(pod["metadata"]?["labels"])
        #expect(labels["gantry.dev/workload"] == "llama" && labels["gantry.dev/rank"] == "1" && labels["gantry.dev/dispatch"] == "3")
        let owner = pod["metadata"]?["ownerReferences"]?.arrayValue?.first
        #expect(owner?["uid"] == .string("uid-1") && owner?["controller"] == .bool(true) && owner?["blockOwnerDeletion"] == .bool(true) && owner?["kind"] == .string("Workload"))
        #expect(pod["spec"]?["nodeName"] == .string("n2"))
        #expect(pod["spec"]?["restartPolicy"] == .string("Never"))
        #expect(pod["spec"]?["subdomain"] == .string("llama"))
        #expect(pod["spec"]?["hostname"] == .string("llama-worker-1"))
        let c = pod["spec"]?["containers"]?.arrayValue?.first
        #expect(c?["image"] == .string("pytorch:2"))
        #expect(c?["command"] == .array([.string("/bin/sh"), .string("-c"), .string("python train.py")]))
        #expect(c?["resources"]?["limits"]?["nvidia.com/gpu"] == .string("4"))
        #expect(c?["resources"]?["requests"]?["cpu"] == .string("8"))
        var env: [String: String] = [:]
        for e in c?["env"]?.arrayValue ?? [] { env[e["name"]?.stringValue ?? ""] = e["value"]?.stringValue }
        #expect(env["MASTER_ADDR"] == "llama-master-0.llama.team-a.svc")
        #expect(env["MASTER_PORT"] == "29500")
        #expect(env["CUDA_VISIBLE_DEVICES"] == nil && env["GANTRY_WORK_DIR"] == nil)
        #expect(env["RANK"] == "1" && env["HOME"] == "/root")
        // The dispatch intent travels on the Pod and comes back.
        let back = PodRuntime.intent(of: pod, dispatch: 3)
        #expect(back?.assignments == intent.assignments)
        #expect(back?.specHash == "h")
        #expect(PodRuntime.intent(of: pod, dispatch: 4) == nil)
        #expect(PodRuntime.ref(of: pod) == launch.ref)

        let amdPod = PodRuntime.podObject(launch, spec: spec, uid: "u", intent: intent, assignment: intent.assignments[1], vendor: .amd, grace: 30)
        #expect(amdPod["spec"]?["containers"]?.arrayValue?.first?["resources"]?["limits"]?["amd.com/gpu"] == .string("4"))
    }

    @Test func problemsWithAnObjectsContentGoToTheObject() {
        #expect(KubeEventSink.objectOfDisplayName("Workload team-a/llama") == InvolvedObject(kind: "Workload", namespace: "team-a", name: "llama"))
        #expect(KubeEventSink.objectOfDisplayName("Queue q") == InvolvedObject(kind: "Queue", name: "q"))
        #expect(KubeEventSink.objectOfDisplayName("manifests/x.yaml") == nil)
        #expect(KubeEventSink.eventName("Llama_7B.1a2b") == "llama-7b.1a2b")
    }

    @Test func longNamesStayValidDNSLabels() {
        let long = String(repeating: "a", count: 60)
        let key = ObjectKey(.workload, namespace: "n", name: long)
        let pod = PodRuntime.podName(key, rank: 12, type: .job)
        let host = PodRuntime.hostname(pod, rank: 12)
        #expect(host.utf8.count <= 63 && ManifestDecoder.isDNS1123Label(host))
        let digit = ObjectKey(.workload, namespace: "n", name: "7b-run")
        let svc = PodRuntime.serviceName(digit)
        #expect(svc.first?.isLetter == true && svc.utf8.count <= 63 && ManifestDecoder.isDNS1123Label(svc))
    }

    @Test func podStates() {
        func phase(_ s: String) -> PodRuntime.PodPhase { PodRuntime.observe(json(s)).phase }
        #expect(phase(#"{"status":{"phase":"Pending"}}"#) == .pending)
        #expect(phase(#"{"status":{"phase":"Running","containerStatuses":[{"state":{"running":{}}}]}}"#) == .running)
        if case .exited(let code, _) = phase(#"{"status":{"phase":"Succeeded"}}"#) { #expect(code == 0) } else { Issue.record("expected exited") }
        if case .exited(let code, _) = phase(#"{"status":{"phase":"Failed","containerStatuses":[{"state":{"terminated":{"exitCode":3,"finishedAt":"2026-01-01T00:00:00Z"}}}]}}"#) {
            #expect(code == 3)
        } else { Issue.record("expected exited") }
        if case .lost(let m) = phase(#"{"status":{"phase":"Failed","reason":"Evicted","message":"low memory"}}"#) {
            #expect(m.contains("Evicted"))
        } else { Issue.record("expected lost") }
        if case .failedToStart(let m) = phase(#"{"status":{"phase":"Pending","containerStatuses":[{"state":{"waiting":{"reason":"ImagePullBackOff","message":"no such image"}}}]}}"#) {
            #expect(m.contains("ImagePullBackOff"))
        } else { Issue.record("expected failedToStart") }
        // Transient pull errors wait.
        #expect(phase(#"{"status":{"phase":"Pending","containerStatuses":[{"state":{"waiting":{"reason":"ErrImagePull"}}}]}}"#) == .pending)
        // An exit code beyond Int32 is clamped, not a trap.
        if case .exited(let code, _) = phase(#"{"status":{"phase":"Failed","containerStatuses":[{"state":{"terminated":{"exitCode":99999999999}}}]}}"#) {
            #expect(code == Int32.max)
        } else { Issue.record("expected exited") }
    }

}
