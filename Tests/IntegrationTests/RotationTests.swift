import Cryptography
import Delivery
import FanOut
import Foundation
import HTTPClient
import Postgres
import HeraldSupport
import Synchronization
import Testing
import TestSupport
import Worker

/// A secret rotated while deliveries flow, done as the README says, under every profile:
/// a receiver that still has the old secret and one that has the new secret count their
/// failed verifications, and both count none.
@Suite("Secret rotation no receiver notices")
struct RotationTests {
    /// A receiver following the profile's documented check with one secret.
    static func verifies(_ request: ReceivedRequest, profile: SignatureProfile, secret: String) -> Bool {
        let body = request.body
        func hmac(_ message: [UInt8]) -> [UInt8] { SHA256.hmac(key: Array(secret.utf8), message: message) }
        func same(_ a: String?, _ b: String) -> Bool { a.map { constantTimeEquals(Array($0.utf8), Array(b.utf8)) } ?? false }
        switch profile {
        case .herald:
            return heraldSignatureValid(request, secret: secret)
        case .standardWebhooks:
            return verifiedSecrets(request, [secret]) == [secret]
        case .timestampedHMAC(let prefix):
            guard let timestamp = request.header("\(prefix)-Timestamp") else { return false }
            return same(request.header("\(prefix)-Signature"), "sha256=" + Hex.encode(hmac(Array("\(timestamp).".utf8) + body)))
        case .bodyHMAC(let settings):
            return same(request.header(settings.header), Hex.encode(hmac(body)))
        case .github:
            return same(request.header("X-Hub-Signature-256"), "sha256=" + Hex.encode(hmac(body)))
        case .stripe:
            // Stripe's check: any v1 entry matching the HMAC of "{t}.{body}".
            guard let header = request.header("Stripe-Signature") else { return false }
            let parts = header.split(separator: ",").map { $0.split(separator: "=", maxSplits: 1).map(String.init) }
            guard let t = parts.first(where: { $0.first == "t" })?.last else { return false }
            let expected = Hex.encode(hmac(Array("\(t).".utf8) + body))
            return parts.contains { $0.first == "v1" && same($0.last, expected) }
        case .none:
            return true
        }
    }

    /// Where the rotation stands when an event is published: an event published in a
    /// phase is signed with that phase's secrets (the worker's directory is refreshed
    /// before the phase begins, as the README's "within 5 seconds" allows).
    enum Phase: String {
        case before, grace, after
    }

    static let profiles: [SignatureProfile] = [
        .herald, .standardWebhooks, .stripe, .github, .bodyHMAC(.init(header: "X-Webhook-Signature")),
        .timestampedHMAC(headerPrefix: "X-CreatorDesk"),
    ]

    @Test(arguments: profiles)
    func rotatingWhileDeliveriesFlow(_ profile: SignatureProfile) async throws {
        try await APIHarness.run { api in try await Self.rotate(profile, api: api) }
    }

