/// Whether a worker sends to an endpoint at all, as pure state with time passed in.
///
/// Closed, it counts attempts and failures over a rolling `window`; when at least
/// `minimumAttempts` were made and `failureRate` of them failed, it opens. Open, it holds
/// every delivery (the caller defers it, unattempted and uncounted, so a receiver's outage
/// does not spend every delivery's retry ladder) until `coolDown` has passed; then one
/// caller sends a probe (half-open): a success closes the circuit, a failure opens it for
/// another cool-down.
package struct CircuitBreaker: Sendable, Equatable {
    package struct Settings: Sendable, Equatable {
        /// The share of failed attempts (0…1) that opens the circuit.
        package var failureRate: Double
        /// Fewer attempts in the window never open it; 0 turns the breaker off.
        package var minimumAttempts: Int
        package var window: Duration
        package var coolDown: Duration

        package init(failureRate: Double = 0.5, minimumAttempts: Int = 20, window: Duration = .seconds(60), coolDown: Duration = .seconds(30)) {
            precondition(failureRate > 0 && failureRate <= 1 && minimumAttempts >= 0 && window > .zero && coolDown >= .zero)
            self.failureRate = failureRate
            self.minimumAttempts = minimumAttempts
            self.window = window
            self.coolDown = coolDown
        }

        /// A breaker that never opens.
        package static let off = Settings(minimumAttempts: 0)
    }

    package enum State: Sendable, Equatable {
        case closed
        /// Deliveries are held until `until`.
        case open(until: ContinuousClock.Instant)
        /// The cool-down is over: one probe may go (`probing`: it is out).
        case halfOpen(probing: Bool)
    }

    package enum Decision: Sendable, Equatable {
        /// Send as usual.
        case send
        /// Send: this request is the probe whose result decides.
        case probe
        /// Do not send; defer the delivery.
        case hold
    }

    package enum Transition: Sendable, Equatable {
        case opened
        case closed
    }

    /// Attempts and failures of a slice of the window.
    private struct Bucket: Sendable, Equatable {
        var start: ContinuousClock.Instant
        var attempts = 0
        var failures = 0
    }

    package let settings: Settings
    package private(set) var state: State = .closed
    private var buckets: [Bucket] = []

    package init(_ settings: Settings) {
        self.settings = settings
    }

    /// Attempts and failures counted in the window ending at `now`.
    /// A loop rather than `filter`: `record` counts after every request.
    package func counts(at now: ContinuousClock.Instant) -> (attempts: Int, failures: Int) {
        var attempts = 0
        var failures = 0
        for bucket in buckets where now - bucket.start < settings.window {
            attempts += bucket.attempts
            failures += bucket.failures
        }
        return (attempts, failures)
    }

    /// Whether a request may go now; a `.probe` answer makes the caller the probe.
    package mutating func decide(now: ContinuousClock.Instant) -> Decision {
        switch state {
        case .closed:
            return .send
        case .open(let until):
            guard now >= until else { return .hold }
            state = .halfOpen(probing: true)
            return .probe
        case .halfOpen(let probing):
            guard !probing else { return .hold }
            state = .halfOpen(probing: true)
            return .probe
        }
    }

    /// The probe was not sent after all: the next caller may send one.
    package mutating func probeAbandoned() {
        if state == .halfOpen(probing: true) { state = .halfOpen(probing: false) }
    }

    /// A request's result; returns the transition it caused, if any. Results that arrive
    /// while the circuit is open (of requests sent before it opened) change nothing.
    package mutating func record(succeeded: Bool, now: ContinuousClock.Instant) -> Transition? {
        switch state {
        case .open:
            return nil
        case .halfOpen:
            if succeeded {
                state = .closed
                buckets = []
                return .closed
            }
            state = .open(until: now + settings.coolDown)
            return nil
        case .closed:
            guard settings.minimumAttempts > 0 else { return nil }
            // Six slices per window: a slice leaves the count as a whole.
            let slice = settings.window / 6
            let window = settings.window
            buckets.removeAll { now - $0.start >= window }
            if let last = buckets.last, now - last.start < slice {
                buckets[buckets.count - 1].attempts += 1
                buckets[buckets.count - 1].failures += succeeded ? 0 : 1
            } else {
                buckets.append(Bucket(start: now, attempts: 1, failures: succeeded ? 0 : 1))
            }
            let (attempts, failures) = counts(at: now)
            guard attempts >= settings.minimumAttempts, Double(failures) >= settings.failureRate * Double(attempts) else { return nil }
            state = .open(until: now + settings.coolDown)
            buckets = []
            return .opened
        }
    }
}
