public import Records

/// What to do with one delivery when a message asks for attempt `k` of it.
///
/// The state machine behind "at least once, never twice on purpose": an attempt is
/// claimed in PostgreSQL before its request is sent, so of two copies of one message
/// only one sends; a message the broker redelivers (its first holder died) repeats a
/// claimed-but-unrecorded attempt with the same request id, or re-publishes the retry
/// that may not have been published.
public enum Step: Sendable, Equatable {
    /// Nothing left to do: final, or another holder has the attempt.
    case done
    /// Send attempt `k`; `claim` first unless this holder already owns it.
    case attempt(claim: Bool)
    /// Attempt `k` was recorded as a transient failure but its retry may be missing:
    /// publish attempt `next` again (a duplicate is absorbed by the claim).
    case republish(next: Int)

    public static func decide(_ state: DeliveryState, attempt k: Int, redelivered: Bool) -> Step {
        if state.status.isFinal { return .done }
        if state.attempts < k { return .attempt(claim: true) }
        // Attempt k (or a later one) was already started.
        guard redelivered, state.attempts == k else { return .done }
        if state.recordedAttempts < k { return .attempt(claim: false) }
        return state.status == .retrying ? .republish(next: k + 1) : .done
    }
}
