import AMQP
public import Logging
public import Postgres

/// Whether the servers a process depends on answer right now.
public enum Readiness {
    public static func check(pool: Pool, amqpURL: String, logger: Logger) async -> [String: Bool] {
        async let database = (try? await pool.query("SELECT 1").count == 1) ?? false
        async let broker: Bool = {
            guard let connection = try? await Connection.connect(to: amqpURL, logger: logger) else { return false }
            await connection.close()
            return true
        }()
        return ["database": await database, "broker": await broker]
    }
}
