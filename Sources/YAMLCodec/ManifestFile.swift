import GantryAPI

/// The outcome of reading one manifest file: the objects it declares (each with the
/// warnings its document produced), and the errors of documents that could not be used.
/// `fatal` is set when the file as a whole could not be read or parsed; then `objects` is empty.
public struct ManifestFile: Sendable {
    public var path: String
    public var objects: [ManifestObject] = []
    public var warnings: [FieldError] = []
    public var errors: [FieldError] = []
    public var fatal: FieldError?
    /// True when some document's identity could not be determined, so the set of objects
    /// in this file is not known for sure (deletions must not be inferred from it).
    public var incomplete: Bool { fatal != nil || !errors.isEmpty }

    public init(path: String) { self.path = path }

    /// Decodes a whole file's bytes. `path` is what errors print (relative to the spec dir).
    public static func decode(path: String, bytes: [UInt8], limits: YAMLLimits = YAMLLimits(), fieldValidation: FieldValidation = .strict) -> ManifestFile {
        var result = ManifestFile(path: path)
        let docs: [YAMLDocument]
        do { docs = try YAMLParser.parse(bytes, limits: limits) } catch {
            result.fatal = FieldError(file: path, line: error.line, path: "", message: error.message)
            return result
        }
        var decoder = ManifestDecoder(file: path, fieldValidation: fieldValidation)
        for (i, doc) in docs.enumerated() {
            guard let root = doc.root, !root.isNull else { continue }
            switch decoder.decode(root, index: i) {
            case .object(let obj, let warnings):
                result.objects.append(obj)
                result.warnings += warnings
            case .rejected(let errs):
                result.errors += errs
            }
        }
        return result
    }
}
