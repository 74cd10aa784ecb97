/// How many requests one endpoint may have in flight from this worker, adapted to what the
/// endpoint shows rather than fixed: a TCP Vegas-style limit on its latency.
///
/// The endpoint's **baseline** is the lowest latency it answered with over the last one or
/// two windows of `window` answers, so it follows an endpoint that became slower for good
/// instead of holding it to a minimum seen once. While answers come within `tolerance` ×
/// the baseline and the endpoint uses at least half its limit, the limit grows: by one per
/// answer until the first sign of load (slow start), then by about one per round of
/// `limit` answers. A slower answer lowers it in proportion (at most by half, smoothed over
/// several answers); a timeout halves it. It stays between `floor` and `ceiling`. No
/// wall-clock constant decides anything: only the endpoint's latency measured against its
/// own baseline.
package struct ConcurrencyLimit: Sendable, Equatable {
    package struct Settings: Sendable, Equatable {
        package var floor: Int
        package var ceiling: Int
        /// The limit of an endpoint not heard from yet.
        package var initial: Int
        /// Answers within this multiple of the baseline count as unloaded.
        package var tolerance: Double
        /// Answers per baseline window.
        package var window: Int
        /// The weight of one slower answer in lowering the limit.
        package var smoothing: Double

        package init(floor: Int = 1, ceiling: Int, initial: Int? = nil, tolerance: Double = 2, window: Int = 100, smoothing: Double = 0.2) {
            precondition(floor >= 1 && ceiling >= floor && tolerance > 1 && window >= 1 && smoothing > 0 && smoothing <= 1)
            self.floor = floor
            self.ceiling = ceiling
            self.initial = min(ceiling, max(floor, initial ?? min(ceiling, 4)))
            self.tolerance = tolerance
            self.window = window
            self.smoothing = smoothing
        }
    }

    package let settings: Settings
    private var value: Double
    private var slowStart = true
    private var windowMinimum: Duration?
    private var previousMinimum: Duration?
    private var answersInWindow = 0

    package init(_ settings: Settings) {
        self.settings = settings
        value = Double(settings.initial)
    }

    /// Requests the endpoint may have in flight now.
    package var limit: Int { max(settings.floor, min(settings.ceiling, Int(value))) }

    /// The lowest latency of the current and the previous window; nil before any answer.
    package var baseline: Duration? {
        switch (windowMinimum, previousMinimum) {
        case let (current?, previous?): min(current, previous)
        case let (current, previous): current ?? previous
        }
    }

    /// The endpoint answered after `latency`, with `inFlight` requests out (this one
    /// included) when it did.
    package mutating func answered(after latency: Duration, inFlight: Int) {
        windowMinimum = min(windowMinimum ?? latency, latency)
        answersInWindow += 1
        if answersInWindow == settings.window {
            previousMinimum = windowMinimum
            windowMinimum = nil
            answersInWindow = 0
        }
        guard let baseline else { return }
        let allowed = max(baseline, .microseconds(1)) * settings.tolerance
        if latency <= allowed {
            // An endpoint that does not use its limit gives no evidence it can take more.
            guard inFlight * 2 >= limit else { return }
            value = min(Double(settings.ceiling), value + (slowStart ? 1 : 1 / value))
        } else {
            slowStart = false
            let gradient = max(0.5, allowed / latency)
            value = max(Double(settings.floor), value * (1 - settings.smoothing + settings.smoothing * gradient))
        }
    }

    /// A request to the endpoint timed out.
    package mutating func timedOut() {
        slowStart = false
        value = max(Double(settings.floor), value / 2)
    }
}
