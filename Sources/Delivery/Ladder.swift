import Foundation
import HeraldSupport

/// The backoff ladder: how long a delivery waits after each failed attempt.
///
/// Each rung is a durable queue whose messages expire after the rung's delay and
/// dead-letter back to the work queue, so a scheduled retry survives any restart and
/// no process holds it in memory. The default `1m, 5m, 30m, 2h, 12h` gives 6 attempts.
public struct Ladder: Sendable, Equatable, CustomStringConvertible {
    public let delays: [Duration]

    public static let standard = Ladder(checked: [.seconds(60), .seconds(300), .seconds(1800), .seconds(7200), .seconds(43_200)])

    private init(checked delays: [Duration]) {
        self.delays = delays
    }

    /// At least one rung, each between 1 ms and 7 days.
    public init(_ delays: [Duration]) throws(LadderError) {
        guard !delays.isEmpty else { throw LadderError("the ladder needs at least one delay") }
        for delay in delays where delay < .milliseconds(1) || delay > .seconds(7 * 86_400) {
            throw LadderError("each delay must be between 1ms and 7d")
        }
        self.delays = delays
    }

    /// Parses `1m,5m,30m,2h,12h` (units ms, s, m, h, d).
    public init(parsing text: String) throws(LadderError) {
        var delays: [Duration] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let delay = Self.parse(part.trimmingCharacters(in: .whitespaces)) else {
                throw LadderError("'\(part)' is not a delay like 500ms, 30s, 5m, 2h or 1d")
            }
            delays.append(delay)
        }
        try self.init(delays)
    }

    /// Attempts in all: the first one and one per rung.
    public var maxAttempts: Int { delays.count + 1 }

    /// The rung to wait on after attempt `attempt` (1-based) failed transiently, or nil
    /// when that was the last attempt. A `Retry-After` picks the first rung at least that
    /// long (never an earlier rung than the ladder's own, at most the last one).
    public func rung(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Int? {
        let next = attempt - 1
        guard next >= 0, next < delays.count else { return nil }
        guard let retryAfter else { return next }
        let fitting = delays.firstIndex { $0 >= retryAfter } ?? delays.count - 1
        return max(next, fitting)
    }

    /// A short name for a rung's delay, used in queue names: `1m`, `500ms`, `2h`.
    public func label(rung: Int) -> String {
        Self.label(delays[rung])
    }

    public var description: String { delays.map(Self.label).joined(separator: ",") }

    private static func label(_ duration: Duration) -> String {
        let ms = duration.milliseconds
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms % size == 0 {
            return "\(ms / size)\(unit)"
        }
        return "\(ms)ms"
    }

    /// One duration like `500ms`, `30s`, `5m`, `2h`, `1d`; nil otherwise.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (unit, size) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count)
            if unit == "m" && number.hasSuffix("m") { continue }
            guard let value = Int64(number), value > 0 else { return nil }
            let (milliseconds, overflow) = value.multipliedReportingOverflow(by: size)
            return overflow ? nil : .milliseconds(milliseconds)
        }
        return nil
    }
}

public struct LadderError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}
