public import HeraldEvents
public import FanOut
public import Foundation
public import HTTPClient
import HeraldSupport

/// Deployment-wide settings of outgoing requests.
public struct RequestSettings: Sendable {
    /// `X-Herald` by default; a CRM brands it (`X-CreatorDesk`).
    public var headerPrefix: String
    public var userAgent: String
    public var timeout: Duration
    public var connectTimeout: Duration
    /// Response bytes kept for the delivery log.
    public var excerptBytes: Int

    public init(
        headerPrefix: String = "X-Herald", userAgent: String = "Herald-Webhooks/1.0", timeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(5), excerptBytes: Int = 4096
    ) {
        self.headerPrefix = headerPrefix
        self.userAgent = userAgent
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.excerptBytes = excerptBytes
    }
}

/// Builds the signed POST for one attempt of one delivery.
public enum WebhookRequest {
    /// The body an endpoint receives: the bare `data` object, or the envelope
    /// `{"id","type","timestamp","tenant_id","data"}`.
    public static func body(for event: Event, format: Endpoint.PayloadFormat) -> [UInt8] {
        switch format {
        case .raw:
            return event.data
        case .envelope:
            var out = Array("{\"id\":".utf8) + JSONText.string(event.id)
            out += Array(",\"type\":".utf8) + JSONText.string(event.type)
            out += Array(",\"timestamp\":\"\(RFC3339.format(event.occurredAt))\"".utf8)
            out += Array(",\"tenant_id\":\"\(event.tenantID.uuidString.lowercased())\"".utf8)
            out += Array(",\"data\":".utf8) + event.data + [UInt8(ascii: "}")]
            return out
        }
    }

    /// Whether a custom header would collide with one Herald sets (case-insensitive):
    /// its own prefix, the Standard Webhooks headers, and those the transport owns.
    public static func isReserved(_ name: String, prefix: String) -> Bool {
        let lowered = name.lowercased()
        let owned: Set<String> = [
            "content-type", "content-length", "user-agent", "host", "connection", "transfer-encoding", "expect",
            "te", "upgrade", "keep-alive", "proxy-connection", "trailer",
        ]
        return owned.contains(lowered) || lowered.hasPrefix(prefix.lowercased() + "-") || lowered.hasPrefix("webhook-")
    }

    /// The request for `event` to `endpoint` at `now`. `webhook-id` is the delivery's id,
    /// the same on every attempt and every manual resend, as Standard Webhooks intends (a
    /// receiver deduplicates on it); `X-Herald-Request-ID` is `requestID`, which a manual
    /// resend renews (the reference systems' "a re-trigger is a new request").
    public static func make(
        event: Event, endpoint: Endpoint, deliveryID: UUID, requestID: UUID, now: Date, settings: RequestSettings
    ) -> Request {
        let body = body(for: event, format: endpoint.payloadFormat)
        let id = deliveryID.uuidString.lowercased()
        let timestamp = RFC3339.format(now)
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        var secrets = [endpoint.secret]
        if let previous = endpoint.previousSecret, let expiry = endpoint.previousSecretExpiresAt, expiry > now {
            secrets.append(previous)
        }
        let prefix = settings.headerPrefix
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"),
            ("User-Agent", settings.userAgent),
            ("\(prefix)-Event", event.type),
            ("\(prefix)-Timestamp", timestamp),
            ("\(prefix)-Signature", Signature.herald(secret: endpoint.secret, timestamp: timestamp, body: body)),
            ("\(prefix)-Request-ID", requestID.uuidString.lowercased()),
            ("webhook-id", id),
            ("webhook-timestamp", String(seconds)),
            ("webhook-signature", secrets.map { Signature.standard(secret: $0, id: id, seconds: seconds, body: body) }.joined(separator: " ")),
        ]
        for (name, value) in endpoint.customHeaders.sorted(by: { $0.key < $1.key }) where !isReserved(name, prefix: prefix) {
            headers.append((name, value))
        }
        return Request(
            url: endpoint.url, method: "POST", headers: headers, body: body, timeout: settings.timeout,
            connectTimeout: settings.connectTimeout, maxResponseBytes: settings.excerptBytes, overflow: .abort)
    }
}

/// What sends a webhook request: libcurl's `Client` in Herald, scripted answers in the
/// worker's unit tests.
public protocol WebhookTransport: Sendable {
    func execute(_ request: Request) async throws(TransferError) -> Response
}

extension Client: WebhookTransport {}
