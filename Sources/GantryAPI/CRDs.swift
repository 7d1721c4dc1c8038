/// The CRDs of Queue, ResourcePool and Workload, described from the same model the manifest
/// decoder implements (SPEC.md): field names, enums from the Swift enums, defaults as the
/// decoder applies them, ranges as it checks them. Where the decoder is more lenient than a
/// structural schema can be (a `command` or `env` given as a list, enum values in another
/// case, the `spec.kind` alias of `spec.type`), the schema takes the canonical form only;
/// CRDTests lists these differences and fails on any other.
public enum CRDs {
    /// Queue, ResourcePool, Workload: the order `gantry crds` prints them in.
    public static var all: [CRD] { [queue, resourcePool, workload, node] }

    public static func crd(for kind: Kind) -> CRD? { all.first { $0.kind == kind } }

    // MARK: shared pieces

    public static let dnsLabelPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    public static let dnsSubdomainPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    /// Kubernetes quantity syntax as `Quantity.parse` reads it, without a sign (spec amounts
    /// must not be negative): `8`, `500m`, `64Gi`, `2e3`, `1.5`.
    public static let quantityPattern = "^[+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
    /// Status sums: the same with an optional sign.
    public static let signedQuantityPattern = "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
    /// A whole-number quantity (GPUs): digits with an optional whole multiplier.
    static let wholeQuantityPattern = "^[+]?[0-9]+([kMGTPE]|[KMGTPE]i|[eE][+]?[0-9]+)?$"
    /// What the decoder's base64 accepts: standard or URL-safe alphabet, whitespace, up to two `=`.
    public static let base64Pattern = "^[-A-Za-z0-9+/_\\s]*(=\\s*){0,2}$"

    static func kindDescription(_ kind: Kind) -> String {
        switch kind {
        case .queue: "A Queue admits Workloads within its quota (deserved, guarantee, capability); siblings under one parent form a cohort that lends idle quota."
        case .workload: "A Workload is one gang of identical replicas, admitted through a Queue and placed all at once on nodes with free GPUs."
        case .resourcePool: "A ResourcePool groups nodes (those labelled gantry.dev/resource-pool=NAME in kube mode); a Queue may place only on one pool."
        case .node: "A Node (directory mode only)."
        }
    }

    static func name(_ description: String) -> Schema { .string(description, pattern: dnsLabelPattern, maxLength: 63) }

    /// A pattern matching any of `words` in any letter case (RE2 and ECMA alike, no flags).
    static func caseInsensitive(_ words: [String]) -> String {
        let alts = words.map { w in w.map { c in c.isLetter ? "[\(c.lowercased())\(c.uppercased())]" : String(c) }.joined() }
        return "^(" + alts.joined(separator: "|") + ")$"
    }

    static var resourceNameRule: Schema.Validation {
        let names = ManifestDecoder.standardResources.map { "'\($0)'" }.joined(separator: ", ")
        return .init("self.all(k, k in [\(names)] || k.startsWith('hugepages-') || k.contains('/'))",
                     "a resource is gpu, cpu, memory, ephemeral-storage, storage, pods, hugepages-SIZE, or an extended resource with a domain prefix such as example.com/fpga")
    }
    /// CEL cost note (apiextensions-apiserver v1.28): map keys are estimated as short strings,
    /// but an int-or-string value as long as a whole request (3 MiB), so a regex over every
    /// value of a map exceeds the per-rule budget. Values are matched one named key at a time
    /// (`self['gpu']`, about 4M of the 10M budget each); the rest is left to the decoder.
    static func keyRule(_ key: String, pattern: String, _ message: String) -> Schema.Validation {
        .init("!('\(key)' in self) || type(self['\(key)']) == int || self['\(key)'].matches('\(pattern)')", message)
    }
    static let wholeGPURule = keyRule("gpu", pattern: wholeQuantityPattern, "gpu is a whole number")
    static let nonNegativeRule = Schema.Validation("self.all(k, type(self[k]) != int || int(self[k]) >= 0)", "amounts must not be negative")
    static let maxResources = 64

