public import Cryptography
import Delivery
import HeraldEvents
import Foundation
import Metrics
import Tracing
public import Hummingbird
public import HummingbirdCore
import HeraldSupport
import NIOCore
import Logging
package import Management
package import Inbound
public import Policy
package import Postgres
package import Records
package import HeraldProducer

/// The management API under `/v1`: what a tenant does in a webhook dashboard, as JSON.
public struct API: Sendable {
    public struct Configuration: Sendable {
        /// Operator token for tenants and keys; nil disables those routes.
        public var operatorToken: String?
        public var urlPolicy: URLPolicy
        /// How long a rotated-out secret keeps signing.
        public var rotationGrace: Duration

        public var quotas: Quotas
        /// Seals endpoint secrets at rest.
        public var secretKeyring: SecretKeyring
        /// The workers' `HERALD_HEADER_PREFIX`: custom headers may not use the names it reserves.
        public var headerPrefix: String
        /// How long a tenant portal link may wait to be opened.
        public var portalLinkTTL: Duration
        /// The inbound side's time and flood limits.
        public var inbound: InboundLimits

        public init(
            operatorToken: String?, urlPolicy: URLPolicy = URLPolicy(), rotationGrace: Duration = .seconds(86_400), quotas: Quotas = Quotas(),
            secretKeyring: SecretKeyring = .plaintext, headerPrefix: String = "X-Herald", portalLinkTTL: Duration = .seconds(900),
            inbound: InboundLimits = InboundLimits()
        ) {
            self.inbound = inbound
            self.headerPrefix = headerPrefix
            self.portalLinkTTL = portalLinkTTL
            self.operatorToken = operatorToken
            self.urlPolicy = urlPolicy
            self.rotationGrace = rotationGrace
            self.quotas = quotas
            self.secretKeyring = secretKeyring
        }
    }

    /// What one tenant or credential may use of a shared deployment; 0 is no limit.
    public struct Quotas: Sendable {
        /// Requests a second per credential (tenant key or operator token); twice that in a burst.
        public var requestsPerSecond: Int
        /// Events a second per tenant through `POST /v1/events`; twice that in a burst.
        public var eventsPerSecond: Int
        public var endpointsPerTenant: Int

        public init(requestsPerSecond: Int = 50, eventsPerSecond: Int = 200, endpointsPerTenant: Int = 100) {
            self.requestsPerSecond = requestsPerSecond
            self.eventsPerSecond = eventsPerSecond
            self.endpointsPerTenant = endpointsPerTenant
        }
    }

    /// What one listener holds: idle connections are closed, and at most `maxConnections`
    /// are open at once (the rest wait in the listen backlog).
    public struct ListenerLimits: Sendable {
        public var idleTimeout: Duration
        public var maxConnections: Int

        public init(idleTimeout: Duration = .seconds(60), maxConnections: Int = 1000) {
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
        }
    }

    /// The HTTP/1.1 server with `limits`' idle timeout, for `Application(server:)`.
    public static func server(_ limits: ListenerLimits) -> HTTPServerBuilder {
        .http1(configuration: .init(idleTimeout: .milliseconds(limits.idleTimeout.milliseconds)))
    }

