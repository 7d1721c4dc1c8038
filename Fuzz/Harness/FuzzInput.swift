/// Fuzzer bytes read as a stream of small choices. Past the end every read returns 0, so
/// any byte string is a complete, deterministic program.
struct FuzzInput {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A value in 0..<n (n > 0).
    mutating func pick(_ n: Int) -> Int { Int(byte()) % n }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    mutating func uint16() -> Int { Int(byte()) | Int(byte()) << 8 }

    mutating func element<T>(_ choices: [T]) -> T { choices[pick(choices.count)] }
}
