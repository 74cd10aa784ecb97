public import HeraldEvents
public import Foundation

/// The delivery record as the pipeline changes it: events stored with their deliveries,
/// attempts claimed before their request and recorded after it.
///
/// `PostgresRecords` is the one implementation Herald runs; the worker reaches it only
/// through this protocol, so its `Processor` is tested without sockets against an
/// in-memory record that the same conformance tests hold to the same meaning.
public protocol PipelineRecords: Sendable {
    /// Stores each event once per (tenant, id) and one delivery per target, for a batch:
    /// an event or delivery that exists already is kept as it is and returned.
    func store(_ arrivals: [Arrival]) async throws -> [Stored]
    /// A delivery with its event, for a retry; nil when it no longer exists.
    func load(delivery id: UUID) async throws -> (DeliveryState, Event)?
    /// True for exactly one claim of an attempt while the delivery is open and fewer
    /// attempts were started; one answer per claim, in order.
    func claim(_ claims: [AttemptClaim]) async throws -> [Bool]
    /// Marks an open delivery skipped (its endpoint is disabled).
    func skip(delivery id: UUID) async throws
    /// Logs each attempt and, unless another holder already settled its delivery, applies
    /// the delivery's new state and counts the endpoint's run of failures (which may
    /// disable it); one answer per record, in order.
    func record(_ records: [AttemptRecord]) async throws -> [Recorded]
    /// `store(arrivals)` and `record(records)` committed together, for records that
    /// `AttemptRecord.mayRide` accepts: one round trip where there would be two.
    func store(_ arrivals: [Arrival], recording records: [AttemptRecord]) async throws -> ([Stored], [Recorded])
    /// The oldest open delivery of an ordered endpoint (the only one that may be sent);
    /// nil when none waits.
    func head(ofOrdered endpoint: UUID) async throws -> DeliveryState?
    /// Notes that a worker opened an endpoint's circuit at `openedAt`, or closed it (nil).
    func circuit(endpoint: UUID, openedAt: Date?) async throws
}

/// The delivery log as the management API reads and changes it. Every tenant-scoped call
/// filters by the tenant, so a foreign id is indistinguishable from a missing one.
public protocol DeliveryLog: Sendable {
    /// A page of deliveries, newest first.
    func deliveries(tenant: UUID, _ filter: DeliveryFilter) async throws -> Page<DeliveryView>
    /// One delivery with its event and attempts; `RecordError.notFound` when absent.
    func delivery(tenant: UUID, id: UUID) async throws -> DeliveryDetail
    /// Reopens a final delivery for a manual resend with a new request id; returns the
    /// attempt number to make. `RecordError.conflict` while it is still open.
    func reopenForResend(tenant: UUID, id: UUID) async throws -> Int
    /// Puts a reopened delivery back to `status` after its dispatch failed.
    func restore(delivery id: UUID, status: DeliveryState.Status) async throws
    /// Failed deliveries of an endpoint created since `since`, oldest first.
    func failedDeliveries(tenant: UUID, endpoint: UUID, since: Date) async throws -> [UUID]
    /// Reopens the skipped deliveries of an endpoint just re-enabled; returns each with
    /// the attempt to make.
    func reopenSkipped(endpoint: UUID) async throws -> [(UUID, Int)]
    /// An event of `type` with `data` (JSON text) and one delivery of it to `endpoint` only.
    func storeTestEvent(tenant: UUID, endpoint: UUID, type: String, data: String) async throws -> UUID
    /// Deletes attempts and events (with their deliveries) older than `cutoff`, `batch`
    /// rows per statement; returns the rows deleted.
    func deleteOlder(than cutoff: Date, batch: Int) async throws -> Int

    // The dashboard's figures. PostgreSQL answers from hourly counts that lag the attempts
    // by a minute or two (`PostgresRecords.rollUp`); memory counts its attempts directly.

    /// An endpoint's attempts per hour from the hour of `since` on, oldest first; hours
    /// without attempts are absent.
    func hours(tenant: UUID, endpoint: UUID, since: Date) async throws -> [EndpointHour]
    /// Per endpoint of `endpoints`: attempts and successes from the hour of `since` on, and
    /// its newest delivery; an endpoint with neither is absent.
    func summaries(tenant: UUID, endpoints: [UUID], since: Date) async throws -> [UUID: EndpointSummary]
    /// Per tenant: attempts and failed attempts from the hour of `since` on.
    func tenantActivity(since: Date) async throws -> [UUID: TenantActivity]
}

extension PipelineRecords {
    public func store(_ arrivals: [Arrival], recording records: [AttemptRecord]) async throws -> ([Stored], [Recorded]) {
        let stored = try await store(arrivals)
        return (stored, try await record(records))
    }
}
