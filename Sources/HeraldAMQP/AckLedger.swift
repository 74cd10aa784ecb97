/// The deliveries of one channel that are not settled yet, so that acks the connection's
/// thread takes together leave as few frames as they can: one `basic.ack` with `multiple`
/// for those that settle the front of the channel's deliveries, a frame each for the others.
///
/// A quorum queue turns each ack frame into an entry of its log, replicated and written to
/// disk; a worker settles the messages of a database batch together, nearly in the order
/// they were delivered, so most of their acks become one entry. A frame only ever names a
/// delivery the broker still holds unacked: RabbitMQ closes the channel otherwise.
package struct AckLedger: Sendable {
    /// Delivery tags in the order they came (a channel's tags only grow), and whether each
    /// is still unsettled; settled ones are dropped as the front passes them, or all at once
    /// when they outnumber the unsettled (one delivery held long must not keep the rest).
    private var tags: [UInt64] = []
    private var unsettled: [Bool] = []
    private var unsettledCount = 0

    package init() {}

    package mutating func deliver(_ tag: UInt64) {
        tags.append(tag)
        unsettled.append(true)
        unsettledCount += 1
    }

    /// How many deliveries the ledger keeps, settled or not (bounded by about three times
    /// the unsettled ones).
    package var count: Int { tags.count }

    /// A nack or reject the caller sends itself: no ack may name the tag afterwards (with
    /// `multiple`, every unsettled tag up to it).
    package mutating func settle(_ tag: UInt64, multiple: Bool) {
        _ = close(tag, multiple: multiple)
        compact()
    }

    /// The frames that ack `requests`, in order. An ack of a tag that is not an unsettled
    /// delivery of this channel (acked twice, or after its nack) makes no frame: the broker
    /// would close the channel over it.
    package mutating func ack(_ requests: [(tag: UInt64, multiple: Bool)]) -> [(tag: UInt64, multiple: Bool)] {
        var acked: [Int] = []
        for request in requests { acked += close(request.tag, multiple: request.multiple) }
        guard !acked.isEmpty else { return [] }
        // Everything before the first unsettled delivery is settled: one frame, named by
        // the last delivery acked now among them, settles at the broker all that it holds.
        let front = unsettled.firstIndex(of: true) ?? tags.count
        var frames: [(tag: UInt64, multiple: Bool)] = []
        let covered = acked.filter { $0 < front }
        if let last = covered.max() { frames.append((tags[last], covered.count > 1)) }
        // Beyond the front, a frame each now: the front may wait long (a delivery of a
        // hanging endpoint), the others must not.
        for index in acked.sorted() where index >= front { frames.append((tags[index], false)) }
        compact()
        return frames
    }

    /// Settles `tag` (or every unsettled tag up to it); returns the indexes it settled.
    private mutating func close(_ tag: UInt64, multiple: Bool) -> [Int] {
        var closed: [Int] = []
        if multiple {
            for index in tags.indices where tags[index] <= tag && unsettled[index] { closed.append(index) }
        } else if let index = index(of: tag), unsettled[index] {
            closed.append(index)
        }
        for index in closed { unsettled[index] = false }
        unsettledCount -= closed.count
        return closed
    }

    private func index(of tag: UInt64) -> Int? {
        var low = 0
        var high = tags.count
        while low < high {
            let middle = (low + high) / 2
            if tags[middle] < tag { low = middle + 1 } else { high = middle }
        }
        return low < tags.count && tags[low] == tag ? low : nil
    }

    private mutating func compact() {
        let settled = tags.count - unsettledCount
        guard settled > 0 else { return }
        let front = unsettled.firstIndex(of: true) ?? tags.count
        if front == tags.count {
            tags.removeAll(keepingCapacity: true)
            unsettled.removeAll(keepingCapacity: true)
        } else if settled > unsettledCount * 2 + 64 {
            tags = tags.indices.filter { unsettled[$0] }.map { tags[$0] }
            unsettled = Array(repeating: true, count: tags.count)
        } else if front > 64 {
            tags.removeFirst(front)
            unsettled.removeFirst(front)
        }
    }
}
