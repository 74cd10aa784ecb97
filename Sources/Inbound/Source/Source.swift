package import Foundation
package import HeraldSupport
import HeraldEvents

/// What became of a request to a source's URL.
package enum InboundStatus: String, Sendable, CaseIterable, Codable {
    /// Stored; the source has no mapping, or the mapping found nothing to map.
    case received
    /// Mapped into an event, which is on its way to the tenant's endpoints.
    case processed
    /// Verified and stored, but its body could not be read or mapped: the error says where.
    case parseError = "parse_error"
    /// Refused: verification failed, a content type Herald does not read, too large.
    case rejected
    /// A delivery id seen within the window: acknowledged, not processed again.
    case duplicate
}

/// How a source checks that a request comes from its sender. The secret (a shared
/// token, a password, an HMAC key) is kept apart, sealed.
package enum Verification: Sendable, Equatable {
    package enum Encoding: String, Sendable, Equatable { case hex, base64 }

    /// What generic HMAC-SHA256 signs: the raw body, or `{timestamp}.{body}` with the
    /// timestamp (unix seconds or ISO 8601) from a header.
    package enum SignedContent: Sendable, Equatable {
        case body
        case timestampedBody(header: String, tolerance: Int)
    }

    case none
    /// The secret in a header (after an optional prefix such as `Bearer `) or a query parameter.
    case headerToken(header: String, prefix: String)
    case queryToken(parameter: String)
    /// HTTP Basic; the secret is the password.
    case basic(username: String)
    case hmac(header: String, prefix: String, encoding: Encoding, signed: SignedContent)
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    case standardWebhooks(tolerance: Int)
    /// `X-Hub-Signature-256: sha256=<hex HMAC of the body>`.
    case github
    /// `Stripe-Signature: t=<seconds>,v1=<hex HMAC of "{t}.{body}">`.
    case stripe(tolerance: Int)
    /// `X-Shopify-Hmac-Sha256: <base64 HMAC of the body>`.
    case shopify
    /// Another Herald's `{prefix}-Signature` over `"{timestamp}.{body}"`.
    case herald(prefix: String, tolerance: Int)

    package static let defaultTolerance = 300

    package var method: String {
        switch self {
        case .none: "none"
        case .headerToken, .queryToken: "token"
        case .basic: "basic"
        case .hmac: "hmac"
        case .standardWebhooks: "standard-webhooks"
        case .github: "github"
        case .stripe: "stripe"
        case .shopify: "shopify"
        case .herald: "herald"
        }
    }

    /// In words, for the portal.
    package var summary: String {
        switch self {
        case .none: "none: anyone who has the URL can post"
        case .headerToken(let header, let prefix): "a shared token in the \(header) header\(prefix.isEmpty ? "" : " after '\(prefix)'")"
        case .queryToken(let parameter): "a shared token in the query parameter \(parameter)"
        case .basic(let username): "HTTP Basic as \(username)"
        case .hmac(let header, let prefix, let encoding, let signed):
            switch signed {
            case .body: "HMAC-SHA256 of the body, \(encoding.rawValue), in \(header)\(prefix.isEmpty ? "" : " after '\(prefix)'")"
            case .timestampedBody(let timestamp, let tolerance):
                "HMAC-SHA256 of {\(timestamp)}.{body}, \(encoding.rawValue), in \(header)\(prefix.isEmpty ? "" : " after '\(prefix)'"), \(tolerance) s tolerance"
            }
        case .standardWebhooks(let tolerance): "Standard Webhooks signature (webhook-signature), \(tolerance) s tolerance"
        case .github: "GitHub's signature (X-Hub-Signature-256)"
        case .stripe(let tolerance): "Stripe's signature (Stripe-Signature), \(tolerance) s tolerance"
        case .shopify: "Shopify's signature (X-Shopify-Hmac-Sha256)"
        case .herald(let prefix, let tolerance): "another Herald's signature (\(prefix)-Signature), \(tolerance) s tolerance"
        }
    }

    package static let methods = ["none", "token", "basic", "hmac", "standard-webhooks", "github", "stripe", "shopify", "herald"]

    package var needsSecret: Bool { self != .none }

    /// Where the sender puts its delivery id, for the methods whose senders give one.
    package var presetDeliveryID: DeliveryIDRule? {
        switch self {
        case .standardWebhooks: .header("webhook-id")
        case .herald: .header("webhook-id")
        case .github: .header("X-GitHub-Delivery")
        case .shopify: .header("X-Shopify-Webhook-Id")
        case .stripe: .jsonPath(JSONPath("id")!)
        default: nil
        }
    }

    /// Header names whose values are credentials: never stored with a webhook.
    package var credentialHeaders: [String] {
        switch self {
        case .headerToken(let header, _): [header]
        default: []
        }
    }

    /// From the API's or the database's JSON object.
    package init(object: Any, path: String = "verification") throws(ParseFailure) {
        var reader = try ConfigReader(object, path: path)
        let method = try reader.required("method", maxLength: 40)
        func tolerance() throws(ParseFailure) -> Int { try reader.integer("tolerance_seconds", 1...86_400) ?? Self.defaultTolerance }
        switch method {
        case "none": self = .none
        case "token":
            let header = try reader.headerName("header")
            let parameter = try reader.string("query", maxLength: 100)
            let prefix = try reader.string("prefix", maxLength: 40) ?? ""
            switch (header, parameter) {
            case (let header?, nil): self = .headerToken(header: header, prefix: prefix)
            case (nil, let parameter?) where !parameter.isEmpty && prefix.isEmpty: self = .queryToken(parameter: parameter)
            default: throw ParseFailure(field: path, "token takes either header (with an optional prefix) or query")
            }
        case "basic": self = .basic(username: try reader.required("username"))
        case "hmac":
            let header = try reader.headerName("header") ?? "X-Signature"
            let prefix = try reader.string("prefix", maxLength: 40) ?? ""
            let encodingText = try reader.string("encoding", maxLength: 10) ?? "hex"
            guard let encoding = Encoding(rawValue: encodingText) else { throw ParseFailure(field: reader.field("encoding"), "must be hex or base64") }
            let signed: SignedContent
            switch try reader.string("signed", maxLength: 20) ?? "body" {
            case "body":
                signed = .body
            case "timestamp.body":
                guard let timestampHeader = try reader.headerName("timestamp_header") else {
                    throw ParseFailure(field: reader.field("timestamp_header"), "is required when signed is timestamp.body")
                }
                signed = .timestampedBody(header: timestampHeader, tolerance: try tolerance())
            default:
                throw ParseFailure(field: reader.field("signed"), "must be body or timestamp.body")
            }
            self = .hmac(header: header, prefix: prefix, encoding: encoding, signed: signed)
        case "standard-webhooks": self = .standardWebhooks(tolerance: try tolerance())
        case "github": self = .github
        case "stripe": self = .stripe(tolerance: try tolerance())
        case "shopify": self = .shopify
        case "herald":
            let prefix = try reader.headerName("prefix") ?? "X-Herald"
            self = .herald(prefix: prefix, tolerance: try tolerance())
        default:
            throw ParseFailure(field: reader.field("method"), "must be one of \(Self.methods.joined(separator: ", "))")
        }
        try reader.rejectUnknown()
    }

    package var config: [String: ConfigValue] {
        var object: [String: ConfigValue] = ["method": .string(method)]
        switch self {
        case .none, .github, .shopify: break
        case .headerToken(let header, let prefix):
            object["header"] = .string(header)
            if !prefix.isEmpty { object["prefix"] = .string(prefix) }
        case .queryToken(let parameter): object["query"] = .string(parameter)
        case .basic(let username): object["username"] = .string(username)
        case .hmac(let header, let prefix, let encoding, let signed):
            object["header"] = .string(header)
            object["prefix"] = .string(prefix)
            object["encoding"] = .string(encoding.rawValue)
            switch signed {
            case .body: object["signed"] = .string("body")
            case .timestampedBody(let timestampHeader, let tolerance):
                object["signed"] = .string("timestamp.body")
                object["timestamp_header"] = .string(timestampHeader)
                object["tolerance_seconds"] = .int(tolerance)
            }
        case .standardWebhooks(let tolerance), .stripe(let tolerance): object["tolerance_seconds"] = .int(tolerance)
        case .herald(let prefix, let tolerance):
            object["prefix"] = .string(prefix)
            object["tolerance_seconds"] = .int(tolerance)
        }
        return object
    }
}

