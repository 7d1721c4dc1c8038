import CYAML
import GantryAPI

/// Writes `Value`s as YAML with libyaml's emitter: block style, unlimited width, and strings
/// that would read back as another type (`"true"`, `"8"`, `""`) double-quoted.
public enum YAMLEmitter {
    private final class Sink { var bytes: [UInt8] = [] }

    /// One document per value, separated by `---` when there are several.
    public static func emit(_ values: [Value]) -> String {
        let emitter = UnsafeMutablePointer<yaml_emitter_t>.allocate(capacity: 1)
        let event = UnsafeMutablePointer<yaml_event_t>.allocate(capacity: 1)
        defer { emitter.deallocate(); event.deallocate() }
        guard yaml_emitter_initialize(emitter) == 1 else { return "" }
        defer { yaml_emitter_delete(emitter) }
        let sink = Sink()
        let ctx = Unmanaged.passUnretained(sink).toOpaque()
        yaml_emitter_set_output(emitter, { data, buffer, size in
            guard let data, let buffer else { return 0 }
            let s = Unmanaged<Sink>.fromOpaque(data).takeUnretainedValue()
            s.bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
            return 1
        }, ctx)
        yaml_emitter_set_width(emitter, -1)
        yaml_emitter_set_unicode(emitter, 1)
        yaml_emitter_set_indent(emitter, 2)

        func emit() { _ = yaml_emitter_emit(emitter, event) }
        yaml_stream_start_event_initialize(event, YAML_UTF8_ENCODING); emit()
        for (i, v) in values.enumerated() {
            yaml_document_start_event_initialize(event, nil, nil, nil, i == 0 ? 1 : 0); emit()
            node(v, emitter: emitter, event: event)
            yaml_document_end_event_initialize(event, 1); emit()
        }
        yaml_stream_end_event_initialize(event); emit()
        _ = yaml_emitter_flush(emitter)
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    private static func scalar(_ text: String, plain: Bool, emitter: UnsafeMutablePointer<yaml_emitter_t>, event: UnsafeMutablePointer<yaml_event_t>) {
        var bytes = Array(text.utf8)
        let style: yaml_scalar_style_t
        if plain { style = YAML_PLAIN_SCALAR_STYLE } else if needsQuotes(text) { style = YAML_DOUBLE_QUOTED_SCALAR_STYLE } else if text.contains("\n") { style = YAML_LITERAL_SCALAR_STYLE } else { style = YAML_ANY_SCALAR_STYLE }
        bytes.withUnsafeMutableBufferPointer { b in
            _ = yaml_scalar_event_initialize(event, nil, nil, b.baseAddress, Int32(b.count), 1, 1, style)
        }
        _ = yaml_emitter_emit(emitter, event)
    }

    /// True when a plain scalar with this text would not read back as the same string.
    static func needsQuotes(_ s: String) -> Bool {
        if s.isEmpty { return true }
        switch s.lowercased() {
        case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", ".nan": return true
        default: break
        }
        if Int64(s) != nil || Double(s) != nil { return true }
        if let f = s.first, f.isNumber || f == "-" || f == "+" || f == "." {
            // 0x1F, 1e3, 12:30 and other number-like forms of YAML 1.1
            if s.allSatisfy({ $0.isNumber || "._:+-eExXabcdefABCDEF".contains($0) }) { return true }
        }
        return false
    }

    private static func node(_ v: Value, emitter: UnsafeMutablePointer<yaml_emitter_t>, event: UnsafeMutablePointer<yaml_event_t>) {
        switch v {
        case .null: scalar("null", plain: true, emitter: emitter, event: event)
        case .bool(let b): scalar(b ? "true" : "false", plain: true, emitter: emitter, event: event)
        case .int(let i): scalar(String(i), plain: true, emitter: emitter, event: event)
        case .double(let d): scalar(d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)", plain: true, emitter: emitter, event: event)
        case .string(let s): scalar(s, plain: false, emitter: emitter, event: event)
        case .array(let items):
            _ = yaml_sequence_start_event_initialize(event, nil, nil, 1, items.isEmpty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE)
            _ = yaml_emitter_emit(emitter, event)
            for item in items { node(item, emitter: emitter, event: event) }
            yaml_sequence_end_event_initialize(event); _ = yaml_emitter_emit(emitter, event)
        case .object(let members):
            _ = yaml_mapping_start_event_initialize(event, nil, nil, 1, members.isEmpty ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE)
            _ = yaml_emitter_emit(emitter, event)
            for m in members {
                scalar(m.key, plain: false, emitter: emitter, event: event)
                node(m.value, emitter: emitter, event: event)
            }
            yaml_mapping_end_event_initialize(event); _ = yaml_emitter_emit(emitter, event)
        }
    }
}
