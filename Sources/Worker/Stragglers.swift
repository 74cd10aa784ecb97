/// Messages that outlive the rest of the window by far — held by endpoints that do not
/// answer, for up to the HTTP timeout — and when the consumer should subscribe again so
/// that they stop taking its window.
///
/// RabbitMQ counts a prefetch per consumer: a new subscription takes a whole window of its
/// own while the messages its predecessor holds finish on the same channel. The healthy
/// work then runs in a full window instead of in what the stragglers leave of it. "Far" is
/// relative — a multiple of the median time the latest messages took — so the rule is the
/// same on a fast machine and a slow one, and where every message is slow nothing is a
/// straggler. A new subscription is asked for only while the older subscriptions' messages
/// and two whole windows (the current one may still fill before the broker confirms its
/// cancel) fit the `limit`: a cancelled consumer takes no more, so the
/// messages in hand never exceed it.
package struct Stragglers: Sendable {
    /// A message is a straggler once it has lasted this many times the median.
    package let factor: Int
    /// The consumer subscribes again when its stragglers fill this share of its prefetch
    /// (one in `share`).
    package let share: Int
    /// How many of the latest messages' lifetimes make the median.
    package let sample: Int

    private var started: [UInt64: (generation: Int, at: ContinuousClock.Instant)] = [:]
    private var lifetimes: [Duration] = []
    private var next = 0
    /// The current subscription's number and prefetch.
    private var generation = 0
    private var prefetch = 1
    /// The most messages in hand, the predecessors' included: the caller keeps it current,
    /// as it follows the mean message size (`PrefetchWindow.mostHeld`).
    package var limit = 1

    package init(factor: Int = 8, share: Int = 8, sample: Int = 64) {
        precondition(factor > 1 && share > 0 && sample > 0)
        self.factor = factor
        self.share = share
        self.sample = sample
        lifetimes.reserveCapacity(sample)
    }

    /// Messages in hand, of every subscription.
    package var held: Int { started.count }

    /// The median lifetime of the latest sample, or nil before a whole sample.
    package var median: Duration? {
        guard lifetimes.count == sample else { return nil }
        return lifetimes.sorted()[sample / 2]
    }

    /// How long to wait before the next `check`: the median, within a millisecond and a
    /// second (a tenth of a second before there is one).
    package var interval: Duration {
        min(.seconds(1), max(.milliseconds(1), median ?? .milliseconds(100)))
    }

    /// A new subscription began with `prefetch`: the messages in hand are its
    /// predecessors' from now on.
    package mutating func subscribed(prefetch: Int) {
        generation += 1
        self.prefetch = max(1, prefetch)
    }

    /// A message the current subscription delivered.
    package mutating func arrived(_ tag: UInt64, at now: ContinuousClock.Instant) {
        started[tag] = (generation, now)
    }

    /// A message settled (acked or returned): its lifetime joins the sample.
    package mutating func ended(_ tag: UInt64, at now: ContinuousClock.Instant) {
        guard let message = started.removeValue(forKey: tag) else { return }
        let lifetime = now - message.at
        if lifetimes.count < sample {
            lifetimes.append(lifetime)
        } else {
            lifetimes[next] = lifetime
            next = (next + 1) % sample
        }
    }

    /// Whether to subscribe again now: the current subscription's stragglers fill a `share`
    /// of its prefetch, and the older subscriptions' messages leave room for two windows
    /// within its limit.
    package func check(at now: ContinuousClock.Instant) -> Bool {
        guard started.count + prefetch <= limit, let median else { return false }
        let far = median * factor
        var current = 0
        var stragglers = 0
        for message in started.values where message.generation == generation {
            current += 1
            if now - message.at > far { stragglers += 1 }
        }
        return stragglers * share >= prefetch && started.count - current + 2 * prefetch <= limit
    }
}
