public import API
import Cryptography
public import Delivery
import Foundation
import HeraldEvents
public import Hummingbird
import HeraldSupport
public import Management
import Mustache
import NIOCore
public import Policy
public import Records

/// The tenant portal under `/portal`: endpoints, the delivery log, tests and resends as
/// server-rendered HTML. Every action is a plain form (no JavaScript needed); a browser
/// gets in through a single-use link the CRM asked for, which opens a session cookie
/// scoped to one tenant; every POST carries the session's CSRF token.
public struct Portal: Sendable {
    public struct Configuration: Sendable {
        /// How long a session lasts after its link was opened.
        public var sessionTTL: Duration
        /// Origins that may show the portal in a frame (the CRM's); none: no framing at all.
        public var frameAncestors: [String]
        /// `Secure` on the cookie even without `X-Forwarded-Proto: https`.
        public var secureCookies: Bool
        public var urlPolicy: URLPolicy
        /// How long a rotated-out secret keeps signing.
        public var rotationGrace: Duration
        /// The most endpoints a tenant may have (0: no limit).
        public var endpointsPerTenant: Int
        /// What the workers send (header prefix, user agent, timeout), for the help page
        /// and an attempt's request headers.
        public var request: RequestSettings
        public var ladder: Ladder
        public var disable: DisablePolicy

        public init(
            sessionTTL: Duration = .seconds(3600), frameAncestors: [String] = [], secureCookies: Bool = false, urlPolicy: URLPolicy = URLPolicy(),
            rotationGrace: Duration = .seconds(86_400), endpointsPerTenant: Int = 0, request: RequestSettings = RequestSettings(),
            ladder: Ladder = .standard, disable: DisablePolicy = DisablePolicy()
        ) {
            self.sessionTTL = sessionTTL
            self.frameAncestors = frameAncestors
            self.secureCookies = secureCookies
            self.urlPolicy = urlPolicy
            self.rotationGrace = rotationGrace
            self.endpointsPerTenant = endpointsPerTenant
            self.request = request
            self.ladder = ladder
            self.disable = disable
        }
    }

    static let cookieName = "herald_portal"

    let configuration: Configuration
    let store: Store
    let log: any DeliveryLog
    let access: PortalAccess
    let actions: Actions
    let pages: Pages

    /// Throws if a template compiled into the binary does not parse: at startup, never per request.
    public init(
        configuration: Configuration, store: Store, log: any DeliveryLog, access: PortalAccess, dispatcher: any DeliveryDispatching
    ) throws {
        self.configuration = configuration
        self.store = store
        self.log = log
        self.access = access
        actions = Actions(store: store, log: log, dispatcher: dispatcher)
        pages = try Pages()
    }

