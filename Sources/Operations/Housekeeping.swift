import Foundation
package import Logging
import Management
package import Inbound
import Metrics
import Records
import Delivery
package import Postgres
public import ServiceLifecycle
import Topology

/// Periodic work of the API process: the dashboard's hourly figures (attempts added up
/// per endpoint and hour, a minute behind), retention (attempts and events older than the
/// configured age, inbound webhooks by status, deleted in batches) and the gauges only the database and broker know
/// (endpoints disabled, the outbox's backlog).
public struct Housekeeping: Service, CustomStringConvertible {
    /// What service-lifecycle logs for this service: never the URL, which holds the password.
    public var description: String { "Housekeeping(retention: \(retention))" }

    let pool: Pool
    let retention: Duration
    /// Days inbound webhooks are kept per status, where their source keeps no age of its own.
    let inboundRetention: [InboundStatus: Int]
    /// How long after an attempt started it is counted: longer than the HTTP timeout, so
    /// no attempt is still on the wire when its time is counted.
    let rollupLag: Duration
    let interval: Duration
    let logger: Logger

    package init(
        pool: Pool, retention: Duration, inboundRetention: [InboundStatus: Int] = [:], rollupLag: Duration,
        interval: Duration = .seconds(15), logger: Logger
    ) {
        self.inboundRetention = inboundRetention
        self.pool = pool
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
        // Whole days of attempts first: the coming days' partitions made, the expired
        // dropped. Should that fail, the rows are still deleted below.
        do {
            let partitions = try await PostgresRecords(pool: pool).maintainAttemptPartitions(cutoff: cutoff)
            if partitions.made + partitions.dropped > 0 {
                logger.info("attempt partitions maintained", metadata: ["made": "\(partitions.made)", "dropped": "\(partitions.dropped)"])
            }
        } catch {
            logger.warning("attempt partitions not maintained", metadata: ["error": "\(error)"])
        }
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

    /// Disabled endpoints by who disabled them, and the outbox's backlog (when the outbox
    /// is in Herald's database). Queue depths are the worker's to report.
    private func measure() async {
        if let rows = try? await pool.query(
            """
            SELECT count(*) FILTER (WHERE disabled_reason IS DISTINCT FROM 'disabled by the tenant'),
                   count(*) FILTER (WHERE disabled_reason = 'disabled by the tenant')
            FROM endpoints WHERE NOT enabled AND disabled_at IS NOT NULL
            """), let row = rows.first
        {
            if let automatic = try? row.decode(Int.self, 0) { Gauge(label: "herald_endpoints_disabled", dimensions: [("by", "automatic")]).record(automatic) }
            if let tenant = try? row.decode(Int.self, 1) { Gauge(label: "herald_endpoints_disabled", dimensions: [("by", "tenant")]).record(tenant) }
        }
        if let rows = try? await pool.query(
            "SELECT count(*), COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM outbox WHERE sent_at IS NULL AND error IS NULL"),
            let row = rows.first
        {
            if let pending = try? row.decode(Int.self, 0) { Gauge(label: "herald_outbox_pending").record(pending) }
            if let age = try? row.decode(Double.self, 1) { Gauge(label: "herald_outbox_oldest_seconds").record(age) }
        }
    }
}
