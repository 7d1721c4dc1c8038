import Testing
@testable import GantryAPI
@testable import Controllers

/// A replica's environment is built from the daemon's pre-sorted lines merged with its own
/// settings; it must equal the straightforward build: the daemon's environment, the user's
/// `env` over it, Gantry's variables over that, the other vendor's device variables removed,
/// all sorted by name.
@Suite(.timeLimit(.minutes(1))) struct ReplicaEnvTests {
    static func reference(_ base: [String: String], _ user: [String: String], _ gantry: [String: String], vendor: GPUVendor, devices: String) -> [String] {
        var env = base
        for (k, v) in user { env[k] = v }
        for (k, v) in gantry { env[k] = v }
        switch vendor {
        case .nvidia: env["CUDA_VISIBLE_DEVICES"] = devices; env["HIP_VISIBLE_DEVICES"] = nil; env["ROCR_VISIBLE_DEVICES"] = nil
        case .amd: env["HIP_VISIBLE_DEVICES"] = devices; env["ROCR_VISIBLE_DEVICES"] = devices; env["CUDA_VISIBLE_DEVICES"] = nil
        }
        return env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    @Test(arguments: [GPUVendor.nvidia, .amd])
    func theMergedEnvironmentEqualsTheStraightforwardOne(vendor: GPUVendor) {
        var o = LifecycleOptions()
        o.specDir = "/spec"
        // Names before, between and after Gantry's; ones it overrides; the other vendor's.
        o.baseEnv = ["PATH": "/usr/bin:/bin", "A": "1", "HOME": "/root", "RANK": "99", "CUDA_VISIBLE_DEVICES": "7",
                     "HIP_VISIBLE_DEVICES": "3", "ROCR_VISIBLE_DEVICES": "3", "zz": "last", "NCCL_DEBUG": "WARN", "É": "x"]
        var spec = WorkloadSpec()
        spec.queue = "q"
        spec.env = ["NCCL_DEBUG": "INFO", "B": "2", "PATH": "/opt/bin", "WORLD_SIZE": "5", "ROCR_VISIBLE_DEVICES": "9", "zy": "y"]
        let key = ObjectKey(.workload, namespace: "ns", name: "w")
        let got = Admission.replicaEnv(key, spec, rank: 1, world: 2, port: 2950, gpus: [2, 3], vendor: vendor, node: "n1",
                                       dispatch: 4, attempt: 1, options: o, workdir: "/work/ns/w")
        let gantry = ["GANTRY_WORKLOAD": "w", "GANTRY_NAMESPACE": "ns", "GANTRY_QUEUE": "q", "GANTRY_SPEC_DIR": "/spec",
                      "GANTRY_WORK_DIR": "/work/ns/w", "GANTRY_NODE": "n1", "GANTRY_DISPATCH": "4", "GANTRY_RESTART": "1",
                      "GANTRY_REPLICA": "w-worker-1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "2950", "WORLD_SIZE": "2",
                      "RANK": "1", "NODE_RANK": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"]
        #expect(got == ReplicaEnvTests.reference(o.baseEnv, spec.env, gantry, vendor: vendor, devices: "2,3"))
        #expect(got.contains("PATH=/opt/bin") && got.contains("A=1") && got.contains("zz=last") && !got.contains("RANK=99"))
    }
}
