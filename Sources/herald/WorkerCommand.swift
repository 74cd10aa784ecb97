import ArgumentParser
import Delivery
import HeraldEvents
import FanOut
import HTTPClient
import Logging
import Management
import Metrics
import Operations
import Policy
import Postgres
import Records
import ServiceLifecycle
import UnixSignals
import Settings
import Topology
import Worker

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Consume events and deliver them to endpoints; run as many replicas as needed.",
        discussion: "Stops gracefully on SIGTERM or SIGINT: in-flight deliveries finish or return to the queue.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let settings = try options.settings()
        Telemetry.bootstrap()
        let logger = Logger(label: "herald.worker")
        let exporter = TraceSetup.bootstrap(settings, command: "worker", logger: logger)
        var allowed: [Network] = []
        for range in settings.allowedAddresses {
            guard let network = Network(range) else {
                throw ValidationError("HERALD_ALLOWED_ADDRESSES: '\(range)' is not an address range like 10.0.0.0/8")
            }
            allowed.append(network)
        }
        warnIfSecretsInPlaintext(settings, logger: logger)
        // Its statements are planned once a session: each is prepared, and their generic
        // plans are the ones `DeliveryWriteTests` check.
        let pool = try Pool(
            url: settings.databaseURL, size: settings.databasePoolSize, applicationName: "herald-worker", genericPlans: true, logger: logger)
        // Every delivery connects only where the address policy allows.
        let client = Client(configuration: .init(addressPolicy: AddressPolicy(allowed: allowed).check))
        let directory = Directory(
            pool: pool, timeToLive: settings.endpointCacheTTL, notifiedTimeToLive: settings.endpointCacheNotifiedTTL,
            capacity: settings.endpointCacheTenants, keyring: settings.secretKeyring)
        var context = WorkerContext(
            directory: directory,
            records: PostgresRecords(pool: pool, policy: settings.disablePolicy),
            client: client,
            requests: settings.requestSettings,
            topology: settings.topology,
            limits: EventLimits(maxDataBytes: settings.maxDataBytes),
            slots: Slots(
                ceiling: settings.endpointConcurrency, httpTimeout: settings.httpTimeout,
                breaker: CircuitBreaker.Settings(
                    failureRate: Double(settings.breakerFailurePercent) / 100, minimumAttempts: settings.breakerMinimumAttempts,
                    window: settings.breakerWindow, coolDown: settings.breakerCoolDown)),
            operatorTenant: settings.operatorTenant,
            logger: logger)
        context.deliverBeforeStore = settings.deliverBeforeStore
        context.storeLinger = settings.storeLinger
        context.consumerLinger = settings.consumerLinger
        let identity = Heartbeat.Identity.current(version: Herald.version, concurrency: settings.workerConcurrency)
        let replicas = Replicas(
            replica: identity.id, interval: settings.heartbeatInterval, look: Heartbeat.look(settings.heartbeatInterval),
            countsOnSolitude: settings.deliverBeforeStore == .auto)
        context.replicas = replicas
        let worker = WorkerService(
            amqpURL: settings.amqpURL, context: context, concurrency: settings.workerConcurrency, windowBytes: settings.workerWindowBytes,
            maxMessageBytes: settings.maxMessageBytes)
        // Resources first: the group stops its services in reverse order, so they close last.
        // The heartbeat stops after the worker: a draining replica still shows in the console.
        let status = worker.status
        let slots = context.slots
        let replicasGauge = Gauge(label: "herald_worker_replicas")
        // The workers consuming share each endpoint's rate limit and the shards; a worker
        // alone may send first copies before it stores them (`HERALD_DELIVER_BEFORE_STORE`).
        let heartbeat = Heartbeat(
            pool: pool, identity: identity, interval: settings.heartbeatInterval, logger: logger,
            replicas: { live, written, asked in
                let consuming = live.filter(\.consuming).map(\.id)
                slots.setReplicas(consuming.count)
                replicasGauge.record(consuming.count)
                replicas.update(
                    consuming: consuming, live: live.map(\.id), alone: live.filter(\.alone).map(\.id), announced: written.alone, asked: asked)
            }
        ) { [context] in Heartbeats.Beat(inFlight: status.inFlight, consuming: status.consuming, alone: context.countsOnBeingAlone) }
        var services: [any Service] = (exporter.map { [$0] } ?? []) + [
            Closing("postgres pool") { await pool.close() }, Closing("http client") { await client.shutdown() }, heartbeat, worker,
            QueueGauges(census: BrokerCensus(amqpURL: settings.amqpURL, topology: context.topology, logger: logger), logger: logger),
        ]
        // Told of every change to an endpoint, the worker keeps tenants' lists for long.
        if settings.endpointCacheNotifiedTTL > .zero, settings.endpointCacheTTL > .zero {
            // A change a stalled session missed is trusted away no longer than without notifications.
            let lease = min(.seconds(4), settings.endpointCacheTTL)
            services.insert(
                ChangeListener(databaseURL: settings.databaseURL, directory: directory, lease: lease, logger: logger), at: services.count - 2)
        }
        if settings.workerPort > 0 {
            services.append(
                OpsServer.application(
                    host: settings.workerHost, port: settings.workerPort,
                    readiness: { await Readiness.check(pool: pool, broker: { status.consuming }) }, logger: logger))
        }
        let group = ServiceGroup(
            configuration: .process(services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
