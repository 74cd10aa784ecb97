import Delivery
import Events
import Foundation
public import Hummingbird
import Logging
public import Management
public import Policy
public import Postgres
public import Producer

/// The management API under `/v1`: what a tenant does in a webhook dashboard, as JSON.
public struct API: Sendable {
    public struct Configuration: Sendable {
        /// Operator token for tenants and keys; nil disables those routes.
        public var operatorToken: String?
        public var urlPolicy: URLPolicy
        /// How long a rotated-out secret keeps signing.
        public var rotationGrace: Duration

        public init(operatorToken: String?, urlPolicy: URLPolicy = URLPolicy(), rotationGrace: Duration = .seconds(86_400)) {
            self.operatorToken = operatorToken
            self.urlPolicy = urlPolicy
            self.rotationGrace = rotationGrace
        }
    }

    let configuration: Configuration
    let store: Store
    let dispatcher: Dispatcher
    let producer: Producer
    /// Whether the database and the broker answer, for `/readyz`.
    let readiness: @Sendable () async -> [String: Bool]
    /// The Prometheus text for `/metrics`.
    let metrics: @Sendable () -> String

    public init(
        configuration: Configuration, pool: Pool, dispatcher: Dispatcher, producer: Producer,
        readiness: @escaping @Sendable () async -> [String: Bool], metrics: @escaping @Sendable () -> String
    ) {
        self.configuration = configuration
        self.store = Store(pool: pool)
        self.dispatcher = dispatcher
        self.producer = producer
        self.readiness = readiness
        self.metrics = metrics
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
        router.add(middleware: ProblemMiddleware())
        for route in routes() {
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
        return router
    }

    /// Every route as `METHOD /path/{param}`, the form of the OpenAPI document.
    public static var routeList: [String] {
        API.routeShapes.map { "\($0.0.rawValue) \($0.1)" }
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

    static let routeShapes: [(HTTPRequest.Method, String)] = [
        (.get, "/healthz"), (.get, "/readyz"), (.get, "/metrics"), (.get, "/v1/openapi.json"),
        (.post, "/v1/tenants"), (.get, "/v1/tenants"), (.post, "/v1/tenants/{id}/keys"), (.delete, "/v1/keys/{id}"),
        (.get, "/v1/endpoints"), (.post, "/v1/endpoints"), (.get, "/v1/endpoints/{id}"), (.patch, "/v1/endpoints/{id}"),
        (.delete, "/v1/endpoints/{id}"), (.get, "/v1/endpoints/{id}/secret"), (.post, "/v1/endpoints/{id}/rotate-secret"),
        (.post, "/v1/endpoints/{id}/enable"), (.post, "/v1/endpoints/{id}/disable"), (.post, "/v1/endpoints/{id}/activate"),
        (.post, "/v1/endpoints/{id}/test"), (.get, "/v1/endpoints/{id}/deliveries"), (.post, "/v1/endpoints/{id}/recover"),
        (.get, "/v1/deliveries"), (.get, "/v1/deliveries/{id}"), (.post, "/v1/deliveries/{id}/retry"),
        (.get, "/v1/event-types"), (.post, "/v1/events"),
    ]

    private func authenticate(_ request: Request, _ context: APIContext, access: Access) async throws -> APIContext {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw Problem(.unauthorized, "send Authorization: Bearer <tenant key or operator token>")
        }
        let token = String(header.dropFirst(7))
        var context = context
        if let expected = configuration.operatorToken, APIKey.matches(token, expected) {
            context.isOperator = true
        } else if token.hasPrefix("hk_"), let tenant = try await store.tenant(forKey: token) {
            context.tenant = tenant
            context.logger[metadataKey: "tenant"] = "\(tenant.uuidString.lowercased())"
        } else {
            throw Problem(.unauthorized, "the key is unknown or revoked")
        }
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
