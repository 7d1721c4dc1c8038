import Testing
import Foundation
@testable import GantryAPI

/// `--field-validation` through the binary: `gantry validate` exit codes and messages, and a
/// workload pasted from seed 000 kept out of admission by `gantry run`.
@Suite(.serialized) struct FieldValidationEndToEndTests {
    /// The seed-000 request shape under spec; `resource` is on line 8.
    static let pasted = """
    apiVersion: gantry.dev/v1alpha1
    kind: Workload
    metadata: {name: pasted, namespace: team-a}
    spec:
      queue: research
      command: "true"
      groupVersionKind: {kind: PyTorchJob, version: v1}
      resource: {cpu: "128", gpu: "8", memory: 256Gi, replica: 1}
      priority: 0

    """
    static let resourceError = "w.yaml:8: spec.resource: unknown field \"resource\"; did you mean \"resources\"?"

    @Test func validateExitCodesByMode() throws {
        let dir = NSTemporaryDirectory() + "gantry-fieldval-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/w.yaml"
        try (Self.pasted + "---\n" + wl("good")).write(toFile: file, atomically: true, encoding: .utf8)

        let (strict, strictOut) = runCLI(["validate", "-f", file])
        #expect(strict == 1)
        #expect(strictOut.contains("error: " + dir + "/" + Self.resourceError), "\(strictOut)")
        #expect(strictOut.contains("spec.groupVersionKind: unknown field \"groupVersionKind\"; use apiVersion"))
        let (explicit, _) = runCLI(["validate", "--field-validation=Strict", "-f", file])
        #expect(explicit == 1)
        let (alias, aliasOut) = runCLI(["validate", "--strict", "-f", file])
        #expect(alias == 1 && aliasOut.contains("--strict is deprecated"))

        let (warn, warnOut) = runCLI(["validate", "--field-validation", "warn", "-f", file])
        #expect(warn == 0, "\(warnOut)")
        #expect(warnOut.contains("warning: " + dir + "/" + Self.resourceError))
        #expect(warnOut.contains("2 objects, 0 errors"))

        let (ignore, ignoreOut) = runCLI(["validate", "--field-validation=Ignore", "-f", file])
        #expect(ignore == 0)
        #expect(!ignoreOut.contains("resource") && ignoreOut.contains("2 objects, 0 errors"), "\(ignoreOut)")

        #expect(runCLI(["validate", "--field-validation=Loose", "-f", file]).0 == 2)
        #expect(runCLI(["validate", "--strict", "--field-validation=Warn", "-f", file]).0 == 2)
    }

    @Test func runKeepsAPastedSeedWorkloadOut() throws {
        let d = try DaemonUnderTest(extra: ["--local-gpus", "8", "--runtime", "none"])
        defer { try? FileManager.default.removeItem(atPath: (d.spec as NSString).deletingLastPathComponent) }
        d.write("queues.yaml", queueManifest)
        d.write("w.yaml", Self.pasted + "---\n" + wl("good"))
        func admitted(_ name: String) -> Value? {
            d.status(.workload, name)?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Admitted" }
        }
        // The other object of the same file is admitted; the pasted one is InvalidSpec.
        #expect(d.wait { admitted("good")?["reason"]?.stringValue == "QuotaReserved" })
        #expect(d.wait { admitted("pasted")?["reason"]?.stringValue == "InvalidSpec" })
        #expect(admitted("pasted")?["status"]?.stringValue == "False")
        #expect(admitted("pasted")?["message"]?.stringValue?.contains(Self.resourceError) == true)
        #expect(d.status(.workload, "pasted")?["admission"] == nil)
        #expect(d.wait { d.events().contains { $0.type == "Warning" && $0.reason == "InvalidSpec" && $0.objName == "pasted" && $0.message.contains(Self.resourceError) } },
                "\(d.events().map { "\($0.reason) \($0.objName): \($0.message)" })")
        #expect(d.log.contains("spec.resource: unknown field"))
        #expect(d.process.isRunning)
        #expect(d.terminate() == 0)
    }

    @Test func runUnderWarnAppliesAndWarns() throws {
        let d = try DaemonUnderTest(extra: ["--local-gpus", "8", "--runtime", "none", "--field-validation=Warn"])
        defer { try? FileManager.default.removeItem(atPath: (d.spec as NSString).deletingLastPathComponent) }
        d.write("queues.yaml", queueManifest)
        // With a cpu request: this branch predates main's fix for placing a workload that names no resources.
        d.write("w.yaml", Self.pasted + "  resources: {cpu: \"1\"}\n")
        #expect(d.wait {
            d.status(.workload, "pasted")?["conditions"]?.arrayValue?.contains { $0["type"]?.stringValue == "Admitted" && $0["reason"]?.stringValue == "QuotaReserved" } == true
        })
        #expect(d.wait { d.events().contains { $0.type == "Warning" && $0.reason == "ManifestWarning" && $0.objName == "w.yaml" && $0.message.contains(Self.resourceError) } })
        #expect(d.terminate() == 0)
    }
}