/// Where a sender puts the id of its delivery, which repeats when it sends again.
package enum DeliveryIDRule: Sendable, Equatable {
    case header(String)
    case jsonPath(JSONPath)

    package init(object: Any, path: String = "dedup") throws(ParseFailure) {
        var reader = try ConfigReader(object, path: path)
        let header = try reader.headerName("header")
        let jsonPath = try reader.path("json_path")
        try reader.rejectUnknown()
        switch (header, jsonPath) {
        case (let header?, nil): self = .header(header)
        case (nil, let jsonPath?): self = .jsonPath(jsonPath)
        default: throw ParseFailure(field: path, "takes either header or json_path")
        }
    }

    package var config: [String: ConfigValue] {
        switch self {
        case .header(let name): ["header": .string(name)]
        case .jsonPath(let path): ["json_path": .string(path.description)]
        }
    }
}

/// How an inbound webhook becomes an event: its type from a fixed value, a header or a
/// field of the body (with an optional map of values to types, which is then the list of
/// registered entities), its data the whole body or one object in it.
package struct Mapping: Sendable, Equatable {
    package enum TypeSource: Sendable, Equatable {
        case fixed(String)
        case header(String)
        case field(JSONPath)
    }

    package var type: TypeSource
    /// Value → event type (`Contact` → `contact.created`); when given, a value not in it is
    /// a parse error ("not a registered entity"). Empty: the value is the type itself.
    package var types: [String: String]
    /// The object that becomes the event's data; nil: the whole body.
    package var data: JSONPath?

    package init(type: TypeSource, types: [String: String] = [:], data: JSONPath? = nil) {
        self.type = type
        self.types = types
        self.data = data
    }

    package init(object: Any, path: String = "mapping") throws(ParseFailure) {
        var reader = try ConfigReader(object, path: path)
        let fixed = try reader.string("event_type", maxLength: 100)
        let header = try reader.headerName("event_type_header")
        let field = try reader.path("event_type_path")
        types = try reader.stringMap("event_types") ?? [:]
        data = try reader.path("data_path")
        try reader.rejectUnknown()
        switch (fixed, header, field) {
        case (let fixed?, nil, nil):
            guard EventTypeName.isWellFormed(fixed) else { throw ParseFailure(field: reader.field("event_type"), EventTypeName.advice(fixed)) }
            guard types.isEmpty else { throw ParseFailure(field: reader.field("event_types"), "maps values of a header or a field; a fixed event_type has none") }
            type = .fixed(fixed)
        case (nil, let header?, nil): type = .header(header)
        case (nil, nil, let field?): type = .field(field)
        default: throw ParseFailure(field: path, "takes one of event_type, event_type_header or event_type_path")
        }
        for (value, eventType) in types where !EventTypeName.isWellFormed(eventType) {
            throw ParseFailure(field: "\(reader.field("event_types")).\(value)", EventTypeName.advice(eventType))
        }
    }

    /// In words, for the portal.
    package var summary: String {
        let data = data.map { "the object at \($0)" } ?? "the whole body"
        let origin: String
        switch type {
        case .fixed(let name): return "the event \(name), with \(data) as its data"
        case .header(let name): origin = "the \(name) header"
        case .field(let path): origin = path.description
        }
        if types.isEmpty { return "the event type named in \(origin), with \(data) as its data" }
        let pairs = types.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }.joined(separator: ", ")
        return "by \(origin): \(pairs) (any other value is a parse error), with \(data) as its data"
    }

    package var config: [String: ConfigValue] {
        var object: [String: ConfigValue] = [:]
        switch type {
        case .fixed(let name): object["event_type"] = .string(name)
        case .header(let name): object["event_type_header"] = .string(name)
        case .field(let path): object["event_type_path"] = .string(path.description)
        }
        if !types.isEmpty { object["event_types"] = .object(types.mapValues { .string($0) }) }
        if let data { object["data_path"] = .string(data.description) }
        return object
    }
}

