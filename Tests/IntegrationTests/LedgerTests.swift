import Delivery
import HeraldEvents
import FanOut
import Foundation
import Postgres
import Records
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
            let ledger = pipeline.context.records
            func attempt(_ number: Int, _ outcome: Outcome) -> Attempt {
                Attempt(deliveryID: id, endpointID: endpoint, number: number, requestID: requestID, startedAt: Date(), duration: .milliseconds(5), outcome: outcome, excerpt: [])
            }
            func claim(_ number: Int) async throws -> Bool {
                try await ledger.claim([AttemptClaim(delivery: id, attempt: number)])[0]
            }
            func record(_ attempt: Attempt, next: AttemptRecord.Next, nextAttemptAt: Date?) async throws -> Recorded {
                try await ledger.record([AttemptRecord(attempt, next: next, nextAttemptAt: nextAttemptAt)])[0]
            }
            #expect(try await claim(1))
            #expect(try await !claim(1))
            let delivered = try await record(attempt(1, Outcome(verdict: .delivered, statusCode: 200)), next: .delivered, nextAttemptAt: nil)
            #expect(delivered.applied)
            let stale = try await record(
                attempt(1, Outcome(verdict: .transient, errorClass: .network, errorMessage: "reset")), next: .retrying, nextAttemptAt: Date())
            #expect(!stale.applied)
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.status) == ["delivered"])
            // Both attempts are in the log.
            #expect(try await pipeline.pool.query("SELECT count(*) FROM delivery_attempts")[0].decode(Int.self, 0) == 2)
            // The stale failure did not count against the endpoint.
            #expect(try await pipeline.pool.query("SELECT consecutive_failures FROM endpoints WHERE id = \(endpoint)")[0].decode(Int.self, 0) == 0)

            // An attempt overtaken by a newer one changes nothing either.
            try await pipeline.pool.query("UPDATE deliveries SET status = 'retrying' WHERE id = \(id)")
            #expect(try await claim(2))
            let overtaken = try await record(attempt(1, Outcome(verdict: .delivered, statusCode: 200)), next: .delivered, nextAttemptAt: nil)
            #expect(!overtaken.applied)
            let current = try await record(attempt(2, Outcome(verdict: .permanent, statusCode: 404)), next: .failed, nextAttemptAt: nil)
            #expect(current.applied)
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.status) == ["failed"])
        }
    }

    /// A batch records like separate calls: each attempt logged, each delivery moved once
    /// (a delivery named twice is settled by its first entry), endpoints counted.
    @Test func aBatchRecordsLikeSeparateCalls() async throws {
        var options = Pipeline.Options(startWorker: false)
        options.disable = DisablePolicy(threshold: 2, window: .zero)
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let good = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/good")
            let bad = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/bad")
            var targets: [Arrival] = []
            for n in 0..<3 {
                let event = Event(id: "evt_\(n)", type: "a.b", tenantID: tenant, data: Array("{}".utf8))
                targets.append(Arrival(event: event, targets: [Arrival.Target(endpoint: good, claim: true), Arrival.Target(endpoint: bad, claim: true)]))
            }
            let stored = try await pipeline.context.records.store(targets)
            let states = stored.flatMap(\.deliveries)
            #expect(states.count == 6)
            func attempt(_ state: DeliveryState, _ outcome: Outcome) -> AttemptRecord {
                AttemptRecord(
                    Attempt(
                        deliveryID: state.id, endpointID: state.endpointID, number: 1, requestID: state.requestID, startedAt: Date(),
                        duration: .milliseconds(3), outcome: outcome, excerpt: Array("ok".utf8)),
                    next: outcome.verdict == .delivered ? .delivered : .failed, nextAttemptAt: nil)
            }
            let delivered = Outcome(verdict: .delivered, statusCode: 200)
            let refused = Outcome(verdict: .permanent, statusCode: 404)
            var entries = states.map { attempt($0, $0.endpointID == good ? delivered : refused) }
            // A second holder's late failure of a delivered one, in the same batch.
            let first = states.first { $0.endpointID == good }!
            entries.append(attempt(first, refused))
            let recorded = try await pipeline.context.records.record(entries)
            #expect(recorded.count == 7)
            #expect(recorded.prefix(6).allSatisfy { $0.applied })
            #expect(!recorded[6].applied)
            #expect(recorded.filter(\.disabledEndpoint).count == 1)
            #expect(try await pipeline.deliveries(endpoint: good).map(\.status) == ["delivered", "delivered", "delivered"])
            #expect(try await pipeline.deliveries(endpoint: bad).map(\.status) == ["failed", "failed", "failed"])
            #expect(try await pipeline.pool.query("SELECT count(*) FROM delivery_attempts")[0].decode(Int.self, 0) == 7)
            let endpoint = try await pipeline.pool.query("SELECT consecutive_failures, enabled FROM endpoints WHERE id = \(bad)")[0]
            #expect(try endpoint.decode(Int.self, 0) == 3)
            #expect(try !endpoint.decode(Bool.self, 1))
        }
    }

    /// Storing is idempotent per event and the insert claims attempt 1 only for targets
    /// that asked for it; an event stored before keeps its first content.
    @Test func storingABatchCreatesEachDeliveryOnce() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let a = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/a")
            let b = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/b")
            let c = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/c")
            let store = pipeline.context.records
            let original = Event(id: "evt_1", type: "a.b", tenantID: tenant, data: Array(#"{"v":1}"#.utf8))
            let targets = [Arrival.Target(endpoint: a, claim: true), Arrival.Target(endpoint: b), Arrival.Target(endpoint: c, skip: true, claim: true)]
            let first = try await store.store([Arrival(event: original, targets: targets)])[0]
            #expect(first.deliveries.count == 3)
            #expect(first.claimed == Set(first.deliveries.filter { $0.endpointID == a }.map(\.id)))
            #expect(first.deliveries.first { $0.endpointID == a }?.attempts == 1)
            #expect(first.deliveries.first { $0.endpointID == b }?.attempts == 0)
            #expect(first.deliveries.first { $0.endpointID == c }?.status == .skipped)

            // The same event again, twice in one batch with other content, beside a new one.
            var changed = original
            changed.data = Array(#"{"v":2}"#.utf8)
            let other = Event(id: "evt_2", type: "a.b", tenantID: tenant, data: Array("{}".utf8))
            let again = try await store.store([
                Arrival(event: changed, targets: targets), Arrival(event: other, targets: [Arrival.Target(endpoint: a, claim: true)]),
                Arrival(event: changed, targets: targets),
            ])
            #expect(again.count == 3)
            #expect(again[0].event.data == original.data)
            #expect(again[2].event.data == original.data)
            #expect(Set(again[0].deliveries.map(\.id)) == Set(first.deliveries.map(\.id)))
            #expect(again[0].claimed.isEmpty && again[2].claimed.isEmpty)
            #expect(again[1].claimed.count == 1 && again[1].deliveries.count == 1)
            #expect(try await pipeline.pool.query("SELECT count(*) FROM deliveries")[0].decode(Int.self, 0) == 4)
        }
    }

    /// Of two claims of one attempt in a batch, exactly one succeeds.
    @Test func aBatchOfClaimsGrantsEachAttemptOnce() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/in")
            let event = Event(id: "evt_1", type: "a.b", tenantID: tenant, data: Array("{}".utf8))
            let other = Event(id: "evt_2", type: "a.b", tenantID: tenant, data: Array("{}".utf8))
            let stored = try await pipeline.context.records.store([
                Arrival(event: event, targets: [Arrival.Target(endpoint: endpoint)]), Arrival(event: other, targets: [Arrival.Target(endpoint: endpoint)]),
            ])
            let x = stored[0].deliveries[0].id
            let y = stored[1].deliveries[0].id
            let granted = try await pipeline.context.records.claim([
                AttemptClaim(delivery: x, attempt: 1), AttemptClaim(delivery: x, attempt: 1), AttemptClaim(delivery: y, attempt: 2),
            ])
            #expect(granted == [true, false, true])
            #expect(try await pipeline.context.records.claim([AttemptClaim(delivery: y, attempt: 2)]) == [false])
        }
    }
}
