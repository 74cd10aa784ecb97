public import Foundation
public import Hummingbird
public import Management

/// Per-request state: who is calling. Set by `AuthMiddleware`.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The tenant a tenant key belongs to.
    public var tenant: UUID?
    /// The caller presented the operator token.
    public var isOperator = false
    /// The portal session of a browser (its cookie), on `/portal` pages.
    public var portalSession: PortalSession?

    /// The peer's IP address (no proxy header is trusted): shown with inbound webhooks.
    public var remoteAddress: String

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? ""
    }

    /// Bodies larger than this are refused with 413.
    public var maxUploadSize: Int { 1024 * 1024 }

    public var responseEncoder: JSONEncoder { API.encoder }
}
