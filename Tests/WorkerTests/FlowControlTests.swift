import Foundation
import Testing
@testable import Worker

/// The adaptive limit, answer by answer: no sockets, no clock, latencies given.
@Suite("Adaptive concurrency limit")
struct ConcurrencyLimitTests {
    static let settings = ConcurrencyLimit.Settings(floor: 1, ceiling: 20, initial: 4, tolerance: 2, window: 50, smoothing: 0.2)

    /// Answers `count` requests of `latency`, each with the limit in use.
    static func answer(_ limit: inout ConcurrencyLimit, _ count: Int, after latency: Duration, inFlight: Int? = nil) {
        for _ in 0..<count { limit.answered(after: latency, inFlight: inFlight ?? limit.limit) }
    }

    @Test func aFastEndpointsLimitRisesToTheCeiling() {
        var limit = ConcurrencyLimit(Self.settings)
        #expect(limit.limit == 4)
        Self.answer(&limit, 4, after: .milliseconds(5))
        #expect(limit.limit == 8, "one more per answer until the first sign of load")
        Self.answer(&limit, 100, after: .milliseconds(6))
        #expect(limit.limit == 20)
        Self.answer(&limit, 100, after: .milliseconds(5))
        #expect(limit.limit == 20, "never past the ceiling")
    }

    /// Latency within the tolerance of the baseline is no load: the limit does not fall.
    @Test func latencyNearTheBaselineHoldsTheLimit() {
        var limit = ConcurrencyLimit(Self.settings)
        Self.answer(&limit, 1, after: .milliseconds(10))
        let before = limit.limit
        Self.answer(&limit, 30, after: .milliseconds(19))
        #expect(limit.limit >= before)
        #expect(limit.baseline == .milliseconds(10))
    }

    /// An endpoint that uses less than half its limit gives no evidence it can take more.
    @Test func anUnusedLimitDoesNotGrow() {
        var limit = ConcurrencyLimit(Self.settings)
        Self.answer(&limit, 200, after: .milliseconds(5), inFlight: 1)
        #expect(limit.limit == 4)
    }

    /// A receiver that slows from 5 ms to 500 ms gets fewer requests within a few rounds,
    /// and more again once it recovers.
    @Test func aSlowingEndpointsLimitFallsAndRecovers() {
        var limit = ConcurrencyLimit(Self.settings)
        Self.answer(&limit, 40, after: .milliseconds(5))
        #expect(limit.limit == 20)
        var answers = 0
        while limit.limit > 1 && answers < 100 {
            Self.answer(&limit, 1, after: .milliseconds(500))
            answers += 1
        }
        #expect(limit.limit == 1)
        #expect(answers <= 2 * 20, "within about two rounds of the old limit: \(answers) answers")
        var recovered = 0
        while limit.limit < 10 && recovered < 1000 {
            Self.answer(&limit, 1, after: .milliseconds(5))
            recovered += 1
        }
        #expect(limit.limit == 10)
        #expect(recovered < 100, "additive growth of about one per round: \(recovered) answers")
    }

    /// The falls are proportional: a little slower costs a little, never more than half.
    @Test func aFallIsProportionalToTheSlowdown() {
        var mild = ConcurrencyLimit(Self.settings)
        var severe = ConcurrencyLimit(Self.settings)
        Self.answer(&mild, 16, after: .milliseconds(10))
        Self.answer(&severe, 16, after: .milliseconds(10))
        #expect(mild.limit == 20 && severe.limit == 20)
        Self.answer(&mild, 1, after: .milliseconds(25))
        Self.answer(&severe, 1, after: .seconds(5))
        #expect(mild.limit == 19, "20 × (0.8 + 0.2 × 20/25) = 19.2")
        #expect(severe.limit == 18, "20 × (0.8 + 0.2 × 0.5) = 18")
    }

    @Test func timeoutsHalveTheLimitDownToTheFloor() {
        var limit = ConcurrencyLimit(Self.settings)
        Self.answer(&limit, 16, after: .milliseconds(5))
        #expect(limit.limit == 20)
        limit.timedOut()
        #expect(limit.limit == 10)
        for _ in 0..<10 { limit.timedOut() }
        #expect(limit.limit == 1)
        // After a timeout, growth is additive: about one per round of `limit` answers.
        Self.answer(&limit, 1, after: .milliseconds(5))
        #expect(limit.limit == 2)
        Self.answer(&limit, 2, after: .milliseconds(5))
        #expect(limit.limit == 2, "2.5, then 2.9")
        Self.answer(&limit, 1, after: .milliseconds(5))
        #expect(limit.limit == 3)
    }

