/// A rate limit as a token bucket: `rate` tokens a second, at most `burst` saved up.
/// A pure value: the caller passes the time (any monotonic clock, in seconds), so tests
/// drive it with a test clock and the API with `ContinuousClock`.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var updated: Double

    /// A full bucket at `now`. A `rate` of 0 or less means no limit.
    public init(rate: Double, burst: Double, now: Double) {
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = max(1, burst)
        self.updated = now
    }

    /// Takes one token: nil when the call may proceed, otherwise how long until one is
    /// there (what `Retry-After` says). A clock that went backwards refills nothing.
    public mutating func take(now: Double) -> Double? {
        guard rate > 0 else { return nil }
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return (1 - tokens) / rate
    }

    /// Whether the bucket is full at `now`: an idle caller's bucket can be forgotten.
    public func isFull(now: Double) -> Bool {
        rate <= 0 || tokens + max(0, now - updated) * rate >= burst
    }

    private mutating func refill(now: Double) {
        let elapsed = now - updated
        guard elapsed > 0 else { return }
        tokens = min(burst, tokens + elapsed * rate)
        updated = now
    }
}
