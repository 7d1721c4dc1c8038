/// The replica's environment on its way through the supervisor.
///
/// A replica with a run-as account is supervised by a dynamically linked program running as
/// root (`gantry-shim-nss`, or `gantry shim`), so the dynamic loader, the C library and the
/// Swift runtime would act on variables the workload sets: `LD_PRELOAD` would load a library
/// of the workload's choosing into a root process. The daemon therefore hands such variables
/// over under a held name (`GANTRY_HELD_` before the name) and the supervisor gives them their
/// names back in the replica's environment only.
public enum ReplicaEnvironment {
    static let heldPrefix = "GANTRY_HELD_"
    /// Set by `gantry-shim` in the environment of the supervisor it hands a run-as replica
    /// to; a static supervisor that finds it has been handed one by itself (a copy or link
    /// installed as `gantry-shim-nss`) and must not exec again.
    static let handOffMarker = "GANTRY_SHIM_HANDED_OFF=1"

    /// Whether a variable steers what a dynamically linked program loads or how its C library
    /// or Swift runtime behave: every `LD_`, `MALLOC_` and `SWIFT_` one, and the rest of the
    /// variables glibc ignores in setuid programs.
    static func steers(_ name: Substring) -> Bool {
        if name.hasPrefix("LD_") || name.hasPrefix("MALLOC_") || name.hasPrefix("SWIFT_") { return true }
        switch name {
        case "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NIS_PATH", "NLSPATH",
             "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR": return true
        default: return false
        }
    }

    static func name(_ entry: String) -> Substring {
        entry.utf8.firstIndex(of: 61).map { entry[..<$0] } ?? Substring(entry)
    }

    /// The environment to give a supervisor: every steering variable under its held name.
    public static func hold(_ env: [String]) -> [String] {
        env.map { steers(name($0)) ? heldPrefix + $0 : $0 }
    }

    /// The replica's environment from the supervisor's: held variables under their names
    /// again (winning over one of the same name that was not held), the hand-off marker gone.
    public static func release(_ env: [String]) -> [String] {
        var held = Set<Substring>()
        for e in env where e.hasPrefix(heldPrefix) { held.insert(name(e).dropFirst(heldPrefix.count)) }
        var out: [String] = []
        out.reserveCapacity(env.count)
        for e in env where e != handOffMarker {
            if e.hasPrefix(heldPrefix) { out.append(String(e.dropFirst(heldPrefix.count))) }
            else if held.isEmpty || !held.contains(name(e)) { out.append(e) }
        }
        return out
    }
}
