import Foundation
import GantryAPI
import YAMLCodec

extension KubeConfig {
    /// Reads kubeconfig files: `path` when given (a colon-separated list; every file must
    /// exist), else `$KUBECONFIG` (a colon list; missing files are skipped), else
    /// `$HOME/.kube/config`. Files merge as kubectl merges them: the first file that sets a
    /// map key (`current-context`, a cluster, user or context name) wins. The context is
    /// `context` when given, else `current-context`. Errors name the file and the field.
    public static func fromKubeconfig(path: String?, context: String?, environment: [String: String]) throws -> KubeConfig {
        var files: [String] = []
        var mustExist = true
        if let path, !path.isEmpty {
            files = path.split(separator: ":", omittingEmptySubsequences: true).map(String.init)
        } else if let env = environment["KUBECONFIG"], !env.isEmpty {
            files = env.split(separator: ":", omittingEmptySubsequences: true).map(String.init)
            mustExist = false
        } else {
            guard let home = environment["HOME"], !home.isEmpty else {
                throw ConfigError("no kubeconfig: KUBECONFIG and HOME are not set")
            }
            files = [home + "/.kube/config"]
        }
        var merged = Kubeconfig()
        var loaded: [String] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                if mustExist || files.count == 1 { throw ConfigError("\(file): cannot read the kubeconfig file") }
                continue
            }
            try merged.merge(file: file, bytes: Array(data))
            loaded.append(file)
        }
        guard !loaded.isEmpty else { throw ConfigError("no kubeconfig file found among \(files.joined(separator: ":"))") }
        return try merged.config(context: context, files: loaded)
    }
}

/// The merged content of kubeconfig files, each entry remembering the file it came from.
struct Kubeconfig {
    struct Entry {
        var file: String
        var index: Int
        var body: Value
    }
    var currentContext: (file: String, name: String)?
    var clusters: [String: Entry] = [:]
    var users: [String: Entry] = [:]
    var contexts: [String: Entry] = [:]

    typealias ConfigError = KubeConfig.ConfigError

    mutating func merge(file: String, bytes: [UInt8]) throws {
        let root: Value
        do {
            let docs = try YAMLParser.parse(bytes)
            root = docs.first?.root?.toValue() ?? .object([])
        } catch {
            throw ConfigError("\(file): \(error)")
        }
        if case .null = root { return }
        guard root.members != nil else { throw ConfigError("\(file): expected a mapping at the top level") }
        if let cc = root["current-context"] {
            guard case .string(let name) = cc else {
                if case .null = cc {} else { throw ConfigError("\(file): current-context: expected a string") }
                return try mergeLists(file: file, root: root)
            }
            if currentContext == nil, !name.isEmpty { currentContext = (file, name) }
        }
        try mergeLists(file: file, root: root)
    }

    private mutating func mergeLists(file: String, root: Value) throws {
        func list(_ key: String, _ bodyKey: String, into map: inout [String: Entry]) throws {
            guard let v = root[key] else { return }
            if case .null = v { return }
            guard let items = v.arrayValue else { throw ConfigError("\(file): \(key): expected a list") }
            for (i, item) in items.enumerated() {
                guard let name = item["name"]?.stringValue, !name.isEmpty else {
                    throw ConfigError("\(file): \(key)[\(i)].name: missing")
                }
                let body = item[bodyKey] ?? .object([])
                if case .null = body {} else if body.members == nil {
                    throw ConfigError("\(file): \(key)[\(name)].\(bodyKey): expected a mapping")
                }
                if map[name] == nil { map[name] = Entry(file: file, index: i, body: body) }
            }
        }
        try list("clusters", "cluster", into: &clusters)
        try list("users", "user", into: &users)
        try list("contexts", "context", into: &contexts)
    }

