import ArgumentParser
import Events
import Logging
import Postgres
import Producer
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
        let pool = try Pool(url: settings.outboxDatabaseURL ?? settings.databaseURL, size: 2, applicationName: "herald-relay", logger: logger)
        let producer = Producer(
            configuration: .init(
                amqpURL: settings.amqpURL, exchange: Topology(prefix: settings.queuePrefix).eventsExchange,
                limits: EventLimits(maxDataBytes: settings.maxDataBytes), timeout: settings.publishTimeout),
            logger: logger)
        let relay = RelayService(pool: pool, producer: producer, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await producer.close()
        await pool.close()
    }
}
