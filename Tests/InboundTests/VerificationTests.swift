import HeraldSupport
import Cryptography
import Delivery
import Foundation
import Testing

@testable import Inbound

/// Each method with a request signed the way its sender documents it, a forged one, and
/// the timestamp tolerance where the method has one.
@Suite struct VerificationTests {
    let body = Array(#"{"id":"evt_1","type":"invoice.paid"}"#.utf8)
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func request(_ headers: [(String, String)], query: [(String, String)] = [], body: [UInt8]? = nil) -> InboundRequest {
        InboundRequest(headers: headers.map { (name: $0.0, value: $0.1) }, query: query.map { (name: $0.0, value: $0.1) }, body: body ?? self.body)
    }

    func hmacHex(_ message: [UInt8], key: [UInt8]? = nil) -> String { Hex.encode(SHA256.hmac(key: key ?? Array(secret.utf8), message: message)) }

    @Test func noneAcceptsAnything() {
        #expect(Verification.none.failure(of: request([]), secret: "", now: now) == nil)
    }

    @Test func headerTokenWithPrefixAndQueryToken() {
        let bearer = Verification.headerToken(header: "Authorization", prefix: "Bearer ")
        #expect(bearer.failure(of: request([("authorization", "Bearer s3cret")]), secret: "s3cret", now: now) == nil)
        #expect(bearer.failure(of: request([("Authorization", "Bearer s3cre")]), secret: "s3cret", now: now) == "the token in Authorization is wrong")
        #expect(bearer.failure(of: request([("Authorization", "s3cret")]), secret: "s3cret", now: now)?.contains("does not start with") == true)
        #expect(bearer.failure(of: request([]), secret: "s3cret", now: now) == "the Authorization header is missing")
        let query = Verification.queryToken(parameter: "token")
        #expect(query.failure(of: request([], query: [("token", "s3cret")]), secret: "s3cret", now: now) == nil)
        #expect(query.failure(of: request([], query: [("token", "nope")]), secret: "s3cret", now: now) != nil)
        #expect(query.failure(of: request([]), secret: "s3cret", now: now) == "the query parameter token is missing")
    }

    @Test func basic() {
        let basic = Verification.basic(username: "creatio")
        let good = "Basic " + Base64.encode(Array("creatio:pa:ss".utf8))
        #expect(basic.failure(of: request([("Authorization", good)]), secret: "pa:ss", now: now) == nil)
        let wrongUser = "Basic " + Base64.encode(Array("other:pa:ss".utf8))
        #expect(basic.failure(of: request([("Authorization", wrongUser)]), secret: "pa:ss", now: now) == "the Basic credentials are wrong")
        #expect(basic.failure(of: request([("Authorization", "Basic !!")]), secret: "pa:ss", now: now) != nil)
    }

    @Test func genericHMACOverBodyHexAndBase64() {
        let hex = Verification.hmac(header: "X-Signature", prefix: "sha256=", encoding: .hex, signed: .body)
        #expect(hex.failure(of: request([("X-Signature", "sha256=" + hmacHex(body))]), secret: secret, now: now) == nil)
        #expect(hex.failure(of: request([("X-Signature", "sha256=" + hmacHex(body).uppercased())]), secret: secret, now: now) == nil)
        #expect(hex.failure(of: request([("X-Signature", "sha256=" + hmacHex(body))], body: body + [0x20]), secret: secret, now: now) != nil)
        let base64 = Verification.hmac(header: "X-Sig", prefix: "", encoding: .base64, signed: .body)
        let signature = Base64.encode(SHA256.hmac(key: Array(secret.utf8), message: body))
        #expect(base64.failure(of: request([("X-Sig", signature)]), secret: secret, now: now) == nil)
        #expect(base64.failure(of: request([("X-Sig", signature)]), secret: secret + "x", now: now) == "the signature in X-Sig does not match the body")
    }

    @Test func timestampedHMACChecksTheTolerance() {
        let scheme = Verification.hmac(header: "X-Sig", prefix: "", encoding: .hex, signed: .timestampedBody(header: "X-Time", tolerance: 300))
        let stamp = "1700000000"
        let signature = hmacHex(Array("\(stamp).".utf8) + body)
        #expect(scheme.failure(of: request([("X-Sig", signature), ("X-Time", stamp)]), secret: secret, now: now) == nil)
        #expect(scheme.failure(of: request([("X-Sig", signature), ("X-Time", stamp)]), secret: secret, now: now + 301)?.contains("301 s old") == true)
        let iso = "2023-11-14T22:13:20Z"
        let isoSignature = hmacHex(Array("\(iso).".utf8) + body)
        #expect(scheme.failure(of: request([("X-Sig", isoSignature), ("X-Time", iso)]), secret: secret, now: now) == nil)
        #expect(scheme.failure(of: request([("X-Sig", signature)]), secret: secret, now: now) == "the X-Time header is missing")
    }

    @Test func github() {
        // GitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(secret, payload).
        let good = "sha256=" + hmacHex(body)
        #expect(Verification.github.failure(of: request([("X-Hub-Signature-256", good)]), secret: secret, now: now) == nil)
        #expect(Verification.github.failure(of: request([("X-Hub-Signature-256", good)], body: Array("{}".utf8)), secret: secret, now: now) != nil)
        #expect(Verification.github.failure(of: request([("X-Hub-Signature", "sha1=00")]), secret: secret, now: now) == "the X-Hub-Signature-256 header is missing")
    }

    @Test func shopify() {
        // Shopify: X-Shopify-Hmac-Sha256 = base64 HMAC-SHA256(secret, raw body).
        let good = Base64.encode(SHA256.hmac(key: Array(secret.utf8), message: body))
        #expect(Verification.shopify.failure(of: request([("X-Shopify-Hmac-Sha256", good)]), secret: secret, now: now) == nil)
        #expect(Verification.shopify.failure(of: request([("X-Shopify-Hmac-Sha256", good)]), secret: "other", now: now) != nil)
    }

    @Test func stripeWithSeveralSignaturesAndTolerance() {
        // Stripe: Stripe-Signature: t=<ts>,v1=<hex HMAC(secret, "<ts>.<payload>")>, maybe v0 and several v1.
        let stamp = "1700000000"
        let good = hmacHex(Array("\(stamp).".utf8) + body)
        let header = "t=\(stamp),v1=\(String(repeating: "0", count: 64)),v1=\(good),v0=abc"
        let stripe = Verification.stripe(tolerance: 300)
        #expect(stripe.failure(of: request([("Stripe-Signature", header)]), secret: secret, now: now) == nil)
        #expect(stripe.failure(of: request([("Stripe-Signature", header)]), secret: secret, now: now + 400)?.contains("400 s old") == true)
        #expect(stripe.failure(of: request([("Stripe-Signature", "t=\(stamp),v1=\(String(repeating: "0", count: 64))")]), secret: secret, now: now)
            == "no v1 signature in Stripe-Signature matches the body")
        #expect(stripe.failure(of: request([("Stripe-Signature", "v1=\(good)")]), secret: secret, now: now) == "the Stripe-Signature header has no t=<seconds>")
    }

