import Cryptography
import Delivery
import FanOut
import Foundation
import HTTPClient
import HeraldEvents
import Testing

@Suite("Signature profiles and payload formats")
struct ProfileTests {
    let tenant = UUID(uuidString: "5b0c43a2-11e3-4f7a-9a55-3c1d2e4f6a7b")!
    let requestID = UUID()
    let deliveryID = UUID()
    let now = Date(timeIntervalSince1970: 1_778_578_200)
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    let old = "whsec_AAECAwQFBgcICQoLDA0ODw=="

    var event: Event {
        Event(id: "evt_1", type: "invoice.paid", tenantID: tenant, occurredAt: now, data: Array(#"{"total":"1450.00"}"#.utf8))
    }

    func request(
        _ profile: SignatureProfile, format: Endpoint.PayloadFormat = .raw, fields: EnvelopeFields = EnvelopeFields(), rotating: Bool = false,
        headers: [String: String] = [:]
    ) -> Request {
        let endpoint = Endpoint(
            id: UUID(), tenantID: tenant, url: "https://hooks.example.com/in", eventTypes: ["*"], customHeaders: headers, payloadFormat: format,
            envelopeFields: fields, signature: profile, secret: secret, previousSecret: rotating ? old : nil,
            previousSecretExpiresAt: rotating ? now.addingTimeInterval(60) : nil)
        return WebhookRequest.make(event: event, endpoint: endpoint, deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings())
    }

    func names(_ request: Request) -> [String] {
        request.headers.map(\.name).filter { !["Content-Type", "User-Agent"].contains($0) }
    }

    func header(_ request: Request, _ name: String) -> String? {
        request.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func hmac(_ key: String, _ message: [UInt8]) -> String {
        Hex.encode(SHA256.hmac(key: Array(key.utf8), message: message))
    }

    @Test func githubsOwnTestVector() {
        // docs.github.com, "Validating webhook deliveries": the secret, payload and signature given there.
        let signature = Signature.headers(
            .github, secrets: ("It's a Secret to Everybody", ["It's a Secret to Everybody"]), event: "ping", deliveryID: deliveryID, now: now,
            body: Array("Hello, World!".utf8), brand: "X-Herald")
        #expect(signature.first { $0.name == "X-Hub-Signature-256" }?.value == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    }

    @Test func eachProfileSendsItsOwnHeadersOnly() {
        let id = deliveryID.uuidString.lowercased()
        #expect(names(request(.herald)) == [
            "X-Herald-Event", "X-Herald-Request-ID", "X-Herald-Timestamp", "X-Herald-Signature", "webhook-id", "webhook-timestamp", "webhook-signature",
        ])
        #expect(names(request(.standardWebhooks)) == ["X-Herald-Event", "X-Herald-Request-ID", "webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(names(request(.none)) == ["X-Herald-Event", "X-Herald-Request-ID"])

        let creatorDesk = request(.timestampedHMAC(headerPrefix: "X-CreatorDesk"))
        #expect(names(creatorDesk) == ["X-CreatorDesk-Event", "X-CreatorDesk-Request-ID", "X-CreatorDesk-Timestamp", "X-CreatorDesk-Signature"])
        #expect(header(creatorDesk, "X-CreatorDesk-Signature") == "sha256=" + hmac(secret, Array("2026-05-12T09:30:00Z.".utf8) + creatorDesk.body))

        let craftDesk = request(.bodyHMAC(.init(header: "X-Webhook-Signature")), format: .craftdesk)
        #expect(names(craftDesk) == ["X-Herald-Event", "X-Herald-Request-ID", "X-Webhook-Signature"])
        #expect(header(craftDesk, "X-Webhook-Signature") == hmac(secret, craftDesk.body))

        let creativeForce = request(.bodyHMAC(.init(header: "X-CF-Signature", eventHeader: "X-CF-Event")))
        #expect(header(creativeForce, "X-CF-Event") == "invoice.paid")
        let base64 = request(.bodyHMAC(.init(header: "X-Signature", encoding: .base64, valuePrefix: "sha256=")))
        #expect(header(base64, "X-Signature") == "sha256=" + Base64.encode(SHA256.hmac(key: Array(secret.utf8), message: base64.body)))

        let github = request(.github)
        #expect(names(github) == ["X-Herald-Event", "X-Herald-Request-ID", "X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery"])
        #expect(header(github, "X-Hub-Signature-256") == "sha256=" + hmac(secret, github.body))
        #expect(header(github, "X-GitHub-Delivery") == id)

        let stripe = request(.stripe)
        #expect(header(stripe, "Stripe-Signature") == "t=1778578200,v1=" + hmac(secret, Array("1778578200.".utf8) + stripe.body))
    }

    @Test func duringARotationMultiValueHeadersCarryBothSecretsAndSingleValueOnesThePrevious() {
        let stripe = request(.stripe, rotating: true)
        let signed = Array("1778578200.".utf8) + stripe.body
        #expect(header(stripe, "Stripe-Signature") == "t=1778578200,v1=\(hmac(secret, signed)),v1=\(hmac(old, signed))")
        #expect(header(request(.standardWebhooks, rotating: true), "webhook-signature")?.split(separator: " ").count == 2)
        for profile in [SignatureProfile.github, .bodyHMAC(.init(header: "X-Sig")), .timestampedHMAC(headerPrefix: "X-CD")] {
            let during = request(profile, rotating: true)
            let name = profile.signatureHeaders(brand: "X-Herald").first!
            let previous = Endpoint(
                id: UUID(), tenantID: tenant, url: "https://x", eventTypes: ["*"], signature: profile, secret: old)
            let expected = WebhookRequest.make(event: event, endpoint: previous, deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings())
            #expect(header(during, name) == header(expected, name), "\(profile.name)")
        }
    }

    @Test func payloadFormats() throws {
        let data = #"{"total":"1450.00"}"#
        let tenantID = tenant.uuidString.lowercased()
        #expect(request(.herald).body == Array(data.utf8))
        #expect(String(decoding: request(.herald, format: .craftdesk).body, as: UTF8.self)
            == #"{"id":"evt_1","event":"invoice.paid","timestamp":"2026-05-12T09:30:00Z","workspace_id":"\#(tenantID)","data":\#(data)}"#)
        #expect(String(decoding: request(.herald, format: .customermates).body, as: UTF8.self)
            == #"{"event":"invoice.paid","data":\#(data),"timestamp":"2026-05-12T09:30:00Z"}"#)
        var fields = EnvelopeFields()
        fields.type = "event_type"
        fields.id = "event_id"
        fields.data = "payload"
        #expect(String(decoding: request(.herald, format: .envelope, fields: fields).body, as: UTF8.self)
            == #"{"event_id":"evt_1","event_type":"invoice.paid","timestamp":"2026-05-12T09:30:00Z","tenant_id":"\#(tenantID)","payload":\#(data)}"#)
        // A key with characters JSON escapes is written escaped.
        fields.tenant = "ten\"ant"
        let object = try #require(try JSONSerialization.jsonObject(with: Data(request(.herald, format: .envelope, fields: fields).body)) as? [String: Any])
        #expect(object["ten\"ant"] as? String == tenantID)
    }

    @Test func customHeadersGiveWayToTheProfilesOwn() {
        let request = request(.github, headers: ["X-Hub-Signature-256": "forged", "x-github-event": "forged", "X-Team": "photo"])
        #expect(!request.headers.contains { $0.value == "forged" })
        #expect(header(request, "X-Team") == "photo")
        let branded = self.request(.timestampedHMAC(headerPrefix: "X-CD"), headers: ["X-CD-Anything": "forged"])
        #expect(!branded.headers.contains { $0.value == "forged" })
    }

    @Test func aRefusalWhileTheSecretChangesIsRetried() {
        let now = Date()
        for status in [401, 403] {
            let settled = Outcome.of(status: status, retryAfter: nil, now: now).settlingRotation()
            #expect(settled.verdict == .transient && settled.errorMessage == "HTTP \(status) during a secret rotation: retried")
        }
        for status in [200, 400, 404, 410, 500] {
            let outcome = Outcome.of(status: status, retryAfter: nil, now: now)
            #expect(outcome.settlingRotation() == outcome, "\(status)")
        }
        var endpoint = Endpoint(id: UUID(), tenantID: tenant, url: "https://x", eventTypes: ["*"], secret: secret)
        #expect(!endpoint.rotationSettles(at: now))
        endpoint.previousSecretExpiresAt = now.addingTimeInterval(60)
        #expect(endpoint.rotationSettles(at: now))
        // Confirmed a moment ago: the end is kept, the previous secret no longer signs.
        endpoint.previousSecretExpiresAt = now.addingTimeInterval(-60)
        #expect(endpoint.rotationSettles(at: now) && endpoint.signingSecrets(at: now).all == [secret])
        #expect(!endpoint.rotationSettles(at: now.addingTimeInterval(Endpoint.rotationSettling)))
    }
}
