import FanOut
import Foundation
import HeraldSupport
import Migrations
import Postgres
import Synchronization
import Testing
import TestSupport

/// Migration 0021's triggers and the worker's `ChangeListener` against the real server:
/// a change to what a worker's endpoint list shows reaches the worker at once, and only such
/// a change is announced.
@Suite("Endpoint changes notified to workers (real PostgreSQL)")
struct DirectoryNotificationTests {
    static func withMigratedDatabase<T>(_ body: (String, Pool) async throws -> T) async throws -> T {
        try await withTestDatabase { url in
            try await Migrator(
                databaseURL: url, migrations: try Migration.load(directory: TestServices.repositoryRoot.appendingPathComponent("migrations").path),
                logger: TestServices.logger
            ).run()
            let pool = try Pool(url: url, size: 2, logger: TestServices.logger)
            do {
                let result = try await body(url, pool)
                await pool.close()
                return result
            } catch {
                await pool.close()
                throw error
            }
        }
    }

    static func addTenant(_ pool: Pool) async throws -> (tenant: UUID, endpoint: UUID) {
        let (tenant, endpoint) = (UUID(), UUID())
        try await pool.query("INSERT INTO tenants (id, name) VALUES (\(tenant), 'Studio')")
        try await pool.query(
            """
            INSERT INTO endpoints (id, tenant_id, url, event_types, secret, enabled, dpa_confirmed_at)
            VALUES (\(endpoint), \(tenant), 'http://127.0.0.1:9/a', \(["*"]), 'whsec', true, now())
            """)
        return (tenant, endpoint)
    }

    /// The payloads on `herald_directory` before a marker notified now: notifications
    /// arrive in commit order, so everything the statements before announced is in.
    static func drain(_ session: Connection, _ pool: Pool) async throws -> [String] {
        let marker = "marker \(UUID())"
        try await pool.query("SELECT pg_notify(\(ChangeListener.Feed.directory.channel), \(marker))")
        return try await within(.seconds(10)) {
            var payloads: [String] = []
            while true {
                for notification in try await session.notifications(waitingAtMost: .milliseconds(100))
                where notification.channel == ChangeListener.Feed.directory.channel {
                    if notification.payload == marker { return payloads }
                    payloads.append(notification.payload)
                }
            }
        } ?? ["(no marker within 10 s)"]
    }