    /// `{gpu: 16, cpu: 256, memory: 2Ti}`: resource name -> non-negative quantity.
    static func resourceList(_ description: String) -> Schema {
        Schema.map(description, values: .intOrString(nil, pattern: quantityPattern), maxProperties: maxResources)
            .validated(resourceNameRule, wholeGPURule, nonNegativeRule)
    }

    /// A status sum as Gantry writes it: whole units as integers, else text (`1500m`).
    static func statusResources(_ description: String) -> Schema {
        Schema.map(description, values: .intOrString(nil, pattern: signedQuantityPattern))
    }

    static var conditions: Schema {
        var item = Schema.object(nil, [
            .init("type", .string("Type of the condition: Admitted, Running, Preempted, Finished (Workload); Ready (Queue, ResourcePool).", maxLength: 316)),
            .init("status", .string("True, False or Unknown.", enum: ["True", "False", "Unknown"])),
            .init("reason", .string("CamelCase reason for the last transition.", maxLength: 1024)),
            .init("message", .string("Human-readable detail.", maxLength: 32768)),
            .init("lastTransitionTime", .string("When status last changed (RFC 3339).", format: "date-time")),
            .init("observedGeneration", .integer("The metadata.generation the condition was set for.", minimum: 0, format: "int64")),
        ], required: ["type", "status"])
        item.description = "A status condition."
        var s = Schema.array("Conditions, one per type.", of: item, listType: "map")
        s.listMapKeys = ["type"]
        return s
    }

    static var observedGeneration: Schema { .integer("The metadata.generation this status was computed for.", minimum: 0, format: "int64") }
    static func count(_ d: String) -> Schema { .integer(d, minimum: 0) }
    static func time(_ d: String) -> Schema { .string(d, format: "date-time") }

    // MARK: Queue

    public static var queue: CRD {
        var spec = Schema.object("Desired state of the Queue.", [
            .init("parent", name("Parent queue; siblings under one parent form a cohort that lends idle quota.")),
            .init("description", .string("Free text.")),
            .init("resourcePool", name("Admitted workloads are placed only on this pool's nodes.")),
            .init("deserved", resourceList("Nominal share, e.g. {gpu: 16, cpu: 256, memory: 2Ti}.")),
            .init("guarantee", resourceList("Reserved for this queue; never lent to others. At most deserved.")),
            .init("capability", resourceList("Hard ceiling, borrowing included; absent means unlimited. At least deserved and guarantee.")),
            .init("reclaimable", .boolean("What it borrowed beyond deserved may be taken back by preemption.", default: true)),
            .init("disableOversell", .boolean("true: never use more than deserved (no borrowing).", default: false)),
            .init("queueingStrategy", .string("StrictFIFO: the head blocks the queue until it fits.", enum: QueueingStrategy.allCases.map(\.rawValue),
                                              default: QueueingStrategy.bestEffortFIFO.rawValue)),
            .init("state", .string("Closed: admit nothing new; running workloads go on.", enum: QueueState.allCases.map(\.rawValue), default: QueueState.open.rawValue)),
        ])
        spec.defaultValue = .object([])
        // Quantities compare here only where both are plain integers (CEL in v1.28 has no
        // quantity type); Gantry checks every amount and marks the Queue invalid otherwise.
        func notAbove(_ a: String, _ b: String) -> Schema.Validation {
            .init("!has(self.\(a)) || !has(self.\(b)) || self.\(a).all(k, !(k in self.\(b)) || type(self.\(a)[k]) != int || type(self.\(b)[k]) != int || int(self.\(a)[k]) <= int(self.\(b)[k]))",
                  "\(a) must not exceed \(b)")
        }
        spec.validations = [notAbove("guarantee", "deserved"), notAbove("deserved", "capability"), notAbove("guarantee", "capability")]
        let status = Schema.object("Observed state, written by Gantry.", [
            .init("state", .string("Open or Closed.", enum: QueueState.allCases.map(\.rawValue))),
            .init("deserved", statusResources("Deserved share in force.")),
            .init("allocated", statusResources("Sum of what its admitted workloads hold.")),
            .init("borrowed", statusResources("What it uses beyond deserved.")),
            .init("pending", count("Workloads waiting.")),
            .init("admitted", count("Workloads admitted.")),
            .init("running", count("Workloads running.")),
            .init("observedGeneration", observedGeneration),
            .init("conditions", conditions),
        ])
        return CRD(kind: .queue, shortNames: ["gq"], spec: spec, status: status, specRequired: false, printerColumns: [
            .init("DESERVED", "string", ".status.deserved.gpu", "Deserved GPUs"),
            .init("ALLOCATED", "string", ".status.allocated.gpu", "GPUs held by admitted workloads"),
            .init("BORROWED", "string", ".status.borrowed.gpu", "GPUs used beyond deserved"),
            .init("PENDING", "integer", ".status.pending", "Workloads waiting"),
            .init("ADMITTED", "integer", ".status.admitted", "Workloads admitted"),
            .init("RUNNING", "integer", ".status.running", "Workloads running", priority: 1),
            .init("STATE", "string", ".status.state", "Open or Closed", priority: 1),
            .init("PARENT", "string", ".spec.parent", "Parent queue (cohort)", priority: 1),
            .init("AGE", "date", ".metadata.creationTimestamp", "Time since creation"),
        ])
    }

