import HeraldSupport
public import Foundation

/// What an operator must know, published rather than only logged: onto `PREFIX.operator`
/// (a topic exchange, routing key = the type) with a confirm, and, when an operator tenant
/// is configured (`HERALD_OPERATOR_TENANT`), as that tenant's event, so its endpoints
/// receive it as a signed webhook through the same pipeline. Never a payload or a secret.
public struct OperatorEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case endpointDisabled = "endpoint.disabled"
        case endpointEnabled = "endpoint.enabled"
        case circuitOpened = "endpoint.circuit_opened"
        case circuitClosed = "endpoint.circuit_closed"
        /// The third attempt of a delivery failed; it goes on retrying.
        case deliveryFailing = "delivery.failing"
        /// The retry ladder ran out: the delivery is failed.
        case deliveryExhausted = "delivery.exhausted"
        case messageParked = "message.parked"
    }

    public var kind: Kind
    /// `op_` and 32 hex digits; the same in both places it is published.
    public var id: String
    public var occurredAt: Date
    public var tenantID: UUID?
    public var endpointID: UUID?
    public var deliveryID: UUID?
    public var eventID: String?
    public var attempt: Int?
    /// Why, in words (a status, an error class, the reason a message was parked).
    public var reason: String?

    public init(
        _ kind: Kind, tenant: UUID? = nil, endpoint: UUID? = nil, delivery: UUID? = nil, event: String? = nil, attempt: Int? = nil,
        reason: String? = nil, at occurredAt: Date = Date()
    ) {
        self.kind = kind
        id = "op_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        self.occurredAt = occurredAt
        tenantID = tenant
        endpointID = endpoint
        deliveryID = delivery
        eventID = event
        self.attempt = attempt
        self.reason = reason.map { String($0.prefix(500)) }
    }

    /// The JSON object published: `type`, `id`, `occurred_at` and whichever of
    /// `tenant_id`, `endpoint_id`, `delivery_id`, `event_id`, `attempt`, `reason` apply.
    public var json: [UInt8] {
        var object: [String: Any] = [
            "type": kind.rawValue, "id": id, "occurred_at": occurredAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
        ]
        object["tenant_id"] = tenantID?.lowercasedText
        object["endpoint_id"] = endpointID?.lowercasedText
        object["delivery_id"] = deliveryID?.lowercasedText
        object["event_id"] = eventID
        object["attempt"] = attempt
        object["reason"] = reason
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Array(data)
    }

    /// The event the operator tenant's endpoints receive.
    public func event(for operatorTenant: UUID) -> Event {
        Event(id: id, type: kind.rawValue, tenantID: operatorTenant, occurredAt: occurredAt, data: json)
    }
}
