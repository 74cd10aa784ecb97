import API
import Delivery
import FanOut
import Foundation
import HeraldEvents
import HeraldSupport
import Hummingbird
import Management
import Mustache
import NIOCore
import Policy
import Records

/// The portal's templates, compiled into the binary, and what each page shows. Values go
/// through `{{…}}`, which escapes HTML: stored text (URLs, header values, response
/// excerpts, event data) can never become markup.
struct Pages: Sendable {
    let library: MustacheLibrary

    /// Throws only if a template compiled into the binary does not parse.
    init() throws {
        var library = MustacheLibrary()
        let templates: [(String, [UInt8])] = [
            ("layout", PackageResources.layout_mustache), ("message", PackageResources.message_mustache),
            ("endpoints", PackageResources.endpoints_mustache), ("endpoint", PackageResources.endpoint_mustache),
            ("endpoint_form", PackageResources.endpoint_form_mustache), ("deliveries", PackageResources.deliveries_mustache),
            ("delivery", PackageResources.delivery_mustache), ("help", PackageResources.help_mustache),
        ]
        for (name, bytes) in templates {
            try library.register(String(decoding: bytes, as: UTF8.self), named: name)
        }
        self.library = library
    }

    /// `template` with `values`, inside the layout.
    func render(
        _ template: String, title: String, values: [String: Any], session: PortalSession?, notice: String? = nil, nav: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        var values = values
        values["readOnly"] = session?.readOnly ?? false
        values["csrf"] = session?.csrfToken ?? ""
        let content = library.render(values, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "content": content, "csrf": session?.csrfToken ?? ""]
        if let session {
            layout["signedIn"] = true
            layout["readOnly"] = session.readOnly
        }
        if let notice { layout["notice"] = notice }
        if let nav { layout[nav] = true }
        let html = library.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func message(heading: String, message: String, status: HTTPResponse.Status = .ok) -> Response {
        render("message", title: heading, values: ["heading": heading, "message": message], session: nil, status: status)
    }

    func refusal(_ error: PortalError) -> Response {
        switch error {
        case .linkUnusable:
            message(
                heading: "This link cannot be used", message: "It has expired or was already used. Open the webhooks page again from your CRM to get a new one.",
                status: .gone)
        case .signedOut:
            message(heading: "Signed out", message: "Your session has ended. Open the webhooks page again from your CRM.", status: .unauthorized)
        case .forged:
            message(heading: "Form expired", message: "The form did not come from this session. Go back, reload the page and try again.", status: .forbidden)
        case .readOnly:
            message(heading: "Read-only access", message: "This session can look but not change anything.", status: .forbidden)
        case .notFound:
            message(heading: "Not found", message: "There is no such endpoint or delivery.", status: .notFound)
        }
    }

    /// What a finished action tells on the page it returns to (a fixed text per key, so a
    /// link can never put words of its own on the page).
    static func doneMessage(_ key: String) -> String? {
        if key.hasPrefix("activated-replayed-"), let count = Int(key.dropFirst("activated-replayed-".count)) {
            return "The endpoint is active again; \(count) skipped deliveries are being sent."
        }
        return [
            "created": "The endpoint was saved.", "enabled": "The endpoint is enabled.", "disabled": "The endpoint is disabled.",
            "activated": "The endpoint is active again.", "tested": "A test event is on its way; it shows in the delivery log in a moment.",
            "resent": "The delivery is being sent again with a new request ID.",
        ][key]
    }

    // MARK: Endpoints

    /// The endpoint's badge: active, disabled by hand, auto-disabled (with why), DPA missing.
    static func badge(_ endpoint: EndpointView) -> (text: String, cssClass: String) {
        if endpoint.enabled { return ("active", "active") }
        if endpoint.dpaConfirmedAt == nil { return ("DPA missing", "dpa-missing") }
        if let reason = endpoint.disabledReason, reason != "disabled by the tenant" { return ("auto-disabled", "auto-disabled") }
        return ("disabled", "disabled")
    }

    func endpoints(_ endpoints: [EndpointView], summaries: [UUID: EndpointSummary], session: PortalSession) throws -> Response {
        let rows: [[String: Any]] = endpoints.map { endpoint in
            let badge = Self.badge(endpoint)
            let summary = UUID(uuidString: endpoint.id).flatMap { summaries[$0] } ?? EndpointSummary()
            var row: [String: Any] = [
                "id": endpoint.id, "url": endpoint.url, "badge": badge.text, "badgeClass": badge.cssClass,
                "eventTypes": endpoint.eventTypes.joined(separator: ", "),
                "successRate": summary.successRate.map { "\(Self.percent($0)) of \(summary.attempts)" } ?? "no attempts",
                "lastDelivery": summary.lastDeliveryAt.map { RFC3339.format($0) } ?? "never",
            ]
            if let status = summary.lastStatus { row["lastStatus"] = status.rawValue }
            if !endpoint.description.isEmpty { row["description"] = endpoint.description }
            if badge.cssClass == "auto-disabled", let reason = endpoint.disabledReason { row["disabledReason"] = reason }
            return row
        }
        return render("endpoints", title: "Endpoints", values: ["endpoints": rows, "hasEndpoints": !rows.isEmpty], session: session, nav: "onEndpoints")
    }

    func endpoint(
        _ endpoint: EndpointView, chart: Chart, secret: SecretView?, graceHours: Int, session: PortalSession, notice: String?
    ) throws -> Response {
        let badge = Self.badge(endpoint)
        let totals = chart.totals
        var values: [String: Any] = [
            "attemptsSVG": chart.attemptsSVG, "latencySVG": chart.latencySVG, "totalAttempts": totals.attempts,
            "successRate": totals.attempts > 0 ? Self.percent(Double(totals.succeeded) / Double(totals.attempts)) : "—",
            "p50": chart.percentile(0.5).map(Chart.milliseconds) ?? "—", "p95": chart.percentile(0.95).map(Chart.milliseconds) ?? "—",
            "periods": Chart.Period.allCases.map { ["value": $0.rawValue, "label": $0 == .day ? "24 hours" : "7 days", "current": $0 == chart.period] },
            "endpoint": Self.dictionary(endpoint), "badge": badge.text, "badgeClass": badge.cssClass,
            "eventTypes": endpoint.eventTypes.joined(separator: ", "),
            "headers": endpoint.headers.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] },
            "enabled": endpoint.enabled, "canActivate": !endpoint.enabled, "graceHours": graceHours,
            "catalog": Catalog.entries.map { ["type": $0.type] },
        ]
        if let disabledAt = endpoint.disabledAt { values["disabledAt"] = RFC3339.format(disabledAt) }
        if let secret {
            values["secret"] = secret.secret
            if let expires = secret.previousSecretExpiresAt { values["previousExpires"] = RFC3339.format(expires) }
        }
        return render("endpoint", title: endpoint.url, values: values, session: session, notice: notice, nav: "onEndpoints")
    }

    func endpointForm(_ form: EndpointForm, session: PortalSession, status: HTTPResponse.Status = .ok) throws -> Response {
        let selected = Set(form.eventTypes)
        let groups = Dictionary(grouping: Catalog.entries) { String($0.type.split(separator: ".").first ?? "") }
            .sorted { $0.key < $1.key }
            .map { prefix, entries -> [String: Any] in
                [
                    "prefix": prefix, "wildcardChecked": selected.contains(prefix + ".*"),
                    "types": entries.map { ["type": $0.type, "description": $0.description, "checked": selected.contains($0.type)] },
                ]
            }
        var values: [String: Any] = [
            "url": form.url, "description": form.description, "groups": groups, "allEvents": selected.contains("*"),
            "raw": form.payloadFormat != "envelope", "envelope": form.payloadFormat == "envelope", "dpa": form.dpa,
            "dpaConfirmedBy": form.dpaConfirmedBy, "errors": form.errors,
        ]
        if let formError = form.formError { values["formError"] = formError }
        return render("endpoint_form", title: "New endpoint", values: values, session: session, nav: "onEndpoints", status: status)
    }

    // MARK: Help

    /// The receiver contract for one endpoint: the headers with this deployment's prefix,
    /// the body in the endpoint's format, verification code, the retry table, troubleshooting.
    func help(_ endpoint: EndpointView, request settings: RequestSettings, ladder: Ladder, disable: DisablePolicy, session: PortalSession) -> Response {
        let prefix = settings.headerPrefix
        let subscription = Self.subscription(endpoint)
        let sampleEntry = Catalog.entries.first { subscription.selects($0.type) } ?? Catalog.entries[0]
        let sampleEvent = Event(
            id: "evt_3f9a1c2b", type: sampleEntry.type, tenantID: UUID(uuidString: "00000000-0000-4000-8000-000000000001")!,
            occurredAt: Date(timeIntervalSince1970: 1_778_578_200), data: Array(sampleEntry.sample.utf8))
        let format = Endpoint.PayloadFormat(rawValue: endpoint.payloadFormat) ?? .raw
        let headers: [[String: String]] = [
            ["name": "Content-Type", "example": "application/json", "meaning": "The body is JSON, UTF-8."],
            ["name": "User-Agent", "example": settings.userAgent, "meaning": "Who is calling."],
            ["name": "\(prefix)-Event", "example": sampleEntry.type, "meaning": "The event type."],
            ["name": "\(prefix)-Timestamp", "example": "2026-05-12T09:30:00Z", "meaning": "When this attempt was signed (UTC)."],
            ["name": "\(prefix)-Signature", "example": "sha256=5d41402a…", "meaning": "Hex HMAC-SHA256 of \"{timestamp}.{body}\" with the secret."],
            ["name": "\(prefix)-Request-ID", "example": "0b6f1e9e-…", "meaning": "The same on every automatic retry; new on a manual Retry."],
            ["name": "webhook-id", "example": "9a1c3f5e-…", "meaning": "Standard Webhooks: the delivery's id, the same on every attempt. Deduplicate on it."],
            ["name": "webhook-timestamp", "example": "1778578200", "meaning": "Standard Webhooks: Unix seconds."],
            ["name": "webhook-signature", "example": "v1,K5oZfzN95Z9UVu1…", "meaning": "Standard Webhooks: base64 HMAC-SHA256 of \"{id}.{timestamp}.{body}\"."],
        ] + endpoint.headers.sorted { $0.key < $1.key }.map { ["name": $0.key, "example": $0.value, "meaning": "A custom header of this endpoint."] }
        // The examples name the default prefix; a deployment that brands it sees its own.
        let lowered = prefix.lowercased() + "-"
        let snippets: [[String: Any]] = [
            ("python", "Python", PackageResources.verify_py), ("node", "Node.js", PackageResources.verify_js), ("php", "PHP", PackageResources.verify_php),
        ].enumerated().map { index, snippet in
            [
                "id": snippet.0, "language": snippet.1, "open": index == 0,
                "code": String(decoding: snippet.2, as: UTF8.self).replacingOccurrences(of: "x-herald-", with: lowered)
                    .replacingOccurrences(of: "X-Herald-", with: prefix + "-"),
            ]
        }
        var ladderRows: [[String: Any]] = [["attempt": 1, "when": "at once"]]
        var elapsed = Duration.zero
        for (rung, delay) in ladder.delays.enumerated() {
            elapsed += delay
            ladderRows.append(["attempt": rung + 2, "when": "\(ladder.label(rung: rung)) after the previous one (\(Self.span(elapsed)) after the first)"])
        }
        let values: [String: Any] = [
            "endpointId": endpoint.id, "url": endpoint.url, "timeoutSeconds": Int(settings.timeout.components.seconds), "headers": headers,
            "prefix": prefix, "sampleType": sampleEntry.type,
            "sampleBody": String(decoding: WebhookRequest.body(for: sampleEvent, format: format), as: UTF8.self),
            "formatDescription": format == .envelope
                ? "The envelope: the event's id, type, timestamp, tenant_id, and its data."
                : "The event's data object as it is; the type is in the \(prefix)-Event header.",
            "snippets": snippets, "ladder": ladderRows, "maxAttempts": ladder.maxAttempts,
            "disableAfter": disable.threshold > 0 ? disable.threshold as Any : false,
        ]
        return render("help", title: "Receiving webhooks", values: values, session: session, nav: "onEndpoints")
    }

    // MARK: Delivery log

    func deliveries(
        _ page: Page<DeliveryView>, parameters: [(String, String)], endpoints: [EndpointView], filter: DeliveryFilter, filterError: String?,
        session: PortalSession
    ) throws -> Response {
        let items: [[String: Any]] = page.items.map { item in
            [
                "id": item.id, "createdAt": RFC3339.format(item.createdAt), "eventType": item.eventType, "eventId": item.eventId,
                "status": item.status.rawValue, "attempts": item.attempts,
                "lastAnswer": item.lastStatusCode.map { "HTTP \($0)" } ?? item.lastErrorClass ?? "",
            ]
        }
        var values: [String: Any] = [
            "items": items, "eventType": filter.eventType ?? "",
            "endpointOptions": endpoints.map { ["id": $0.id, "url": $0.url, "selected": $0.id == filter.endpoint?.uuidString.lowercased()] },
            "statusOptions": DeliveryState.Status.allCases.map { ["value": $0.rawValue, "selected": $0 == filter.status] },
        ]
        if let filterError { values["filterError"] = filterError }
        if let cursor = page.nextCursor {
            values["next"] = "/portal/deliveries?" + Self.query(parameters + [("cursor", cursor)])
        }
        return render("deliveries", title: "Delivery log", values: values, session: session, nav: "onDeliveries")
    }

    func delivery(_ detail: DeliveryDetail, endpointURL: String?, session: PortalSession, notice: String?) throws -> Response {
        let attempts: [[String: Any]] = detail.attempts.map { attempt in
            var row: [String: Any] = [
                "attempt": attempt.attempt, "startedAt": RFC3339.format(attempt.startedAt), "trigger": attempt.trigger.rawValue,
                "result": attempt.statusCode.map { "HTTP \($0)" } ?? attempt.errorClass ?? "", "durationMs": attempt.durationMs,
            ]
            if let message = attempt.errorMessage { row["errorMessage"] = message }
            if let excerpt = attempt.responseExcerpt, !excerpt.isEmpty { row["responseExcerpt"] = excerpt }
            return row
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let payload = (try? encoder.encode(detail.event.data)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let values: [String: Any] = [
            "delivery": Self.dictionary(detail.delivery), "endpointURL": endpointURL ?? detail.delivery.endpointId,
            "occurredAt": RFC3339.format(detail.event.occurredAt), "attempts": attempts, "payload": payload,
            "final": detail.delivery.status.isFinal,
            "nextAttempt": detail.delivery.nextAttemptAt.map { RFC3339.format($0) } ?? "—",
        ]
        return render("delivery", title: "Delivery", values: values, session: session, notice: notice, nav: "onDeliveries")
    }

    // MARK: Helpers

    /// The endpoint as the delivery code sees it, without its secret: for what it selects
    /// and the request it makes.
    static func subscription(_ view: EndpointView) -> Endpoint {
        Endpoint(
            id: UUID(uuidString: view.id) ?? UUID(), tenantID: UUID(), url: view.url, eventTypes: view.eventTypes,
            filters: view.filters.mapValues(Set.init), customHeaders: view.headers,
            payloadFormat: Endpoint.PayloadFormat(rawValue: view.payloadFormat) ?? .raw, secret: "", enabled: view.enabled)
    }

    /// "1h 36m", "14h 36m": a time since the first attempt.
    static func span(_ duration: Duration) -> String {
        let minutes = Int(duration.components.seconds / 60)
        let (days, hours, rest) = (minutes / 1440, minutes % 1440 / 60, minutes % 60)
        return [days > 0 ? "\(days)d" : nil, hours > 0 ? "\(hours)h" : nil, rest > 0 || minutes == 0 ? "\(rest)m" : nil]
            .compactMap { $0 }.joined(separator: " ")
    }

    /// A view as the dictionary a template reads (snake_case keys turned back to the Swift names).
    static func dictionary(_ value: some Encodable) -> [String: Any] {
        guard let data = try? JSONEncoder().encode(value), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return [:]
        }
        return object
    }

    /// "97 %", "99.5 %": one decimal only where it tells something.
    static func percent(_ share: Double) -> String {
        let value = share * 100
        return value == value.rounded() || value < 99 ? "\(Int(value.rounded())) %" : String(format: "%.1f %%", value)
    }

    static func query(_ parameters: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return parameters.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
    }
}

