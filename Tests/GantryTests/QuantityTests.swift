import Testing
@testable import GantryAPI

@Suite(.timeLimit(.minutes(1))) struct QuantityTests {
    static let cases: [(String, Int64)] = [
        ("8", 8000), ("500m", 500), ("1.5", 1500), ("2e3", 2_000_000), ("64Gi", 68_719_476_736_000),
        ("1Ti", 1_099_511_627_776_000), ("1k", 1_000_000), ("0.5Ki", 512_000), ("+3", 3000), ("0", 0), ("100M", 100_000_000_000),
    ]
    @Test(arguments: cases)
    func parsesKubernetesSyntax(text: String, milli: Int64) throws {
        #expect(try Quantity.parse(text).milli == milli)
    }

    @Test(arguments: ["", "abc", "12Qi", "1..2", "--1", "1e", "Gi", "0x10", "1 Gi x"])
    func rejectsMalformed(text: String) {
        #expect(throws: Quantity.ParseError.self) { try Quantity.parse(text) }
    }

    @Test func rejectsOverflowAndExcessPrecision() throws {
        #expect(throws: Quantity.ParseError.tooLarge) { try Quantity.parse("100Ei") }
        #expect(throws: Quantity.ParseError.tooPrecise) { try Quantity.parse("0.0001") }
    }

    @Test func negativeParsesButKeepsSign() throws {
        #expect(try Quantity.parse("-1").milli == -1000)
    }

    @Test func keepsTextAndComparesByValue() throws {
        let a = try Quantity.parse("1Gi"), b = try Quantity.parse("1073741824")
        #expect(a == b)
        #expect(a.text == "1Gi")
        #expect(try Quantity.parse("500m") < Quantity.parse("1"))
        #expect(try Quantity.parse("1500m").wholeUnits == nil)
        #expect(try Quantity.parse("3").wholeUnits == 3)
    }
}

@Suite(.timeLimit(.minutes(1))) struct TimestampTests {
    @Test func formatsAndParsesRFC3339() throws {
        let t = try #require(Timestamp(rfc3339: "2026-01-15T10:31:00Z"))
        #expect(t.rfc3339 == "2026-01-15T10:31:00Z")
        #expect(Timestamp(rfc3339: "2026-01-15T12:31:00+02:00") == t)
        #expect(Timestamp(rfc3339: "2026-01-15T10:31:00.123Z") == t)
        #expect(Timestamp(seconds: 0).rfc3339 == "1970-01-01T00:00:00Z")
        #expect(Timestamp(rfc3339: "2024-02-29")?.rfc3339 == "2024-02-29T00:00:00Z")
        #expect(Timestamp(rfc3339: "2026-13-01T00:00:00Z") == nil)
        #expect(Timestamp(rfc3339: "yesterday") == nil)
    }

    @Test func ageLikeKubectl() {
        let now = Timestamp(seconds: 1_000_000)
        #expect(formatAge(from: Timestamp(seconds: 1_000_000 - 45), now: now) == "45s")
        #expect(formatAge(from: Timestamp(seconds: 1_000_000 - 600), now: now) == "10m")
        #expect(formatAge(from: Timestamp(seconds: 1_000_000 - 3 * 3600), now: now) == "3h")
        #expect(formatAge(from: Timestamp(seconds: 1_000_000 - 5 * 86400), now: now) == "5d")
    }
}

@Suite(.timeLimit(.minutes(1))) struct JSONTests {
    @Test func roundTripsValues() throws {
        let v = Value.object([.init("a", .string("x\"y\n\u{1}")), .init("b", .array([.int(-3), .double(1.5), .bool(true), .null])), .init("c", .object([]))])
        let text = JSON.encode(v)
        #expect(try JSON.parse(text) == v)
        #expect(try JSON.parse(JSON.encode(v, pretty: true)) == v)
    }

    @Test func rejectsBadJSON() throws {
        #expect(throws: JSON.ParseError.self) { try JSON.parse("{\"a\":1,}") }
        #expect(throws: JSON.ParseError.self) { try JSON.parse("[1] x") }
        #expect(throws: JSON.ParseError.self) { try JSON.parse("\"open") }
    }

    @Test func decodesUnicodeEscapes() throws {
        #expect(try JSON.parse("\"\\u00e9\\ud83d\\ude00\"") == .string("é😀"))
    }
}
