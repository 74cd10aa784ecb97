import Postgres
import Synchronization

/// Whether the worker's last write reached the database, and if not, why.
///
/// A delivery that waited for its endpoint's slot was claimed by the statement that
/// stored it, so nothing reaches the database between its wait and its request. Had it
/// asked (as a claim statement did), a restart or an outage would have stopped it there;
/// it asks this instead: while writes fail it sends nothing it could not record, and its
/// message returns to be sent once.
final class WriteHealth: Sendable {
    private let state = Mutex<WritesFailing?>(nil)

    /// The failure of the last write, while the database is unreachable or refusing
    /// sessions; nil once a write went through (or failed for what it held).
    var failure: WritesFailing? { state.withLock { $0 } }

    /// Runs `write`, noting whether it reached the database.
    func track<T>(_ write: () async throws -> T) async throws -> T {
        do {
            let result = try await write()
            state.withLock { $0 = nil }
            return result
        } catch let error as DatabaseError where Self.isUnavailable(error) {
            state.withLock { $0 = WritesFailing(reason: error.description) }
            throw error
        }
    }

    /// The database cannot take writes now (unreachable, restarting, shutting down), as
    /// opposed to a statement that failed for what it held.
    static func isUnavailable(_ error: DatabaseError) -> Bool {
        if [.connectionFailed, .connectionLost, .poolClosed].contains(error.code) { return true }
        // Class 08: connection exception; 57: operator intervention (shutdown, restart).
        return error.code == .server && (error.sqlState?.hasPrefix("08") == true || error.sqlState?.hasPrefix("57") == true)
    }
}

/// A delivery was not sent because the database is failing writes; its message returns.
struct WritesFailing: Error, CustomStringConvertible {
    let reason: String
    var description: String { "not sent while the database fails writes (the last: \(reason)); the message returns" }
}
