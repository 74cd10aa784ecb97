import Foundation
import HeraldSupport
public import Hummingbird
package import Inbound
import HeraldEvents
import HeraldProducer
import Metrics
import NIOCore
import Records
import Synchronization

extension API {
    /// What the inbound side needs beyond the store: how long a body may take to arrive,
    /// how many refused requests per source are kept a second (a flood of forged requests
    /// is answered, not stored), and the largest event `data` a mapping may make.
    public struct InboundLimits: Sendable {
        public var bodyTimeout: Duration
        public var rejectionsKeptPerSecond: Int
        /// Senders post to a listener of their own (`inboundRouter()`), not the API's.
        public var ownListener: Bool

        public init(bodyTimeout: Duration = .seconds(10), rejectionsKeptPerSecond: Int = 10, ownListener: Bool = false) {
            self.bodyTimeout = bodyTimeout
            self.rejectionsKeptPerSecond = rejectionsKeptPerSecond
            self.ownListener = ownListener
        }
    }

    /// The router of a listener for senders only: `POST /in/{token}` and `/healthz`, so a
    /// deployment can expose it without exposing the management API or the dashboard.
    public func inboundRouter() -> Router<APIContext> {
        let router = Router(context: APIContext.self)
        router.add(middleware: ProblemMiddleware())
        router.post("/in/:token") { request, context in try await receive(request, context: context) }
        router.get("/healthz") { _, _ in try Self.json(["status": "ok"]) }
        return router
    }

    func inboundRoutes(_ add: (HTTPRequest.Method, String, Access, @escaping @Sendable (Request, APIContext) async throws -> Response) -> Void) {
        // The sender's side: public, found by the token in the URL (on this listener unless
        // senders have one of their own).
        if !inboundLimits.ownListener {
            add(.post, "/in/{token}", .public) { request, context in try await receive(request, context: context) }
        }

        // Sources
        add(.get, "/v1/sources", .tenant) { _, context in try Self.json(["items": try await inbound.sources(tenant: context.tenant!)]) }
        add(.post, "/v1/sources", .tenant) { request, context in
            let input = try SourceInput(object: try await Input.readObject(request, context: context), creating: true)
            return try Self.json(try await inbound.createSource(tenant: context.tenant!, input), status: .created)
        }
        add(.get, "/v1/sources/{id}", .tenant) { _, context in
            try Self.json(try await inbound.source(tenant: context.tenant!, id: try Self.id(context)))
        }
        add(.patch, "/v1/sources/{id}", .tenant) { request, context in
            let id = try Self.id(context)
            let input = try SourceInput(object: try await Input.readObject(request, context: context), creating: false)
            return try Self.json(try await inbound.updateSource(tenant: context.tenant!, id: id, input))
        }
        add(.delete, "/v1/sources/{id}", .tenant) { _, context in
            try await inbound.deleteSource(tenant: context.tenant!, id: try Self.id(context))
            return Response(status: .noContent)
        }
        add(.get, "/v1/sources/{id}/secret", .tenant) { _, context in
            try Self.json(["secret": try await inbound.secret(tenant: context.tenant!, id: try Self.id(context))])
        }
        add(.post, "/v1/sources/{id}/rotate-url", .tenant) { request, context in
            let id = try Self.id(context)
            let grace = try await rotationGrace(request, context)
            return try Self.json(try await inbound.rotateToken(tenant: context.tenant!, id: id, grace: grace))
        }

        // The inbound log
        add(.get, "/v1/inbound", .tenant) { request, context in
            let parameters = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
            return try Self.json(try await inbound.webhooks(tenant: context.tenant!, try Self.inboundFilter(parameters)))
        }
        add(.get, "/v1/inbound/{id}", .tenant) { _, context in
            try Self.json(try await inbound.webhook(tenant: context.tenant!, id: try Self.id(context)))
        }
        add(.post, "/v1/inbound/{id}/replay", .tenant) { request, context in
            let id = try Self.id(context)
            try await Input.read(request, context: context).rejectUnknown()
            let result = try await inbound.replay(tenant: context.tenant!, id: id)
            if result.eventId != nil { onInboundEvent() }
            return try Self.json(result)
        }
    }

