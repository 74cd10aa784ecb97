import Cryptography
import Foundation

/// The two signatures every delivery carries.
///
/// - `X-Herald-Signature: sha256=<hex>`: HMAC-SHA256 of `"{timestamp}.{body}"`, where the
///   timestamp is the `X-Herald-Timestamp` header (ISO 8601) and the key is the secret
///   string exactly as shown to the tenant, as UTF-8: what the reference snippets feed to HMAC.
/// - `webhook-signature: v1,<base64>` (Standard Webhooks): HMAC-SHA256 of
///   `"{webhook-id}.{unix seconds}.{body}"`, keyed with the bytes base64-encoded after
///   `whsec_`. During a secret rotation one `v1,` entry per valid secret, space-separated.
public enum Signature {
    /// `sha256=` and the hex HMAC of `"{timestamp}.{body}"`.
    public static func herald(secret: String, timestamp: String, body: [UInt8]) -> String {
        let message = Array(timestamp.utf8) + [UInt8(ascii: ".")] + body
        return "sha256=" + Hex.encode(SHA256.hmac(key: Array(secret.utf8), message: message))
    }

    /// `v1,` and the base64 HMAC of `"{id}.{seconds}.{body}"`.
    public static func standard(secret: String, id: String, seconds: Int64, body: [UInt8]) -> String {
        let message = Array("\(id).\(seconds).".utf8) + body
        return "v1," + Base64.encode(SHA256.hmac(key: standardKey(secret), message: message))
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
