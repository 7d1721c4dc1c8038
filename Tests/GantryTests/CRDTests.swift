import Testing
import Foundation
@testable import GantryAPI
@testable import GantryCLI
import YAMLCodec

extension CRD: CustomTestStringConvertible {
    public var testDescription: String { kind.rawValue }
}

/// The kube-mode CRDs must not drift from the Swift model: the committed files are the output
/// of `gantry crds`, every schema field decodes, every decoder field is in the schema, the
/// status schema covers everything the status encoder writes, and the examples validate.
@Suite(.timeLimit(.minutes(1)))
struct CRDTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ rel: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(rel), encoding: .utf8)
    }

    // MARK: (1) committed files = generated output

    @Test func committedCRDsAreTheGeneratedOutput() throws {
        for crd in CRDs.all {
            let committed = try CRDTests.read("Manifests/crds/" + crd.fileName)
            let same = committed == CRDsCommand.render(crd)
            #expect(same, "Manifests/crds/\(crd.fileName) differs from `gantry crds`; regenerate with: swift run gantry crds --dir Manifests/crds")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: CRDTests.root.appendingPathComponent("Manifests/crds").path)
        #expect(Set(files) == Set(CRDs.all.map(\.fileName) + ["kustomization.yaml"]), "Manifests/crds holds exactly the generated CRDs and the kustomization")
        let k = try YAMLParser.parse(CRDTests.read("Manifests/crds/kustomization.yaml"))
        let resources = k.first?.root?.toValue()["resources"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(resources == CRDs.all.map(\.fileName))
    }

    @Test func everyGantryKindHasACRD() {
        // Node's only makes a directory-mode Node applied to a cluster a Warning, not an error.
        #expect(Set(CRDs.all.map(\.kind)) == Set(Kind.allCases))
        #expect(CRDs.queue.shortNames == ["gq"] && CRDs.workload.shortNames == ["wl"] && CRDs.resourcePool.shortNames == ["grp"])
        for crd in CRDs.all { #expect(crd.kind.isNamespaced == (crd.kind == .workload)) }
        #expect(CRDs.queue.printerColumns.filter { $0.priority == 0 }.map(\.name) == ["DESERVED", "ALLOCATED", "BORROWED", "PENDING", "ADMITTED", "AGE"])
        #expect(CRDs.workload.printerColumns.filter { $0.priority == 0 }.map(\.name) == ["TYPE", "QUEUE", "PRIORITY", "PHASE", "GPUS", "POSITION", "AGE"])
    }

    // MARK: structural

    @Test func schemasAreStructural() throws {
        for crd in CRDs.all {
            var problems: [String] = []
            CRDTests.checkStructural(crd.openAPIV3Schema, path: crd.kind.rawValue, &problems)
            #expect(problems.isEmpty, "\(problems)")
            for c in crd.printerColumns {
                #expect(CRDTests.resolve(c.jsonPath, in: crd.openAPIV3Schema) != nil, "\(crd.kind) column \(c.name): \(c.jsonPath) names no schema field")
                #expect(["string", "integer", "date", "boolean", "number"].contains(c.type))
            }
        }
    }

    static func checkStructural(_ s: Schema, path: String, _ problems: inout [String]) {
        if s.type == nil && !s.intOrString { problems.append("\(path): no type") }
        if s.type == .array && s.items == nil { problems.append("\(path): array without items") }
        if !s.properties.isEmpty && s.additionalProperties != nil { problems.append("\(path): properties and additionalProperties") }
        if let p = s.pattern, (try? NSRegularExpression(pattern: p)) == nil { problems.append("\(path): pattern does not compile") }
        for r in s.required where s[property: r] == nil { problems.append("\(path): required \(r) is not a property") }
        if let d = s.defaultValue {
            var errs: [String] = []
            validate(d, s, path, &errs)
            problems += errs.map { "default: " + $0 }
        }
        if s.listType == "map" {
            if s.listMapKeys.isEmpty { problems.append("\(path): list-type map without keys") }
            for k in s.listMapKeys where !(s.items?.required.contains(k) ?? false) { problems.append("\(path): map key \(k) not required") }
        }
        for p in s.properties { checkStructural(p.schema, path: path + "." + p.name, &problems) }
        if let i = s.items { checkStructural(i, path: path + "[]", &problems) }
        if let a = s.additionalProperties { checkStructural(a, path: path + ".*", &problems) }
    }

    /// The schema a printer-column JSONPath points at (`[0]` and `[?(...)]` step into items).
    static func resolve(_ jsonPath: String, in root: Schema) -> Schema? {
        guard jsonPath.hasPrefix(".") else { return nil }
        var s = root
        for seg in jsonPath.dropFirst().split(separator: ".", omittingEmptySubsequences: false) where !seg.hasPrefix("type==") {
            var name = Substring(seg), index = false
            if let b = seg.firstIndex(of: "[") { name = seg[..<b]; index = true }
            if name.hasSuffix("\")]") || name.isEmpty { continue }
            if s.type == .object && s.properties.isEmpty && s.additionalProperties == nil { return s }   // metadata
            guard let next = s[property: String(name)] ?? s.additionalProperties else { return nil }
            s = next
            if index { guard let i = s.items else { return nil }; s = i }
        }
        return s
    }

    // MARK: (2) schema <-> decoder

    static func manifest(_ kind: Kind, spec: Value) -> Value {
        var meta: [Value.Member] = [.init("name", .string("x"))]
        if kind.isNamespaced { meta.append(.init("namespace", .string("team-a"))) }
        return .object([.init("apiVersion", .string(gantryAPIVersion)), .init("kind", .string(kind.rawValue)),
                        .init("metadata", .object(meta)), .init("spec", spec)])
    }

    static func decode(_ v: Value) -> (obj: ManifestObject?, errors: [FieldError], warnings: [FieldError]) {
        let f = ManifestFile.decode(path: "crd.yaml", bytes: Array(YAMLEmitter.emit([v]).utf8), fieldValidation: .strict)
        let obj = f.objects.first
        return (obj, (f.fatal.map { [$0] } ?? []) + f.errors + (obj?.invalid ?? []), f.warnings)
    }

    /// The smallest spec the decoder accepts for a kind (a Workload needs a command).
    static func base(_ kind: Kind) -> [Value.Member] { kind == .workload ? [.init("command", .string("true"))] : [] }

    /// A value the schema accepts: the first candidate that validates.
    static func sample(_ s: Schema, path: String) -> Value {
        if let e = s.enumValues.last { return .string(e) }
        switch s.type {
        case .object:
            if let a = s.additionalProperties {
                let keys = a.intOrString ? ["gpu", "example.com/fpga"] : ["SAMPLE_NAME"]
                return .object(keys.map { .init($0, sample(a, path: path + ".*")) })
            }
            return .object(s.properties.map { .init($0.name, sample($0.schema, path: path + "." + $0.name)) })
        case .array: return .array([sample(s.items ?? Schema(type: .string), path: path + "[]")])
        case .boolean: return .bool(true)
        case .integer: return .int(max(s.minimum ?? 1, min(1, s.maximum ?? 1)))
        default: break
        }
        if s.pattern == CRDs.base64Pattern { return .string("dHJ1ZQ==") }   // "true"
        let candidates: [Value] = (s.intOrString ? [.int(1)] : []) + ["abc", "high", "2026-01-15T10:31:00Z", "1"].map { .string($0) }
        return candidates.first { c in var e: [String] = []; validate(c, s, path, &e); return e.isEmpty } ?? .string("abc")
    }

    @Test(arguments: CRDs.all)
    func everySchemaFieldDecodesWithoutError(_ crd: CRD) {
        for p in crd.spec.properties {
            var spec = CRDTests.base(crd.kind).filter { $0.key != p.name && !(p.name == "entryPoint" && $0.key == "command") }
            spec.append(.init(p.name, CRDTests.sample(p.schema, path: "spec." + p.name)))
            let m = CRDTests.manifest(crd.kind, spec: .object(spec))
            var schemaErrors: [String] = []
            CRDTests.validate(m, crd.openAPIV3Schema, "", &schemaErrors)
            #expect(schemaErrors.isEmpty, "\(crd.kind) spec.\(p.name): sample rejected by the schema: \(schemaErrors)")
            let d = CRDTests.decode(m)
            #expect(d.obj != nil && d.errors.isEmpty && d.warnings.isEmpty, "\(crd.kind) spec.\(p.name): \(d.errors.map(\.message)) \(d.warnings.map(\.message))")
        }
    }

    /// Fields the decoder accepts that the CRD deliberately leaves out: `spec.kind` is an alias
    /// of `spec.type`; with the schema default `type: Job` the two would disagree.
    static let decoderOnly: [Kind: Set<String>] = [.workload: ["kind"]]

    @Test(arguments: CRDs.all)
    func everyDecoderFieldIsInTheSchema(_ crd: CRD) {
        let level = ManifestDecoder.FieldLevel.spec(of: crd.kind)
        let schemaFields = Set(crd.spec.properties.map(\.name))
        #expect(Set(level.known) == schemaFields, "\(crd.kind): decoder table \(level.known.sorted()) vs schema \(schemaFields.sorted())")
        // Probe beyond the table: names the decoder has hints for, aliases, near misses.
        var candidates = Set(level.known + ["kind", "name", "namespace", "labels", "annotations", "status", "resource", "envs", "flavour",
                                            "schedulingPolicy", "framework", "jobSpec", "parentQueue", "members", "gpuType", "capacity"])
        for k in ManifestDecoder.FieldLevel.workloadSpec.known + ManifestDecoder.FieldLevel.queueSpec.known { candidates.insert(k) }
        var accepted = Set<String>()
        for key in candidates {
            var spec = CRDTests.base(crd.kind)
            let value: Value = key == "kind" || key == "type" ? .string("Job") : crd.spec[property: key].map { CRDTests.sample($0, path: key) } ?? .string("abc")
            if key == "entryPoint" { spec = [] }
            spec.append(.init(key, value))
            let d = CRDTests.decode(CRDTests.manifest(crd.kind, spec: .object(spec)))
            if !d.errors.contains(where: { $0.path == "spec." + key && $0.message.hasPrefix("unknown field") }) { accepted.insert(key) }
        }
        #expect(accepted == schemaFields.union(CRDTests.decoderOnly[crd.kind] ?? []), "\(crd.kind) accepted: \(accepted.sorted())")
    }

    @Test func resourceNamesFollowTheDecoder() {
        for name in ManifestDecoder.standardResources { #expect(CRDs.resourceNameRule.rule.contains("'\(name)'")) }
        // gpuType rides in the Workload's resources map; the rule lets it through.
        #expect(CRDs.workload.spec[property: "resources"]?.validations.first?.rule.contains("k == 'gpuType'") == true)
        #expect(ManifestDecoder.FieldLevel.workloadResources.known.contains("gpuType"))
    }

    @Test(arguments: CRDs.all)
    func enumsRangesAndPatternsAgreeWithTheDecoder(_ crd: CRD) {
        for p in crd.spec.properties {
            let s = p.schema
            func check(_ v: Value, ok: Bool, _ what: String) {
                var spec = CRDTests.base(crd.kind).filter { $0.key != p.name }; spec.append(.init(p.name, v))
                let d = CRDTests.decode(CRDTests.manifest(crd.kind, spec: .object(spec)))
                let decoderOK = !d.errors.contains { $0.path.hasPrefix("spec." + p.name) }
                var e: [String] = []; CRDTests.validate(v, s, p.name, &e)
                #expect(decoderOK == ok, "\(crd.kind) spec.\(p.name) = \(v) (\(what)): decoder \(d.errors.map(\.message))")
                #expect(e.isEmpty == ok, "\(crd.kind) spec.\(p.name) = \(v) (\(what)): schema \(e)")
            }
            for e in s.enumValues { check(.string(e), ok: true, "enum") }
            if !s.enumValues.isEmpty { check(.string("Bogus"), ok: false, "not in enum") }
            if s.type == .integer {
                if let lo = s.minimum { check(.int(lo), ok: true, "minimum"); check(.int(lo - 1), ok: false, "below minimum") }
                if let hi = s.maximum { check(.int(hi), ok: true, "maximum"); check(.int(hi + 1), ok: false, "above maximum") }
            }
            if s.pattern == CRDs.dnsLabelPattern {
                check(.string("ok-name-1"), ok: true, "DNS label")
                check(.string("Bad_Name"), ok: false, "not a DNS label")
                check(.string(String(repeating: "a", count: 64)), ok: false, "longer than 63")
            }
        }
        if crd.kind == .workload {
            let pr = crd.spec[property: "priority"]!
            for v: Value in [.int(-5), .int(100), .string("high"), .string("Highest"), .string("LOW")] {
                var e: [String] = []; CRDTests.validate(v, pr, "priority", &e); #expect(e.isEmpty, "\(v)")
                let d = CRDTests.decode(CRDTests.manifest(.workload, spec: .object(CRDTests.base(.workload) + [.init("priority", v)])))
                #expect(d.errors.isEmpty, "\(v): \(d.errors.map(\.message))")
            }
            var e: [String] = []; CRDTests.validate(.string("urgent"), pr, "priority", &e); #expect(!e.isEmpty)
            let res = crd.spec[property: "resources"]!
            #expect(res.additionalProperties?.intOrString == true)
        }
        // Quantities: what the pattern accepts, Quantity.parse accepts (and the reverse for these).
        let pattern = try! NSRegularExpression(pattern: CRDs.quantityPattern)
        for q in ["8", "500m", "64Gi", "1Ti", "2e3", "1.5", "+3", ".5", "1E2", "0", "7k"] {
            #expect(CRDTests.matches(pattern, q) && (try? Quantity.parse(q)) != nil, "\(q)")
        }
        for q in ["-1", "eight", "1.5.5", "Gi", "", "1 Gi", "1gi"] { #expect(!CRDTests.matches(pattern, q), "\(q)") }
    }

    @Test(arguments: CRDs.all)
    func schemaDefaultsAreTheDecoderDefaults(_ crd: CRD) throws {
        let bare = CRDTests.decode(CRDTests.manifest(crd.kind, spec: .object(CRDTests.base(crd.kind))))
        let bareSpec = try #require(bare.obj).spec
        var withDefaults = CRDTests.base(crd.kind)
        for p in crd.spec.properties {
            guard let d = p.schema.defaultValue else { continue }
            #expect(bareSpec.toValue()[p.name] == d, "\(crd.kind) spec.\(p.name): schema default \(d), decoder \(String(describing: bareSpec.toValue()[p.name]))")
            withDefaults.append(.init(p.name, d))
        }
        let defaulted = CRDTests.decode(CRDTests.manifest(crd.kind, spec: .object(withDefaults)))
        #expect(defaulted.errors.isEmpty)
        #expect(defaulted.obj?.spec == bareSpec, "the API server's defaulting must not change what Gantry decodes")
        // Replicas has no schema default: the decoder's default depends on specifiedNodes.
        if crd.kind == .workload { #expect(crd.spec[property: "replicas"]?.defaultValue == nil) }
    }

    // MARK: (3) status schema = what the encoder writes

    static let t = Timestamp(seconds: 1_768_473_060)
    static var condition: Condition { Condition(type: "Admitted", status: "True", reason: "QuotaReserved", message: "m", lastTransitionTime: t, observedGeneration: 3) }

    static var fullStatuses: [(Kind, Value)] {
        var w = WorkloadStatus()
        w.phase = .running; w.message = "running"; w.queuePosition = 0; w.admissionQueue = "research"
        w.admission = [ReplicaAssignment(rank: 0, node: "node-001", gpus: [0, 1])]
        w.replicas = [ReplicaStatus(name: "x-worker-0", rank: 0, node: "node-001", phase: "Running", gpus: [0, 1], pid: 42, startTime: t, exitCode: 0, restarts: 1),
                      ReplicaStatus(name: "x-worker-1", rank: 1, node: "node-002", phase: "Running", gpus: [0], startTime: t),
                      ReplicaStatus(name: "x-worker-2", rank: 2, node: "node-003", phase: "Running", gpus: [], startTime: t, gpuCount: 2)]
        w.override = SuspendOverride(suspend: true, generation: 2, at: t, by: "alice")
        w.dispatchCount = 1; w.retryCount = 1; w.creationTime = t; w.startTime = t; w.endTime = t; w.observedGeneration = 3
        w.conditions = [condition, Condition(type: "Running", status: "False", reason: "ReplicaRestarting", message: "", lastTransitionTime: t, observedGeneration: 3)]
        var q = QueueStatus()
        q.state = .closed; q.pending = 1; q.admitted = 2; q.running = 2; q.observedGeneration = 1; q.conditions = [condition]
        q.deserved = ResourceList(["gpu": Quantity(units: 16), "cpu": Quantity(milli: 1500), "memory": Quantity(units: 1 << 40)])
        q.allocated = q.deserved; q.borrowed = ResourceList(["gpu": Quantity(units: 2)])
        var p = ResourcePoolStatus()
        p.nodeCount = UsedTotal(total: 3, used: 1); p.gpuCount = UsedTotal(total: 24, used: 8); p.observedGeneration = 1; p.conditions = [condition]
        var n = NodeStatus()
        n.phase = "Ready"; n.capacity = q.deserved; n.allocated = q.borrowed; n.workloads = 2; n.observedGeneration = 1; n.conditions = [condition]
        return [(.workload, w.toValue()), (.queue, q.toValue()), (.resourcePool, p.toValue()), (.node, n.toValue()),
                (.workload, WorkloadStatus().toValue()), (.queue, QueueStatus().toValue()), (.resourcePool, ResourcePoolStatus().toValue())]
    }

    @Test func statusSchemaCoversEveryKeyTheEncoderWrites() throws {
        var written: [Kind: Set<String>] = [:]
        for (kind, v) in CRDTests.fullStatuses {
            let crd = try #require(CRDs.crd(for: kind))
            var errors: [String] = []
            CRDTests.validate(v, crd.status, "status", &errors)
            #expect(errors.isEmpty, "\(kind): \(errors)")
            CRDTests.paths(v, crd.status, "status", into: &written[kind, default: []])
        }
        for crd in CRDs.all {
            var listed = Set<String>()
            CRDTests.schemaPaths(crd.status, "status", into: &listed)
            let missing = listed.subtracting(written[crd.kind] ?? [])
            #expect(missing.isEmpty, "\(crd.kind): the status schema lists fields Gantry never writes: \(missing.sorted())")
        }
    }

    /// Key paths of a value, map keys as `*`, list items as `[]`.
    static func paths(_ v: Value, _ s: Schema, _ path: String, into out: inout Set<String>) {
        out.insert(path)
        switch v {
        case .object(let members):
            for m in members {
                if let p = s[property: m.key] { paths(m.value, p, path + "." + m.key, into: &out) }
                else if let a = s.additionalProperties { paths(m.value, a, path + ".*", into: &out) }
                else { out.insert(path + "." + m.key) }
            }
        case .array(let items): for i in items { paths(i, s.items ?? Schema(type: nil), path + "[]", into: &out) }
        default: break
        }
    }

    static func schemaPaths(_ s: Schema, _ path: String, into out: inout Set<String>) {
        out.insert(path)
        for p in s.properties { schemaPaths(p.schema, path + "." + p.name, into: &out) }
        if let i = s.items { schemaPaths(i, path + "[]", into: &out) }
        if let a = s.additionalProperties { schemaPaths(a, path + ".*", into: &out) }
    }

    // MARK: examples

    @Test func examplesValidateAgainstTheCRDs() throws {
        let dir = CRDTests.root.appendingPathComponent("Manifests/examples")
        let files = (FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String } ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(!files.isEmpty)
        var withoutCRD: [String] = [], validated = 0
        for f in files {
            for doc in try YAMLParser.parse(String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)) {
                guard let v = doc.root?.toValue(), let kindName = v["kind"]?.stringValue, let kind = Kind(rawValue: kindName) else { continue }
                guard let crd = CRDs.crd(for: kind) else { withoutCRD.append("\(f): \(kindName) \(v["metadata"]?["name"]?.stringValue ?? "")"); continue }
                var errors: [String] = []
                CRDTests.validate(v, crd.openAPIV3Schema, "", &errors)
                #expect(errors.isEmpty, "\(f): \(errors)")
                validated += 1
            }
        }
        #expect(validated >= 8)
        // Node is directory-mode only; kube mode reads core Nodes. These docs fail on a cluster
        // ("no matches for kind Node") while the others apply.
        #expect(withoutCRD.allSatisfy { $0.contains(": Node ") }, "\(withoutCRD)")
    }

    @Test func theValidatorRejectsWhatTheAPIServerWould() {
        let s = CRDs.workload.openAPIV3Schema
        func errors(_ spec: [Value.Member]) -> [String] { var e: [String] = []; CRDTests.validate(CRDTests.manifest(.workload, spec: .object(spec)), s, "", &e); return e }
        #expect(errors([.init("command", .string("x"))]).isEmpty)
        #expect(!errors([.init("command", .string("x")), .init("replicas", .string("2"))]).isEmpty)
        #expect(!errors([.init("command", .string("x")), .init("bogus", .int(1))]).isEmpty)
        #expect(!errors([.init("command", .string("x")), .init("type", .string("CronJob"))]).isEmpty)
        #expect(!errors([.init("command", .string("x")), .init("specifiedNodes", .array([.string("a"), .string("a")]))]).isEmpty)
        var e: [String] = []; CRDTests.validate(CRDTests.manifest(.queue, spec: .object([.init("deserved", .object([.init("gpu", .string("-1"))]))])), CRDs.queue.openAPIV3Schema, "", &e)
        #expect(!e.isEmpty)
    }

    // MARK: deploy/

    static func deployDocuments() throws -> [(file: String, value: Value)] {
        let dir = root.appendingPathComponent("deploy")
        var out: [(String, Value)] = []
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() where f.hasSuffix(".yaml") {
            for doc in try YAMLParser.parse(String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)) {
                if let v = doc.root?.toValue() { out.append((f, v)) }
            }
        }
        return out
    }

    @Test func deployManifestsParseAndKustomizationListsThem() throws {
        let docs = try CRDTests.deployDocuments()
        var kinds: [String] = []
        for (f, v) in docs {
            let kind = v["kind"]?.stringValue ?? ""
            #expect(v["apiVersion"]?.stringValue?.isEmpty == false, "\(f): apiVersion")
            if kind == "Kustomization" {
                let resources = v["resources"]?.arrayValue?.compactMap(\.stringValue) ?? []
                for r in resources {
                    #expect(FileManager.default.fileExists(atPath: CRDTests.root.appendingPathComponent("deploy/" + r).path), "kustomization names \(r)")
                }
                #expect(resources.contains("../Manifests/crds"))
                #expect(v["namespace"]?.stringValue == "gantry-system")
                continue
            }
            #expect(v["metadata"]?["name"]?.stringValue?.isEmpty == false, "\(f): metadata.name")
            kinds.append(kind)
        }
        #expect(Set(kinds) == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"])
    }

    @Test func rbacIsLeastPrivilege() throws {
        let docs = try CRDTests.deployDocuments().map(\.value)
        let clusterRoles = docs.filter { $0["kind"]?.stringValue == "ClusterRole" }
        let roles = docs.filter { $0["kind"]?.stringValue == "Role" }
        #expect(clusterRoles.count == 1 && roles.count == 1)
        let allowed: [String: Set<String>] = [   // group/resource -> verbs Gantry uses
            "gantry.dev/workloads": ["get", "list", "watch", "update", "patch"], "gantry.dev/queues": ["get", "list", "watch", "update", "patch"],
            "gantry.dev/resourcepools": ["get", "list", "watch", "update", "patch"],
            "gantry.dev/workloads/status": ["get", "update", "patch"], "gantry.dev/queues/status": ["get", "update", "patch"],
            "gantry.dev/resourcepools/status": ["get", "update", "patch"], "gantry.dev/workloads/finalizers": ["update"],
            "/pods": ["get", "list", "watch", "create", "delete"], "/pods/log": ["get"], "/services": ["get", "list", "watch", "create", "delete"],
            "/nodes": ["get", "list", "watch"], "/events": ["create", "patch"], "gantry.dev/nodes": ["get", "list", "watch"],
        ]
        for role in clusterRoles + roles {
            for rule in role["rules"]?.arrayValue ?? [] {
                let groups = rule["apiGroups"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let resources = rule["resources"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let verbs = rule["verbs"]?.arrayValue?.compactMap(\.stringValue) ?? []
                #expect(!(groups + resources + verbs).contains { $0.contains("*") }, "no wildcards: \(rule)")
                #expect(rule["nonResourceURLs"] == nil)
                for g in groups { for r in resources {
                    let key = g + "/" + r
                    if role["kind"]?.stringValue == "Role" {
                        #expect(key == "coordination.k8s.io/leases" && Set(verbs) == ["get", "create", "update"], "\(key) \(verbs)")
                        #expect(role["metadata"]?["namespace"]?.stringValue == "gantry-system")
                    } else {
                        #expect(allowed[key].map { Set(verbs).isSubset(of: $0) } == true, "ClusterRole grants \(verbs) on \(key)")
                    }
                } }
            }
        }
    }

    @Test func deploymentIsHardened() throws {
        let d = try #require(try CRDTests.deployDocuments().map(\.value).first { $0["kind"]?.stringValue == "Deployment" })
        #expect(d["spec"]?["replicas"]?.intValue == 2)
        let pod = try #require(d["spec"]?["template"]?["spec"])
        #expect(pod["securityContext"]?["runAsNonRoot"]?.boolValue == true)
        #expect(pod["securityContext"]?["runAsUser"]?.intValue == 65532)
        #expect(pod["securityContext"]?["seccompProfile"]?["type"]?.stringValue == "RuntimeDefault")
        let c = try #require(pod["containers"]?.arrayValue?.first)
        #expect(c["args"]?.arrayValue?.compactMap(\.stringValue) == ["run", "--kube", "--metrics-addr", ":8080", "--leader-elect"])
        #expect(c["securityContext"]?["readOnlyRootFilesystem"]?.boolValue == true)
        #expect(c["securityContext"]?["allowPrivilegeEscalation"]?.boolValue == false)
        #expect(c["securityContext"]?["capabilities"]?["drop"]?.arrayValue == [.string("ALL")])
        #expect(c["livenessProbe"]?["httpGet"]?["path"]?.stringValue == "/healthz")
        #expect(c["readinessProbe"]?["httpGet"]?["path"]?.stringValue == "/readyz")
        #expect(c["resources"]?["requests"] != nil && c["resources"]?["limits"] != nil)
        let env = c["env"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(env.contains("POD_NAME") && env.contains("POD_NAMESPACE"))
        #expect(pod["volumes"]?.arrayValue?.contains { $0["emptyDir"] != nil } == true)
    }

    // MARK: a small structural-schema validator (what the API server checks, CEL aside)

    static func matches(_ re: NSRegularExpression, _ s: String) -> Bool {
        re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    static func validate(_ v: Value, _ s: Schema, _ path: String, _ errors: inout [String]) {
        if case .null = v { if !s.nullable { errors.append("\(path): null") }; return }
        func string(_ str: String) {
            if !s.enumValues.isEmpty && !s.enumValues.contains(str) { errors.append("\(path): \"\(str)\" not in \(s.enumValues)") }
            if let p = s.pattern, let re = try? NSRegularExpression(pattern: p), !matches(re, str) { errors.append("\(path): \"\(str)\" does not match \(p)") }
            if let m = s.maxLength, str.count > m { errors.append("\(path): longer than \(m)") }
            if s.format == "date-time" && Timestamp(rfc3339: str) == nil { errors.append("\(path): not a date-time") }
        }
        if s.intOrString {
            switch v {
            case .int: break
            case .string(let str): string(str)
            default: errors.append("\(path): expected an integer or a string")
            }
            return
        }
        switch (s.type, v) {
        case (.string, .string(let str)): string(str)
        case (.integer, .int(let i)):
            if let lo = s.minimum, i < lo { errors.append("\(path): \(i) below \(lo)") }
            if let hi = s.maximum, i > hi { errors.append("\(path): \(i) above \(hi)") }
        case (.boolean, .bool): break
        case (.array, .array(let items)):
            if let m = s.maxItems, items.count > m { errors.append("\(path): more than \(m) items") }
            if s.listType == "set" && Set(items.map { "\($0)" }).count != items.count { errors.append("\(path): duplicate items in a set") }
            if s.listType == "map" {
                let keys = items.map { i in s.listMapKeys.map { i[$0].map { "\($0)" } ?? "" } }
                if Set(keys.map { $0.joined(separator: "/") }).count != keys.count { errors.append("\(path): duplicate map-list keys") }
            }
            for (n, i) in items.enumerated() { validate(i, s.items ?? Schema(type: nil), "\(path)[\(n)]", &errors) }
        case (.object, .object(let members)):
            if s.properties.isEmpty && s.additionalProperties == nil {   // metadata: the API server's own
                for m in members where ["labels", "annotations"].contains(m.key) {
                    for l in m.value.members ?? [] where l.value.stringValue == nil { errors.append("\(path).\(m.key).\(l.key): not a string") }
                }
                return
            }
            if let m = s.maxProperties, members.count > m { errors.append("\(path): more than \(m) properties") }
            for r in s.required where !members.contains(where: { $0.key == r }) { errors.append("\(path): \(r) is required") }
            for m in members {
                let sub = path.isEmpty ? m.key : path + "." + m.key
                if let p = s[property: m.key] { validate(m.value, p, sub, &errors) }
                else if let a = s.additionalProperties { validate(m.value, a, sub, &errors) }
                else { errors.append("\(sub): unknown field") }
            }
        default: errors.append("\(path): expected \(s.type?.rawValue ?? "?"), got \(v)")
        }
    }
}
