import HTTPServer

/// The web dashboard the daemon serves at `/`: one HTML page, one script and one style sheet,
/// written here and embedded as string constants (no build step, no third-party files). The
/// page talks to the JSON API under `/api/v1` with the bearer token the user pastes into it.
///
/// Routes: `GET /` (the page) and `GET /ui/{file}` for `app.js` and `app.css`; any other file
/// is 404. These are served without authentication (they hold no data). Every answer carries
/// `Cache-Control: no-cache` with an `ETag`, so a browser revalidates and gets 304 while the
/// daemon's build is unchanged, and a Content-Security-Policy that allows only the daemon's
/// own script, styles and API (no inline script, no other origin).
public enum Dashboard {
    /// Adds the dashboard's routes to `router`.
    public static func register(into router: inout Router) {
        router.register(method: "GET", pattern: "/") { request in
            respond(index, to: request)
        }
        router.register(method: "GET", pattern: "/ui/{file}") { request in
            switch request.parameter("file") {
            case "app.js": respond(script, to: request)
            case "app.css": respond(styles, to: request)
            default: .notFound
            }
        }
    }

    /// A static file: its bytes, content type and validator.
    struct Asset: Sendable {
        let bytes: [UInt8]
        let contentType: String
        let etag: String
        init(_ text: String, contentType: String) {
            bytes = Array(text.utf8)
            self.contentType = contentType
            etag = "\"" + Asset.fnv1a(bytes) + "\""
        }

        /// FNV-1a 64 of the bytes as 16 hex digits (wrapping arithmetic).
        static func fnv1a(_ bytes: [UInt8]) -> String {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
            let hex = String(h, radix: 16)
            return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
        }
    }

    static let index = Asset(DashboardPage.html, contentType: "text/html; charset=utf-8")
    static let script = Asset(DashboardScript.source, contentType: "text/javascript; charset=utf-8")
    static let styles = Asset(DashboardStyles.css, contentType: "text/css; charset=utf-8")

    static let securityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func respond(_ asset: Asset, to request: HTTPRequest) -> HTTPResponse {
        var headers: [(String, String)] = [
            ("Content-Type", asset.contentType),
            ("Cache-Control", "no-cache"),
            ("ETag", asset.etag),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", securityPolicy),
            ("Referrer-Policy", "no-referrer"),
        ]
        if let tags = request.header("If-None-Match"),
           tags.split(separator: ",").contains(where: { $0.trimmingWhitespace() == asset.etag || $0.trimmingWhitespace() == "*" }) {
            headers.removeAll { $0.0 == "Content-Type" }
            return HTTPResponse(status: 304, headers: headers)
        }
        return HTTPResponse(status: 200, headers: headers, body: .bytes(asset.bytes))
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
