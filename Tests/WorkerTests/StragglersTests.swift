import Testing
@testable import Worker

/// When messages that outlive the rest should make the consumer subscribe again: a
/// simulated broker that counts the prefetch per consumer, on the test's clock.
@Suite("Stragglers")
struct StragglersTests {
    /// The work queue as RabbitMQ serves it: each consumer gets messages while it holds fewer
    /// than the prefetch; a cancelled one keeps what it holds and gets no more.
    struct Simulation {
        let prefetch: Int
        let limit: Int
        /// Whether the worker acts on `check` (false: one subscription throughout).
        let renews: Bool
        /// Every `hangEvery`-th message is for an endpoint that never answers: it lasts
        /// `hangFor`, unless `hangingMost` are already held (then it is deferred at once, as
        /// a full lane's waiter is).
        var hangEvery = 10
        var hangFor: Duration = .seconds(10)
        var hangingMost = 30
        var healthyFor: Duration = .milliseconds(20)
        /// Every message that arrives meanwhile is for the endpoint that never answers.
        var hangDuring: Range<Duration>?

        var stragglers = Stragglers()
        let start = ContinuousClock.now
        var now: Duration = .zero
        var nextTag: UInt64 = 1
        /// Messages in hand per consumer; the last is the current one.
        var consumers = [0]
        /// `stuck`: a message of the endpoint that never answers, not deferred.
        var inHand: [(tag: UInt64, consumer: Int, ends: Duration, stuck: Bool, healthy: Bool)] = []
        var renewals = 0
        /// From a renewal to the broker's cancel-ok, while the old consumer still fills.
        var cancelTakes: Duration = .milliseconds(2)
        var switchAt: Duration?
        var healthyDone = 0
        var mostInHand = 0

        init(prefetch: Int, limit: Int, renews: Bool) {
            self.prefetch = prefetch
            self.limit = limit
            self.renews = renews
        }

        /// Runs for `duration` in steps of a millisecond, offering up to `perStep`
        /// messages each, and counting the stragglers when `Stragglers.check` said, as the
        /// worker's watch does.
        mutating func run(for duration: Duration, perStep: Int = 10) {
            if now == .zero {
                stragglers.subscribed(prefetch: prefetch)
                stragglers.limit = limit
            }
            let end = now + duration
            var nextCheck = now
            while now < end {
                now += .milliseconds(1)
                let instant = start + now
                for message in inHand where message.ends <= now {
                    stragglers.ended(message.tag, at: instant)
                    consumers[message.consumer] -= 1
                    if message.healthy { healthyDone += 1 }
                }
                inHand.removeAll { $0.ends <= now }
                for _ in 0..<perStep where consumers[consumers.count - 1] < prefetch {
                    let tag = nextTag
                    nextTag += 1
                    let hanging = tag % UInt64(hangEvery) == 0 || hangDuring?.contains(now) == true
                    let stuck = hanging && inHand.count(where: \.stuck) < hangingMost
                    let lasts = stuck ? hangFor : hanging ? .milliseconds(1) : healthyFor
                    stragglers.arrived(tag, at: instant)
                    consumers[consumers.count - 1] += 1
                    inHand.append((tag, consumers.count - 1, now + lasts, stuck, !hanging))
                }
                if let at = switchAt, now >= at {
                    switchAt = nil
                    consumers.append(0)
                    stragglers.subscribed(prefetch: prefetch)
                }
                if now >= nextCheck {
                    let (renew, next) = stragglers.check(at: instant)
                    // The old consumer takes messages until the broker's cancel-ok.
                    if renews, renew, switchAt == nil {
                        renewals += 1
                        switchAt = now + cancelTakes
                    }
                    nextCheck = now + next
                }
                mostInHand = max(mostInHand, inHand.count)
                #expect(inHand.count == stragglers.held)
            }
        }
    }

    @Test func healthyMessagesNeverRenew() {
        var simulation = Simulation(prefetch: 80, limit: 160, renews: true)
        simulation.hangEvery = Int.max
        simulation.run(for: .seconds(5))
        #expect(simulation.renewals == 0)
        #expect(simulation.healthyDone > 10_000)
    }

