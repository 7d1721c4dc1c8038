import GantryAPI
import YAMLCodec
import DirectorySource
import Scheduler

/// Fuzz target over manifest bytes: the YAML parser, the manifest decoder and its validation
/// exactly as the directory source calls them (`ManifestFile.decode`, lenient and strict),
/// then what the daemon does next with each object: the manifest index, the stored JSON
/// form and the scheduler's request. Crashes are the main finding; the checks below are
/// contracts the README states, each returned as a message naming what broke.
public enum ManifestFuzz {
    static let path = "fuzz/manifest.yaml"

    public static func check(_ bytes: [UInt8], avoid: Set<String> = envAvoid) -> String? {
        let lenient = ManifestFile.decode(path: path, bytes: bytes, fieldValidation: .ignore)
        let strict = ManifestFile.decode(path: path, bytes: bytes, fieldValidation: .strict)

        // Strict mode turns unknown fields into errors; it never accepts more than lenient.
        if (lenient.fatal == nil) != (strict.fatal == nil) { return "strict and lenient disagree on whether the file parses" }
        if lenient.objects.map(\.key) != strict.objects.map(\.key) { return "strict and lenient decode different objects" }
        if strict.errors.count < lenient.errors.count { return "strict mode rejects fewer documents than lenient" }
        for (a, b) in zip(lenient.objects, strict.objects) where a.invalid.count > b.invalid.count {
            return "\(a.key): strict mode reports fewer spec errors (\(b.invalid.count)) than lenient (\(a.invalid.count))"
        }
        if lenient.fatal != nil && !lenient.objects.isEmpty { return "a file that does not parse still declares objects" }
        for e in [lenient.fatal].compactMap({ $0 }) + lenient.errors + lenient.warnings + lenient.objects.flatMap(\.invalid) {
            if e.file != path || e.line < 0 || e.message.isEmpty { return "malformed error report: \(e)" }
        }

        for obj in lenient.objects {
            if let problem = checkObject(obj) { return "\(obj.key): \(problem)" }
        }

        // The index: the same decode applied twice changes nothing; removing the file
        // deletes every object it declared.
        var index = ManifestIndex()
        let first = index.update(lenient)
        let upserts = first.reduce(0) { if case .upsert = $1 { return $0 + 1 }; return $0 }
        if upserts != index.objectCount { return "index: \(upserts) upserts for \(index.objectCount) objects" }
        let again = index.update(lenient)
        if again.count != 1 { return "index: re-applying an unchanged file reported \(again.count - 1) changes" }
        let removed = index.remove(path: path)
        let deletes = removed.reduce(0) { if case .delete = $1 { return $0 + 1 }; return $0 }
        if deletes != upserts || index.objectCount != 0 { return "index: removing the file deleted \(deletes) of \(upserts) objects" }

        admit(lenient.objects, avoid: avoid)
        return nil
    }

    /// Hands the objects to a scheduler as the admission controller does (queues with their
    /// validity, nodes ready only when valid, valid unsuspended workloads), then runs a cycle:
    /// what a manifest can make the daemon's admission do.
    static func admit(_ objects: [ManifestObject], avoid: Set<String>) {
        let state = SchedulerState()
        var seen = Set<ObjectKey>()
        for obj in objects where seen.insert(obj.key).inserted {
            switch obj.spec {
            case .queue(let q):
                if avoid.contains("overflow") && tooLarge([q.deserved, q.guarantee, q.capability ?? ResourceList()]) { continue }
                state.setQueue(obj.meta.name, spec: q, valid: obj.invalid.isEmpty)
            case .node(let n):
                if avoid.contains("node-gpus") && n.capacity.gpu > 1024 { continue }
                if avoid.contains("overflow") && tooLarge([n.capacity]) { continue }
                state.setNode(obj.meta.name, spec: n, ready: obj.invalid.isEmpty)
            case .workload(let w):
                guard obj.invalid.isEmpty, !w.suspend else { continue }
                if avoid.contains("empty-request") && w.resources.isEmpty { continue }
                if avoid.contains("overflow") && tooLarge([w.resources]) { continue }
                state.setWorkload(obj.key, WorkloadRequest(w, created: 0))
            case .resourcePool:
                break
            }
        }
        _ = state.cycle(now: 1)
    }

    /// Quantities past 2^40 milli-units, which sums and products can overflow.
    static func tooLarge(_ lists: [ResourceList]) -> Bool {
        lists.contains { $0.amounts.values.contains { $0.milli > 1 << 40 } }
    }

    static func isDNSLabel(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 63 else { return false }
        func ok(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d }
        return u.allSatisfy(ok) && u.first != 0x2d && u.last != 0x2d
    }

    static func checkObject(_ obj: ManifestObject) -> String? {
        if !isDNSLabel(obj.meta.name) { return "accepted name \(String(reflecting: obj.meta.name))" }
        if obj.key.kind.isNamespaced && !isDNSLabel(obj.meta.namespace) { return "accepted namespace \(String(reflecting: obj.meta.namespace))" }

        // What the inventory stores: the object as JSON, read back by the CLI.
        let json = JSON.encode(obj.toValue())
        do { _ = try JSON.parse(json) } catch { return "stored JSON does not parse back: \(error)" }

        guard obj.invalid.isEmpty else { return nil }
        // A valid spec keeps the documented bounds.
        func quantities(_ r: ResourceList, _ what: String) -> String? {
            for (name, q) in r.amounts {
                if q.milli < 0 { return "\(what).\(name) is negative (\(q.milli)m)" }
                if name == "gpu" && q.milli % 1000 != 0 { return "\(what).gpu is not whole (\(q.milli)m)" }
            }
            return nil
        }
        switch obj.spec {
        case .workload(let w):
            if !(1...10_000).contains(w.replicas) { return "valid workload with replicas \(w.replicas)" }
            if !w.specifiedNodes.isEmpty && w.specifiedNodes.count != w.replicas { return "replicas \(w.replicas) with \(w.specifiedNodes.count) specified nodes" }
            if w.type == .authoring && w.replicas != 1 { return "Authoring workload with \(w.replicas) replicas" }
            if let p = quantities(w.resources, "resources") { return p }
            // What admission and `gantry get`/`describe` compute from it.
            let request = WorkloadRequest(w, created: 0)
            if request.replicas != w.replicas { return "request replicas differ" }
            if w.resources.gpu.multipliedReportingOverflow(by: Int64(w.replicas)).overflow {
                return "total GPUs \(w.resources.gpu) x \(w.replicas) replicas overflows Int64 (spec.totalGPUs and the CLI's GPUS column trap)"
            }
            _ = w.effectiveCommand
        case .queue(let q):
            for (list, what) in [(q.deserved, "deserved"), (q.guarantee, "guarantee"), (q.capability ?? ResourceList(), "capability")] {
                if let p = quantities(list, what) { return p }
            }
            for name in q.guarantee.names where q.deserved.amounts[name] != nil && q.guarantee[name] > q.deserved[name] {
                return "guarantee.\(name) above deserved accepted"
            }
            if let cap = q.capability {
                for name in q.deserved.names where cap.amounts[name] != nil && q.deserved[name] > cap[name] { return "deserved.\(name) above capability accepted" }
            }
        case .node(let n):
            if let p = quantities(n.capacity, "capacity") { return p }
            if n.capacity.gpu > 1024 { return "valid node with \(n.capacity.gpu) GPUs" }
        case .resourcePool:
            break
        }
        return nil
    }
}