    /// Adds the portal's pages to the API's router.
    public func register(on router: Router<APIContext>) {
        let portal = router.group("portal").add(middleware: PortalMiddleware(pages: pages, frameAncestors: configuration.frameAncestors))
        portal.get("static/portal.css") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.portal_css)))
        }
        portal.get("enter/:token") { request, context in try await enter(request, context) }
        portal.get { _, _ in Response.redirect(to: "/portal/endpoints", type: .normal) }
        portal.post("sign-out") { request, context in
            try await form(request, context, allowReadOnly: true) { _, _ in
                if let id = Self.cookie(request) { try await access.close(session: id) }
                var response = pages.message(heading: "Signed out", message: "Open the portal again from your CRM to continue.")
                response.headers[.setCookie] = "\(Self.cookieName)=; Path=/portal; Max-Age=0; HttpOnly; SameSite=Lax"
                return response
            }
        }
        portal.get("endpoints") { request, context in try await endpoints(request, context) }
        portal.get("endpoints/new") { request, context in
            try await page(request, context) { session in
                guard !session.readOnly else { throw PortalError.readOnly }
                return try pages.endpointForm(EndpointForm(), session: session)
            }
        }
        portal.post("endpoints") { request, context in try await createEndpoint(request, context) }
        portal.get("endpoints/:id") { request, context in
            try await page(request, context) { session in try await endpoint(request, context, session: session, secret: nil) }
        }
        portal.get("endpoints/:id/help") { request, context in
            try await page(request, context) { session in
                let endpoint = try await store.endpoint(tenant: session.tenant, id: try Self.id(context))
                return pages.help(endpoint, request: configuration.request, ladder: configuration.ladder, disable: configuration.disable, session: session)
            }
        }
        portal.post("endpoints/:id/secret") { request, context in
            try await form(request, context) { session, _ in
                let secret = try await store.secret(tenant: session.tenant, id: try Self.id(context))
                return try await endpoint(request, context, session: session, secret: secret)
            }
        }
        portal.post("endpoints/:id/rotate-secret") { request, context in
            try await form(request, context) { session, _ in
                let secret = try await store.rotateSecret(tenant: session.tenant, id: try Self.id(context), grace: configuration.rotationGrace)
                return try await endpoint(
                    request, context, session: session, secret: secret,
                    notice: "The secret was rotated. Update your receiver; the old one keeps signing for a while.")
            }
        }
        portal.post("endpoints/:id/enable") { request, context in
            try await action(request, context) { session, id, _ in
                _ = try await store.updateEndpoint(tenant: session.tenant, id: id, EndpointInput(enabled: true))
                return "enabled"
            }
        }
        portal.post("endpoints/:id/disable") { request, context in
            try await action(request, context) { session, id, _ in
                _ = try await store.updateEndpoint(tenant: session.tenant, id: id, EndpointInput(enabled: false))
                return "disabled"
            }
        }
        portal.post("endpoints/:id/activate") { request, context in
            try await action(request, context) { session, id, form in
                let (_, replayed) = try await actions.activate(tenant: session.tenant, endpoint: id, replaySkipped: form.value("replay_skipped") == "yes")
                return replayed > 0 ? "activated-replayed-\(replayed)" : "activated"
            }
        }
        portal.post("endpoints/:id/test") { request, context in
            try await action(request, context) { session, id, form in
                _ = try await actions.sendTest(tenant: session.tenant, endpoint: id, type: form.value("event_type") ?? "")
                return "tested"
            }
        }
        portal.get("deliveries") { request, context in try await deliveries(request, context) }
        portal.get("deliveries/:id") { request, context in try await delivery(request, context) }
        portal.post("deliveries/:id/retry") { request, context in
            try await form(request, context) { session, _ in
                let id = try Self.id(context)
                _ = try await actions.resend(tenant: session.tenant, delivery: id)
                return Response.redirect(to: "/portal/deliveries/\(id.uuidString.lowercased())?done=resent", type: .found)
            }
        }
    }

    // MARK: Getting in

    private func enter(_ request: Request, _ context: APIContext) async throws -> Response {
        guard let token = context.parameters.get("token"), let session = try await access.open(link: token, ttl: configuration.sessionTTL),
            let id = session.id
        else {
            throw PortalError.linkUnusable
        }
        var response = Response.redirect(to: "/portal/endpoints", type: .found)
        let seconds = configuration.sessionTTL.components.seconds
        let secure = configuration.secureCookies || request.headers[.init("X-Forwarded-Proto")!] == "https"
        response.headers[.setCookie] = "\(Self.cookieName)=\(id); Path=/portal; Max-Age=\(seconds); HttpOnly; SameSite=Lax\(secure ? "; Secure" : "")"
        return response
    }

    /// Runs `body` with the request's live session; a page that says so without one.
    private func page(_ request: Request, _ context: APIContext, _ body: (PortalSession) async throws -> Response) async throws -> Response {
        guard let id = Self.cookie(request), let session = try await access.session(id: id) else { throw PortalError.signedOut }
        return try await body(session)
    }

    /// A form post: the session, its CSRF token and (unless allowed) a session that may change things.
    private func form(
        _ request: Request, _ context: APIContext, allowReadOnly: Bool = false, _ body: (PortalSession, Form) async throws -> Response
    ) async throws -> Response {
        try await page(request, context) { session in
            let buffer = try await request.body.collect(upTo: 64 * 1024)
            let form = Form(String(buffer: buffer))
            guard let token = form.value("csrf"), constantTimeEquals(Array(token.utf8), Array(session.csrfToken.utf8)) else {
                throw PortalError.forged
            }
            guard allowReadOnly || !session.readOnly else { throw PortalError.readOnly }
            return try await body(session, form)
        }
    }

    /// An endpoint action: done, back to its page with what happened; refused, the page with why.
    private func action(
        _ request: Request, _ context: APIContext, _ body: @escaping (PortalSession, UUID, Form) async throws -> String
    ) async throws -> Response {
        try await form(request, context) { session, form in
            let id = try Self.id(context)
            do {
                let done = try await body(session, id, form)
                return Response.redirect(to: "/portal/endpoints/\(id.uuidString.lowercased())?done=\(done)", type: .found)
            } catch let error as ManagementError where error.kind != .notFound {
                return try await endpoint(request, context, session: session, secret: nil, notice: error.message)
            }
        }
    }

    // MARK: Pages

    private func endpoints(_ request: Request, _ context: APIContext) async throws -> Response {
        try await page(request, context) { session in
            let endpoints = try await store.endpoints(tenant: session.tenant)
            let summaries = try await log.summaries(
                tenant: session.tenant, endpoints: endpoints.compactMap { UUID(uuidString: $0.id) }, since: Date().addingTimeInterval(-86_400))
            return try pages.endpoints(endpoints, summaries: summaries, session: session)
        }
    }

    /// The endpoint's page for a session already loaded (a form post has it in hand).
    private func endpoint(
        _ request: Request, _ context: APIContext, session: PortalSession, secret: SecretView?, notice: String? = nil
    ) async throws -> Response {
        let id = try Self.id(context)
        let endpoint = try await store.endpoint(tenant: session.tenant, id: id)
        let done = request.uri.queryParameters.get("done").flatMap(Pages.doneMessage)
        let period = request.uri.queryParameters.get("period").flatMap(Chart.Period.init(rawValue:)) ?? .day
        let now = Date()
        let hours = try await log.hours(tenant: session.tenant, endpoint: id, since: Chart.since(period, now: now))
        return try pages.endpoint(
            endpoint, chart: Chart(hours: hours, period: period, now: now), secret: secret, graceHours: Int(configuration.rotationGrace.components.seconds / 3600), session: session,
            notice: notice ?? done)
    }

    private func createEndpoint(_ request: Request, _ context: APIContext) async throws -> Response {
        try await form(request, context) { session, form in
            var entry = EndpointForm(form)
            entry.validate(urlPolicy: configuration.urlPolicy)
            guard entry.errors.isEmpty else { return try pages.endpointForm(entry, session: session, status: .unprocessableContent) }
            do {
                let created = try await store.createEndpoint(tenant: session.tenant, entry.input, limit: configuration.endpointsPerTenant)
                return Response.redirect(to: "/portal/endpoints/\(created.id)?done=created", type: .found)
            } catch let error as ManagementError where error.kind == .invalid || error.kind == .conflict {
                if let field = error.field { entry.errors[field] = error.message } else { entry.formError = error.message }
                return try pages.endpointForm(entry, session: session, status: .unprocessableContent)
            }
        }
    }

    private func deliveries(_ request: Request, _ context: APIContext) async throws -> Response {
        try await page(request, context) { session in
            // The filter form sends empty values for "all".
            let parameters = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
                .filter { !$0.1.isEmpty && ["endpoint_id", "status", "event_type", "cursor"].contains($0.0) }
            let endpoints = try await store.endpoints(tenant: session.tenant)
            var filterError: String?
            var filter = DeliveryFilter()
            do {
                filter = try API.deliveryFilter(parameters, allowEndpoint: true)
            } catch let problem as Problem {
                filterError = problem.detail
            }
            let page = try await log.deliveries(tenant: session.tenant, filter)
            return try pages.deliveries(
                page, parameters: parameters.filter { $0.0 != "cursor" }, endpoints: endpoints, filter: filter, filterError: filterError,
                session: session)
        }
    }

    private func delivery(_ request: Request, _ context: APIContext) async throws -> Response {
        try await page(request, context) { session in
            let detail = try await log.delivery(tenant: session.tenant, id: try Self.id(context))
            let endpoint = try? await store.endpoint(tenant: session.tenant, id: UUID(uuidString: detail.delivery.endpointId) ?? UUID())
            let done = request.uri.queryParameters.get("done").flatMap(Pages.doneMessage)
            return try pages.delivery(detail, endpointURL: endpoint?.url, session: session, notice: done)
        }
    }

    // MARK: Request parts

    static func cookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix(cookieName + "=") { return String(trimmed.dropFirst(cookieName.count + 1)) }
            }
        }
        return nil
    }

    static func id(_ context: APIContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else { throw PortalError.notFound }
        return id
    }
}

