/// A value in an AMQP field table: message headers and declare arguments.
public indirect enum FieldValue: Sendable, Hashable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case timestamp(UInt64)
    case array([FieldValue])
    case table([String: FieldValue])
    case void
}

public typealias FieldTable = [String: FieldValue]

extension FieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    public var string: String? {
        if case .string(let value) = self { return value }
        if case .bytes(let value) = self { return String(validating: value, as: UTF8.self) }
        return nil
    }

    public var int: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }
}

/// A message to publish. Persistent by default: Herald never trades durability for speed.
public struct Message: Sendable {
    public var body: [UInt8]
    public var headers: FieldTable
    public var contentType: String?
    public var messageID: String?
    public var correlationID: String?
    public var type: String?
    /// Seconds since 1970.
    public var timestamp: UInt64?
    /// Per-message TTL in milliseconds (as the broker's `expiration` string).
    public var expiration: String?
    public var persistent: Bool

    public init(
        body: [UInt8], headers: FieldTable = [:], contentType: String? = "application/json",
        messageID: String? = nil, correlationID: String? = nil, type: String? = nil, timestamp: UInt64? = nil,
        expiration: String? = nil, persistent: Bool = true
    ) {
        self.body = body
        self.headers = headers
        self.contentType = contentType
        self.messageID = messageID
        self.correlationID = correlationID
        self.type = type
        self.timestamp = timestamp
        self.expiration = expiration
        self.persistent = persistent
    }
}

extension Message {
    /// Why the protocol cannot carry this message, or nil: AMQP 0-9-1 sends the
    /// properties as short strings (at most 255 bytes) and header names as at most 128.
    /// Checked before the message reaches the connection, so that one bad message fails
    /// alone and never breaks the connection that other callers share.
    func protocolViolation(exchange: String, routingKey: String) -> String? {
        let shortStrings: [(String, String?)] = [
            ("exchange", exchange), ("routing key", routingKey), ("content type", contentType), ("message id", messageID),
            ("correlation id", correlationID), ("type", type), ("expiration", expiration),
        ]
        for (name, value) in shortStrings {
            if let value, value.utf8.count > 255 { return "the \(name) is \(value.utf8.count) bytes; AMQP allows 255" }
        }
        if let long = headers.keys.first(where: { $0.utf8.count > 128 }) {
            return "a header name is \(long.utf8.count) bytes; AMQP allows 128"
        }
        return nil
    }
}

/// A message the broker delivered to a consumer; acknowledge it by `deliveryTag`
/// on the channel it came from.
public struct Delivery: Sendable {
    public var message: Message
    public var deliveryTag: UInt64
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var consumerTag: String
    /// The body's size as the broker declared it. Larger than `message.body.count` when
    /// the body was over the consumer's `maxBodyBytes`: then only its start was kept.
    public var bodySize: Int

    package init(
        message: Message, deliveryTag: UInt64 = 1, redelivered: Bool = false, exchange: String = "", routingKey: String,
        consumerTag: String = "", bodySize: Int? = nil
    ) {
        self.message = message
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.consumerTag = consumerTag
        self.bodySize = bodySize ?? message.body.count
    }

    /// Whether the body was over the consumer's limit and is only an excerpt.
    public var isTruncated: Bool { bodySize > message.body.count }
}

/// A queue's state as the broker reported it on declare.
public struct QueueInfo: Sendable, Equatable {
    public var name: String
    public var messageCount: UInt32
    public var consumerCount: UInt32
}

public enum ExchangeType: String, Sendable {
    case direct, fanout, topic, headers
}
