package import HeraldAMQP
import Foundation
import Logging
import Metrics
import Synchronization
import Topology
public import ServiceLifecycle

/// Consumes the work queue and processes up to `concurrency` messages at once (fewer when
/// events are large: `PrefetchWindow`), each acked only once everything it caused is
/// recorded and confirmed. Besides them it may hold an earlier subscription's messages: for
/// a moment after the window changes size, and for as long as messages of endpoints that
/// do not answer last when a new window was taken in place of one they filled
/// (`Stragglers`; three times `concurrency` at most).
///
/// Reconnects with backoff when the broker goes away. On graceful shutdown (SIGTERM,
/// SIGINT) it cancels its consumer, lets the messages in hand finish (bounded by the HTTP
/// timeout), then closes; anything unacked returns to the queue for another replica.
public struct WorkerService: Service, CustomStringConvertible {
    /// What service-lifecycle logs for this service: never the URL, which holds the password.
    public var description: String { "WorkerService(queue: \(context.topology.workQueue))" }

    public let amqpURL: String
    public let context: WorkerContext
    /// The work queue's prefetch when messages are small: the most messages processed at
    /// once, but for an earlier window's stragglers (`Stragglers`).
    public let concurrency: Int
    /// Bytes of message bodies the worker aims to hold: with large messages the prefetch
    /// shrinks so that `concurrency` of them do not fill the memory (`PrefetchWindow`).
    public let windowBytes: Int
    /// Largest message body read in full; a larger one is parked from its declared size.
    /// With `concurrency` (three times it while stragglers are held beside a new window),
    /// it bounds the memory messages take.
    public let maxMessageBytes: Int
    package let backoff: Backoff
    /// Whether a consumer is subscribed to the work queue now (the worker's readiness),
    /// and how many messages it holds: what its heartbeat reports.
    public let status: WorkerStatus

    package init(
        amqpURL: String, context: WorkerContext, concurrency: Int = 500, windowBytes: Int = 24 * 1024 * 1024, maxMessageBytes: Int = 320 * 1024,
        backoff: Backoff = Backoff(), status: WorkerStatus = WorkerStatus()
    ) {
        self.windowBytes = windowBytes
        self.status = status
        self.amqpURL = amqpURL
        self.context = context
        self.concurrency = concurrency
        self.maxMessageBytes = maxMessageBytes
        self.backoff = backoff
    }

