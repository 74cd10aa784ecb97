public import Postgres

/// Whether the servers a process depends on answer right now, from the connections the
/// process already has: a probe opens no connection and starts no thread, so it cannot
/// be used to exhaust either.
public enum Readiness {
    /// `broker` reports the process's own broker connection (the worker: consuming; the
    /// API: its publisher connected). The database answers `SELECT 1` on a pooled connection.
    public static func check(pool: Pool, broker: @Sendable () async -> Bool) async -> [String: Bool] {
        async let database = (try? await pool.query("SELECT 1").count == 1) ?? false
        return ["database": await database, "broker": await broker()]
    }
}
