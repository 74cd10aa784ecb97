package import HeraldSupport
package import Foundation

/// A source as the API, the CLI and the portal show it.
package struct SourceView: Encodable, Sendable {
    package var id: String
    package var name: String
    package var service: String
    /// Where the sender posts: `{public URL}/in/{token}`.
    package var url: String
    /// Until when the URL before the last rotation still works.
    package var previousUrlExpiresAt: Date?
    package var verification: [String: ConfigValue]
    package var mapping: [String: ConfigValue]?
    /// Where the sender's delivery id is read (the verification's preset when not set).
    package var dedup: [String: ConfigValue]?
    package var dedupWindowSeconds: Int
    package var maxBodyBytes: Int
    package var retentionDays: [String: Int]
    package var createdAt: Date
    package var updatedAt: Date
    /// Only when the source is created or its secret generated: shown once.
    package var secret: String?
    /// The settings as values, for the portal's words; not part of the API's answer.
    package var settings: InboundSource

    enum CodingKeys: String, CodingKey {
        case id, name, service, url, previousUrlExpiresAt, verification, mapping, dedup, dedupWindowSeconds, maxBodyBytes, retentionDays,
            createdAt, updatedAt, secret
    }
}

/// A stored inbound webhook, as listed.
package struct InboundSummaryView: Encodable, Sendable {
    package var id: String
    package var sourceId: String
    package var receivedAt: Date
    package var status: InboundStatus
    package var responseStatus: Int
    package var error: String?
    package var errorField: String?
    package var bodySize: Int
    package var eventId: String?
    package var eventType: String?
    package var duplicateOf: String?
}

/// A stored inbound webhook in full: who sent what, and what became of it.
package struct InboundWebhookView: Encodable, Sendable {
    package var id: String
    package var sourceId: String
    package var receivedAt: Date
    package var status: InboundStatus
    package var responseStatus: Int
    package var error: String?
    package var errorField: String?
    package var remoteAddress: String
    package var contentType: String
    package var headers: [[String]]
    package var query: String
    /// The body as text when it is UTF-8; otherwise in `bodyBase64`. Neither when it was
    /// too large to keep.
    package var body: String?
    package var bodyBase64: String?
    package var bodySize: Int
    package var dedupKey: String?
    package var duplicateOf: String?
    package var eventId: String?
    package var eventType: String?
    package var processedAt: Date?
}

package struct InboundPage: Encodable, Sendable {
    package var items: [InboundSummaryView]
    package var nextCursor: String?
}

/// The answer to a replay.
package struct ReplayView: Encodable, Sendable {
    package var id: String
    package var status: InboundStatus
    package var error: String?
    package var errorField: String?
    package var eventId: String?
    package var eventType: String?
}
