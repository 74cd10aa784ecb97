import Foundation
package import Logging
import Management
package import Inbound
import Metrics
import Records
import Delivery
package import Postgres
public import ServiceLifecycle
package import Topology

/// Periodic work of the API process: the dashboard's hourly figures (attempts added up
/// per endpoint and hour, a minute behind), retention (attempts and events older than the
/// configured age, inbound webhooks by status, deleted in batches) and the gauges only the database and broker know
/// (messages waiting per retry rung, endpoints disabled).
public struct Housekeeping: Service, CustomStringConvertible {
    /// What service-lifecycle logs for this service: never the URL, which holds the password.
    public var description: String { "Housekeeping(retention: \(retention))" }

    let pool: Pool
    let amqpURL: String
    let topology: Topology
    let retention: Duration
    /// Days inbound webhooks are kept per status, where their source keeps no age of its own.
    let inboundRetention: [InboundStatus: Int]
    /// How long after an attempt started it is counted: longer than the HTTP timeout, so
    /// no attempt is still on the wire when its time is counted.
    let rollupLag: Duration
    let interval: Duration
    let logger: Logger

    package init(
        pool: Pool, amqpURL: String, topology: Topology, retention: Duration, inboundRetention: [InboundStatus: Int] = [:], rollupLag: Duration,
        interval: Duration = .seconds(15), logger: Logger
    ) {
        self.inboundRetention = inboundRetention
        self.pool = pool
        self.amqpURL = amqpURL
        self.topology = topology
        self.retention = retention
        self.rollupLag = rollupLag
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var lastRetention = ContinuousClock.now - .seconds(3600)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await measure()
            await rollUp()
            if ContinuousClock.now - lastRetention >= .seconds(3600) {
                lastRetention = ContinuousClock.now
                await applyRetention()
            }
            // Shutdown ends the wait at once.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Deletes what is older than the retention age; returns the rows deleted.
    @discardableResult
    public func applyRetention() async -> Int {
        let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds))
        do {
            var deleted = try await PostgresRecords(pool: pool).deleteOlder(than: cutoff, batch: 1000)
            // Portal links and dashboard sessions that expired: nothing can use them any more.
            deleted += try await PortalAccess(pool: pool).deleteExpired()
            deleted += try await ConsoleAccess(pool: pool, operatorToken: nil).deleteExpired()
            deleted += try await InboundStore.deleteExpired(on: pool, defaults: inboundRetention)
            deleted += try await Heartbeats(pool: pool).forgetSilent()
            if deleted > 0 { logger.info("retention deleted old rows", metadata: ["rows": "\(deleted)"]) }
            return deleted
        } catch {
            logger.warning("retention failed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    /// Adds the attempts old enough to the hourly figures.
    public func rollUp() async {
        do {
            try await PostgresRecords(pool: pool).rollUp(lag: rollupLag)
        } catch {
            logger.warning("adding up the hourly figures failed", metadata: ["error": "\(error)"])
        }
    }

    private func measure() async {
        if let rows = try? await pool.query("SELECT count(*) FROM endpoints WHERE NOT enabled AND disabled_at IS NOT NULL"),
            let count = try? rows[0].decode(Int.self, 0)
        {
            Gauge(label: "herald_endpoints_disabled").record(count)
        }
        guard let queues = try? await BrokerCensus(amqpURL: amqpURL, topology: topology, logger: logger).queues() else { return }
        for queue in queues {
            guard case .retry(_, let delay) = queue.role, let messages = queue.messages else { continue }
            Gauge(label: "herald_retry_queue_messages", dimensions: [("rung", delay)]).record(messages)
        }
    }
}