    func config(context explicit: String?, files: [String]) throws -> KubeConfig {
        let where_ = files.joined(separator: ":")
        let contextName: String
        if let explicit, !explicit.isEmpty {
            contextName = explicit
        } else if let cc = currentContext {
            contextName = cc.name
        } else {
            throw ConfigError("\(where_): current-context: not set (pass --context)")
        }
        guard let ctx = contexts[contextName] else {
            throw ConfigError("\(where_): contexts: no context named \"\(contextName)\"")
        }
        let ctxField = "contexts[\(contextName)].context"
        guard let clusterName = try string(ctx, "cluster", field: ctxField), !clusterName.isEmpty else {
            throw ConfigError("\(ctx.file): \(ctxField).cluster: missing")
        }
        guard let cluster = clusters[clusterName] else {
            throw ConfigError("\(ctx.file): \(ctxField).cluster: no cluster named \"\(clusterName)\"")
        }
        let cf = "clusters[\(clusterName)].cluster"
        guard let server = try string(cluster, "server", field: cf), !server.isEmpty else {
            throw ConfigError("\(cluster.file): \(cf).server: missing")
        }
        guard server.hasPrefix("https://") || server.hasPrefix("http://") else {
            throw ConfigError("\(cluster.file): \(cf).server: \"\(server)\" is not an http(s) URL")
        }
        var config = KubeConfig(server: server)
        if let ns = try string(ctx, "namespace", field: ctxField), !ns.isEmpty { config.namespace = ns }
        config.caFile = try path(cluster, "certificate-authority", field: cf)
        config.caData = try base64(cluster, "certificate-authority-data", field: cf)
        config.tlsServerName = try string(cluster, "tls-server-name", field: cf)
        if let v = cluster.body["insecure-skip-tls-verify"] {
            switch v {
            case .bool(let b): config.insecureSkipTLSVerify = b
            case .null: break
            case .string(let s) where s == "true" || s == "false": config.insecureSkipTLSVerify = s == "true"
            default: throw ConfigError("\(cluster.file): \(cf).insecure-skip-tls-verify: expected true or false")
            }
        }
        if let userName = try string(ctx, "user", field: ctxField), !userName.isEmpty {
            guard let user = users[userName] else {
                throw ConfigError("\(ctx.file): \(ctxField).user: no user named \"\(userName)\"")
            }
            let uf = "users[\(userName)].user"
            for unsupported in ["exec", "auth-provider", "username", "password"] where user.body[unsupported] != nil {
                throw ConfigError("\(user.file): \(uf).\(unsupported): not supported by gantry (use a token, tokenFile or client certificate)")
            }
            config.token = try string(user, "token", field: uf)
            config.tokenFile = try path(user, "tokenFile", field: uf)
            config.clientCertFile = try path(user, "client-certificate", field: uf)
            config.clientCertData = try base64(user, "client-certificate-data", field: uf)
            config.clientKeyFile = try path(user, "client-key", field: uf)
            config.clientKeyData = try base64(user, "client-key-data", field: uf)
            if let file = config.tokenFile, config.token == nil || config.token == "" {
                guard let t = KubeConfig.readTrimmed(file), !t.isEmpty else {
                    throw ConfigError("\(user.file): \(uf).tokenFile: cannot read \(file), or it is empty")
                }
                config.token = t
            }
            let hasCert = config.clientCertFile != nil || config.clientCertData != nil
            let hasKey = config.clientKeyFile != nil || config.clientKeyData != nil
            if hasCert != hasKey {
                throw ConfigError("\(user.file): \(uf).\(hasCert ? "client-key" : "client-certificate"): missing (a client certificate needs its key)")
            }
        }
        return config
    }

    private func string(_ e: Entry, _ key: String, field: String) throws -> String? {
        guard let v = e.body[key] else { return nil }
        switch v {
        case .null: return nil
        case .string(let s): return s
        case .int(let i): return String(i)
        default: throw ConfigError("\(e.file): \(field).\(key): expected a string")
        }
    }

    private func path(_ e: Entry, _ key: String, field: String) throws -> String? {
        guard let p = try string(e, key, field: field), !p.isEmpty else { return nil }
        if p.hasPrefix("/") { return p }
        let dir = (e.file as NSString).deletingLastPathComponent
        return dir.isEmpty ? p : dir + "/" + p
    }

    private func base64(_ e: Entry, _ key: String, field: String) throws -> [UInt8]? {
        guard let s = try string(e, key, field: field), !s.isEmpty else { return nil }
        guard let bytes = Base64.decode(s), !bytes.isEmpty else {
            throw ConfigError("\(e.file): \(field).\(key): not valid base64")
        }
        return bytes
    }
}