    public func run() async throws {
        // Not before the heartbeats were read: a replica counting on being alone must have
        // seen this one first (`Replicas.cleared`).
        if let replicas = context.replicas {
            if !replicas.isCleared { context.logger.info("waiting for the heartbeats before consuming") }
            let cleared = try? await cancelWhenGracefulShutdown { try await replicas.cleared() }
            guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
            if cleared == false {
                context.logger.warning(
                    "consuming although the heartbeats still show another replica counting on being alone, or could not be read",
                    metadata: ["waited": "\(replicas.interval * 3)"])
            }
        }
        // The stores' deadlines for first attempts, for as long as the worker runs.
        let deadlines = context.firstAttemptDeadlines
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await deadlines.run() }
            defer { group.cancelAll() }
            try await runSessions()
        }
    }

    private func runSessions() async throws {
        let logger = context.logger
        var failures = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let connection: Connection
            do {
                // A broker that refuses or is down must not keep a stopping worker waiting.
                connection = try await cancelWhenGracefulShutdown {
                    try await Connection.connect(to: amqpURL, logger: logger, backoff: backoff)
                }
            } catch is CancellationError {
                break
            }
            do {
                try await session(on: connection)
                failures = 0
                await connection.close()
            } catch {
                logger.warning("worker session ended", metadata: ["reason": "\(error)"])
                failures += 1
                await connection.abandon()
            }
            if Task.isShuttingDownGracefully { break }
            if failures > 0 {
                let delay = backoff.delay(attempt: failures)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
        logger.info("worker stopped")
    }

    /// One connection's life: declare, consume, process; returns on shutdown, throws when
    /// the connection breaks.
    private func session(on connection: Connection) async throws {
        let setup = try await connection.openChannel()
        let kept = try await context.topology.declare(on: setup)
        if !kept.isEmpty { context.logger.warning("\(Topology.KeptQueue.warning)", metadata: ["queues": "\(kept)"]) }
        let leftovers = try await context.topology.leftoverShards(on: connection)
        let publisher = try await connection.openChannel()
        try await publisher.enableConfirms()
        let channel = try await connection.openChannel()
        var window = PrefetchWindow(budget: windowBytes, most: concurrency, largestMessage: maxMessageBytes)
        let subscription = Subscription()
        let renewals = (
            size: Counter(label: "herald_consumer_renewals_total", dimensions: [("reason", "size")]),
            stragglers: Counter(label: "herald_consumer_renewals_total", dimensions: [("reason", "stragglers")])
        )
        status.setConsuming(true)
        defer { status.setConsuming(false) }
        let processor = Processor(context: context, publisher: publisher, maxMessageBytes: maxMessageBytes)
        let inFlight = Meter(label: "herald_deliveries_in_flight")
        context.logger.info(
            "worker consuming", metadata: ["queue": "\(context.topology.workQueue)", "concurrency": "\(concurrency)", "prefetch": "\(window.prefetch)"])
        let shards = context.topology.shardQueues.enumerated().map { ($1, Optional($0)) } + leftovers.map { ($0, nil as Int?) }
        if !shards.isEmpty {
            context.logger.info("worker reading shards", metadata: ["shards": "\(shards.count)"])
        }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                for (queue, index) in shards {
                    group.addTask { try await read(shard: queue, index: index, on: connection, processor: processor, inFlight: inFlight) }
                }
                @Sendable func handle(_ delivery: HeraldAMQP.Delivery) async {
                    inFlight.increment()
                    status.began()
                    defer {
                        inFlight.decrement()
                        status.ended()
                        subscription.ended(delivery.deliveryTag)
                    }
                    do {
                        try await processor.handle(delivery)
                        channel.ack(delivery.deliveryTag)
                    } catch {
                        context.logger.warning(
                            "message not processed, returning it to the queue", metadata: ["reason": "\(error)"])
                        subscription.failed(delivery.deliveryTag)
                        // A growing hold keeps a database outage from becoming a hot redelivery
                        // loop, and from using up the message's returns before it ends.
                        // A stopping worker returns it at once.
                        let hold = Returning.hold(afterReturns: delivery.returns)
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: hold) }
                        channel.nack(delivery.deliveryTag, requeue: true)
                    }
                }
                // Each message goes to a runner, a task that keeps its memory for the next.
                let runners = Runners<HeraldAMQP.Delivery>()
                defer { runners.close() }
                func process(_ delivery: HeraldAMQP.Delivery) {
                    guard runners.submit(delivery) else { return }
                    group.addTask {
                        while let delivery = await runners.next() { await handle(delivery) }
                    }
                }
                // One subscription per window: the messages a cancelled consumer holds stay
                // this channel's to ack while the next consumer takes a window of its own,
                // of a new size or in place of one that stragglers fill (counted meanwhile,
                // since a window they fill delivers nothing more).
                try await withThrowingTaskGroup(of: Void.self) { watch in
                    watch.addTask {
                        var wait = Duration.milliseconds(100)
                        while true {
                            try await Task.sleep(for: wait)
                            let renewed: Bool
                            (renewed, wait) = subscription.renewIfStraggling()
                            if renewed {
                                context.logger.debug("a new window in place of one that stragglers fill", metadata: ["held": "\(subscription.held)"])
                                renewals.stragglers.increment()
                            }
                        }
                    }
                    defer { watch.cancelAll() }
                    var qos: Int?
                    while !Task.isShuttingDownGracefully {
                        if qos != window.prefetch {
                            try await channel.setPrefetch(UInt16(clamping: window.prefetch))
                            qos = window.prefetch
                            status.setPrefetch(window.prefetch)
                        }
                        let started = try await channel.consume(context.topology.workQueue, maxBodyBytes: maxMessageBytes, linger: context.consumerLinger)
                        guard let consumer = subscription.start(started, prefetch: window.prefetch) else {
                            // Stopped meanwhile and cancelled at once: what it delivered
                            // before the broker's reply is processed with the rest.
                            for try await delivery in started { process(delivery) }
                            break
                        }
                        var changed = false
                        for try await delivery in consumer {
                            subscription.arrived(delivery, limit: window.mostHeld)
                            // Events only: a retry's or a deferral's few bytes say nothing of the
                            // event it loads, so they leave the window where it is.
                            if !changed, delivery.message.headers[WorkMessage.kindHeader] == nil,
                                let prefetch = window.observe(size: delivery.message.body.count)
                            {
                                changed = true
                                context.logger.info(
                                    "prefetch follows the message size", metadata: ["prefetch": "\(prefetch)", "mean_bytes": "\(window.meanSize ?? 0)"])
                                if subscription.renew() { renewals.size.increment() }
                            }
                            process(delivery)
                        }
                        guard subscription.renewing else { break }
                    }
                }
            }
        } onGracefulShutdown: {
            subscription.stop()
        }
        if let reason = connection.isOpen ? nil : await connection.closed() { throw reason }
    }

    /// Reads one shard in order, subscription after subscription, until the session ends.
    ///
    /// Its events are stored in the order the shard delivered them (`Intake`). Whatever
    /// goes wrong with one message ends the subscription: the channel is closed, so every
    /// message it held returns to the head of the shard in order, and a new subscription
    /// reads them again. A replica that should not read the shard (`context.replicas`) closes its
    /// channel when it finds itself delivered to, which hands the shard to the replica
    /// waiting behind it.
    private func read(shard queue: String, index: Int?, on connection: Connection, processor: Processor, inFlight: Meter) async throws {
        let logger = context.logger
        // Subscriptions in a row that ended in a failure before a message was acked.
        var failures = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully && connection.isOpen {
            let channel = try await connection.openChannel()
            // After a failure, one message at a time until one is acked: only the message
            // that failed comes back again (each return counts towards the delivery limit),
            // not the whole window behind it.
            let careful = failures > 0
            try await channel.setPrefetch(careful ? 1 : UInt16(clamping: max(16, concurrency / max(1, context.topology.shards))))
            let consumer = try await channel.consume(queue, maxBodyBytes: maxMessageBytes, linger: context.consumerLinger)
            let turns = Turns()
            let store = processor.orderedStore()
            let delivered = Flag()
            let acked = Flag()
            let outcome: Result<Void, any Error>
            do {
                try await withGracefulShutdownHandler {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        if let index, let view = context.replicas {
                            group.addTask {
                                while true {
                                    try await Task.sleep(for: view.interval)
                                    if delivered.take() && !view.owns(shard: index) {
                                        logger.info("handing a shard over to the replica that owns it", metadata: ["queue": "\(queue)"])
                                        try? await channel.close()
                                        return
                                    }
                                }
                            }
                        }
                        group.addTask {
                            try await withThrowingDiscardingTaskGroup { messages in
                                for try await delivery in consumer {
                                    delivered.set()
                                    let intake = Intake(turn: turns.issue(), stores: store)
                                    messages.addTask {
                                        inFlight.increment()
                                        status.began()
                                        defer {
                                            inFlight.decrement()
                                            status.ended()
                                        }
                                        try await processor.handle(delivery, intake: intake)
                                        channel.ack(delivery.deliveryTag)
                                        acked.set()
                                        // Past the failure: the next subscription takes the full window.
                                        if careful { consumer.cancel() }
                                    }
                                }
                            }
                        }
                        // The subscription ends with its consumer (or the hand-over).
                        try await group.next()
                        group.cancelAll()
                    }
                } onGracefulShutdown: {
                    consumer.cancel()
                }
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            try? await channel.close()
            if case .success = outcome, acked.take() { failures = 0 }
            if case .failure(let error) = outcome, !Task.isShuttingDownGracefully, connection.isOpen {
                failures = acked.take() ? 1 : failures + 1
                logger.warning("shard subscription ended; its messages return in order", metadata: ["queue": "\(queue)", "reason": "\(error)"])
                // Every return counts towards the delivery limit: the hold grows as on the work queue.
                let hold = Returning.hold(afterReturns: failures - 1)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: hold) }
            }
        }
    }
}

