package import HeraldAMQP
public import Delivery
import HeraldSupport

/// Herald's exchanges and queues, named from one prefix:
///
/// - `PREFIX.events` (topic): producers publish events here, routing key = event type.
/// - `PREFIX.work` (quorum): bound to `PREFIX.events` with `#`; every worker consumes it.
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

    public init(prefix: String = "herald", ladder: Ladder = .standard, deferDelay: Duration = .seconds(10)) {
        self.prefix = prefix
        self.ladder = ladder
        self.deferDelay = deferDelay
    }

    public var eventsExchange: String { "\(prefix).events" }
    public var operatorExchange: String { "\(prefix).operator" }
    public var requeueExchange: String { "\(prefix).requeue" }
    public var workQueue: String { "\(prefix).work" }
    public var parkingQueue: String { "\(prefix).parking" }
    public var deferQueue: String { "\(prefix).defer" }
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
    package func declare(on channel: Channel) async throws {
        try await channel.declareExchange(eventsExchange, type: .topic)
        try await channel.declareExchange(requeueExchange, type: .direct)
        try await channel.declareExchange(operatorExchange, type: .topic)
        try await channel.declareQueue(workQueue, arguments: ["x-queue-type": "quorum"])
        try await channel.bindQueue(workQueue, exchange: eventsExchange, routingKey: "#")
        try await channel.bindQueue(workQueue, exchange: requeueExchange, routingKey: Self.requeueRoutingKey)
        try await channel.declareQueue(parkingQueue, arguments: ["x-queue-type": "quorum"])
        for rung in ladder.delays.indices {
            try await channel.declareQueue(retryQueue(rung: rung), arguments: retryQueueArguments(rung: rung))
        }
        try await channel.declareQueue(deferQueue, arguments: deferQueueArguments)
    }

    /// Every queue name, for inspection and clean-up.
    public var queues: [String] {
        [workQueue, parkingQueue, deferQueue] + ladder.delays.indices.map(retryQueue(rung:))
    }
}
