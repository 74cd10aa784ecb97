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
        /// Whether the worker acts on `arrived` (false: one subscription throughout).
        let renews: Bool
        /// Every `hangEvery`-th message is for an endpoint that never answers: it lasts
        /// `hangFor`, unless `hangingMost` are already held (then it is deferred at once, as
        /// a full lane's waiter is).
        var hangEvery = 10
        var hangFor: Duration = .seconds(10)
        var hangingMost = 30
        var healthyFor: Duration = .milliseconds(20)

        var stragglers = Stragglers()
        let start = ContinuousClock.now
        var now: Duration = .zero
        var nextTag: UInt64 = 1
        /// Messages in hand per consumer; the last is the current one.
        var consumers = [0]
        /// `stuck`: a message of the endpoint that never answers, not deferred.
        var inHand: [(tag: UInt64, consumer: Int, ends: Duration, stuck: Bool, healthy: Bool)] = []
        var renewals = 0
        var healthyDone = 0
        var mostInHand = 0

        init(prefetch: Int, limit: Int, renews: Bool) {
            self.prefetch = prefetch
            self.limit = limit
            self.renews = renews
        }

        /// Runs for `duration` in steps of a millisecond, offering up to `perStep`
        /// messages each.
        mutating func run(for duration: Duration, perStep: Int = 10) {
            let end = now + duration
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
                    let hanging = tag % UInt64(hangEvery) == 0
                    let stuck = hanging && inHand.count(where: \.stuck) < hangingMost
                    let lasts = stuck ? hangFor : hanging ? .milliseconds(1) : healthyFor
                    let renew = stragglers.arrived(tag, prefetch: prefetch, limit: limit, at: instant)
                    consumers[consumers.count - 1] += 1
                    inHand.append((tag, consumers.count - 1, now + lasts, stuck, !hanging))
                    if renew, renews {
                        renewals += 1
                        consumers.append(0)
                        stragglers.subscribed()
                    }
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

    @Test func stragglersFillingAnEighthOfTheWindowMakeANewSubscription() {
        var simulation = Simulation(prefetch: 80, limit: 160, renews: true)
        simulation.run(for: .seconds(2))
        #expect(simulation.renewals >= 1)
        // The current consumer keeps fewer than an eighth of its window for stragglers, plus
        // what arrives between two counts (an eighth of the prefetch).
        let current = simulation.consumers.count - 1
        let stuck = simulation.inHand.count(where: { $0.consumer == current && $0.stuck })
        #expect(stuck < 2 * 80 / 8, "\(stuck) stragglers in the current window")
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

    @Test func theMedianNeedsAWholeSampleAndUnknownTagsAreIgnored() {
        var stragglers = Stragglers(sample: 4)
        let start = ContinuousClock.now
        #expect(stragglers.median == nil)
        for tag in UInt64(1)...4 {
            let renew = stragglers.arrived(tag, prefetch: 1, limit: 10, at: start)
            #expect(!renew)
        }
        stragglers.ended(99, at: start + .seconds(1))
        #expect(stragglers.held == 4)
        for (tag, ms) in zip(UInt64(1)...3, [10, 30, 20]) { stragglers.ended(tag, at: start + .milliseconds(ms)) }
        #expect(stragglers.median == nil)
        stragglers.ended(4, at: start + .milliseconds(40))
        #expect(stragglers.median == .milliseconds(30))
        #expect(stragglers.held == 0)
    }

    /// A message long past eight medians in a window of two renews it when the older
    /// subscriptions' messages (none) and two windows fit the limit, and not otherwise.
    @Test(arguments: [(4, true), (3, false)])
    func aWindowOfTwo(limit: Int, renews: Bool) {
        let start = ContinuousClock.now
        var stragglers = Stragglers(sample: 4)
        for tag in UInt64(1)...4 {
            let renew = stragglers.arrived(tag, prefetch: 2, limit: limit, at: start)
            #expect(!renew)
            stragglers.ended(tag, at: start + .milliseconds(10))
        }
        let early = stragglers.arrived(5, prefetch: 2, limit: limit, at: start)
        #expect(!early, "not a straggler yet")
        let late = stragglers.arrived(6, prefetch: 2, limit: limit, at: start + .seconds(1))
        #expect(late == renews)
    }

    /// After a new subscription the old one's stragglers are no longer the current window's.
    @Test func aNewSubscriptionStartsWithoutStragglers() {
        let start = ContinuousClock.now
        var stragglers = Stragglers(sample: 4)
        for tag in UInt64(1)...4 {
            _ = stragglers.arrived(tag, prefetch: 2, limit: 10, at: start)
            stragglers.ended(tag, at: start + .milliseconds(10))
        }
        _ = stragglers.arrived(5, prefetch: 2, limit: 10, at: start)
        let renew = stragglers.arrived(6, prefetch: 2, limit: 10, at: start + .seconds(1))
        #expect(renew)
        let again = stragglers.arrived(7, prefetch: 2, limit: 10, at: start + .seconds(1))
        #expect(again, "asked again until the new subscription begins")
        stragglers.subscribed()
        let after = stragglers.arrived(8, prefetch: 2, limit: 10, at: start + .seconds(1))
        #expect(!after, "the straggler is the old subscription's")
        #expect(stragglers.held == 4)
    }
}
