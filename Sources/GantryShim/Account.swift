import Glibc
import CShim

/// A Unix account a replica runs as: its ids, supplementary groups, home and name, read
/// from the system's account database (NSS: /etc/passwd, LDAP, ...).
public struct Account: Equatable, Sendable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    public var home: String
    /// Every group the account is in, its primary group included (what initgroups would set).
    public var groups: [gid_t]

    public init(name: String, uid: uid_t, gid: gid_t, home: String, groups: [gid_t]) {
        self.name = name; self.uid = uid; self.gid = gid; self.home = home; self.groups = groups
    }

    /// How looking an account up ended.
    public enum Lookup: Equatable, Sendable {
        case found(Account)
        /// No such account (by name, or by number for an all-digit name).
        case unknown
        /// The account database could not be read (errno): the machine's fault.
        case failed(Int32)
    }

    /// Looks up `user` by name (getpwnam_r); a name of digits only that is no account's name
    /// is taken as a uid (getpwuid_r). Groups come from getgrouplist.
    public static func lookup(_ user: String) -> Lookup {
        guard !user.isEmpty, !user.utf8.contains(0) else { return .unknown }
        var r = entry { pw, buf, size, res in getpwnam_r(user, pw, buf, size, res) }
        if case .unknown = r, user.utf8.count <= 10, user.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = UInt32(user) {
            r = entry { pw, buf, size, res in getpwuid_r(uid_t(n), pw, buf, size, res) }
        }
        guard case .found(var a) = r else { return r }
        var n: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(n))
        var tries = 0
        while getgrouplist(a.name, a.gid, &groups, &n) < 0 {
            // `n` now says how many there are; a list that keeps growing between calls is given up on.
            tries += 1
            guard tries < 4, n > 0, n <= 65536 else { return .failed(ENOMEM) }
            groups = [gid_t](repeating: 0, count: Int(n))
        }
        a.groups = Array(groups.prefix(Int(max(0, min(n, Int32(groups.count))))))
        if !a.groups.contains(a.gid) { a.groups.insert(a.gid, at: 0) }
        return .found(a)
    }

    /// One getpw*_r call with a buffer that grows on ERANGE.
    static func entry(_ call: (UnsafeMutablePointer<passwd>, UnsafeMutablePointer<CChar>, Int, UnsafeMutablePointer<UnsafeMutablePointer<passwd>?>) -> Int32) -> Lookup {
        var size = 4096
        while true {
            var pw = passwd()
            var res: UnsafeMutablePointer<passwd>? = nil
            var buf = [CChar](repeating: 0, count: size)
            let rc = buf.withUnsafeMutableBufferPointer { b in b.baseAddress.map { call(&pw, $0, size, &res) } ?? EINVAL }
            if rc == ERANGE && size < 1 << 20 { size *= 4; continue }
            // Not found is rc 0 (or, from some NSS modules, ENOENT/ESRCH/EBADF/EPERM) with no result.
            if res == nil { return rc == 0 || [ENOENT, ESRCH, EBADF, EPERM].contains(rc) ? .unknown : .failed(rc) }
            guard let name = pw.pw_name, let dir = pw.pw_dir else { return .unknown }
            return .found(Account(name: String(cString: name), uid: pw.pw_uid, gid: pw.pw_gid, home: String(cString: dir), groups: []))
        }
    }

    /// The environment a replica of this account gets: `env` with HOME, USER and LOGNAME
    /// replaced by the account's.
    public func environment(_ env: [String]) -> [String] {
        let own = ["HOME=", "USER=", "LOGNAME="]
        return env.filter { e in !own.contains { e.hasPrefix($0) } } + ["HOME=\(home)", "USER=\(name)", "LOGNAME=\(name)"]
    }
}

/// Why running a replica as an account failed in the forked child (a `g_spawn_as` stage).
func spawnAsStage(_ stage: Int32) -> String {
    switch stage {
    case G_STAGE_PIPE: "pipe"
    case G_STAGE_FORK: "fork"
    case G_STAGE_SETPGID: "setpgid"
    case G_STAGE_STDIN: "open /dev/null"
    case G_STAGE_STDOUT: "dup2"
    case G_STAGE_SETGROUPS: "setgroups"
    case G_STAGE_SETGID: "setgid"
    case G_STAGE_SETUID: "setuid"
    case G_STAGE_VERIFY: "verify"
    case G_STAGE_CHDIR: "chdir"
    default: "exec"
    }
}
