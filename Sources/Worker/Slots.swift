public import Foundation
import HeraldSupport
import Synchronization

/// One endpoint's requests in this worker, as pure state: every decision is returned, and
/// time is passed in, so the rules are tested with instants of a test's own choosing.
///
/// A delivery that finds the endpoint's slots taken waits for one while the endpoint makes
/// progress at its own pace, and is refused (the caller defers it) only when the endpoint
/// makes none: requests are on the wire and nothing completed for `stall` (a fraction of
/// the HTTP timeout, never a figure tuned on one machine). An endpoint not heard from yet
/// gets at most `limit` waiters, so one that hangs from its first request holds little.
/// While the endpoint's circuit is open (`CircuitBreaker`), nothing is sent but its probe.
package struct Lane: Sendable {
    package enum Admission: Sendable, Equatable {
        /// A slot is the caller's.
        case take
        /// The caller waits for a slot, handed over by a later release.
        case wait
        /// The caller should defer the delivery.
        case refuse
        /// The endpoint's circuit is open: the caller defers the delivery, unattempted.
        case hold
    }

    /// What a release changed.
    package struct Released: Sendable, Equatable {
        /// Waiters that take a slot now, the longest-waiting first.
        package var granted = 0
        /// Waiters to refuse now, because the circuit opened.
        package var refused = 0
        package var transition: CircuitBreaker.Transition?
    }

    package private(set) var limit: ConcurrencyLimit
    package private(set) var breaker: CircuitBreaker
    /// The pace of its requests: the rate limit's share, a `429`'s pause.
    package var rate = SendRate()
    /// Its share of the rate limit, as last asked; nil: none. Bounds the waiters to what
    /// the pace sends within the wait a delivery may have.
    package var perSecond: Double?
    /// Slots held, with or without a request on the wire.
    package private(set) var taken = 0
    /// Slots whose request is on the wire.
    package private(set) var requesting = 0
    /// Callers waiting for a slot.
    package private(set) var waiting = 0
    /// When the endpoint last answered; nil before its first answer.
    package private(set) var answeredAt: ContinuousClock.Instant?
    /// Its answers' latency, smoothed (each answer weighs an eighth); nil before the first
    /// and after a timeout, until it answers again.
    package private(set) var latency: Duration?
    /// When it last answered or, with nothing on the wire before, was sent a request.
    package private(set) var progressAt: ContinuousClock.Instant

    package init(limit: ConcurrencyLimit, breaker: CircuitBreaker = CircuitBreaker(.off), now: ContinuousClock.Instant) {
        self.limit = limit
        self.breaker = breaker
        progressAt = now
    }

    /// Requests are on the wire and none completed for `stall`.
    package func isStalled(now: ContinuousClock.Instant, stall: Duration) -> Bool {
        requesting > 0 && now - progressAt >= stall
    }

    /// A caller asks for a slot; `force` takes one whatever the limit and the circuit (an
    /// attempt the caller owns already), `mayWait` false refuses rather than waits. The
    /// probe of a half-open circuit takes a slot whatever the limit.
    ///
    /// `beforeStore`: the caller has not stored its delivery yet, so the event is missing
    /// from the log while it waits; it waits only while its turn is due within
    /// `beforeStore`, as the endpoint answers: the waiters ahead take a slot per answer, a
    /// limit's worth per round of its latency. An endpoint not heard from, or silent for
    /// that long with requests out, promises nothing (one that stops answering while a
    /// delivery waits keeps it until the stall refuses it).
    package mutating func admit(
        force: Bool, mayWait: Bool, beforeStore: Duration? = nil, now: ContinuousClock.Instant, stall: Duration
    ) -> Admission {
        if !force {
            switch breaker.decide(now: now) {
            case .hold:
                return .hold
            case .probe:
                taken += 1
                return .take
            case .send:
                break
            }
        }
        if force || taken < limit.limit {
            taken += 1
            return .take
        }
        guard mayWait, !isStalled(now: now, stall: stall), answeredAt != nil || waiting < limit.limit else { return .refuse }
        if let beforeStore {
            guard let latency, latency * (waiting / limit.limit + 1) < beforeStore, requesting == 0 || now - progressAt < beforeStore else {
                return .refuse
            }
        }
        if let perSecond, Double(waiting) >= max(1, perSecond * (Slots.maxPaceWait / .seconds(1))) { return .refuse }
        waiting += 1
        return .wait
    }

    /// A slot's request goes on the wire.
    package mutating func sending(now: ContinuousClock.Instant) {
        if requesting == 0 { progressAt = now }
        requesting += 1
    }

    /// Gives a slot back after `use`: waiters take the slots free now (more than one when
    /// the limit grew), or are all refused when the circuit is not closed.
    package mutating func release(after use: Slots.Use, now: ContinuousClock.Instant) -> Released {
        let demand = taken + waiting
        taken -= 1
        var released = Released()
        switch use {
        case .unused:
            breaker.probeAbandoned()
        case .cancelled:
            requesting -= 1
            breaker.probeAbandoned()
        case .answered(let latency, let delivered, let pause):
            requesting -= 1
            if let pause, pause > .zero { rate.pause(until: now + pause) }
            limit.answered(after: latency, inFlight: demand)
            self.latency = self.latency.map { $0 + (latency - $0) / 8 } ?? latency
            answeredAt = now
            progressAt = now
            released.transition = breaker.record(succeeded: delivered, now: now)
        case .failed:
            requesting -= 1
            answeredAt = now
            progressAt = now
            released.transition = breaker.record(succeeded: false, now: now)
        case .timedOut:
            requesting -= 1
            limit.timedOut()
            latency = nil
            released.transition = breaker.record(succeeded: false, now: now)
        }
        if breaker.state != .closed {
            released.refused = waiting
            waiting = 0
            return released
        }
        released.granted = min(waiting, max(0, limit.limit - taken))
        waiting -= released.granted
        taken += released.granted
        return released
    }

    /// Refuses every waiter if the endpoint is stalled; returns how many.
    package mutating func refuseWaitersIfStalled(now: ContinuousClock.Instant, stall: Duration) -> Int {
        guard waiting > 0, isStalled(now: now, stall: stall) else { return 0 }
        defer { waiting = 0 }
        return waiting
    }

    /// Nothing held or awaited, and no progress for `idle`: the lane may be forgotten.
    package func isIdle(now: ContinuousClock.Instant, for idle: Duration) -> Bool {
        taken == 0 && waiting == 0 && now - progressAt >= idle
    }
}

