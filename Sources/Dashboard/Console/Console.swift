public import API
import Foundation
import Glibc
import HeraldSupport
import Policy
import Synchronization
public import Hummingbird
public import Management
public import Operations
public import Records

/// The operator console under `/console`: tenants with their endpoints and recent failure
/// rates, disabled endpoints across tenants, the queues with depth and consumers, parked
/// messages (replay, discard), the worker replicas. Signed in by typing the operator token
/// into a form; the session lives in a cookie scoped to `/console`.
public struct Console: Sendable {
    public struct Configuration: Sendable {
        public var sessionTTL: Duration
        /// `Secure` on the cookie even without `X-Forwarded-Proto: https`.
        public var secureCookies: Bool
        /// How long a portal link the operator opens for a tenant lasts.
        public var portalLinkTTL: Duration

        public init(sessionTTL: Duration = .seconds(3600), secureCookies: Bool = false, portalLinkTTL: Duration = .seconds(900)) {
            self.sessionTTL = sessionTTL
            self.secureCookies = secureCookies
            self.portalLinkTTL = portalLinkTTL
        }
    }

    static let cookieName = "herald_console"

    let configuration: Configuration
    let access: ConsoleAccess
    let portalAccess: PortalAccess
    let store: Store
    let log: any DeliveryLog
    let census: BrokerCensus
    let parking: ParkingLot
    let heartbeats: Heartbeats
    let pages: Pages
    /// Sign-in attempts per client address: ten at once, then one every five seconds; an
    /// attempt over the limit is refused before its token is compared.
    let signIns = SignInThrottle()

    public init(
        configuration: Configuration, access: ConsoleAccess, portalAccess: PortalAccess, store: Store, log: any DeliveryLog, census: BrokerCensus,
        parking: ParkingLot, heartbeats: Heartbeats
    ) throws {
        self.configuration = configuration
        self.access = access
        self.portalAccess = portalAccess
        self.store = store
        self.log = log
        self.census = census
        self.parking = parking
        self.heartbeats = heartbeats
        pages = try Pages()
    }

    public func register(on router: Router<APIContext>) {
        let console = router.group("console").add(middleware: DashboardMiddleware(pages: pages, frameAncestors: [], chrome: .console(nil)))
        console.get { request, _ in try await page(request) { session in try await tenants(session) } }
        console.post("sign-in") { request, context in try await signIn(request, context) }
        console.post("sign-out") { request, _ in
            try await form(request) { _, _ in
                if let id = request.cookie(Self.cookieName) { try await access.close(session: id) }
                var response = signInPage(error: nil, status: .ok)
                response.headers[.setCookie] = "\(Self.cookieName)=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict\(isSecure(request) ? "; Secure" : "")"
                return response
            }
        }
        console.get("queues") { request, _ in try await page(request) { session in try await queues(session, notice: nil) } }
        console.post("parked/replay") { request, _ in
            try await form(request) { session, form in
                try await queues(session, notice: try await onParked(form) { try await parking.replay(id: $0) } ?? "The message is back in the work queue.")
            }
        }
        console.post("parked/discard") { request, _ in
            try await form(request) { session, form in
                try await queues(session, notice: try await onParked(form) { try await parking.discard(id: $0) } ?? "The message was discarded.")
            }
        }
        console.get("workers") { request, _ in try await page(request) { session in try await workers(session) } }
        console.post("tenants/:id/portal") { request, context in
            try await form(request) { _, form in
                guard let text = context.parameters.get("id"), let tenant = UUID(text: text) else { throw PortalError.notFound }
                let link = try await portalAccess.createLink(tenant: tenant, readOnly: form.value("read_only") == "yes", ttl: configuration.portalLinkTTL)
                return Response.redirect(to: link.path, type: .found)
            }
        }
    }

    // MARK: Sessions