    /// The listener's configuration with `limits`' connection cap.
    public static func listener(host: String, port: Int, limits: ListenerLimits) -> ApplicationConfiguration {
        ApplicationConfiguration(
            address: .hostname(host, port: port), serverName: "herald",
            availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections))
    }

    let configuration: Configuration
    let store: Store
    /// Which tenant a key belongs to.
    let keys: any TenantKeys
    /// The delivery log's reads and resends.
    let log: any DeliveryLog
    /// Activation, tests, resends and recovery: shared with the portal.
    let actions: Actions
    /// Issues the portal's single-use links.
    let portalAccess: PortalAccess
    let parking: ParkingLot
    let producer: Producer
    /// Whether the database and the broker answer, for `/readyz`.
    let readiness: @Sendable () async -> [String: Bool]
    /// The Prometheus text for `/metrics`.
    let metrics: @Sendable () -> String
    let requestLimiter: RateLimiter
    let publishLimiter: RateLimiter
    /// Sources, their URLs and the webhooks they received.
    package let inbound: InboundStore
    var inboundLimits: InboundLimits { configuration.inbound }
    /// Refused requests kept per source and second.
    let rejectionLimiter: RateLimiter
    /// Called when an inbound webhook put an event into the outbox: wakes the relay.
    let onInboundEvent: @Sendable () -> Void

    /// `publicURL`: the base of the URLs senders post to (`{publicURL}/in/{token}`);
    /// `readPool`: a replica the delivery log is read from (nil: `pool`); `inboundSources`:
    /// the inbound sources kept while a `ChangeListener` tells of their changes (nil: each
    /// request looks its source up).
    package init(
        configuration: Configuration, pool: Pool, readPool: Pool? = nil, dispatcher: Dispatcher, parking: ParkingLot, producer: Producer, publicURL: String,
        inboundSources: SourceCache? = nil, readiness: @escaping @Sendable () async -> [String: Bool], metrics: @escaping @Sendable () -> String,
        onInboundEvent: @escaping @Sendable () -> Void = {}
    ) {
        let store = Store(pool: pool, keyring: configuration.secretKeyring, headerPrefix: configuration.headerPrefix)
        self.init(
            configuration: configuration, store: store, keys: store, log: PostgresRecords(pool: pool, readPool: readPool), dispatcher: dispatcher,
            portalAccess: PortalAccess(pool: pool), parking: parking, producer: producer,
            inbound: InboundStore(
                pool: pool, keyring: configuration.secretKeyring, publicURL: publicURL, maxDataBytes: producer.configuration.limits.maxDataBytes,
                sources: inboundSources),
            readiness: readiness, metrics: metrics, onInboundEvent: onInboundEvent)
    }

    /// With the key lookup, the delivery log and the dispatcher given: the route tests
    /// run the router on them without sockets.
    package init(
        configuration: Configuration, store: Store, keys: any TenantKeys, log: any DeliveryLog, dispatcher: any DeliveryDispatching,
        portalAccess: PortalAccess, parking: ParkingLot, producer: Producer, inbound: InboundStore,
        readiness: @escaping @Sendable () async -> [String: Bool], metrics: @escaping @Sendable () -> String,
        onInboundEvent: @escaping @Sendable () -> Void = {}
    ) {
        self.inbound = inbound
        self.onInboundEvent = onInboundEvent
        rejectionLimiter = RateLimiter(perSecond: configuration.inbound.rejectionsKeptPerSecond)
        self.configuration = configuration
        self.store = store
        self.keys = keys
        self.log = log
        actions = Actions(store: store, log: log, dispatcher: dispatcher)
        self.portalAccess = portalAccess
        self.parking = parking
        self.producer = producer
        self.readiness = readiness
        self.metrics = metrics
        requestLimiter = RateLimiter(perSecond: configuration.quotas.requestsPerSecond)
        publishLimiter = RateLimiter(perSecond: configuration.quotas.eventsPerSecond)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The router with every route, the error translation and authentication.
    public func router() -> Router<APIContext> {
        let router = Router(context: APIContext.self)
        router.add(middleware: RequestMetricsMiddleware())
        router.add(middleware: ProblemMiddleware())
        let routes = routes()
        for route in routes {
            let path = RouterPath(route.path.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: ""))
            let handler = route.handler
            switch route.access {
            case .public:
                router.on(path, method: route.method) { request, context in try await handler(request, context) }
            case .operator, .tenant, .operatorOrTenant:
                let access = route.access
                router.on(path, method: route.method) { request, context in
                    let context = try await authenticate(request, context, access: access)
                    return try await handler(request, context)
                }
            }
        }
        // A path the API serves answers other methods with 405 and the methods it takes.
        let methods = Dictionary(grouping: routes, by: \.path).mapValues { $0.map(\.method) }
        for (path, declared) in methods {
            let routerPath = RouterPath(path.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: ""))
            let allow = declared.map { $0.rawValue }.sorted().joined(separator: ", ")
            for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] where !declared.contains(method) {
                router.on(routerPath, method: method) { request, _ -> Response in
                    var problem = Problem(.methodNotAllowed, "\(request.method.rawValue) is not allowed here; use \(allow)")
                    problem.headers[.allow] = allow
                    throw problem
                }
            }
        }
        return router
    }

    /// Every route the router serves, as `METHOD /path/{param}`: the form of the OpenAPI
    /// document, which a test holds to exactly this list, both ways.
    public var routeList: [String] {
        routes().map { "\($0.method.rawValue) \($0.path)" }
    }

    enum Access: Sendable {
        case `public`, `operator`, tenant
        /// Either: the operator acts on any tenant's object, a tenant on its own.
        case operatorOrTenant
    }

    struct Route: Sendable {
        var method: HTTPRequest.Method
        var path: String
        var access: Access
        var handler: @Sendable (Request, APIContext) async throws -> Response
    }

    private func authenticate(_ request: Request, _ context: APIContext, access: Access) async throws -> APIContext {
        // The scheme is case-insensitive (RFC 9110, section 11.1).
        guard let header = request.headers[.authorization], header.utf8.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw Problem(.unauthorized, "send Authorization: Bearer <tenant key or operator token>")
        }
        let token = String(header.dropFirst(7).drop { $0 == " " })
        var context = context
        if let expected = configuration.operatorToken, APIKey.matches(token, expected) {
            context.isOperator = true
        } else if token.hasPrefix("hk_"), let tenant = try await keys.tenant(forKey: token) {
            context.tenant = tenant
            context.logger[metadataKey: "tenant_id"] = "\(tenant.lowercasedText)"
        } else {
            throw Problem(.unauthorized, "the key is unknown or revoked")
        }
        try requestLimiter.admit(token, what: "requests")
        switch access {
        case .operator where !context.isOperator:
            throw Problem(.forbidden, "this route needs the operator token")
        case .tenant where context.tenant == nil:
            throw Problem(.forbidden, "this route needs a tenant key")
        default:
            return context
        }
    }
}

