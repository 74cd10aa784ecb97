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
/// cancel) fit the `limit` the caller gives: a cancelled consumer takes no more, so the
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
    /// The current subscription's number.
    private var generation = 0
    /// Deliveries since the stragglers were last counted.
    private var arrivals = 0

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

    /// A message the current subscription delivered, and whether to subscribe again now:
    /// the stragglers are counted once every eighth of the prefetch, and a new subscription
    /// is asked for when the current one's fill a `share` of its `prefetch` and the older
    /// subscriptions' messages leave room for two windows within `limit`.
    package mutating func arrived(_ tag: UInt64, prefetch: Int, limit: Int, at now: ContinuousClock.Instant) -> Bool {
        started[tag] = (generation, now)
        arrivals += 1
        guard arrivals >= max(1, prefetch / 8), started.count + prefetch <= limit, let median else { return false }
        arrivals = 0
        let far = median * factor
        var current = 0
        var stragglers = 0
        for message in started.values where message.generation == generation {
            current += 1
            if now - message.at > far { stragglers += 1 }
        }
        return stragglers * share >= prefetch && started.count - current + 2 * prefetch <= limit
    }

    /// A new subscription began: the messages in hand are its predecessors'.
    package mutating func subscribed() {
        generation += 1
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
}
