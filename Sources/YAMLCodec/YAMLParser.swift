import CYAML
import GantryAPI

/// A syntax or limit error in a YAML/JSON stream, with 1-based line and column.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    public init(line: Int, column: Int, message: String) { self.line = line; self.column = column; self.message = message }
    public var description: String { "line \(line) column \(column): \(message)" }
}

/// Limits that keep hostile input from exhausting memory or time.
public struct YAMLLimits: Sendable {
    /// Nodes a document may expand to, counting every alias expansion ("billion laughs").
    public var maxNodes: Int = 1_000_000
    /// Nesting depth of mappings and sequences.
    public var maxDepth: Int = 256
    public init(maxNodes: Int = 1_000_000, maxDepth: Int = 256) { self.maxNodes = maxNodes; self.maxDepth = maxDepth }
}

/// One document of a stream: its root (nil for an empty document) and the line it starts on.
public struct YAMLDocument: Sendable {
    public var root: SourceNode?
    public var line: Int
}

/// Parses YAML 1.1 streams (JSON included) with libyaml's event API into `SourceNode` trees.
/// Aliases are resolved by sharing (copy-on-write), and their expanded size counts against
/// `maxNodes`; a stream with any syntax error fails as a whole.
public enum YAMLParser {
    /// An open mapping or sequence. Its items are the nodes of the shared stack from
    /// `start` on: one array for the whole document instead of one growing array per
    /// collection (a mapping of 11 keys reallocated its items six times).
    private struct Frame {
        var isMapping: Bool
        var start: Int
        var line: Int, column: Int
        var anchor: String?
        var size = 1
    }

    public static func parse(_ bytes: [UInt8], limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> [YAMLDocument] {
        try bytes.withUnsafeBufferPointer { (buf: UnsafeBufferPointer<UInt8>) throws(YAMLError) -> [YAMLDocument] in
            try parse(buf, limits: limits)
        }
    }

    public static func parse(_ text: String, limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> [YAMLDocument] {
        try parse(Array(text.utf8), limits: limits)
    }

    public static func parse(_ buf: UnsafeBufferPointer<UInt8>, limits: YAMLLimits) throws(YAMLError) -> [YAMLDocument] {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        let event = UnsafeMutablePointer<yaml_event_t>.allocate(capacity: 1)
        defer { parser.deallocate(); event.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { throw YAMLError(line: 0, column: 0, message: "cannot initialise the YAML parser") }
        defer { yaml_parser_delete(parser) }
        let empty: [UInt8] = [0]
        if buf.count == 0 {
            empty.withUnsafeBufferPointer { yaml_parser_set_input_string(parser, $0.baseAddress, 0) }
        } else {
            yaml_parser_set_input_string(parser, buf.baseAddress, buf.count)
        }

        var docs: [YAMLDocument] = []
        var stack: [Frame] = []
        var items: [SourceNode] = []
        items.reserveCapacity(64)
        var anchors: [String: (node: SourceNode, size: Int)] = [:]
        var docRoot: SourceNode?
        var docLine = 1
        var budget = 0

        func finish(_ node: SourceNode, size: Int, anchor: String?, into stack: inout [Frame], root: inout SourceNode?) {
            if let anchor { anchors[anchor] = (node, size) }
            if stack.isEmpty { root = node } else {
                items.append(node)
                stack[stack.count - 1].size += size
            }
        }

        while true {
            guard yaml_parser_parse(parser, event) == 1 else { throw parserError(parser) }
            defer { yaml_event_delete(event) }
            let e = event.pointee
            let line = Int(e.start_mark.line) + 1, column = Int(e.start_mark.column) + 1
            switch e.type {
            case YAML_STREAM_END_EVENT:
                return docs
            case YAML_DOCUMENT_START_EVENT:
                docRoot = nil; docLine = line; anchors = [:]; budget = 0
            case YAML_DOCUMENT_END_EVENT:
                docs.append(YAMLDocument(root: docRoot, line: docLine))
            case YAML_MAPPING_START_EVENT, YAML_SEQUENCE_START_EVENT:
                guard stack.count < limits.maxDepth else { throw YAMLError(line: line, column: column, message: "nesting deeper than \(limits.maxDepth) levels") }
                let isMap = e.type == YAML_MAPPING_START_EVENT
                let anchorPtr = isMap ? e.data.mapping_start.anchor : e.data.sequence_start.anchor
                stack.append(Frame(isMapping: isMap, start: items.count, line: line, column: column, anchor: anchorPtr.map { String(cString: $0) }))
                budget += 1
            case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
                let f = stack.removeLast()   // cannot fail: libyaml pairs every end event with its start event
                let node: SourceNode
                if f.isMapping {
                    var entries: [SourceNode.Entry] = []
                    entries.reserveCapacity((items.count - f.start) / 2)
                    var i = f.start
                    while i + 1 < items.count { entries.append(.init(key: items[i], value: items[i + 1])); i += 2 }
                    node = SourceNode(.mapping(entries), line: f.line, column: f.column)
                } else {
                    node = SourceNode(.sequence(Array(items[f.start...])), line: f.line, column: f.column)
                }
                items.removeSubrange(f.start...)
                finish(node, size: f.size, anchor: f.anchor, into: &stack, root: &docRoot)
            case YAML_SCALAR_EVENT:
                let s = e.data.scalar
                let text = s.length == 0 ? "" : String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
                var plain = s.style == YAML_PLAIN_SCALAR_STYLE
                if let tag = s.tag {
                    let t = String(cString: tag)
                    if t == "tag:yaml.org,2002:str" || t == "!!str" { plain = false }
                }
                budget += 1
                if budget > limits.maxNodes { throw YAMLError(line: line, column: column, message: "document expands to more than \(limits.maxNodes) nodes") }
                finish(SourceNode(.scalar(text, plain: plain), line: line, column: column), size: 1, anchor: s.anchor.map { String(cString: $0) }, into: &stack, root: &docRoot)
            case YAML_ALIAS_EVENT:
                let name = String(cString: e.data.alias.anchor)
                guard let target = anchors[name] else { throw YAMLError(line: line, column: column, message: "unknown alias *\(name)") }
                budget += target.size
                if budget > limits.maxNodes {
                    throw YAMLError(line: line, column: column, message: "aliases expand the document past \(limits.maxNodes) nodes (a \"billion laughs\" pattern?)")
                }
                finish(target.node, size: target.size, anchor: nil, into: &stack, root: &docRoot)
            default:
                break
            }
        }
    }

    private static func parserError(_ p: UnsafeMutablePointer<yaml_parser_t>) -> YAMLError {
        let pp = p.pointee
        var msg = pp.problem.map { String(cString: $0) } ?? "invalid YAML"
        let mark = pp.problem_mark
        if let ctx = pp.context { msg += " " + String(cString: ctx) }
        if msg.contains("cannot start any token") || msg.contains("found a tab") {
            msg += " (tabs cannot indent YAML; use spaces)"
        }
        if pp.error == YAML_READER_ERROR {
            msg = "not valid UTF-8 text (\(pp.problem.map { String(cString: $0) } ?? "bad byte") at byte \(pp.problem_offset))"
            // The reader reports a byte offset rather than a line.
            return YAMLError(line: 0, column: 0, message: msg)
        }
        return YAMLError(line: Int(mark.line) + 1, column: Int(mark.column) + 1, message: msg)
    }
}
