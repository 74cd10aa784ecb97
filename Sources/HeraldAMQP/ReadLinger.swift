/// Whether a consuming connection reads the messages that have arrived at once, or waits
/// a little for the next ones to arrive with them.
///
/// At moderate load messages come one at a time, and each then wakes every thread and
/// process it crosses on its own: the worker's, curl's, the receiver's, PostgreSQL's. As
/// Kafka's `linger.ms`, waiting a few milliseconds before reading lets those of the wait
/// be taken, sent, stored and acked together (measured in docs/PERFORMANCE.md). It waits
/// only while every consuming channel of the connection has less than a quarter of its
/// prefetch window in progress — as `AckLedger` holds acks until a quarter waits — so a
/// busy consumer, whose window is full, never waits, and nothing is judged by the clock.
package enum ReadLinger {
    /// What one channel with consumers tells of itself.
    package struct Consuming: Sendable, Equatable {
        /// The shortest linger among the channel's consumers; zero: they never wait.
        package var linger: Duration
        /// The channel's prefetch window; zero: unlimited.
        package var prefetch: Int
        /// Deliveries taken and not settled yet.
        package var inProgress: Int

        /// Whether this channel lets the connection wait: it asks for it, and less than a
        /// quarter of its window is in progress (an unlimited window tells nothing).
        var isQuiet: Bool {
            linger > .zero && prefetch > 0 && inProgress < AckLedger.Holding.quarter(of: prefetch)
        }
    }

    /// How long to wait before reading what has arrived: nil when any consuming channel
    /// is busy or asks for no wait, or when nothing consumes (a producer's connection).
    package static func wait<Channels: Sequence<Consuming>>(_ channels: Channels) -> Duration? {
        var shortest: Duration?
        for channel in channels {
            guard channel.isQuiet else { return nil }
            shortest = min(shortest ?? channel.linger, channel.linger)
        }
        return shortest
    }
}
