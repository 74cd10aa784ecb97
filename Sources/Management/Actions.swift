import HeraldSupport
import HeraldEvents
public import Foundation
public import Records

/// What a tenant asks for that touches both the endpoints and the delivery log and ends
/// with a message to the work queue: the API's routes and the portal's forms both call
/// these, so an activation or a resend means the same wherever it was clicked.
public struct Actions: Sendable {
    let store: Store
    let log: any DeliveryLog
    let dispatcher: any DeliveryDispatching

    public init(store: Store, log: any DeliveryLog, dispatcher: any DeliveryDispatching) {
        self.store = store
        self.log = log
        self.dispatcher = dispatcher
    }

    /// Changes an endpoint's settings; when that enables or disables it, operators hear of
    /// it (`endpoint.enabled`, `endpoint.disabled`).
    public func updateEndpoint(tenant: UUID, id: UUID, _ input: EndpointInput) async throws -> EndpointView {
        let before = input.enabled == nil ? nil : try await store.endpoint(tenant: tenant, id: id).enabled
        let endpoint = try await store.updateEndpoint(tenant: tenant, id: id, input)
        if let before, before != endpoint.enabled { await announceEnabled(endpoint, tenant: tenant) }
        return endpoint
    }

    private func announceEnabled(_ endpoint: EndpointView, tenant: UUID) async {
        await dispatcher.announce(
            OperatorEvent(
                endpoint.enabled ? .endpointEnabled : .endpointDisabled, tenant: tenant, endpoint: UUID(text: endpoint.id),
                reason: endpoint.enabled ? "enabled by the tenant" : "disabled by the tenant"))
    }

    /// Re-enables the endpoint (its failure count reset); with `replaySkipped` its
    /// skipped deliveries are sent now. Returns the endpoint and how many were replayed.
    public func activate(tenant: UUID, endpoint id: UUID, replaySkipped: Bool) async throws -> (EndpointView, Int) {
        let wasEnabled = try await store.endpoint(tenant: tenant, id: id).enabled
        let endpoint = try await store.activate(tenant: tenant, id: id)
        if !wasEnabled && endpoint.enabled { await announceEnabled(endpoint, tenant: tenant) }
        let reopened = replaySkipped ? try await log.reopenSkipped(endpoint: id) : []
        for (delivery, attempt) in reopened {
            try await dispatcher.dispatch(delivery: delivery, attempt: attempt, manual: false)
        }
        return (endpoint, reopened.count)
    }

    /// Sends the catalog's sample of `type` to this endpoint only; returns the delivery.
    public func sendTest(tenant: UUID, endpoint id: UUID, type: String) async throws -> UUID {
        guard let entry = Catalog.entry(type) else {
            throw ManagementError(.invalid, field: "event_type", "not in the catalog (GET /v1/event-types)")
        }
        guard try await store.endpoint(tenant: tenant, id: id).enabled else {
            throw ManagementError(.conflict, "enable the endpoint before sending it a test event")
        }
        let delivery = try await log.storeTestEvent(tenant: tenant, endpoint: id, type: type, data: entry.sample)
        try await dispatcher.dispatch(delivery: delivery, attempt: 1, manual: true)
        return delivery
    }

    /// Resends a finished delivery with a new request id; returns the attempt number.
    public func resend(tenant: UUID, delivery id: UUID) async throws -> Int {
        let previous = try await log.delivery(tenant: tenant, id: id).delivery.status
        let attempt = try await log.reopenForResend(tenant: tenant, id: id)
        try await dispatch(id, attempt: attempt, restoring: previous)
        return attempt
    }

    /// The endpoint's failed deliveries since `since`, resent unless `dryRun`: how many
    /// there are and how many were resent.
    public func recover(tenant: UUID, endpoint id: UUID, since: Date, dryRun: Bool) async throws -> (count: Int, resent: Int) {
        _ = try await store.endpoint(tenant: tenant, id: id)
        let failed = try await log.failedDeliveries(tenant: tenant, endpoint: id, since: since)
        if dryRun { return (failed.count, 0) }
        var resent = 0
        for delivery in failed {
            // One resent meanwhile by someone else is no longer failed: skipped.
            guard let attempt = try? await log.reopenForResend(tenant: tenant, id: delivery) else { continue }
            try await dispatch(delivery, attempt: attempt, restoring: .failed)
            resent += 1
        }
        return (failed.count, resent)
    }

    /// Dispatches a reopened delivery; if the broker refuses, the delivery goes back to
    /// `status` so nothing waits for a message that was never sent.
    private func dispatch(_ delivery: UUID, attempt: Int, restoring status: DeliveryState.Status) async throws {
        do {
            try await dispatcher.dispatch(delivery: delivery, attempt: attempt, manual: true)
        } catch {
            try? await log.restore(delivery: delivery, status: status)
            throw error
        }
    }
}
