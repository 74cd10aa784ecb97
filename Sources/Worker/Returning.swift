/// How long a worker holds a message it could not process (the database or the broker
/// failed) before the message returns to its queue.
///
/// Each return counts towards the queue's delivery limit, after which the message is
/// parked: the hold doubles with every return, from 1 s to 60 s, so that an outage
/// must last about a quarter of an hour (at the default limit of 20) before the messages
/// it holds are parked, while one failure costs a second.
package enum Returning {
    /// The hold before the return of a message that has come back `returns` times already.
    package static func hold(afterReturns returns: Int) -> Duration {
        min(.seconds(1 << min(max(returns, 0), 6)), ceiling)
    }

    /// The longest hold: a return a minute still outpaces no outage worth noticing.
    package static let ceiling: Duration = .seconds(60)
}
