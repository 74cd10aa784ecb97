import HeraldSupport
import API
import Foundation
import Hummingbird
import Inbound
import Management

/// The portal's inbound pages: sources (a URL per sending service) and the webhooks they
/// received, through the same `InboundStore` as the API.
extension Portal {
    func registerInbound(on portal: RouterGroup<APIContext>) {
        portal.get("sources") { request, context in
            try await page(request, context) { session in
                let sources = try await inbound.sources(tenant: session.tenant)
                let received = try await inbound.receivedCounts(tenant: session.tenant, since: Chart.since(.day, now: Date()))
                return pages.sources(sources, received: received, session: session)
            }
        }
        portal.get("sources/new") { request, context in
            try await page(request, context) { session in
                guard !session.readOnly else { throw PortalError.readOnly }
                return pages.sourceForm(SourceForm(), session: session)
            }
        }
        portal.post("sources") { request, context in
            try await form(request, context) { session, form in
                try await saveSource(SourceForm(form, editing: nil), session: session) { input in
                    try await inbound.createSource(tenant: session.tenant, input)
                }
            }
        }
        portal.get("sources/:id") { request, context in
            try await page(request, context) { session in try await source(request, context, session: session, secret: nil) }
        }
        portal.get("sources/:id/edit") { request, context in
            try await page(request, context) { session in
                guard !session.readOnly else { throw PortalError.readOnly }
                return pages.sourceForm(SourceForm(editing: try await inbound.source(tenant: session.tenant, id: try Self.id(context))), session: session)
            }
        }
        portal.post("sources/:id") { request, context in
            try await form(request, context) { session, form in
                let id = try Self.id(context)
                let current = try await inbound.source(tenant: session.tenant, id: id)
                return try await saveSource(SourceForm(form, editing: current), session: session) { input in
                    try await inbound.updateSource(tenant: session.tenant, id: id, input)
                }
            }
        }
        portal.post("sources/:id/secret") { request, context in
            try await form(request, context) { session, _ in
                let secret = try await inbound.secret(tenant: session.tenant, id: try Self.id(context))
                return try await source(request, context, session: session, secret: secret)
            }
        }
        portal.post("sources/:id/rotate-url") { request, context in
            try await form(request, context) { session, _ in
                let id = try Self.id(context)
                _ = try await inbound.rotateToken(tenant: session.tenant, id: id, grace: configuration.rotationGrace)
                return Response.redirect(to: "/portal/sources/\(id.lowercasedText)?done=url-rotated", type: .found)
            }
        }
        portal.post("sources/:id/delete") { request, context in
            try await form(request, context) { session, _ in
                try await inbound.deleteSource(tenant: session.tenant, id: try Self.id(context))
                return Response.redirect(to: "/portal/sources", type: .found)
            }
        }
        portal.get("inbound") { request, context in
            try await page(request, context) { session in
                let parameters = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
                    .filter { !$0.1.isEmpty && ["source_id", "status", "cursor"].contains($0.0) }
                var filter = InboundFilter()
                var filterError: String?
                do {
                    filter = try API.inboundFilter(parameters)
                } catch let problem as Problem {
                    filterError = problem.detail
                }
                let sources = try await inbound.sources(tenant: session.tenant)
                let page = try await inbound.webhooks(tenant: session.tenant, filter)
                return pages.inbound(
                    page, sources: sources, parameters: parameters.filter { $0.0 != "cursor" }, filter: filter, filterError: filterError, session: session)
            }
        }
        portal.get("inbound/:id") { request, context in
            try await page(request, context) { session in
                try await inboundWebhook(request, context, session: session, notice: request.uri.queryParameters.get("done").flatMap(Pages.doneMessage))
            }
        }
        portal.post("inbound/:id/replay") { request, context in
            try await form(request, context) { session, _ in
                let id = try Self.id(context)
                let result = try await inbound.replay(tenant: session.tenant, id: id)
                if result.eventId != nil { onInboundEvent() }
                return Response.redirect(to: "/portal/inbound/\(id.lowercasedText)?done=replayed", type: .found)
            }
        }
    }

    private func source(_ request: Request, _ context: APIContext, session: PortalSession, secret: String?) async throws -> Response {
        let id = try Self.id(context)
        let source = try await inbound.source(tenant: session.tenant, id: id)
        var filter = InboundFilter()
        filter.source = id
        filter.limit = 20
        let latest = try await inbound.webhooks(tenant: session.tenant, filter)
        return pages.source(
            source, latest: latest, sourceNames: [:], secret: secret, graceHours: Int(configuration.rotationGrace.components.seconds / 3600), session: session,
            notice: request.uri.queryParameters.get("done").flatMap(Pages.doneMessage))
    }

    private func inboundWebhook(_ request: Request, _ context: APIContext, session: PortalSession, notice: String?) async throws -> Response {
        let webhook = try await inbound.webhook(tenant: session.tenant, id: try Self.id(context))
        let name = (try? await inbound.source(tenant: session.tenant, id: UUID(text: webhook.sourceId) ?? UUID()))?.name ?? "a deleted source"
        return pages.inboundWebhook(webhook, sourceName: name, session: session, notice: notice)
    }

    /// Validates the form and saves it; shown again with the errors next to their fields.
    private func saveSource(_ entry: SourceForm, session: PortalSession, _ body: (SourceInput) async throws -> SourceView) async throws -> Response {
        var entry = entry
        guard let input = entry.input() else { return pages.sourceForm(entry, session: session, status: .unprocessableContent) }
        let saved = try await body(input)
        return Response.redirect(to: "/portal/sources/\(saved.id)?done=\(entry.editing == nil ? "source-created" : "saved")", type: .found)
    }
}
