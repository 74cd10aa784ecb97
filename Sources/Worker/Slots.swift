public import Foundation
import Synchronization

/// Requests in flight per endpoint in this worker, with a limit, so that an endpoint that
/// hangs holds at most `limit` of the worker's slots while the others keep going.
///
/// A delivery that finds its endpoint's slots taken waits for one unless the endpoint
/// stalls: requests to it are in flight and it has answered none of them for `stall`.
/// Behind a stalled endpoint it is refused, at once or when the stall is noticed, and the
/// caller defers it; an endpoint not heard from yet gets `limit` waiters at most. A busy
/// endpoint (or a slow database) therefore costs a wait, a hanging endpoint nothing but
/// its own `limit` slots (and, once, `limit` waiters for `stall`).
public final class Slots: Sendable {
    public let limit: Int
    public let stall: Duration

    /// How a slot was used.
    public enum Use: Sendable {
        /// A request was sent and the endpoint responded (any status, or a quick refusal).
        case answered
        /// A request was sent and timed out.
        case timedOut
        /// No request was sent with it.
        case unused
    }

    private struct Lane {
        var taken = 0
        /// Slots whose request is on the wire.
        var requesting = 0
        var waiters: [CheckedContinuation<Bool, Never>] = []
        /// When the endpoint last answered; nil before its first answer.
        var answeredAt: ContinuousClock.Instant?
        /// When it last answered or, with nothing on the wire before, was sent a request.
        var progressAt: ContinuousClock.Instant

        func isStalled(now: ContinuousClock.Instant, stall: Duration) -> Bool {
            requesting > 0 && now - progressAt >= stall
        }

        /// Whether a delivery that finds every slot taken may wait for one.
        func admitsWaiter(now: ContinuousClock.Instant, limit: Int, stall: Duration) -> Bool {
            !isStalled(now: now, stall: stall) && (answeredAt != nil || waiters.count < limit)
        }
    }

    private struct State {
        var lanes: [UUID: Lane] = [:]
        var sweptAt: ContinuousClock.Instant
        var pruneCountdown = 4096
    }

    private let state: Mutex<State>

    /// `limit` 0 means no limit.
    public init(limit: Int, stall: Duration = .seconds(1)) {
        self.limit = limit
        self.stall = stall
        state = Mutex(State(sweptAt: .now))
    }

    /// Takes a slot of `endpoint` if one is free now (always with `force`).
    public func tryAcquire(_ endpoint: UUID, force: Bool = false) -> Bool {
        let now = ContinuousClock.now
        var refused: [CheckedContinuation<Bool, Never>] = []
        defer { for waiter in refused { waiter.resume(returning: false) } }
        return state.withLock { state in
            refused = sweep(&state, now: now)
            var lane = state.lanes[endpoint] ?? Lane(progressAt: now)
            guard force || limit == 0 || lane.taken < limit else { return false }
            lane.taken += 1
            state.lanes[endpoint] = lane
            return true
        }
    }

    /// Takes a slot of `endpoint`, waiting for one while the endpoint is answering;
    /// false when the caller should defer the delivery instead.
    public func acquire(_ endpoint: UUID, force: Bool = false) async -> Bool {
        if tryAcquire(endpoint, force: force) { return true }
        let now = ContinuousClock.now
        return await withCheckedContinuation { continuation in
            let granted: Bool? = state.withLock { state in
                var lane = state.lanes[endpoint] ?? Lane(progressAt: now)
                if lane.taken < limit {
                    // A slot came free meanwhile.
                    lane.taken += 1
                    state.lanes[endpoint] = lane
                    return true
                }
                guard lane.admitsWaiter(now: now, limit: limit, stall: stall) else { return false }
                lane.waiters.append(continuation)
                state.lanes[endpoint] = lane
                return nil
            }
            if let granted { continuation.resume(returning: granted) }
        }
    }

    /// Marks a slot of `endpoint` as carrying a request now on the wire.
    public func sending(_ endpoint: UUID) {
        let now = ContinuousClock.now
        state.withLock { state in
            guard var lane = state.lanes[endpoint] else { return }
            if lane.requesting == 0 { lane.progressAt = now }
            lane.requesting += 1
            state.lanes[endpoint] = lane
        }
    }

    /// Gives a slot back after `use`; the longest waiter, if any, takes it over.
    public func release(_ endpoint: UUID, after use: Use) {
        let now = ContinuousClock.now
        var refused: [CheckedContinuation<Bool, Never>] = []
        let handedTo: CheckedContinuation<Bool, Never>? = state.withLock { state in
            defer { refused = sweep(&state, now: now) }
            guard var lane = state.lanes[endpoint] else { return nil }
            if use != .unused { lane.requesting -= 1 }
            if use == .answered {
                lane.answeredAt = now
                lane.progressAt = now
            }
            if !lane.waiters.isEmpty {
                let waiter = lane.waiters.removeFirst()
                state.lanes[endpoint] = lane
                return waiter
            }
            // An idle lane is kept for a while: how the endpoint behaved decides whether
            // the next burst waits or is deferred.
            lane.taken -= 1
            state.lanes[endpoint] = lane
            state.pruneCountdown -= 1
            if state.pruneCountdown == 0 {
                state.pruneCountdown = 4096
                state.lanes = state.lanes.filter { _, lane in lane.taken > 0 || now - lane.progressAt < .seconds(60) }
            }
            return nil
        }
        handedTo?.resume(returning: true)
        for waiter in refused { waiter.resume(returning: false) }
    }

    /// Deliveries waiting for a slot of `endpoint` (for tests).
    func waiting(_ endpoint: UUID) -> Int {
        state.withLock { $0.lanes[endpoint]?.waiters.count ?? 0 }
    }

    /// Slots taken across all endpoints (for tests).
    var taken: Int {
        state.withLock { $0.lanes.values.reduce(0) { $0 + $1.taken } }
    }

    /// Refuses the waiters of stalled endpoints, at most twice per `stall`; returns them
    /// to be resumed outside the lock. Any acquire or release anywhere in the worker
    /// notices a stall, so no timer runs per waiter.
    private func sweep(_ state: inout State, now: ContinuousClock.Instant) -> [CheckedContinuation<Bool, Never>] {
        guard now - state.sweptAt >= stall / 2 else { return [] }
        state.sweptAt = now
        var refused: [CheckedContinuation<Bool, Never>] = []
        for (endpoint, lane) in state.lanes where !lane.waiters.isEmpty && lane.isStalled(now: now, stall: stall) {
            refused += lane.waiters
            state.lanes[endpoint]?.waiters.removeAll()
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

    /// Gives the slot back after `use`; later calls do nothing.
    public func release(after use: Slots.Use) {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        slots.release(endpoint, after: use)
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
    public func lease(_ endpoint: UUID, force: Bool = false) async -> SlotLease? {
        await acquire(endpoint, force: force) ? SlotLease(endpoint: endpoint, slots: self) : nil
    }
}
