import GantryAPI

/// Which Unix account a workload's replicas run as (directory mode).
///
/// - The workload's annotation `gantry.dev/run-as` wins (the API sets it from the token's
///   account; only an admin may set it in a body; in the spec directory the user's own).
/// - Otherwise a manifest of the spec directory (trusted like a crontab) runs as the daemon's
///   `--run-as` account, or as the daemon's own account when there is none.
/// - Otherwise (an object written through the API with no account mapped) a daemon running as
///   root refuses to run it at all: it must never run as root by default. A daemon that is not
///   root runs it as itself (it has no other account to give).
public enum RunAs {
    /// Equal to `APIObject.runAsAnnotation` (GantryServer).
    public static let annotation = "gantry.dev/run-as"
    /// The reason of the event and conditions of a workload refused a start.
    public static let refusedReason = "RunAsRefused"

    public enum Decision: Equatable, Sendable {
        /// Run as this account (nil: the daemon's own, as it is).
        case account(String?)
        /// Do not start: the message says why.
        case refused(String)
    }

    /// The decision for a workload: its annotations, whether it was written through the API,
    /// the daemon's `--run-as` and whether the daemon runs as root.
    public static func decide(annotations: [String: String], apiOwned: Bool, daemonRunAs: String?, daemonIsRoot: Bool) -> Decision {
        if let a = annotations[annotation] {
            guard isAccountName(a) else {
                return .refused("annotation \(annotation): \"\(String(a.prefix(64)))\" is not a Unix account name (letters, digits, '.', '_', '-', at most 32, not starting with '-')")
            }
            return .account(a)
        }
        if !apiOwned { return .account(daemonRunAs) }
        if daemonIsRoot {
            return .refused("created through the API with no Unix account for its submitter (annotation \(annotation)); a daemon running as root never runs such a workload as root: map the user to an account in the tokens file")
        }
        return .account(nil)
    }

    /// The decision for a desired object (`ManifestObject.source` tells an API write).
    public static func decide(_ obj: ManifestObject, daemonRunAs: String?, daemonIsRoot: Bool) -> Decision {
        decide(annotations: obj.meta.annotations, apiOwned: obj.source.isAPIOwned, daemonRunAs: daemonRunAs, daemonIsRoot: daemonIsRoot)
    }

    /// A name `gantry-shim --user` takes: 1-32 of `[A-Za-z0-9._-]` (a trailing `$` allowed, as
    /// for machine accounts), not starting with '-' (it would read as a flag). All digits: a uid.
    public static func isAccountName(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 32, u[0] != UInt8(ascii: "-") else { return false }
        for (i, c) in u.enumerated() {
            let ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 46 || c == 95 || c == 45
                || (c == 36 && i == u.count - 1 && i > 0)
            if !ok { return false }
        }
        return s != "." && s != ".."
    }
}