    // MARK: ResourcePool

    public static var resourcePool: CRD {
        var spec = Schema.object("Desired state of the ResourcePool.", [.init("description", .string("Free text."))])
        spec.defaultValue = .object([])
        func usedTotal(_ d: String) -> Schema {
            .object(d, [.init("total", .integer("Total.", minimum: 0, format: "int64")), .init("used", .integer("In use.", minimum: 0, format: "int64"))])
        }
        let status = Schema.object("Observed state, written by Gantry.", [
            .init("phase", .string("Running.")),
            .init("nodeCount", usedTotal("Nodes in the pool and nodes running replicas.")),
            .init("gpuCount", usedTotal("GPUs in the pool and GPUs allocated.")),
            .init("observedGeneration", observedGeneration),
            .init("conditions", conditions),
        ])
        return CRD(kind: .resourcePool, shortNames: ["grp"], spec: spec, status: status, specRequired: false, printerColumns: [
            .init("PHASE", "string", ".status.phase", "Pool phase"),
            .init("NODES", "integer", ".status.nodeCount.total", "Nodes in the pool"),
            .init("USED-NODES", "integer", ".status.nodeCount.used", "Nodes running replicas"),
            .init("GPUS", "integer", ".status.gpuCount.total", "GPUs in the pool"),
            .init("USED-GPUS", "integer", ".status.gpuCount.used", "GPUs allocated"),
            .init("AGE", "date", ".metadata.creationTimestamp", "Time since creation"),
        ])
    }

    // MARK: Node

    /// Gantry's Node kind is directory-mode only. Its CRD exists so that a Node manifest
    /// applied to a cluster (`kubectl apply -f` of a directory-mode tree) is accepted and then
    /// ignored with a Warning event, instead of failing the whole apply: kube mode takes its
    /// nodes from the cluster's Nodes.
    public static var node: CRD {
        let spec = Schema.object("Directory mode only; ignored in kube mode (nodes are the cluster's Nodes).", [
            .init("resourcePool", name("The ResourcePool of the node.")),
            .init("capacity", resourceList("Capacity: gpu, cpu, memory and extended resources.")),
            .init("gpuType", .string("GPU model, e.g. H100.")),
            .init("gpuVendor", .string("nvidia or amd.", enum: GPUVendor.allCases.map(\.rawValue))),
            .init("unschedulable", .boolean("Admit nothing new on this node.")),
        ])
        let status = Schema.object("Observed state, written by Gantry in directory mode.", [
            .init("phase", .string("Ready or NotReady.")),
            .init("capacity", statusResources("Capacity.")),
            .init("allocated", statusResources("Allocated to admitted workloads.")),
            .init("workloads", count("Workloads with replicas here.")),
            .init("observedGeneration", observedGeneration),
            .init("conditions", conditions),
        ])
        return CRD(kind: .node, shortNames: ["gnode"], spec: spec, status: status, specRequired: false, printerColumns: [
            .init("AGE", "date", ".metadata.creationTimestamp", "Time since creation"),
        ])
    }

