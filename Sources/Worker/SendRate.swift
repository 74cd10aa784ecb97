/// The pace of requests to one endpoint from this worker, as pure state: its share of the
/// endpoint's rate limit, and the pause a `429` with `Retry-After` asks for. Virtual
/// scheduling (GCRA without a burst): each request gets the earliest instant that keeps
/// the pace, so requests go evenly spaced rather than in bursts.
package struct SendRate: Sendable, Equatable {
    package enum Slot: Sendable, Equatable {
        /// Send now.
        case now
        /// Send at this instant (reserved).
        case at(ContinuousClock.Instant)
        /// Not within the wait allowed: defer the delivery (nothing reserved).
        case later
    }

    /// When the next request may go at the pace; nil before the first.
    private var nextAt: ContinuousClock.Instant?
    /// Until when the endpoint asked for nothing (`429` with `Retry-After`).
    package private(set) var pausedUntil: ContinuousClock.Instant?

    package init() {}

    /// Reserves the instant of a request at `perSecond` (nil: no limit), unless it is more
    /// than `maxWait` after `now`.
    package mutating func reserve(perSecond: Double?, now: ContinuousClock.Instant, maxWait: Duration) -> Slot {
        var earliest = now
        if let pausedUntil, pausedUntil > earliest { earliest = pausedUntil }
        if perSecond != nil, let nextAt, nextAt > earliest { earliest = nextAt }
        guard earliest - now <= maxWait else { return .later }
        if let perSecond, perSecond > 0 { nextAt = earliest + .seconds(1 / perSecond) }
        return earliest == now ? .now : .at(earliest)
    }

    /// Whether a request now would have to wait or be deferred.
    package func isPaced(perSecond: Double?, now: ContinuousClock.Instant) -> Bool {
        if let pausedUntil, pausedUntil > now { return true }
        if perSecond != nil, let nextAt, nextAt > now { return true }
        return false
    }

    /// The endpoint asked for no request until `until`.
    package mutating func pause(until: ContinuousClock.Instant) {
        pausedUntil = max(pausedUntil ?? until, until)
    }
}