    /// Stragglers keep coming after the first renewal (the endpoint holds up to 200): each
    /// window they fill to an eighth is replaced while the bound leaves room, and once the
    /// endpoint holds all it can, the current window is left with less than an eighth.
    @Test func stragglersFillingAnEighthOfTheWindowMakeANewSubscription() {
        var simulation = Simulation(prefetch: 80, limit: 800, renews: true)
        simulation.hangingMost = 200
        simulation.run(for: .seconds(3))
        #expect(simulation.inHand.count(where: \.stuck) == 200)
        #expect(simulation.renewals >= 2)
        let current = simulation.consumers.count - 1
        let stuck = simulation.inHand.count(where: { $0.consumer == current && $0.stuck })
        #expect(stuck * 8 < 80, "\(stuck) stragglers in the current window")
    }

    /// What it is for: the healthy messages get a whole window instead of what the
    /// stragglers leave of it.
    @Test func theHealthyWorkGetsAWholeWindow() {
        var once = Simulation(prefetch: 80, limit: 160, renews: false)
        once.run(for: .seconds(5))
        var renewing = Simulation(prefetch: 80, limit: 160, renews: true)
        renewing.run(for: .seconds(5))
        #expect(once.renewals == 0)
        // 50 of 80 slots left against nearly 80: about 3/5 as many.
        #expect(renewing.healthyDone * 10 > once.healthyDone * 12, "\(renewing.healthyDone) against \(once.healthyDone)")
    }

