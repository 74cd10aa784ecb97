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
    }

    /// When the next request may go at the pace; nil before the first.
    private var nextAt: ContinuousClock.Instant?
    /// Until when the endpoint asked for nothing (`429` with `Retry-After`).
    package private(set) var pausedUntil: ContinuousClock.Instant?

    package init() {}

    /// Reserves the instant of a request at `perSecond` (nil: no limit). Reserved when the
    /// request is ready to go (claimed), so the time a claim takes costs no pace.
    package mutating func reserve(perSecond: Double?, now: ContinuousClock.Instant) -> Slot {
        let earliest = now + wait(perSecond: perSecond, now: now)
        if let perSecond, perSecond > 0 { nextAt = earliest + .seconds(1 / perSecond) }
        return earliest == now ? .now : .at(earliest)
    }

    /// How long a request now would wait for its turn, without reserving it.
    package func wait(perSecond: Double?, now: ContinuousClock.Instant) -> Duration {
        var earliest = now
        if let pausedUntil, pausedUntil > earliest { earliest = pausedUntil }
        if perSecond != nil, let nextAt, nextAt > earliest { earliest = nextAt }
        return earliest - now
    }

    /// The endpoint asked for no request until `until`.
    package mutating func pause(until: ContinuousClock.Instant) {
        pausedUntil = max(pausedUntil ?? until, until)
    }
}
