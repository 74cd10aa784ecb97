import Chronology
import Cryptography
public import Foundation

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

/// Position in a newest-first list: the last item's creation time and id, opaque to clients.
public struct Cursor: Sendable, Equatable {
    public var createdAt: Date
    public var id: UUID

    public init(createdAt: Date, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    public var token: String {
        let micros = Int64((createdAt.timeIntervalSince1970 * 1_000_000).rounded())
        return Base64.encode(Array("\(micros):\(id.uuidString.lowercased())".utf8))
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Nil for anything `token` did not write, including a time outside the years
    /// 0001 to 9999 (a forged cursor must not reach the timestamp writer).
    public init?(token: String) {
        guard token.utf8.count <= 200 else { return nil }
        var text = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let bytes = Base64.decode(text), let decoded = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = decoded.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else { return nil }
        let createdAt = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
        guard RFC3339.isRepresentable(createdAt) else { return nil }
        self.createdAt = createdAt
        self.id = id
    }
}
