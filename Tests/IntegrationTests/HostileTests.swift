import HeraldAMQP
import HeraldEvents
import Foundation
import Postgres
import Testing
import TestSupport
import Topology

@Suite("Hostile receivers and inputs")
struct HostileTests {
    /// Publishes one event to a hostile endpoint and one to a healthy endpoint; returns the
    /// hostile delivery's first attempt once recorded, after checking the healthy one arrived.
    func attempt(against reply: @escaping @Sendable (ReceivedRequest) -> Reply, timeout: Duration = .seconds(2)) async throws -> [String: String?] {
        let hostile = try await TestHTTPServer.start(reply)
        let healthy = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.httpTimeout = timeout
        options.ladder = "30s"
        let result = try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let bad = try await pipeline.endpoint(tenant: tenant, url: hostile.url, types: ["hostile.event"])
            _ = try await pipeline.endpoint(tenant: tenant, url: healthy.url, types: ["healthy.event"])
            try await pipeline.publish("hostile.event", tenant: tenant)
            try await hostile.waitForRequests(1)
            try await pipeline.publish("healthy.event", tenant: tenant)
            // Whatever the hostile receiver does, the healthy one is served meanwhile.
            try await healthy.waitForRequests(1, timeout: .seconds(15))
            try await pipeline.eventually(timeout: .seconds(30), "the hostile attempt is recorded") {
                try await !pipeline.pool.query("SELECT 1 FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = \(bad)").isEmpty
            }
            let row = try await pipeline.pool.query(
                """
                SELECT a.status_code::text, a.error_class, length(a.response_excerpt)::text, d.status
                FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = \(bad)
                """)[0]
            return [
                "status_code": try row.decode(String?.self, 0), "error_class": try row.decode(String?.self, 1),
                "excerpt_length": try row.decode(String?.self, 2), "delivery": try row.decode(String?.self, 3),
            ]
        }
        await hostile.stop()
        await healthy.stop()
        return result
    }

    @Test func aReceiverThatNeverAnswersTimesOutAndIsRetried() async throws {
        let result = try await attempt(against: { _ in .hang })
        #expect(result["error_class"] == "timeout")
        #expect(result["delivery"] == "retrying")
    }

    @Test func aReceiverThatTricklesItsBodyTimesOut() async throws {
        let result = try await attempt(against: { _ in .trickle(status: 200, bytes: 1_000_000, interval: .milliseconds(100)) })
        #expect(result["error_class"] == "timeout")
        #expect(result["delivery"] == "retrying")
    }

    @Test func aFiftyMegabyteBodyIsCappedAndTheTransferAborted() async throws {
        let result = try await attempt(against: { _ in .largeBody(status: 200, bytes: 50 * 1024 * 1024) })
        #expect(result["status_code"] == "200")
        #expect(result["excerpt_length"] == "4096")
        #expect(result["delivery"] == "delivered")
    }

    @Test(arguments: ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:1/admin"])
    func redirectsAreNotFollowed(_ location: String) async throws {
        let result = try await attempt(against: { _ in .status(302, headers: [("Location", location)]) })
        #expect(result["status_code"] == "302")
        #expect(result["delivery"] == "failed")
    }

    @Test func aConnectionResetMidResponseIsANetworkFailure() async throws {
        let result = try await attempt(against: { _ in .resetMidBody(status: 200) })
        #expect(result["error_class"] == "network")
        #expect(result["delivery"] == "retrying")
    }

    @Test func anAnswerAfterNinePointNineSecondsIsDelivered() async throws {
        // A second of margin over the answer, so that a loaded CI machine cannot turn it into a timeout.
        let result = try await attempt(against: { _ in .delayed(.milliseconds(9900), .status(200)) }, timeout: .seconds(11))
        #expect(result["status_code"] == "200")
        #expect(result["delivery"] == "delivered")
    }

    @Test func aSelfSignedCertificateIsATLSFailureAndRetried() async throws {
        let tls = try TLSReceiver.start()
        var options = Pipeline.Options()
        options.ladder = "30s"
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://localhost:\(tls.port)/in")
            try await pipeline.publish("client.created", tenant: tenant)
            try await pipeline.eventually("the attempt is recorded") {
                try await pipeline.deliveries(endpoint: endpoint).first?.status == "retrying"
            }
            let errorClass = try await pipeline.pool.query("SELECT error_class FROM delivery_attempts")[0].decode(String?.self, 0)
            #expect(errorClass == "tls")
        }
        tls.stop()
    }

    @Test func hostileMessagesAreParkedWithTheirReasonAndTheWorkerKeepsDelivering() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
            let channel = try await connection.openChannel()
            try await channel.enableConfirms()
            let exchange = pipeline.topology.eventsExchange
            func event(_ fields: String) -> [UInt8] { Array("{\(fields)}".utf8) }
            let base = #""id":"e1","occurred_at":"2026-05-12T09:30:00Z""#
            let hostile: [(Message, String)] = [
                (Message(body: Array("{\"id\": ".utf8)), "body"),
                (Message(body: event(#"\#(base),"tenant_id":"\#(tenant)","data":{}"#)), "type"),
                (Message(body: event(#"\#(base),"type":"a.b","data":{}"#)), "tenant_id"),
                (Message(body: event(#"\#(base),"type":"a.b","tenant_id":"\#(UUID())","data":{}"#)), "tenant_id"),
                (Message(body: event(#"\#(base),"type":"a.b","tenant_id":"\#(tenant)","data":"text""#)), "data"),
                (Message(body: event(#"\#(base),"type":"a.b","tenant_id":"\#(tenant)","data":{"x":"\#(String(repeating: "y", count: 300_000))"}"#)), "data"),
                (Message(body: Array("<xml/>".utf8), contentType: "application/xml"), "body"),
                (Message(body: Array(repeating: 0xFF, count: 64)), "body"),
                (Message(body: event(#"\#(base),"type":"a.b","tenant_id":"\#(tenant)","data":{}"#), headers: ["herald-kind": "alien"]), "herald-kind"),
                (Message(body: Array("{}".utf8), headers: ["herald-kind": "delivery", "herald-attempt": .string(String(repeating: "9", count: 100_000))]), "herald-attempt"),
            ]
            for (message, _) in hostile {
                try await channel.publish(message, exchange: exchange, routingKey: "a.b", mandatory: true)
            }
            // Huge and odd headers on a valid event do not stop it.
            var good = Message(body: WireFormat.encode(Event(id: "evt_good", type: "client.created", tenantID: tenant, data: Array("{}".utf8))))
            good.headers = ["x-custom": .string(String(repeating: "h", count: 50_000)), "nested": .table(["a": .array([.int(1), .bool(true)])])]
            good.contentType = "text/plain"
            try await channel.publish(good, exchange: exchange, routingKey: "client.created", mandatory: true)
            let request = try #require(try await receiver.waitForRequests(1).first)
            #expect(request.header("x-herald-event") == "client.created")

            let reasons = try await pipeline.parkedReasons(hostile.count)
            for (_, field) in hostile {
                #expect(reasons.contains { $0.hasPrefix(field) }, "no message parked for \(field): \(reasons)")
            }
            // No reason repeats a payload.
            #expect(reasons.allSatisfy { $0.count < 300 })
            await connection.close()
        }
        await receiver.stop()
    }
}
