import Foundation
import HeraldSupport
import Hummingbird
import Inbound
import Management

/// The source form, new or edited: what was typed (kept when it is shown again) and the
/// errors next to their fields. The values become the API's JSON object and go through
/// the same `SourceInput` reader, so the portal and the API refuse the same things.
struct SourceForm {
    var values: [String: String] = [:]
    var editing: SourceView?
    var errors: [String: String] = [:]
    var formError: String?

    static let fields = [
        "name", "service", "method", "header", "prefix", "query", "username", "encoding", "signed", "timestamp_header", "tolerance_seconds",
        "secret", "mapping",
        "event_type", "event_type_header", "event_type_path", "event_types", "data_path", "dedup_header", "max_body_bytes",
    ]

    init() {
        values = ["method": "none", "mapping": "none", "encoding": "hex", "signed": "body", "max_body_bytes": "1048576"]
    }

    init(editing view: SourceView) {
        self.init()
        editing = view
        values["name"] = view.name
        values["service"] = view.service
        for (key, value) in view.verification {
            switch (key, value) {
            case ("method", .string(let text)): values["method"] = text
            case (_, .int(let number)): values[key] = String(number)
            case (_, .string(let text)): values[key] = text
            default: break
            }
        }
        if let mapping = view.settings.mapping {
            switch mapping.type {
            case .fixed(let name): values["mapping"] = "fixed"; values["event_type"] = name
            case .header(let name): values["mapping"] = "header"; values["event_type_header"] = name
            case .field(let path): values["mapping"] = "path"; values["event_type_path"] = path.description
            }
            values["event_types"] = mapping.types.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "\n")
            values["data_path"] = mapping.data?.description
        }
        if case .header(let name) = view.settings.deliveryID { values["dedup_header"] = name }
        values["max_body_bytes"] = String(view.maxBodyBytes)
    }

    init(_ form: Form, editing: SourceView?) {
        self.editing = editing
        for field in Self.fields { values[field] = form.value(field)?.trimmingCharacters(in: .whitespaces) }
    }

    func value(_ name: String) -> String? {
        guard let text = values[name], !text.isEmpty else { return nil }
        return text
    }

    /// Which settings each method reads: the others typed in the form are left out.
    static let methodFields: [String: [String]] = [
        "token": ["header", "prefix", "query"], "basic": ["username"],
        "hmac": ["header", "prefix", "encoding", "signed", "timestamp_header", "tolerance_seconds"], "herald": ["prefix", "tolerance_seconds"],
        "standard-webhooks": ["tolerance_seconds"], "stripe": ["tolerance_seconds"],
    ]

    /// The API's JSON object for these values; nil, with the errors set, when a value cannot be one.
    mutating func input() -> SourceInput? {
        var object: [String: Any] = [:]
        // A missing name is said next to its field, and the rest is still checked.
        if value("name") == nil { errors["name"] = "is required" }
        object["name"] = value("name") ?? "unnamed"
        object["service"] = values["service"] ?? ""
        let method = value("method") ?? "none"
        var verification: [String: Any] = ["method": method]
        for field in Self.methodFields[method] ?? [] {
            if field == "signed" && value("signed") == "body" { continue }
            guard let text = value(field) else { continue }
            if field == "tolerance_seconds" {
                guard let seconds = Int(text) else {
                    errors["tolerance_seconds"] = "must be a whole number of seconds"
                    return nil
                }
                verification[field] = seconds
            } else {
                verification[field] = text
            }
        }
        if method == "hmac" && value("signed") != "timestamp.body" {
            verification["timestamp_header"] = nil
            verification["tolerance_seconds"] = nil
        }
        object["verification"] = verification
        if let secret = value("secret") { object["secret"] = secret }
        var mapping: [String: Any] = [:]
        switch value("mapping") ?? "none" {
        case "fixed": mapping["event_type"] = value("event_type") ?? ""
        case "header": mapping["event_type_header"] = value("event_type_header") ?? ""
        case "path": mapping["event_type_path"] = value("event_type_path") ?? ""
        default: break
        }
        if !mapping.isEmpty {
            var types: [String: String] = [:]
            for line in (values["event_types"] ?? "").split(whereSeparator: \.isNewline) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty else {
                    errors["event_types"] = "'\(line.prefix(100))' is not 'value = event type'"
                    return nil
                }
                types[parts[0]] = parts[1]
            }
            if !types.isEmpty { mapping["event_types"] = types }
            if let path = value("data_path") { mapping["data_path"] = path }
            object["mapping"] = mapping
        } else if editing != nil {
            object["mapping"] = NSNull()
        }
        if let header = value("dedup_header") { object["dedup"] = ["header": header] }
        if let text = value("max_body_bytes") {
            guard let bytes = Int(text) else {
                errors["max_body_bytes"] = "must be a whole number of bytes"
                return nil
            }
            object["max_body_bytes"] = bytes
        }
        do {
            let input = try SourceInput(object: object, creating: editing == nil)
            return errors.isEmpty ? input : nil
        } catch {
            place(error)
            return nil
        }
    }

    /// An error next to the form field it is about.
    mutating func place(_ failure: ParseFailure) {
        let field = failure.field ?? ""
        let parts = field.split(separator: ".").map(String.init)
        let name: String? =
            switch parts.first {
            case "verification": parts.count > 1 ? parts[1] : "method"
            case "mapping": parts.count > 1 ? parts[1] : "event_type"
            case "dedup": "dedup_header"
            case let first?: first
            case nil: nil
            }
        if let name, Self.fields.contains(name) {
            errors[name] = failure.reason
        } else {
            formError = failure.description
        }
    }
}