    private func signIn(_ request: Request, _ context: APIContext) async throws -> Response {
        guard access.isOpen else {
            return signInPage(error: "The console is closed: this deployment has no HERALD_OPERATOR_TOKEN.", status: .serviceUnavailable)
        }
        let form = Form(String(buffer: try await request.body.collect(upTo: 16 * 1024)))
        if let wait = signIns.attempt(from: context.remoteAddress, now: .now) {
            var response = signInPage(error: "Too many sign-in attempts from this address; try again in \(wait) s.", status: .tooManyRequests)
            response.headers[.retryAfter] = String(wait)
            return response
        }
        guard let session = try await access.signIn(token: form.value("token") ?? "", ttl: configuration.sessionTTL), let id = session.id else {
            return signInPage(error: "That is not the operator token.", status: .unauthorized)
        }
        var response = Response.redirect(to: "/console", type: .found)
        response.headers[.setCookie] =
            "\(Self.cookieName)=\(id); Path=/console; Max-Age=\(configuration.sessionTTL.components.seconds); HttpOnly; SameSite=Strict\(isSecure(request) ? "; Secure" : "")"
        return response
    }

    /// `Secure` cookies: by setting (`HERALD_SECURE_COOKIES`), or behind a proxy that says HTTPS.
    private func isSecure(_ request: Request) -> Bool {
        configuration.secureCookies || request.headers[.init("X-Forwarded-Proto")!] == "https"
    }

    private func signInPage(error: String?, status: HTTPResponse.Status) -> Response {
        var values: [String: Any] = ["sessionHours": max(1, configuration.sessionTTL.components.seconds / 3600)]
        if let error { values["error"] = error }
        return pages.render("console_signin", title: "Sign in", values: values, chrome: .console(nil), status: status)
    }

    /// The page for a live session; without one, the sign-in form.
    private func page(_ request: Request, _ body: (ConsoleSession) async throws -> Response) async throws -> Response {
        guard let id = request.cookie(Self.cookieName), let session = try await access.session(id: id) else {
            return signInPage(error: nil, status: .ok)
        }
        return try await body(session)
    }

    /// A form post of a live session carrying its CSRF token.
    private func form(_ request: Request, _ body: (ConsoleSession, Form) async throws -> Response) async throws -> Response {
        guard let id = request.cookie(Self.cookieName), let session = try await access.session(id: id) else {
            return signInPage(error: "Your session has ended; sign in again.", status: .unauthorized)
        }
        return try await body(session, try await Form.read(request, csrf: session.csrfToken))
    }

    // MARK: Pages

    private func tenants(_ session: ConsoleSession) async throws -> Response {
        let since = Chart.since(.day, now: Date())
        async let overview = store.tenantOverview()
        async let activity = log.tenantActivity(since: since)
        async let disabled = store.disabledEndpoints(limit: 200)
        async let circuits = store.openCircuits(limit: 200)
        let (rows, figures, endpoints, open) = try await (overview, activity, disabled, circuits)
        let tenants: [[String: Any]] = rows.map { row in
            let figures = UUID(text: row.tenant.id).flatMap { figures[$0] } ?? TenantActivity()
            return [
                "id": row.tenant.id, "name": row.tenant.name, "endpoints": row.endpoints, "enabled": row.enabled, "disabled": row.disabled,
                "attempts": figures.attempts, "failureRate": figures.failureRate.map(Pages.percent) ?? "—",
                "failing": (figures.failureRate ?? 0) >= 0.2,
            ]
        }
        let disabledRows: [[String: Any]] = endpoints.map { tenant, endpoint in
            let badge = Pages.badge(endpoint)
            return [
                "tenant": tenant, "url": endpoint.url, "badge": badge.text, "badgeClass": badge.cssClass, "reason": endpoint.disabledReason ?? "",
                "disabledAt": endpoint.disabledAt.map { RFC3339.format($0) } ?? "", "failures": endpoint.consecutiveFailures,
            ]
        }
        let circuitRows: [[String: Any]] = open.map { tenant, endpoint in
            ["tenant": tenant, "url": endpoint.url, "openedAt": endpoint.circuitOpenedAt.map { RFC3339.format($0) } ?? ""]
        }
        return pages.render(
            "console_tenants", title: "Tenants", values: ["tenants": tenants, "disabled": disabledRows, "circuits": circuitRows],
            chrome: .console(session), current: "tenants")
    }