    static func rotate(_ profile: SignatureProfile, api: APIHarness) async throws {
        let receiver = try await TestHTTPServer.start()
        let (tenantID, key) = try await api.tenant()
        let tenant = try #require(UUID(uuidString: tenantID))
        let (id, old) = try await api.endpoint(key, url: "http://localhost:\(receiver.port)/hook", extra: ["signature": APIHarness.object(ConfigValue.text(profile.config))])
        let stream = EventStream(api: api, tenant: tenant, receiver: receiver)
        try await stream.flow(5)
        let rotated = try await api.call("POST", "/v1/endpoints/\(id)/rotate-secret", token: key, body: [:])
        let new = try #require(rotated.string("secret"))
        stream.enter(.grace)
        try await stream.flow(15)
        // The receiver takes the new secret when the rotation is confirmed; what was
        // signed before arrives first.
        try await api.pipeline.eventually("every event published so far is delivered") {
            Set(receiver.requests.compactMap { Self.eventNumber($0) }).count == stream.count
        }
        let confirmed = try await api.call("POST", "/v1/endpoints/\(id)/confirm-secret", token: key)
        #expect(confirmed.status == 200)
        #expect(confirmed.object["previous_secret_expires_at"] == nil)
        stream.enter(.after)
        try await stream.flow(10)
        try await api.pipeline.eventually("every event published is delivered") {
            Set(receiver.requests.compactMap { Self.eventNumber($0) }).count == stream.count
        }

        var failures: [String: Int] = ["old receiver": 0, "new receiver": 0]
        var checked: [Phase: Int] = [:]
        for request in receiver.requests {
            let number = try #require(Self.eventNumber(request))
            let eventPhase = try #require(stream.published[number])
            checked[eventPhase, default: 0] += 1
            let oldVerifies = Self.verifies(request, profile: profile, secret: old)
            let newVerifies = Self.verifies(request, profile: profile, secret: new)
            switch eventPhase {
            case .before:
                if !oldVerifies { failures["old receiver", default: 0] += 1 }
            case .grace:
                // The old-secret receiver is untouched; where a header carries both, a
                // receiver that already has the new secret verifies too.
                if !oldVerifies { failures["old receiver", default: 0] += 1 }
                if profile.carriesEverySecret && !newVerifies { failures["new receiver", default: 0] += 1 }
                // A single signature is the previous secret's until the confirmation.
                if !profile.carriesEverySecret { #expect(!newVerifies, "single-value signature made with the new secret before the confirmation") }
            case .after:
                if !newVerifies { failures["new receiver", default: 0] += 1 }
                #expect(!oldVerifies, "the previous secret signs after the confirmation")
            }
        }
        #expect(failures == ["old receiver": 0, "new receiver": 0], "\(profile.name)")
        #expect(checked == [.before: 5, .grace: 15, .after: 10], "\(checked)")
        await receiver.stop()
    }

    /// A receiver that holds one secret and switches before the rotation is confirmed (the
    /// gap the README describes): what it refuses with 401 in between is retried, signed
    /// anew, and delivered once the rotation is confirmed; nothing fails.
    @Test func aReceiverThatSwitchesEarlyLosesNothing() async throws {
        let profile = SignatureProfile.timestampedHMAC(headerPrefix: "X-CreatorDesk")
        let held = Mutex("")
        let receiver = try await TestHTTPServer.start { request in
            Self.verifies(request, profile: profile, secret: held.withLock { $0 }) ? .status(200) : .status(401)
        }
        // Retries outlast a confirmation that a loaded machine makes late, and the endpoint is
        // not disabled by the refusals meanwhile (3 deliveries × 6 attempts at most).
        var options = Pipeline.Options()
        options.ladder = "500ms,1s,2s,4s,8s"
        options.disable = DisablePolicy(threshold: 20, window: .zero)
        try await APIHarness.run(options) { api in
            let (tenantID, key) = try await api.tenant()
            let tenant = try #require(UUID(uuidString: tenantID))
            let (id, old) = try await api.endpoint(
                key, url: "http://localhost:\(receiver.port)/hook", extra: ["signature": APIHarness.object(ConfigValue.text(profile.config))])
            held.withLock { $0 = old }
            let new = try #require(try await api.call("POST", "/v1/endpoints/\(id)/rotate-secret", token: key, body: [:]).string("secret"))
            api.pipeline.context.directory.invalidate(tenant: tenant)
            held.withLock { $0 = new }
            for n in 1...3 { try await api.pipeline.publish("invoice.paid", tenant: tenant, data: #"{"n":\#(n)}"#) }
            try await api.pipeline.eventually("the receiver refuses the previous secret's signatures") {
                receiver.requests.count >= 3
            }
            #expect(try await api.call("POST", "/v1/endpoints/\(id)/confirm-secret", token: key).status == 200)
            api.pipeline.context.directory.invalidate(tenant: tenant)
            let endpoint = try #require(UUID(uuidString: id))
            try await api.pipeline.eventually("every delivery is delivered") {
                try await api.pipeline.deliveries(endpoint: endpoint).map(\.status) == Array(repeating: "delivered", count: 3)
            }
            let attempts = try await api.pipeline.pool.query(
                "SELECT count(*) FILTER (WHERE status_code = 401), count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = \(endpoint)")[0]
            #expect(try attempts.decode(Int.self, 0) >= 3, "the refusals were attempts, recorded")
        }
        await receiver.stop()
    }

    /// Events published one after another, each tagged with the phase it was published in.
    final class EventStream {
        let api: APIHarness
        let tenant: UUID
        let receiver: TestHTTPServer
        var phase = Phase.before
        var published: [Int: Phase] = [:]
        var count = 0

        init(api: APIHarness, tenant: UUID, receiver: TestHTTPServer) {
            self.api = api
            self.tenant = tenant
            self.receiver = receiver
        }

        func publish() async throws {
            count += 1
            try await api.pipeline.publish("invoice.paid", tenant: tenant, data: #"{"n":\#(count)}"#)
            published[count] = phase
        }

        /// The next phase, once every worker has read the change (the README's refresh interval).
        func enter(_ next: Phase) {
            api.pipeline.context.directory.invalidate(tenant: tenant)
            phase = next
        }

        /// Publishes `count` events 10 ms apart: the earlier ones are still being delivered
        /// when the phase changes.
        func flow(_ count: Int) async throws {
            for _ in 0..<count {
                try await publish()
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    static func eventNumber(_ request: ReceivedRequest) -> Int? {
        (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])?["n"] as? Int
    }
}
