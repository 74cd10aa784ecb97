import ArgumentParser
import HeraldEvents
import Logging
import Operations
import Postgres
import HeraldProducer
import Relay
import ServiceLifecycle
import Settings
import Topology
import UnixSignals

struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Publish the transactional outbox with confirms; several relays may run.",
        discussion: "Reads the outbox table of HERALD_OUTBOX_DATABASE_URL (default: HERALD_DATABASE_URL).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let settings = try options.settings()
        let logger = Logger(label: "herald.relay")
        let exporter = TraceSetup.bootstrap(settings, command: "relay", logger: logger)
        let pool = try Pool(url: settings.outboxDatabaseURL ?? settings.databaseURL, size: 2, applicationName: "herald-relay", logger: logger)
        let producer = Producer(
            configuration: .init(
                amqpURL: settings.amqpURL, exchange: Topology(prefix: settings.queuePrefix).eventsExchange,
                limits: EventLimits(maxDataBytes: settings.maxDataBytes), timeout: settings.publishTimeout),
            logger: logger)
        let relay = RelayService(pool: pool, producer: producer, logger: logger)
        // Resources first: the group stops its services in reverse order, so they close last.
        let services: [any Service] = (exporter.map { [$0] } ?? []) + [Closing("postgres pool") { await pool.close() }, Closing("producer") { await producer.close() }, relay]
        let group = ServiceGroup(configuration: .process(services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