    @Test func onlyChangesAWorkerSeesAreAnnounced() async throws {
        try await Self.withMigratedDatabase { url, pool in
            let session = try await Connection.connect(to: url, logger: TestServices.logger)
            try await session.execute(script: "LISTEN \(ChangeListener.Feed.directory.channel)")
            let (tenant, endpoint) = try await Self.addTenant(pool)
            let (other, _) = try await Self.addTenant(pool)
            let text = { (id: UUID) in id.uuidString.lowercased() }
            #expect(try await Self.drain(session, pool) == [text(tenant), text(other)])

            // Counters a delivery moves and the description: no word.
            try await pool.query("UPDATE endpoints SET consecutive_failures = 3, first_failure_at = now(), description = 'x' WHERE id = \(endpoint)")
            try await pool.query("UPDATE endpoints SET url = 'http://127.0.0.1:9/b' WHERE id = \(endpoint)")
            #expect(try await Self.drain(session, pool) == [text(tenant)])
            // Each column the worker's read takes (Directory.read), alone.
            let changes: [Query] = [
                "UPDATE endpoints SET event_types = '{client.created}' WHERE id = \(endpoint)",
                "UPDATE endpoints SET filters = '{\"workspace\": [\"w1\"]}' WHERE id = \(endpoint)",
                "UPDATE endpoints SET custom_headers = '{\"X-Studio\": \"1\"}' WHERE id = \(endpoint)",
                "UPDATE endpoints SET payload_format = 'envelope' WHERE id = \(endpoint)",
                "UPDATE endpoints SET secret = 'whsec2' WHERE id = \(endpoint)",
                "UPDATE endpoints SET previous_secret = 'whsec' WHERE id = \(endpoint)",
                "UPDATE endpoints SET previous_secret_expires_at = now() + interval '1 day' WHERE id = \(endpoint)",
                "UPDATE endpoints SET enabled = false WHERE id = \(endpoint)",
                "UPDATE endpoints SET disabled_at = now() WHERE id = \(endpoint)",
                "UPDATE endpoints SET signature = '{\"profile\": \"standard\"}' WHERE id = \(endpoint)",
                "UPDATE endpoints SET payload_fields = '{\"id\": \"event_id\"}' WHERE id = \(endpoint)",
                "UPDATE endpoints SET payload_filter = '{\"data.n\": 1}' WHERE id = \(endpoint)",
                "UPDATE endpoints SET circuit_opened_at = now() WHERE id = \(endpoint)",
                "UPDATE endpoints SET rate_limit = 5 WHERE id = \(endpoint)",
                "UPDATE endpoints SET ordered = true WHERE id = \(endpoint)",
                "UPDATE endpoints SET id = \(UUID()) WHERE tenant_id = \(tenant)",
            ]
            for (index, change) in changes.enumerated() {
                try await pool.query(change)
                #expect(try await Self.drain(session, pool) == [text(tenant)], "change \(index)")
            }
            // Moved to another tenant: both lists changed. One word per tenant and transaction.
            try await pool.query("UPDATE endpoints SET tenant_id = \(other) WHERE tenant_id = \(tenant)")
            #expect(Set(try await Self.drain(session, pool)) == [text(tenant), text(other)])
            try await pool.withConnection { connection in
                try await connection.transaction { tx in
                    try await tx.query("UPDATE endpoints SET url = 'http://127.0.0.1:9/c' WHERE tenant_id = \(other)")
                    try await tx.query("UPDATE endpoints SET rate_limit = 5 WHERE tenant_id = \(other)")
                }
            }
            #expect(try await Self.drain(session, pool) == [text(other)])
            // Rolled back: nothing happened, nothing is said.
            try? await pool.withConnection { connection in
                try await connection.transaction { tx in
                    try await tx.query("UPDATE endpoints SET url = 'http://127.0.0.1:9/d' WHERE tenant_id = \(other)")
                    try await tx.query("SELECT 1/0")
                }
            }
            #expect(try await Self.drain(session, pool) == [])
            try await pool.query("DELETE FROM endpoints WHERE tenant_id = \(other) AND url = 'http://127.0.0.1:9/c'")
            #expect(try await Self.drain(session, pool) == [text(other)])
            // A tenant's id changed: the old one is no tenant now.
            let renamed = UUID()
            try await pool.query("UPDATE tenants SET id = \(renamed) WHERE id = \(tenant)")
            #expect(try await Self.drain(session, pool) == [text(tenant)])
            try await pool.query("UPDATE tenants SET name = 'Studio B' WHERE id = \(renamed)")
            try await pool.query("DELETE FROM tenants WHERE id = \(renamed)")
            #expect(try await Self.drain(session, pool) == [text(renamed)])
            try await pool.query("TRUNCATE endpoints CASCADE")
            #expect(try await Self.drain(session, pool) == ["*"])
            await session.close()
        }
    }

    /// A worker's directory that keeps entries for an hour either way: only the notification
    /// can show it the new URL. Then the listener's session is ended by the server; the
    /// directory stops trusting, drops what it held, and trusts again once a new session's
    /// probe returns.
    @Test func aWorkerSeesAChangeAtOnceAndDistrustsALostSession() async throws {
        try await Self.withMigratedDatabase { url, pool in
            let (tenant, endpoint) = try await Self.addTenant(pool)
            let directory = Directory(pool: pool, timeToLive: .seconds(3600), notifiedTimeToLive: .seconds(3600))
            let listener = ChangeListener(
                databaseURL: url, directory: directory, lease: .milliseconds(200), retryDelay: .seconds(2), logger: TestServices.logger)
            let running = Task { try await listener.run() }
            defer { running.cancel() }
            let trusted = try await within(.seconds(10)) {
                while !directory.trustsNotifications { try await Task.sleep(for: .milliseconds(10)) }
                return true
            }
            #expect(trusted == true)
            #expect(try await directory.endpoints(tenant: tenant)?.map(\.url) == ["http://127.0.0.1:9/a"])
            try await pool.query("UPDATE endpoints SET url = 'http://127.0.0.1:9/b' WHERE id = \(endpoint)")
            let seen = try await within(.seconds(10)) {
                while try await directory.endpoints(tenant: tenant)?.map(\.url) != ["http://127.0.0.1:9/b"] {
                    try await Task.sleep(for: .milliseconds(10))
                }
                return true
            }
            #expect(seen == true)

            let terminated = try await pool.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'herald-directory' AND datname = current_database()")
            #expect(terminated.count == 1)
            let dropped = try await within(.seconds(10)) {
                while directory.trustsNotifications || directory.cachedTenants > 0 { try await Task.sleep(for: .milliseconds(5)) }
                return true
            }
            #expect(dropped == true)
            // The listener waits its retry delay (2 s: the window above) before a new session.
            let back = try await within(.seconds(20)) {
                while !directory.trustsNotifications { try await Task.sleep(for: .milliseconds(10)) }
                return true
            }
            #expect(back == true)
            running.cancel()
            _ = await running.result
        }
    }

