import Testing
import GantryAPI
import ControllerRuntime
import KubeClient
@testable import KubeMode

/// Whatever an API server (or a user's object in it) puts in front of the controller, the
/// translations take it without trapping: objects from templates with random values of random
/// types spliced in at random places, seeded.
@Suite(.timeLimit(.minutes(1)))
struct KubeInputFuzzTests {
    static let templates: [String] = [
        #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Workload","metadata":{"name":"w","namespace":"n","uid":"u","generation":3,"creationTimestamp":"2026-01-01T00:00:00Z","deletionTimestamp":null,"finalizers":["gantry.dev/cleanup"],"labels":{"a":"b"}},"spec":{"type":"PyTorchJob","queue":"q","image":"i","command":"c","replicas":2,"priority":"high","resources":{"gpu":2,"cpu":"500m","memory":"1Gi"},"env":{"A":"1"},"timeout":10,"maxRetry":1,"specifiedNodes":["n1","n2"]},"status":{"phase":"Running","retryCount":1}}"#,
        #"{"apiVersion":"gantry.dev/v1alpha1","kind":"Queue","metadata":{"name":"q","uid":"u"},"spec":{"parent":"p","deserved":{"gpu":8,"cpu":"16"},"guarantee":{"gpu":2},"capability":{"gpu":16},"reclaimable":true,"queueingStrategy":"StrictFIFO","state":"Open"}}"#,
        #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","uid":"x","labels":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3","gantry.dev/resource-pool":"p"}},"spec":{"unschedulable":false,"taints":[{"key":"k","effect":"NoSchedule"}]},"status":{"allocatable":{"nvidia.com/gpu":"8","cpu":"64","memory":"512Gi"},"conditions":[{"type":"Ready","status":"True"}]}}"#,
        #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w-worker-0","namespace":"n","uid":"p","labels":{"gantry.dev/workload":"w","gantry.dev/rank":"0","gantry.dev/dispatch":"3","gantry.dev/attempt":"1"},"annotations":{"gantry.dev/dispatch-intent":"{\"dispatch\":3,\"specHash\":\"h\",\"masterPort\":29500,\"at\":1.5,\"assignments\":[{\"rank\":0,\"node\":\"n1\",\"gpus\":[0,1]}]}"}},"status":{"phase":"Failed","startTime":"2026-01-01T00:00:00Z","containerStatuses":[{"state":{"terminated":{"exitCode":3,"finishedAt":"2026-01-01T00:01:00Z"}}}]}}"#,
    ]

    static func randomValue(_ rng: inout SplitMix64, depth: Int) -> Value {
        let strings = ["", "x", "-1", "99999999999999999999", "1e400", "NaN", "2026-13-45T99:99:99Z", "nvidia.com/gpu", "🙂", String(repeating: "a", count: 300), "{", "null", "0x10", "1Ei", "-5Gi"]
        switch rng.next() % (depth > 3 ? 6 : 8) {
        case 0: return .null
        case 1: return .bool(rng.next() % 2 == 0)
        case 2: return .int([Int64.min, Int64.max, -1, 0, 1, 1 << 40, Int64(rng.next() % 1000)][Int(rng.next() % 7)])
        case 3: return .double([Double.greatestFiniteMagnitude, -0.0, 1.5, 1e300][Int(rng.next() % 4)])
        case 4, 5: return .string(strings[Int(rng.next() % UInt64(strings.count))])
        case 6: return .array((0..<Int(rng.next() % 4)).map { _ in randomValue(&rng, depth: depth + 1) })
        default: return .object((0..<Int(rng.next() % 4)).map { i in Value.Member(["metadata", "spec", "status", "name", "labels", "x\(i)"][Int(rng.next() % 6)], randomValue(&rng, depth: depth + 1)) })
        }
    }

    /// Replaces one randomly chosen node of `v` (walking down random members) with a random value.
    static func mutate(_ v: Value, _ rng: inout SplitMix64, depth: Int = 0) -> Value {
        if depth > 0 && rng.next() % 4 == 0 { return randomValue(&rng, depth: depth) }
        switch v {
        case .object(var members) where !members.isEmpty:
            let i = Int(rng.next() % UInt64(members.count))
            members[i].value = mutate(members[i].value, &rng, depth: depth + 1)
            return .object(members)
        case .array(var items) where !items.isEmpty:
            let i = Int(rng.next() % UInt64(items.count))
            items[i] = mutate(items[i], &rng, depth: depth + 1)
            return .array(items)
        default:
            return randomValue(&rng, depth: depth)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func translationsNeverTrap(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let bases = try KubeInputFuzzTests.templates.map { try JSON.parse($0) }
        var decoded = 0
        for _ in 0..<1500 {
            var v = bases[Int(rng.next() % UInt64(bases.count))]
            for _ in 0..<(1 + Int(rng.next() % 3)) { v = KubeInputFuzzTests.mutate(v, &rng) }
            for kind in [Kind.workload, .queue, .resourcePool] {
                if case .object = KubeObjects.decode(v, kind: kind, fieldValidation: .strict) { decoded += 1 }
                _ = KubeObjects.decode(v, kind: kind, fieldValidation: .ignore)
            }
            _ = KubeObjects.node(v)
            _ = KubeObjects.ServerMeta(v)
            _ = PodRuntime.ref(of: v)
            _ = PodRuntime.observe(v)
            _ = PodRuntime.intent(of: v, dispatch: 3)
            _ = KubeObjects.mergePatch(from: v, to: bases[0])
            _ = KubeObjects.mergePatch(from: bases[1], to: v)
            if let st = v["status"] { _ = ObjectStatus.from(st, kind: .workload).toValue() }
        }
        // The mutations leave many objects decodable: the decoder was exercised, not just refused.
        #expect(decoded > 100)
    }
}
