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
        let id = deliveryID.lowercasedText
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        let timestamp = RFC3339.format(now)
        let standard: [(name: String, value: String)] = [
            ("webhook-id", id), ("webhook-timestamp", String(seconds)),
            ("webhook-signature", secrets.all.map { Self.standard(secret: $0, id: id, seconds: seconds, body: body) }.joined(separator: " ")),
        ]
        switch profile {
        case .herald:
            return [("\(brand)-Timestamp", timestamp), ("\(brand)-Signature", herald(secret: secrets.single, timestamp: timestamp, body: body))]
                + standard
        case .standardWebhooks:
            return standard
        case .timestampedHMAC(let prefix):
            return [("\(prefix)-Timestamp", timestamp), ("\(prefix)-Signature", herald(secret: secrets.single, timestamp: timestamp, body: body))]
        case .bodyHMAC(let hmac):
            let digest = SHA256.hmac(key: secrets.single.utf8, message: body)
            let encoded = hmac.encoding == .hex ? Hex.encode(digest) : Base64.encode(digest)
            return [(hmac.header, hmac.valuePrefix + encoded)] + (hmac.eventHeader.map { [($0, event)] } ?? [])
        case .github:
            let digest = SHA256.hmac(key: secrets.single.utf8, message: body)
            return [("X-Hub-Signature-256", "sha256=" + Hex.encode(digest)), ("X-GitHub-Event", event), ("X-GitHub-Delivery", id)]
        case .stripe:
            let entries = secrets.all.map { "v1=" + Hex.encode(SHA256.hmac(key: $0.utf8, prefix: "\(seconds).".utf8, message: body)) }
            return [("Stripe-Signature", (["t=\(seconds)"] + entries).joined(separator: ","))]
        case .none:
            return []
        }
    }

    /// `sha256=` and the hex HMAC of `"{timestamp}.{body}"`.
    public static func herald(secret: String, timestamp: String, body: [UInt8]) -> String {
        "sha256=" + Hex.encode(SHA256.hmac(key: secret.utf8, prefix: "\(timestamp).".utf8, message: body))
    }

    /// `v1,` and the base64 HMAC of `"{id}.{seconds}.{body}"`.
    public static func standard(secret: String, id: String, seconds: Int64, body: [UInt8]) -> String {
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
