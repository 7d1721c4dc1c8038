/// The replica's environment on its way through the supervisor.
///
/// A replica with a run-as account is supervised by a dynamically linked program running as
/// root (`gantry-shim-nss`, or `gantry shim`), so the dynamic loader, the C library, the Swift
/// runtime and whatever the account lookup loads (NSS modules and the libraries they bring)
/// would act on variables the workload sets: `LD_PRELOAD` would load a library of the
/// workload's choosing into a root process, `DBUS_SYSTEM_BUS_ADDRESS` could point an NSS
/// module at a bus the workload serves. The supervisor itself reads no variable, so the
/// daemon hands it the replica's whole environment under held names (`GANTRY_HELD_` before
/// each name, exactly: a name that already starts with it gets a second one) and the
/// supervisor gives them their names back in the replica's environment only. Beside them
/// the supervisor gets, as they are, the daemon's own variables that steer loading
/// (`LD_LIBRARY_PATH` set for the daemon's libraries, say): the operator's, not a workload's.
public enum ReplicaEnvironment {
    static let heldPrefix = "GANTRY_HELD_"
    /// Set by `gantry-shim` in the environment of the supervisor it hands a run-as replica
    /// to; a static supervisor that finds it has been handed one by itself (a copy or link
    /// installed as `gantry-shim-nss`) and must not exec again. A workload's variable of this
    /// name travels held like any other, so it cannot be mistaken for it.
    static let handOffMarker = "GANTRY_SHIM_HANDED_OFF=1"

    /// Whether a variable steers what a dynamically linked program loads or how its C library
    /// or Swift runtime behave: every `LD_`, `MALLOC_` and `SWIFT_` one, and the rest of the
    /// variables glibc ignores in setuid programs.
    public static func steers(_ name: Substring) -> Bool {
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

    /// The entries of `env` whose variable steers loading (`steers`).
    public static func loaderEntries(_ env: [String]) -> [String] {
        env.filter { steers(name($0)) }
    }

    /// The environment to give a supervisor: every entry of `env` under its held name, then
    /// the entries of `own` (the daemon's own environment) that steer loading, as they are.
    public static func hold(_ env: [String], own: [String] = []) -> [String] {
        env.map { heldPrefix + $0 } + loaderEntries(own)
    }

    /// The replica's environment from the supervisor's: the held entries under their names
    /// again, in order; nothing else (the supervisor's own variables and the hand-off marker
    /// stay with it). A supervisor with no held entry at all was started by hand, not by the
    /// daemon (which always sets `GANTRY_WORKLOAD` and the rest): its environment is the
    /// replica's, less the marker.
    public static func release(_ env: [String]) -> [String] {
        guard env.contains(where: { $0.hasPrefix(heldPrefix) }) else { return env.filter { $0 != handOffMarker } }
        return env.compactMap { $0.hasPrefix(heldPrefix) ? String($0.dropFirst(heldPrefix.count)) : nil }
    }
}
