/// A cache kept in step with PostgreSQL by a `ChangeListener`: told of each change on its
/// channel, and of how long the listener vouches that no change goes unnoticed.
public protocol NotifiedCache: Sendable {
    /// A notification's payload on the cache's channel: what changed.
    func notified(_ payload: String)
    /// The listener's probe came back: its notifications are current until `until`.
    func trustNotifications(until: ContinuousClock.Instant)
    /// The listener lost its session: nothing notified is trusted, and what was read
    /// before may have missed a change.
    func distrustNotifications()
}