    @Test func standardWebhooksKeysWithTheDecodedSecret() {
        let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        let stamp = "1700000000"
        let key = Base64.decode(secret.dropFirst(6))!
        let good = "v1," + Base64.encode(SHA256.hmac(key: key, message: Array("\(id).\(stamp).".utf8) + body))
        let scheme = Verification.standardWebhooks(tolerance: 300)
        let headers = [("webhook-id", id), ("webhook-timestamp", stamp), ("webhook-signature", "v1,Zm9v \(good)")]
        #expect(scheme.failure(of: request(headers), secret: secret, now: now) == nil)
        #expect(scheme.failure(of: request(headers), secret: secret, now: now - 301)?.contains("ahead") == true)
        // Keyed with the secret's text instead of its decoded bytes: refused.
        let wrongKey = "v1," + Base64.encode(SHA256.hmac(key: Array(secret.utf8), message: Array("\(id).\(stamp).".utf8) + body))
        #expect(scheme.failure(of: request([("webhook-id", id), ("webhook-timestamp", stamp), ("webhook-signature", wrongKey)]), secret: secret, now: now) != nil)
        // Herald's own signer produces what the verifier accepts.
        let herald = Signature.standard(secret: secret, id: id, seconds: 1_700_000_000, body: body)
        #expect(scheme.failure(of: request([("webhook-id", id), ("webhook-timestamp", stamp), ("webhook-signature", herald)]), secret: secret, now: now) == nil)
    }

