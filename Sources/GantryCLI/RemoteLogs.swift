import Foundation
import GantryAPI
import Controllers

extension LogsCommand {
    /// `gantry logs --server`: the replica's log from the API (`tail`, `sinceSeconds`);
    /// `-f` prints the chunked stream as it arrives until the server ends it (the replica
    /// ended) or the command is interrupted.
    func runRemote(_ c: RemoteClient) throws -> Int32 {
        let path = RemoteClient.workloadPath(key) + "/replicas/\(rank)/logs"
        var q: [(String, String)] = []
        if let tail { q.append(("tail", String(tail))) }
        // `since` is finite and at most 100 years (checked with the flags).
        if let since { q.append(("sinceSeconds", String(Int64(since.rounded(.up))))) }
        if follow {
            q.append(("follow", "true"))
            try c.stream(path, q) { chunk in
                FileHandle.standardOutput.write(Data(chunk))
                return true
            }
            return 0
        }
        let body = try c.text(path, q)
        if !body.isEmpty { FileHandle.standardOutput.write(Data(body)) }
        return 0
    }

    /// `--since` on a local log: the lines of the last `seconds`. A replica's own output
    /// carries no time of its own, so this works from what there is: a log not written in
    /// the window has nothing to show; lines starting with an RFC 3339 time are kept when
    /// that time is in the window (lines after a kept one with it); a log written in the
    /// window without such times cannot be cut, which is said (false) rather than guessed.
    func printSince(_ path: String, seconds: Double) -> Bool {
        let cutoff = Date().timeIntervalSince1970 - seconds
        var st = stat()
        guard stat(path, &st) == 0 else { return true }
        if Double(st.st_mtim.tv_sec) < cutoff { return true }
        let lines = LogFiles.tail(path, lines: Int.max, maxBytes: 1 << 30)
        var kept: [String] = []
        var stamped = false, keeping = false
        for line in lines {
            if let ((secs, _), _) = LogCursor.split(Substring(line)) {
                stamped = true
                keeping = Double(secs) >= cutoff
            }
            if keeping { kept.append(line) }
        }
        guard stamped else {
            errOut("gantry: --since: the local log of \(key.qualifiedName) rank \(rank) was written in the last \(formatSeconds(seconds)) but its lines carry no times to cut it by; use --tail N, or --server URL to ask the daemon's API")
            return false
        }
        for l in tail.map({ Array(kept.suffix($0)) }) ?? kept { out(l) }
        return true
    }

    func formatSeconds(_ s: Double) -> String {
        s >= 3600 ? "\(Int(s / 3600))h" : s >= 60 ? "\(Int(s / 60))m" : "\(Int(s))s"
    }
}
