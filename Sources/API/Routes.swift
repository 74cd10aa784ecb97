import Cryptography
import HeraldSupport
import Delivery
import HeraldEvents
import FanOut
import Foundation
import Hummingbird
import Management
import Policy
import HeraldProducer
package import Records

extension API {
    func routes() -> [Route] {
        var routes: [Route] = []
        func add(_ method: HTTPRequest.Method, _ path: String, _ access: Access, _ handler: @escaping @Sendable (Request, APIContext) async throws -> Response) {
            routes.append(Route(method: method, path: path, access: access, handler: handler))
        }

        // Operations
        add(.get, "/healthz", .public) { _, _ in try Self.json(["status": "ok"]) }
        add(.get, "/readyz", .public) { _, _ in
            let checks = await readiness()
            let ready = checks.values.allSatisfy { $0 }
            return try Self.json(ReadinessView(status: ready ? "ready" : "unavailable", checks: checks), status: ready ? .ok : .serviceUnavailable)
        }
        add(.get, "/metrics", .public) { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metrics())))
        }
        add(.get, "/v1/openapi.json", .public) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }

        // Tenants and keys (operator)
        add(.post, "/v1/tenants", .operator) { request, context in
            var input = try await Input.read(request, context: context)
            guard let name = try input.string("name", maxLength: 200), !name.isEmpty else { throw Problem.badRequest("name", "is required") }
            try input.rejectUnknown()
            return try Self.json(try await store.createTenant(name: name), status: .created)
        }
        add(.get, "/v1/tenants", .operator) { _, _ in try Self.json(["items": try await store.tenants()]) }
        add(.post, "/v1/tenants/{id}/keys", .operator) { request, context in
            let tenant = try Self.id(context)
            var input = try await Input.read(request, context: context)
            let name = try input.string("name", maxLength: 200) ?? ""
            try input.rejectUnknown()
            return try Self.json(try await store.createKey(tenant: tenant, name: name), status: .created)
        }
        add(.post, "/v1/tenants/{id}/portal-links", .operator) { request, context in
            let tenant = try Self.id(context)
            var input = try await Input.read(request, context: context)
            let readOnly = try input.bool("read_only") ?? false
            try input.rejectUnknown()
            return try Self.json(
                try await portalAccess.createLink(tenant: tenant, readOnly: readOnly, ttl: configuration.portalLinkTTL), status: .created)
        }
        add(.get, "/v1/tenants/{id}/keys", .operator) { _, context in
            try Self.json(["items": try await store.keys(tenant: try Self.id(context))])
        }
        add(.get, "/v1/keys", .tenant) { _, context in
            try Self.json(["items": try await store.keys(tenant: context.tenant!)])
        }
        add(.delete, "/v1/keys/{id}", .operatorOrTenant) { _, context in
            try await store.revokeKey(try Self.id(context), tenant: context.tenant)
            return Response(status: .noContent)
        }

        // The parking queue (operator)
        add(.get, "/v1/parked", .operator) { request, _ in
            var limit = 100
            for (name, value) in request.uri.queryParameters {
                guard name == "limit" else { throw Problem.badRequest(String(name), "is not a known query parameter") }
                guard let parsed = Int(value), (1...1000).contains(parsed) else { throw Problem.badRequest("limit", "must be 1 to 1000") }
                limit = parsed
            }
            return try Self.json(["items": try await parking.list(limit: limit)])
        }
        add(.post, "/v1/parked/{id}/replay", .operator) { _, context in
            try await parking.replay(id: try Self.parkedID(context))
            return Response(status: .accepted)
        }
        add(.delete, "/v1/parked/{id}", .operator) { _, context in
            try await parking.discard(id: try Self.parkedID(context))
            return Response(status: .noContent)
        }

        // Endpoints
        add(.get, "/v1/endpoints", .tenant) { _, context in try Self.json(["items": try await store.endpoints(tenant: context.tenant!)]) }
        add(.post, "/v1/endpoints", .tenant) { request, context in
            let input = try await endpointInput(request, context: context, creating: true)
            return try Self.json(
                try await store.createEndpoint(tenant: context.tenant!, input, limit: configuration.quotas.endpointsPerTenant), status: .created)
        }
        add(.get, "/v1/endpoints/{id}", .tenant) { _, context in
            try Self.json(try await store.endpoint(tenant: context.tenant!, id: try Self.id(context)))
        }
        add(.patch, "/v1/endpoints/{id}", .tenant) { request, context in
            let id = try Self.id(context)
            let input = try await endpointInput(request, context: context, creating: false)
            return try Self.json(try await actions.updateEndpoint(tenant: context.tenant!, id: id, input))
        }
        add(.delete, "/v1/endpoints/{id}", .tenant) { _, context in
            try await store.deleteEndpoint(tenant: context.tenant!, id: try Self.id(context))
            return Response(status: .noContent)
        }
        add(.get, "/v1/endpoints/{id}/secret", .tenant) { _, context in
            try Self.json(try await store.secret(tenant: context.tenant!, id: try Self.id(context)))
        }
        add(.post, "/v1/endpoints/{id}/rotate-secret", .tenant) { request, context in
            let id = try Self.id(context)
            let grace = try await rotationGrace(request, context)
            return try Self.json(try await store.rotateSecret(tenant: context.tenant!, id: id, grace: grace))
        }
        add(.post, "/v1/endpoints/{id}/confirm-secret", .tenant) { _, context in
            try Self.json(try await store.confirmSecret(tenant: context.tenant!, id: try Self.id(context)))
        }
        add(.post, "/v1/endpoints/{id}/enable", .tenant) { _, context in
            try Self.json(try await actions.updateEndpoint(tenant: context.tenant!, id: try Self.id(context), EndpointInput(enabled: true)))
        }
        add(.post, "/v1/endpoints/{id}/disable", .tenant) { _, context in
            try Self.json(try await actions.updateEndpoint(tenant: context.tenant!, id: try Self.id(context), EndpointInput(enabled: false)))
        }
        add(.post, "/v1/endpoints/{id}/activate", .tenant) { request, context in
            let id = try Self.id(context)
            var input = try await Input.read(request, context: context)
            let replay = try input.bool("replay_skipped") ?? false
            try input.rejectUnknown()
            let (endpoint, replayed) = try await actions.activate(tenant: context.tenant!, endpoint: id, replaySkipped: replay)
            return try Self.json(ActivationView(endpoint: endpoint, replayed: replayed))
        }
        add(.post, "/v1/endpoints/{id}/test", .tenant) { request, context in
            let id = try Self.id(context)
            var input = try await Input.read(request, context: context)
            guard let type = try input.string("event_type", maxLength: 100) else { throw Problem.badRequest("event_type", "is required") }
            try input.rejectUnknown()
            let delivery = try await actions.sendTest(tenant: context.tenant!, endpoint: id, type: type)
            return try Self.json(["delivery_id": delivery.lowercasedText], status: .accepted)
        }
        add(.get, "/v1/endpoints/{id}/deliveries", .tenant) { request, context in
            let id = try Self.id(context)
            _ = try await store.endpoint(tenant: context.tenant!, id: id)
            var filter = try Self.deliveryFilter(request, allowEndpoint: false)
            filter.endpoint = id
            return try Self.json(try await log.deliveries(tenant: context.tenant!, filter))
        }
        add(.post, "/v1/endpoints/{id}/recover", .tenant) { request, context in
            let id = try Self.id(context)
            var input = try await Input.read(request, context: context)
            guard let sinceText = try input.string("since", maxLength: 64) else { throw Problem.badRequest("since", "is required") }
            guard let since = RFC3339.parse(sinceText) else { throw Problem.badRequest("since", "must be an ISO 8601 date-time") }
            let dryRun = try input.bool("dry_run") ?? false
            try input.rejectUnknown()
            let (count, resent) = try await actions.recover(tenant: context.tenant!, endpoint: id, since: since, dryRun: dryRun)
            return try Self.json(RecoveryView(count: count, resent: resent, dryRun: dryRun))
        }

        // Delivery log
        add(.get, "/v1/deliveries", .tenant) { request, context in
            try Self.json(try await log.deliveries(tenant: context.tenant!, try Self.deliveryFilter(request, allowEndpoint: true)))
        }
        add(.get, "/v1/deliveries/{id}", .tenant) { _, context in
            try Self.json(try await log.delivery(tenant: context.tenant!, id: try Self.id(context)))
        }
        add(.post, "/v1/deliveries/{id}/retry", .tenant) { request, context in
            let id = try Self.id(context)
            let input = try await Input.read(request, context: context)
            try input.rejectUnknown()
            let attempt = try await actions.resend(tenant: context.tenant!, delivery: id)
            return try Self.json(ResendView(deliveryId: id.lowercasedText, attempt: attempt), status: .accepted)
        }

        // Catalog and ingestion
        add(.get, "/v1/event-types", .tenant) { _, _ in
            let items: [[String: Any]] = Catalog.entries.map { entry in
                ["type": entry.type, "description": entry.description,
                 "sample": (try? JSONSerialization.jsonObject(with: Data(entry.sample.utf8))) ?? [:]]
            }
            let data = try JSONSerialization.data(withJSONObject: ["items": items], options: [.sortedKeys, .withoutEscapingSlashes])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        add(.post, "/v1/events", .operatorOrTenant) { request, context in
            var input = try await Input.read(request, context: context)
            // The operator publishes for the tenant it names (a CRM in any language, no
            // Swift linked); a tenant key for its own tenant only.
            let tenant: UUID
            if let own = context.tenant {
                if try input.string("tenant_id", maxLength: 36) != nil {
                    throw Problem.badRequest("tenant_id", "only the operator token names a tenant; a tenant key publishes for its own")
                }
                tenant = own
            } else {
                guard let text = try input.string("tenant_id", maxLength: 36) else {
                    throw Problem.badRequest("tenant_id", "is required with the operator token")
                }
                guard let named = UUID(text: text) else { throw Problem.badRequest("tenant_id", "must be a UUID") }
                tenant = named
            }
            try publishLimiter.admit(tenant.uuidString, what: "events")
            guard let type = try input.string("type", maxLength: 100) else { throw Problem.badRequest("type", "is required") }
            guard let data = try input.verbatimObject("data") else { throw Problem.badRequest("data", "is required and must be a JSON object") }
            let id = try input.string("id", maxLength: 200) ?? Event.generateID()
            var occurredAt = Date()
            if let text = try input.string("occurred_at", maxLength: 64) {
                guard let parsed = RFC3339.parse(text) else { throw Problem.badRequest("occurred_at", "must be an ISO 8601 date-time") }
                occurredAt = parsed
            }
            let attributes = try input.stringMap("attributes") ?? [:]
            try input.rejectUnknown()
            if context.tenant == nil, try await !store.tenantExists(tenant) {
                throw Problem(.unprocessableContent, "tenant_id: no such tenant", field: "tenant_id")
            }
            let event = Event(id: id, type: type, tenantID: tenant, occurredAt: occurredAt, data: data, attributes: attributes)
            try await producer.publish(event)
            return try Self.json(["id": id], status: .accepted)
        }
        inboundRoutes(add)
        return routes
    }

    /// A rotation's body: `grace_seconds`, how long the old secret or URL keeps working.
    func rotationGrace(_ request: Request, _ context: APIContext) async throws -> Duration {
        var input = try await Input.read(request, context: context)
        let grace = try input.integer("grace_seconds", 0...(7 * 86_400)).map { Duration.seconds($0) } ?? configuration.rotationGrace
        try input.rejectUnknown()
        return grace
    }

    private func endpointInput(_ request: Request, context: APIContext, creating: Bool) async throws -> EndpointInput {
        var input = try await Input.read(request, context: context)
        var result = EndpointInput()
        result.url = try input.string("url")
        if let url = result.url, let violation = configuration.urlPolicy.violation(url) {
            throw Problem(.unprocessableContent, "url: \(violation)", field: "url")
        }
        result.description = try input.string("description", maxLength: 500)
        result.eventTypes = try input.strings("event_types")
        if let types = result.eventTypes {
            guard !types.isEmpty else { throw Problem.badRequest("event_types", "must name at least one type or wildcard") }
            for type in types where !Self.isSelection(type) {
                throw Problem.badRequest("event_types", "'\(type.prefix(100))' is not a type, a wildcard like invoice.* or *")
            }
        }
        result.filters = try input.stringListMap("filters")
        result.headers = try input.stringMap("headers")
        for (name, value) in result.headers ?? [:] {
            if let violation = Self.headerViolation(name: name, value: value, prefix: configuration.headerPrefix) {
                throw SignatureProfile.none.reserves(name, brand: configuration.headerPrefix)
                    ? Problem(.unprocessableContent, "headers: \(violation)", field: "headers") : Problem.badRequest("headers", violation)
            }
        }
        result.payloadFormat = try input.string("payload_format", maxLength: 20)
        if let format = result.payloadFormat, Endpoint.PayloadFormat(rawValue: format) == nil {
            let formats = Endpoint.PayloadFormat.allCases.map(\.rawValue).joined(separator: ", ")
            throw Problem.badRequest("payload_format", "must be one of \(formats)")
        }
        result.payloadFields = try input.object("payload_fields").map { try EnvelopeFields(reading: $0) }
        result.signature = try input.object("signature").map { try SignatureProfile(reading: $0, brand: configuration.headerPrefix) }
        if let filter = try input.verbatimObject("payload_filter") {
            // `{}` removes the filter: every selected event is delivered again.
            result.payloadFilter = try input.object("payload_filter")?.isEmpty == true ? .remove : .filter(try PayloadFilter(parsing: filter))
        }
        result.rateLimit = try input.integer("rate_limit", 0...10_000)
        result.ordered = try input.bool("ordered")
        result.enabled = try input.bool("enabled")
        result.dpaConfirmedBy = try input.string("dpa_confirmed_by", maxLength: 200)
        if let person = result.dpaConfirmedBy, person.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw Problem.badRequest("dpa_confirmed_by", "must name the person who confirmed the DPA")
        }
        if creating {
            result.secret = try input.string("secret", maxLength: 200)
            if let secret = result.secret, SecretKeyring.isSealed(secret) {
                throw Problem.badRequest("secret", "must not begin with \(SecretKeyring.prefix) (the form of a secret sealed at rest)")
            }
            if let secret = result.secret, let weakness = Signature.weakness(of: secret) {
                throw Problem.badRequest("secret", "\(weakness) (omit it to have one generated)")
            }
        }
        try input.rejectUnknown()
        if creating {
            if result.url == nil { throw Problem.badRequest("url", "is required") }
            if result.eventTypes == nil { throw Problem.badRequest("event_types", "is required") }
        }
        return result
    }

    /// Why a custom header cannot be sent; nil when it can. A name is an RFC 9110 token
    /// and not one Herald sets; a value has no control character but tab.
    package static func headerViolation(name: String, value: String, prefix: String) -> String? {
        guard name.utf8.count <= 100, HTTPToken.isToken(name),
            value.unicodeScalars.allSatisfy({ $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7F) }), value.utf8.count <= 1000
        else { return "'\(name.prefix(100))' is not a valid header (a name is letters, digits and !#$%&'*+-.^_`|~)" }
        if SignatureProfile.none.reserves(name, brand: prefix) { return "'\(name)' is set by Herald and cannot be overridden" }
        return nil
    }


    /// `*`, a type, or a wildcard on whole leading words (`invoice.*`).
    package static func isSelection(_ pattern: String) -> Bool {
        if pattern == "*" || EventType.isWellFormed(pattern) { return true }
        guard pattern.hasSuffix(".*") else { return false }
        // The prefix must be words a type could start with.
        return EventType.isWellFormed(String(pattern.dropLast(2)) + ".x")
    }

    /// A parked message's id: a UUID, or the message id of one parked before ids were given.
    static func parkedID(_ context: APIContext) throws -> String {
        guard let text = context.parameters.get("id"), !text.isEmpty, text.utf8.count <= 255 else {
            throw Problem(.notFound, "no such parked message")
        }
        return text
    }

    static func id(_ context: APIContext) throws -> UUID {
        // An id that is not a UUID names nothing: 404, like a foreign one.
        guard let text = context.parameters.get("id"), let id = UUID(text: text) else {
            throw Problem(.notFound, "no such object")
        }
        return id
    }

    static func deliveryFilter(_ request: Request, allowEndpoint: Bool) throws -> DeliveryFilter {
        try deliveryFilter(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, allowEndpoint: allowEndpoint)
    }

    /// The delivery log's filter from query parameters; the portal's filter form uses it too.
    package static func deliveryFilter(_ parameters: [(String, String)], allowEndpoint: Bool) throws -> DeliveryFilter {
        var filter = DeliveryFilter()
        let known: Set<String> = allowEndpoint
            ? ["status", "event_type", "event_id", "since", "until", "cursor", "limit", "endpoint_id"]
            : ["status", "event_type", "event_id", "since", "until", "cursor", "limit"]
        for (name, value) in parameters {
            guard known.contains(name) else { throw Problem.badRequest(name, "is not a known query parameter") }
            switch name {
            case "status":
                guard let status = DeliveryState.Status(rawValue: value) else {
                    let names = DeliveryState.Status.allCases.map(\.rawValue)
                    throw Problem.badRequest("status", "must be \(names.dropLast().joined(separator: ", ")) or \(names.last!)")
                }
                filter.status = status
            case "event_type":
                // Only a type an event can have: anything else (a NUL among it) matches nothing and is refused.
                guard EventType.isWellFormed(value), value.utf8.count <= 100 else {
                    throw Problem.badRequest("event_type", "must be a type like invoice.paid")
                }
                filter.eventType = value
            case "event_id":
                guard !value.isEmpty, value.utf8.count <= 200, !value.utf8.contains(0) else {
                    throw Problem.badRequest("event_id", "must be 1 to 200 characters without NUL")
                }
                filter.eventId = value
            case "since", "until", "cursor", "limit":
                try Self.readPage(name, value, since: &filter.since, until: &filter.until, cursor: &filter.cursor, limit: &filter.limit)
            default:
                guard let id = UUID(text: value) else { throw Problem.badRequest("endpoint_id", "must be a UUID") }
                filter.endpoint = id
            }
        }
        return filter
    }

    /// A time-window or paging parameter, as every log reads them: `since`/`until` as
    /// ISO 8601, `cursor` as a token this API returned (empty: the first page), `limit` 1 to 200.
    static func readPage(_ name: String, _ value: String, since: inout Date?, until: inout Date?, cursor: inout Cursor?, limit: inout Int) throws {
        switch name {
        case "since", "until":
            guard let date = RFC3339.parse(value) else { throw Problem.badRequest(name, "must be an ISO 8601 date-time") }
            if name == "since" { since = date } else { until = date }
        case "cursor" where value.isEmpty:
            break  // the first page, as if no cursor were given
        case "cursor":
            guard let token = Cursor(token: value) else { throw Problem.badRequest("cursor", "is not a cursor this API returned") }
            cursor = token
        default:
            guard let number = Int(value), (1...200).contains(number) else { throw Problem.badRequest("limit", "must be 1 to 200") }
            limit = number
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try API.encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

struct ActivationView: Encodable {
    var endpoint: EndpointView
    var replayed: Int
}

struct RecoveryView: Encodable {
    var count: Int
    var resent: Int
    var dryRun: Bool
}

struct ReadinessView: Encodable {
    var status: String
    var checks: [String: Bool]
}

/// The answer to a resend: which attempt will be made.
struct ResendView: Encodable {
    var deliveryId: String
    var attempt: Int
}
