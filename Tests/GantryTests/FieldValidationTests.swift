import Testing
@testable import GantryAPI
@testable import YAMLCodec

/// Unknown fields under `--field-validation` Strict, Warn and Ignore: every level of every
/// kind, near misses, and the shapes users paste from the seed APIs.
struct FieldValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var yaml: String, line: Int, path: String, message: String
        var testDescription: String { path }
    }

    static func workload(spec: String, meta: String = "") -> String {
        "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: w\n" + meta + "spec:\n  command: run\n" + spec
    }
    static func queue(spec: String) -> String {
        "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata:\n  name: q\nspec:\n  deserved: {gpu: 1}\n" + spec
    }

    static let cases: [Case] = [
        // Seed 000 (a GPU platform's workload request).
        Case(yaml: workload(spec: "  resource: {cpu: \"128\", gpu: \"8\", memory: 256Gi, replica: 1}\n"), line: 7, path: "spec.resource",
             message: "unknown field \"resource\"; did you mean \"resources\"? spec.resources is a map per replica"),
        Case(yaml: workload(spec: "  groupVersionKind: {kind: PyTorchJob, version: v1}\n"), line: 7, path: "spec.groupVersionKind",
             message: "use apiVersion: gantry.dev/v1alpha1 and kind: Workload; the workload's own kind (PyTorchJob, Deployment, ...) goes in spec.type"),
        Case(yaml: workload(spec: "  workspaceId: ws-1\n"), line: 7, path: "spec.workspaceId", message: "use metadata.namespace"),
        // Seed 003 (a training job).
        Case(yaml: workload(spec: "  envs:\n  - {name: A, value: \"1\"}\n"), line: 8, path: "spec.envs", message: "use spec.env, a map {NAME: value}"),
        Case(yaml: workload(spec: "  jobSpec: {replicas: 2}\n"), line: 7, path: "spec.jobSpec", message: "go directly under spec"),
        Case(yaml: queue(spec: "  parentQueue: root\n"), line: 7, path: "spec.parentQueue", message: "use spec.parent"),
        // Seed 004 (a job scheduler's job).
        Case(yaml: workload(spec: "  flavour: {name: flavour1, cpu: \"1\", mem: 1Gi}\n"), line: 7, path: "spec.flavour",
             message: "use spec.resources, a map per replica"),
        Case(yaml: workload(spec: "  members: [{role: worker, replicas: 2}]\n"), line: 7, path: "spec.members",
             message: "use spec.replicas for the total count"),
        Case(yaml: workload(spec: "  schedulingPolicy: {queue: q, priority: HIGH}\n"), line: 7, path: "spec.schedulingPolicy",
             message: "use spec.queue and spec.priority"),
        Case(yaml: workload(spec: "  resources: {cpu: \"1\", mem: 1Gi}\n"), line: 7, path: "spec.resources.mem", message: "use memory"),
        // Near misses at every level.
        Case(yaml: workload(spec: "  comand: x\n"), line: 7, path: "spec.comand", message: "unknown field \"comand\"; did you mean \"command\"?"),
        Case(yaml: workload(spec: "  Replicas: 2\n"), line: 7, path: "spec.Replicas", message: "did you mean \"replicas\"?"),
        Case(yaml: workload(spec: "  resources: {gpus: 8}\n"), line: 7, path: "spec.resources.gpus", message: "did you mean \"gpu\"?"),
        Case(yaml: workload(spec: "  resources: {fpga: 1}\n"), line: 7, path: "spec.resources.fpga", message: "domain prefix such as example.com/fpga"),
        Case(yaml: workload(spec: "  env:\n  - {name: A, valu: x}\n"), line: 8, path: "spec.env[0].valu", message: "did you mean \"value\"?"),
        Case(yaml: workload(spec: "", meta: "  lables: {a: b}\n"), line: 5, path: "metadata.lables", message: "did you mean \"labels\"?"),
        Case(yaml: workload(spec: "") + "staus: {}\n", line: 7, path: "staus", message: "did you mean \"status\"?"),
        Case(yaml: "apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: w}\ncommand: x\nspec: {command: y}\n", line: 4, path: "command",
             message: "did you mean spec.command? (spec fields go under spec)"),
        Case(yaml: queue(spec: "  capabilty: {gpu: 2}\n"), line: 7, path: "spec.capabilty", message: "did you mean \"capability\"?"),
        Case(yaml: queue(spec: "  guarantee: {gpu: 1, cpus: 2}\n"), line: 7, path: "spec.guarantee.cpus", message: "did you mean \"cpu\"?"),
        Case(yaml: "apiVersion: gantry.dev/v1alpha1\nkind: Node\nmetadata: {name: n}\nspec:\n  capacity: {gpu: 8, memroy: 1Ti}\n  gputype: H100\n",
             line: 6, path: "spec.gputype", message: "did you mean \"gpuType\"?"),
        Case(yaml: "apiVersion: gantry.dev/v1alpha1\nkind: ResourcePool\nmetadata: {name: p}\nspec:\n  descripton: x\n", line: 5, path: "spec.descripton",
             message: "did you mean \"description\"?"),
        Case(yaml: workload(spec: "  name: w\n"), line: 7, path: "spec.name", message: "use metadata.name, not spec.name"),
    ]

    func decode(_ yaml: String, _ mode: FieldValidation) -> ManifestFile {
        ManifestFile.decode(path: "w.yaml", bytes: Array(yaml.utf8), fieldValidation: mode)
    }

    @Test(arguments: cases, FieldValidation.allCases)
    func unknownField(c: Case, mode: FieldValidation) throws {
        let f = decode(c.yaml, mode)
        #expect(f.errors.isEmpty && f.fatal == nil, "the document itself is sound: \(f.errors)")
        let o = try #require(f.objects.first, "the object is decoded in every mode")
        let found = (o.invalid + f.warnings).filter { $0.path == c.path }
        switch mode {
        case .strict:
            let e = try #require(o.invalid.first { $0.path == c.path }, "no error at \(c.path): \(o.invalid)")
            #expect(e.line == c.line)
            #expect(e.message.contains(c.message), "\(e.message)")
            #expect(e.description.hasPrefix("w.yaml:\(c.line): \(c.path): unknown field"))
            #expect(!f.warnings.contains { $0.path == c.path })
        case .warn:
            #expect(o.invalid.isEmpty, "applied under Warn: \(o.invalid)")
            let w = try #require(f.warnings.first { $0.path == c.path }, "no warning at \(c.path): \(f.warnings)")
            #expect(w.line == c.line)
            #expect(w.message.contains(c.message), "\(w.message)")
        case .ignore:
            #expect(o.invalid.isEmpty && found.isEmpty && f.warnings.isEmpty)
        }
    }

    /// The whole seed-000 request pasted under spec: not runnable under Strict (it used to run
    /// with zero GPUs); under Warn it runs without the unknown fields.
    @Test func pastedSeed000Workload() throws {
        let yaml = Self.workload(spec: """
          displayName: my-training-job
          workspaceId: cluster-workspace
          groupVersionKind: {kind: PyTorchJob, version: v1}
          resource: {cpu: "128", gpu: "8", memory: 256Gi, replica: 1}
          priority: 0
          timeout: 3600
          env: {NCCL_DEBUG: INFO}
          specifiedNodes: []

        """)
        let strict = try #require(decode(yaml, .strict).objects.first)
        #expect(strict.invalid.map(\.path) == ["spec.workspaceId", "spec.groupVersionKind", "spec.resource"])
        #expect(strict.invalid.map(\.line) == [8, 9, 10])
        let warn = decode(yaml, .warn)
        #expect(try #require(warn.objects.first).invalid.isEmpty)
        #expect(warn.warnings.map(\.path) == ["spec.workspaceId", "spec.groupVersionKind", "spec.resource"])
        #expect(warn.objects.first?.spec.workload?.totalGPUs == 0)
    }

    /// A seed-003 resources list is the wrong type in every mode; the error shows the map.
    @Test(arguments: FieldValidation.allCases)
    func resourcesAsAListShowsTheMap(mode: FieldValidation) throws {
        let yaml = Self.workload(spec: "  resources:\n  - {name: baidu.com/a800_80g_cgpu, quantity: 8}\n  - {name: cpu, quantity: 1.1}\n")
        let o = try #require(decode(yaml, mode).objects.first)
        let e = try #require(o.invalid.first)
        #expect(e.description == "w.yaml:8: spec.resources: expected a map such as {gpu: 8, cpu: \"32\", memory: 256Gi}, got a list; "
                + "write each {name, quantity} entry as NAME: QUANTITY, here resources: {baidu.com/a800_80g_cgpu: 8, cpu: 1.1}")
        let q = try #require(decode(Self.queue(spec: "  capability: [{name: gpu, quantity: 4}]\n"), mode).objects.first)
        #expect(q.invalid.first?.message.hasSuffix("here capability: {gpu: 4}") == true)
    }

    /// Free-form maps (labels, annotations, env), `status`, known resource names and the
    /// fields Gantry itself writes into metadata are no unknown fields.
    @Test func freeFormMapsAndStatusAreNotChecked() throws {
        let yaml = """
        apiVersion: gantry.dev/v1alpha1
        kind: Workload
        metadata:
          name: w
          uid: abc
          generation: 3
          labels: {anything: goes, example.com/team: a}
          annotations: {whatever: x}
        spec:
          command: run
          env: {ANY_NAME: x, OTHER: y}
          resources: {gpu: 1, cpu: 2, memory: 1Gi, ephemeral-storage: 1Gi, hugepages-2Mi: 0, nvidia.com/mig-1g.10gb: 1, gpuType: H100}
        status: {phase: Running, whatever: 1}
        """
        let f = decode(yaml, .strict)
        let o = try #require(f.objects.first)
        #expect(o.invalid.isEmpty && f.warnings.isEmpty, "\(o.invalid) \(f.warnings)")
        #expect(o.spec.workload?.resources["nvidia.com/mig-1g.10gb"].milli == 1000)
    }

    @Test func nearestIsSmallAndCaseInsensitive() {
        #expect(ManifestDecoder.nearest("resource", among: ["resources", "replicas"]) == "resources")
        #expect(ManifestDecoder.nearest("GPUTYPE", among: ["gpuType"]) == "gpuType")
        #expect(ManifestDecoder.nearest("cpus", among: ["gpu", "cpu"]) == "cpu")
        #expect(ManifestDecoder.nearest("mem", among: ["memory"]) == nil)
        #expect(ManifestDecoder.nearest("", among: ["a"]) == nil)
        #expect(ManifestDecoder.nearest(String(repeating: "x", count: 100_000), among: ["spec"]) == nil)
        #expect(ManifestDecoder.nearest("xyz", among: []) == nil)
        #expect(FieldValidation(flag: "warn") == .warn && FieldValidation(flag: "STRICT") == .strict && FieldValidation(flag: "no") == nil)
    }
}
