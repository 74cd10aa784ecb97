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
/// - `PREFIX.parking` (quorum): messages that cannot be processed, with the reason. The
///   work queue and the shards dead-letter into it what returns to them more than
///   `deliveryLimit` times (`x-delivery-limit`), so a poison message is parked, never
///   dropped, whatever the broker's default limit (RabbitMQ 4 drops at 20 without one).
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

    /// Times a message may return to the work queue or a shard unprocessed before it is
    /// parked: the worker parks it on the delivery after the last return allowed, the
    /// broker dead-letters it if that delivery fails too.
    public let deliveryLimit: Int
    /// Members of each new quorum queue; nil: the broker's default.
    public let quorumGroupSize: Int?

    public init(
        prefix: String = "herald", ladder: Ladder = .standard, deferDelay: Duration = .seconds(10), shards: Int = 0,
        deliveryLimit: Int = 20, quorumGroupSize: Int? = nil
    ) {
        precondition((0...Self.maxShards).contains(shards), "shards: 0 to \(Self.maxShards)")
        precondition(deliveryLimit >= 1 && (quorumGroupSize ?? 1) >= 1)
        self.prefix = prefix
        self.ladder = ladder
        self.deferDelay = deferDelay
        self.shards = shards
        self.deliveryLimit = deliveryLimit
        self.quorumGroupSize = quorumGroupSize
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
        quorum.merging([
            "x-message-ttl": .int(delay.milliseconds),
            "x-dead-letter-exchange": .string(requeueExchange),
            "x-dead-letter-routing-key": .string(Self.requeueRoutingKey),
            // Quorum queues dead-letter at least once only with these two.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        ]) { $1 }
    }

    /// Every queue's type, and its size when one is set.
    private var quorum: FieldTable {
        var arguments: FieldTable = ["x-queue-type": "quorum"]
        if let quorumGroupSize { arguments["x-quorum-initial-group-size"] = .int(Int64(quorumGroupSize)) }
        return arguments
    }

    /// Declare arguments of a queue workers consume (the work queue, a shard): what
    /// returns to it more than `deliveryLimit` times is dead-lettered to the parking queue.
    package var consumedQueueArguments: FieldTable {
        quorum.merging([
            "x-delivery-limit": .int(Int64(deliveryLimit)),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": .string(parkingQueue),
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        ]) { $1 }
    }

    /// Declare arguments of the parking queue. Listing parked messages returns them to the
    /// queue, and each return counts: the limit is as high as the broker takes, so that
    /// reading the parking lot never drops what it holds (RabbitMQ 4 drops at 20 unless
    /// told otherwise; -1, its "no limit", drops at once on RabbitMQ 3).
    package var parkingQueueArguments: FieldTable {
        quorum.merging(["x-delivery-limit": .int(Int64(Int32.max))]) { $1 }
    }

    /// The arguments earlier Herald versions declared a queue with: `declare` keeps a
    /// queue that has them rather than fail (the broker refuses to change a queue's
    /// arguments), and reports it.
    private static func earlier(_ arguments: FieldTable) -> FieldTable {
        let added: Set<String> = ["x-quorum-initial-group-size", "x-delivery-limit"]
        if arguments["x-delivery-limit"] != nil, arguments["x-dead-letter-exchange"] == "" {
            // The work queue and the shards had no dead-lettering at all.
            return arguments.filter { !added.contains($0.key) && !$0.key.hasPrefix("x-dead-letter") && $0.key != "x-overflow" }
        }
        return arguments.filter { !added.contains($0.key) }
    }

    /// Declares everything, idempotently. A queue that exists with other arguments (an
    /// earlier version's, or settings changed since) is kept as it is and returned.
    ///
    /// With shards, each bucket is bound to its shard and to no other, so changing the
    /// number of shards moves buckets between existing queues; a shard queue above the new
    /// number keeps what it holds and gets nothing new (`leftoverShards` finds them).
    @discardableResult
    package func declare(on channel: Channel) async throws -> [KeptQueue] {
        var kept: [KeptQueue] = []
        func queue(_ name: String, _ arguments: FieldTable) async throws {
            if let queue = try await Self.declare(name, arguments, on: channel.connection) { kept.append(queue) }
        }
        try await channel.declareExchange(eventsExchange, type: .topic)
        try await channel.declareExchange(requeueExchange, type: .direct)
        try await channel.declareExchange(operatorExchange, type: .topic)
        try await queue(parkingQueue, parkingQueueArguments)
        try await queue(workQueue, consumedQueueArguments)
        try await channel.declareExchange(unkeyedExchange, type: .fanout)
        try await channel.declareExchange(shardExchange, type: .headers, arguments: ["alternate-exchange": .string(unkeyedExchange)])
        if shards == 0 {
            try await channel.unbindExchange(shardExchange, from: eventsExchange, routingKey: "#")
            try await channel.bindQueue(workQueue, exchange: eventsExchange, routingKey: "#")
        } else {
            for index in 0..<shards {
                try await queue(shardQueue(index), shardQueueArguments)
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
        for rung in ladder.delays.indices {
            try await queue(retryQueue(rung: rung), retryQueueArguments(rung: rung))
        }
        try await queue(deferQueue, deferQueueArguments)
        return kept
    }

    /// A queue that exists with other arguments than this process declares it with, kept
    /// as it is: the broker cannot change a queue's arguments.
    package struct KeptQueue: Sendable, Equatable, CustomStringConvertible {
        package var name: String
        /// What it lacks when it has an earlier Herald's arguments, which a broker policy
        /// can add (docs/OPERATIONS.md); nil when its arguments are other still (a setting
        /// such as `HERALD_DELIVERY_LIMIT` or `HERALD_DEFER_DELAY` changed since it was made).
        package var missing: [String]?

        package var description: String {
            if let missing { "\(name) (without \(missing.joined(separator: ", ")))" } else { "\(name) (with other arguments than these settings give)" }
        }

        /// What a process logs when it found some.
        package static let warning =
            "queues keep the arguments they were created with; a broker policy adds or changes them (docs/OPERATIONS.md, Queue arguments)"
    }

    /// Declares a queue on a channel of its own (a refusal closes the channel). A queue
    /// that exists with other arguments is kept: returns it, with what it lacks when those
    /// are an earlier version's; nil when it has this process's arguments.
    private static func declare(_ name: String, _ arguments: FieldTable, on connection: Connection) async throws -> KeptQueue? {
        do {
            try await withChannel(on: connection) { try await $0.declareQueue(name, arguments: arguments) }
            return nil
        } catch let error as BrokerError where error.replyCode == 406 {
            let earlier = Self.earlier(arguments)
            if earlier != arguments {
                do {
                    try await withChannel(on: connection) { try await $0.declareQueue(name, arguments: earlier) }
                    return KeptQueue(name: name, missing: arguments.keys.filter { earlier[$0] == nil }.sorted())
                } catch let other as BrokerError where other.replyCode == 406 {}
            }
            // It exists (a 406 says so) with arguments of its own: used as it is.
            try await withChannel(on: connection) { try await $0.declareQueue(name, passive: true) }
            return KeptQueue(name: name, missing: nil)
        }
    }

    private static func withChannel(on connection: Connection, _ body: (Channel) async throws -> Void) async throws {
        let channel = try await connection.openChannel()
        do {
            try await body(channel)
        } catch {
            try? await channel.close()
            throw error
        }
        try? await channel.close()
    }

    /// Declare arguments of a shard: like the work queue, and one consumer at a time reads
    /// it, in order.
    package var shardQueueArguments: FieldTable {
        consumedQueueArguments.merging(["x-single-active-consumer": true]) { $1 }
    }

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