/// The work queue's consumer of the moment and the messages it and its predecessors hold
/// (`Stragglers`), so that a graceful shutdown cancels whichever subscription is current
/// and no later one starts, and a window that stragglers fill is replaced by a new one.
private final class Subscription: Sendable {
    private struct State {
        var consumer: Consumer?
        var stopped = false
        /// The current consumer was cancelled for a new one.
        var renewing = false
        var stragglers = Stragglers()
    }

    private let state = Mutex(State())

    /// Keeps `consumer` as the current one, with its prefetch; cancels it and returns nil
    /// after `stop`.
    func start(_ consumer: Consumer, prefetch: Int) -> Consumer? {
        let stopped = state.withLock { state in
            state.consumer = consumer
            state.renewing = false
            state.stragglers.subscribed(prefetch: prefetch)
            return state.stopped
        }
        if stopped {
            consumer.cancel()
            return nil
        }
        return consumer
    }

    /// Whether the current consumer was cancelled for a new one (and no stop came since).
    var renewing: Bool {
        state.withLock { state in !state.stopped && state.renewing }
    }

    /// Cancels the current consumer for a new one, unless that is under way; returns
    /// whether it did.
    func renew() -> Bool {
        let consumer = state.withLock { Self.takeForRenewal(&$0) }
        consumer?.cancel()
        return consumer != nil
    }

