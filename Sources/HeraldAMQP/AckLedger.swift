/// The deliveries of one channel that are not settled yet, so that acks the connection's
/// thread takes together leave as few frames as they can: one `basic.ack` with `multiple`
/// for the run of settled deliveries at the front, a frame each for the others.
///
/// A quorum queue turns each ack frame into an entry of its log, replicated and written to
/// disk; a worker settles the messages of a database batch together, nearly in the order
/// they were delivered, so most of their acks become one entry.
package struct AckLedger: Sendable {
    /// Delivery tags in the order they came (a channel's tags only grow); from `front` on,
    /// not settled at the front yet.
    private var delivered: [UInt64] = []
    private var front = 0
    /// Tags behind the front that are settled already (acked in a frame of their own,
    /// nacked, rejected): the front passes them without a frame.
    private var settled: Set<UInt64> = []

    package init() {}

    package mutating func deliver(_ tag: UInt64) {
        delivered.append(tag)
    }

    /// Whether `tag` is one of this channel's outstanding deliveries.
    private func outstanding(_ tag: UInt64) -> Bool {
        front < delivered.count && tag >= delivered[front] && tag <= delivered[delivered.count - 1]
    }

    /// A nack or reject the caller sends itself: the front passes the tag (with
    /// `multiple`, every outstanding tag up to it).
    package mutating func settle(_ tag: UInt64, multiple: Bool) {
        if multiple {
            for index in front..<delivered.count where delivered[index] <= tag { settled.insert(delivered[index]) }
        } else if outstanding(tag) {
            settled.insert(tag)
        }
        advance(acking: [])
    }

    /// The frames that ack `tags` (`multiple` for a caller's own multiple ack), in order.
    package mutating func ack(_ tags: [(tag: UInt64, multiple: Bool)]) -> [(tag: UInt64, multiple: Bool)] {
        var frames: [(tag: UInt64, multiple: Bool)] = []
        var pending: Set<UInt64> = []
        for (tag, multiple) in tags {
            if multiple {
                for index in front..<delivered.count where delivered[index] <= tag && !settled.contains(delivered[index]) {
                    pending.insert(delivered[index])
                }
            } else if outstanding(tag) {
                if !settled.contains(tag) { pending.insert(tag) }
            } else {
                // Not a delivery this ledger saw: acked as asked.
                frames.append((tag, multiple))
            }
        }
        settled.formUnion(pending)
        // The frame's tag must be one the broker still holds unacked (a multiple ack whose
        // own tag was settled before closes the channel): the last of `pending` passed.
        let (last, count) = advance(acking: pending)
        if let last {
            frames.append((last, count > 1))
        }
        // What is settled beyond a gap goes now, a frame each: the front may wait long
        // (a delivery of a hanging endpoint), and the broker must not.
        for tag in pending.sorted() where tag > (last ?? 0) {
            frames.append((tag, false))
        }
        return frames
    }

    /// Moves the front past every settled tag; returns the last of `acking` it passed and
    /// how many of `acking` it passed.
    @discardableResult
    private mutating func advance(acking: Set<UInt64>) -> (last: UInt64?, count: Int) {
        var last: UInt64?
        var count = 0
        while front < delivered.count, settled.remove(delivered[front]) != nil {
            if acking.contains(delivered[front]) {
                last = delivered[front]
                count += 1
            }
            front += 1
        }
        if front > 256, front * 2 > delivered.count {
            delivered.removeFirst(front)
            front = 0
        }
        return (last, count)
    }
}
