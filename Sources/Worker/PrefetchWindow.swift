/// How many messages a worker holds at once: its prefetch, sized so that the message
/// bodies it holds stay near a budget of bytes rather than only a count.
///
/// The broker sends up to the prefetch before the worker sees a single size, and RabbitMQ
/// applies a new prefetch only to consumers created after it. So the window opens at what
/// the largest readable message would fill, and says when to subscribe again with another
/// prefetch: it closes on the mean of the latest quarter sample as soon as that holds a
/// third more than the budget (large messages cost memory at once), and opens on the
/// mean of a whole sample only when that allows twice as many, so a mixed stream does not
/// make the consumer come and go.
package struct PrefetchWindow: Sendable {
    /// Bytes of message bodies the window aims at.
    package let budget: Int
    /// The most messages at once (`HERALD_WORKER_CONCURRENCY`).
    package let most: Int
    /// The prefetch to subscribe with now.
    package private(set) var prefetch: Int

    private var long: RunningMean
    private var short: RunningMean
    /// Messages seen since the prefetch last changed.
    private var seen = 0

    package init(budget: Int, most: Int, largestMessage: Int, sample: Int = 64) {
        precondition(budget > 0 && most > 0 && largestMessage > 0 && sample >= 4)
        self.budget = budget
        self.most = most
        long = RunningMean(capacity: sample)
        short = RunningMean(capacity: sample / 4)
        prefetch = 1
        prefetch = fit(largestMessage)
    }

    /// The mean size of the latest sample, or nil before the first message.
    package var meanSize: Int? { long.mean }

    /// The most messages held at once when earlier subscriptions' stragglers are held
    /// besides the window (`Stragglers`): three times the concurrency (a new window, the
    /// current one and room for stragglers), and no more bodies of the mean size than the
    /// budget holds.
    package var mostHeld: Int {
        guard let mean = long.mean else { return prefetch }
        return min(3 * most, max(prefetch, budget / mean))
    }

    /// Records one message's body size; returns the prefetch to subscribe with when the
    /// window should change, nil while it stays.
    package mutating func observe(size: Int) -> Int? {
        let size = max(size, 1)
        long.add(size)
        short.add(size)
        seen += 1
        if seen >= short.capacity, let recent = short.mean, fit(recent) * 4 <= prefetch * 3 {
            return change(to: fit(recent))
        }
        if seen >= long.capacity, let mean = long.mean {
            let wanted = fit(mean)
            // Where the window meets its bound it opens there even by less than twice.
            if wanted >= prefetch * 2 || (wanted == most && wanted > prefetch) { return change(to: wanted) }
        }
        return nil
    }

    private mutating func change(to wanted: Int) -> Int {
        prefetch = wanted
        seen = 0
        return wanted
    }

    private func fit(_ size: Int) -> Int {
        min(most, max(1, budget / max(size, 1)))
    }
}

/// The mean of the latest `capacity` values.
private struct RunningMean: Sendable {
    private var recent: Recent<Int>
    private var total = 0

    init(capacity: Int) {
        recent = Recent(capacity: capacity)
    }

    var capacity: Int { recent.capacity }
    var mean: Int? { recent.values.isEmpty ? nil : total / recent.values.count }

    mutating func add(_ value: Int) {
        total += value - (recent.add(value) ?? 0)
    }
}

/// The latest `capacity` values, in no particular order: the oldest is replaced first.
struct Recent<Value: Sendable>: Sendable {
    let capacity: Int
    private(set) var values: [Value] = []
    private var next = 0

    init(capacity: Int) {
        self.capacity = capacity
        values.reserveCapacity(capacity)
    }

    var isFull: Bool { values.count == capacity }

    /// Adds `value`; returns the one it replaced, once full.
    @discardableResult
    mutating func add(_ value: Value) -> Value? {
        guard isFull else {
            values.append(value)
            return nil
        }
        let replaced = values[next]
        values[next] = value
        next = (next + 1) % capacity
        return replaced
    }
}