    /// The current consumer, marked as cancelled for a new one; nil when stopped, when a
    /// renewal is under way or before the first.
    private static func takeForRenewal(_ state: inout State) -> Consumer? {
        guard !state.stopped, !state.renewing, let consumer = state.consumer else { return nil }
        state.renewing = true
        return consumer
    }

    func stop() {
        state.withLock { state in
            state.stopped = true
            return state.consumer
        }?.cancel()
    }

    var held: Int { state.withLock { $0.stragglers.held } }

    /// A delivery (a cancelled consumer's when it came late), and the most messages in
    /// hand now.
    func arrived(_ delivery: HeraldAMQP.Delivery, limit: Int) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.stragglers.arrived(delivery.deliveryTag, late: delivery.consumerTag != state.consumer?.tag, at: now)
            state.stragglers.limit = limit
        }
    }

    func ended(_ tag: UInt64) {
        let now = ContinuousClock.now
        state.withLock { $0.stragglers.ended(tag, at: now) }
    }

    func failed(_ tag: UInt64) {
        state.withLock { $0.stragglers.failed(tag) }
    }

    /// Cancels the current consumer when stragglers fill its window (`Stragglers.check`);
    /// returns whether it did, and how long to wait before asking again.
    func renewIfStraggling() -> (renewed: Bool, next: Duration) {
        let now = ContinuousClock.now
        let (consumer, next) = state.withLock { state -> (Consumer?, Duration) in
            let (renew, next) = state.stragglers.check(at: now)
            return (renew ? Self.takeForRenewal(&state) : nil, next)
        }
        consumer?.cancel()
        return (consumer != nil, next)
    }
}

/// What a worker is doing now: read by readiness probes and the heartbeat.
public final class WorkerStatus: Sendable {
    public init() {}

    private let subscribed = Atomic(false)
    private let holding = Atomic(0)
    private let window = Atomic(0)

    /// Whether the consumer is subscribed to the work queue.
    public var consuming: Bool { subscribed.load(ordering: .relaxed) }
    /// Messages being processed.
    public var inFlight: Int { holding.load(ordering: .relaxed) }
    /// The work queue consumer's prefetch now (`PrefetchWindow`).
    public var prefetch: Int { window.load(ordering: .relaxed) }

    func setConsuming(_ on: Bool) { subscribed.store(on, ordering: .relaxed) }
    func setPrefetch(_ count: Int) { window.store(count, ordering: .relaxed) }
    func began() { holding.add(1, ordering: .relaxed) }
    func ended() { holding.subtract(1, ordering: .relaxed) }
}
