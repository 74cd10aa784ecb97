import HeraldAMQP
import Cryptography
import Delivery
import HeraldEvents
import FanOut
import Foundation
import HTTPClient
import Logging
import Migrations
import Postgres
import HeraldProducer
import Records
import Testing
import TestSupport
import Topology
import Worker

/// A whole pipeline for one test: its own database (migrated), its own exchange and
/// queues (a unique prefix), an in-process worker and a producer, all on the real servers.
struct Pipeline {
    let databaseURL: String
    let pool: Pool
    let topology: Topology
    let producer: Producer
    let context: WorkerContext
    /// What the pipeline's worker is doing, for a heartbeat; idle without a worker.
    let workerStatus = WorkerStatus()

    struct Options {
        var ladder = "200ms,400ms,800ms"
        var httpTimeout: Duration = .seconds(2)
        var disable = DisablePolicy(threshold: 5, window: .zero)
        var headerPrefix = "X-Herald"
        var startWorker = true
        /// The worker's connect-time guard; nil connects anywhere.
        var addressPolicy: (@Sendable (SocketAddress) -> Bool)?
        /// Requests in flight per endpoint, and the wait of a deferred delivery.
        var endpointConcurrency = 10
        var deferDelay: Duration = .milliseconds(300)
        /// The worker's circuit breaker; off unless a test is about it.
        var breaker: CircuitBreaker.Settings = .off
        /// The tenant whose endpoints receive operator events as webhooks.
        var operatorTenant: UUID?
        /// Seals and opens endpoint secrets, in the worker and the API.
        var secretKeyring: SecretKeyring = .plaintext
        /// Work queue shards for events (0: one shared work queue).
        var shards = 0
        /// Returns to the work queue before a message is parked.
        var deliveryLimit = 20
        /// When first copies send before they are stored (`HERALD_DELIVER_BEFORE_STORE`);
        /// with `auto` the worker's heartbeats have shown it alone since the run began.
        var deliverBeforeStore: DeliverBeforeStore = .never
        /// How long a store of deliveries all sent first waits for company (`HERALD_STORE_LINGER`).
        var storeLinger: Duration = .zero
        /// How long the consumer may wait for company before reading (`HERALD_CONSUMER_LINGER`):
        /// the workers' default, so every pipeline test reads through it.
        var consumerLinger: Duration = .milliseconds(5)

        init(startWorker: Bool = true) {
            self.startWorker = startWorker
        }
    }

    static func run<T>(_ options: Options = Options(), _ body: (Pipeline) async throws -> T) async throws -> T {
        try await withTestDatabase { url in
            try await Migrator(
                databaseURL: url, migrations: try Migration.load(directory: TestServices.repositoryRoot.appendingPathComponent("migrations").path),
                logger: TestServices.logger
            ).run()
            let pool = try Pool(url: url, size: 6, logger: TestServices.logger)
            let topology = Topology(prefix: TestServices.uniqueName("t"), ladder: try Ladder(parsing: options.ladder), deferDelay: options.deferDelay,
                shards: options.shards, deliveryLimit: options.deliveryLimit)
            let client = Client(configuration: .init(addressPolicy: options.addressPolicy))
            var context = WorkerContext(
                directory: Directory(pool: pool, timeToLive: .milliseconds(200), keyring: options.secretKeyring),
                records: PostgresRecords(pool: pool, policy: options.disable), client: client,
                requests: RequestSettings(headerPrefix: options.headerPrefix, timeout: options.httpTimeout, connectTimeout: .seconds(1)),
                topology: topology, limits: EventLimits(), slots: Slots(ceiling: options.endpointConcurrency, httpTimeout: options.httpTimeout, breaker: options.breaker),
                operatorTenant: options.operatorTenant, logger: TestServices.logger)
            context.deliverBeforeStore = options.deliverBeforeStore
            context.storeLinger = options.storeLinger
            context.consumerLinger = options.consumerLinger
            if options.deliverBeforeStore == .auto {
                // Alone since a second ago, by its heartbeats.
                let replicas = Replicas(replica: "pipeline", interval: .seconds(3600), look: .seconds(360), countsOnSolitude: true)
                replicas.update(consuming: ["pipeline"], live: ["pipeline"], alone: ["pipeline"], announced: true, at: Date() - 1)
                context.replicas = replicas
            }
            // A worker that started before the events' ids were made.
            context.firstCopies = FirstCopies(startedAt: Date() - 1)
            let producer = Producer(
                configuration: .init(amqpURL: TestServices.amqpURL, exchange: topology.eventsExchange), logger: TestServices.logger)
            let pipeline = Pipeline(databaseURL: url, pool: pool, topology: topology, producer: producer, context: context)
            // Declare before anything is published, so no event is unroutable.
            try await pipeline.declareTopology()
            let worker = options.startWorker ? pipeline.startWorker() : nil
            do {
                let result = try await body(pipeline)
                await pipeline.tearDown(worker: worker, client: client)
                return result
            } catch {
                await pipeline.tearDown(worker: worker, client: client)
                throw error
            }
        }
    }