    @Test func theMessagesInHandNeverExceedTheLimit() {
        for limit in [80, 100, 120, 160, 400] {
            var simulation = Simulation(prefetch: 80, limit: limit, renews: true)
            simulation.hangingMost = 1_000
            simulation.hangEvery = 3
            simulation.run(for: .seconds(3))
            #expect(simulation.mostInHand <= max(limit, 80), "limit \(limit): \(simulation.mostInHand) in hand")
            if limit < 160 { #expect(simulation.renewals == 0, "no room for a second window within \(limit)") }
            if limit == 400 { #expect(simulation.renewals > 1) }
        }
    }

    /// Where every message is slow, none outlives the rest: a slow machine or a slow
    /// receiver for everyone is no reason to hold more.
    @Test func whenEverythingIsSlowNothingIsAStraggler() {
        var simulation = Simulation(prefetch: 80, limit: 160, renews: true)
        simulation.hangEvery = 1
        simulation.hangingMost = 1_000
        simulation.hangFor = .seconds(2)
        simulation.run(for: .seconds(10))
        #expect(simulation.renewals == 0)
    }

    /// A window that stragglers fill whole delivers nothing more: the count does not wait
    /// for a delivery.
    @Test func aWindowFullOfStragglersIsReplaced() {
        var results: [Bool: Int] = [:]
        for renews in [false, true] {
            var simulation = Simulation(prefetch: 8, limit: 24, renews: renews)
            simulation.hangEvery = Int.max
            simulation.hangingMost = 8
            simulation.hangDuring = .seconds(1)..<(.seconds(1) + .milliseconds(3))
            simulation.run(for: .seconds(1) + .milliseconds(3))
            #expect(simulation.inHand.count(where: \.stuck) == 8, "the window is the stragglers'")
            let before = simulation.healthyDone
            simulation.run(for: .seconds(2))
            results[renews] = simulation.healthyDone - before
            #expect(simulation.renewals == (renews ? 1 : 0))
        }
        #expect(results[false] == 0)
        #expect((results[true] ?? 0) > 500, "\(results[true] ?? 0) healthy messages after the window filled")
    }

    /// The next count comes a median later while messages are in hand, eight medians later
    /// while none is, within a millisecond and a second.
    @Test func theNextCheckFollowsTheMedian() {
        let start = ContinuousClock.now
        var stragglers = Stragglers(sample: 4)
        #expect(stragglers.check(at: start).next == .milliseconds(100), "before a median")
        for (tag, lifetime) in zip(UInt64(1)...4, [Duration.microseconds(10), .microseconds(20), .microseconds(30), .microseconds(40)]) {
            stragglers.arrived(tag, at: start)
            stragglers.ended(tag, at: start + lifetime)
        }
        #expect(stragglers.check(at: start).next == .milliseconds(1))
        for (tag, ms) in zip(UInt64(5)...8, [10, 20, 30, 40]) {
            stragglers.arrived(tag, at: start)
            stragglers.ended(tag, at: start + .milliseconds(ms))
        }
        #expect(stragglers.check(at: start).next == .milliseconds(240), "none in hand: eight medians")
        stragglers.arrived(9, at: start)
        #expect(stragglers.check(at: start).next == .milliseconds(30))
        for tag in UInt64(10)...13 {
            stragglers.arrived(tag, at: start)
            stragglers.ended(tag, at: start + .seconds(Int(tag)))
        }
        #expect(stragglers.check(at: start).next == .seconds(1))
        #expect(stragglers.median == .seconds(12))
    }

    @Test func theMedianNeedsAWholeSampleAndUnknownTagsAreIgnored() {
        var stragglers = Stragglers(sample: 4)
        let start = ContinuousClock.now
        #expect(stragglers.median == nil)
        for tag in UInt64(1)...4 { stragglers.arrived(tag, at: start) }
        stragglers.ended(99, at: start + .seconds(1))
        #expect(stragglers.held == 4)
        for (tag, ms) in zip(UInt64(1)...3, [10, 30, 20]) { stragglers.ended(tag, at: start + .milliseconds(ms)) }
        #expect(stragglers.median == nil)
        stragglers.ended(4, at: start + .milliseconds(40))
        #expect(stragglers.median == .milliseconds(30))
        #expect(stragglers.held == 0)
    }

    /// Stragglers of a sample of 10 ms lifetimes: message 5 has lasted a second.
    static func straggling(limit: Int) -> (Stragglers, ContinuousClock.Instant) {
        let start = ContinuousClock.now
        var stragglers = Stragglers(sample: 4)
        stragglers.subscribed(prefetch: 2)
        stragglers.limit = limit
        for tag in UInt64(1)...4 {
            stragglers.arrived(tag, at: start)
            stragglers.ended(tag, at: start + .milliseconds(10))
        }
        stragglers.arrived(5, at: start)
        #expect(!stragglers.check(at: start + .milliseconds(80)).renew, "not a straggler at eight medians")
        stragglers.arrived(6, at: start + .seconds(1))
        return (stragglers, start + .seconds(1))
    }

    /// A message long past eight medians in a window of two renews it when the older
    /// subscriptions' messages (none) and two windows fit the limit, and not otherwise.
    @Test(arguments: [(4, true), (3, false)])
    func aWindowOfTwo(limit: Int, renews: Bool) {
        let (stragglers, now) = Self.straggling(limit: limit)
        #expect(stragglers.check(at: now).renew == renews)
    }

    /// After a new subscription the old one's stragglers are no longer the current window's,
    /// but they count towards the limit.
    @Test func aNewSubscriptionStartsWithoutStragglers() {
        var (stragglers, now) = Self.straggling(limit: 10)
        #expect(stragglers.check(at: now).renew)
        stragglers.subscribed(prefetch: 2)
        stragglers.arrived(7, at: now)
        #expect(!stragglers.check(at: now).renew, "the straggler is the old subscription's")
        stragglers.arrived(70, late: true, at: now - .seconds(1))
        #expect(!stragglers.check(at: now).renew, "and so is one delivered late to it")
        #expect(stragglers.held == 4)
        stragglers.ended(70, at: now)
        #expect(stragglers.held == 3)
        stragglers.subscribed(prefetch: 2)
        stragglers.limit = 6
        stragglers.arrived(8, at: now)
        #expect(!stragglers.check(at: now + .seconds(5)).renew, "3 older messages and two windows exceed 6")
        stragglers.subscribed(prefetch: 2)
        stragglers.limit = 8
        stragglers.arrived(9, at: now)
        #expect(stragglers.check(at: now + .seconds(5)).renew, "4 older messages and two windows fit 8")
    }

    /// A message whose processing failed waits out its hold before going back: while it
    /// does (a database outage), no new window draws more messages in.
    @Test func aMessageBeingReturnedStopsRenewals() {
        var (stragglers, now) = Self.straggling(limit: 10)
        #expect(stragglers.check(at: now).renew)
        stragglers.failed(6)
        #expect(!stragglers.check(at: now).renew)
        stragglers.failed(99)
        stragglers.ended(6, at: now + .seconds(1))
        #expect(stragglers.check(at: now + .seconds(1)).renew, "5 is still a straggler")
    }
}