    /// A hanging endpoint (no answer ever) keeps the initial limit until its requests time
    /// out, then the floor.
    @Test func aHangingEndpointEndsAtTheFloor() {
        var limit = ConcurrencyLimit(Self.settings)
        for _ in 0..<limit.limit { limit.timedOut() }
        #expect(limit.limit == 1)
        #expect(limit.baseline == nil)
    }

    /// The baseline follows an endpoint that became slower for good, after two windows:
    /// its limit rises again at the new pace rather than staying at the floor forever.
    @Test func theBaselineFollowsALastingChange() {
        var limit = ConcurrencyLimit(Self.settings)
        Self.answer(&limit, 40, after: .milliseconds(5))
        Self.answer(&limit, 50, after: .milliseconds(100))
        #expect(limit.limit == 1)
        Self.answer(&limit, 100, after: .milliseconds(100))
        #expect(limit.baseline == .milliseconds(100))
        #expect(limit.limit > 1)
    }

    @Test func settingsKeepTheInitialLimitWithinBounds() {
        #expect(ConcurrencyLimit.Settings(ceiling: 2).initial == 2)
        #expect(ConcurrencyLimit.Settings(ceiling: 50).initial == 4)
        #expect(ConcurrencyLimit.Settings(floor: 5, ceiling: 50, initial: 1).initial == 5)
        #expect(ConcurrencyLimit(.init(ceiling: 1)).limit == 1)
    }
}