extension Pages {
    static func statusLabel(_ status: InboundStatus) -> String {
        status == .parseError ? "parse error" : status.rawValue
    }

    func sources(_ sources: [SourceView], received: [String: Int], session: PortalSession) -> Response {
        let rows: [[String: Any]] = sources.map { source in
            [
                "id": source.id, "name": source.name, "service": source.service, "method": source.settings.verification.method,
                "becomes": source.settings.mapping?.summary ?? "stored only", "received": received[source.id] ?? 0,
            ]
        }
        return render("sources", title: "Inbound sources", values: ["sources": rows, "hasSources": !rows.isEmpty], session: session, nav: "sources")
    }

    func source(_ source: SourceView, latest: InboundPage, sourceNames: [String: String], secret: String?, graceHours: Int, session: PortalSession, notice: String?)
        -> Response
    {
        let settings = source.settings
        var values: [String: Any] = [
            "id": source.id, "name": source.name, "service": source.service, "url": source.url, "verification": settings.verification.summary,
            "needsSecret": settings.verification.needsSecret, "becomes": settings.mapping?.summary ?? "Stored only: nothing is sent on. Read them here or through the API.",
            "maxBody": "\(source.maxBodyBytes) bytes", "graceHours": graceHours, "items": inboundRows(latest.items, sourceNames: [:]),
            "retention": source.retentionDays.isEmpty
                ? "as the deployment keeps them"
                : source.retentionDays.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value) days" }.joined(separator: ", "),
        ]
        if let secret { values["secret"] = secret }
        if let expires = source.previousUrlExpiresAt { values["previousExpires"] = RFC3339.format(expires) }
        if let rule = settings.effectiveDeliveryID {
            switch rule {
            case .header(let name): values["dedup"] = "the \(name) header"
            case .jsonPath(let path): values["dedup"] = "the field \(path.description)"
            }
            values["dedupWindow"] = source.dedupWindowSeconds % 3600 == 0 ? "\(source.dedupWindowSeconds / 3600) h" : "\(source.dedupWindowSeconds) s"
        }
        return render("source", title: source.name, values: values, session: session, notice: notice, nav: "sources")
    }

    func sourceForm(_ form: SourceForm, session: PortalSession, status: HTTPResponse.Status = .ok) -> Response {
        var values: [String: Any] = [
            "heading": form.editing.map { "Edit \($0.name)" } ?? "New source",
            "action": form.editing.map { "/portal/sources/\($0.id)" } ?? "/portal/sources",
            "button": form.editing == nil ? "Create source" : "Save", "editing": form.editing != nil, "errors": form.errors,
            "name": form.values["name"] ?? "", "service": form.values["service"] ?? "", "header": form.values["header"] ?? "",
            "prefix": form.values["prefix"] ?? "", "query": form.values["query"] ?? "", "username": form.values["username"] ?? "",
            "hex": form.values["encoding"] != "base64", "base64": form.values["encoding"] == "base64",
            "signedBody": form.values["signed"] != "timestamp.body", "signedTimestamp": form.values["signed"] == "timestamp.body",
            "timestampHeader": form.values["timestamp_header"] ?? "", "tolerance": form.values["tolerance_seconds"] ?? "",
            "eventType": form.values["event_type"] ?? "",
            "eventTypeHeader": form.values["event_type_header"] ?? "", "eventTypePath": form.values["event_type_path"] ?? "",
            "eventTypes": form.values["event_types"] ?? "", "dataPath": form.values["data_path"] ?? "",
            "dedupHeader": form.values["dedup_header"] ?? "", "maxBodyBytes": form.values["max_body_bytes"] ?? "",
        ]
        let labels = [
            ("none", "none: anyone with the URL"), ("token", "a shared token"), ("basic", "HTTP Basic"), ("hmac", "HMAC-SHA256 signature"),
            ("standard-webhooks", "Standard Webhooks"), ("github", "GitHub"), ("stripe", "Stripe"), ("shopify", "Shopify"), ("herald", "another Herald"),
        ]
        values["methods"] = labels.map { ["value": $0.0, "label": $0.1, "selected": form.values["method"] == $0.0] }
        let mappings = [("none", "none: store only"), ("fixed", "always the same type"), ("header", "from a header"), ("path", "from a field of the body")]
        values["mappings"] = mappings.map { ["value": $0.0, "label": $0.1, "selected": (form.values["mapping"] ?? "none") == $0.0] }
        if let error = form.formError { values["formError"] = error }
        return render("source_form", title: values["heading"] as? String ?? "Source", values: values, session: session, nav: "sources", status: status)
    }

    func inboundRows(_ items: [InboundSummaryView], sourceNames: [String: String]) -> [[String: Any]] {
        items.map { item in
            var row: [String: Any] = [
                "id": item.id, "receivedAt": RFC3339.format(item.receivedAt), "status": item.status.rawValue, "statusLabel": Self.statusLabel(item.status),
                "responseStatus": item.responseStatus,
            ]
            if let name = sourceNames[item.sourceId] { row["sourceName"] = name }
            if let type = item.eventType { row["eventType"] = type }
            if let error = item.error { row["error"] = item.errorField.map { "\($0): \(error)" } ?? error }
            return row
        }
    }

    func inbound(
        _ page: InboundPage, sources: [SourceView], parameters: [(String, String)], filter: InboundFilter, filterError: String?, session: PortalSession
    ) -> Response {
        let names = Dictionary(uniqueKeysWithValues: sources.map { ($0.id, $0.name) })
        var values: [String: Any] = [
            "items": inboundRows(page.items, sourceNames: names),
            "sourceOptions": sources.map { ["id": $0.id, "name": $0.name, "selected": filter.source?.lowercasedText == $0.id] },
            "statusOptions": InboundStatus.allCases.map { ["value": $0.rawValue, "label": Self.statusLabel($0), "selected": filter.status == $0] },
        ]
        if let filterError { values["filterError"] = filterError }
        if let next = page.nextCursor {
            values["next"] = "/portal/inbound?" + Self.query(parameters + [("cursor", next)])
        }
        return render("inbound", title: "Incoming webhooks", values: values, session: session, nav: "inbound")
    }

    func inboundWebhook(_ webhook: InboundWebhookView, sourceName: String, session: PortalSession, notice: String?) -> Response {
        var values: [String: Any] = [
            "id": webhook.id, "receivedAt": RFC3339.format(webhook.receivedAt), "status": webhook.status.rawValue,
            "statusLabel": Self.statusLabel(webhook.status), "sourceId": webhook.sourceId, "sourceName": sourceName,
            "responseStatus": webhook.responseStatus, "remoteAddress": webhook.remoteAddress, "contentType": webhook.contentType.isEmpty ? "no content type" : webhook.contentType,
            "bodySize": webhook.bodySize, "headers": webhook.headers.map { ["name": $0.first ?? "", "value": $0.last ?? ""] },
            // What a replay accepts: stored only, or not parsed; never a second event.
            "canReplay": [.received, .parseError].contains(webhook.status) && (webhook.body != nil || webhook.bodyBase64 != nil) && !session.readOnly,
        ]
        if !webhook.query.isEmpty { values["query"] = webhook.query }
        if let error = webhook.error {
            values["error"] = error
            values["errorHeading"] = webhook.status == .rejected ? "Refused" : "Could not be parsed"
            if let field = webhook.errorField { values["errorField"] = field }
        }
        if let id = webhook.eventId {
            values["eventId"] = id
            values["eventType"] = webhook.eventType ?? ""
        }
        if let original = webhook.duplicateOf {
            values["duplicateOf"] = original
            values["dedupKey"] = webhook.dedupKey ?? ""
        }
        if let body = webhook.body {
            values["hasBody"] = true
            let marked = Self.errorRange(in: Array(body.utf8), webhook: webhook)
            let bytes = Array(body.utf8)
            if let range = marked {
                values["before"] = String(decoding: bytes[..<range.lowerBound], as: UTF8.self)
                values["marked"] = String(decoding: bytes[range], as: UTF8.self)
                values["after"] = String(decoding: bytes[range.upperBound...], as: UTF8.self)
            } else {
                values["before"] = body
            }
        } else {
            values["hasBody"] = webhook.bodyBase64 != nil
            values["before"] = webhook.bodyBase64.map { "(not UTF-8; base64) \($0)" } ?? ""
            values["noBody"] = webhook.status == .rejected ? "The body was not kept: \(webhook.error ?? "it was refused")." : "No body."
        }
        return render("inbound_webhook", title: "Incoming webhook", values: values, session: session, notice: notice, nav: "inbound")
    }

    /// Where in a JSON body the error is: the byte a syntax error stopped at, or the value
    /// of the field a mapping error names. Nil when it cannot be placed.
    static func errorRange(in body: [UInt8], webhook: InboundWebhookView) -> Range<Int>? {
        guard webhook.status == .parseError, BodyFormat(contentType: webhook.contentType) == .json else { return nil }
        do {
            let root = try JSONTree.parse(body)
            guard let field = webhook.errorField, let path = JSONPath(field), let node = path.find(in: root) else { return nil }
            return node.range
        } catch {
            // A character, or the end of the body when it ended too soon.
            return error.offset < body.count ? error.offset..<(error.offset + 1) : nil
        }
    }
}
