/// What the worker writes on a message it parks, and what the operator reads back.
public enum Parked {
    /// A UUID naming the parked message, so that one can be replayed or discarded.
    public static let idHeader = "herald-parked-id"
    public static let reasonHeader = "herald-parked-reason"
    /// The routing key the message arrived with (an event type, or `work`).
    public static let fromHeader = "herald-parked-from"
    /// When it was parked, in milliseconds since 1970.
    public static let atHeader = "herald-parked-at"
    /// Set when only an excerpt of the body was kept: the body's full size.
    public static let bodyBytesHeader = "herald-parked-body-bytes"

    /// Every header parking adds; a replayed message carries none of them.
    public static let headers: Set<String> = [idHeader, reasonHeader, fromHeader, atHeader, bodyBytesHeader]
}
