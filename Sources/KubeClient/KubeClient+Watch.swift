import GantryAPI

extension KubeClient {
    /// Streams a watch from `resourceVersion` (bookmarks on) and calls `onEvent` for each
    /// event in order, on the calling thread. Returns when the server ends the stream (its
    /// timeout: re-watch from the last resourceVersion seen) or `cancel` is set; throws for
    /// a non-2xx answer (410: relist) or a transport failure. Not rate limited.
    public func watch(_ path: String, resourceVersion: String, labelSelector: String? = nil, fieldSelector: String? = nil,
                      timeoutSeconds: Int = 300, cancel: WatchCancel, onEvent: (WatchEvent) -> Void) throws(KubeError) {
        var q: [(String, String)] = [("watch", "1")]
        if !resourceVersion.isEmpty { q.append(("resourceVersion", resourceVersion)) }
        q.append(("allowWatchBookmarks", "true"))
        q.append(("timeoutSeconds", String(max(1, timeoutSeconds))))
        if let labelSelector, !labelSelector.isEmpty { q.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { q.append(("fieldSelector", fieldSelector)) }
        let target = url(path, q)
        var refreshed = false
        while true {
            if cancel.isCancelled { return }
            count("WATCH")
            var headers = ["Accept: application/json"]
            if let token = currentToken(), !token.isEmpty { headers.append("Authorization: Bearer \(token)") }
            let (wholeTimeout, overflow) = max(1, timeoutSeconds).addingReportingOverflow(60)
            let request = HTTPRequest(method: "GET", url: target, headers: headers, body: nil, timeout: overflow ? 0 : wholeTimeout)
            let ctx = TransferContext()
            ctx.cancel = cancel
            var splitter = WatchLineSplitter()
            var overlong = false
            let result = withoutActuallyEscaping(onEvent) { deliver in
                ctx.onData = { chunk in
                    guard let lines = splitter.feed(chunk) else { overlong = true; return false }
                    for line in lines {
                        if cancel.isCancelled { return false }
                        deliver(WatchEvent.decode(line: line))
                    }
                    return !cancel.isCancelled
                }
                defer { ctx.onData = nil }
                return transport.perform(request, context: ctx)
            }
            if overlong { throw KubeError(code: 0, reason: "BadWatchEvent", message: "a watch event over \(splitter.maxLine) bytes") }
            let response = try result.get()
            if cancel.isCancelled { return }
            if (200..<300).contains(response.status) {
                if let rest = splitter.finish() { onEvent(WatchEvent.decode(line: rest)) }
                return
            }
            if response.status == 401, !refreshed, config.tokenFile != nil {
                refreshed = true
                refreshToken(force: true)
                continue
            }
            throw KubeError.fromResponse(code: response.status, body: response.body)
        }
    }
}
