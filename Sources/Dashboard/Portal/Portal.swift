public import API
import Cryptography
public import Delivery
import Foundation
import HeraldEvents
public import Hummingbird
import HeraldSupport
package import Management
import Mustache
import NIOCore
public import Policy
package import Records
package import Inbound

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
    /// Sources and the webhooks they received.
    let inbound: InboundStore
    /// Wakes the relay when a replay put an event into the outbox.
    let onInboundEvent: @Sendable () -> Void

    /// Throws if a template compiled into the binary does not parse: at startup, never per request.
    package init(
        configuration: Configuration, store: Store, log: any DeliveryLog, access: PortalAccess, dispatcher: any DeliveryDispatching,
        inbound: InboundStore, onInboundEvent: @escaping @Sendable () -> Void = {}
    ) throws {
        self.configuration = configuration
        self.inbound = inbound
        self.onInboundEvent = onInboundEvent
        self.store = store
        self.log = log
        self.access = access
        actions = Actions(store: store, log: log, dispatcher: dispatcher)
        pages = try Pages()
    }

    /// Adds the portal's pages to the API's router.
    public func register(on router: Router<APIContext>) {
        let portal = router.group("portal").add(middleware: DashboardMiddleware(pages: pages, frameAncestors: configuration.frameAncestors, chrome: .portal(nil)))
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
                // Cleared with the attributes it was set with: a framed browser refuses anything else.
                response.headers[.setCookie] =
                    "\(Self.cookieName)=; Path=/portal; Max-Age=0; " + Self.cookieAttributes(secure: isSecure(request), framed: !configuration.frameAncestors.isEmpty)
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
        portal.get("endpoints/:id/edit") { request, context in
            try await page(request, context) { session in
                guard !session.readOnly else { throw PortalError.readOnly }
                return try pages.endpointForm(EndpointForm(editing: try await store.endpoint(tenant: session.tenant, id: try Self.id(context))), session: session)
            }
        }
        portal.post("endpoints/:id") { request, context in try await updateEndpoint(request, context) }
        portal.post("endpoints/:id/recover") { request, context in try await recover(request, context) }
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
                    notice: "The secret was rotated. Put the new one in your receiver, then confirm below; until then the receiver's secret keeps signing.")
            }
        }
        portal.post("endpoints/:id/confirm-secret") { request, context in
            try await action(request, context) { session, id, _ in
                _ = try await store.confirmSecret(tenant: session.tenant, id: id)
                return "secret-confirmed"
            }
        }
        portal.post("endpoints/:id/enable") { request, context in
            try await action(request, context) { session, id, _ in
                _ = try await actions.updateEndpoint(tenant: session.tenant, id: id, EndpointInput(enabled: true))
                return "enabled"
            }
        }
        portal.post("endpoints/:id/disable") { request, context in
            try await action(request, context) { session, id, _ in
                _ = try await actions.updateEndpoint(tenant: session.tenant, id: id, EndpointInput(enabled: false))
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
        registerInbound(on: portal)
        portal.get("deliveries") { request, context in try await deliveries(request, context) }
        portal.get("deliveries/:id") { request, context in try await delivery(request, context) }
        portal.post("deliveries/:id/retry") { request, context in
            try await form(request, context) { session, _ in
                let id = try Self.id(context)
                _ = try await actions.resend(tenant: session.tenant, delivery: id)
                return Response.redirect(to: "/portal/deliveries/\(id.lowercasedText)?done=resent", type: .found)
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
        response.headers[.setCookie] =
            "\(Self.cookieName)=\(id); Path=/portal; Max-Age=\(seconds); " + Self.cookieAttributes(secure: isSecure(request), framed: !configuration.frameAncestors.isEmpty)
        return response
    }

    /// Runs `body` with the request's live session; a page that says so without one.
    func page(_ request: Request, _ context: APIContext, _ body: (PortalSession) async throws -> Response) async throws -> Response {
        guard let id = Self.cookie(request), let session = try await access.session(id: id) else { throw PortalError.signedOut }
        return try await body(session)
    }

    /// A form post: the session, its CSRF token and (unless allowed) a session that may change things.
    func form(
        _ request: Request, _ context: APIContext, allowReadOnly: Bool = false, _ body: (PortalSession, Form) async throws -> Response
    ) async throws -> Response {
        try await page(request, context) { session in
            let form = try await Form.read(request, csrf: session.csrfToken)
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
                return Response.redirect(to: "/portal/endpoints/\(id.lowercasedText)?done=\(done)", type: .found)
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
                tenant: session.tenant, endpoints: endpoints.compactMap { UUID(text: $0.id) }, since: Chart.since(.day, now: Date()))
            return try pages.endpoints(endpoints, summaries: summaries, session: session)
        }
    }

    /// The endpoint's page for a session already loaded (a form post has it in hand).
    private func endpoint(
        _ request: Request, _ context: APIContext, session: PortalSession, secret: SecretView?, notice: String? = nil,
        recovering: (since: Date, count: Int)? = nil
    ) async throws -> Response {
        let id = try Self.id(context)
        let endpoint = try await store.endpoint(tenant: session.tenant, id: id)
        let done = request.uri.queryParameters.get("done").flatMap(Pages.doneMessage)
        let period = request.uri.queryParameters.get("period").flatMap(Chart.Period.init(rawValue:)) ?? .day
        let now = Date()
        let hours = try await log.hours(tenant: session.tenant, endpoint: id, since: Chart.since(period, now: now))
        return try pages.endpoint(
            endpoint, chart: Chart(hours: hours, period: period, now: now), secret: secret, recovering: recovering, graceHours: Int(configuration.rotationGrace.components.seconds / 3600), session: session,
            notice: notice ?? done)
    }

    private func createEndpoint(_ request: Request, _ context: APIContext) async throws -> Response {
        try await form(request, context) { session, form in
            try await save(EndpointForm(form), session: session) { input in
                try await store.createEndpoint(tenant: session.tenant, input, limit: configuration.endpointsPerTenant)
            }
        }
    }

    private func updateEndpoint(_ request: Request, _ context: APIContext) async throws -> Response {
        try await form(request, context) { session, form in
            let id = try Self.id(context)
            let current = try await store.endpoint(tenant: session.tenant, id: id)
            return try await save(EndpointForm(form, editing: current), session: session) { input in
                try await actions.updateEndpoint(tenant: session.tenant, id: id, input)
            }
        }
    }

    /// Validates the form and saves it; shown again with the errors next to their fields.
    private func save(_ entry: EndpointForm, session: PortalSession, _ body: (EndpointInput) async throws -> EndpointView) async throws -> Response {
        var entry = entry
        entry.validate(urlPolicy: configuration.urlPolicy, headerPrefix: configuration.request.headerPrefix)
        guard entry.errors.isEmpty else { return try pages.endpointForm(entry, session: session, status: .unprocessableContent) }
        do {
            let saved = try await body(entry.input(headerPrefix: configuration.request.headerPrefix))
            return Response.redirect(to: "/portal/endpoints/\(saved.id)?done=\(entry.editing == nil ? "created" : "saved")", type: .found)
        } catch let error as ManagementError where error.kind == .invalid || error.kind == .conflict {
            if let field = error.field { entry.errors[field] = error.message } else { entry.formError = error.message }
            return try pages.endpointForm(entry, session: session, status: .unprocessableContent)
        }
    }

    /// Recover: the failed deliveries since a time are counted first; a second post with
    /// `confirm` sends them again.
    private func recover(_ request: Request, _ context: APIContext) async throws -> Response {
        try await form(request, context) { session, form in
            let id = try Self.id(context)
            guard let since = form.value("since").flatMap(Self.dateTime) else {
                return try await endpoint(request, context, session: session, secret: nil, notice: "Give the time to recover from, such as 2026-05-12T09:30 (UTC).")
            }
            let confirmed = form.value("confirm") == "yes"
            let (count, resent) = try await actions.recover(tenant: session.tenant, endpoint: id, since: since, dryRun: !confirmed)
            if confirmed {
                return Response.redirect(to: "/portal/endpoints/\(id.lowercasedText)?done=recovered-\(resent)", type: .found)
            }
            return try await endpoint(request, context, session: session, secret: nil, recovering: (since, count))
        }
    }

    /// A time from the filter and recover forms: RFC 3339, or a browser's `datetime-local`
    /// value (`2026-05-12T09:30`), read as UTC.
    static func dateTime(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let date = RFC3339.parse(trimmed) { return date }
        if trimmed.utf8.count == 16 { return RFC3339.parse(trimmed + ":00Z") }
        if trimmed.utf8.count == 19 { return RFC3339.parse(trimmed + "Z") }
        return nil
    }

    private func deliveries(_ request: Request, _ context: APIContext) async throws -> Response {
        try await page(request, context) { session in
            // The filter form sends empty values for "all".
            let parameters = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
                .filter { !$0.1.isEmpty && ["endpoint_id", "status", "event_type", "event_id", "since", "until", "cursor"].contains($0.0) }
                // The form's datetime-local values, in the API's form.
                .map { name, value in
                    (name == "since" || name == "until") ? (name, Self.dateTime(value).map { RFC3339.format($0) } ?? value) : (name, value)
                }
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
            let endpoint = try? await store.endpoint(tenant: session.tenant, id: UUID(text: detail.delivery.endpointId) ?? UUID())
            let done = request.uri.queryParameters.get("done").flatMap(Pages.doneMessage)
            return try pages.delivery(detail, endpoint: endpoint, request: configuration.request, session: session, notice: done)
        }
    }

    // MARK: Request parts

    /// Framed by the CRM on another site, a Lax cookie would not reach the frame: there it
    /// is SameSite=None, which browsers accept only with Secure (every form still carries
    /// the session's CSRF token), and Partitioned, so browsers that block third-party
    /// cookies keep it for the frame under the CRM's site (CHIPS). Otherwise Lax.
    static func cookieAttributes(secure: Bool, framed: Bool) -> String {
        secure && framed ? "HttpOnly; SameSite=None; Secure; Partitioned" : "HttpOnly; SameSite=Lax\(secure ? "; Secure" : "")"
    }

    /// `Secure` cookies: by setting (`HERALD_SECURE_COOKIES`), or behind a proxy that says HTTPS.
    func isSecure(_ request: Request) -> Bool {
        configuration.secureCookies || request.headers[.init("X-Forwarded-Proto")!] == "https"
    }

    static func cookie(_ request: Request) -> String? {
        request.cookie(cookieName)
    }

    static func id(_ context: APIContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(text: text) else { throw PortalError.notFound }
        return id
    }
}
