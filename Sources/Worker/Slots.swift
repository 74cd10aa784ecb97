public import Foundation
import Synchronization

/// Requests in flight per endpoint in this worker, with a limit, so that an endpoint that
/// hangs holds at most `limit` of the worker's slots while the others keep going.
///
/// A delivery that finds its endpoint's slots taken waits for one while the endpoint is
/// answering (it answered within `stall`). Behind an endpoint that has answered nothing
/// for `stall` it is refused at once, and the caller defers it; an endpoint not heard from
/// yet gets `limit` waiters at most. A busy fast endpoint therefore costs a short wait, a
/// hanging one nothing but its own `limit` slots (and, once, `limit` waiters for `stall`).
public final class Slots: Sendable {
    public let limit: Int
    public let stall: Duration

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct Lane {
        var taken = 0
        var waiters: [Waiter] = []
        /// When the endpoint last answered; nil before its first answer.
        var answeredAt: ContinuousClock.Instant?
        var createdAt: ContinuousClock.Instant

        /// Whether a delivery that finds every slot taken may wait for one.
        func admitsWaiter(now: ContinuousClock.Instant, limit: Int, stall: Duration) -> Bool {
            if let answeredAt { return now - answeredAt < stall }
            return now - createdAt < stall && waiters.count < limit
        }
    }

    private struct State {
        var lanes: [UUID: Lane] = [:]
        var nextWaiter: UInt64 = 0
        var releases: UInt64 = 0
    }

    private let state = Mutex(State())

    /// `limit` 0 means no limit.
    public init(limit: Int, stall: Duration = .seconds(1)) {
        self.limit = limit
        self.stall = stall
    }

    /// Takes a slot of `endpoint` if one is free now (always with `force`).
    public func tryAcquire(_ endpoint: UUID, force: Bool = false) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            var lane = state.lanes[endpoint] ?? Lane(createdAt: now)
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
            let waiter: UInt64? = state.withLock { state in
                guard var lane = state.lanes[endpoint] else {
                    // Every slot came free meanwhile.
                    state.lanes[endpoint] = Lane(taken: 1, createdAt: now)
                    continuation.resume(returning: true)
                    return nil
                }
                if lane.taken < limit {
                    lane.taken += 1
                    state.lanes[endpoint] = lane
                    continuation.resume(returning: true)
                    return nil
                }
                guard lane.admitsWaiter(now: now, limit: limit, stall: stall) else {
                    continuation.resume(returning: false)
                    return nil
                }
                state.nextWaiter += 1
                lane.waiters.append(Waiter(id: state.nextWaiter, continuation: continuation))
                state.lanes[endpoint] = lane
                return state.nextWaiter
            }
            if let waiter {
                // A waiter gives up after `stall`: the endpoint has stopped answering.
                Task { [stall] in
                    try? await Task.sleep(for: stall)
                    self.expire(endpoint, waiter: waiter)
                }
            }
        }
    }

    /// Gives a slot back; the longest waiter, if any, takes it over. `answered`: the
    /// endpoint responded (any status, or a quick refusal), as opposed to timing out.
    public func release(_ endpoint: UUID, answered: Bool = true) {
        let now = ContinuousClock.now
        let handedTo: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard var lane = state.lanes[endpoint] else { return nil }
            if answered { lane.answeredAt = now }
            if !lane.waiters.isEmpty {
                let waiter = lane.waiters.removeFirst()
                state.lanes[endpoint] = lane
                return waiter.continuation
            }
            lane.taken -= 1
            // An idle lane is kept for a while: how the endpoint behaved decides whether
            // the next burst waits or is deferred.
            state.lanes[endpoint] = lane
            state.releases += 1
            if state.releases % 4096 == 0 { Self.prune(&state, now: now) }
            return nil
        }
        handedTo?.resume(returning: true)
    }

    /// Whether a delivery to `endpoint` would get a slot, or wait for one, now (a hint
    /// for skipping a lookup: another task may change it meanwhile).
    public func isOpen(_ endpoint: UUID) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard limit > 0, let lane = state.lanes[endpoint], lane.taken >= limit else { return true }
            return lane.admitsWaiter(now: now, limit: limit, stall: stall)
        }
    }

    /// Deliveries waiting for a slot of `endpoint`.
    public func waiting(_ endpoint: UUID) -> Int {
        state.withLock { $0.lanes[endpoint]?.waiters.count ?? 0 }
    }

    /// Slots taken across all endpoints.
    public var taken: Int {
        state.withLock { $0.lanes.values.reduce(0) { $0 + $1.taken } }
    }

    /// Forgets idle lanes of endpoints not heard from for a minute.
    private static func prune(_ state: inout State, now: ContinuousClock.Instant) {
        state.lanes = state.lanes.filter { _, lane in
            lane.taken > 0 || now - (lane.answeredAt ?? lane.createdAt) < .seconds(60)
        }
    }

    private func expire(_ endpoint: UUID, waiter id: UInt64) {
        let expired: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard var lane = state.lanes[endpoint], let index = lane.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            let waiter = lane.waiters.remove(at: index)
            state.lanes[endpoint] = lane
            return waiter.continuation
        }
        expired?.resume(returning: false)
    }
}
