import AMQP
import Cryptography
import Events
import Foundation
import Postgres
import Testing
import TestSupport

/// Regressions of what an attack on the running system broke (the hardening issue): each
/// failed before its fix.
@Suite("Hardening (real servers)")
struct HardeningTests {
    /// Item 1: the base64 of `9223372036854775807:<uuid>` trapped in the timestamp writer
    /// and took the whole API process down.
    @Test func aForgedCursorIsABadRequestAndTheAPIStaysUp() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let id = UUID().uuidString.lowercased()
            for micros in ["9223372036854775807", "-9223372036854775808", "253402300800000000", "-62135596801000000"] {
                let token = Base64.encode(Array("\(micros):\(id)".utf8))
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
                let answer = try await api.call("GET", "/v1/deliveries?cursor=\(token)", token: tenant.key)
                #expect(answer.status == 400, "cursor \(micros) answered \(answer.status)")
                #expect(answer.string("field") == "cursor")
            }
            // The first page for an empty cursor, as the schema allows.
            #expect(try await api.call("GET", "/v1/deliveries?cursor=", token: tenant.key).status == 200)
            #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key).status == 200)
        }
    }

    /// Item 4: dates a lenient parser rolled over, and instants before year 1, were
    /// accepted (or reached PostgreSQL as year 0); NUL bytes and `null` reached the
    /// database. Each is refused naming its field, and nothing is created.
    @Test func badInputIsRefusedNamingTheFieldBeforeAnythingIsAccepted() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let cases: [(String, String, Any, String)] = [
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "occurred_at": "2026-02-30T00:00:00Z"], "occurred_at"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "occurred_at": "2026-05-12T12:99:00Z"], "occurred_at"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "occurred_at": "0001-01-01T00:00:00+01:00"], "occurred_at"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "id": String(repeating: "\u{1F4F7}", count: 100)], "id"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "attributes": ["w": "a\u{0}b"]], "attributes.w"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "id": NSNull()], "id"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "description": "a\u{0}b"], "description"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["a\u{0}.b"]], "event_types"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "description": NSNull()], "description"),
                ("POST", "/v1/endpoints/\(UUID().uuidString)/recover", ["since": "0000-12-31T00:00:00Z"], "since"),
                ("POST", "/v1/tenants", ["name": String(repeating: "e\u{301}", count: 150)], "name"),
            ]
            for (method, path, body, field) in cases {
                let token = path == "/v1/tenants" ? APIHarness.operatorToken : tenant.key
                let answer = try await api.call(method, path, token: token, body: body)
                #expect((400...422).contains(answer.status), "\(path) \(field) answered \(answer.status)")
                #expect(answer.contentType == "application/problem+json")
                #expect(answer.string("field") == field, "\(path) named \(answer.string("field") ?? "no field") instead of \(field)")
            }
            for query in ["since=2026-02-30T00:00:00Z", "until=2026-05-12T24:00:00Z", "since=-0001-01-01T00:00:00Z"] {
                #expect(try await api.call("GET", "/v1/deliveries?\(query)", token: tenant.key).status == 400, "\(query)")
            }
            #expect(try await api.call("GET", "/v1/deliveries?since=2026-05-12T09:30:00%2B19:49", token: tenant.key).status == 200)
            #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key).items.isEmpty)
            #expect(try await api.pipeline.pool.query("SELECT count(*) FROM events")[0].decode(Int.self, 0) == 0)
        }
    }

    /// Item 2: a batch with no delivery to insert built an empty `VALUES` list; such an
    /// event was never stored or acked and came back every second, until events of
    /// tenants without endpoints filled every slot and stopped everything else.
    @Test func eventsThatMatchNoEndpointAreStoredAndAckedAndTheRestIsDelivered() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let lonely = try await pipeline.tenant()
            let busy = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: busy, url: receiver.url, types: ["client.created"])
            // More unmatched events than the test worker's 50 slots, first and alone.
            for _ in 0..<120 { try await pipeline.publish("client.created", tenant: lonely) }
            try await pipeline.eventually("the unmatched events are stored") {
                try await pipeline.pool.query("SELECT count(*) FROM events WHERE tenant_id = \(lonely)")[0].decode(Int.self, 0) == 120
            }
            for index in 0..<40 {
                try await pipeline.publish("client.created", tenant: busy, id: "match_\(index)")
                try await pipeline.publish("booking.confirmed", tenant: busy)
                try await pipeline.publish("invoice.paid", tenant: lonely)
            }
            let requests = try await receiver.waitForRequests(40, timeout: .seconds(30))
            #expect(Set(requests.compactMap { $0.header("x-herald-event") }) == ["client.created"])
            try await pipeline.eventually("every event is stored, every message acked") {
                let stored = try await pipeline.pool.query("SELECT count(*) FROM events")[0].decode(Int.self, 0)
                let depth = try await pipeline.workQueueDepth()
                return stored == 240 && depth == 0
            }
            #expect(try await pipeline.pool.query("SELECT count(*) FROM deliveries")[0].decode(Int.self, 0) == 40)
        }
        await receiver.stop()
    }

    /// Item 3: an id of more than 255 UTF-8 bytes broke the AMQP connection the API shares
    /// with every tenant. The protocol's limits are checked before a message reaches the
    /// connection: that one publish fails, the next one on the same channel goes through.
    @Test func aMessageTheProtocolCannotCarryFailsAloneAndTheConnectionLives() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        try await channel.enableConfirms()
        let queue = TestServices.uniqueName("long-id")
        try await channel.declareQueue(queue, durable: false, autoDelete: true)
        let tooLong: [Message] = [
            Message(body: [], messageID: String(repeating: "\u{1F4F7}", count: 100)),
            Message(body: [], headers: [String(repeating: "h", count: 129): "x"]),
            Message(body: [], type: String(repeating: "t", count: 256)),
        ]
        for message in tooLong {
            await #expect(throws: BrokerError.self) { try await channel.publish(message, exchange: "", routingKey: queue) }
        }
        await #expect(throws: BrokerError.self) {
            try await channel.publish(Message(body: []), exchange: "", routingKey: String(repeating: "q", count: 256))
        }
        try await channel.publish(Message(body: Array("fine".utf8), messageID: String(repeating: "\u{E9}", count: 127)), exchange: "", routingKey: queue)
        #expect(try await channel.declareQueue(queue, passive: true).messageCount == 1)
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    /// Item 3, second half: commands the connection's thread had taken when it stopped
    /// were dropped, and their callers waited forever. Publishes posted right behind a
    /// close now all return, each with an answer or an error.
    @Test func everyCommandTakenWhenTheConnectionStopsIsAnswered() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        try await channel.enableConfirms()
        let queue = TestServices.uniqueName("closing")
        try await channel.declareQueue(queue, durable: false, autoDelete: true)
        let answered = Counter()
        // Unstructured: a publish that is never answered must fail the test, not hang it.
        // The close is posted among the publishes, so some are taken in the same batch.
        for index in 0..<1000 {
            if index == 500 { Task { await connection.close() } }
            Task {
                _ = try? await channel.publish(Message(body: Array("x".utf8)), exchange: "", routingKey: queue)
                _ = answered.next()
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while answered.count < 1000, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(answered.count == 1000, "publishes never answered")
    }
}
