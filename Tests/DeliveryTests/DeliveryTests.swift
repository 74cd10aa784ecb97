import Cryptography
import Delivery
import HeraldEvents
import FanOut
import Foundation
import HTTPClient
import Testing

@Suite("Signatures")
struct SignatureTests {
    @Test func standardWebhooksReferenceVector() {
        // The Standard Webhooks specification's own example.
        let signature = Signature.standard(
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_p5jXN8AQM9LWM0D4loKWxJek", seconds: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func heraldSignatureMatchesTheReferenceSnippetsRecipe() {
        // Python: "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, sha256).hexdigest()
        let signature = Signature.herald(secret: "dein_secret_aus_creatordesk", timestamp: "2026-05-12T09:30:00Z", body: Array(#"{"id":42}"#.utf8))
        #expect(signature == "sha256=6dcb881de99c1c4ef7d69288893ecdee21ea4b717e74c416d7ced662c5beecf3")
    }

    @Test func whsecKeysAreBase64DecodedOtherSecretsUsedAsText() {
        #expect(Signature.standardKey("whsec_AAEC") == [0, 1, 2])
        #expect(Signature.standardKey("plain") == Array("plain".utf8))
        #expect(Signature.standardKey("whsec_!!") == Array("whsec_!!".utf8))
    }

    @Test func generatedSecretsAreWhsecWith32Bytes() throws {
        let secret = Signature.generateSecret()
        #expect(secret.hasPrefix("whsec_"))
        #expect(try #require(Base64.decode(secret.dropFirst(6))).count == 32)
        #expect(secret != Signature.generateSecret())
    }
}

@Suite("Webhook requests")
struct WebhookRequestTests {
    let tenant = UUID()
    let requestID = UUID()
    let deliveryID = UUID()
    let now = Date(timeIntervalSince1970: 1_778_578_200)

    var event: Event {
        Event(id: "evt_1", type: "invoice.paid", tenantID: tenant, occurredAt: now, data: Array(#"{"total":"1450.00"}"#.utf8))
    }

    func endpoint(format: Endpoint.PayloadFormat = .raw, headers: [String: String] = [:], previous: String? = nil, previousUntil: Date? = nil) -> Endpoint {
        Endpoint(
            id: UUID(), tenantID: tenant, url: "https://hooks.example.com/in", eventTypes: ["*"], customHeaders: headers, payloadFormat: format,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", previousSecret: previous, previousSecretExpiresAt: previousUntil)
    }

    func header(_ request: Request, _ name: String) -> [String] {
        request.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    @Test func carriesEveryHeaderAndSignsTheBody() {
        let request = WebhookRequest.make(event: event, endpoint: endpoint(), deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings())
        let id = deliveryID.uuidString.lowercased()
        #expect(request.method == "POST")
        #expect(request.body == event.data)
        #expect(header(request, "Content-Type") == ["application/json"])
        #expect(header(request, "User-Agent") == ["Herald-Webhooks/1.0"])
        #expect(header(request, "X-Herald-Event") == ["invoice.paid"])
        #expect(header(request, "X-Herald-Timestamp") == ["2026-05-12T09:30:00Z"])
        #expect(header(request, "X-Herald-Request-ID") == [requestID.uuidString.lowercased()])
        #expect(header(request, "webhook-id") == [id])
        #expect(header(request, "webhook-timestamp") == ["1778578200"])
        #expect(header(request, "X-Herald-Signature") == [Signature.herald(secret: endpoint().secret, timestamp: "2026-05-12T09:30:00Z", body: request.body)])
        #expect(header(request, "webhook-signature") == [Signature.standard(secret: endpoint().secret, id: id, seconds: 1_778_578_200, body: request.body)])
        #expect(request.timeout == .seconds(10))
    }

    @Test func thePrefixIsADeploymentSetting() {
        let request = WebhookRequest.make(event: event, endpoint: endpoint(), deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings(headerPrefix: "X-CreatorDesk"))
        #expect(header(request, "X-CreatorDesk-Signature").count == 1)
        #expect(header(request, "X-Herald-Signature").isEmpty)
    }

    @Test func customHeadersNeverOverrideReservedOnes() {
        let custom = [
            "X-Herald-Signature": "forged", "x-herald-event": "forged", "Webhook-Signature": "forged", "content-type": "text/plain",
            "User-Agent": "forged", "Host": "evil", "Authorization": "Bearer abc", "X-Team": "photo",
        ]
        let request = WebhookRequest.make(event: event, endpoint: endpoint(headers: custom), deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings())
        #expect(!request.headers.contains { $0.value == "forged" || $0.value == "evil" || $0.value == "text/plain" })
        #expect(header(request, "Authorization") == ["Bearer abc"])
        #expect(header(request, "X-Team") == ["photo"])
    }

    @Test func onlySecretsEveryVerifierReadsAreAccepted() {
        #expect(Signature.weakness(of: Signature.generateSecret()) == nil)
        // Long and random, but Standard Webhooks libraries base64-decode what follows whsec_.
        #expect(Signature.weakness(of: "plain-" + Hex.encode(randomBytes(count: 32))) != nil)
        #expect(Signature.weakness(of: "whsec_not base64!") != nil)
        #expect(Signature.weakness(of: "whsec_" + Base64.encode(randomBytes(count: 16))) != nil)
        #expect(Signature.weakness(of: "whsec_" + Base64.encode([UInt8](repeating: 7, count: 40))) != nil)
    }

    @Test func rotationSignsWithBothSecretsWhereTheyFitAndThePreviousOneAloneElsewhere() {
        let old = "whsec_AAECAwQFBgcICQoLDA0ODw=="
        let during = WebhookRequest.make(
            event: event, endpoint: endpoint(previous: old, previousUntil: now.addingTimeInterval(60)), deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings())
        let entries = header(during, "webhook-signature").first?.split(separator: " ") ?? []
        #expect(entries.count == 2)
        #expect(entries.allSatisfy { $0.hasPrefix("v1,") })
        // X-Herald-Signature holds one: the previous secret's, which the receiver has until the rotation is confirmed.
        #expect(header(during, "X-Herald-Signature") == [Signature.herald(secret: old, timestamp: "2026-05-12T09:30:00Z", body: during.body)])
        let after = WebhookRequest.make(
            event: event, endpoint: endpoint(previous: old, previousUntil: now.addingTimeInterval(-1)), deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings())
        #expect(header(after, "webhook-signature").first?.split(separator: " ").count == 1)
        #expect(header(after, "X-Herald-Signature") == [Signature.herald(secret: endpoint().secret, timestamp: "2026-05-12T09:30:00Z", body: after.body)])
    }

    @Test func envelopeWrapsTheData() throws {
        let request = WebhookRequest.make(event: event, endpoint: endpoint(format: .envelope), deliveryID: deliveryID, requestID: requestID, now: now, settings: RequestSettings())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        #expect(object["id"] as? String == "evt_1")
        #expect(object["type"] as? String == "invoice.paid")
        #expect(object["timestamp"] as? String == "2026-05-12T09:30:00Z")
        #expect(object["tenant_id"] as? String == tenant.uuidString.lowercased())
        #expect((object["data"] as? [String: Any])?["total"] as? String == "1450.00")
    }
}

@Suite("Outcomes")
struct OutcomeTests {
    let now = Date(timeIntervalSince1970: 1_778_578_200)

    @Test(arguments: [
        (200, Outcome.Verdict.delivered), (201, .delivered), (204, .delivered), (299, .delivered),
        (301, .permanent), (302, .permanent), (308, .permanent),
        (400, .permanent), (401, .permanent), (403, .permanent), (404, .permanent), (422, .permanent),
        (408, .transient), (429, .transient), (410, .gone),
        (500, .transient), (502, .transient), (503, .transient), (504, .transient), (599, .transient),
    ])
    func statusCodes(_ status: Int, _ verdict: Outcome.Verdict) {
        #expect(Outcome.of(status: status, retryAfter: nil, now: now).verdict == verdict)
    }

    @Test func retryAfterOnlyOn429And503() {
        #expect(Outcome.of(status: 429, retryAfter: "120", now: now).retryAfter == .seconds(120))
        #expect(Outcome.of(status: 503, retryAfter: "Tue, 12 May 2026 09:35:00 GMT", now: now).retryAfter == .seconds(300))
        #expect(Outcome.of(status: 500, retryAfter: "120", now: now).retryAfter == nil)
        #expect(Outcome.of(status: 429, retryAfter: "soon", now: now).retryAfter == nil)
        #expect(Outcome.of(status: 429, retryAfter: "Tue, 12 May 2026 09:00:00 GMT", now: now).retryAfter == nil)
    }

    @Test(arguments: [
        (TransferError.Kind.timeout, Outcome.Verdict.transient, Outcome.ErrorClass.timeout), (.dns, .transient, .dns),
        (.connect, .transient, .connect), (.tls, .transient, .tls), (.network, .transient, .network), (.blocked, .permanent, .blocked),
        (.invalidRequest, .permanent, .http), (.tooLarge, .transient, .network), (.cancelled, .transient, .network),
    ])
    func transferErrors(_ kind: TransferError.Kind, _ verdict: Outcome.Verdict, _ errorClass: Outcome.ErrorClass) {
        let outcome = Outcome.of(TransferError(kind, message: "x"))
        #expect(outcome.verdict == verdict)
        #expect(outcome.errorClass == errorClass)
    }

    @Test func disableNeedsTheCountAndTheWindow() {
        let policy = DisablePolicy(threshold: 5, window: .seconds(3600))
        let first = now.addingTimeInterval(-7200)
        #expect(policy.shouldDisable(consecutiveFailures: 5, firstFailureAt: first, now: now))
        #expect(!policy.shouldDisable(consecutiveFailures: 4, firstFailureAt: first, now: now))
        #expect(!policy.shouldDisable(consecutiveFailures: 500, firstFailureAt: now.addingTimeInterval(-1), now: now))
        let pureCount = DisablePolicy(threshold: 5, window: .zero)
        #expect(pureCount.shouldDisable(consecutiveFailures: 5, firstFailureAt: now, now: now))
        #expect(!DisablePolicy(threshold: 0, window: .zero).shouldDisable(consecutiveFailures: 99, firstFailureAt: now, now: now))
    }
}

@Suite("Retry-After is input: no value of it traps")
struct RetryAfterTests {
    let now = Date(timeIntervalSince1970: 1_778_578_200)

    @Test(arguments: [
        ("120", Duration.seconds(120)), (" 0 ", .seconds(0)), ("9223372036854775807", Outcome.longestRetryAfter),
        ("99999999999999999999999", Outcome.longestRetryAfter), ("Tue, 12 May 2026 09:31:00 GMT", .seconds(60)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", Outcome.longestRetryAfter),
    ])
    func reads(_ header: String, _ expected: Duration) {
        #expect(Outcome.parseRetryAfter(header, now: now) == expected)
    }

    @Test(arguments: ["-1", "+5", "1e9", "", "soon", "Tue, 12 May 2026 09:29:00 GMT", "\u{0}"])
    func ignores(_ header: String) {
        #expect(Outcome.parseRetryAfter(header, now: now) == nil)
    }
}
