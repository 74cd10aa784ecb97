package import HeraldAMQP
public import Delivery
import HeraldEvents
import HeraldSupport

/// Herald's exchanges and queues, named from one prefix:
///
/// - `PREFIX.events` (topic): producers publish events here, routing key = event type.
/// - `PREFIX.work` (quorum): every worker consumes it. Bound to `PREFIX.events` with `#`
///   when there are no shards; with shards it carries delivery messages only.
/// - With `shards` = N > 0: `PREFIX.shards` (headers), bound to `PREFIX.events` with `#`,
///   routes each event by its tenant's bucket header to `PREFIX.work.<i>` (quorum, single
///   active consumer), i = bucket mod N; an event without the header goes through
///   `PREFIX.shards.unkeyed` (fanout, the alternate exchange) to shard 0. One worker at a
///   time reads a shard, so a tenant's events enter Herald in the order they were published.
/// - `PREFIX.retry.<delay>` (quorum, one per rung): queue-wide `x-message-ttl`, dead-lettered
///   at least once into `PREFIX.requeue` (direct) with key `work`, which feeds `PREFIX.work`.
/// - `PREFIX.defer` (quorum): like a rung, with `deferDelay`: deliveries whose endpoint
///   has as many requests in flight as a worker allows wait here, without an attempt.
/// - `PREFIX.parking` (quorum): messages that cannot be processed, with the reason.
/// - `PREFIX.operator` (topic): operator events (`OperatorEvent`), routing key = their type;
///   operators bind their own queues.
public struct Topology: Sendable, Equatable {
    public let prefix: String
    public let ladder: Ladder
    /// How long a deferred delivery waits before a worker looks at it again.
    public let deferDelay: Duration

    /// Work queue shards for events (0: events share `PREFIX.work`).
    public let shards: Int
    /// The most shards a deployment may have: every shard takes at least one bucket.
    public static let maxShards = WireFormat.buckets

    public init(prefix: String = "herald", ladder: Ladder = .standard, deferDelay: Duration = .seconds(10), shards: Int = 0) {
        precondition((0...Self.maxShards).contains(shards), "shards: 0 to \(Self.maxShards)")
        self.prefix = prefix
        self.ladder = ladder
        self.deferDelay = deferDelay
        self.shards = shards
    }

    public var eventsExchange: String { "\(prefix).events" }
    public var operatorExchange: String { "\(prefix).operator" }
    public var requeueExchange: String { "\(prefix).requeue" }
    public var workQueue: String { "\(prefix).work" }
    public var parkingQueue: String { "\(prefix).parking" }
    public var deferQueue: String { "\(prefix).defer" }
    public var shardExchange: String { "\(prefix).shards" }
    public var unkeyedExchange: String { "\(prefix).shards.unkeyed" }
    public func shardQueue(_ index: Int) -> String { "\(prefix).work.\(index)" }
    /// The shard queues workers read: one per shard.
    public var shardQueues: [String] { (0..<shards).map(shardQueue) }

    /// The shard that receives bucket `bucket`.
    public func shard(ofBucket bucket: Int) -> Int { bucket % shards }
    public static let requeueRoutingKey = "work"

    public func retryQueue(rung: Int) -> String { "\(prefix).retry.\(ladder.label(rung: rung))" }

    /// Declare arguments of a rung's queue.
    package func retryQueueArguments(rung: Int) -> FieldTable {
        delayQueueArguments(ladder.delays[rung])
    }

    /// Declare arguments of the defer queue.
    package var deferQueueArguments: FieldTable { delayQueueArguments(deferDelay) }

