import Testing
import Foundation
@testable import GantryAPI
@testable import GantryCLI
@testable import Controllers

/// Values a damaged state database or an odd flag can carry into formatting and arithmetic:
/// each gives an answer, never a trap.
@Suite struct TrapAuditTests {
    @Test(arguments: [Int64.min, Int64.min + 1, -100_000_000_000, -1, 0, 86399, Int64.max])
    func anyTimestampFormats(_ s: Int64) {
        let t = Timestamp(seconds: s).rfc3339
        #expect(t.hasSuffix("Z"))
        #expect(!formatAge(from: Timestamp(seconds: s), now: Timestamp(seconds: 1_700_000_000)).isEmpty)
        #expect(!formatAge(from: Timestamp(seconds: 1_700_000_000), now: Timestamp(seconds: s)).isEmpty)
    }

    @Test func negativeTimesAreFlooredToTheirDay() {
        #expect(Timestamp(seconds: -1).rfc3339 == "1969-12-31T23:59:59Z")
        #expect(Timestamp(seconds: -86400).rfc3339 == "1969-12-31T00:00:00Z")
        #expect(Timestamp(seconds: -86401).rfc3339 == "1969-12-30T23:59:59Z")
    }

    @Test func doublesClampToTimestamps() {
        #expect(Timestamp(secondsSince1970: .infinity).seconds == .max)
        #expect(Timestamp(secondsSince1970: -.infinity).seconds == .min)
        #expect(Timestamp(secondsSince1970: .nan).seconds == 0)
        #expect(Timestamp(secondsSince1970: 1e300).seconds == .max)
        #expect(Timestamp(secondsSince1970: 1.9).seconds == 1)
        #expect(Timestamp(secondsSince1970: -1.5).seconds == -2)
    }

    /// A high surrogate escape followed by an escape that is not a low surrogate.
    @Test func unpairedSurrogatesParse() throws {
        #expect(try JSON.parse("\"\\uD800\\u0041\"") == .string("\u{FFFD}"))
        #expect(try JSON.parse("\"\\uD83D\\uDE00\"") == .string("\u{1F600}"))
    }

    @Test func totalGPUsSaturate() throws {
        var spec = WorkloadSpec()
        spec.resources = ResourceList(["gpu": Quantity(milli: Int64.max / 1000 * 1000)])
        spec.replicas = 10_000
        #expect(spec.totalGPUs == .max)
    }
}

extension TrapAuditTests {
    /// A stored status with a GPU count too large for milli-units (a damaged row) is dropped.
    @Test func aHugeStoredQuantityDoesNotTrap() throws {
        let json = "{\"deserved\":{\"gpu\":9223372036854775807,\"cpu\":4}}"
        guard case .queue(let q) = ObjectStatus.from(try JSON.parse(json), kind: .queue) else { Issue.record("not a queue status"); return }
        #expect(q.deserved["gpu"] == .zero && q.deserved["cpu"] == Quantity(units: 4))
    }
}


extension TrapAuditTests {
    @Test func generationsDoNotOverflow() {
        #expect(Inventory.next(1) == 2)
        #expect(Inventory.next(.max) == 1)
    }
}

extension TrapAuditTests {
    /// Counters the daemon increments come back from a damaged row within range.
    @Test func storedCountersAreClamped() throws {
        let json = "{\"phase\":\"Pending\",\"dispatchCount\":9223372036854775807,\"retryCount\":-3}"
        guard case .workload(let w) = ObjectStatus.from(try JSON.parse(json), kind: .workload) else { Issue.record("not a workload status"); return }
        #expect(w.dispatchCount == Int(Int32.max) && w.retryCount == 0)
    }
}
