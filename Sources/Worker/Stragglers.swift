/// Messages that outlive the rest of the window by far — held by endpoints that do not
/// answer, for up to the HTTP timeout — and when the consumer should subscribe again so
/// that they stop taking its window.
///
/// RabbitMQ counts a prefetch per consumer: a new subscription takes a whole window of its
/// own while the messages its predecessor holds finish on the same channel. The healthy
/// work then runs in a full window instead of in what the stragglers leave of it. "Far" is
/// relative — a multiple of the median time the latest messages took — so the rule is the
/// same on a fast machine and a slow one, and where every message has long been slow
/// nothing is a straggler. A sudden stall of everything (the database) can look like
/// stragglers for a moment; it is bounded like the rest, and a message being returned
/// (its processing failed, it waits out its hold) stops any renewal, so an outage does
/// not draw more messages in. A new subscription is asked for only while the older
/// subscriptions' messages and two whole windows (the current one may still fill before
/// the broker confirms its cancel) fit the `limit`: a cancelled consumer takes no more, so
/// the count of messages in hand never exceeds it.
package struct Stragglers: Sendable {
    /// A message is a straggler once it has lasted this many times the median.
    package let factor: Int
    /// The consumer subscribes again when its stragglers fill this share of its prefetch
    /// (one in `share`).
    package let share: Int
    /// How many of the latest messages' lifetimes make the median.
    package let sample: Int

    private var started: [UInt64: (generation: Int, at: ContinuousClock.Instant)] = [:]
    /// Messages whose processing failed, held before they go back to the queue.
    private var returning: Set<UInt64> = []
    private var lifetimes: Recent<Duration>
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
        lifetimes = Recent(capacity: sample)
    }

    /// Messages in hand, of every subscription.
    package var held: Int { started.count }

    /// The median lifetime of the latest sample, or nil before a whole sample.
    package var median: Duration? {
        guard lifetimes.isFull else { return nil }
        return lifetimes.values.sorted()[sample / 2]
    }

    /// A new subscription began with `prefetch`: the messages in hand are its
    /// predecessors' from now on.
    package mutating func subscribed(prefetch: Int) {
        generation += 1
        self.prefetch = max(1, prefetch)
    }

    /// A message delivered: to the current subscription, or late to one cancelled before
    /// (the broker sent it before its cancel-ok).
    package mutating func arrived(_ tag: UInt64, late: Bool = false, at now: ContinuousClock.Instant) {
        started[tag] = (late ? generation - 1 : generation, now)
    }

    /// A message whose processing failed: it is held, then returned to the queue.
    package mutating func failed(_ tag: UInt64) {
        if started[tag] != nil { returning.insert(tag) }
    }

    /// A message settled (acked or returned): its lifetime joins the sample.
    package mutating func ended(_ tag: UInt64, at now: ContinuousClock.Instant) {
        guard let message = started.removeValue(forKey: tag) else { return }
        if !returning.isEmpty { returning.remove(tag) }
        lifetimes.add(now - message.at)
    }

    /// Whether to subscribe again now — the current subscription's stragglers fill a
    /// `share` of its prefetch, no message is being returned, and the older subscriptions'
    /// messages leave room for two windows within the limit — and how long to wait before
    /// the next check: a median while messages are in hand, the time one takes to become a
    /// straggler while none is; within a millisecond and a second (a tenth of a second
    /// before there is a median).
    package func check(at now: ContinuousClock.Instant) -> (renew: Bool, next: Duration) {
        guard let median else { return (false, .milliseconds(100)) }
        let next = min(.seconds(1), max(.milliseconds(1), started.isEmpty ? median * factor : median))
        guard returning.isEmpty, started.count + prefetch <= limit else { return (false, next) }
        let far = median * factor
        var current = 0
        var stragglers = 0
        for message in started.values where message.generation == generation {
            current += 1
            if now - message.at > far { stragglers += 1 }
        }
        return (stragglers * share >= prefetch && started.count - current + 2 * prefetch <= limit, next)
    }
}
