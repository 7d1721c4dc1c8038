import GantryAPI

/// What a source reports: objects in force after a change, objects gone, and problems with
/// files or documents (for log lines and Warning events).
public enum ManifestChange: Sendable {
    case upsert(ManifestObject)
    case delete(ObjectKey)
    /// Errors and warnings of one file at its latest read; `errors` empty and `fatal` nil
    /// means the file is fine now.
    case fileReport(file: String, fatal: FieldError?, errors: [FieldError], warnings: [FieldError])
    /// An object declared in more than one file; `files` in path order, the first in force.
    case duplicate(ObjectKey, files: [SourceRef])
    /// A document whose new content is invalid; the previous valid spec stays in force.
    case invalidChangeKept(ObjectKey, errors: [FieldError])
}

/// Receives batches of changes, in order, from one thread at a time.
public protocol ManifestSink: Sendable {
    func apply(_ changes: [ManifestChange])
}
