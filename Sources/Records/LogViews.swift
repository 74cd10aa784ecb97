import HeraldSupport
import Cryptography
public import Foundation

// The delivery log as the API shows it; snake_case on the wire.

public struct DeliveryView: Codable, Sendable, Equatable {
    public var id: String
    public var endpointId: String
    public var eventId: String
    public var eventType: String
    public var status: DeliveryState.Status
    public var attempts: Int
    public var requestId: String
    public var lastStatusCode: Int?
    public var lastErrorClass: String?
    public var nextAttemptAt: Date?
    public var createdAt: Date
    public var deliveredAt: Date?

    package init(id: String, endpointId: String, eventId: String, eventType: String, status: DeliveryState.Status, attempts: Int, requestId: String, lastStatusCode: Int? = nil, lastErrorClass: String? = nil, nextAttemptAt: Date? = nil, createdAt: Date, deliveredAt: Date? = nil) {
        self.id = id
        self.endpointId = endpointId
        self.eventId = eventId
        self.eventType = eventType
        self.status = status
        self.attempts = attempts
        self.requestId = requestId
        self.lastStatusCode = lastStatusCode
        self.lastErrorClass = lastErrorClass
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
        self.deliveredAt = deliveredAt
    }
}

public struct AttemptView: Codable, Sendable, Equatable {
    public var attempt: Int
    public var trigger: DeliveryState.Trigger
    public var requestId: String
    public var startedAt: Date
    public var durationMs: Int
    public var statusCode: Int?
    public var responseExcerpt: String?
    public var errorClass: String?
    public var errorMessage: String?

    package init(attempt: Int, trigger: DeliveryState.Trigger, requestId: String, startedAt: Date, durationMs: Int, statusCode: Int? = nil, responseExcerpt: String? = nil, errorClass: String? = nil, errorMessage: String? = nil) {
        self.attempt = attempt
        self.trigger = trigger
        self.requestId = requestId
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.statusCode = statusCode
        self.responseExcerpt = responseExcerpt
        self.errorClass = errorClass
        self.errorMessage = errorMessage
    }
}

public struct EventView: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var occurredAt: Date
    public var attributes: [String: String]
    /// The data object as sent, as JSON values; a view may show another key order or
    /// number form than the stored bytes, which are what a receiver gets.
    public var data: JSONValue

    package init(id: String, type: String, occurredAt: Date, attributes: [String: String], data: JSONValue) {
        self.id = id
        self.type = type
        self.occurredAt = occurredAt
        self.attributes = attributes
        self.data = data
    }
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

    package init(delivery: DeliveryView, event: EventView, attempts: [AttemptView]) {
        self.delivery = delivery
        self.event = event
        self.attempts = attempts
    }
}

public struct Page<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var items: [Item]
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    public var nextCursor: String?

    package init(items: [Item], nextCursor: String? = nil) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// Filters of the delivery log.
public struct DeliveryFilter: Sendable, Equatable {
    public var endpoint: UUID?
    public var status: DeliveryState.Status?
    public var eventType: String?
    /// The producer's id of the event: its deliveries only.
    public var eventId: String?
    public var since: Date?
    public var until: Date?
    public var cursor: Cursor?
    public var limit: Int

    public init(
        endpoint: UUID? = nil, status: DeliveryState.Status? = nil, eventType: String? = nil, eventId: String? = nil, since: Date? = nil,
        until: Date? = nil, cursor: Cursor? = nil, limit: Int = 50
    ) {
        self.endpoint = endpoint
        self.status = status
        self.eventType = eventType
        self.eventId = eventId
        self.since = since
        self.until = until
        self.cursor = cursor
        self.limit = limit
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
        return Base64.encode(Array("\(micros):\(id.lowercasedText)".utf8))
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
        guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(text: String(parts[1])) else { return nil }
        let createdAt = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
        guard RFC3339.isRepresentable(createdAt) else { return nil }
        self.createdAt = createdAt
        self.id = id
    }
}
