import API
import Delivery
import FanOut
import Foundation
import HeraldEvents
import HTTPClient
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
            ("console_signin", PackageResources.console_signin_mustache), ("console_tenants", PackageResources.console_tenants_mustache),
            ("console_queues", PackageResources.console_queues_mustache), ("console_workers", PackageResources.console_workers_mustache),
            ("sources", PackageResources.sources_mustache), ("source", PackageResources.source_mustache),
            ("source_form", PackageResources.source_form_mustache), ("inbound", PackageResources.inbound_mustache),
            ("inbound_rows", PackageResources.inbound_rows_mustache), ("inbound_webhook", PackageResources.inbound_webhook_mustache),
        ]
        for (name, bytes) in templates {
            try library.register(String(decoding: bytes, as: UTF8.self), named: name)
        }
        self.library = library
    }

    /// `template` with `values`, inside the layout of `chrome`'s area; `current` names the
    /// navigation link to mark.
    func render(
        _ template: String, title: String, values: [String: Any], chrome: Chrome, notice: String? = nil, current: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        var values = values
        values["readOnly"] = chrome.readOnly
        values["csrf"] = chrome.csrf ?? ""
        let content = library.render(values, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "brand": chrome.brand, "content": content, "csrf": chrome.csrf ?? ""]
        if chrome.csrf != nil {
            layout["signedIn"] = true
            layout["readOnly"] = chrome.readOnly
            layout["signOut"] = chrome.signOut
            layout["links"] = chrome.links.map { ["href": $0.href, "label": $0.label, "current": $0.key == current] }
        }
        if let notice { layout["notice"] = notice }
        let html = library.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A portal page.
    func render(
        _ template: String, title: String, values: [String: Any], session: PortalSession?, notice: String? = nil, nav: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        render(template, title: title, values: values, chrome: .portal(session), notice: notice, current: nav, status: status)
    }

    func message(heading: String, message: String, status: HTTPResponse.Status = .ok, chrome: Chrome = .portal(nil)) -> Response {
        render("message", title: heading, values: ["heading": heading, "message": message], chrome: chrome, status: status)
    }

    func refusal(_ error: PortalError, chrome: Chrome = .portal(nil)) -> Response {
        func message(heading: String, message: String, status: HTTPResponse.Status) -> Response {
            self.message(heading: heading, message: message, status: status, chrome: chrome)
        }
        return switch error {
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
            message(heading: "Not found", message: "There is no such page, endpoint, delivery or message.", status: .notFound)
        }
    }

    /// What a finished action tells on the page it returns to (a fixed text per key, so a
    /// link can never put words of its own on the page).
    static func doneMessage(_ key: String) -> String? {
        if key.hasPrefix("activated-replayed-"), let count = Int(key.dropFirst("activated-replayed-".count)) {
            return "The endpoint is active again; \(count) skipped deliveries are being sent."
        }
        if key.hasPrefix("recovered-"), let count = Int(key.dropFirst("recovered-".count)) {
            return "\(count) failed deliveries are being sent again."
        }
        return [
            "created": "The endpoint was saved.", "saved": "The changes were saved.", "enabled": "The endpoint is enabled.", "disabled": "The endpoint is disabled.",
            "activated": "The endpoint is active again.", "tested": "A test event is on its way; it shows in the delivery log in a moment.",
            "resent": "The delivery is being sent again with a new request ID.",
            "secret-confirmed": "The rotation is confirmed: deliveries are signed with the new secret only.",
            "source-created": "The source was created. Paste its URL (and its secret, if it has one) into the sending service.",
            "url-rotated": "The source has a new URL. Update the sending service; the old URL keeps working for a while.",
            "replayed": "The webhook was processed again through the source's present mapping.",
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
            let summary = UUID(text: endpoint.id).flatMap { summaries[$0] } ?? EndpointSummary()
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
        return render("endpoints", title: "Endpoints", values: ["endpoints": rows, "hasEndpoints": !rows.isEmpty], session: session, nav: "endpoints")
    }

    func endpoint(
        _ endpoint: EndpointView, chart: Chart, secret: SecretView?, recovering: (since: Date, count: Int)? = nil, graceHours: Int,
        session: PortalSession, notice: String?
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
        if let openedAt = endpoint.circuitOpenedAt, endpoint.enabled { values["circuitOpenedAt"] = RFC3339.format(openedAt) }
        values["signatureSummary"] = Self.profileLabel(endpoint.signature.name)
        let settings = endpoint.signature.config.sorted { $0.key < $1.key }.compactMap { key, value -> String? in
            guard key != "profile", case .string(let text) = value else { return nil }
            return "\(key): \(text)"
        }
        // Mustache shows a section for an empty string: set only when there is something.
        if !settings.isEmpty { values["signatureSettings"] = settings.joined(separator: ", ") }
        values["unsigned"] = endpoint.signature == .none
        if let filter = endpoint.payloadFilter { values["payloadFilter"] = filter.description }
        if let fields = endpoint.payloadFields {
            values["payloadFields"] = fields.config.sorted { $0.key < $1.key }.compactMap { key, value -> String? in
                guard case .string(let text) = value else { return nil }
                return "\(key) → \(text)"
            }.joined(separator: ", ")
        }
        if let until = endpoint.previousSecretExpiresAt {
            let multiple = endpoint.signature.carriesEverySecret
            values["rotation"] = [
                "until": RFC3339.format(until),
                "how": multiple
                    ? "Deliveries carry a signature with each secret until then, so receivers with either verify."
                    : "Until you confirm (or until then), deliveries are signed with the previous secret, the one your receiver has. Put the new secret in your receiver, then confirm.",
            ]
        }
        // The recover form offers the last day; after a count, it asks to confirm.
        values["recoverSince"] = String(RFC3339.format(recovering?.since ?? Date().addingTimeInterval(-86_400)).prefix(16))
        if let recovering {
            values["recovering"] = ["count": recovering.count, "since": RFC3339.format(recovering.since), "none": recovering.count == 0]
        }
        if let secret {
            values["secret"] = secret.secret
            if let expires = secret.previousSecretExpiresAt { values["previousExpires"] = RFC3339.format(expires) }
        }
        return render("endpoint", title: endpoint.url, values: values, session: session, notice: notice, nav: "endpoints")
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
            "formats": Endpoint.PayloadFormat.allCases.map { ["value": $0.rawValue, "label": Self.formatLabel($0), "selected": $0.rawValue == form.payloadFormat] },
            "fields": EndpointForm.envelopeKeys.map { ["key": $0, "value": form.payloadFields[$0] ?? "", "placeholder": $0 == "tenant" ? "tenant_id" : $0] },
            "payloadFilter": form.payloadFilter,
            "profiles": SignatureProfile.names.map { ["value": $0, "label": Self.profileLabel($0), "selected": $0 == form.signature["profile"]] },
            "signature": form.signature, "hexSelected": form.signature["encoding"] != "base64", "dpa": form.dpa,
            "dpaConfirmedBy": form.dpaConfirmedBy, "errors": form.errors, "headers": form.headers, "filters": form.filters,
            "rateLimit": form.rateLimit, "ordered": form.ordered,
            "action": form.editing.map { "/portal/endpoints/\($0.id)" } ?? "/portal/endpoints",
            "heading": form.editing == nil ? "New endpoint" : "Edit endpoint",
        ]
        if let editing = form.editing {
            values["editing"] = ["id": editing.id]
            if editing.dpaConfirmedAt != nil { values["dpaConfirmed"] = true }
        }
        if let formError = form.formError { values["formError"] = formError }
        return render("endpoint_form", title: form.editing == nil ? "New endpoint" : "Edit endpoint", values: values, session: session, nav: "endpoints", status: status)
    }

    static func formatLabel(_ format: Endpoint.PayloadFormat) -> String {
        switch format {
        case .raw: "raw: the event's data object"
        case .envelope: "envelope: id, type, timestamp, tenant_id, data (keys can be renamed)"
        case .craftdesk: "craftdesk: id, event, timestamp, workspace_id, data"
        case .customermates: "customermates: event, data, timestamp"
        }
    }

    static func profileLabel(_ name: String) -> String {
        switch name {
        case "herald": "herald: X-Herald-Signature and Standard Webhooks' webhook-signature"
        case "standard-webhooks": "standard-webhooks: webhook-id, webhook-timestamp, webhook-signature only"
        case "body-hmac": "body-hmac: an HMAC of the body in a header you name (CraftDesk, Creative Force, Customermates)"
        case "timestamped-hmac": "timestamped-hmac: sha256= HMAC of \"{timestamp}.{body}\" under your header prefix (CreatorDesk)"
        case "github": "github: X-Hub-Signature-256, as GitHub sends it"
        case "stripe": "stripe: Stripe-Signature t=…,v1=…"
        default: "none: unsigned, for receivers that cannot verify (a Zapier catch hook)"
        }
    }

    // MARK: Help

    /// What a header of a delivery means, for the receiver's documentation.
    static func meaning(of name: String, profile: SignatureProfile, brand: String) -> String {
        let prefix = profile.headerPrefix(brand: brand)
        switch name.lowercased() {
        case "content-type": return "The body is JSON, UTF-8."
        case "user-agent": return "Who is calling."
        case "\(prefix)-event".lowercased(), "x-github-event": return "The event type."
        case "\(prefix)-timestamp".lowercased(): return "When this attempt was signed (UTC)."
        case "\(prefix)-signature".lowercased(): return "sha256= and the hex HMAC-SHA256 of \"{timestamp}.{body}\" keyed with the secret."
        case "\(prefix)-request-id".lowercased(): return "The same on every automatic retry; new on a manual Retry."
        case "webhook-id", "x-github-delivery": return "The delivery's id, the same on every attempt. Deduplicate on it."
        case "webhook-timestamp": return "Standard Webhooks: Unix seconds."
        case "webhook-signature": return "Standard Webhooks: base64 HMAC-SHA256 of \"{id}.{timestamp}.{body}\"."
        case "x-hub-signature-256": return "sha256= and the hex HMAC-SHA256 of the body keyed with the secret."
        case "stripe-signature": return "t= Unix seconds, v1= the hex HMAC-SHA256 of \"{t}.{body}\" keyed with the secret."
        default:
            if case .bodyHMAC(let hmac) = profile {
                if name.caseInsensitiveCompare(hmac.header) == .orderedSame {
                    return "\(hmac.valuePrefix.isEmpty ? "The" : hmac.valuePrefix + " and the") \(hmac.encoding.rawValue) HMAC-SHA256 of the body keyed with the secret."
                }
                if let event = hmac.eventHeader, name.caseInsensitiveCompare(event) == .orderedSame { return "The event type." }
            }
            return "A custom header of this endpoint."
        }
    }

    /// How to verify the profile's signature, in a sentence.
    static func recipe(_ profile: SignatureProfile, brand: String) -> String {
        switch profile {
        case .herald:
            "Verify either signature; webhook-signature carries one v1, entry per valid secret while a rotated secret is still valid, any of them matching is enough."
        case .standardWebhooks:
            "Use a Standard Webhooks library (pip install standardwebhooks, npm i standardwebhooks, …) with the secret: Webhook(secret).verify(body, headers)."
        case .bodyHMAC(let hmac):
            "Compute the HMAC-SHA256 of the raw body with the secret string as the key, \(hmac.encoding.rawValue)-encode it\(hmac.valuePrefix.isEmpty ? "" : ", put \(hmac.valuePrefix) before it,") and compare it with \(hmac.header) in constant time."
        case .timestampedHMAC(let prefix):
            "Compute sha256= and the hex HMAC-SHA256 of \"{\(prefix)-Timestamp}.{raw body}\" with the secret string as the key, and compare it with \(prefix)-Signature in constant time."
        case .github:
            "Verify X-Hub-Signature-256 as GitHub documents it (sha256= and the hex HMAC-SHA256 of the raw body, keyed with the secret); octokit's verify works too."
        case .stripe:
            "Verify Stripe-Signature as Stripe documents it: stripe.Webhook.construct_event(body, header, secret) in its libraries. During a rotation it carries a v1 entry per valid secret."
        case .none:
            "These deliveries are not signed: anyone who learns the URL can send fake events. Treat the URL as the secret."
        }
    }

    /// The receiver contract for one endpoint: the headers with this deployment's prefix,
    /// the body in the endpoint's format, verification code, the retry table, troubleshooting.
    func help(_ endpoint: EndpointView, request settings: RequestSettings, ladder: Ladder, disable: DisablePolicy, session: PortalSession) -> Response {
        let prefix = settings.headerPrefix
        let subscription = Self.subscription(endpoint)
        let sampleEntry = Catalog.entries.first { subscription.selects($0.type) } ?? Catalog.entries[0]
        let sampleEvent = Event(
            id: "evt_3f9a1c2b", type: sampleEntry.type, tenantID: UUID(text: "00000000-0000-4000-8000-000000000001")!,
            occurredAt: Date(timeIntervalSince1970: 1_778_578_200), data: Array(sampleEntry.sample.utf8))
        let format = Endpoint.PayloadFormat(rawValue: endpoint.payloadFormat) ?? .raw
        let sample = WebhookRequest.make(
            event: sampleEvent, endpoint: subscription, deliveryID: UUID(text: "9a1c3f5e-2b7d-4e8f-a0b1-c2d3e4f5a6b7")!,
            requestID: UUID(text: "0b6f1e9e-3c4d-4a5b-8c6d-7e8f9a0b1c2d")!, now: sampleEvent.occurredAt, settings: settings)
        let signatures = subscription.signature.signatureHeaders(brand: prefix)
        let headers: [[String: String]] = sample.headers.map { header in
            let example = signatures.contains(header.name.lowercased()) ? String(header.value.prefix(24)) + "…" : header.value
            return ["name": header.name, "example": example, "meaning": Self.meaning(of: header.name, profile: subscription.signature, brand: prefix)]
        }
        // The examples name the default prefix; a deployment that brands it sees its own.
        let lowered = prefix.lowercased() + "-"
        let snippets: [[String: Any]] =
            subscription.signature == .herald
            ? [
                ("python", "Python", PackageResources.verify_py), ("node", "Node.js", PackageResources.verify_js),
                ("php", "PHP", PackageResources.verify_php),
            ].enumerated().map { index, snippet in
                [
                    "id": snippet.0, "language": snippet.1, "open": index == 0,
                    "code": String(decoding: snippet.2, as: UTF8.self).replacingOccurrences(of: "x-herald-", with: lowered)
                        .replacingOccurrences(of: "X-Herald-", with: prefix + "-"),
                ]
            } : []
        var ladderRows: [[String: Any]] = [["attempt": 1, "when": "at once"]]
        var elapsed = Duration.zero
        for (rung, delay) in ladder.delays.enumerated() {
            elapsed += delay
            ladderRows.append(["attempt": rung + 2, "when": "\(ladder.label(rung: rung)) after the previous one (\(Self.span(elapsed)) after the first)"])
        }
        let values: [String: Any] = [
            "endpointId": endpoint.id, "url": endpoint.url, "timeoutSeconds": Int(settings.timeout.components.seconds), "headers": headers,
            "prefix": prefix, "sampleType": sampleEntry.type,
            "sampleBody": String(decoding: sample.body, as: UTF8.self),
            "formatDescription": format == .raw
                ? "The event's data object as it is; the type is in the \(subscription.signature.headerPrefix(brand: prefix))-Event header."
                : "\(Self.formatLabel(format)).",
            "recipe": Self.recipe(subscription.signature, brand: prefix),
            "snippets": snippets, "ladder": ladderRows, "maxAttempts": ladder.maxAttempts,
            "disableAfter": disable.threshold > 0 ? disable.threshold as Any : false,
        ]
        return render("help", title: "Receiving webhooks", values: values, session: session, nav: "endpoints")
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
            "items": items, "eventType": filter.eventType ?? "", "eventId": filter.eventId ?? "",
            "since": filter.since.map { String(RFC3339.format($0).prefix(16)) } ?? "", "until": filter.until.map { String(RFC3339.format($0).prefix(16)) } ?? "",
            "endpointOptions": endpoints.map { ["id": $0.id, "url": $0.url, "selected": $0.id == filter.endpoint?.lowercasedText] },
            "statusOptions": DeliveryState.Status.allCases.map { ["value": $0.rawValue, "selected": $0 == filter.status] },
        ]
        if let filterError { values["filterError"] = filterError }
        if let cursor = page.nextCursor {
            values["next"] = "/portal/deliveries?" + Self.query(parameters + [("cursor", cursor)])
        }
        return render("deliveries", title: "Delivery log", values: values, session: session, nav: "deliveries")
    }

    func delivery(_ detail: DeliveryDetail, endpoint: EndpointView?, request settings: RequestSettings, session: PortalSession, notice: String?) throws -> Response {
        let attempts: [[String: Any]] = detail.attempts.map { attempt in
            var row: [String: Any] = [
                "attempt": attempt.attempt, "startedAt": RFC3339.format(attempt.startedAt), "trigger": attempt.trigger.rawValue,
                "result": attempt.statusCode.map { "HTTP \($0)" } ?? attempt.errorClass ?? "", "durationMs": attempt.durationMs,
            ]
            let result = row["result"] as? String
            if let message = attempt.errorMessage, message != result { row["errorMessage"] = message }
            if let excerpt = attempt.responseExcerpt, !excerpt.isEmpty { row["responseExcerpt"] = excerpt }
            if let endpoint {
                row["requestHeaders"] = Self.sentHeaders(detail, attempt: attempt, endpoint: endpoint, settings: settings).map { ["name": $0.name, "value": $0.value] }
                row["hasHeaders"] = true
            }
            return row
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let payload = (try? encoder.encode(detail.event.data)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let values: [String: Any] = [
            "delivery": Self.dictionary(detail.delivery), "endpointURL": endpoint?.url ?? detail.delivery.endpointId,
            "occurredAt": RFC3339.format(detail.event.occurredAt), "attempts": attempts, "payload": payload,
            "final": detail.delivery.status.isFinal,
            "nextAttempt": detail.delivery.nextAttemptAt.map { RFC3339.format($0) } ?? "—",
        ]
        return render("delivery", title: "Delivery", values: values, session: session, notice: notice, nav: "deliveries")
    }

    /// The headers an attempt carried, built again the way the worker builds them, with the
    /// endpoint's settings of now: signatures are shown without their value, and custom
    /// header values that look like credentials stay redacted.
    static func sentHeaders(_ detail: DeliveryDetail, attempt: AttemptView, endpoint: EndpointView, settings: RequestSettings) -> [(name: String, value: String)] {
        let event = Event(
            id: detail.event.id, type: detail.event.type, tenantID: UUID(), occurredAt: detail.event.occurredAt, data: [],
            attributes: detail.event.attributes)
        let request = WebhookRequest.make(
            event: event, endpoint: subscription(endpoint), deliveryID: UUID(text: detail.delivery.id) ?? UUID(),
            requestID: UUID(text: attempt.requestId) ?? UUID(), now: attempt.startedAt, settings: settings)
        let signatures = endpoint.signature.signatureHeaders(brand: settings.headerPrefix)
        return request.headers.map { header in
            signatures.contains(header.name.lowercased()) ? (header.name, "… (not shown)") : header
        }
    }

    // MARK: Helpers

    /// The endpoint as the delivery code sees it, without its secret: for what it selects
    /// and the request it makes.
    static func subscription(_ view: EndpointView) -> Endpoint {
        Endpoint(
            id: UUID(text: view.id) ?? UUID(), tenantID: UUID(), url: view.url, eventTypes: view.eventTypes,
            filters: view.filters.mapValues(Set.init), customHeaders: view.headers,
            payloadFormat: Endpoint.PayloadFormat(rawValue: view.payloadFormat) ?? .raw, envelopeFields: view.payloadFields ?? EnvelopeFields(),
            payloadFilter: view.payloadFilter, signature: view.signature, secret: "", enabled: view.enabled)
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

/// The frame around a page: whose it is, where its links go, and the session's form token
/// (nil: not signed in, no navigation).
struct Chrome {
    var brand: String
    var links: [(href: String, label: String, key: String)]
    var signOut: String
    var csrf: String?
    var readOnly: Bool

    static func portal(_ session: PortalSession?) -> Chrome {
        Chrome(
            brand: "Webhooks",
            links: [
                ("/portal/endpoints", "Endpoints", "endpoints"), ("/portal/deliveries", "Delivery log", "deliveries"),
                ("/portal/sources", "Inbound sources", "sources"), ("/portal/inbound", "Incoming webhooks", "inbound"),
            ],
            signOut: "/portal/sign-out", csrf: session?.csrfToken, readOnly: session?.readOnly ?? false)
    }

    static func console(_ session: ConsoleSession?) -> Chrome {
        Chrome(
            brand: "Herald console",
            links: [("/console", "Tenants", "tenants"), ("/console/queues", "Queues", "queues"), ("/console/workers", "Workers", "workers")],
            signOut: "/console/sign-out", csrf: session?.csrfToken, readOnly: false)
    }
}

/// The endpoint form, new or edited: what was typed (kept when it is shown again) and
/// what is wrong, per field.
struct EndpointForm {
    /// The endpoint being edited; nil for a new one.
    var editing: EndpointView?
    var url = ""
    var description = ""
    var eventTypes: [String] = []
    var payloadFormat = "raw"
    /// An envelope's renamed keys, by envelope field (`type` → `event_type`); empty keeps the name.
    var payloadFields: [String: String] = [:]
    /// The filter's JSON as typed; empty for none.
    var payloadFilter = ""
    /// The signature profile's settings by name: `profile`, `header`, `encoding`, …
    var signature: [String: String] = ["profile": "herald"]
    /// `Name: value`, one per line.
    var headers = ""
    /// `attribute: value, value`, one per line.
    var filters = ""
    /// Requests per second at most, as typed; empty for no limit.
    var rateLimit = ""
    var ordered = false
    var dpa = false
    var dpaConfirmedBy = ""
    var errors: [String: String] = [:]
    var formError: String?

    init() {}

    /// The form filled with an endpoint's settings, to edit them.
    init(editing endpoint: EndpointView) {
        editing = endpoint
        url = endpoint.url
        description = endpoint.description
        eventTypes = endpoint.eventTypes
        payloadFormat = endpoint.payloadFormat
        payloadFields = (endpoint.payloadFields?.config ?? [:]).compactMapValues { if case .string(let text) = $0 { text } else { nil } }
        payloadFilter = endpoint.payloadFilter?.description ?? ""
        signature = endpoint.signature.config.compactMapValues { if case .string(let text) = $0 { text } else { nil } }
        headers = endpoint.headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "\n")
        filters = endpoint.filters.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.joined(separator: ", "))" }.joined(separator: "\n")
        rateLimit = endpoint.rateLimit.map(String.init) ?? ""
        ordered = endpoint.ordered
        dpa = endpoint.dpaConfirmedAt != nil
        dpaConfirmedBy = endpoint.dpaConfirmedBy ?? ""
    }

    init(_ form: Form, editing: EndpointView? = nil) {
        self.editing = editing
        url = (form.value("url") ?? "").trimmingCharacters(in: .whitespaces)
        description = form.value("description") ?? ""
        eventTypes = form.values("event_types")
        payloadFormat = form.value("payload_format").flatMap(Endpoint.PayloadFormat.init(rawValue:))?.rawValue ?? "raw"
        for key in Self.envelopeKeys {
            if let name = form.value("field_\(key)")?.trimmingCharacters(in: .whitespaces), !name.isEmpty { payloadFields[key] = name }
        }
        payloadFilter = (form.value("payload_filter") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        signature = ["profile": form.value("signature_profile") ?? "herald"]
        for key in Self.signatureSettings {
            if let value = form.value("signature_\(key)")?.trimmingCharacters(in: .whitespaces), !value.isEmpty { signature[key] = value }
        }
        headers = form.value("headers") ?? ""
        filters = form.value("filters") ?? ""
        rateLimit = (form.value("rate_limit") ?? "").trimmingCharacters(in: .whitespaces)
        ordered = form.value("ordered") == "yes"
        if let editing, editing.dpaConfirmedAt != nil {
            // A confirmed agreement stays confirmed; the form shows it, it does not ask again.
            dpa = true
            dpaConfirmedBy = editing.dpaConfirmedBy ?? ""
        } else {
            dpa = form.value("dpa") == "yes"
            dpaConfirmedBy = (form.value("dpa_confirmed_by") ?? "").trimmingCharacters(in: .whitespaces)
        }
    }

    static let envelopeKeys = ["id", "type", "timestamp", "tenant", "data"]
    /// The settings a profile may take, as the API names them.
    static let signatureSettings = ["header", "encoding", "value_prefix", "event_header", "header_prefix"]

    /// The settings the chosen profile reads; the form shows every field, a profile keeps its own.
    var profileSettings: [String: String] {
        let used: Set<String> =
            switch signature["profile"] {
            case "body-hmac": ["header", "encoding", "value_prefix", "event_header"]
            case "timestamped-hmac": ["header_prefix"]
            default: []
            }
        return signature.filter { $0.key == "profile" || used.contains($0.key) }
    }

    /// The profile, envelope keys and filter the form describes, or why not.
    func profiles(headerPrefix: String) -> (signature: SignatureProfile?, fields: EnvelopeFields?, filter: PayloadFilter?, errors: [String: String]) {
        var errors: [String: String] = [:]
        var profile: SignatureProfile?
        do {
            profile = try SignatureProfile(reading: profileSettings, brand: headerPrefix)
        } catch {
            errors["signature"] = error.description
        }
        var fields: EnvelopeFields?
        if payloadFormat == Endpoint.PayloadFormat.envelope.rawValue {
            do {
                fields = try EnvelopeFields(reading: payloadFields)
            } catch {
                errors["payload_fields"] = error.description
            }
        }
        var filter: PayloadFilter?
        if !payloadFilter.isEmpty {
            do {
                filter = try PayloadFilter(parsing: Array(payloadFilter.utf8))
            } catch {
                errors["payload_filter"] = error.description
            }
        }
        return (profile, fields, filter, errors)
    }

    /// Non-empty lines split at their first colon; the error names the first bad line.
    static func pairs(_ text: String, what: String) -> (pairs: [(String, String)], error: String?) {
        var pairs: [(String, String)] = []
        for (index, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                return (pairs, "Line \(index + 1): write \(what) as name: value.")
            }
            pairs.append((
                trimmed[..<colon].trimmingCharacters(in: .whitespaces), trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            ))
        }
        return (pairs, nil)
    }

    /// The rate limit typed, if it is one.
    var parsedRateLimit: Int? {
        Int(rateLimit).flatMap { (1...10_000).contains($0) ? $0 : nil }
    }

    var parsedHeaders: [String: String] {
        Dictionary(Self.pairs(headers, what: "a header").pairs, uniquingKeysWith: { _, last in last })
    }

    var parsedFilters: [String: [String]] {
        Dictionary(
            Self.pairs(filters, what: "a filter").pairs.map { ($0.0, $0.1.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }) },
            uniquingKeysWith: { a, b in a + b })
    }

    mutating func validate(urlPolicy: URLPolicy, headerPrefix: String) {
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
        let (headerPairs, headerError) = Self.pairs(headers, what: "a header")
        if let headerError {
            errors["headers"] = headerError
        } else if headerPairs.count > 20 {
            errors["headers"] = "At most 20 custom headers."
        } else if let violation = headerPairs.lazy.compactMap({ API.headerViolation(name: $0.0, value: $0.1, prefix: headerPrefix) }).first {
            errors["headers"] = violation
        }
        let (filterPairs, filterError) = Self.pairs(filters, what: "a filter")
        if let filterError {
            errors["filters"] = filterError
        } else if let empty = filterPairs.first(where: { pair in pair.0.isEmpty || !pair.1.contains { $0 != "," && $0 != " " } }) {
            errors["filters"] = "'\(empty.0.prefix(100))' needs an attribute name and at least one value."
        }
        errors.merge(profiles(headerPrefix: headerPrefix).errors) { first, _ in first }
        if !rateLimit.isEmpty && parsedRateLimit == nil {
            errors["rate_limit"] = "A whole number of requests per second from 1 to 10000, or empty for no limit."
        }
        guard editing?.dpaConfirmedAt == nil else { return }
        if dpa && dpaConfirmedBy.isEmpty {
            errors["dpa_confirmed_by"] = "Name the person who confirmed the data processing agreement."
        } else if !dpa && !dpaConfirmedBy.isEmpty {
            errors["dpa_confirmed_by"] = "Tick the box to confirm the agreement, or leave the name empty."
        } else if dpaConfirmedBy.utf8.count > 200 {
            errors["dpa_confirmed_by"] = "At most 200 characters."
        }
    }

    /// What the store saves. A new endpoint is enabled once the DPA is confirmed and saved
    /// disabled before; an edit leaves enabling to Enable and Activate.
    func input(headerPrefix: String) -> EndpointInput {
        let confirming = editing?.dpaConfirmedAt == nil && dpa
        let profiles = profiles(headerPrefix: headerPrefix)
        return EndpointInput(
            url: url, description: description, eventTypes: eventTypes, filters: parsedFilters, headers: parsedHeaders,
            payloadFormat: payloadFormat, payloadFields: profiles.fields ?? EnvelopeFields(),
            payloadFilter: profiles.filter.map(FilterSetting.filter) ?? .remove, signature: profiles.signature,
            rateLimit: parsedRateLimit ?? 0, ordered: ordered, enabled: editing == nil ? dpa : nil, dpaConfirmedBy: confirming ? dpaConfirmedBy : nil)
    }
}
