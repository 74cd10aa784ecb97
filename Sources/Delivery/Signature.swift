import Cryptography
public import FanOut
public import Foundation
import HeraldSupport

/// The signatures of a delivery, by its endpoint's profile.
///
/// - `X-Herald-Signature: sha256=<hex>` (and `timestamped-hmac`'s `{prefix}-Signature`):
///   HMAC-SHA256 of `"{timestamp}.{body}"`, where the timestamp is the `…-Timestamp` header
///   (ISO 8601) and the key is the secret string exactly as shown to the tenant, as UTF-8:
///   what the reference snippets feed to HMAC.
/// - `webhook-signature: v1,<base64>` (Standard Webhooks): HMAC-SHA256 of
///   `"{webhook-id}.{unix seconds}.{body}"`, keyed with the bytes base64-encoded after
///   `whsec_`. During a secret rotation one `v1,` entry per valid secret, space-separated.
/// - `body-hmac`, `github`: the HMAC of the raw body keyed with the secret string;
///   `stripe`: `t={seconds},v1=<hex of "{t}.{body}">`, one `v1` per valid secret.
public enum Signature {
    /// The signature headers of `profile`. `secrets.single` signs a header with room for one
    /// signature, `secrets.all` one with an entry per valid secret (see `Endpoint.signingSecrets`).
    public static func headers(
        _ profile: SignatureProfile, secrets: (single: String, all: [String]), event: String, deliveryID: UUID, now: Date, body: [UInt8],
        brand: String
    ) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        append(
            profile, secrets: secrets, event: event, deliveryID: deliveryID, now: now, body: body[...],
            names: PrefixedHeaderNames(prefix: profile.headerPrefix(brand: brand)), to: &headers)
        return headers
    }

    /// The signature headers of `profile` appended to `headers`, which the request's other
    /// headers share; `names` are the profile's prefixed header names.
    static func append(
        _ profile: SignatureProfile, secrets: (single: String, all: [String]), event: String, deliveryID: UUID, now: Date,
        body: ArraySlice<UInt8>, names: PrefixedHeaderNames, to headers: inout [(name: String, value: String)]
    ) {
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        switch profile {
        case .herald:
            appendTimestamped(secret: secrets.single, now: now, body: body, names: names, to: &headers)
            appendStandard(secrets: secrets.all, id: deliveryID.lowercasedText, seconds: seconds, body: body, to: &headers)
        case .standardWebhooks:
            appendStandard(secrets: secrets.all, id: deliveryID.lowercasedText, seconds: seconds, body: body, to: &headers)
        case .timestampedHMAC:
            appendTimestamped(secret: secrets.single, now: now, body: body, names: names, to: &headers)
        case .bodyHMAC(let hmac):
            let digest = SHA256.hmac(key: secrets.single.utf8, message: body)
            let encoded = hmac.encoding == .hex ? Hex.encode(digest) : Base64.encode(digest)
            headers.append((hmac.header, hmac.valuePrefix + encoded))
            if let eventHeader = hmac.eventHeader { headers.append((eventHeader, event)) }
        case .github:
            let digest = SHA256.hmac(key: secrets.single.utf8, message: body)
            headers.append(("X-Hub-Signature-256", "sha256=" + Hex.encode(digest)))
            headers.append(("X-GitHub-Event", event))
            headers.append(("X-GitHub-Delivery", deliveryID.lowercasedText))
        case .stripe:
            let entries = secrets.all.map { "v1=" + Hex.encode(SHA256.hmac(key: $0.utf8, prefix: "\(seconds).".utf8, message: body)) }
            headers.append(("Stripe-Signature", (["t=\(seconds)"] + entries).joined(separator: ",")))
        case .none:
            break
        }
    }

    /// `{prefix}-Timestamp` and `{prefix}-Signature`.
    private static func appendTimestamped(
        secret: String, now: Date, body: ArraySlice<UInt8>, names: PrefixedHeaderNames, to headers: inout [(name: String, value: String)]
    ) {
        let timestamp = RFC3339.format(now)
        headers.append((names.timestamp, timestamp))
        headers.append((names.signature, herald(secret: secret, timestamp: timestamp, body: body)))
    }

    /// `webhook-id`, `webhook-timestamp` and `webhook-signature`.
    private static func appendStandard(
        secrets: [String], id: String, seconds: Int64, body: ArraySlice<UInt8>, to headers: inout [(name: String, value: String)]
    ) {
        headers.append(("webhook-id", id))
        headers.append(("webhook-timestamp", String(seconds)))
        let signatures =
            secrets.count == 1
            ? standard(secret: secrets[0], id: id, seconds: seconds, body: body)
            : secrets.map { standard(secret: $0, id: id, seconds: seconds, body: body) }.joined(separator: " ")
        headers.append(("webhook-signature", signatures))
    }

    /// `sha256=` and the hex HMAC of `"{timestamp}.{body}"`.
    public static func herald(secret: String, timestamp: String, body: [UInt8]) -> String {
        herald(secret: secret, timestamp: timestamp, body: body[...])
    }

    static func herald(secret: String, timestamp: String, body: ArraySlice<UInt8>) -> String {
        "sha256=" + Hex.encode(SHA256.hmac(key: secret.utf8, prefix: "\(timestamp).".utf8, message: body))
    }

    /// `v1,` and the base64 HMAC of `"{id}.{seconds}.{body}"`.
    public static func standard(secret: String, id: String, seconds: Int64, body: [UInt8]) -> String {
        standard(secret: secret, id: id, seconds: seconds, body: body[...])
    }

    static func standard(secret: String, id: String, seconds: Int64, body: ArraySlice<UInt8>) -> String {
        "v1," + Base64.encode(SHA256.hmac(key: standardKey(secret), prefix: "\(id).\(seconds).".utf8, message: body))
    }

    /// The key of a `whsec_…` secret is its base64-decoded bytes; another secret is used as UTF-8.
    public static func standardKey(_ secret: String) -> [UInt8] {
        if secret.hasPrefix("whsec_"), let key = Base64.decode(secret.dropFirst(6)), !key.isEmpty {
            return key
        }
        return Array(secret.utf8)
    }

    /// Why a secret a tenant chose cannot sign, or nil. It must be `whsec_` and base64:
    /// the Standard Webhooks libraries (and the shipped snippets) key with the decoded
    /// bytes, so any other form would make `webhook-signature` unverifiable. Its key must be
    /// at least 32 bytes, as many as a generated one has, and not a repetition of a few bytes.
    public static func weakness(of secret: String) -> String? {
        guard secret.hasPrefix("whsec_"), let key = Base64.decode(secret.dropFirst(6)), !key.isEmpty else {
            return "must be whsec_ and the base64 of 32 random bytes, the form every webhook-signature verifier reads"
        }
        guard key.count >= 32 else {
            return "must hold at least 32 bytes of key material (whsec_ and the base64 of 32 random bytes); it has \(key.count)"
        }
        guard Set(key).count >= 16 else { return "repeats too few distinct characters to be a secret" }
        return nil
    }

    /// A new secret: `whsec_` and 32 random bytes in base64.
    public static func generateSecret() -> String {
        "whsec_" + Base64.encode(randomBytes(count: 32))
    }
}
