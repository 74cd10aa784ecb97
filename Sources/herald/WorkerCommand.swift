import ArgumentParser
import Delivery
import Events
import FanOut
import HTTPClient
import Logging
import Postgres
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
        let logger = Logger(label: "herald.worker")
        let pool = try Pool(url: settings.databaseURL, size: settings.databasePoolSize, applicationName: "herald-worker", logger: logger)
        let client = Client()
        let context = WorkerContext(
            directory: Directory(pool: pool, timeToLive: settings.endpointCacheTTL),
            store: FanOutStore(pool: pool),
            recorder: Recorder(pool: pool, policy: DisablePolicy(threshold: settings.disableThreshold, window: settings.disableWindow)),
            client: client,
            requests: RequestSettings(headerPrefix: settings.headerPrefix, timeout: settings.httpTimeout, connectTimeout: settings.connectTimeout),
            topology: Topology(prefix: settings.queuePrefix, ladder: settings.retryLadder),
            limits: EventLimits(maxDataBytes: settings.maxDataBytes),
            logger: logger)
        let worker = WorkerService(amqpURL: settings.amqpURL, context: context, concurrency: settings.workerConcurrency)
        let group = ServiceGroup(
            configuration: .init(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await client.shutdown()
        await pool.close()
    }
}