    private func queues(_ session: ConsoleSession, notice: String?) async throws -> Response {
        var values: [String: Any] = [:]
        do {
            values["queues"] = try await census.queues().map { queue in
                ["role": queue.role.label, "name": queue.name, "messages": queue.messages.map(String.init) ?? "missing", "consumers": queue.consumers.map(String.init) ?? "—"]
            }
            values["parked"] = try await parking.list(limit: 100).map { parked in
                [
                    "id": parked.id, "reason": parked.reason, "routingKey": parked.routingKey, "bodyKept": parked.bodyKept,
                    "parkedAt": parked.parkedAt.map { RFC3339.format($0) } ?? "", "size": "\(parked.bodyBytes) bytes\(parked.bodyKept ? "" : " (excerpt kept)")",
                ] as [String: Any]
            }
        } catch let error as ManagementError where error.kind == .unavailable {
            values["brokerError"] = error.message
        }
        return pages.render("console_queues", title: "Queues", values: values, chrome: .console(session), notice: notice, current: "queues")
    }

    /// Acts on the parked message the form names; the error's text when it cannot.
    private func onParked(_ form: Form, _ body: (String) async throws -> Void) async throws -> String? {
        guard let id = form.value("id"), !id.isEmpty, id.utf8.count <= 200 else { return "No parked message was named." }
        do {
            try await body(id)
            return nil
        } catch let error as ManagementError {
            return error.message
        }
    }

    private func workers(_ session: ConsoleSession) async throws -> Response {
        let replicas = try await heartbeats.replicas()
        let work = try? await census.queues().first { $0.role == .work }
        let rows: [[String: Any]] = replicas.map { replica in
            let health = !replica.alive ? ("missing", "missing") : replica.consuming ? ("consuming", "healthy") : ("not consuming", "idle")
            return [
                "id": replica.id, "host": replica.host, "pid": replica.pid, "version": replica.version, "inFlight": replica.inFlight,
                "concurrency": replica.concurrency, "startedAt": RFC3339.format(replica.startedAt), "seenAt": RFC3339.format(replica.seenAt),
                "health": health.0, "healthClass": health.1,
            ]
        }
        let values: [String: Any] = [
            "replicas": rows, "interval": Heartbeat.defaultInterval.components.seconds,
            "consumers": work?.consumers.map(String.init) ?? "an unknown number of",
        ]
        return pages.render("console_workers", title: "Workers", values: values, chrome: .console(session), current: "workers")
    }
}

/// Sign-in attempts per client address, as token buckets: an attempt takes a token
/// before its token is compared (so concurrent guesses cannot outrun the count), and an
/// address with none left is refused until one is back. Other addresses are not affected,
/// so nobody can lock the operator out; buckets that filled up again are forgotten.
final class SignInThrottle: Sendable {
    private struct State {
        var buckets: [String: TokenBucket] = [:]
        var prunedAt: Double = 0
    }

    private let state = Mutex(State())
    private let rate: Double
    private let burst: Double
    private let origin: ContinuousClock.Instant

    init(rate: Double = 0.2, burst: Double = 10, origin: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.burst = burst
        self.origin = origin
    }

    /// Nil: the attempt from `address` may go ahead (a token was taken); otherwise the
    /// whole seconds until one is back.
    func attempt(from address: String, now: ContinuousClock.Instant) -> Int? {
        let elapsed = now - origin
        let time = elapsed.seconds
        let client = Self.client(address)
        return state.withLock { state in
            // Idle clients' full buckets are dropped, at most once a minute.
            if state.buckets.count > 10_000 && time - state.prunedAt > 60 {
                state.buckets = state.buckets.filter { !$0.value.isFull(now: time) }
                state.prunedAt = time
            }
            var bucket = state.buckets[client] ?? TokenBucket(rate: rate, burst: burst, now: time)
            let wait = bucket.take(now: time)
            state.buckets[client] = bucket
            return wait.map { Int($0.rounded(.up)) }
        }
    }

    /// Whose attempts count together: an IPv4 address, or an IPv6 /64 (one host may hold a
    /// whole /64 and would otherwise get fresh guesses from each address in it).
    static func client(_ address: String) -> String {
        guard address.contains(":") else { return address }
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, address, &bytes) == 1 else { return address }
        return bytes.prefix(8).map { String(format: "%02x", $0) }.joined() + "/64"
    }
}