/// One endpoint's lane with instants chosen by the test: when a delivery takes a slot,
/// waits, or is deferred.
@Suite("Endpoint lane")
struct LaneTests {
    static let start = ContinuousClock.now
    static func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }
    /// Half of a 10 s HTTP timeout, as the worker sets it.
    static let stall: Duration = .seconds(5)

    static func lane(ceiling: Int = 10, initial: Int = 4) -> Lane {
        Lane(limit: ConcurrencyLimit(.init(ceiling: ceiling, initial: initial)), now: at(0))
    }

    /// Takes every free slot at `time` and puts its request on the wire.
    static func fill(_ lane: inout Lane, at time: Double) -> Int {
        var sent = 0
        while lane.admit(force: false, mayWait: false, now: at(time), stall: stall) == .take {
            lane.sending(now: at(time))
            sent += 1
        }
        return sent
    }

    /// A busy endpoint that answers slowly, but answers, keeps its deliveries waiting
    /// (however long each request takes below the stall), never deferred.
    @Test func aSlowButAnsweringEndpointKeepsItsDeliveriesWaiting() {
        var lane = Self.lane(ceiling: 1, initial: 1)
        #expect(Self.fill(&lane, at: 0) == 1)
        // Not heard from yet: at most `limit` waiters.
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(0), stall: Self.stall) == .wait)
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(0), stall: Self.stall) == .refuse)
        #expect(lane.release(after: .answered(.seconds(3), delivered: true), now: Self.at(3)).granted == 1)
        lane.sending(now: Self.at(3))
        var time = 3.0
        for _ in 0..<50 {
            // After its first answer any number wait. One answer per 4.9 s: slower than
            // any fixed "stall" of a second, and progress all the same.
            #expect(lane.admit(force: false, mayWait: true, now: Self.at(time + 4.8), stall: Self.stall) == .wait)
            #expect(lane.refuseWaitersIfStalled(now: Self.at(time + 4.8), stall: Self.stall) == 0)
            time += 4.9
            #expect(lane.release(after: .answered(.seconds(4.9), delivered: true), now: Self.at(time)).granted == 1)
            lane.sending(now: Self.at(time))
        }
        #expect(lane.waiting == 0 && lane.taken == 1)
    }

    /// A hanging endpoint: its first requests go out, a few deliveries wait, and once
    /// nothing completed for the stall they are refused and every later one too, at once.
    /// After the timeouts it holds only its floor.
    @Test func aHangingEndpointHoldsOnlyItsFloorAndItsDeliveriesAreDeferred() {
        var lane = Self.lane()
        #expect(Self.fill(&lane, at: 0) == 4)
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(1), stall: Self.stall) == .wait)
        #expect(lane.refuseWaitersIfStalled(now: Self.at(4.9), stall: Self.stall) == 0)
        #expect(lane.refuseWaitersIfStalled(now: Self.at(5), stall: Self.stall) == 1)
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(6), stall: Self.stall) == .refuse)
        // The requests time out at 10 s; the lane's limit falls to the floor.
        for _ in 0..<4 { #expect(lane.release(after: .timedOut, now: Self.at(10)).granted == 0) }
        #expect(lane.limit.limit == 1)
        #expect(lane.taken == 0 && lane.requesting == 0)
        #expect(Self.fill(&lane, at: 10) == 1)
        // The next request is its own clock: refused once it too goes unanswered for the stall.
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(11), stall: Self.stall) == .wait)
        #expect(lane.refuseWaitersIfStalled(now: Self.at(15), stall: Self.stall) == 1)
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(15), stall: Self.stall) == .refuse)
        // An attempt the caller owns already goes out whatever the limit.
        #expect(lane.admit(force: true, mayWait: false, now: Self.at(15), stall: Self.stall) == .take)
        #expect(lane.taken == 2)
    }

    /// A delivery not stored yet waits only while its turn is due within the bound: the
    /// waiters ahead take a limit's worth of slots per round of the endpoint's latency.
    @Test func beforeItsStoreADeliveryWaitsOnlyWhileItsTurnIsDueWithinTheBound() {
        let bound: Duration = .seconds(1)
        var lane = Self.lane(ceiling: 2, initial: 2)
        #expect(Self.fill(&lane, at: 0) == 2)
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(0), stall: Self.stall) == .refuse, "not heard from")
        #expect(lane.release(after: .answered(.milliseconds(300), delivered: true), now: Self.at(0.3)).granted == 0)
        #expect(lane.latency == .milliseconds(300))
        #expect(Self.fill(&lane, at: 0.3) == 1)
        // Rounds of 300 ms: two waiters per round, three rounds within the second.
        for _ in 0..<6 { #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(0.3), stall: Self.stall) == .wait) }
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(0.3), stall: Self.stall) == .refuse, "a fourth round")
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(0.3), stall: Self.stall) == .wait, "a stored delivery waits behind any number")
        // Stalled: refused like any waiter.
        #expect(lane.refuseWaitersIfStalled(now: Self.at(5.3), stall: Self.stall) == 7)
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(5.3), stall: Self.stall) == .refuse)
        // Answers slower than the bound promise nothing; the latency follows them.
        #expect(lane.release(after: .answered(.seconds(9), delivered: true), now: Self.at(9)).granted == 0)
        #expect(lane.latency == .milliseconds(300) + (.seconds(9) - .milliseconds(300)) / 8)
        for _ in 0..<20 { _ = lane.release(after: .answered(.seconds(2), delivered: true), now: Self.at(11)); _ = Self.fill(&lane, at: 11) }
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(11), stall: Self.stall) == .refuse)
        #expect(lane.admit(force: false, mayWait: true, beforeStore: .seconds(3), now: Self.at(11), stall: Self.stall) == .wait)
    }

    /// An endpoint silent for the bound with requests out, or whose request timed out,
    /// promises no turn to a delivery not stored yet until it answers again.
    @Test func beforeItsStoreASilentOrTimedOutEndpointPromisesNothing() {
        let bound: Duration = .seconds(1)
        var lane = Self.lane(ceiling: 2, initial: 2)
        #expect(Self.fill(&lane, at: 0) == 2)
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: Self.at(0.005)).granted == 0)
        #expect(Self.fill(&lane, at: 0.005) == 1)
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(0.9), stall: Self.stall) == .wait)
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(1.1), stall: Self.stall) == .refuse, "silent for the bound")
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(1.1), stall: Self.stall) == .wait, "a stored delivery still waits")
        #expect(lane.release(after: .timedOut, now: Self.at(3)).granted == 0, "the limit halved to 1 with one request out")
        #expect(lane.latency == nil)
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(3), stall: Self.stall) == .refuse, "timed out")
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: Self.at(3.1)).granted == 2, "the limit back at 2")
        #expect(lane.latency == .milliseconds(5))
        #expect(lane.admit(force: false, mayWait: true, beforeStore: bound, now: Self.at(3.1), stall: Self.stall) == .wait)
    }

    /// A slot held while nothing is on the wire (the worker waiting for its database) is
    /// no stall, however long.
    @Test func slotsHeldWithoutARequestAreNoStall() {
        var lane = Self.lane(initial: 1)
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(0), stall: Self.stall) == .take)
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(0), stall: Self.stall) == .wait)
        #expect(lane.refuseWaitersIfStalled(now: Self.at(3600), stall: Self.stall) == 0)
        #expect(lane.release(after: .unused, now: Self.at(3600)).granted == 1)
    }

    /// A quick failure (connection refused) is progress: waiters stay, no latency learned.
    @Test func aRefusedConnectionIsProgressButNoSample() {
        var lane = Self.lane(initial: 1)
        #expect(Self.fill(&lane, at: 0) == 1)
        #expect(lane.admit(force: false, mayWait: true, now: Self.at(0), stall: Self.stall) == .wait)
        #expect(lane.release(after: .failed, now: Self.at(4)).granted == 1)
        lane.sending(now: Self.at(4))
        #expect(lane.refuseWaitersIfStalled(now: Self.at(8), stall: Self.stall) == 0)
        #expect(lane.limit.baseline == nil)
    }

    /// When the limit grows, a release hands more than one slot to the waiters.
    @Test func aGrowingLimitReleasesSeveralWaiters() {
        var lane = Self.lane(ceiling: 10, initial: 2)
        #expect(Self.fill(&lane, at: 0) == 2)
        // Slow start: each answer adds one.
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: Self.at(0.005)).granted == 0)
        #expect(lane.limit.limit == 3)
        #expect(Self.fill(&lane, at: 0.005) == 2)
        for _ in 0..<5 { #expect(lane.admit(force: false, mayWait: true, now: Self.at(0.005), stall: Self.stall) == .wait) }
        // The next answer raises it to 4 with two slots free: two waiters go.
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: Self.at(0.01)).granted == 2)
        #expect(lane.taken == 4 && lane.waiting == 3)
    }

    /// When the limit falls, released slots are not handed on until the lane is under it.
    @Test func aFallingLimitHoldsWaitersBack() {
        var lane = Self.lane(ceiling: 4, initial: 4)
        #expect(Self.fill(&lane, at: 0) == 4)
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: Self.at(0.005)).granted == 0)
        #expect(Self.fill(&lane, at: 0.005) == 1)
        #expect(lane.admit(force: false, mayWait: false, now: Self.at(0.005), stall: Self.stall) == .refuse)
        for _ in 0..<3 { #expect(lane.admit(force: false, mayWait: true, now: Self.at(0.005), stall: Self.stall) == .wait) }
        // Timeouts halve the limit to 2, then 1: none of the three waiters gets a slot
        // until no request is out, then one.
        #expect(lane.release(after: .timedOut, now: Self.at(10)).granted == 0)
        #expect(lane.release(after: .timedOut, now: Self.at(10)).granted == 0)
        #expect(lane.release(after: .timedOut, now: Self.at(10)).granted == 0)
        #expect(lane.limit.limit == 1)
        #expect(lane.release(after: .timedOut, now: Self.at(10)).granted == 1)
        #expect(lane.taken == 1 && lane.waiting == 2)
    }
}

