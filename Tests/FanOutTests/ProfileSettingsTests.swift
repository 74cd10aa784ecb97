import FanOut
import Foundation
import HeraldSupport
import Testing

@Suite struct ProfileSettingsTests {
    func profile(_ json: String) throws(ParseFailure) -> SignatureProfile {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed) else {
            throw ParseFailure(field: nil, "not JSON")
        }
        return try SignatureProfile(reading: object, brand: "X-Herald")
    }

    @Test func everyProfileReadsAndShowsItself() throws {
        for (json, expected) in [
            (#"{"profile": "herald"}"#, SignatureProfile.herald), (#"{"profile": "standard-webhooks"}"#, .standardWebhooks),
            (#"{"profile": "github"}"#, .github), (#"{"profile": "stripe"}"#, .stripe), (#"{"profile": "none"}"#, .none),
            (#"{"profile": "timestamped-hmac", "header_prefix": "X-CreatorDesk"}"#, .timestampedHMAC(headerPrefix: "X-CreatorDesk")),
            (#"{"profile": "body-hmac", "header": "X-Webhook-Signature"}"#, .bodyHMAC(.init(header: "X-Webhook-Signature"))),
            (
                #"{"profile": "body-hmac", "header": "X-CF-Signature", "encoding": "base64", "value_prefix": "sha256=", "event_header": "X-CF-Event"}"#,
                .bodyHMAC(.init(header: "X-CF-Signature", encoding: .base64, valuePrefix: "sha256=", eventHeader: "X-CF-Event"))
            ),
        ] {
            let read = try profile(json)
            #expect(read == expected, "\(json)")
            // What is stored reads back as the same profile.
            let stored = try JSONSerialization.jsonObject(with: Data(ConfigValue.text(read.config).utf8))
            #expect(try SignatureProfile(reading: stored, brand: "X-Herald") == read)
        }
    }

    @Test func badSettingsAreRefusedNamingTheField() {
        for (json, message) in [
            (#"{}"#, "signature.profile: is required"),
            (#"{"profile": "hmac"}"#, "signature.profile: must be one of herald, standard-webhooks, body-hmac, timestamped-hmac, github, stripe, none"),
            (#"{"profile": "github", "header": "X"}"#, "signature.header: is not a known field"),
            (#"{"profile": "body-hmac"}"#, "signature.header: is required"),
            (#"{"profile": "body-hmac", "header": "X Sig"}"#, "signature.header: 'X Sig' is not a header name (letters, digits and !#$%&'*+-.^_`|~)"),
            (#"{"profile": "body-hmac", "header": "Content-Type"}"#, "signature.header: 'Content-Type' is a header Herald sets itself"),
            (#"{"profile": "body-hmac", "header": "x-herald-signature"}"#, "signature.header: 'x-herald-signature' is a header Herald sets itself"),
            (#"{"profile": "body-hmac", "header": "Webhook-Signature"}"#, "signature.header: 'Webhook-Signature' is a header Herald sets itself"),
            (#"{"profile": "body-hmac", "header": "X-Sig", "encoding": "hexa"}"#, "signature.encoding: must be hex or base64"),
            (#"{"profile": "body-hmac", "header": "X-Sig", "value_prefix": "sha 256="}"#, "signature.value_prefix: must be visible ASCII characters without spaces or commas, such as sha256="),
            (#"{"profile": "body-hmac", "header": "X-Sig", "event_header": "x-sig"}"#, "signature.event_header: must differ from the signature's header"),
            (#"{"profile": "timestamped-hmac"}"#, "signature.header_prefix: is required: a header name prefix such as X-CreatorDesk (no trailing -)"),
            (#"{"profile": "timestamped-hmac", "header_prefix": "X-CD-"}"#, "signature.header_prefix: is required: a header name prefix such as X-CreatorDesk (no trailing -)"),
            (#"{"profile": "timestamped-hmac", "header_prefix": "Webhook"}"#, "signature.header_prefix: 'Webhook' would collide with the headers of another scheme"),
            (#""github""#, "signature: must be a JSON object"),
        ] {
            #expect(throws: (any Error).self, "\(json)") { try profile(json) }
            do { _ = try profile(json) } catch { #expect(error.description == message, "\(json)") }
        }
    }

    @Test func reservedHeadersFollowTheProfile() {
        let github = SignatureProfile.github
        for name in ["x-hub-signature-256", "X-GitHub-Delivery", "X-Herald-Anything", "webhook-x", "Host"] {
            #expect(github.reserves(name, brand: "X-Herald"), "\(name)")
        }
        #expect(!github.reserves("X-Team", brand: "X-Herald"))
        #expect(!SignatureProfile.herald.reserves("X-Hub-Signature-256", brand: "X-Herald"))
        #expect(SignatureProfile.timestampedHMAC(headerPrefix: "X-CD").reserves("x-cd-team", brand: "X-Herald"))
        #expect(SignatureProfile.bodyHMAC(.init(header: "X-Sig", eventHeader: "X-Evt")).reserves("x-evt", brand: "X-Herald"))
    }

    @Test func envelopeFieldsRenameAndStayDistinct() throws {
        let fields = try EnvelopeFields(reading: ["type": "event_type", "tenant": "workspace"])
        #expect(fields.type == "event_type" && fields.tenant == "workspace" && fields.id == "id" && fields.data == "data")
        #expect(fields.config == ["type": .string("event_type"), "tenant": .string("workspace")])
        #expect(throws: ParseFailure(field: "payload_fields", "the five keys must differ from one another")) {
            try EnvelopeFields(reading: ["type": "id"])
        }
        #expect(throws: ParseFailure(field: "payload_fields.kind", "is not a known field")) { try EnvelopeFields(reading: ["kind": "x"]) }
        #expect(throws: ParseFailure(field: "payload_fields.id", "must be 1 to 64 characters without control characters")) {
            try EnvelopeFields(reading: ["id": ""])
        }
    }

    @Test func signingSecretsDuringARotation() {
        let now = Date()
        var endpoint = Endpoint(id: UUID(), tenantID: UUID(), url: "https://x", eventTypes: ["*"], secret: "new")
        #expect(endpoint.signingSecrets(at: now) == ("new", ["new"]))
        endpoint.previousSecret = "old"
        endpoint.previousSecretExpiresAt = now.addingTimeInterval(10)
        #expect(endpoint.signingSecrets(at: now) == ("old", ["new", "old"]))
        #expect(endpoint.signingSecrets(at: now.addingTimeInterval(10)) == ("new", ["new"]))
    }
}
