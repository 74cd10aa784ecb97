import FanOut
import Foundation
import Postgres
import HeraldProducer
import Relay
import Testing
import TestSupport
import Topology

@Suite("Transactional outbox")
struct OutboxTests {
    @Test func twoRelaysPublishEveryCommittedRowOnceAndNothingRolledBack() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url, format: .envelope)
            // The CRM's own change and its events commit together…
            try await pipeline.pool.transaction { tx in
                for n in 0..<200 {
                    try await tx.query(
                        "INSERT INTO outbox (tenant_id, event_id, type, data) VALUES (\(tenant), \("evt_outbox_\(n)"), 'client.created', \(#"{"n":\#(n)}"#)::json)")
                }
                try await tx.query("INSERT INTO outbox (tenant_id, event_id, type, data) VALUES (\(tenant), 'evt_invalid', 'Not A Type', '{}'::json)")
            }
            // …and a rolled-back change leaves no event behind.
            struct Abort: Error {}
            _ = try? await pipeline.pool.transaction { tx in
                for n in 0..<20 {
                    try await tx.query(
                        "INSERT INTO outbox (tenant_id, event_id, type, data) VALUES (\(tenant), \("evt_rolled_back_\(n)"), 'client.created', '{}'::json)")
                }
                throw Abort()
            }
            // One relay prepares its statements (as the API's does), the other sends them as text
            // (as `herald relay` does on a CRM's database).
            let relays = (0..<2).map { n in
                RelayService(
                    pool: pipeline.pool,
                    producer: Producer(configuration: .init(amqpURL: TestServices.amqpURL, exchange: pipeline.topology.eventsExchange), logger: TestServices.logger),
                    batchSize: 25, prepares: n == 0, logger: TestServices.logger)
            }
            let tasks = relays.map { relay in Task { try await relay.run() } }
            try await pipeline.eventually("every committed row is sent") {
                try await pipeline.pool.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND error IS NULL")[0].decode(Int.self, 0) == 0
            }
            try await pipeline.eventually("every event is delivered") {
                try await pipeline.deliveries(endpoint: endpoint).filter { $0.status == "delivered" }.count == 200
            }
            for task in tasks { task.cancel() }
            for task in tasks { _ = await task.result }
            let ids = Set(receiver.requests.compactMap { request in
                (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])?["id"] as? String
            })
            #expect(ids == Set((0..<200).map { "evt_outbox_\($0)" }))
            #expect(try await pipeline.deliveries(endpoint: endpoint).count == 200)
            let refused = try await pipeline.pool.query("SELECT error FROM outbox WHERE event_id = 'evt_invalid'")[0].decode(String?.self, 0)
            #expect(refused?.hasPrefix("type:") == true)
            #expect(try await pipeline.pool.query("SELECT count(*) FROM outbox WHERE event_id LIKE 'evt_rolled_back_%'")[0].decode(Int.self, 0) == 0)
        }
        await receiver.stop()
    }

    @Test func aRelayThatCannotReachTheBrokerLeavesRowsPending() async throws {
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            try await pipeline.pool.query("INSERT INTO outbox (tenant_id, type, data) VALUES (\(tenant), 'client.created', '{}'::json)")
            let relay = RelayService(
                pool: pipeline.pool,
                producer: Producer(configuration: .init(amqpURL: "amqp://guest:guest@127.0.0.1:1/", timeout: .seconds(2)), logger: TestServices.logger),
                logger: TestServices.logger)
            await #expect(throws: PublishError.self) { try await relay.relayBatch() }
            #expect(try await pipeline.pool.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND error IS NULL")[0].decode(Int.self, 0) == 1)
        }
    }
}