    /// What a listener told its cache.
    final class Told: NotifiedCache {
        let counts = Mutex((trusted: 0, distrusted: 0))
        func notified(_ payload: String) {}
        func trustNotifications(until: ContinuousClock.Instant) { counts.withLock { $0.trusted += 1 } }
        func distrustNotifications() { counts.withLock { $0.distrusted += 1 } }
    }

    /// A listener whose triggers are missing or disabled hears some changes, not all: it never
    /// vouches for them (each session fails at its first probe) until the triggers fire again.
    @Test func withoutItsTriggersAListenerIsNeverTrusted() async throws {
        try await Self.withMigratedDatabase { url, pool in
            try await pool.query("ALTER TABLE endpoints DISABLE TRIGGER endpoints_directory_changed")
            let told = Told()
            let listener = ChangeListener(
                databaseURL: url, feed: .directory, cache: told, lease: .seconds(4), retryDelay: .milliseconds(50), logger: TestServices.logger)
            let running = Task { try await listener.run() }
            defer { running.cancel() }
            let refused = try await within(.seconds(20)) {
                while told.counts.withLock({ $0.distrusted }) < 3 { try await Task.sleep(for: .milliseconds(10)) }
                return true
            }
            #expect(refused == true)
            #expect(told.counts.withLock { $0.trusted } == 0)
            // A trigger enabled for replicas only does not fire either.
            try await pool.query("ALTER TABLE endpoints ENABLE REPLICA TRIGGER endpoints_directory_changed")
            let before = told.counts.withLock { $0.distrusted }
            let stillRefused = try await within(.seconds(20)) {
                while told.counts.withLock({ $0.distrusted }) < before + 3 { try await Task.sleep(for: .milliseconds(10)) }
                return true
            }
            #expect(stillRefused == true)
            #expect(told.counts.withLock { $0.trusted } == 0)
            try await pool.query("ALTER TABLE endpoints ENABLE TRIGGER endpoints_directory_changed")
            let trusted = try await within(.seconds(20)) {
                while told.counts.withLock({ $0.trusted }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
                return true
            }
            #expect(trusted == true)
            running.cancel()
            _ = await running.result
        }
    }
}

@Suite("A worker's directory reads PostgreSQL (real server)")
struct DirectoryReadIntegrationTests {
    /// Tenants asked at once are read in few statements; each gets its own endpoints, a
    /// tenant without endpoints an empty list, an unknown one nil.
    @Test func tenantsAskedTogetherGetTheirOwnEndpoints() async throws {
        try await DirectoryNotificationTests.withMigratedDatabase { _, pool in
            var expected: [UUID: Set<UUID>] = [:]
            for n in 0..<40 {
                let (tenant, endpoint) = try await DirectoryNotificationTests.addTenant(pool)
                expected[tenant] = [endpoint]
                if n % 4 == 0 {
                    try await pool.query("DELETE FROM endpoints WHERE tenant_id = \(tenant)")
                    expected[tenant] = []
                } else if n % 4 == 1 {
                    let second = UUID()
                    try await pool.query(
                        "INSERT INTO endpoints (id, tenant_id, url, event_types, secret) VALUES (\(second), \(tenant), 'http://127.0.0.1:9/z', \(["*"]), 'whsec')")
                    expected[tenant]?.insert(second)
                }
            }
            let unknown = UUID()
            let directory = Directory(pool: pool)
            let answers = try await withThrowingTaskGroup(of: (UUID, Set<UUID>?).self) { group in
                for tenant in Array(expected.keys) + [unknown] {
                    group.addTask { (tenant, try await directory.endpoints(tenant: tenant).map { Set($0.map(\.id)) }) }
                }
                var answers: [UUID: Set<UUID>?] = [:]
                for try await (tenant, endpoints) in group { answers[tenant] = endpoints }
                return answers
            }
            #expect(answers.count == 41)
            for (tenant, endpoints) in expected { #expect(answers[tenant] == .some(endpoints)) }
            #expect(answers[unknown] == .some(nil))
        }
    }
}
