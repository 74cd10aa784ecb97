/// When a worker sends the first attempts of an event before it stores the event
/// (`HERALD_DELIVER_BEFORE_STORE`). Sent first, a delivery costs fewer writes and no commit
/// waits before its request; stored first, a copy of an event published twice finds the
/// first one's deliveries and sends nothing again.
public enum DeliverBeforeStore: String, Sendable, CaseIterable {
    /// While the worker is the only live replica (from the heartbeats): every copy of an
    /// event then comes to it, and its memory of the events it stored finds a second one.
    case auto
    /// Whatever the other replicas: a copy that another replica takes is sent again, under
    /// the same `webhook-id`.
    case always = "true"
    /// Every event is stored before it is sent.
    case never = "false"
}