    // MARK: Workload

    public static var workload: CRD {
        let int32Max = Int64(Int32.max)
        var priority = Schema.intOrString("An integer (higher first), or low=-1, normal=0, high=1, highest=2.",
                                          pattern: caseInsensitive(WorkloadSpec.priorityNames.sorted { $0.value < $1.value }.map(\.key)))
        priority.defaultValue = .int(0)
        var resources = Schema.map("Per replica: {gpu: 8, cpu: \"32\", memory: 256Gi}, plus gpuType to ask for a GPU model.",
                                   values: .intOrString(nil), maxProperties: maxResources)
        // gpuType shares the map with the quantities, so the quantity syntax is a rule here.
        var names = resourceNameRule
        names.rule = names.rule.replacingAll("self.all(k, ", with: "self.all(k, k == 'gpuType' || ")
        names.message += ", or gpuType"
        resources.validations = [
            names,
            .init("!('gpuType' in self) || type(self['gpuType']) == string", "gpuType is a string such as H100"),
            wholeGPURule,
            keyRule("cpu", pattern: quantityPattern, "cpu is a quantity such as 8 or 500m"),
            keyRule("memory", pattern: quantityPattern, "memory is a quantity such as 64Gi"),
            nonNegativeRule,
        ]
        var env = Schema.map("Environment of every replica, {NAME: value}.", values: .string("Value."))
        env.validations = [.init("self.all(k, k.matches('^[-._a-zA-Z][-._a-zA-Z0-9]*$'))",
                                 "environment variable names are letters, digits, '_', '.', '-', not starting with a digit")]
        let nodes = Schema.array("If set: only these nodes, one replica each (replicas = their count).",
                                 of: .string("A node name.", pattern: dnsSubdomainPattern, maxLength: 253), maxItems: 10_000, listType: "set")
        var spec = Schema.object("Desired state of the Workload.", [
            .init("displayName", .string("Display name.")),
            .init("description", .string("Free text.")),
            .init("type", .string("Run-to-completion (PyTorchJob, MPIJob, Job) or service (Deployment, StatefulSet, Authoring).",
                                  enum: WorkloadType.allCases.map(\.rawValue), default: WorkloadType.job.rawValue)),
            .init("queue", { var s = name("The Queue it is admitted through."); s.defaultValue = .string("default"); return s }()),
            .init("priority", priority),
            .init("image", .string("Container image of every replica (required in kube mode).")),
            .init("command", .string("A shell command line (run as /bin/sh -c).")),
            .init("entryPoint", .string("Alternative to command: the base64 of a command line.", pattern: base64Pattern)),
            .init("args", .array("Appended to the command, each shell-quoted.", of: .string("An argument."))),
            .init("env", env),
            .init("replicas", .integer("Replicas in the gang; rank 0 is the master. Default 1, or the count of specifiedNodes.", minimum: 1, maximum: 10_000)),
            .init("resources", resources),
            .init("specifiedNodes", nodes),
            .init("timeout", .integer("Seconds of running before it is stopped; 0 = none.", minimum: 0, maximum: int32Max, default: 0)),
            .init("maxRetry", .integer("Restarts of the whole gang after a failure.", minimum: 0, maximum: 1000, default: 0)),
            .init("ttlSecondsAfterFinished", .integer("Seconds a finished workload is kept.", minimum: 0, maximum: int32Max)),
            .init("suspend", .boolean("true stops it (replicas stopped, quota released); false again requeues it.", default: false)),
        ])
        let nonEmpty = { (f: String) in "(has(self.\(f)) && size(self.\(f)) > 0)" }
        spec.validations = [
            .init("!(\(nonEmpty("command")) && \(nonEmpty("entryPoint")))", "set either command or entryPoint, not both"),
            .init("\(nonEmpty("command")) || \(nonEmpty("entryPoint")) || \(nonEmpty("image"))", "set command (or entryPoint, or image)"),
            .init("!has(self.specifiedNodes) || size(self.specifiedNodes) == 0 || !has(self.replicas) || self.replicas == size(self.specifiedNodes)",
                  "with specifiedNodes, replicas must equal their count (or be left out)"),
            .init("!has(self.type) || self.type != 'Authoring' || ((!has(self.replicas) || self.replicas == 1) && (!has(self.specifiedNodes) || size(self.specifiedNodes) <= 1))",
                  "an Authoring workload has exactly 1 replica"),
        ]
        let gpus = Schema.array("GPU indices on the node.", of: .integer("A GPU index.", minimum: 0))
        let assignment = Schema.object("Where one replica is placed.", [
            .init("rank", .integer("Replica rank; 0 is the master.", minimum: 0)),
            .init("node", .string("Node name.")),
            .init("gpus", gpus),
        ])
        var exitCode = Schema.integer("Exit code once it ended; null while running.")
        exitCode.nullable = true
        let replica = Schema.object("One replica as observed.", [
            .init("name", .string("Replica (process or Pod) name.")),
            .init("rank", .integer("Replica rank.", minimum: 0)),
            .init("node", .string("Node name.")),
            .init("phase", .string("Replica phase.")),
            .init("gpus", gpus),
            .init("gpuCount", count("GPUs of the replica when their indices are the device plugin's (kube mode); gpus is empty then.")),
            .init("pid", .integer("Process id (directory mode).")),
            .init("startTime", time("When it started.")),
            .init("exitCode", exitCode),
            .init("restarts", count("Restarts of this replica.")),
        ])
        let status = Schema.object("Observed state, written by Gantry.", [
            .init("phase", .string("Workload phase.", enum: WorkloadPhase.allCases.map(\.rawValue))),
            .init("message", .string("Human-readable detail.")),
            .init("queuePosition", .integer("While Pending: 0-based position in its queue.", minimum: 0)),
            .init("admission", .object("The admission in force: queue and placement per rank.", [
                .init("queue", .string("Queue that admitted it.")),
                .init("replicas", .array("Placement per rank.", of: assignment)),
            ])),
            .init("replicas", .array("Replicas as observed.", of: replica)),
            .init("override", .object("A suspend value set with gantry stop/resume, in force while the spec keeps generation.", [
                .init("suspend", .boolean("The suspend value in force.")),
                .init("generation", .integer("Spec generation it applies to.", format: "int64")),
                .init("at", time("When it was set.")),
                .init("by", .string("Who set it.")),
            ])),
            .init("dispatchCount", count("Times it was started.")),
            .init("retryCount", count("Gang restarts after failures.")),
            .init("creationTime", time("When Gantry first saw it.")),
            .init("startTime", time("When it last started running.")),
            .init("endTime", time("When it finished.")),
            .init("observedGeneration", observedGeneration),
            .init("conditions", conditions),
        ])
        return CRD(kind: .workload, shortNames: ["wl"], spec: spec, status: status, specRequired: true, printerColumns: [
            .init("TYPE", "string", ".spec.type", "Workload type"),
            .init("QUEUE", "string", ".spec.queue", "Queue"),
            .init("PRIORITY", "string", ".spec.priority", "Priority (name or number)"),
            .init("PHASE", "string", ".status.phase", "Phase"),
            .init("GPUS", "string", ".spec.resources.gpu", "GPUs per replica"),
            .init("POSITION", "integer", ".status.queuePosition", "Position in its queue while Pending"),
            .init("REPLICAS", "integer", ".spec.replicas", "Replicas", priority: 1),
            .init("NODE", "string", ".status.admission.replicas[0].node", "Node of rank 0", priority: 1),
            .init("REASON", "string", ".status.conditions[?(@.type==\"Admitted\")].reason", "Reason of the Admitted condition", priority: 1),
            .init("AGE", "date", ".metadata.creationTimestamp", "Time since creation"),
        ])
    }
}
