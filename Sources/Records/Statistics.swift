public import Foundation

/// Attempt durations counted per bucket: adding two hours is adding their counts, and a
/// percentile is read from the buckets (exact to the bucket, interpolated within it).
public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in milliseconds; a last bucket holds everything from 30 s on.
    public static let bounds = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000]

    /// One count per bucket, `bounds.count + 1` of them.
    public private(set) var counts: [Int]

    public init() {
        counts = Array(repeating: 0, count: Self.bounds.count + 1)
    }

    /// From stored counts; a list of another length (bounds changed since) is padded or cut.
    public init(counts: [Int]) {
        self.init()
        for (index, count) in counts.prefix(self.counts.count).enumerated() { self.counts[index] = count }
    }

    public var total: Int { counts.reduce(0, +) }

    /// The bucket a duration falls in.
    public static func bucket(milliseconds: Int) -> Int {
        bounds.firstIndex { milliseconds < $0 } ?? bounds.count
    }

    public mutating func add(milliseconds: Int) {
        counts[Self.bucket(milliseconds: milliseconds)] += 1
    }

    public mutating func add(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
    }

    /// The duration below which a share `quantile` (0…1) of the attempts took, in ms;
    /// nil without attempts. In the open last bucket, its lower bound (30 000).
    public func percentile(_ quantile: Double) -> Double? {
        let total = total
        guard total > 0 else { return nil }
        let target = max(1, (Double(total) * min(max(quantile, 0), 1)).rounded(.up))
        var below = 0
        for (index, count) in counts.enumerated() where count > 0 {
            if Double(below + count) >= target {
                let lower = index == 0 ? 0 : Double(Self.bounds[index - 1])
                guard index < Self.bounds.count else { return lower }
                let upper = Double(Self.bounds[index])
                return lower + (upper - lower) * (target - Double(below)) / Double(count)
            }
            below += count
        }
        return Double(Self.bounds.last!)
    }
}

/// One endpoint's attempts in one hour, by what the receiver did.
public struct EndpointHour: Sendable, Equatable {
    /// The hour's start.
    public var hour: Date
    /// Answered with a 2xx.
    public var succeeded: Int
    /// Answered with another status.
    public var rejected: Int
    /// Not answered: timeout, connection or DNS failure, refused address.
    public var unanswered: Int
    public var latency: LatencyHistogram

    public init(hour: Date, succeeded: Int = 0, rejected: Int = 0, unanswered: Int = 0, latency: LatencyHistogram = LatencyHistogram()) {
        self.hour = hour
        self.succeeded = succeeded
        self.rejected = rejected
        self.unanswered = unanswered
        self.latency = latency
    }

    public var attempts: Int { succeeded + rejected + unanswered }

    /// Counts an attempt that took `milliseconds` and ended with `statusCode` (nil: no answer).
    public mutating func add(statusCode: Int?, milliseconds: Int) {
        switch statusCode {
        case .some(200...299): succeeded += 1
        case .some: rejected += 1
        case nil: unanswered += 1
        }
        latency.add(milliseconds: milliseconds)
    }

    /// The start of the hour `date` falls in (UTC).
    public static func start(of date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
    }
}

/// What the endpoints list shows per endpoint: the last day's attempts and the newest delivery.
public struct EndpointSummary: Sendable, Equatable {
    public var attempts: Int
    public var succeeded: Int
    public var lastDeliveryAt: Date?
    public var lastStatus: DeliveryState.Status?

    public init(attempts: Int = 0, succeeded: Int = 0, lastDeliveryAt: Date? = nil, lastStatus: DeliveryState.Status? = nil) {
        self.attempts = attempts
        self.succeeded = succeeded
        self.lastDeliveryAt = lastDeliveryAt
        self.lastStatus = lastStatus
    }

    /// The share of attempts answered with a 2xx; nil without attempts.
    public var successRate: Double? { attempts > 0 ? Double(succeeded) / Double(attempts) : nil }
}

/// A tenant's attempts over a period, for the operator console.
public struct TenantActivity: Sendable, Equatable {
    public var attempts: Int
    public var failed: Int

    public init(attempts: Int = 0, failed: Int = 0) {
        self.attempts = attempts
        self.failed = failed
    }

    public var failureRate: Double? { attempts > 0 ? Double(failed) / Double(attempts) : nil }
}
