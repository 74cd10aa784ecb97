import Delivery
import Foundation
import HeraldAMQP
import HeraldEvents
import Management
import Postgres
import Records
import Synchronization
import Testing
import TestSupport
import Topology
import Worker

/// An operator event as the operator's queue received it.
struct Announced: Sendable {
    var type: String
    var tenantID: String?
    var eventID: String?
    var attempt: Int?
    var reason: String?

    init?(_ body: [UInt8]) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let type = object["type"] as? String else { return nil }
        self.type = type
        tenantID = object["tenant_id"] as? String
        eventID = object["event_id"] as? String
        attempt = object["attempt"] as? Int
        reason = object["reason"] as? String
    }
}

@Suite("Operator events (real servers)")
struct OperatorEventTests {
    /// Every cause an operator must know of is published once on `PREFIX.operator` and, as
    /// the operator tenant's events, reaches its endpoint as signed webhooks: a delivery
    /// failing its third attempt and running out of its ladder, the endpoint's circuit
    /// opening and closing, the endpoint auto-disabled and enabled again (through the same
    /// `Actions` the API and the portal use), and a message parked.
    @Test func eachCauseIsPublishedOnce() async throws {
        let outage = Mutex(true)
        let receiver = try await TestHTTPServer.start { _ in outage.withLock { $0 } ? .status(503) : .status(204) }
        let operatorReceiver = try await TestHTTPServer.start()
        let operatorTenant = UUID()
        var options = Pipeline.Options()
        options.ladder = "100ms,100ms,100ms"
        options.disable = DisablePolicy(threshold: 4, window: .zero)
        options.breaker = CircuitBreaker.Settings(failureRate: 0.5, minimumAttempts: 3, window: .seconds(60), coolDown: .milliseconds(300))
        options.operatorTenant = operatorTenant
        try await Pipeline.run(options) { pipeline in
            // A queue of the test's own on the operator exchange, as an operator binds one.
            let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
            let channel = try await connection.openChannel()
            let queue = TestServices.uniqueName("operator")
            try await channel.declareQueue(queue, durable: false, autoDelete: true)
            try await channel.bindQueue(queue, exchange: pipeline.topology.operatorExchange, routingKey: "#")
            func waiting(_ name: String) async throws -> Int {
                Int(try await channel.declareQueue(name, passive: true).messageCount)
            }

            try await pipeline.pool.query("INSERT INTO tenants (id, name) VALUES (\(operatorTenant), 'operators')")
            _ = try await pipeline.endpoint(tenant: operatorTenant, url: operatorReceiver.url + "/ops", types: ["endpoint.*", "delivery.*", "message.*"])
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/in")

            // Four failed attempts: failing after the third, the circuit open after three,
            // the ladder and the endpoint's run of failures ended by the fourth (the probe).
            let failing = try await pipeline.publish("invoice.paid", tenant: tenant)
            try await pipeline.eventually("the delivery is failed and the endpoint disabled") {
                let failed = try await pipeline.deliveries(endpoint: endpoint).first?.status == "failed"
                let enabled = try await pipeline.pool.query("SELECT enabled FROM endpoints WHERE id = \(endpoint)")[0].decode(Bool.self, 0)
                return failed && !enabled
            }
            // Enabled again through the API's own code path; then the receiver recovers and
            // the next delivery, the circuit's probe, closes it.
            let dispatcher = Dispatcher(amqpURL: TestServices.amqpURL, topology: pipeline.topology, operatorTenant: operatorTenant, logger: TestServices.logger)
            let store = Store(pool: pipeline.pool)
            let actions = Actions(store: store, log: PostgresRecords(pool: pipeline.pool), dispatcher: dispatcher)
            _ = try await actions.updateEndpoint(tenant: tenant, id: endpoint, EndpointInput(enabled: true))
            outage.withLock { $0 = false }
            try await pipeline.eventually("a delivery goes through: the probe that closes the circuit") {
                _ = try await pipeline.publish("invoice.paid", tenant: tenant)
                return try await pipeline.deliveries(endpoint: endpoint).contains { $0.status == "delivered" }
            }
            // A message no worker can read is parked.
            try await channel.publish(Message(body: Array("not json".utf8)), exchange: pipeline.topology.eventsExchange, routingKey: "invoice.paid")
            try await pipeline.eventually("the message is parked") { try await waiting(pipeline.topology.parkingQueue) == 1 }

            let expected = [
                "delivery.failing", "delivery.exhausted", "endpoint.circuit_opened", "endpoint.circuit_closed", "endpoint.disabled",
                "endpoint.enabled", "message.parked",
            ]
            try await pipeline.eventually("every cause is announced") { try await waiting(queue) >= expected.count }
            var seen: [Announced] = []
            let consumer = try await channel.consume(queue)
            for try await delivery in consumer {
                if let announced = Announced(delivery.message.body) { seen.append(announced) }
                channel.ack(delivery.deliveryTag)
                if seen.count == expected.count { break }
            }
            #expect(try await waiting(queue) == 0, "nothing announced twice")
            let counts = Dictionary(seen.map { ($0.type, 1) }, uniquingKeysWith: +)
            for type in expected { #expect(counts[type] == 1, "\(type): \(counts)") }
            #expect(Set(counts.keys) == Set(expected), "\(counts)")
            let failingEvent = try #require(seen.first { $0.type == "delivery.failing" })
            #expect(failingEvent.attempt == 3 && failingEvent.eventID == failing.id)
            #expect(failingEvent.tenantID == tenant.uuidString.lowercased() && failingEvent.reason == "HTTP 503")

            // The operator tenant's endpoint got them as signed webhooks.
            let webhooks = try await operatorReceiver.waitForRequests(expected.count)
            let received = Set(webhooks.compactMap { request in
                (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])?["type"] as? String
            })
            #expect(received == Set(expected))
            #expect(webhooks.allSatisfy { $0.header("webhook-signature")?.hasPrefix("v1,") == true })

            await dispatcher.close()
            await connection.close()
        }
        await receiver.stop()
        await operatorReceiver.stop()
    }
}