/// Why a portal page cannot be shown; each is a page of its own, never a stack trace.
enum PortalError: Error {
    case linkUnusable, signedOut, forged, readOnly, notFound
}

/// Answers every portal request with its security headers, and turns refusals into pages.
struct PortalMiddleware: RouterMiddleware {
    typealias Context = APIContext
    let pages: Pages
    let frameAncestors: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as PortalError {
            response = pages.refusal(error)
        } catch let error as ManagementError where error.kind == .notFound {
            response = pages.refusal(.notFound)
        } catch let error as RecordError where error.kind == .notFound {
            response = pages.refusal(.notFound)
        } catch let error as RecordError {
            response = pages.message(heading: "Not possible now", message: error.message, status: .conflict)
        } catch let error as ManagementError {
            response = pages.message(heading: "Not possible now", message: error.message, status: error.kind == .unavailable ? .serviceUnavailable : .conflict)
        }
        let ancestors = frameAncestors.isEmpty ? "'none'" : frameAncestors.joined(separator: " ")
        response.headers[.contentSecurityPolicy] =
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors \(ancestors)"
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        // The link in the address bar is single-use, but it must not travel on.
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

/// An `application/x-www-form-urlencoded` body.
struct Form {
    var fields: [(String, String)] = []

    init(_ body: String) {
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            fields.append((decode(parts[0]), parts.count > 1 ? decode(parts[1]) : ""))
        }
    }

    func value(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
    func values(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }
}
