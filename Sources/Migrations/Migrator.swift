public import Logging
import Postgres

/// Applies pending migrations, each in its own transaction, recording them in
/// `schema_migrations`.
///
/// A session-level advisory lock serialises replicas that start together: the second
/// waits, then finds nothing left to do.
public struct Migrator: Sendable {
    /// Key of the advisory lock ("herald" in ASCII).
    static let lockKey: Int64 = 0x68_65_72_61_6C_64

    public let databaseURL: String
    public let migrations: [Migration]
    public let logger: Logger

    public init(databaseURL: String, migrations: [Migration], logger: Logger) {
        self.databaseURL = databaseURL
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies what is pending and returns the names applied by this call.
    @discardableResult
    public func run() async throws -> [String] {
        let connection = try await Connection.connect(to: databaseURL, applicationName: "herald-migrate", logger: logger)
        do {
            let applied = try await locked(connection)
            await connection.close()
            return applied
        } catch {
            await connection.close()
            throw error
        }
    }

    private func locked(_ connection: Connection) async throws -> [String] {
        try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))")
        do {
            let applied = try await applyPending(connection)
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
            return applied
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
            throw error
        }
    }

    private func applyPending(_ connection: Connection) async throws -> [String] {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """)
        let rows = try await connection.query("SELECT version, name, checksum FROM schema_migrations")
        let recorded = try rows.map { row in
            AppliedMigration(
                version: try row.decode(Int.self, 0), name: try row.decode(String.self, 1),
                checksum: try row.decode(String.self, 2))
        }
        let plan = try MigrationPlan(files: migrations, applied: recorded)
        for unknown in plan.unknownApplied {
            logger.warning("database has a migration this build does not know", metadata: ["migration": "\(unknown.name)"])
        }
        for migration in plan.pending {
            try await connection.transaction { connection in
                try await connection.execute(script: migration.sql)
                try await connection.query(
                    """
                    INSERT INTO schema_migrations (version, name, checksum)
                    VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                    """)
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
        }
        return plan.pending.map(\.name)
    }
}