/// Requests in flight per endpoint in this worker, each endpoint within its own adaptive
/// limit (`ConcurrencyLimit`), so that an endpoint that slows down or hangs gets fewer
/// requests and holds few of the worker's slots while the others keep going.
///
/// The decisions are `Lane`'s; this class holds the lanes under a lock and resumes the
/// waiting callers. A stall is noticed by any later acquire or release in the worker (at
/// most twice per `stall`), so no timer runs per waiter.
public final class Slots: Sendable {
    /// The most requests one endpoint may have in flight; 0 means no limit.
    public let ceiling: Int
    /// How long requests may go unanswered before the endpoint counts as making no progress.
    public let stall: Duration
    private let settings: ConcurrencyLimit.Settings
    private let breaker: CircuitBreaker.Settings

    /// How a slot was used.
    public enum Use: Sendable, Equatable {
        /// A request was sent and the endpoint responded after this long; `delivered`: with
        /// a status that delivers; `pause`: it asked for no request for this long (`429`
        /// with `Retry-After`).
        case answered(Duration, delivered: Bool, pause: Duration? = nil)
        /// A request was sent and failed before a response (refused, reset, TLS): progress,
        /// but no latency to learn from.
        case failed
        /// A request was sent and timed out.
        case timedOut
        /// No request was sent with it.
        case unused
        /// Its request was cut short by this worker (its session ended) before an answer:
        /// nothing learned of the endpoint, nothing counted against it.
        case cancelled
    }

    /// A class, changed where the table holds it: a struct changed through the table's
    /// subscript went through an accessor that allocated its frame on every call.
    private final class Entry {
        var lane: Lane
        var waiters: [Continuation<Bool, Never>] = []

        init(lane: Lane) { self.lane = lane }
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        var sweptAt: ContinuousClock.Instant
        var pruneCountdown = 4096
    }

    private let state: Mutex<State>
    /// Workers consuming, this one included: each sends its share of a rate limit.
    private let replicas = Atomic(1)
    /// The limit of `ceiling` 0.
    static let unlimited = 1 << 30
    /// The longest a delivery waits for its endpoint's pace; beyond it, it is deferred.
    package static let maxPaceWait: Duration = .seconds(1)