    private func delayQueueArguments(_ delay: Duration) -> FieldTable {
        [
            "x-queue-type": "quorum",
            "x-message-ttl": .int(delay.milliseconds),
            "x-dead-letter-exchange": .string(requeueExchange),
            "x-dead-letter-routing-key": .string(Self.requeueRoutingKey),
            // Quorum queues dead-letter at least once only with these two.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        ]
    }

    /// Declares everything (idempotent; a changed argument on an existing queue fails with 406).
    ///
    /// With shards, each bucket is bound to its shard and to no other, so changing the
    /// number of shards moves buckets between existing queues; a shard queue above the new
    /// number keeps what it holds and gets nothing new (`leftoverShards` finds them).
    package func declare(on channel: Channel) async throws {
        try await channel.declareExchange(eventsExchange, type: .topic)
        try await channel.declareExchange(requeueExchange, type: .direct)
        try await channel.declareExchange(operatorExchange, type: .topic)
        try await channel.declareQueue(workQueue, arguments: ["x-queue-type": "quorum"])
        try await channel.declareExchange(unkeyedExchange, type: .fanout)
        try await channel.declareExchange(shardExchange, type: .headers, arguments: ["alternate-exchange": .string(unkeyedExchange)])
        if shards == 0 {
            try await channel.unbindExchange(shardExchange, from: eventsExchange, routingKey: "#")
            try await channel.bindQueue(workQueue, exchange: eventsExchange, routingKey: "#")
        } else {
            for index in 0..<shards {
                try await channel.declareQueue(shardQueue(index), arguments: Self.shardQueueArguments)
            }
            try await channel.bindQueue(shardQueue(0), exchange: unkeyedExchange, routingKey: "")
            for bucket in 0..<WireFormat.buckets {
                let arguments: FieldTable = ["x-match": "all", WireFormat.bucketHeader: .string(String(bucket))]
                for index in 0..<shards where index != shard(ofBucket: bucket) {
                    try await channel.unbindQueue(shardQueue(index), exchange: shardExchange, routingKey: "", arguments: arguments)
                }
                try await channel.bindQueue(shardQueue(shard(ofBucket: bucket)), exchange: shardExchange, routingKey: "", arguments: arguments)
            }
            // Events reach the shards before the shared queue stops taking them: none is unrouted.
            try await channel.bindExchange(shardExchange, to: eventsExchange, routingKey: "#")
            try await channel.unbindQueue(workQueue, exchange: eventsExchange, routingKey: "#")
        }
        try await channel.bindQueue(workQueue, exchange: requeueExchange, routingKey: Self.requeueRoutingKey)
        try await channel.declareQueue(parkingQueue, arguments: ["x-queue-type": "quorum"])
        for rung in ladder.delays.indices {
            try await channel.declareQueue(retryQueue(rung: rung), arguments: retryQueueArguments(rung: rung))
        }
        try await channel.declareQueue(deferQueue, arguments: deferQueueArguments)
    }

    /// Declare arguments of a shard: one consumer at a time reads it, in order.
    package static let shardQueueArguments: FieldTable = ["x-queue-type": "quorum", "x-single-active-consumer": true]

    /// Shard queues numbered from `shards` up that exist from an earlier, larger number of
    /// shards: they are unbound from every bucket and read until empty. Each probe that
    /// finds nothing costs a channel, so `connection` opens one per look.
    package func leftoverShards(on connection: Connection) async throws -> [String] {
        var found: [String] = []
        for index in shards..<Self.maxShards {
            let probe = try await connection.openChannel()
            do {
                try await probe.declareQueue(shardQueue(index), passive: true)
            } catch {
                // 404: the channel is closed by the broker; no higher shard exists.
                break
            }
            for bucket in 0..<WireFormat.buckets {
                try await probe.unbindQueue(
                    shardQueue(index), exchange: shardExchange, routingKey: "",
                    arguments: ["x-match": "all", WireFormat.bucketHeader: .string(String(bucket))])
            }
            if index == 0 { try await probe.unbindQueue(shardQueue(0), exchange: unkeyedExchange, routingKey: "") }
            try? await probe.close()
            found.append(shardQueue(index))
        }
        return found
    }

    /// Every queue name, for inspection and clean-up.
    public var queues: [String] {
        [workQueue, parkingQueue, deferQueue] + shardQueues + ladder.delays.indices.map(retryQueue(rung:))
    }
}
