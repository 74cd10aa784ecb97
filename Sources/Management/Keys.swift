import Cryptography
import Foundation

/// Tenant API keys: `hk_` and 64 hex digits of randomness, stored only as a SHA-256 hash
/// (a key with this much entropy needs no slow hash).
public enum APIKey {
    public static func generate() -> String {
        "hk_" + Hex.encode(randomBytes(count: 32))
    }

    public static func hash(_ key: String) -> String {
        Hex.encode(SHA256.hash(Array(key.utf8)))
    }

    /// Constant-time comparison of an operator token.
    public static func matches(_ presented: String, _ expected: String) -> Bool {
        constantTimeEquals(SHA256.hash(Array(presented.utf8)), SHA256.hash(Array(expected.utf8)))
    }
}