/// The circuit breaker, result by result, at instants of the test's choosing.
@Suite("Circuit breaker")
struct CircuitBreakerTests {
    static let start = ContinuousClock.now
    static func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }
    static let settings = CircuitBreaker.Settings(failureRate: 0.5, minimumAttempts: 20, window: .seconds(60), coolDown: .seconds(30))

    /// Records `successes` successful, then `failures` failed results at `time`.
    static func results(_ breaker: inout CircuitBreaker, failures: Int, successes: Int = 0, at time: Double) -> [CircuitBreaker.Transition] {
        var transitions: [CircuitBreaker.Transition] = []
        for n in 0..<(failures + successes) {
            // Successes first: the failures come last, the rate rising to its end value.
            if let transition = breaker.record(succeeded: n < successes, now: at(time)) { transitions.append(transition) }
        }
        return transitions
    }

    @Test func itOpensAtTheRateOnceEnoughAttemptsWereMade() {
        var breaker = CircuitBreaker(Self.settings)
        // 19 failures in a row: too few attempts to judge.
        #expect(Self.results(&breaker, failures: 19, at: 1).isEmpty)
        #expect(breaker.decide(now: Self.at(1)) == .send)
        #expect(Self.results(&breaker, failures: 1, at: 2) == [.opened])
        #expect(breaker.state == .open(until: Self.at(32)))
    }

    @Test func belowTheRateItStaysClosed() {
        var breaker = CircuitBreaker(Self.settings)
        // 49 % of 100 failed.
        #expect(Self.results(&breaker, failures: 49, successes: 51, at: 1).isEmpty)
        #expect(breaker.state == .closed)
        #expect(breaker.counts(at: Self.at(1)) == (100, 49))
        // One more failure makes 50 of 101: not yet 50 %; the next one is.
        #expect(Self.results(&breaker, failures: 1, at: 1).isEmpty)
        #expect(Self.results(&breaker, failures: 1, at: 1) == [.opened])
    }

    /// Failures older than the window no longer count.
    @Test func oldFailuresLeaveTheWindow() {
        var breaker = CircuitBreaker(Self.settings)
        #expect(Self.results(&breaker, failures: 15, at: 0).isEmpty)
        #expect(breaker.counts(at: Self.at(59)) == (15, 15))
        #expect(breaker.counts(at: Self.at(60)) == (0, 0))
        // 15 more a minute later: 15 in the window, not 30.
        #expect(Self.results(&breaker, failures: 15, at: 61).isEmpty)
        #expect(breaker.state == .closed)
    }

    /// Open: everything is held until the cool-down; then exactly one probe goes, and
    /// its success closes the circuit.
    @Test func aProbeAfterTheCoolDownClosesIt() {
        var breaker = CircuitBreaker(Self.settings)
        #expect(Self.results(&breaker, failures: 20, at: 0) == [.opened])
        #expect(breaker.decide(now: Self.at(29.9)) == .hold)
        #expect(breaker.decide(now: Self.at(30)) == .probe)
        #expect(breaker.decide(now: Self.at(30)) == .hold, "one probe at a time")
        #expect(breaker.record(succeeded: true, now: Self.at(30.1)) == .closed)
        #expect(breaker.decide(now: Self.at(30.1)) == .send)
        #expect(breaker.counts(at: Self.at(30.1)) == (0, 0), "a closed circuit starts counting afresh")
    }

    @Test func aFailedProbeHoldsForAnotherCoolDown() {
        var breaker = CircuitBreaker(Self.settings)
        #expect(Self.results(&breaker, failures: 20, at: 0) == [.opened])
        #expect(breaker.decide(now: Self.at(31)) == .probe)
        #expect(breaker.record(succeeded: false, now: Self.at(32)) == nil, "still open: no new transition")
        #expect(breaker.state == .open(until: Self.at(62)))
        #expect(breaker.decide(now: Self.at(61)) == .hold)
        #expect(breaker.decide(now: Self.at(62)) == .probe)
    }

    /// Results of requests sent before it opened change nothing while it is open.
    @Test func lateResultsWhileOpenAreIgnored() {
        var breaker = CircuitBreaker(Self.settings)
        #expect(Self.results(&breaker, failures: 20, at: 0) == [.opened])
        #expect(breaker.record(succeeded: true, now: Self.at(1)) == nil)
        #expect(breaker.decide(now: Self.at(1)) == .hold)
    }

    /// A probe that was not sent (its delivery was settled elsewhere) lets the next go.
    @Test func anAbandonedProbeLetsAnotherGo() {
        var breaker = CircuitBreaker(Self.settings)
        #expect(Self.results(&breaker, failures: 20, at: 0) == [.opened])
        #expect(breaker.decide(now: Self.at(30)) == .probe)
        breaker.probeAbandoned()
        #expect(breaker.decide(now: Self.at(30)) == .probe)
    }

    @Test func offNeverOpens() {
        var breaker = CircuitBreaker(.off)
        #expect(Self.results(&breaker, failures: 10_000, at: 0).isEmpty)
        #expect(breaker.decide(now: Self.at(0)) == .send)
    }

    /// In a lane: an open circuit refuses the waiters, holds new deliveries whatever the
    /// free slots, lets one probe through past the limit, and a forced attempt (one the
    /// caller owns already) always goes.
    @Test func aLaneHoldsEverythingButTheProbeWhileOpen() {
        let breaker = CircuitBreaker(.init(failureRate: 0.5, minimumAttempts: 2, window: .seconds(60), coolDown: .seconds(30)))
        var lane = Lane(limit: ConcurrencyLimit(.init(ceiling: 2, initial: 2)), breaker: breaker, now: LaneTests.at(0))
        #expect(LaneTests.fill(&lane, at: 0) == 2)
        for _ in 0..<2 { #expect(lane.admit(force: false, mayWait: true, now: LaneTests.at(0), stall: LaneTests.stall) == .wait) }
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: false), now: LaneTests.at(1)) == Lane.Released(granted: 1))
        lane.sending(now: LaneTests.at(1))
        let opening = lane.release(after: .answered(.milliseconds(5), delivered: false), now: LaneTests.at(1))
        #expect(opening == Lane.Released(granted: 0, refused: 1, transition: .opened))
        #expect(lane.waiting == 0)
        // One request is still out; a free slot does not matter while open.
        #expect(lane.admit(force: false, mayWait: true, now: LaneTests.at(2), stall: LaneTests.stall) == .hold)
        #expect(lane.admit(force: true, mayWait: false, now: LaneTests.at(2), stall: LaneTests.stall) == .take)
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: LaneTests.at(3)).transition == nil)
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: LaneTests.at(3)).transition == nil)
        #expect(lane.taken == 0)
        // After the cool-down: a probe, then holds until its answer.
        #expect(lane.admit(force: false, mayWait: false, now: LaneTests.at(31), stall: LaneTests.stall) == .take)
        lane.sending(now: LaneTests.at(31))
        #expect(lane.admit(force: false, mayWait: true, now: LaneTests.at(31), stall: LaneTests.stall) == .hold)
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: LaneTests.at(31)).transition == .closed)
        #expect(lane.admit(force: false, mayWait: false, now: LaneTests.at(31), stall: LaneTests.stall) == .take)
    }

    /// Requests the worker cut short (its session ended) teach the lane nothing: however
    /// many, the circuit stays closed and none stays counted on the wire; a probe cut
    /// short is no probe, so the next caller sends one.
    @Test func requestsCutShortByTheWorkerCountNothing() {
        let breaker = CircuitBreaker(.init(failureRate: 0.5, minimumAttempts: 2, window: .seconds(60), coolDown: .seconds(30)))
        var lane = Lane(limit: ConcurrencyLimit(.init(ceiling: 2, initial: 2)), breaker: breaker, now: LaneTests.at(0))
        for second in 0..<20 {
            #expect(LaneTests.fill(&lane, at: Double(second)) == 2)
            for _ in 0..<2 { #expect(lane.release(after: .cancelled, now: LaneTests.at(Double(second))) == Lane.Released()) }
        }
        #expect(lane.requesting == 0 && lane.taken == 0)
        #expect(!lane.isStalled(now: LaneTests.at(100), stall: LaneTests.stall))
        // Opened by failures the endpoint made, then half-open after the cool-down.
        #expect(LaneTests.fill(&lane, at: 20) == 2)
        _ = lane.release(after: .failed, now: LaneTests.at(20))
        #expect(lane.release(after: .failed, now: LaneTests.at(20)).transition == .opened)
        #expect(lane.admit(force: false, mayWait: false, now: LaneTests.at(51), stall: LaneTests.stall) == .take)
        lane.sending(now: LaneTests.at(51))
        #expect(lane.admit(force: false, mayWait: false, now: LaneTests.at(51), stall: LaneTests.stall) == .hold)
        #expect(lane.release(after: .cancelled, now: LaneTests.at(51)).transition == nil)
        #expect(lane.requesting == 0)
        #expect(lane.admit(force: false, mayWait: false, now: LaneTests.at(51), stall: LaneTests.stall) == .take, "the next caller probes")
    }
}

