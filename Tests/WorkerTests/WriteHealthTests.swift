import Postgres
import Testing
@testable import Worker

/// What counts as the database being unable to take writes, and how long it counts.
@Suite("Write health")
struct WriteHealthTests {
    @Test(arguments: [
        (DatabaseError(.connectionLost), true), (DatabaseError(.connectionFailed), true), (DatabaseError(.poolClosed), true),
        (DatabaseError(.server, sqlState: "57P01"), true), (DatabaseError(.server, sqlState: "08006"), true),
        (DatabaseError(.server, sqlState: "23505"), false), (DatabaseError(.server, sqlState: "40P01"), false),
        (DatabaseError(.decoding), false), (DatabaseError(.encoding), false),
    ])
    func unreachableOrShuttingDownIsUnavailableAndARefusedStatementIsNot(_ error: DatabaseError, _ unavailable: Bool) {
        #expect(WriteHealth.isUnavailable(error) == unavailable)
    }

    @Test func aFailureCountsUntilAWriteGoesThrough() async throws {
        let health = WriteHealth()
        #expect(health.failure == nil)
        await #expect(throws: DatabaseError.self) { try await health.track { throw DatabaseError(.server, sqlState: "23505") } }
        #expect(health.failure == nil, "a statement refused for what it held says nothing of the database")
        await #expect(throws: DatabaseError.self) { try await health.track { throw DatabaseError(.connectionLost) } }
        #expect(health.failure?.description.contains("connectionLost") == true)
        await #expect(throws: DatabaseError.self) { try await health.track { throw DatabaseError(.server, sqlState: "23505") } }
        #expect(health.failure != nil, "still failing: no write went through since")
        #expect(try await health.track { 7 } == 7)
        #expect(health.failure == nil)
    }
}
