import Synchronization

/// A wait for one answer that the caller may stop waiting for: the answer and the task's
/// cancellation race to resume it, the first wins and the other is dropped. The pattern
/// postgres-nio uses for its connection requests.
///
/// The answering side learns whether its answer was taken (`resume` returns false after
/// a cancellation), so that a resource handed over (a pooled connection) can go to
/// someone else instead of leaking.
public final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, any Error>)
        case cancelled
        case done
    }

    private let state = Mutex(State.idle)

    public init() {}

    /// Suspends until `resume`, or throws `CancellationError` as soon as the task is
    /// cancelled. `start` (which posts the request that will be answered) runs once the
    /// wait is in place, and not at all if the task was cancelled before.
    public func wait(_ start: () -> Void) async throws -> Value {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let cancelled = state.withLock { state in
                    if case .cancelled = state { return true }
                    state = .waiting(continuation)
                    return false
                }
                if cancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    start()
                }
            }
        } onCancel: {
            let waiting: CheckedContinuation<Value, any Error>? = state.withLock { state in
                switch state {
                case .idle:
                    state = .cancelled
                    return nil
                case .waiting(let continuation):
                    state = .done
                    return continuation
                case .cancelled, .done:
                    return nil
                }
            }
            waiting?.resume(throwing: CancellationError())
        }
    }

    /// Answers the wait; false when it had ended already (cancelled, or answered).
    @discardableResult
    public func resume(returning value: Value) -> Bool {
        guard let continuation = take() else { return false }
        continuation.resume(returning: value)
        return true
    }

    @discardableResult
    public func resume(throwing error: any Error) -> Bool {
        guard let continuation = take() else { return false }
        continuation.resume(throwing: error)
        return true
    }

    private func take() -> CheckedContinuation<Value, any Error>? {
        state.withLock { state in
            guard case .waiting(let continuation) = state else { return nil }
            state = .done
            return continuation
        }
    }
}
