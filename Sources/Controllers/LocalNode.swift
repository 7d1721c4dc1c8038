import Foundation
import GantryShim
import GantryAPI
import ControllerRuntime

/// The node for this machine in directory mode when no Node is declared: its GPUs come from
/// `nvidia-smi` (or `amd-smi`), or from `--local-gpus N`.
public enum LocalNode {
    public static let sourceFile = "(local machine)"

    public struct GPU: Sendable, Equatable {
        public var index: Int
        public var name: String
        public var memoryMiB: Int?
    }

    /// The local node object. `gpus` nil: discover; else exactly that many GPUs.
    public static func make(localGPUs: Int?, name: String? = nil, run: (String, [String]) -> String? = LocalNode.run) -> ManifestObject {
        var spec = NodeSpec()
        var count = 0
        var type: String?
        if let n = localGPUs {
            count = n
            Log.info("local node GPUs set by --local-gpus", ["gpus": String(n)])
        } else if let out = run("nvidia-smi", ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]) {
            let gpus = parseNvidiaSMI(out)
            count = gpus.count
            type = gpus.first.map { gpuType(fromName: $0.name) }
            spec.gpuVendor = .nvidia
            Log.info("local GPUs found with nvidia-smi", ["gpus": String(count), "type": type ?? "-"])
        } else if let out = run("amd-smi", ["static", "--asic", "--csv"]) {
            let gpus = parseAMDSMI(out)
            count = gpus.count
            type = gpus.first.map { gpuType(fromName: $0.name) }
            spec.gpuVendor = .amd
            Log.info("local GPUs found with amd-smi", ["gpus": String(count), "type": type ?? "-"])
        }
        if count == 0 && localGPUs == nil {
            Log.info("no GPUs found on this machine (no nvidia-smi or amd-smi output): the local node has 0 GPUs; --local-gpus N sets a count")
        }
        // Cannot overflow: count is --local-gpus (at most 1024) or GPUs listed by a vendor tool.
        spec.capacity["gpu"] = Quantity(units: Int64(count))
        spec.gpuType = type
        let nodeName = name ?? hostName()
        var meta = ObjectMeta(name: nodeName)
        meta.labels["gantry.dev/local"] = "true"
        return ManifestObject(meta: meta, spec: .node(spec), source: SourceRef(file: sourceFile, line: 0, index: 0))
    }

    /// The host name as a DNS-1123 label (`local` when nothing usable is left).
    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        return dnsLabel(String(cString: buf))
    }

    static func dnsLabel(_ raw: String) -> String {
        let first = raw.split(separator: ".").first.map(String.init) ?? ""
        var s = String(first.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" })
        while s.hasPrefix("-") { s.removeFirst() }
        while s.hasSuffix("-") { s.removeLast() }
        if s.count > 63 { s = String(s.prefix(63)); while s.hasSuffix("-") { s.removeLast() } }
        return s.isEmpty ? "local" : s
    }

    /// `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` lines:
    /// `0, NVIDIA H100 80GB HBM3, 81559`.
    public static func parseNvidiaSMI(_ out: String) -> [GPU] {
        var gpus: [GPU] = []
        for line in out.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count >= 2, let i = Int(f[0]) else { continue }
            let mem = f.count > 2 ? Int(f[2].split(separator: " ").first ?? "") : nil
            gpus.append(GPU(index: i, name: f[1], memoryMiB: mem))
        }
        return gpus
    }

    /// `amd-smi static --asic --csv`: a header naming `gpu` and `market_name`, a row per GPU.
    public static func parseAMDSMI(_ out: String) -> [GPU] {
        let lines = out.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        guard let header = lines.firstIndex(where: { $0.lowercased().hasPrefix("gpu,") }) else { return [] }
        let cols = lines[header].split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let nameCol = cols.firstIndex(of: "market_name") ?? cols.firstIndex(of: "name")
        var gpus: [GPU] = []
        for line in lines[(header + 1)...] {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let i = Int(f.first ?? "") else { continue }
            let name = nameCol.flatMap { $0 < f.count ? f[$0].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : nil } ?? "AMD GPU"
            gpus.append(GPU(index: i, name: name, memoryMiB: nil))
        }
        return gpus
    }

    /// A gpuType from a product name: `NVIDIA H100 80GB HBM3` -> `H100`,
    /// `NVIDIA A100-SXM4-80GB` -> `A100`, `NVIDIA GeForce RTX 4090` -> `RTX-4090`,
    /// `AMD Instinct MI300X` -> `MI300X`.
    public static func gpuType(fromName name: String) -> String {
        let skip: Set<String> = ["nvidia", "amd", "tesla", "geforce", "quadro", "instinct", "radeon"]
        let tokens = name.split(separator: " ").map(String.init).filter { !skip.contains($0.lowercased()) }
        guard var t = tokens.first else { return name.replacingOccurrences(of: " ", with: "-") }
        if let dash = t.firstIndex(of: "-") { t = String(t[..<dash]) }
        if ["RTX", "GTX", "TITAN", "PRO"].contains(t.uppercased()), tokens.count > 1 { t += "-" + tokens[1] }
        return t
    }

    /// Runs a tool found on PATH; its stdout, or nil when absent, failing or silent (10 s limit).
    public static func run(_ tool: String, _ args: [String]) -> String? {
        guard let path = Spawn.which(tool) else { return nil }
        let env = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        guard let s = Spawn.capture([path] + args, env: env, timeout: 10) else { return nil }
        return s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : s
    }
}