    /// `ceiling` 0 means no limit. `stall` is best a fraction of the HTTP timeout (the
    /// worker uses half): requests older than that with no answer since mean no progress.
    package init(ceiling: Int, initial: Int? = nil, stall: Duration, breaker: CircuitBreaker.Settings = .off) {
        self.ceiling = ceiling
        self.stall = stall
        self.breaker = breaker
        // No limit is a limit no endpoint reaches: lanes still keep circuits and paces.
        settings = ceiling == 0 ? ConcurrencyLimit.Settings(ceiling: Self.unlimited, initial: Self.unlimited)
            : ConcurrencyLimit.Settings(ceiling: ceiling, initial: initial)
        state = Mutex(State(sweptAt: .now))
    }

    /// The slots of a worker whose requests time out after `httpTimeout`.
    package convenience init(ceiling: Int, httpTimeout: Duration, breaker: CircuitBreaker.Settings = .off) {
        self.init(ceiling: ceiling, stall: httpTimeout / 2, breaker: breaker)
    }

    /// Takes a slot of `endpoint` if one is free now (always with `force`).
    public func tryAcquire(_ endpoint: UUID, force: Bool = false) -> Bool {
        admit(endpoint, force: force, mayWait: false) == .take
    }

    /// Takes a slot of `endpoint`, waiting for one while the endpoint makes progress;
    /// false when the caller should defer the delivery instead. `beforeStore`: the
    /// delivery is not stored yet, and waits only for a slot due soon (`Lane.admit`).
    public func acquire(_ endpoint: UUID, force: Bool = false, beforeStore: Duration? = nil) async -> Bool {
        if tryAcquire(endpoint, force: force) { return true }
        return await withContinuation { continuation in
            switch admit(endpoint, force: force, mayWait: true, beforeStore: beforeStore, waiter: continuation) {
            case .take: continuation.resume(returning: true)
            case .refuse, .hold: continuation.resume(returning: false)
            case .wait: break
            }
        }
    }

    private func admit(
        _ endpoint: UUID, force: Bool, mayWait: Bool, beforeStore: Duration? = nil, waiter: Continuation<Bool, Never>? = nil
    ) -> Lane.Admission {
        let now = ContinuousClock.now
        var refused: [Continuation<Bool, Never>] = []
        defer { for waiter in refused { waiter.resume(returning: false) } }
        return state.withLock { state in
            refused = sweep(&state, now: now)
            return withEntry(&state, endpoint, now: now) { entry in
                let admission = entry.lane.admit(force: force, mayWait: mayWait, beforeStore: beforeStore, now: now, stall: stall)
                if admission == .wait, let waiter { entry.waiters.append(waiter) }
                return admission
            }
        }
    }

    /// Marks a slot of `endpoint` as carrying a request now on the wire.
    public func sending(_ endpoint: UUID) {
        let now = ContinuousClock.now
        state.withLock { state in
            if let entry = state.entries[endpoint] { entry.lane.sending(now: now) }
        }
    }

    /// Gives a slot back after `use`; the longest waiters, if any, take the slots free now.
    /// Returns the circuit's transition this release caused, if any.
    @discardableResult
    package func release(_ endpoint: UUID, after use: Use) -> CircuitBreaker.Transition? {
        let now = ContinuousClock.now
        var refused: [Continuation<Bool, Never>] = []
        var transition: CircuitBreaker.Transition?
        let handedTo: [Continuation<Bool, Never>] = state.withLock { state in
            defer { refused += sweep(&state, now: now) }
            guard let entry = state.entries[endpoint] else { return [] }
            let released = entry.lane.release(after: use, now: now)
            transition = released.transition
            let handed = Array(entry.waiters.prefix(released.granted))
            entry.waiters.removeFirst(released.granted)
            refused = Array(entry.waiters.prefix(released.refused))
            entry.waiters.removeFirst(released.refused)
            // An idle lane is kept for a while: its limit and how the endpoint behaved
            // decide how the next burst is sent.
            state.pruneCountdown -= 1
            if state.pruneCountdown == 0 {
                state.pruneCountdown = 4096
                state.entries = state.entries.filter { !$0.value.lane.isIdle(now: now, for: .seconds(600)) }
            }
            return handed
        }
        for waiter in handedTo { waiter.resume(returning: true) }
        for waiter in refused { waiter.resume(returning: false) }
        return transition
    }

    /// How many workers consume now (from their heartbeats): a rate limit is shared by them.
    package func setReplicas(_ count: Int) {
        replicas.store(max(1, count), ordering: .relaxed)
    }

    package var replicaCount: Int { replicas.load(ordering: .relaxed) }

