import Synchronization
import HeraldAMQP
import Cryptography
import HeraldEvents
import Foundation
import Postgres
import Testing
import TestSupport
import Topology
import FanOut
import Delivery

@Suite("Delivery pipeline (real broker, database and receivers)")
struct PipelineTests {
    @Test func signaturesVerifyWithTheReceiverSnippetsInPythonAndNode() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/raw", secret: secret)
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/envelope", format: .envelope, secret: secret)
            try await pipeline.publish("invoice.paid", tenant: tenant, data: Catalog.entry("invoice.paid")!.sample)
            let requests = try await receiver.waitForRequests(2)
            for request in requests {
                for verifier in [["python3", "examples/verify/verify.py"], ["node", "examples/verify/verify.js"]] {
                    #expect(try runVerifier(verifier, secret: secret, request: request, body: request.body) == 0, "\(verifier[0]) rejected \(request.uri)")
                    // The same check fails on a tampered body: the verifiers really verify.
                    #expect(try runVerifier(verifier, secret: secret, request: request, body: request.body + [0x20]) != 0)
                }
            }
            let envelope = try #require(requests.first { $0.uri == "/envelope" })
            let object = try #require(try JSONSerialization.jsonObject(with: Data(envelope.body)) as? [String: Any])
            #expect(object["type"] as? String == "invoice.paid")
            #expect((object["data"] as? [String: Any])?["invoice_number"] as? String == "R-2026-0089")
            let raw = try #require(requests.first { $0.uri == "/raw" })
            #expect((try JSONSerialization.jsonObject(with: Data(raw.body)) as? [String: Any])?["invoice_number"] as? String == "R-2026-0089")
            #expect(raw.header("content-type") == "application/json")
            #expect(raw.header("user-agent")?.hasPrefix("Herald-Webhooks/") == true)
            #expect(raw.header("x-herald-event") == "invoice.paid")
        }
        await receiver.stop()
    }

    /// Also when the first attempt goes before the store (its delivery is stored claimed).
    @Test(arguments: DeliverBeforeStore.allCases)
    func transientFailuresRetryOnTheLadderWithOneRequestID(deliverBeforeStore: DeliverBeforeStore) async throws {
        let counter = Counter()
        let receiver = try await TestHTTPServer.start { _ in counter.next() <= 2 ? .status(503) : .status(200) }
        var options = Pipeline.Options()
        options.deliverBeforeStore = deliverBeforeStore
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            try await pipeline.publish("client.created", tenant: tenant)
            let requests = try await receiver.waitForRequests(3)
            try await pipeline.eventually("the delivery is delivered") {
                try await pipeline.deliveries(endpoint: endpoint).first?.status == "delivered"
            }
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.attempts) == [3])
            #expect(Set(requests.map { $0.header("x-herald-request-id") }).count == 1)
            // webhook-id is the delivery's id, on every attempt.
            let deliveryID = try await pipeline.pool.query("SELECT id FROM deliveries WHERE endpoint_id = \(endpoint)")[0].decode(UUID.self, 0)
            #expect(requests.allSatisfy { $0.header("webhook-id") == deliveryID.uuidString.lowercased() })
            // Each retry waited at least its rung of the test ladder (200ms, then 400ms).
            #expect(requests[1].receivedAt - requests[0].receivedAt >= .milliseconds(200))
            #expect(requests[2].receivedAt - requests[1].receivedAt >= .milliseconds(400))
            let attempts = try await pipeline.pool.query(
                "SELECT attempt, status_code, trigger FROM delivery_attempts ORDER BY attempt")
            #expect(try attempts.map { try $0.decode(Int.self, 1) } == [503, 503, 200])
            #expect(try attempts.map { try $0.decode(String.self, 2) } == ["automatic", "automatic", "automatic"])
            #expect(receiver.requests.count == 3)
        }
        await receiver.stop()
    }

    @Test func aPermanent404IsNotRetried() async throws {
        let receiver = try await TestHTTPServer.start { _ in .status(404, body: Array("no such hook".utf8)) }
        let marker = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url, types: ["client.created"])
            let other = try await pipeline.endpoint(tenant: tenant, url: marker.url, types: ["marker.sent"])
            try await pipeline.publish("client.created", tenant: tenant)
            try await pipeline.eventually("the delivery failed") {
                try await pipeline.deliveries(endpoint: endpoint).first?.status == "failed"
            }
            let excerpt = try await pipeline.pool.query("SELECT response_excerpt, error_class FROM delivery_attempts")
            #expect(try excerpt[0].decode(String.self, 0) == "no such hook")
            #expect(try excerpt[0].decode(String.self, 1) == "http")
            // No retry was scheduled: every delay queue is empty once the failure is recorded
            // (a retry is published before the message that caused it is acked).
            let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
            let channel = try await connection.openChannel()
            for rung in pipeline.topology.ladder.delays.indices {
                #expect(try await channel.declareQueue(pipeline.topology.retryQueue(rung: rung), passive: true).messageCount == 0)
            }
            await connection.close()
            try await pipeline.publish("marker.sent", tenant: tenant)
            try await marker.waitForRequests(1)
            try await pipeline.eventually("the marker is delivered") { try await pipeline.deliveries(endpoint: other).first?.status == "delivered" }
            #expect(receiver.requests.count == 1)
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.attempts) == [1])
        }
        await marker.stop()
        await receiver.stop()
    }

    @Test func aGoneEndpointIsDisabled() async throws {
        let receiver = try await TestHTTPServer.start { _ in .status(410) }
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            try await pipeline.publish("client.created", tenant: tenant)
            try await pipeline.eventually("the endpoint is disabled") {
                try await !pipeline.pool.query("SELECT enabled FROM endpoints WHERE id = \(endpoint)")[0].decode(Bool.self, 0)
            }
            let reason = try await pipeline.pool.query("SELECT disabled_reason FROM endpoints WHERE id = \(endpoint)")[0].decode(String.self, 0)
            #expect(reason.contains("410"))
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.status) == ["failed"])
        }
        await receiver.stop()
    }

    @Test func fiveConsecutiveFailuresDisableAndLaterDeliveriesAreSkipped() async throws {
        let receiver = try await TestHTTPServer.start { _ in .status(404) }
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            for n in 1...5 {
                try await pipeline.publish("client.created", tenant: tenant, id: "evt_fail_\(n)")
                try await receiver.waitForRequests(n)
            }
            try await pipeline.eventually("the endpoint is disabled") {
                try await !pipeline.pool.query("SELECT enabled FROM endpoints WHERE id = \(endpoint)")[0].decode(Bool.self, 0)
            }
            let counted = try await pipeline.pool.query("SELECT consecutive_failures, disabled_reason FROM endpoints WHERE id = \(endpoint)")[0]
            #expect(try counted.decode(Int.self, 0) == 5)
            try await pipeline.publish("client.created", tenant: tenant, id: "evt_after")
            try await pipeline.eventually("the later delivery is recorded as skipped") {
                try await pipeline.deliveries(endpoint: endpoint).first { $0.eventID == "evt_after" }?.status == "skipped"
            }
            #expect(receiver.requests.count == 5)
        }
        await receiver.stop()
    }

    @Test func customHeadersCannotOverrideReservedOnes() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let headers = #"{"X-Herald-Signature": "forged", "webhook-id": "forged", "Content-Type": "text/plain", "User-Agent": "forged", "X-Team": "photo"}"#
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url, headers: headers)
            try await pipeline.publish("client.created", tenant: tenant)
            let request = try #require(try await receiver.waitForRequests(1).first)
            #expect(request.header("x-team") == "photo")
            #expect(request.header("x-herald-signature")?.hasPrefix("sha256=") == true)
            #expect(request.header("webhook-id") != "forged")
            #expect(request.header("content-type") == "application/json")
            #expect(request.header("user-agent")?.hasPrefix("Herald-Webhooks/") == true)
            #expect(request.headers.filter { $0.name.lowercased() == "x-herald-signature" }.count == 1)
        }
        await receiver.stop()
    }

    @Test func aHangingEndpointDoesNotHoldUpAFastOne() async throws {
        let slow = try await TestHTTPServer.start { _ in .hang }
        let fast = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.httpTimeout = .seconds(20)
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: slow.url, types: ["slow.*"])
            let fastEndpoint = try await pipeline.endpoint(tenant: tenant, url: fast.url, types: ["fast.*"])
            // As many requests as an endpoint not heard from yet gets at first (4).
            for n in 0..<4 { try await pipeline.publish("slow.event", tenant: tenant, id: "slow_\(n)") }
            try await slow.waitForRequests(4)
            for n in 0..<20 { try await pipeline.publish("fast.event", tenant: tenant, id: "fast_\(n)") }
            try await fast.waitForRequests(20, timeout: .seconds(10))
            try await pipeline.eventually(timeout: .seconds(10), "every fast delivery is delivered") {
                try await pipeline.deliveries(endpoint: fastEndpoint).filter { $0.status == "delivered" }.count == 20
            }
            // The slow endpoint's requests are all still open: nothing waited for them.
            let open = try await pipeline.pool.query("SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.event_id LIKE 'slow_%'")
            #expect(try open[0].decode(Int.self, 0) == 0)
        }
        await slow.stop()
        await fast.stop()
    }

    /// Also when first copies send before they are stored: the copies meet in the worker.
    @Test(arguments: DeliverBeforeStore.allCases)
    func theSameEventPublishedTwiceMakesOneDeliveryPerEndpoint(deliverBeforeStore: DeliverBeforeStore) async throws {
        let receiver = try await TestHTTPServer.start()
        let marker = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.deliverBeforeStore = deliverBeforeStore
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let a = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/a", types: ["booking.*"])
            let b = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/b", types: ["booking.*"])
            let m = try await pipeline.endpoint(tenant: tenant, url: marker.url, types: ["marker.sent"])
            // An id with its time, as the producer makes them: the kind a first copy may send.
            let id = Event.generateID()
            try await pipeline.publish("booking.confirmed", tenant: tenant, id: id)
            try await pipeline.publish("booking.confirmed", tenant: tenant, id: id)
            try await receiver.waitForRequests(2)
            // A marker event published after both copies proves both copies were consumed.
            try await pipeline.publish("marker.sent", tenant: tenant)
            try await marker.waitForRequests(1)
            try await pipeline.eventually("the marker is recorded") { try await pipeline.deliveries(endpoint: m).first?.status == "delivered" }
            #expect(try await pipeline.deliveries(endpoint: a).count == 1)
            #expect(try await pipeline.deliveries(endpoint: b).count == 1)
            #expect(receiver.requests.map(\.uri).sorted() == ["/a", "/b"])
            let events = try await pipeline.pool.query("SELECT count(*) FROM events WHERE id = \(id)")
            #expect(try events[0].decode(Int.self, 0) == 1)
        }
        await marker.stop()
        await receiver.stop()
    }

    /// The store of an event whose delivery was sent first waits for company (here longer
    /// than the test), and an event stored first ends the wait: both are written soon.
    @Test func aStoreOfDeliveriesSentFirstWaitsForCompanyUntilAnEventStoredFirst() async throws {
        let receiver = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.deliverBeforeStore = .always
        options.storeLinger = .seconds(60)
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url, types: ["booking.*"])
            try await pipeline.publish("booking.confirmed", tenant: tenant)
            try await receiver.waitForRequests(1)
            #expect(try await pipeline.deliveries(endpoint: endpoint).isEmpty)
            // An id without its time: the event is stored before it is sent.
            try await pipeline.publish("booking.confirmed", tenant: tenant, id: "booking-\(UUID().uuidString)")
            try await receiver.waitForRequests(2)
            try await pipeline.eventually("both deliveries are recorded") {
                try await pipeline.deliveries(endpoint: endpoint).filter { $0.status == "delivered" }.count == 2
            }
        }
        await receiver.stop()
    }

    @Test func clientDeletedReachesEndpointsNotSubscribedToIt() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url, types: ["invoice.paid"], filters: #"{"workspace": ["w1"]}"#)
            try await pipeline.publish("client.deleted", tenant: tenant, data: Catalog.entry("client.deleted")!.sample)
            let request = try #require(try await receiver.waitForRequests(1).first)
            #expect(request.header("x-herald-event") == "client.deleted")
            try await pipeline.eventually("delivered") { try await pipeline.deliveries(endpoint: endpoint).first?.status == "delivered" }
        }
        await receiver.stop()
    }

    @Test func filtersAndSelectionsChooseTheEndpoints() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let other = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/w1", types: ["invoice.*"], filters: #"{"workspace": ["w1"]}"#)
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/w2", types: ["invoice.*"], filters: #"{"workspace": ["w2"]}"#)
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/clients", types: ["client.created"])
            _ = try await pipeline.endpoint(tenant: other, url: receiver.url + "/other", types: ["*"])
            try await pipeline.publish("invoice.paid", tenant: tenant, attributes: ["workspace": "w2"])
            try await receiver.waitForRequests(1)
            try await pipeline.publish("marker.sent", tenant: other)
            try await receiver.waitForRequests(2)
            #expect(Set(receiver.requests.map(\.uri)) == ["/w2", "/other"])
        }
        await receiver.stop()
    }

    @Test func theDefaultLaddersQueuesExistWithTheirTTLsAndDeadLetterArguments() async throws {
        var options = Pipeline.Options()
        options.ladder = "1m,5m,30m,2h,12h"
        try await Pipeline.run(options) { pipeline in
            let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
            let expected = [("1m", 60_000), ("5m", 300_000), ("30m", 1_800_000), ("2h", 7_200_000), ("12h", 43_200_000)]
            for (rung, (label, ttl)) in expected.enumerated() {
                let name = pipeline.topology.retryQueue(rung: rung)
                #expect(name == "\(pipeline.topology.prefix).retry.\(label)")
                let channel = try await connection.openChannel()
                // Redeclaring with the same arguments succeeds…
                try await channel.declareQueue(name, arguments: pipeline.topology.retryQueueArguments(rung: rung))
                // …and with any other TTL or dead-letter target the broker refuses (406): the
                // queue exists with exactly these arguments.
                var otherTTL = pipeline.topology.retryQueueArguments(rung: rung)
                otherTTL["x-message-ttl"] = .int(Int64(ttl + 1))
                await #expect(throws: BrokerError.self) { try await channel.declareQueue(name, arguments: otherTTL) }
                let again = try await connection.openChannel()
                var otherTarget = pipeline.topology.retryQueueArguments(rung: rung)
                otherTarget["x-dead-letter-exchange"] = "elsewhere"
                await #expect(throws: BrokerError.self) { try await again.declareQueue(name, arguments: otherTarget) }
                #expect(pipeline.topology.retryQueueArguments(rung: rung)["x-message-ttl"] == .int(Int64(ttl)))
            }
            await connection.close()
        }
    }
}

/// Runs a shipped verifier (`examples/verify`) on a request; its exit status (0: valid).
func runVerifier(_ command: [String], secret: String, request: ReceivedRequest, body: [UInt8]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = command
    process.currentDirectoryURL = TestServices.repositoryRoot
    let input = Pipe()
    process.standardInput = input
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let headers = Dictionary(request.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    let payload: [String: Any] = ["secret": secret, "headers": headers, "body_base64": Base64.encode(body)]
    input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: payload))
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    return process.terminationStatus
}

/// A thread-safe counter for receivers that change their answer over time.
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}
