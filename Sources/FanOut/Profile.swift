package import HeraldSupport
import Foundation

/// How an endpoint's deliveries are signed: the scheme its receiver already verifies,
/// so a CRM moving onto Herald keeps its customers' receivers unchanged.
public enum SignatureProfile: Sendable, Equatable {
    /// `{brand}-Signature` over `{timestamp}.{body}` and Standard Webhooks' `webhook-signature`.
    case herald
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` only.
    case standardWebhooks
    /// An HMAC of the raw body in a header the tenant names (CraftDesk, Creative Force, Customermates).
    case bodyHMAC(BodyHMAC)
    /// `{prefix}-Signature: sha256=…` over `{timestamp}.{body}`, `{prefix}-Timestamp` and the
    /// other headers under a prefix the endpoint names (CreatorDesk: `X-CreatorDesk`).
    case timestampedHMAC(headerPrefix: String)
    /// `X-Hub-Signature-256: sha256=…` over the body, with `X-GitHub-Event` and `X-GitHub-Delivery`.
    case github
    /// `Stripe-Signature: t=…,v1=…` over `{t}.{body}`.
    case stripe
    /// Unsigned, for receivers that cannot verify (a Zapier catch hook): an explicit choice.
    case none

    public struct BodyHMAC: Sendable, Equatable {
        public var header: String
        public var encoding: Encoding
        /// Written before the digest, such as `sha256=`.
        public var valuePrefix: String
        /// A header carrying the event type (Creative Force's `X-CF-Event`).
        public var eventHeader: String?

        public enum Encoding: String, Sendable, CaseIterable {
            case hex, base64
        }

        public init(header: String, encoding: Encoding = .hex, valuePrefix: String = "", eventHeader: String? = nil) {
            self.header = header
            self.encoding = encoding
            self.valuePrefix = valuePrefix
            self.eventHeader = eventHeader
        }
    }

    /// The profile's name in the API, the CLI and the portal.
    public var name: String {
        switch self {
        case .herald: "herald"
        case .standardWebhooks: "standard-webhooks"
        case .bodyHMAC: "body-hmac"
        case .timestampedHMAC: "timestamped-hmac"
        case .github: "github"
        case .stripe: "stripe"
        case .none: "none"
        }
    }

    public static let names = ["herald", "standard-webhooks", "body-hmac", "timestamped-hmac", "github", "stripe", "none"]

    /// Whether every signature the profile sends can carry one entry per valid secret,
    /// so a rotation needs no confirmation (Standard Webhooks, Stripe).
    public var carriesEverySecret: Bool {
        switch self {
        case .standardWebhooks, .stripe: true
        default: false
        }
    }

    /// The prefix of the headers naming the event and the request: the endpoint's own for
    /// `timestamped-hmac`, the deployment's (`X-Herald`) otherwise.
    public func headerPrefix(brand: String) -> String {
        if case .timestampedHMAC(let prefix) = self { return prefix }
        return brand
    }

    /// Every header the profile sends besides the transport's, as Herald spells them.
    public func headerNames(brand: String) -> [String] {
        let prefixed = PrefixedHeaderNames(prefix: headerPrefix(brand: brand))
        var names = [prefixed.event, prefixed.requestID]
        switch self {
        case .herald:
            names += [prefixed.timestamp, prefixed.signature, "webhook-id", "webhook-timestamp", "webhook-signature"]
        case .standardWebhooks: names += ["webhook-id", "webhook-timestamp", "webhook-signature"]
        case .bodyHMAC(let hmac): names += [hmac.header] + (hmac.eventHeader.map { [$0] } ?? [])
        case .timestampedHMAC: names += [prefixed.timestamp, prefixed.signature]
        case .github: names += ["X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery"]
        case .stripe: names += ["Stripe-Signature"]
        case .none: break
        }
        return names
    }

    /// The headers holding signatures, which a page shows without their value.
    public func signatureHeaders(brand: String) -> Set<String> {
        switch self {
        case .herald: ["\(brand)-Signature".lowercased(), "webhook-signature"]
        case .standardWebhooks: ["webhook-signature"]
        case .bodyHMAC(let hmac): [hmac.header.lowercased()]
        case .timestampedHMAC(let prefix): ["\(prefix)-Signature".lowercased()]
        case .github: ["x-hub-signature-256"]
        case .stripe: ["stripe-signature"]
        case .none: []
        }
    }

    /// Headers libcurl and HTTP itself own: never set by a tenant.
    public static let transportHeaders: Set<String> = [
        "content-type", "content-length", "user-agent", "host", "connection", "transfer-encoding", "expect",
        "te", "upgrade", "keep-alive", "proxy-connection", "trailer",
    ]

    /// Whether a tenant's custom header would collide with one Herald sends for this
    /// profile (case-insensitive): the transport's, the deployment's prefix, Standard
    /// Webhooks' `webhook-` headers, and the profile's own.
    public func reserves(_ name: String, brand: String) -> Bool {
        let lowered = name.lowercased()
        if Self.transportHeaders.contains(lowered) || lowered.hasPrefix(brand.lowercased() + "-") || lowered.hasPrefix("webhook-") {
            return true
        }
        if case .timestampedHMAC(let prefix) = self, lowered.hasPrefix(prefix.lowercased() + "-") { return true }
        return headerNames(brand: brand).contains { $0.lowercased() == lowered }
    }
}

extension SignatureProfile {
    /// The profile as the API shows it and the database keeps it.
    package var config: [String: ConfigValue] {
        var object: [String: ConfigValue] = ["profile": .string(name)]
        switch self {
        case .bodyHMAC(let hmac):
            object["header"] = .string(hmac.header)
            object["encoding"] = .string(hmac.encoding.rawValue)
            if !hmac.valuePrefix.isEmpty { object["value_prefix"] = .string(hmac.valuePrefix) }
            if let event = hmac.eventHeader { object["event_header"] = .string(event) }
        case .timestampedHMAC(let prefix): object["header_prefix"] = .string(prefix)
        default: break
        }
        return object
    }

    /// Reads a profile strictly; `brand` is the deployment's header prefix, whose headers
    /// the tenant's names may not take.
    package init(reading value: Any, brand: String, field: String = "signature") throws(ParseFailure) {
        var reader = try ConfigReader(value, path: field)
        let name = try reader.required("profile", maxLength: 40)
        switch name {
        case "herald": self = .herald
        case "standard-webhooks": self = .standardWebhooks
        case "github": self = .github
        case "stripe": self = .stripe
        case "none": self = .none
        case "body-hmac":
            guard let header = try reader.headerName("header") else { throw ParseFailure(field: reader.field("header"), "is required") }
            try Self.checkOwn(header, brand: brand, field: reader.field("header"))
            let encodingText = try reader.string("encoding", maxLength: 10) ?? "hex"
            guard let encoding = BodyHMAC.Encoding(rawValue: encodingText) else {
                throw ParseFailure(field: reader.field("encoding"), "must be hex or base64")
            }
            let valuePrefix = try reader.string("value_prefix", maxLength: 20) ?? ""
            guard valuePrefix.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "," }) else {
                throw ParseFailure(field: reader.field("value_prefix"), "must be visible ASCII characters without spaces or commas, such as sha256=")
            }
            let eventHeader = try reader.headerName("event_header")
            if let eventHeader { try Self.checkOwn(eventHeader, brand: brand, field: reader.field("event_header")) }
            if let eventHeader, eventHeader.lowercased() == header.lowercased() {
                throw ParseFailure(field: reader.field("event_header"), "must differ from the signature's header")
            }
            self = .bodyHMAC(BodyHMAC(header: header, encoding: encoding, valuePrefix: valuePrefix, eventHeader: eventHeader))
        case "timestamped-hmac":
            guard let prefix = try reader.headerName("header_prefix"), !prefix.hasSuffix("-") else {
                throw ParseFailure(field: reader.field("header_prefix"), "is required: a header name prefix such as X-CreatorDesk (no trailing -)")
            }
            guard !["webhook", "x-hub", "stripe", "x-github"].contains(prefix.lowercased()) else {
                throw ParseFailure(field: reader.field("header_prefix"), "'\(prefix)' would collide with the headers of another scheme")
            }
            self = .timestampedHMAC(headerPrefix: prefix)
        default:
            throw ParseFailure(field: reader.field("profile"), "must be one of \(Self.names.joined(separator: ", "))")
        }
        try reader.rejectUnknown()
    }

    /// A header name the tenant chose for the profile: not the transport's, not under the
    /// deployment's prefix, not Standard Webhooks'.
    private static func checkOwn(_ name: String, brand: String, field: String) throws(ParseFailure) {
        let lowered = name.lowercased()
        if transportHeaders.contains(lowered) || lowered.hasPrefix(brand.lowercased() + "-") || lowered.hasPrefix("webhook-") {
            throw ParseFailure(field: field, "'\(name)' is a header Herald sets itself")
        }
    }
}

/// The names of the headers that carry a prefix (`headerPrefix(brand:)`): spelled once,
/// since every request sends them.
package struct PrefixedHeaderNames: Sendable {
    package let event: String
    package let requestID: String
    package let timestamp: String
    package let signature: String

    package init(prefix: String) {
        event = prefix + "-Event"
        requestID = prefix + "-Request-ID"
        timestamp = prefix + "-Timestamp"
        signature = prefix + "-Signature"
    }
}

/// The keys of an envelope with renamed fields, so a Zap or a Make scenario gets the
/// event's type and id in the body under the names its steps already use.
public struct EnvelopeFields: Sendable, Equatable {
    public var id = "id"
    public var type = "type"
    public var timestamp = "timestamp"
    public var tenant = "tenant_id"
    public var data = "data"

    public init() {}

    public var isDefault: Bool { self == EnvelopeFields() }

    /// Only the renamed keys, as stored and shown.
    package var config: [String: ConfigValue] {
        let defaults = EnvelopeFields()
        var object: [String: ConfigValue] = [:]
        for (name, key, standard) in [("id", id, defaults.id), ("type", type, defaults.type), ("timestamp", timestamp, defaults.timestamp),
            ("tenant", tenant, defaults.tenant), ("data", data, defaults.data)] where key != standard
        {
            object[name] = .string(key)
        }
        return object
    }

    package init(reading value: Any, field: String = "payload_fields") throws(ParseFailure) {
        var reader = try ConfigReader(value, path: field)
        func key(_ name: String) throws(ParseFailure) -> String? {
            guard let key = try reader.string(name, maxLength: 64) else { return nil }
            guard !key.isEmpty, key.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw ParseFailure(field: reader.field(name), "must be 1 to 64 characters without control characters")
            }
            return key
        }
        id = try key("id") ?? id
        type = try key("type") ?? type
        timestamp = try key("timestamp") ?? timestamp
        tenant = try key("tenant") ?? tenant
        data = try key("data") ?? data
        try reader.rejectUnknown()
        guard Set([id, type, timestamp, tenant, data]).count == 5 else {
            throw ParseFailure(field: field, "the five keys must differ from one another")
        }
    }
}

/// An endpoint's signature profile, envelope keys and payload filter, read back from the
/// JSON the database keeps (checked when they were saved).
package struct StoredProfiles {
    package var signature: SignatureProfile
    package var fields: EnvelopeFields
    package var filter: PayloadFilter?

    package init(signature: String, fields: String, filter: String?) throws(ParseFailure) {
        func object(_ text: String, _ field: String) throws(ParseFailure) -> Any {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else { throw ParseFailure(field: field, "is not JSON") }
            return object
        }
        // The deployment's prefix may have changed since: what was saved is read as it is.
        self.signature = try SignatureProfile(reading: try object(signature, "signature"), brand: "")
        self.fields = try EnvelopeFields(reading: try object(fields, "payload_fields"))
        self.filter = try filter.map { (text: String) throws(ParseFailure) -> PayloadFilter in try PayloadFilter(parsing: Array(text.utf8)) }
    }
}

extension SignatureProfile: Encodable {
    public func encode(to encoder: any Encoder) throws {
        try config.encode(to: encoder)
    }
}

extension EnvelopeFields: Encodable {
    public func encode(to encoder: any Encoder) throws {
        try config.encode(to: encoder)
    }
}
