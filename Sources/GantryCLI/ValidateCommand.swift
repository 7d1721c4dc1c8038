import Foundation
import Synchronization
import GantryAPI
import DirectorySource
import YAMLCodec

/// `gantry validate -f FILE_OR_DIR ... [--field-validation=Strict|Warn|Ignore] [-o json]`:
/// offline lint for GitOps CI. Reports every error and warning (file:line: field: message),
/// duplicates across the given files, and workloads naming queues that none of the files
/// declare. Exit 1 on any error (unknown fields are errors under Strict, the default).
struct ValidateCommand {
    var paths: [String]
    var fieldValidation: FieldValidation
    var json: Bool

    init(_ args: inout Args) throws {
        paths = args.strings("filename") + args.positionals
        fieldValidation = try CLI.fieldValidation(&args)
        json = args.string("output") == "json"
        guard !paths.isEmpty else { throw UsageError("validate needs -f FILE_OR_DIR (repeatable)") }
    }

    final class Collector: ManifestSink, @unchecked Sendable {
        let changes = Mutex<[ManifestChange]>([])
        func apply(_ c: [ManifestChange]) { changes.withLock { $0 += c } }
    }

    func run() -> Int32 {
        var errors: [FieldError] = [], warnings: [FieldError] = []
        var files = 0
        var options = DirectorySource.Options()
        options.fieldValidation = fieldValidation
        var objects: [ManifestObject] = []
        var firstSeen: [ObjectKey: SourceRef] = [:]
        func join(_ dir: String, _ rel: String) -> String { dir.hasSuffix("/") ? dir + rel : dir + "/" + rel }
        func rebased(_ e: FieldError, _ dir: String?) -> FieldError { var e = e; if let dir { e.file = join(dir, e.file) }; return e }
        func take(_ changes: [ManifestChange], dir: String?) {
            for ch in changes {
                switch ch {
                case .fileReport(_, let fatal, let errs, let warns):
                    files += 1
                    errors += ((fatal.map { [$0] } ?? []) + errs).map { rebased($0, dir) }
                    warnings += warns.map { rebased($0, dir) }
                case .upsert(var o):
                    if let dir { o.source.file = join(dir, o.source.file); o.invalid = o.invalid.map { rebased($0, dir) } }
                    if let first = firstSeen[o.key] {
                        errors.append(FieldError(file: o.source.file, line: o.source.line, path: "metadata.name",
                                                 message: "\(o.key.kind.rawValue) \(o.key.qualifiedName) is already declared at \(first.description)"))
                    } else {
                        firstSeen[o.key] = o.source
                        objects.append(o)
                    }
                case .duplicate(let key, let refs):
                    for r in refs.dropFirst() {
                        errors.append(FieldError(file: dir.map { join($0, r.file) } ?? r.file, line: r.line, path: "metadata.name",
                                                 message: "\(key.kind.rawValue) \(key.qualifiedName) is already declared at \(dir.map { join($0, refs[0].file) } ?? refs[0].file):\(refs[0].line)"))
                    }
                default: break
                }
            }
        }
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                errors.append(FieldError(file: p, line: 0, path: "", message: "no such file or directory")); continue
            }
            if isDir.boolValue {
                let c = Collector()
                let src = DirectorySource(root: p, options: options, sink: c)
                do { try src.start(watch: false) } catch { errors.append(FieldError(file: p, line: 0, path: "", message: "\(error)")); continue }
                take(c.changes.withLock { $0 }, dir: p)
            } else {
                var index = ManifestIndex()
                take(index.update(DirectorySource.readManifest(path: p, display: p, options: options)), dir: nil)
            }
        }
        for o in objects { errors += o.invalid }
        let queues = Set(objects.filter { $0.key.kind == .queue }.map(\.meta.name))
        if !queues.isEmpty {
            for o in objects {
                if let w = o.spec.workload, !queues.contains(w.queue) {
                    warnings.append(FieldError(file: o.source.file, line: o.source.line, path: "spec.queue", message: "queue \"\(w.queue)\" is not declared in these files"))
                }
                if let q = o.spec.queue, let parent = q.parent, !queues.contains(parent) {
                    warnings.append(FieldError(file: o.source.file, line: o.source.line, path: "spec.parent", message: "parent queue \"\(parent)\" is not declared in these files"))
                }
            }
        }
        errors.sort { ($0.file, $0.line) < ($1.file, $1.line) }
        warnings.sort { ($0.file, $0.line) < ($1.file, $1.line) }
        let failed = !errors.isEmpty
        if json {
            func v(_ e: FieldError) -> Value { .object([.init("file", .string(e.file)), .init("line", .int(Int64(e.line))), .init("field", .string(e.path)), .init("message", .string(e.message))]) }
            out(JSON.encode(.object([.init("valid", .bool(!failed)), .init("files", .int(Int64(files))), .init("objects", .int(Int64(objects.count))),
                                     .init("errors", .array(errors.map(v))), .init("warnings", .array(warnings.map(v)))]), pretty: true))
        } else {
            for e in errors { out("error: \(e)") }
            for w in warnings { out("warning: \(w)") }
            out("\(files) files, \(objects.count) objects, \(errors.count) errors, \(warnings.count) warnings")
        }
        return failed ? 1 : 0
    }
}
