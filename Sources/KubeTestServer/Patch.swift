import Foundation
import GantryAPI

/// RFC 7386 JSON merge patch and RFC 6902 JSON patch over `Value`.
enum Patch {
    struct Failure: Error, Sendable {
        var message: String
        /// 422 for a failed `test` op or a bad path, 400 for a malformed patch document.
        var code: Int
    }

    /// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
    static func merge(_ target: Value, _ patch: Value) -> Value {
        guard case .object(let patchMembers) = patch else { return patch }
        var result: Value = target.members != nil ? target : .object([])
        for m in patchMembers {
            if case .null = m.value {
                result = result.setting(m.key, nil)
            } else {
                let current = result[m.key] ?? .null
                result = result.setting(m.key, merge(current, m.value))
            }
        }
        return result
    }

    /// RFC 6902 with add, remove, replace, move, copy and test.
    static func json(_ target: Value, _ patch: Value) throws(Failure) -> Value {
        guard let ops = patch.arrayValue else { throw Failure(message: "a JSON patch must be an array of operations", code: 400) }
        var doc = target
        for op in ops {
            guard let kind = op["op"]?.stringValue, let path = op["path"]?.stringValue else {
                throw Failure(message: "each JSON patch operation needs string \"op\" and \"path\"", code: 400)
            }
            let tokens = try pointer(path)
            switch kind {
            case "add":
                guard let v = op["value"] else { throw Failure(message: "add at \(path): missing value", code: 400) }
                doc = try apply(doc, tokens[...], .add(v))
            case "remove":
                doc = try apply(doc, tokens[...], .remove)
            case "replace":
                guard let v = op["value"] else { throw Failure(message: "replace at \(path): missing value", code: 400) }
                doc = try apply(doc, tokens[...], .replace(v))
            case "test":
                guard let v = op["value"] else { throw Failure(message: "test at \(path): missing value", code: 400) }
                guard let cur = get(doc, tokens[...]), cur == v else {
                    throw Failure(message: "testing value at \(path) failed", code: 422)
                }
            case "move", "copy":
                guard let from = op["from"]?.stringValue else { throw Failure(message: "\(kind) to \(path): missing from", code: 400) }
                let fromTokens = try pointer(from)
                guard let v = get(doc, fromTokens[...]) else { throw Failure(message: "\(kind): no value at \(from)", code: 422) }
                if kind == "move" { doc = try apply(doc, fromTokens[...], .remove) }
                doc = try apply(doc, tokens[...], .add(v))
            default:
                throw Failure(message: "unsupported JSON patch operation \"\(kind)\"", code: 400)
            }
        }
        return doc
    }

    private enum Edit { case add(Value), remove, replace(Value) }

    /// RFC 6901 pointer tokens (`~1` is `/`, `~0` is `~`).
    private static func pointer(_ path: String) throws(Failure) -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else { throw Failure(message: "JSON pointer \"\(path)\" must start with /", code: 400) }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func get(_ doc: Value, _ tokens: ArraySlice<String>) -> Value? {
        guard let first = tokens.first else { return doc }
        switch doc {
        case .object: return doc[first].flatMap { get($0, tokens.dropFirst()) }
        case .array(let items):
            guard let i = Int(first), i >= 0, i < items.count else { return nil }
            return get(items[i], tokens.dropFirst())
        default: return nil
        }
    }

    private static func apply(_ doc: Value, _ tokens: ArraySlice<String>, _ edit: Edit) throws(Failure) -> Value {
        guard let first = tokens.first else {
            switch edit {
            case .add(let v), .replace(let v): return v
            case .remove: throw Failure(message: "cannot remove the whole document", code: 422)
            }
        }
        let last = tokens.count == 1
        switch doc {
        case .object:
            if last {
                switch edit {
                case .add(let v): return doc.setting(first, v)
                case .replace(let v):
                    guard doc[first] != nil else { throw Failure(message: "replace: no member \"\(first)\"", code: 422) }
                    return doc.setting(first, v)
                case .remove:
                    guard doc[first] != nil else { throw Failure(message: "remove: no member \"\(first)\"", code: 422) }
                    return doc.setting(first, nil)
                }
            }
            guard let child = doc[first] else { throw Failure(message: "no member \"\(first)\" on the path", code: 422) }
            return doc.setting(first, try apply(child, tokens.dropFirst(), edit))
        case .array(var items):
            if last {
                switch edit {
                case .add(let v):
                    if first == "-" { items.append(v); return .array(items) }
                    guard let i = Int(first), i >= 0, i <= items.count else { throw Failure(message: "add: index \(first) out of range", code: 422) }
                    items.insert(v, at: i)
                case .replace(let v):
                    guard let i = Int(first), i >= 0, i < items.count else { throw Failure(message: "replace: index \(first) out of range", code: 422) }
                    items[i] = v
                case .remove:
                    guard let i = Int(first), i >= 0, i < items.count else { throw Failure(message: "remove: index \(first) out of range", code: 422) }
                    items.remove(at: i)
                }
                return .array(items)
            }
            guard let i = Int(first), i >= 0, i < items.count else { throw Failure(message: "index \(first) out of range", code: 422) }
            items[i] = try apply(items[i], tokens.dropFirst(), edit)
            return .array(items)
        default:
            throw Failure(message: "path goes through a scalar at \"\(first)\"", code: 422)
        }
    }
}
