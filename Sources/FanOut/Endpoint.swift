import HeraldSupport
public import Cryptography
public import Foundation

/// A tenant's webhook endpoint, as the worker needs it.
public struct Endpoint: Sendable, Equatable {
    public enum PayloadFormat: String, Sendable, CaseIterable {
        /// The bare `data` object (CreatorDesk).
        case raw
        /// `{id, type, timestamp, tenant_id, data}`, its keys renamed by `envelopeFields`.
        case envelope
        /// `{id, event, timestamp, workspace_id, data}` (CraftDesk).
        case craftdesk
        /// `{event, data, timestamp}` (Customermates).
        case customermates
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
    /// The envelope's keys, when `payloadFormat` is `envelope`.
    public var envelopeFields: EnvelopeFields
    /// A condition on the event's `data`; nil delivers every selected event.
    public var payloadFilter: PayloadFilter?
    public var signature: SignatureProfile
    public var secret: String
    /// The secret before a rotation, still signing until `previousSecretExpiresAt`.
    public var previousSecret: String?
    public var previousSecretExpiresAt: Date?
    public var enabled: Bool
    /// Set when the endpoint was disabled after being active: its deliveries are recorded as skipped.
    public var disabledAt: Date?
    /// Why it cannot sign: a stored secret this process cannot open (a key it lacks), or
    /// settings it cannot read (written by a newer Herald). Its deliveries wait, while the
    /// tenant's other endpoints go on.
    public var unusable: String?
    /// When a worker last opened the endpoint's circuit, as its row says; nil when closed.
    public var circuitOpenedAt: Date?
    /// The most requests per second the endpoint receives from all workers; nil: no limit.
    public var rateLimit: Int?
    /// Deliveries go one at a time, in the order their events were stored (FIFO): a
    /// delivery that is retrying holds the ones behind it.
    public var ordered = false

    public init(
        id: UUID, tenantID: UUID, url: String, eventTypes: [String], filters: [String: Set<String>] = [:],
        customHeaders: [String: String] = [:], payloadFormat: PayloadFormat = .raw, envelopeFields: EnvelopeFields = EnvelopeFields(),
        payloadFilter: PayloadFilter? = nil, signature: SignatureProfile = .herald, secret: String,
        previousSecret: String? = nil, previousSecretExpiresAt: Date? = nil, enabled: Bool = true, disabledAt: Date? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        self.url = url
        self.eventTypes = eventTypes
        self.filters = filters
        self.customHeaders = customHeaders
        self.payloadFormat = payloadFormat
        self.envelopeFields = envelopeFields
        self.payloadFilter = payloadFilter
        self.signature = signature
        self.secret = secret
        self.previousSecret = previousSecret
        self.previousSecretExpiresAt = previousSecretExpiresAt
        self.enabled = enabled
        self.disabledAt = disabledAt
    }
}

extension Endpoint {
    /// How long after a rotation ends (confirmed or its grace over) a refusal is taken for
    /// a receiver still switching secrets.
    public static let rotationSettling: TimeInterval = 15 * 60

    /// Whether the secret is changing at `now`: a rotation pending, or ended less than
    /// `rotationSettling` ago. A 401 or 403 is then retried rather than failed.
    public func rotationSettles(at now: Date) -> Bool {
        previousSecretExpiresAt.map { now.timeIntervalSince($0) < Self.rotationSettling } ?? false
    }

    /// Whether a rotation's previous secret still signs at `now`.
    public func rotationPending(at now: Date) -> Bool {
        previousSecret != nil && (previousSecretExpiresAt.map { $0 > now } ?? false)
    }

    /// The secrets that sign at `now`. `single` goes in a header that holds one signature:
    /// the previous secret while a rotation waits for the tenant to confirm that the
    /// receiver has the new one (or for its grace period to end), so a receiver that knows
    /// one secret never fails. `all` goes in a header that carries one signature per valid
    /// secret (Standard Webhooks, Stripe): both during the grace period.
    public func signingSecrets(at now: Date) -> (single: String, all: [String]) {
        guard rotationPending(at: now), let previous = previousSecret else { return (secret, [secret]) }
        return (previous, [secret, previous])
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
        Array("endpoint:\(endpoint.lowercasedText)".utf8)
    }
}
