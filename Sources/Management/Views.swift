public import Foundation

/// What the API returns; snake_case on the wire.
public struct TenantView: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
}

public struct KeyView: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var createdAt: Date
    public var revokedAt: Date?
    /// Only when the key is created: it is not stored.
    public var key: String?
}

public struct EndpointView: Codable, Sendable, Equatable {
    public var id: String
    public var url: String
    public var description: String
    public var eventTypes: [String]
    public var filters: [String: [String]]
    public var headers: [String: String]
    public var payloadFormat: String
    public var enabled: Bool
    public var dpaConfirmedAt: Date?
    public var dpaConfirmedBy: String?
    public var disabledAt: Date?
    public var disabledReason: String?
    public var consecutiveFailures: Int
    public var createdAt: Date
    public var updatedAt: Date
    /// Only on creation, reveal and rotation.
    public var secret: String?
}

extension EndpointView {
    /// What a view shows for a header that holds a credential.
    public static let redactedValue = "[redacted]"

    /// Whether a custom header holds a credential (a receiver's `Authorization`, an API
    /// key, a token): its value is stored and sent, but never shown again through the API.
    public static func isSensitiveHeader(_ name: String) -> Bool {
        let name = name.lowercased()
        if ["authorization", "proxy-authorization", "cookie"].contains(name) { return true }
        return ["auth", "token", "secret", "password", "passwd", "key", "signature", "credential", "session"].contains {
            name.contains($0)
        }
    }

    /// `headers` as a view shows them.
    public static func redacting(_ headers: [String: String]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: headers.map { ($0.key, isSensitiveHeader($0.key) ? redactedValue : $0.value) })
    }
}

public struct SecretView: Codable, Sendable, Equatable {
    public var secret: String
    public var previousSecretExpiresAt: Date?
}

public struct DeliveryView: Codable, Sendable, Equatable {
    public var id: String
    public var endpointId: String
    public var eventId: String
    public var eventType: String
    public var status: String
    public var attempts: Int
    public var requestId: String
    public var lastStatusCode: Int?
    public var lastErrorClass: String?
    public var nextAttemptAt: Date?
    public var createdAt: Date
    public var deliveredAt: Date?
}

public struct AttemptView: Codable, Sendable, Equatable {
    public var attempt: Int
    public var trigger: String
    public var requestId: String
    public var startedAt: Date
    public var durationMs: Int
    public var statusCode: Int?
    public var responseExcerpt: String?
    public var errorClass: String?
    public var errorMessage: String?
}

public struct EventView: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var occurredAt: Date
    public var attributes: [String: String]
    /// The data object as sent, as JSON values; a view may show another key order or
    /// number form than the stored bytes, which are what a receiver gets.
    public var data: JSONValue
}

/// Any JSON value, for a view that shows stored JSON as JSON rather than as a string.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    /// As JSONSerialization read it (integers exact within 64 bits, fractions as doubles).
    case number(Decimal)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// From a value JSONSerialization produced; nil for anything else.
    public init?(_ value: Any) {
        switch value {
        case is NSNull: self = .null
        case let number as NSNumber:
            if String(cString: number.objCType) == "c" {
                self = .bool(number.boolValue)
            } else {
                self = .number(number.decimalValue)
            }
        case let text as String: self = .string(text)
        case let array as [Any]:
            var items: [JSONValue] = []
            for item in array {
                guard let value = JSONValue(item) else { return nil }
                items.append(value)
            }
            self = .array(items)
        case let object as [String: Any]:
            var members: [String: JSONValue] = [:]
            for (key, item) in object {
                guard let value = JSONValue(item) else { return nil }
                members[key] = value
            }
            self = .object(members)
        default: return nil
        }
    }

    /// Parses JSON text; an unparseable one becomes an empty object.
    public init(parsing text: String) {
        let parsed = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])).flatMap { JSONValue($0) }
        self = parsed ?? .object([:])
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Decimal.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

public struct DeliveryDetail: Codable, Sendable, Equatable {
    public var delivery: DeliveryView
    public var event: EventView
    public var attempts: [AttemptView]
}

public struct Page<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var items: [Item]
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    public var nextCursor: String?
}
