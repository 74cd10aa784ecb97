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

    /// The other fields, kept in one object: the worker copies an endpoint for every
    /// delivery (into its targets, slots and requests), and a copy then retains one
    /// reference instead of each string, array and table. A change makes a new object.
    private var storage: Storage

    private final class Storage: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private struct Fields: Sendable, Equatable {
        var url: String
        var eventTypes: [String]
        var filters: [String: Set<String>]
        var customHeaders: [String: String]
        var payloadFormat: PayloadFormat
        var envelopeFields: EnvelopeFields
        var payloadFilter: PayloadFilter?
        var signature: SignatureProfile
        var secret: String
        var previousSecret: String?
        var previousSecretExpiresAt: Date?
        var enabled: Bool
        var disabledAt: Date?
        var unusable: String?
        var circuitOpenedAt: Date?
        var rateLimit: Int?
        var ordered = false
    }

    public var id: UUID
    public var tenantID: UUID

    public var url: String { get { storage.fields.url } set { change { $0.url = newValue } } }

    /// Exact types and wildcards: `invoice.*`, `*`.
    public var eventTypes: [String] { get { storage.fields.eventTypes } set { change { $0.eventTypes = newValue } } }

    /// Attribute filters: every key must be present on the event with one of the values.
    public var filters: [String: Set<String>] { get { storage.fields.filters } set { change { $0.filters = newValue } } }

    public var customHeaders: [String: String] { get { storage.fields.customHeaders } set { change { $0.customHeaders = newValue } } }

    public var payloadFormat: PayloadFormat { get { storage.fields.payloadFormat } set { change { $0.payloadFormat = newValue } } }

    /// The envelope's keys, when `payloadFormat` is `envelope`.
    public var envelopeFields: EnvelopeFields { get { storage.fields.envelopeFields } set { change { $0.envelopeFields = newValue } } }

    /// A condition on the event's `data`; nil delivers every selected event.
    public var payloadFilter: PayloadFilter? { get { storage.fields.payloadFilter } set { change { $0.payloadFilter = newValue } } }

    public var signature: SignatureProfile { get { storage.fields.signature } set { change { $0.signature = newValue } } }

    public var secret: String { get { storage.fields.secret } set { change { $0.secret = newValue } } }

    /// The secret before a rotation, still signing until `previousSecretExpiresAt`.
    public var previousSecret: String? { get { storage.fields.previousSecret } set { change { $0.previousSecret = newValue } } }

    public var previousSecretExpiresAt: Date? {
        get { storage.fields.previousSecretExpiresAt } set { change { $0.previousSecretExpiresAt = newValue } }
    }

    public var enabled: Bool { get { storage.fields.enabled } set { change { $0.enabled = newValue } } }

    /// Set when the endpoint was disabled after being active: its deliveries are recorded as skipped.
    public var disabledAt: Date? { get { storage.fields.disabledAt } set { change { $0.disabledAt = newValue } } }

    /// Why it cannot sign: a stored secret this process cannot open (a key it lacks), or
    /// settings it cannot read (written by a newer Herald). Its deliveries wait, while the
    /// tenant's other endpoints go on.
    public var unusable: String? { get { storage.fields.unusable } set { change { $0.unusable = newValue } } }

    /// When a worker last opened the endpoint's circuit, as its row says; nil when closed.
    public var circuitOpenedAt: Date? { get { storage.fields.circuitOpenedAt } set { change { $0.circuitOpenedAt = newValue } } }

    /// The most requests per second the endpoint receives from all workers; nil: no limit.
    public var rateLimit: Int? { get { storage.fields.rateLimit } set { change { $0.rateLimit = newValue } } }

    /// Deliveries go one at a time, in the order their events were stored (FIFO): a
    /// delivery that is retrying holds the ones behind it.
    public var ordered: Bool { get { storage.fields.ordered } set { change { $0.ordered = newValue } } }

    private mutating func change(_ body: (inout Fields) -> Void) {
        var fields = storage.fields
        body(&fields)
        storage = Storage(fields)
    }

    public static func == (lhs: Endpoint, rhs: Endpoint) -> Bool {
        lhs.id == rhs.id && lhs.tenantID == rhs.tenantID && (lhs.storage === rhs.storage || lhs.storage.fields == rhs.storage.fields)
    }

    public init(
        id: UUID, tenantID: UUID, url: String, eventTypes: [String], filters: [String: Set<String>] = [:],
        customHeaders: [String: String] = [:], payloadFormat: PayloadFormat = .raw, envelopeFields: EnvelopeFields = EnvelopeFields(),
        payloadFilter: PayloadFilter? = nil, signature: SignatureProfile = .herald, secret: String,
        previousSecret: String? = nil, previousSecretExpiresAt: Date? = nil, enabled: Bool = true, disabledAt: Date? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        storage = Storage(
            Fields(
                url: url, eventTypes: eventTypes, filters: filters, customHeaders: customHeaders, payloadFormat: payloadFormat,
                envelopeFields: envelopeFields, payloadFilter: payloadFilter, signature: signature, secret: secret,
                previousSecret: previousSecret, previousSecretExpiresAt: previousSecretExpiresAt, enabled: enabled, disabledAt: disabledAt,
                unusable: nil, circuitOpenedAt: nil, rateLimit: nil))
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
