public import Synchronization

/// A wait for one answer that the caller may stop waiting for: the answer and the task's
/// cancellation race to resume it, the first wins and the other is dropped. The pattern
/// postgres-nio uses for its connection requests.
///
/// The answering side learns whether its answer was taken (`resume` returns false after
/// a cancellation), so that a resource handed over (a pooled connection) can go to
/// someone else instead of leaking.
///
/// Inlinable, so that a caller gets it specialised for its value: run generically, every
/// use looked its state's, the mutex's and the result's types up in the runtime. `public`
/// with `package` members, as `Batcher`: Swift 6.3 does not inline the members of a
/// `package` type into another module.
public final class OneShot<Value: Sendable>: Sendable {
    @usableFromInline enum State {
        case idle
        /// Answered before `wait` was reached (the request was visible to the answering
        /// side before its waiter suspended): `wait` returns it at once.
        case answered(Result<Value, any Error>)
        case waiting(Continuation<Value, any Error>)
        case cancelled
        case done
    }

    @usableFromInline let state: Mutex<State>

    /// The state set here, not by a property's initial value: that one is a function of
    /// its own, which a caller cannot specialise.
    @inlinable package init() {
        state = Mutex(.idle)
    }

    /// Suspends until `resume`, or throws `CancellationError` as soon as the task is
    /// cancelled. `start` (which posts the request that will be answered) runs once the
    /// wait is in place, and not at all if the task was cancelled before.
    @inlinable package func wait(_ start: () -> Void) async throws -> Value {
        try await withTaskCancellationHandler {
            try await withThrowingContinuation { (continuation: Continuation<Value, any Error>) in
                let early: Result<Value, any Error>? = state.withLock { state in
                    switch state {
                    case .cancelled:
                        state = .done
                        return .failure(CancellationError())
                    case .answered(let result):
                        state = .done
                        return result
                    case .idle, .waiting, .done:
                        state = .waiting(continuation)
                        return nil
                    }
                }
                if let early {
                    continuation.resume(with: early)
                } else {
                    start()
                }
            }
        } onCancel: {
            let waiting: Continuation<Value, any Error>? = state.withLock { state in
                switch state {
                case .idle:
                    state = .cancelled
                    return nil
                case .waiting(let continuation):
                    state = .done
                    return continuation
                case .answered, .cancelled, .done:
                    // An answer already given is returned: it may hold a resource.
                    return nil
                }
            }
            waiting?.resume(throwing: CancellationError())
        }
    }

    /// Answers the wait, now or when `wait` is reached; false when the wait had ended
    /// already (cancelled, or answered), so the answer was not taken.
    @inlinable @discardableResult
    package func resume(returning value: Value) -> Bool {
        answer(.success(value))
    }

    @inlinable @discardableResult
    package func resume(throwing error: any Error) -> Bool {
        answer(.failure(error))
    }

    /// Whether the wait has its answer or was given up: a watcher that holds many (time
    /// limits) lets such ones go without answering them.
    @inlinable package var isSettled: Bool {
        state.withLock { state in
            if case .idle = state { return false }
            if case .waiting = state { return false }
            return true
        }
    }

    @usableFromInline enum Outcome {
        case stored
        case resume(Continuation<Value, any Error>)
        case refused
    }

    @inlinable func answer(_ result: Result<Value, any Error>) -> Bool {
        let outcome: Outcome = state.withLock { state in
            switch state {
            case .idle:
                state = .answered(result)
                return .stored
            case .waiting(let continuation):
                state = .done
                return .resume(continuation)
            case .answered, .cancelled, .done:
                return .refused
            }
        }
        switch outcome {
        case .stored: return true
        case .resume(let continuation):
            continuation.resume(with: result)
            return true
        case .refused: return false
        }
    }
}
