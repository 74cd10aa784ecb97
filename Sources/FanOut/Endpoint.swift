public import Cryptography
public import Foundation

/// A tenant's webhook endpoint, as the worker needs it.
public struct Endpoint: Sendable, Equatable {
    public enum PayloadFormat: String, Sendable, CaseIterable {
        /// The bare `data` object (CreatorDesk).
        case raw
        /// `{id, type, timestamp, tenant_id, data}` (CraftDesk, Customermates).
        case envelope
    }

    public var id: UUID
    public var tenantID: UUID
    public var url: String
    /// Exact types and wildcards: `invoice.*`, `*`.
    public var eventTypes: [String]
    /// Attribute filters: every key must be present on the event with one of the values.
    public var filters: [String: Set<String>]
    public var customHeaders: [String: String]
    public var payloadFormat: PayloadFormat
    public var secret: String
    /// The secret before a rotation, still signing until `previousSecretExpiresAt`.
    public var previousSecret: String?
    public var previousSecretExpiresAt: Date?
    public var enabled: Bool
    /// Set when the endpoint was disabled after being active: its deliveries are recorded as skipped.
    public var disabledAt: Date?
    /// Why its stored secret could not be opened (a key this process lacks): it cannot
    /// sign, so its deliveries wait, while the tenant's other endpoints go on.
    public var secretUnavailable: String?

    public init(
        id: UUID, tenantID: UUID, url: String, eventTypes: [String], filters: [String: Set<String>] = [:],
        customHeaders: [String: String] = [:], payloadFormat: PayloadFormat = .raw, secret: String,
        previousSecret: String? = nil, previousSecretExpiresAt: Date? = nil, enabled: Bool = true, disabledAt: Date? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        self.url = url
        self.eventTypes = eventTypes
        self.filters = filters
        self.customHeaders = customHeaders
        self.payloadFormat = payloadFormat
        self.secret = secret
        self.previousSecret = previousSecret
        self.previousSecretExpiresAt = previousSecretExpiresAt
        self.enabled = enabled
        self.disabledAt = disabledAt
    }
}

extension SecretKeyring {
    /// An endpoint secret as it is stored, bound to the endpoint's row.
    public func seal(_ secret: String, endpoint: UUID) -> String {
        seal(secret, context: Self.context(endpoint))
    }

    /// The secret an endpoint's stored value holds.
    public func open(_ stored: String, endpoint: UUID) throws(SecretKeyError) -> String {
        try open(stored, context: Self.context(endpoint))
    }

    private static func context(_ endpoint: UUID) -> [UInt8] {
        Array("endpoint:\(endpoint.uuidString.lowercased())".utf8)
    }
}