/// An endpoint's pace, request by request, at instants of the test's choosing.
@Suite("Send rate")
struct SendRateTests {
    static func at(_ seconds: Double) -> ContinuousClock.Instant { LaneTests.at(seconds) }
    /// Equal within a microsecond (the spacing is a Double's 1/50 s).
    static func close(_ a: Duration, _ b: Duration) -> Bool { abs((a - b) / .microseconds(1)) < 1 }

    /// At 50 a second, requests are spaced 20 ms apart; the wait a request would have is
    /// known before its turn is reserved (the caller defers one that would wait too long).
    @Test func requestsAreSpacedEvenly() {
        var rate = SendRate()
        #expect(rate.reserve(perSecond: 50, now: Self.at(0)) == .now)
        #expect(rate.reserve(perSecond: 50, now: Self.at(0)) == .at(Self.at(0.02)))
        #expect(rate.reserve(perSecond: 50, now: Self.at(0)) == .at(Self.at(0.04)))
        for _ in 0..<48 { _ = rate.reserve(perSecond: 50, now: Self.at(0)) }
        #expect(Self.close(rate.wait(perSecond: 50, now: Self.at(0)), .seconds(1.02)))
        #expect(Self.close(rate.wait(perSecond: 50, now: Self.at(0.5)), .seconds(0.52)))
        // Time moves on: the pace goes on from the last reservation, not from a burst.
        #expect(rate.reserve(perSecond: 50, now: Self.at(2)) == .now)
        #expect(rate.reserve(perSecond: 50, now: Self.at(2)) == .at(Self.at(2.02)))
    }

