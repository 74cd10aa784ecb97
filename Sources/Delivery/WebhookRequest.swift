public import HeraldEvents
public import FanOut
public import Foundation
public import HTTPClient
import HeraldSupport

/// Deployment-wide settings of outgoing requests.
public struct RequestSettings: Sendable {
    /// `X-Herald` by default; a CRM brands it (`X-CreatorDesk`).
    public var headerPrefix: String {
        didSet { names = PrefixedHeaderNames(prefix: headerPrefix) }
    }
    public var userAgent: String
    public var timeout: Duration
    public var connectTimeout: Duration
    /// Response bytes kept for the delivery log.
    public var excerptBytes: Int
    /// The prefixed header names, spelled once rather than for every request.
    private(set) var names: PrefixedHeaderNames

    public init(
        headerPrefix: String = "X-Herald", userAgent: String = "Herald-Webhooks/1.0", timeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(5), excerptBytes: Int = 4096
    ) {
        self.headerPrefix = headerPrefix
        self.userAgent = userAgent
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.excerptBytes = excerptBytes
        names = PrefixedHeaderNames(prefix: headerPrefix)
    }
}

/// Builds the signed POST for one attempt of one delivery.
public enum WebhookRequest {
    /// The body an endpoint receives, in its payload format: in the `raw` format the
    /// event's `data` itself, uncopied.
    static func bodyBytes(for event: Event, format: Endpoint.PayloadFormat, fields: EnvelopeFields) -> ArraySlice<UInt8> {
        var timestamp: ArraySlice<UInt8> { Array("\"\(RFC3339.format(event.occurredAt))\"".utf8)[...] }
        var tenant: ArraySlice<UInt8> { Array("\"\(event.tenantID.lowercasedText)\"".utf8)[...] }
        switch format {
        case .raw:
            return event.dataBytes
        case .envelope:
            return object([
                (fields.id, JSONText.string(event.id)[...]), (fields.type, JSONText.string(event.type)[...]),
                (fields.timestamp, timestamp), (fields.tenant, tenant), (fields.data, event.dataBytes),
            ])[...]
        case .craftdesk:
            return object([
                ("id", JSONText.string(event.id)[...]), ("event", JSONText.string(event.type)[...]), ("timestamp", timestamp),
                ("workspace_id", tenant), ("data", event.dataBytes),
            ])[...]
        case .customermates:
            return object([("event", JSONText.string(event.type)[...]), ("data", event.dataBytes), ("timestamp", timestamp)])[...]
        }
    }

    /// `{"key":value,…}` from members whose values are JSON already.
    private static func object(_ members: [(key: String, value: ArraySlice<UInt8>)]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(members.reduce(2) { $0 + $1.key.utf8.count + $1.value.count + 4 })
        for (index, member) in members.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.append(member.key, to: &out)
            out.append(UInt8(ascii: ":"))
            out += member.value
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The request for `event` to `endpoint` at `now`. `webhook-id` is the delivery's id,
    /// the same on every attempt and every manual resend, as Standard Webhooks intends (a
    /// receiver deduplicates on it); `{prefix}-Request-ID` is `requestID`, which a manual
    /// resend renews (the reference systems' "a re-trigger is a new request").
    public static func make(
        event: Event, endpoint: Endpoint, deliveryID: UUID, requestID: UUID, now: Date, settings: RequestSettings
    ) -> Request {
        let body = bodyBytes(for: event, format: endpoint.payloadFormat, fields: endpoint.envelopeFields)
        let brand = settings.headerPrefix
        let profile = endpoint.signature
        let prefix = profile.headerPrefix(brand: brand)
        let names = prefix == brand ? settings.names : PrefixedHeaderNames(prefix: prefix)
        let custom = endpoint.customHeaders
        var headers: [(name: String, value: String)] = []
        // Nine of the default profile, and room for the trace context the worker adds.
        headers.reserveCapacity(11 + custom.count)
        headers.append(("Content-Type", "application/json"))
        headers.append(("User-Agent", settings.userAgent))
        headers.append((names.event, event.type))
        headers.append((names.requestID, requestID.lowercasedText))
        Signature.append(
            profile, secrets: endpoint.signingSecrets(at: now), event: event.type, deliveryID: deliveryID, now: now, body: body,
            names: names, to: &headers)
        if !custom.isEmpty {
            for (name, value) in custom.sorted(by: { $0.key < $1.key }) where !profile.reserves(name, brand: brand) {
                headers.append((name, value))
            }
        }
        var request = Request(
            url: endpoint.url, method: "POST", headers: headers, timeout: settings.timeout,
            connectTimeout: settings.connectTimeout, maxResponseBytes: settings.excerptBytes, overflow: .abort)
        request.bodyBytes = body
        return request
    }
}

/// What sends a webhook request: libcurl's `Client` in Herald, scripted answers in the
/// worker's unit tests.
public protocol WebhookTransport: Sendable {
    func execute(_ request: Request) async throws(TransferError) -> Response
}

extension Client: WebhookTransport {}