    @Test func heraldVerifiesAnotherHeraldsSignature() {
        let timestamp = "2023-11-14T22:13:20Z"
        let signature = Signature.herald(secret: secret, timestamp: timestamp, body: body)
        let scheme = Verification.herald(prefix: "X-Herald", tolerance: 300)
        #expect(scheme.failure(of: request([("X-Herald-Signature", signature), ("X-Herald-Timestamp", timestamp)]), secret: secret, now: now) == nil)
        #expect(scheme.failure(of: request([("X-Herald-Signature", signature), ("X-Herald-Timestamp", "2023-11-14T22:13:21Z")]), secret: secret, now: now)
            == "the signature in X-Herald-Signature does not match the body")
        let other = Verification.herald(prefix: "X-Acme", tolerance: 300)
        #expect(other.failure(of: request([("X-Acme-Signature", signature), ("X-Acme-Timestamp", timestamp)]), secret: secret, now: now) == nil)
    }

    @Test func configurationRoundTripsAndNamesBadFields() throws {
        let schemes: [Verification] = [
            .none, .headerToken(header: "X-Token", prefix: ""), .queryToken(parameter: "key"), .basic(username: "u"),
            .hmac(header: "X-Sig", prefix: "sha256=", encoding: .base64, signed: .timestampedBody(header: "X-Time", tolerance: 60)),
            .standardWebhooks(tolerance: 300), .github, .stripe(tolerance: 120), .shopify, .herald(prefix: "X-Acme", tolerance: 300),
        ]
        for scheme in schemes {
            let text = ConfigValue.text(scheme.config)
            #expect(try Verification(object: ConfigValue.object(text)!) == scheme, "\(text)")
        }
        #expect(throws: ParseFailure(field: "verification.method", "must be one of none, token, basic, hmac, standard-webhooks, github, stripe, shopify, herald")) {
            try Verification(object: ["method": "md5"])
        }
        #expect(throws: ParseFailure(field: "verification.header", "'X Sig' is not a header name (letters, digits and !#$%&'*+-.^_`|~)")) {
            try Verification(object: ["method": "hmac", "header": "X Sig"])
        }
        #expect(throws: ParseFailure(field: "verification.colour", "is not a known field")) {
            try Verification(object: ["method": "github", "colour": "red"])
        }
        #expect(throws: ParseFailure(field: "verification.timestamp_header", "is required when signed is timestamp.body")) {
            try Verification(object: ["method": "hmac", "signed": "timestamp.body"])
        }
    }

    @Test func extremeTimestampsAreStaleNotACrash() {
        let extreme = ["-9223372036854775808", "9223372036854775807"]
        for stamp in extreme {
            let stripe = Verification.stripe(tolerance: 300)
            #expect(stripe.failure(of: request([("Stripe-Signature", "t=\(stamp),v1=00")]), secret: secret, now: now)?.contains("more than 30 years") == true)
            let standard = Verification.standardWebhooks(tolerance: 300)
            let headers = [("webhook-id", "msg_1"), ("webhook-timestamp", stamp), ("webhook-signature", "v1,AAAA")]
            #expect(standard.failure(of: request(headers), secret: secret, now: now)?.contains("more than 30 years") == true)
            let hmac = Verification.hmac(header: "X-Sig", prefix: "", encoding: .hex, signed: .timestampedBody(header: "X-Time", tolerance: 300))
            #expect(hmac.failure(of: request([("X-Sig", "00"), ("X-Time", stamp)]), secret: secret, now: now)?.contains("more than 30 years") == true)
        }
    }
}