/// A source as the intake needs it: how to verify, what to keep, what to make.
package struct InboundSource: Sendable, Equatable {
    package var id: UUID
    package var tenantID: UUID
    package var name: String
    package var verification: Verification
    /// nil: store only.
    package var mapping: Mapping?
    /// nil: the verification method's preset, if it has one.
    package var deliveryID: DeliveryIDRule?
    package var dedupWindow: Int
    package var maxBodyBytes: Int
    /// Days kept per status, over the deployment's defaults.
    package var retention: [InboundStatus: Int]

    package init(
        id: UUID, tenantID: UUID, name: String, verification: Verification, mapping: Mapping? = nil, deliveryID: DeliveryIDRule? = nil,
        dedupWindow: Int = 86_400, maxBodyBytes: Int = 1_048_576, retention: [InboundStatus: Int] = [:]
    ) {
        self.id = id
        self.tenantID = tenantID
        self.name = name
        self.verification = verification
        self.mapping = mapping
        self.deliveryID = deliveryID
        self.dedupWindow = dedupWindow
        self.maxBodyBytes = maxBodyBytes
        self.retention = retention
    }

    /// Where this source finds the sender's delivery id.
    package var effectiveDeliveryID: DeliveryIDRule? { deliveryID ?? verification.presetDeliveryID }

    /// Days kept per status, from `{"rejected": 7}`; the error names the status.
    package static func retention(object: Any, path: String = "retention_days") throws(ParseFailure) -> [InboundStatus: Int] {
        guard let map = object as? [String: Any] else { throw ParseFailure(field: path, "must be an object of days per status") }
        var result: [InboundStatus: Int] = [:]
        for (key, value) in map {
            guard let status = InboundStatus(rawValue: key) else {
                throw ParseFailure(field: "\(path).\(key)", "is not a status (\(InboundStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let number = value as? NSNumber, String(cString: number.objCType) != "c", number.doubleValue == Double(number.intValue),
                (1...3650).contains(number.intValue)
            else { throw ParseFailure(field: "\(path).\(key)", "must be a whole number of days from 1 to 3650") }
            result[status] = number.intValue
        }
        return result
    }
}

/// Event type names as Herald's events spell them.
package enum EventTypeName {
    package static func isWellFormed(_ type: String) -> Bool {
        type.utf8.count <= 100 && EventType.isWellFormed(type)
    }

    package static func advice(_ type: String) -> String {
        "'\(type.prefix(100))' is not an event type (lower-case words joined by dots, like contact.created)"
    }
}