/// The new-endpoint form: what was typed (kept when it is shown again) and what is wrong.
struct EndpointForm {
    var url = ""
    var description = ""
    var eventTypes: [String] = []
    var payloadFormat = "raw"
    var dpa = false
    var dpaConfirmedBy = ""
    var errors: [String: String] = [:]
    var formError: String?

    init() {}

    init(_ form: Form) {
        url = (form.value("url") ?? "").trimmingCharacters(in: .whitespaces)
        description = form.value("description") ?? ""
        eventTypes = form.values("event_types")
        payloadFormat = form.value("payload_format") == "envelope" ? "envelope" : "raw"
        dpa = form.value("dpa") == "yes"
        dpaConfirmedBy = (form.value("dpa_confirmed_by") ?? "").trimmingCharacters(in: .whitespaces)
    }

    mutating func validate(urlPolicy: URLPolicy) {
        if url.isEmpty {
            errors["url"] = "Enter the URL that receives the webhooks."
        } else if let violation = urlPolicy.violation(url) {
            errors["url"] = violation
        }
        if eventTypes.isEmpty {
            errors["event_types"] = "Choose at least one event."
        } else if let bad = eventTypes.first(where: { !API.isSelection($0) }) {
            errors["event_types"] = "'\(bad.prefix(100))' is not an event type or a wildcard such as invoice.*"
        }
        if description.utf8.count > 500 { errors["description"] = "At most 500 characters." }
        if dpa && dpaConfirmedBy.isEmpty {
            errors["dpa_confirmed_by"] = "Name the person who confirmed the data processing agreement."
        } else if !dpa && !dpaConfirmedBy.isEmpty {
            errors["dpa_confirmed_by"] = "Tick the box to confirm the agreement, or leave the name empty."
        } else if dpaConfirmedBy.utf8.count > 200 {
            errors["dpa_confirmed_by"] = "At most 200 characters."
        }
    }

    /// What the store creates: enabled once the DPA is confirmed, saved disabled before.
    var input: EndpointInput {
        EndpointInput(
            url: url, description: description, eventTypes: eventTypes, payloadFormat: payloadFormat, enabled: dpa,
            dpaConfirmedBy: dpa ? dpaConfirmedBy : nil)
    }
}
