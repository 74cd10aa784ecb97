import Delivery
import Foundation
import Postgres
import Testing
import TestSupport
import Worker

@Suite("Delivery ledger (real database)")
struct LedgerTests {
    /// Two holders of one attempt (a frozen worker and the one that took its messages
    /// over): the later record of a failure must not undo the other's delivery, nor may an
    /// attempt overtaken by a newer one move the delivery.
    @Test func aStaleHolderNeverMovesADeliveryBack() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/in")
            try await pipeline.pool.query(
                "INSERT INTO events (tenant_id, id, type, occurred_at, data) VALUES (\(tenant), 'evt_1', 'a.b', now(), '{}'::json)")
            let delivery = try await pipeline.pool.query(
                "INSERT INTO deliveries (tenant_id, event_id, endpoint_id) VALUES (\(tenant), 'evt_1', \(endpoint)) RETURNING id, request_id")[0]
            let id = try delivery.decode(UUID.self, 0)
            let requestID = try delivery.decode(UUID.self, 1)
            let ledger = pipeline.context.ledger
            func attempt(_ number: Int, _ outcome: Outcome) -> Attempt {
                Attempt(deliveryID: id, endpointID: endpoint, number: number, requestID: requestID, startedAt: Date(), duration: .milliseconds(5), outcome: outcome, excerpt: [])
            }
            #expect(try await ledger.claim(delivery: id, attempt: 1))
            #expect(try await !ledger.claim(delivery: id, attempt: 1))
            let delivered = try await ledger.record(attempt(1, Outcome(verdict: .delivered, statusCode: 200)), next: .delivered, nextAttemptAt: nil)
            #expect(delivered.applied)
            let stale = try await ledger.record(
                attempt(1, Outcome(verdict: .transient, errorClass: "network", errorMessage: "reset")), next: .retrying, nextAttemptAt: Date())
            #expect(!stale.applied)
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.status) == ["delivered"])
            // Both attempts are in the log.
            #expect(try await pipeline.pool.query("SELECT count(*) FROM delivery_attempts")[0].decode(Int.self, 0) == 2)
            // The stale failure did not count against the endpoint.
            #expect(try await pipeline.pool.query("SELECT consecutive_failures FROM endpoints WHERE id = \(endpoint)")[0].decode(Int.self, 0) == 0)

            // An attempt overtaken by a newer one changes nothing either.
            try await pipeline.pool.query("UPDATE deliveries SET status = 'retrying' WHERE id = \(id)")
            #expect(try await ledger.claim(delivery: id, attempt: 2))
            let overtaken = try await ledger.record(attempt(1, Outcome(verdict: .delivered, statusCode: 200)), next: .delivered, nextAttemptAt: nil)
            #expect(!overtaken.applied)
            let current = try await ledger.record(attempt(2, Outcome(verdict: .permanent, statusCode: 404)), next: .failed, nextAttemptAt: nil)
            #expect(current.applied)
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.status) == ["failed"])
        }
    }
}
