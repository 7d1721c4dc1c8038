import Foundation
import Testing
@testable import GantryAPI
@testable import YAMLCodec
import ControllerRuntime

@Suite(.timeLimit(.minutes(1))) struct YAMLTests {
    @Test func parsesMultipleDocumentsWithLines() throws {
        let docs = try YAMLParser.parse("a: 1\n---\n# c\nb:\n  - x\n  - 'y'\n---\n")
        try #require(docs.count == 3)
        #expect(docs[1].line == 2)
        guard case .mapping(let e) = docs[1].root?.content, let first = e.first, case .sequence(let items) = first.value.content, items.count == 2 else {
            Issue.record("shape"); return
        }
        #expect(first.key.line == 4)
        #expect(items[1].line == 6)
        guard case .scalar(let s, let plain) = items[1].content else { Issue.record("items[1] is not a scalar"); return }
        #expect(s == "y" && !plain)
        #expect(docs[2].root?.isNull ?? true)
    }

    @Test func resolvesAliases() throws {
        let docs = try YAMLParser.parse("base: &b {gpu: 8}\nother: *b\n")
        let v = try #require(docs.first?.root).toValue()
        #expect(v["other"]?["gpu"] == .int(8))
    }

    @Test func billionLaughsIsAnErrorNotOOM() throws {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (i, c) in "bcdefghij".enumerated() {
            let prev = Character(UnicodeScalar(UInt8(97 + i)))
            text += "\(c): &\(c) [" + Array(repeating: "*\(prev)", count: 10).joined(separator: ", ") + "]\n"
        }
        #expect(throws: YAMLError.self) { try YAMLParser.parse(text) }
        do { _ = try YAMLParser.parse(text) } catch { #expect(error.message.contains("billion laughs")) }
    }

    @Test func depthIsCapped() throws {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(throws: YAMLError.self) { try YAMLParser.parse(deep) }
    }

    @Test func tabIndentationNamesTheLine() throws {
        do {
            _ = try YAMLParser.parse("kind: Workload\nspec:\n\tcommand: x\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 3)
            #expect(error.message.contains("tabs"))
        }
    }

    @Test func invalidUTF8IsAnError() throws {
        #expect(throws: YAMLError.self) { try YAMLParser.parse([0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]) }
    }

    @Test func acceptsJSONDocuments() throws {
        let docs = try YAMLParser.parse("{\"apiVersion\": \"gantry.dev/v1alpha1\", \"kind\": \"Queue\", \"metadata\": {\"name\": \"q\"}}")
        let v = try #require(docs.first?.root).toValue()
        #expect(v["metadata"]?["name"] == .string("q"))
    }

    @Test func emitterQuotesAmbiguousStrings() throws {
        let v = Value.object([.init("s", .string("true")), .init("n", .string("8")), .init("e", .string("")), .init("i", .int(8)),
                              .init("b", .bool(false)), .init("multi", .string("a\nb")), .init("list", .array([]))])
        let text = YAMLEmitter.emit([v])
        let back = try #require(try YAMLParser.parse(text).first?.root).toValue()
        #expect(back == v)
    }
}

@Suite(.timeLimit(.minutes(1))) struct DecoderTests {
    func decode(_ yaml: String, _ mode: FieldValidation = .strict) -> ManifestFile {
        ManifestFile.decode(path: "t.yaml", bytes: Array(yaml.utf8), fieldValidation: mode)
    }

    let workload = """
    apiVersion: gantry.dev/v1alpha1
    kind: Workload
    metadata:
      name: llama-7b
      namespace: team-a
    spec:
      type: PyTorchJob
      queue: research
      priority: high
      command: python train.py
      replicas: 2
      resources: {gpu: 8, cpu: "32", memory: 256Gi, gpuType: H100}
    """

    @Test func decodesWorkloadWithDefaults() throws {
        let f = decode(workload)
        #expect(f.errors.isEmpty && f.fatal == nil)
        let o = try #require(f.objects.first)
        #expect(o.key == ObjectKey(.workload, namespace: "team-a", name: "llama-7b"))
        let w = try #require(o.spec.workload)
        #expect(w.priority == 1 && w.priorityName == "high")
        #expect(w.replicas == 2 && w.totalGPUs == 16 && w.gpuType == "H100")
        #expect(w.maxRetry == 0 && w.timeout == 0 && !w.suspend)
        #expect(o.invalid.isEmpty)
    }

    @Test func defaultsNamespaceAndQueue() throws {
        let f = decode("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec: {command: 'true'}\n")
        let o = try #require(f.objects.first)
        #expect(o.meta.namespace == "default")
        #expect(o.spec.workload?.queue == "default")
        #expect(o.spec.workload?.type == .job)
    }

    @Test(arguments: [
        ("replicas: two", 11, "spec.replicas", "expected an integer"),
        ("replicas: 0", 11, "spec.replicas", "at least 1"),
        ("resources: {gpu: -1}", 12, "spec.resources.gpu", "must not be negative"),
        ("resources: {gpu: 1.5}", 12, "spec.resources.gpu", "whole number"),
        ("resources: {memory: 12Qi}", 12, "spec.resources.memory", "malformed quantity"),
        ("type: Sparkjob", 7, "spec.type", "unknown value"),
        ("priority: urgent", 9, "spec.priority", "low, normal, high, highest"),
        ("suspend: maybe", 11, "spec.suspend", "true or false"),
        ("entryPoint: '***'", 11, "spec.entryPoint", "base64"),
    ])
    func specErrorsNameLineAndField(replace: String, line: Int, path: String, message: String) throws {
        var lines = workload.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let key = String(replace.split(separator: ":")[0])
        if let i = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(key + ":") }) {
            lines[i] = "  " + replace
        } else { lines.insert("  " + replace, at: line - 1) }
        let f = decode(lines.joined(separator: "\n"))
        let o = try #require(f.objects.first)
        let e = try #require(o.invalid.first { $0.path == path }, "no error at \(path): \(o.invalid)")
        #expect(e.line == line)
        #expect(e.message.contains(message))
        #expect(e.description.hasPrefix("t.yaml:\(line): \(path): "))
    }

    @Test(arguments: ["../etc", "UPPER", String(repeating: "a", count: 64), "-x", "a_b"])
    func invalidNamesRejectTheDocument(name: String) {
        let f = decode("apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata:\n  name: \"\(name)\"\n")
        #expect(f.objects.isEmpty)
        #expect(f.errors.first?.path == "metadata.name")
        #expect(f.errors.first?.line == 4)
    }

    @Test func unknownKindAndAPIVersion() throws {
        let f = decode("apiVersion: gantry.dev/v1alpha1\nkind: Gadget\nmetadata: {name: g}\n---\napiVersion: v1\nkind: Queue\nmetadata: {name: q}\n")
        #expect(f.objects.isEmpty)
        try #require(f.errors.count == 2)
        #expect(f.errors[0].path == "kind" && f.errors[0].line == 2)
        #expect(f.errors[1].path == "apiVersion" && f.errors[1].line == 5)
        #expect(f.incomplete)
    }

    @Test func unknownFieldsFailUnlessWarnOrIgnore() throws {
        let text = "apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: q}\nspec:\n  deservd: {gpu: 1}\n"
        let lax = decode(text, .warn)
        #expect(lax.objects.first?.invalid.isEmpty == true)
        #expect(lax.warnings.first?.path == "spec.deservd")
        let strict = decode(text)
        #expect(strict.objects.first?.invalid.first?.path == "spec.deservd")
    }

    @Test func duplicateKeysAreErrors() throws {
        let f = decode("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec:\n  command: a\n  command: b\n")
        #expect(f.objects.first?.invalid.first?.message == "duplicate key")
        #expect(f.objects.first?.invalid.first?.line == 6)
    }

    /// Duplicate keys are found in small mappings (compared in place) and large ones (hashed).
    @Test(arguments: [2, 15, 16, 17, 40])
    func duplicateKeysAreFoundInMappingsOfAnySize(keys: Int) throws {
        var labels = (0..<keys).map { "k\($0): v" }
        labels.append("k\(keys / 2): again")
        let f = decode("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: x\n  labels: {\(labels.joined(separator: ", "))}\nspec:\n  command: a\n")
        #expect(f.errors.map(\.message) + (f.objects.first?.invalid.map(\.message) ?? []) == ["duplicate key"])
        let clean = decode("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: x\n  labels: {\(labels.dropLast().joined(separator: ", "))}\nspec:\n  command: a\n")
        #expect(clean.objects.first?.meta.labels.count == keys)
        #expect(clean.objects.first?.invalid.isEmpty == true)
    }

    /// Random nested documents, written as JSON (which is YAML) and as block YAML, parse back
    /// to the same tree: every mapping and list keeps its items, in order, at any depth.
    @Test(arguments: [1, 2, 3, 4, 5])
    func randomNestedDocumentsParseBackToTheSameTree(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        func next(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        func value(_ depth: Int) -> Value {
            switch depth >= 4 ? next(3) : next(6) {
            case 0: return .int(Int64(next(2000)) - 1000)
            case 1: return .string(["", "a b", "x\ny", "1", "true", "~", "é"][next(7)])
            case 2: return [.null, .bool(true), .bool(false)][next(3)]
            case 3, 4:
                return .object((0..<next(7)).map { i in Value.Member("k\(i)-\(next(1000))", value(depth + 1)) })
            default:
                return .array((0..<next(7)).map { _ in value(depth + 1) })
            }
        }
        for _ in 0..<40 {
            let docs = (0..<(1 + next(3))).map { _ in Value.object((0..<(1 + next(8))).map { i in Value.Member("top\(i)", value(0)) }) }
            let json = docs.map { JSON.encode($0) }.joined(separator: "\n---\n")
            let fromJSON = try YAMLParser.parse(json).map { $0.root?.toValue() }
            #expect(fromJSON == docs.map { Optional($0) })
            let fromYAML = try YAMLParser.parse(YAMLEmitter.emit(docs)).map { $0.root?.toValue() }
            #expect(fromYAML == docs.map { Optional($0) })
        }
    }

    @Test func specifiedNodesSetReplicas() throws {
        let ok = decode("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec:\n  command: a\n  specifiedNodes: [n1, n2]\n")
        #expect(ok.objects.first?.spec.workload?.replicas == 2)
        let bad = decode("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec:\n  command: a\n  replicas: 3\n  specifiedNodes: [n1, n2]\n")
        #expect(bad.objects.first?.invalid.first?.path == "spec.replicas")
    }

    @Test func queueQuotaConsistency() throws {
        let f = decode("apiVersion: gantry.dev/v1alpha1\nkind: Queue\nmetadata: {name: q}\nspec:\n  deserved: {gpu: 4}\n  guarantee: {gpu: 8}\n  capability: {gpu: 2}\n")
        let paths = f.objects.first?.invalid.map(\.path) ?? []
        #expect(paths.contains("spec.guarantee.gpu"))
        #expect(paths.contains("spec.deserved.gpu"))
    }

    @Test func entryPointDecodesToCommand() throws {
        let f = decode("apiVersion: gantry.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec:\n  entryPoint: cHl0aG9uIHRyYWluLnB5\n  args: [--lr, '0.1']\n")
        #expect(f.objects.first?.spec.workload?.effectiveCommand == "python train.py --lr 0.1")
    }

    @Test func statusInFilesIsIgnoredAndRoundTrips() throws {
        let f = decode(workload + "\nstatus: {phase: Running}\n")
        let o = try #require(f.objects.first)
        // What Gantry prints reads back as the same object.
        let again = ManifestFile.decode(path: "t.yaml", bytes: Array(YAMLEmitter.emit([o.toValue()]).utf8))
        #expect(again.objects.first?.spec == o.spec)
        #expect(again.objects.first?.meta.labels == o.meta.labels)
    }
}