    func startWorker(concurrency: Int = 50, windowBytes: Int = 24 * 1024 * 1024) -> Task<Void, any Error> {
        let service = WorkerService(amqpURL: TestServices.amqpURL, context: context, concurrency: concurrency, windowBytes: windowBytes, status: workerStatus)
        return Task { try await service.run() }
    }

    private func declareTopology() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        try await topology.declare(on: try await connection.openChannel())
        await connection.close()
    }

    private func tearDown(worker: Task<Void, any Error>?, client: Client) async {
        worker?.cancel()
        _ = await worker?.result
        await producer.close()
        await client.shutdown()
        if let connection = try? await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger),
            let channel = try? await connection.openChannel()
        {
            for queue in topology.queues { try? await channel.deleteQueue(queue) }
            try? await channel.deleteExchange(topology.eventsExchange)
            try? await channel.deleteExchange(topology.requeueExchange)
            try? await channel.deleteExchange(topology.operatorExchange)
            try? await channel.deleteExchange(topology.shardExchange)
            try? await channel.deleteExchange(topology.unkeyedExchange)
            await connection.close()
        }
        await pool.close()
    }

    func tenant() async throws -> UUID {
        try await pool.query("INSERT INTO tenants (name) VALUES (\("studio")) RETURNING id")[0].decode(UUID.self, 0)
    }

    func endpoint(
        tenant: UUID, url: String, types: [String] = ["*"], filters: String = "{}", headers: String = "{}",
        format: Endpoint.PayloadFormat = .raw, secret: String = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ) async throws -> UUID {
        try await pool.query(
            """
            INSERT INTO endpoints (tenant_id, url, event_types, filters, custom_headers, payload_format, secret, enabled, dpa_confirmed_at)
            VALUES (\(tenant), \(url), \(types), \(JSONB(filters)), \(JSONB(headers)), \(format.rawValue), \(secret), true, now())
            RETURNING id
            """)[0].decode(UUID.self, 0)
    }

    @discardableResult
    func publish(_ type: String, tenant: UUID, id: String = Event.generateID(), data: String = #"{"id":42}"#, attributes: [String: String] = [:]) async throws -> Event {
        let event = Event(id: id, type: type, tenantID: tenant, data: Array(data.utf8), attributes: attributes)
        try await producer.publish(event)
        return event
    }

    struct DeliveryRow {
        var status: String
        var attempts: Int
        var eventID: String
    }

    func deliveries(endpoint: UUID) async throws -> [DeliveryRow] {
        try await pool.query("SELECT status, attempts, event_id FROM deliveries WHERE endpoint_id = \(endpoint) ORDER BY created_at").map {
            DeliveryRow(status: try $0.decode(String.self, 0), attempts: try $0.decode(Int.self, 1), eventID: try $0.decode(String.self, 2))
        }
    }

    /// The reasons of the next `count` messages in the parking queue, acked as they are read.
    func parkedReasons(_ count: Int) async throws -> [String] {
        try await parked(count).map { $0.message.headers["herald-parked-reason"]?.string ?? "" }
    }

    /// The next `count` messages in the parking queue, acked as they are read.
    func parked(_ count: Int) async throws -> [HeraldAMQP.Delivery] {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let consumer = try await channel.consume(topology.parkingQueue)
        var messages: [HeraldAMQP.Delivery] = []
        for try await parked in consumer {
            messages.append(parked)
            channel.ack(parked.deliveryTag)
            if messages.count == count { break }
        }
        consumer.cancel()
        await connection.close()
        return messages
    }

    /// Messages ready in the work queue.
    func workQueueDepth() async throws -> UInt32 {
        try await queueDepth(topology.workQueue)
    }

    /// Messages ready in `queue`.
    func queueDepth(_ queue: String) async throws -> UInt32 {
        try await queueInfo(queue).messageCount
    }

    /// What the broker reports of `queue`; throws when it does not exist.
    func queueInfo(_ queue: String) async throws -> QueueInfo {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        do {
            let info = try await connection.openChannel().declareQueue(queue, passive: true)
            await connection.close()
            return info
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Waits until `condition` holds, re-checking the database state every 50 ms, or fails after `timeout`.
    func eventually(timeout: Duration = .seconds(30), _ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting until \(what)")
        throw WaitTimedOut(expected: 1, received: 0)
    }
}
