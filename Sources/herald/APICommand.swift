import API
import ArgumentParser
import FanOut
import HeraldEvents
import Hummingbird
import Inbound
import Logging
import Management
import Operations
import Policy
import Records
import Relay
import Dashboard
import Postgres
import HeraldProducer
import ServiceLifecycle
import Settings
import Topology
import UnixSignals

struct APICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Serve the management API (/v1), health, readiness and metrics.",
        discussion: "Also receives inbound webhooks (/in/{token}), relays the outbox, runs retention and the queue-depth gauges. Stops gracefully on SIGTERM or SIGINT.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let settings = try options.settings()
        Telemetry.bootstrap()
        let logger = Logger(label: "herald.api")
        let exporter = TraceSetup.bootstrap(settings, command: "api", logger: logger)
        let pool = try Pool(url: settings.databaseURL, size: settings.databasePoolSize, applicationName: "herald-api", logger: logger)
        // The delivery log and the charts from a replica, when there is one.
        let readPool = try settings.databaseReadURL.map {
            try Pool(url: $0, size: settings.databasePoolSize, applicationName: "herald-api-read", logger: logger)
        }
        let log = PostgresRecords(pool: pool, readPool: readPool)
        let topology = settings.topology
        let dispatcher = Dispatcher(
            amqpURL: settings.amqpURL, topology: topology, timeout: settings.publishTimeout, operatorTenant: settings.operatorTenant, logger: logger)
        let producer = Producer(
            configuration: .init(
                amqpURL: settings.amqpURL, exchange: topology.eventsExchange, limits: EventLimits(maxDataBytes: settings.maxDataBytes),
                timeout: settings.publishTimeout),
            logger: logger)
        // Inbound webhooks' events go through this database's outbox; this relay publishes
        // them the moment they are stored (and, with any other relay, what a CRM writes there).
        let bell = RelayBell()
        let relay = RelayService(pool: pool, producer: producer, bell: bell, prepares: true, logger: logger)
        let parking = ParkingLot(amqpURL: settings.amqpURL, topology: topology, maxMessageBytes: settings.maxMessageBytes, logger: logger)
        let urlPolicy = URLPolicy(
            allowHTTP: settings.allowHTTP, blockedDomains: settings.blockedDomains, allowedHosts: settings.allowedHosts,
            allowedPorts: settings.allowedPorts)
        // Sources are kept while PostgreSQL tells of their changes (as workers' endpoint lists
        // are; the same switch turns it off).
        let notified = settings.endpointCacheNotifiedTTL > .zero && settings.endpointCacheTTL > .zero
        let inboundSources = notified ? SourceCache(lifetime: settings.endpointCacheNotifiedTTL) : nil
        let api = API(
            configuration: .init(
                operatorToken: settings.operatorToken,
                urlPolicy: urlPolicy,
                rotationGrace: settings.rotationGrace,
                quotas: .init(
                    requestsPerSecond: settings.apiRateLimit, eventsPerSecond: settings.publishRateLimit,
                    endpointsPerTenant: settings.maxEndpointsPerTenant),
                secretKeyring: settings.secretKeyring, headerPrefix: settings.headerPrefix, portalLinkTTL: settings.portalLinkTTL,
                inbound: .init(
                    bodyTimeout: settings.inboundBodyTimeout, rejectionsKeptPerSecond: settings.inboundRejectionsKept,
                    ownListener: settings.inboundPort != 0)),
            pool: pool, readPool: readPool, dispatcher: dispatcher, parking: parking,
            producer: producer, publicURL: settings.publicURL, inboundSources: inboundSources,
            readiness: { await Readiness.check(pool: pool, broker: { await dispatcher.isConnected }) },
            metrics: { Telemetry.render() }, onInboundEvent: { bell.ring() })
        warnIfSecretsInPlaintext(settings, logger: logger)
        if settings.operatorToken == nil {
            logger.warning("HERALD_OPERATOR_TOKEN is not set: tenants and keys cannot be created through the API")
        }
        let limits = API.ListenerLimits(idleTimeout: settings.apiIdleTimeout, maxConnections: settings.apiMaxConnections)
        let router = api.router()
        try Portal(
            configuration: .init(
                sessionTTL: settings.portalSessionTTL, frameAncestors: settings.portalFrameAncestors, secureCookies: settings.secureCookies,
                urlPolicy: urlPolicy,
                rotationGrace: settings.rotationGrace, endpointsPerTenant: settings.maxEndpointsPerTenant,
                request: settings.requestSettings, ladder: settings.retryLadder, disable: settings.disablePolicy),
            store: Store(pool: pool, keyring: settings.secretKeyring, headerPrefix: settings.headerPrefix), log: log, access: PortalAccess(pool: pool),
            dispatcher: dispatcher, inbound: api.inbound, onInboundEvent: { bell.ring() }
        ).register(on: router)
        try Console(
            configuration: .init(sessionTTL: settings.portalSessionTTL, secureCookies: settings.secureCookies, portalLinkTTL: settings.portalLinkTTL),
            access: ConsoleAccess(pool: pool, operatorToken: settings.operatorToken), portalAccess: PortalAccess(pool: pool),
            store: Store(pool: pool, keyring: settings.secretKeyring, headerPrefix: settings.headerPrefix), log: log,
            census: BrokerCensus(amqpURL: settings.amqpURL, topology: topology, logger: logger), parking: parking, heartbeats: Heartbeats(pool: pool)
        ).register(on: router)
        let app = Application(
            router: router, server: API.server(limits),
            configuration: API.listener(host: settings.apiHost, port: settings.apiPort, limits: limits), logger: logger)
        let housekeeping = Housekeeping(pool: pool, retention: settings.retention,
            inboundRetention: settings.inboundRetention, rollupLag: settings.httpTimeout + .seconds(60), logger: logger)
        // Senders on a listener of their own: only /in/{token} and /healthz there.
        var listeners: [any Service] = [app]
        if settings.inboundPort != 0 {
            listeners.append(
                Application(
                    router: api.inboundRouter(), server: API.server(limits),
                    configuration: API.listener(host: settings.inboundHost, port: settings.inboundPort, limits: limits), logger: logger))
        }
        let link = BrokerLink(dispatcher: dispatcher)
        let group = ServiceGroup(
            configuration: .process(
                // Resources first: the group stops its services in reverse order, so they close last.
                (exporter.map { [$0] } ?? []) + [
                    Closing("postgres pool") { await pool.close() }, Closing("read pool") { await readPool?.close() }, Closing("producer") { await producer.close() },
                    Closing("dispatcher") { await dispatcher.close() }, link, relay,
                ] + (inboundSources.map {
                    [ChangeListener(
                        databaseURL: settings.databaseURL, feed: .inboundSources, cache: $0, lease: min(.seconds(4), settings.endpointCacheTTL),
                        logger: logger)]
                } ?? []) + listeners + [housekeeping],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
