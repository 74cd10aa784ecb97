public import FanOut
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

public struct EndpointView: Encodable, Sendable, Equatable {
    public var id: String
    public var url: String
    public var description: String
    public var eventTypes: [String]
    public var filters: [String: [String]]
    public var headers: [String: String]
    public var payloadFormat: String
    /// The envelope's renamed keys; nil when none is renamed.
    public var payloadFields: EnvelopeFields?
    public var payloadFilter: PayloadFilter?
    public var signature: SignatureProfile
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
    /// While a rotation is pending: until when the previous secret signs (single-value
    /// signatures carry it until the rotation is confirmed).
    public var previousSecretExpiresAt: Date?
    /// When a worker opened the endpoint's circuit (its deliveries held, not attempted,
    /// until a probe succeeds); nil while closed.
    public var circuitOpenedAt: Date?
    /// The most requests per second the endpoint receives from all workers; nil: no limit.
    public var rateLimit: Int?
    /// Deliveries go one at a time, in the order their events were stored (FIFO).
    public var ordered: Bool
    /// What the tenant should know about the settings (an unsigned endpoint).
    public var warnings: [String]?

    package init(
        id: String, url: String, description: String = "", eventTypes: [String], filters: [String: [String]] = [:], headers: [String: String] = [:],
        payloadFormat: String = "raw", payloadFields: EnvelopeFields? = nil, payloadFilter: PayloadFilter? = nil,
        signature: SignatureProfile = .herald, enabled: Bool, dpaConfirmedAt: Date? = nil, dpaConfirmedBy: String? = nil, disabledAt: Date? = nil,
        disabledReason: String? = nil, consecutiveFailures: Int = 0, createdAt: Date, updatedAt: Date, secret: String? = nil,
        previousSecretExpiresAt: Date? = nil, circuitOpenedAt: Date? = nil, rateLimit: Int? = nil, ordered: Bool = false
    ) {
        self.ordered = ordered
        self.id = id
        self.url = url
        self.description = description
        self.eventTypes = eventTypes
        self.filters = filters
        self.headers = headers
        self.payloadFormat = payloadFormat
        self.payloadFields = payloadFields
        self.payloadFilter = payloadFilter
        self.signature = signature
        self.enabled = enabled
        self.dpaConfirmedAt = dpaConfirmedAt
        self.dpaConfirmedBy = dpaConfirmedBy
        self.disabledAt = disabledAt
        self.disabledReason = disabledReason
        self.consecutiveFailures = consecutiveFailures
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.secret = secret
        self.previousSecretExpiresAt = previousSecretExpiresAt
        self.circuitOpenedAt = circuitOpenedAt
        self.rateLimit = rateLimit
        warnings = signature == .none ? [Self.unsignedWarning] : nil
    }
}

extension EndpointView {
    static let unsignedWarning =
        "signature: deliveries to this endpoint are not signed, so anyone who learns its URL can send it fake events; "
        + "choose none only for a receiver that cannot verify (a Zapier catch hook, whose URL is its secret)"

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

/// A tenant with its endpoints counted, for the operator console.
public struct TenantOverview: Sendable, Equatable {
    public var tenant: TenantView
    public var endpoints: Int
    public var enabled: Int
    /// Disabled after having been active (by hand or automatically).
    public var disabled: Int
}
