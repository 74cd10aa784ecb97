import Synchronization

/// Hands out turns in the order messages arrived on one shard subscription, so that
/// events processed concurrently still take their place in the store's order one after
/// another: a message waits for its turn only for the moment it queues its write.
///
/// Every ticket is passed exactly once (`Turn.pass` is idempotent); a waiter whose task
/// is cancelled stops waiting with `CancellationError`.
final class Turns: Sendable {
    private struct State {
        var issued = 0
        var current = 0
        var waiting: [Int: CheckedContinuation<Void, any Error>] = [:]
        var cancelled: Set<Int> = []
    }

    private let state = Mutex(State())

    init() {}

    /// The next ticket, in arrival order; call from the one loop that reads the consumer.
    func issue() -> Turn {
        let ticket = state.withLock { state in
            defer { state.issued += 1 }
            return state.issued
        }
        return Turn(turns: self, ticket: ticket)
    }

    fileprivate func wait(_ ticket: Int) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let ready: Result<Void, any Error>? = state.withLock { state in
                    if state.cancelled.remove(ticket) != nil { return .failure(CancellationError()) }
                    if state.current == ticket { return .success(()) }
                    state.waiting[ticket] = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                guard let waiter = state.waiting.removeValue(forKey: ticket) else {
                    state.cancelled.insert(ticket)
                    return nil as CheckedContinuation<Void, any Error>?
                }
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    fileprivate func pass(_ ticket: Int) {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            precondition(state.current == ticket, "turn \(ticket) passed out of order (current \(state.current))")
            state.current += 1
            state.cancelled.remove(ticket)
            return state.waiting.removeValue(forKey: state.current)
        }
        next?.resume()
    }
}

/// One message's place in its subscription's order.
final class Turn: Sendable {
    private let turns: Turns
    let ticket: Int
    private let passed = Atomic(false)
    private let taken = Atomic(false)

    fileprivate init(turns: Turns, ticket: Int) {
        self.turns = turns
        self.ticket = ticket
    }

    /// Waits until every earlier message has passed its turn.
    func take() async throws {
        try await turns.wait(ticket)
        taken.store(true, ordering: .relaxed)
    }

    /// Lets the next message go; only the first call counts. A turn not yet taken waits
    /// for it first, so that the order of passing is the order of tickets.
    func pass() async {
        guard !passed.load(ordering: .relaxed) else { return }
        if !taken.load(ordering: .relaxed) {
            // Cancelled while waiting: the order is being abandoned with the subscription.
            guard (try? await turns.wait(ticket)) != nil else { return }
        }
        guard passed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        turns.pass(ticket)
    }

    /// Passes a turn that was taken, synchronously (inside the store's queueing).
    func passTaken() {
        precondition(taken.load(ordering: .relaxed), "a turn is taken before it is passed")
        guard passed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        turns.pass(ticket)
    }
}