    /// This worker's share of a rate limit of `limit` per second.
    private func share(_ limit: Int?) -> Double? {
        limit.map { Double($0) / Double(replicaCount) }
    }

    /// Reserves the instant for a request to `endpoint` at its pace (a share of
    /// `rateLimit` per second, and any pause it asked for): now, or a later instant.
    package func pace(_ endpoint: UUID, rateLimit: Int?) -> SendRate.Slot {
        let now = ContinuousClock.now
        let perSecond = share(rateLimit)
        return state.withLock { state in
            withEntry(&state, endpoint, now: now) { entry in
                entry.lane.perSecond = perSecond
                return entry.lane.rate.reserve(perSecond: perSecond, now: now)
            }
        }
    }

    /// How long a request to `endpoint` now would wait for its pace (nothing reserved).
    package func paceWait(_ endpoint: UUID, rateLimit: Int?) -> Duration {
        let now = ContinuousClock.now
        let perSecond = share(rateLimit)
        return state.withLock { state in
            guard let entry = state.entries[endpoint] else { return .zero }
            entry.lane.perSecond = perSecond
            return entry.lane.rate.wait(perSecond: perSecond, now: now)
        }
    }

    /// The lane of `endpoint` (for tests and metrics).
    package func lane(_ endpoint: UUID) -> Lane? {
        state.withLock { $0.entries[endpoint]?.lane }
    }

    /// Deliveries waiting for a slot of `endpoint` (for tests).
    func waiting(_ endpoint: UUID) -> Int {
        state.withLock { $0.entries[endpoint]?.waiters.count ?? 0 }
    }

    /// Slots taken across all endpoints (for tests).
    var taken: Int {
        state.withLock { $0.entries.values.reduce(0) { $0 + $1.lane.taken } }
    }

    /// Runs `body` on the entry of `endpoint`, made if there is none.
    private func withEntry<R>(_ state: inout State, _ endpoint: UUID, now: ContinuousClock.Instant, _ body: (Entry) -> R) -> R {
        if let entry = state.entries[endpoint] { return body(entry) }
        let entry = Entry(lane: Lane(limit: ConcurrencyLimit(settings), breaker: CircuitBreaker(breaker), now: now))
        state.entries[endpoint] = entry
        return body(entry)
    }

    /// Refuses the waiters of stalled endpoints, at most twice per `stall`; returns them
    /// to be resumed outside the lock.
    private func sweep(_ state: inout State, now: ContinuousClock.Instant) -> [Continuation<Bool, Never>] {
        guard now - state.sweptAt >= stall / 2 else { return [] }
        state.sweptAt = now
        var refused: [Continuation<Bool, Never>] = []
        for entry in state.entries.values where !entry.waiters.isEmpty {
            guard entry.lane.refuseWaitersIfStalled(now: now, stall: stall) > 0 else { continue }
            refused += entry.waiters
            entry.waiters.removeAll()
        }
        return refused
    }
}
/// A slot of one endpoint, taken: given back exactly once — by `release(after:)` once its
/// request is over, or unused when the last reference to it goes (a path that returned
/// early, threw or was cancelled), so no path can leave a slot taken.
public final class SlotLease: Sendable {
    public let endpoint: UUID
    private let slots: Slots
    private let released = Atomic(false)

    fileprivate init(endpoint: UUID, slots: Slots) {
        self.endpoint = endpoint
        self.slots = slots
    }

    /// Gives the slot back after `use`; later calls do nothing. Returns the circuit's
    /// transition it caused, if any.
    @discardableResult
    package func release(after use: Slots.Use) -> CircuitBreaker.Transition? {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return nil }
        return slots.release(endpoint, after: use)
    }

    deinit {
        release(after: .unused)
    }
}

extension Slots {
    /// A lease on a slot of `endpoint` if one is free now (always with `force`).
    public func tryLease(_ endpoint: UUID, force: Bool = false) -> SlotLease? {
        tryAcquire(endpoint, force: force) ? SlotLease(endpoint: endpoint, slots: self) : nil
    }

    /// A lease on a slot of `endpoint`, after waiting for one while the endpoint answers;
    /// nil when the caller should defer the delivery instead.
    public func lease(_ endpoint: UUID, force: Bool = false, beforeStore: Duration? = nil) async -> SlotLease? {
        await acquire(endpoint, force: force, beforeStore: beforeStore) ? SlotLease(endpoint: endpoint, slots: self) : nil
    }
}