/// Names, counts, times and logs every answer: an `X-Request-Id` (the caller's, when it is a
/// short token, or a new one) on the response and on every log line of the request; the
/// access log line (method, route pattern, status, duration); the request counter and the
/// duration histogram by method and route pattern (never the path itself: ids and inbound
/// tokens would make a series each).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = APIContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let requestID = Self.requestID(request.headers[.requestID])
        var context = context
        context.logger[metadataKey: "request_id"] = "\(requestID)"
        // The request's server span continues the caller's `traceparent`; what the route
        // does (the producer's publish) is its child.
        var trace = InstrumentationContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &trace, using: FieldsExtractor())
        let span = startSpan(request.method.rawValue, context: trace, ofKind: .server)
        var response: Response
        do {
            response = try await InstrumentationContext.$current.withValue(span.context) { [context] in
                try await next(request, context)
            }
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            span.setStatus(SpanStatus(code: .error))
            span.end()
            throw error
        }
        response.headers[.requestID] = requestID
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        let status = response.status.code
        // The route pattern, never the path: inbound tokens and ids stay out of the spans.
        span.operationName = "\(method) \(route)"
        if span.isRecording {
            span.attributes["http.request.method"] = method
            span.attributes["http.route"] = route
            span.attributes["http.response.status_code"] = status
            span.attributes["herald.request_id"] = requestID
            if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        }
        span.end()
        let elapsed = ContinuousClock.now - start
        Counter(label: "herald_http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))]).increment()
        Timer(label: "herald_http_request_duration_seconds", dimensions: [("method", method), ("route", route)])
            .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        context.logger.info(
            "request",
            metadata: ["method": "\(method)", "route": "\(route)", "status": "\(status)", "duration_ms": "\(Int(elapsed.milliseconds))"])
        return response
    }

    /// The caller's id when it is 1 to 128 characters of letters, digits and `-_.:`;
    /// otherwise a new UUID (nothing a caller sends reaches the logs unchecked).
    static func requestID(_ given: String?) -> String {
        if let given, (1...128).contains(given.count),
            given.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.:".unicodeScalars.contains($0)) })
        {
            return given
        }
        return UUID().lowercasedText
    }
}

extension HTTPFields.Element.Name {
    static let requestID = Self("X-Request-Id")!
}

/// Reads a trace context from a request's headers.
struct FieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPFields.Element.Name(key).flatMap { carrier[$0] }
    }
}

/// Turns every error into problem+json: the API's own problems as they are, management
/// and validation errors by kind, anything else as a 500 that reveals nothing.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = APIContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            throw problem
        } catch let error as ManagementError {
            switch error.kind {
            case .notFound: throw Problem(.notFound, error.message)
            case .invalid: throw Problem(.unprocessableContent, error.description, field: error.field)
            case .conflict: throw Problem(.conflict, error.message)
            case .unavailable: throw Problem(.serviceUnavailable, error.message)
            }
        } catch let error as RecordError {
            switch error.kind {
            case .notFound: throw Problem(.notFound, error.message)
            case .conflict: throw Problem(.conflict, error.message)
            }
        } catch let error as InboundError {
            switch error.kind {
            case .notFound: throw Problem(.notFound, error.message)
            case .conflict: throw Problem(.conflict, error.message)
            }
        } catch let failure as ParseFailure {
            throw Problem(.badRequest, failure.description, field: failure.field)
        } catch let error as EventError {
            throw Problem(.unprocessableContent, error.description, field: error.field)
        } catch let error as PublishError {
            throw Problem(.serviceUnavailable, error.description)
        } catch let error as HTTPError {
            throw Problem(error.status, error.body ?? error.status.reasonPhrase)
        } catch let error as any HTTPResponseError {
            throw Problem(error.status, error.status.reasonPhrase)
        } catch let error as DatabaseError where error.code == .connectionFailed || error.code == .connectionLost {
            context.logger.error("database unavailable", metadata: ["error": "\(error.code)"])
            throw Problem(.serviceUnavailable, "the database is unavailable; try again")
        } catch let error as DatabaseError {
            // SQL text, SQLSTATE and the server's primary message: no bound values.
            context.logger.error("database error", metadata: ["error": "\(error)"])
            throw Problem(.internalServerError, "the request could not be completed")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(describing: type(of: error)))"])
            throw Problem(.internalServerError, "the request could not be completed")
        }
    }
}