    @Test func noLimitIsAlwaysNow() {
        var rate = SendRate()
        for _ in 0..<1000 { #expect(rate.reserve(perSecond: nil, now: Self.at(0)) == .now) }
        #expect(rate.wait(perSecond: nil, now: Self.at(0)) == .zero)
    }

    /// A 429's pause holds every request, limited or not, until it ends.
    @Test func aPauseHoldsUntilItEnds() {
        var rate = SendRate()
        rate.pause(until: Self.at(30))
        #expect(rate.wait(perSecond: nil, now: Self.at(10)) == .seconds(20))
        #expect(rate.reserve(perSecond: nil, now: Self.at(29)) == .at(Self.at(30)))
        // A shorter pause does not shorten a longer one.
        rate.pause(until: Self.at(20))
        #expect(rate.pausedUntil == Self.at(30))
        #expect(rate.reserve(perSecond: 5, now: Self.at(30)) == .now)
        #expect(rate.wait(perSecond: nil, now: Self.at(30)) == .zero)
        #expect(Self.close(rate.wait(perSecond: 5, now: Self.at(30)), .seconds(0.2)))
    }

    /// Two workers share a limit: each paces at its half.
    @Test func aWorkersShareFollowsTheReplicaCount() {
        let slots = Slots(ceiling: 10, stall: .seconds(5))
        let endpoint = UUID()
        slots.setReplicas(2)
        // The pace reads the clock: a fifth of a second after the first request, whenever
        // between these two readings that was.
        let before = ContinuousClock.now
        #expect(slots.pace(endpoint, rateLimit: 10) == .now)
        let after = ContinuousClock.now
        #expect(slots.lane(endpoint)?.perSecond == 5)
        switch slots.pace(endpoint, rateLimit: 10) {
        case .at(let next):
            #expect(next >= before + .milliseconds(200) && next <= after + .milliseconds(200), "a fifth of a second apart")
        case .now:
            // Only if this thread was held that long between the two requests.
            #expect(ContinuousClock.now >= before + .milliseconds(200), "the second request of 5 a second should wait")
        }
        slots.setReplicas(0)
        #expect(slots.replicaCount == 1, "at least this worker")
    }

    /// A lane with a pace bounds its waiters to what the pace sends within a second.
    @Test func aPacedLaneBoundsItsWaiters() {
        var lane = LaneTests.lane(ceiling: 1, initial: 1)
        #expect(LaneTests.fill(&lane, at: 0) == 1)
        #expect(lane.release(after: .answered(.milliseconds(5), delivered: true), now: LaneTests.at(0.005)).granted == 0)
        #expect(LaneTests.fill(&lane, at: 0.005) == 1)
        lane.perSecond = 3
        for _ in 0..<3 { #expect(lane.admit(force: false, mayWait: true, now: LaneTests.at(0.01), stall: LaneTests.stall) == .wait) }
        #expect(lane.admit(force: false, mayWait: true, now: LaneTests.at(0.01), stall: LaneTests.stall) == .refuse)
    }

    /// A 429 with Retry-After pauses the lane for that long.
    @Test func a429PausesTheLane() {
        var lane = LaneTests.lane()
        #expect(LaneTests.fill(&lane, at: 0) == 4)
        _ = lane.release(after: .answered(.milliseconds(5), delivered: false, pause: .seconds(30)), now: LaneTests.at(1))
        #expect(lane.rate.pausedUntil == LaneTests.at(31))
    }
}