    /// A sender's request: read within the source's size and the time limit, decided,
    /// stored (with its event in the outbox when it makes one), and only then answered.
    func receive(_ request: Request, context: APIContext) async throws -> Response {
        let started = ContinuousClock.now
        guard let token = context.parameters.get("token"), let (source, secret) = try await inbound.intake(token: token) else {
            throw Problem(.notFound, "no source has this URL")
        }
        let body = try await Self.readBody(request, limit: source.maxBodyBytes, timeout: inboundLimits.bodyTimeout)
        let inboundRequest = InboundRequest(
            headers: request.headers.map { (name: $0.name.rawName, value: $0.value) },
            query: request.uri.queryParameters.map { (name: String($0.key), value: String($0.value)) }, body: body.bytes, bodySize: body.size,
            isTooLarge: body.tooLarge, timedOut: body.timedOut, remoteAddress: context.remoteAddress)
        let verdict = Intake.decide(inboundRequest, source: source, secret: secret, now: Date(), maxDataBytes: producer.configuration.limits.maxDataBytes)
        if verdict.status == .rejected {
            Counter(label: "herald_inbound_rejected_total", dimensions: [("reason", Self.rejectionReason(verdict.httpStatus))]).increment()
            // A flood of refused requests is answered but not all kept: the tenant sees a sample (none with 0).
            if inboundLimits.rejectionsKeptPerSecond == 0 || (try? rejectionLimiter.admit(source.id.uuidString, what: "rejections")) == nil {
                Counter(label: "herald_inbound_rejected_unstored_total").increment()
                throw Problem(HTTPResponse.Status(code: verdict.httpStatus), verdict.failure?.description ?? "refused")
            }
        }
        let receipt = try await inbound.receive(verdict, request: inboundRequest, source: source)
        Counter(label: "herald_inbound_requests_total", dimensions: [("status", receipt.status.rawValue)]).increment()
        let elapsed = ContinuousClock.now - started
        Timer(label: "herald_inbound_accept_seconds").recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        if receipt.eventID != nil { onInboundEvent() }
        if verdict.httpStatus >= 300 {
            throw Problem(HTTPResponse.Status(code: verdict.httpStatus), verdict.failure?.description ?? "refused", field: verdict.failure?.field)
        }
        let answer = InboundAnswer(
            id: receipt.id.lowercasedText, status: receipt.status, duplicateOf: receipt.duplicateOf?.lowercasedText,
            error: receipt.status == .parseError ? verdict.failure?.description : nil)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: answer.json)))
    }

    struct Body {
        var bytes: [UInt8] = []
        var size = 0
        var tooLarge = false
        var timedOut = false
    }

    /// The body, read up to `limit` bytes and within `timeout`: a larger one is stopped at
    /// its announced length or as soon as it passes the limit, so a 50 MB body costs at
    /// most the limit in memory; a sender trickling its body is cut off at the timeout.
    static func readBody(_ request: Request, limit: Int, timeout: Duration) async throws -> Body {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return Body(size: length, tooLarge: true)
        }
        let progress = Progress()
        return try await withThrowingTaskGroup(of: Body?.self) { group in
            group.addTask {
                var body = Body()
                for try await buffer in request.body {
                    body.size += buffer.readableBytes
                    progress.received.withLock { $0 = body.size }
                    if body.size > limit {
                        return Body(size: body.size, tooLarge: true)
                    }
                    body.bytes += buffer.readableBytesView
                }
                return body
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            // The reader's body, or nil from the timer (which ends the wait first).
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first ?? Body(size: progress.received.withLock { $0 }, timedOut: true)
        }
    }

    final class Progress: Sendable {
        let received = Mutex(0)
    }

    static func rejectionReason(_ status: Int) -> String {
        switch status {
        case 401: "verification"
        case 408: "timeout"
        case 413: "too_large"
        case 415: "content_type"
        default: "other"
        }
    }

    /// The inbound log's filter from query parameters; the portal's filter form uses it too.
    package static func inboundFilter(_ parameters: [(String, String)]) throws -> InboundFilter {
        var filter = InboundFilter()
        for (name, value) in parameters {
            switch name {
            case "source_id":
                guard let id = UUID(text: value) else { throw Problem.badRequest("source_id", "must be a UUID") }
                filter.source = id
            case "status":
                guard let status = InboundStatus(rawValue: value) else {
                    throw Problem.badRequest("status", "must be one of \(InboundStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.status = status
            case "since", "until", "cursor", "limit":
                try Self.readPage(name, value, since: &filter.since, until: &filter.until, cursor: &filter.cursor, limit: &filter.limit)
            default:
                throw Problem.badRequest(name, "is not a known query parameter")
            }
        }
        return filter
    }
}

/// What a sender is told of a stored webhook.
package struct InboundAnswer: Sendable {
    package var id: String
    package var status: InboundStatus
    package var duplicateOf: String?
    package var error: String?

    package init(id: String, status: InboundStatus, duplicateOf: String?, error: String?) {
        self.id = id
        self.status = status
        self.duplicateOf = duplicateOf
        self.error = error
    }

    /// `{"duplicate_of":…,"error":…,"id":…,"status":…}` as the API's encoder writes its
    /// answers (keys sorted, absent ones left out), written directly: every inbound
    /// request is answered with one, and `JSONEncoder` cost more than its signature check.
    package var json: [UInt8] {
        let members: [(String, String?)] = [("duplicate_of", duplicateOf), ("error", error), ("id", id), ("status", status.rawValue)]
        var text: [UInt8] = [UInt8(ascii: "{")]
        for case let (key, value?) in members {
            if text.count > 1 { text.append(UInt8(ascii: ",")) }
            text += JSONText.string(key)
            text.append(UInt8(ascii: ":"))
            text += JSONText.string(value)
        }
        text.append(UInt8(ascii: "}"))
        return text
    }
}
