/// A value in an AMQP field table: message headers and declare arguments.
package indirect enum FieldValue: Sendable, Hashable {
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

package typealias FieldTable = [String: FieldValue]

extension FieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    package init(stringLiteral value: String) { self = .string(value) }
    package init(integerLiteral value: Int64) { self = .int(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }

    package var string: String? {
        if case .string(let value) = self { return value }
        if case .bytes(let value) = self { return String(validating: value, as: UTF8.self) }
        return nil
    }

    package var int: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }
}

/// A message to publish. Persistent by default: Herald never trades durability for speed.
package struct Message: Sendable {
    package var body: [UInt8]
    package var headers: FieldTable
    package var contentType: String?
    package var messageID: String?
    package var correlationID: String?
    package var type: String?
    /// Seconds since 1970.
    package var timestamp: UInt64?
    /// Per-message TTL in milliseconds (as the broker's `expiration` string).
    package var expiration: String?
    package var persistent: Bool

    package init(
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
package struct Delivery: Sendable {
    package var message: Message
    package var deliveryTag: UInt64
    package var redelivered: Bool
    package var exchange: String
    package var routingKey: String
    package var consumerTag: String
    /// The body's size as the broker declared it. Larger than `message.body.count` when
    /// the body was over the consumer's `maxBodyBytes`: then only its start was kept.
    package var bodySize: Int

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
    package var isTruncated: Bool { bodySize > message.body.count }

    /// How many times the message went back to its queue unacknowledged (a quorum queue's
    /// `x-delivery-count`; 0 from other queues).
    package var returns: Int {
        message.headers["x-delivery-count"]?.int.map { Int(clamping: $0) } ?? 0
    }
}

/// A queue's state as the broker reported it on declare.
package struct QueueInfo: Sendable, Equatable {
    package var name: String
    package var messageCount: UInt32
    package var consumerCount: UInt32
}

package enum ExchangeType: String, Sendable {
    case direct, fanout, topic, headers
}
