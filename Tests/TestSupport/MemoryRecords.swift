public import Delivery
public import HeraldEvents
public import Foundation
public import Records
import HeraldSupport
import Synchronization

/// The delivery record in memory, for tests that run the worker's `Processor` and the
/// delivery log without sockets. It means what `PostgresRecords` means; the conformance
/// tests run the same scenarios against both.
public final class MemoryRecords: PipelineRecords, DeliveryLog {
    struct DeliveryRow {
        var state: DeliveryState
        var tenant: UUID
        var eventID: String
        var createdAt: Date
        var deliveredAt: Date?
        var lastStatusCode: Int?
        var lastErrorClass: String?
        var nextAttemptAt: Date?
        /// Its place in an ordered endpoint's order; nil for every other delivery.
        var position: Int?
    }

    struct EventRow {
        var event: Event
        var receivedAt: Date
    }

    struct FailureRun {
        var count = 0
        var firstAt: Date?
    }

    struct State {
        var events: [EventKey: EventRow] = [:]
        var deliveries: [UUID: DeliveryRow] = [:]
        var attempts: [UUID: [Attempt]] = [:]
        var failures: [UUID: FailureRun] = [:]
        var disabled: Set<UUID> = []
        /// Endpoints whose circuit a worker opened, and when.
        var circuits: [UUID: Date] = [:]
        var clock = Date.distantPast
        var positions = 0
        /// Claims of another holder applied just before the next claim (`claimBeforeNext`).
        var interleaved: [AttemptClaim] = []
    }

    private let state = Mutex(State())
    private let policy: DisablePolicy

    public init(policy: DisablePolicy = DisablePolicy(threshold: 5, window: .zero)) {
        self.policy = policy
    }

    // MARK: What a test inspects

    /// The endpoints a run of failures (or a 410) disabled.
    public var disabledEndpoints: Set<UUID> { state.withLock { $0.disabled } }

    /// Every delivery's state, by id.
    public var states: [UUID: DeliveryState] { state.withLock { $0.deliveries.mapValues(\.state) } }

    /// The attempts logged for a delivery, in order.
    public func attempts(of delivery: UUID) -> [Attempt] { state.withLock { $0.attempts[delivery] ?? [] } }

    // MARK: PipelineRecords

    public func store(_ arrivals: [Arrival]) async throws -> [Stored] {
        state.withLock { state in
            let now = state.tick()
            var claimed: [EventKey: Set<UUID>] = [:]
            var settled: [EventKey: Set<UUID>] = [:]
            for arrival in arrivals {
                let key = EventKey(arrival.event)
                if state.events[key] == nil { state.events[key] = EventRow(event: arrival.event, receivedAt: now) }
                for target in arrival.targets where state.delivery(key, endpoint: target.endpoint) == nil {
                    let identity = DeliveryState.identity(tenant: key.tenant, event: key.id, endpoint: target.endpoint)
                    let id = identity.id
                    state.deliveries[id] = DeliveryRow(
                        state: DeliveryState(
                            id: id, endpointID: target.endpoint, requestID: identity.requestID,
                            status: target.skip ? .skipped : target.sent != nil ? .delivered : .pending,
                            attempts: target.claim || target.sent != nil ? 1 : 0, recordedAttempts: 0, ordered: target.ordered),
                        tenant: key.tenant, eventID: key.id, createdAt: now)
                    if target.ordered {
                        state.positions += 1
                        state.deliveries[id]?.position = state.positions
                    }
                    if target.claim { claimed[key, default: []].insert(id) }
                    if var sent = target.sent {
                        sent.attempt.deliveryID = id
                        state.attempts[id, default: []].append(sent.attempt)
                        state.deliveries[id]?.lastStatusCode = sent.attempt.outcome.statusCode
                        state.deliveries[id]?.deliveredAt = now
                        state.failures[target.endpoint] = FailureRun()
                        settled[key, default: []].insert(id)
                    }
                }
            }
            // The first arrival of an event owns what this call created.
            var handedOut: Set<EventKey> = []
            return arrivals.map { arrival in
                let key = EventKey(arrival.event)
                let first = handedOut.insert(key).inserted
                let deliveries = state.deliveries.values.filter { EventKey(tenant: $0.tenant, id: $0.eventID) == key }
                    .sorted { $0.createdAt < $1.createdAt }.map { state.current($0.state.id) }
                return Stored(
                    event: state.events[key]!.event, deliveries: deliveries, claimed: first ? claimed[key] ?? [] : [],
                    settled: first ? settled[key] ?? [] : [])
            }
        }
    }

    public func load(delivery id: UUID) async throws -> (DeliveryState, Event)? {
        state.withLock { state in
            guard let row = state.deliveries[id], let event = state.events[EventKey(tenant: row.tenant, id: row.eventID)] else { return nil }
            return (state.current(id), event.event)
        }
    }

    public func claim(_ claims: [AttemptClaim]) async throws -> [Bool] {
        state.withLock { state in
            for claim in state.interleaved { _ = Self.apply(claim, to: &state) }
            state.interleaved = []
            return claims.map { Self.apply($0, to: &state) }
        }
    }

    /// A claim another holder makes just before the next claim is judged: two holders of
    /// one message racing, in the order a test chooses.
    public func claimBeforeNext(_ claim: AttemptClaim) {
        state.withLock { $0.interleaved.append(claim) }
    }

    private static func apply(_ claim: AttemptClaim, to state: inout State) -> Bool {
        guard var row = state.deliveries[claim.delivery], !row.state.status.isFinal, row.state.attempts < claim.attempt else { return false }
        row.state.attempts = claim.attempt
        state.deliveries[claim.delivery] = row
        return true
    }

    public func skip(delivery id: UUID) async throws {
        state.withLock { state in
            if let row = state.deliveries[id], !row.state.status.isFinal { state.deliveries[id]?.state.status = .skipped }
        }
    }

    public func circuit(endpoint: UUID, openedAt: Date?) async throws {
        state.withLock { $0.circuits[endpoint] = openedAt }
    }

    public func head(ofOrdered endpoint: UUID) async throws -> DeliveryState? {
        state.withLock { state in
            state.deliveries.values.filter { $0.state.endpointID == endpoint && $0.position != nil && !$0.state.status.isFinal }
                .min { $0.position! < $1.position! }.map { state.current($0.state.id) }
        }
    }

    /// When a worker opened the circuit of `endpoint`; nil while it is closed.
    public func circuitOpenedAt(_ endpoint: UUID) -> Date? {
        state.withLock { $0.circuits[endpoint] }
    }

    public func record(_ records: [AttemptRecord]) async throws -> [Recorded] {
        state.withLock { state in
            records.map { record in
                let attempt = record.attempt
                state.attempts[attempt.deliveryID, default: []].append(attempt)
                guard var row = state.deliveries[attempt.deliveryID], !row.state.status.isFinal, row.state.attempts <= attempt.number else {
                    return Recorded(applied: false, disabledEndpoint: false)
                }
                row.state.status = DeliveryState.Status(rawValue: record.next.rawValue)!
                row.lastStatusCode = attempt.outcome.statusCode
                row.lastErrorClass = attempt.outcome.errorClass?.rawValue
                row.nextAttemptAt = record.nextAttemptAt
                if record.next == .delivered { row.deliveredAt = state.tick() }
                state.deliveries[attempt.deliveryID] = row
                let endpoint = attempt.endpointID
                if attempt.outcome.verdict == .delivered {
                    state.failures[endpoint] = FailureRun()
                    return Recorded(applied: true, disabledEndpoint: false)
                }
                var run = state.failures[endpoint] ?? FailureRun()
                run.count += 1
                run.firstAt = run.firstAt ?? attempt.startedAt
                state.failures[endpoint] = run
                let disables = attempt.outcome.verdict == .gone
                    || policy.shouldDisable(consecutiveFailures: run.count, firstFailureAt: run.firstAt!, now: Date())
                let disabled = disables && state.disabled.insert(endpoint).inserted
                return Recorded(applied: true, disabledEndpoint: disabled)
            }
        }
    }

    // MARK: DeliveryLog

    public func deliveries(tenant: UUID, _ filter: DeliveryFilter) async throws -> Page<DeliveryView> {
        state.withLock { state in
            let rows = state.deliveries.values.filter { row in
                let type = state.events[EventKey(tenant: row.tenant, id: row.eventID)]?.event.type
                return row.tenant == tenant && (filter.endpoint.map { $0 == row.state.endpointID } ?? true)
                    && (filter.status.map { $0 == row.state.status } ?? true) && (filter.eventType.map { $0 == type } ?? true)
                    && (filter.eventId.map { $0 == row.eventID } ?? true)
                    && (filter.since.map { row.createdAt >= $0 } ?? true) && (filter.until.map { row.createdAt < $0 } ?? true)
                    && (filter.cursor.map { Self.newestFirst(($0.createdAt, $0.id), (row.createdAt, row.state.id)) } ?? true)
            }.sorted { Self.newestFirst(($0.createdAt, $0.state.id), ($1.createdAt, $1.state.id)) }
            var items = rows.prefix(filter.limit + 1).map { state.view($0) }
            var next: String?
            if items.count > filter.limit {
                items.removeLast()
                next = rows[filter.limit - 1].cursor.token
            }
            return Page(items: items, nextCursor: next)
        }
    }

    public func delivery(tenant: UUID, id: UUID) async throws -> DeliveryDetail {
        try state.withLock { state in
            guard let row = state.deliveries[id], row.tenant == tenant, let event = state.events[EventKey(tenant: tenant, id: row.eventID)]?.event
            else { throw RecordError(.notFound, "no such delivery") }
            let attempts = (state.attempts[id] ?? []).map { attempt in
                AttemptView(
                    attempt: attempt.number, trigger: attempt.trigger, requestId: attempt.requestID.uuidString.lowercased(),
                    startedAt: attempt.startedAt, durationMs: attempt.milliseconds,
                    statusCode: attempt.outcome.statusCode, responseExcerpt: attempt.excerpt.isEmpty ? nil : String(decoding: attempt.excerpt, as: UTF8.self),
                    errorClass: attempt.outcome.errorClass?.rawValue, errorMessage: attempt.outcome.errorMessage)
            }
            let eventView = EventView(
                id: event.id, type: event.type, occurredAt: event.occurredAt, attributes: event.attributes,
                data: JSONValue(parsing: String(decoding: event.data, as: UTF8.self)))
            return DeliveryDetail(delivery: state.view(row), event: eventView, attempts: attempts)
        }
    }

    public func reopenForResend(tenant: UUID, id: UUID) async throws -> Int {
        try state.withLock { state in
            guard var row = state.deliveries[id], row.tenant == tenant else { throw RecordError(.notFound, "no such delivery") }
            guard row.state.status.isFinal else { throw RecordError(.conflict, "the delivery is still pending or retrying") }
            row.state.status = .pending
            row.state.requestID = UUID()
            state.deliveries[id] = row
            return row.state.attempts + 1
        }
    }

    public func restore(delivery id: UUID, status: DeliveryState.Status) async throws {
        state.withLock { state in
            if state.deliveries[id]?.state.status == .pending { state.deliveries[id]?.state.status = status }
        }
    }

    public func failedDeliveries(tenant: UUID, endpoint: UUID, since: Date) async throws -> [UUID] {
        state.withLock { state in
            state.deliveries.values.filter {
                $0.tenant == tenant && $0.state.endpointID == endpoint && $0.state.status == .failed && $0.createdAt >= since
            }.sorted { $0.createdAt < $1.createdAt }.map(\.state.id)
        }
    }

    public func reopenSkipped(endpoint: UUID) async throws -> [(UUID, Int)] {
        state.withLock { state in
            state.deliveries.values.filter { $0.state.endpointID == endpoint && $0.state.status == .skipped }.map { row in
                state.deliveries[row.state.id]?.state.status = .pending
                return (row.state.id, row.state.attempts + 1)
            }
        }
    }

    public func storeTestEvent(tenant: UUID, endpoint: UUID, type: String, data: String) async throws -> UUID {
        state.withLock { state in
            let now = state.tick()
            let event = Event(
                id: "evt_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), type: type, tenantID: tenant,
                occurredAt: now, data: Array(data.utf8), attributes: ["test": "true"])
            state.events[EventKey(event)] = EventRow(event: event, receivedAt: now)
            let id = UUID()
            state.deliveries[id] = DeliveryRow(
                state: DeliveryState(id: id, endpointID: endpoint, requestID: UUID(), status: .pending, attempts: 0, recordedAttempts: 0),
                tenant: tenant, eventID: event.id, createdAt: now)
            return id
        }
    }

    public func deleteOlder(than cutoff: Date, batch: Int) async throws -> Int {
        state.withLock { state in
            var deleted = 0
            for (id, attempts) in state.attempts {
                let kept = attempts.filter { $0.startedAt >= cutoff }
                deleted += attempts.count - kept.count
                state.attempts[id] = kept
            }
            for (key, row) in state.events where row.receivedAt < cutoff {
                state.events[key] = nil
                deleted += 1
                for (id, delivery) in state.deliveries where EventKey(tenant: delivery.tenant, id: delivery.eventID) == key {
                    state.deliveries[id] = nil
                    state.attempts[id] = nil
                }
            }
            return deleted
        }
    }

    public func hours(tenant: UUID, endpoint: UUID, since: Date) async throws -> [EndpointHour] {
        state.withLock { state in
            var hours: [Date: EndpointHour] = [:]
            for attempt in state.attempts(tenant: tenant, since: since) where attempt.endpointID == endpoint {
                let hour = EndpointHour.start(of: attempt.startedAt)
                hours[hour, default: EndpointHour(hour: hour)].add(statusCode: attempt.outcome.statusCode, milliseconds: attempt.milliseconds)
            }
            return hours.values.sorted { $0.hour < $1.hour }
        }
    }

    public func summaries(tenant: UUID, endpoints: [UUID], since: Date) async throws -> [UUID: EndpointSummary] {
        state.withLock { state in
            var summaries: [UUID: EndpointSummary] = [:]
            for attempt in state.attempts(tenant: tenant, since: since) where endpoints.contains(attempt.endpointID) {
                summaries[attempt.endpointID, default: EndpointSummary()].attempts += 1
                if case .some(200...299) = attempt.outcome.statusCode { summaries[attempt.endpointID, default: EndpointSummary()].succeeded += 1 }
            }
            for endpoint in endpoints {
                let newest = state.deliveries.values.filter { $0.tenant == tenant && $0.state.endpointID == endpoint }
                    .min { Self.newestFirst(($0.createdAt, $0.state.id), ($1.createdAt, $1.state.id)) }
                if let newest {
                    summaries[endpoint, default: EndpointSummary()].lastDeliveryAt = newest.createdAt
                    summaries[endpoint, default: EndpointSummary()].lastStatus = newest.state.status
                }
            }
            return summaries
        }
    }

    public func tenantActivity(since: Date) async throws -> [UUID: TenantActivity] {
        state.withLock { state in
            var activity: [UUID: TenantActivity] = [:]
            for (id, attempts) in state.attempts {
                guard let tenant = state.deliveries[id]?.tenant else { continue }
                for attempt in attempts where attempt.startedAt >= EndpointHour.start(of: since) {
                    activity[tenant, default: TenantActivity()].attempts += 1
                    if case .some(200...299) = attempt.outcome.statusCode {} else { activity[tenant, default: TenantActivity()].failed += 1 }
                }
            }
            return activity
        }
    }

    /// Whether `a` comes before `b` newest first: later time, then the larger id, as
    /// PostgreSQL orders `(created_at, id) DESC` (uuids compare as their lower-case text).
    static func newestFirst(_ a: (Date, UUID), _ b: (Date, UUID)) -> Bool {
        a.0 != b.0 ? a.0 > b.0 : a.1.uuidString.lowercased() > b.1.uuidString.lowercased()
    }
}

extension Attempt {
    /// As PostgreSQL keeps `duration_ms`.
    var milliseconds: Int { Int(duration.milliseconds) }
}

extension MemoryRecords.State {
    /// The tenant's attempts from the hour of `since` on.
    func attempts(tenant: UUID, since: Date) -> [Attempt] {
        let from = EndpointHour.start(of: since)
        return attempts.flatMap { id, attempts in
            deliveries[id]?.tenant == tenant ? attempts.filter { $0.startedAt >= from } : []
        }
    }

    /// The time now, strictly increasing, in whole microseconds as PostgreSQL keeps it.
    mutating func tick() -> Date {
        let micros = max((Date().timeIntervalSince1970 * 1_000_000).rounded(), (clock.timeIntervalSince1970 * 1_000_000).rounded() + 1)
        clock = Date(timeIntervalSince1970: micros / 1_000_000)
        return clock
    }

    func delivery(_ key: EventKey, endpoint: UUID) -> MemoryRecords.DeliveryRow? {
        deliveries.values.first { EventKey(tenant: $0.tenant, id: $0.eventID) == key && $0.state.endpointID == endpoint }
    }

    /// The delivery's state with the highest attempt recorded.
    func current(_ id: UUID) -> DeliveryState {
        var state = deliveries[id]!.state
        state.recordedAttempts = attempts[id]?.map(\.number).max() ?? 0
        return state
    }

    func view(_ row: MemoryRecords.DeliveryRow) -> DeliveryView {
        DeliveryView(
            id: row.state.id.uuidString.lowercased(), endpointId: row.state.endpointID.uuidString.lowercased(), eventId: row.eventID,
            eventType: events[EventKey(tenant: row.tenant, id: row.eventID)]?.event.type ?? "", status: row.state.status,
            attempts: row.state.attempts, requestId: row.state.requestID.uuidString.lowercased(), lastStatusCode: row.lastStatusCode,
            lastErrorClass: row.lastErrorClass, nextAttemptAt: row.nextAttemptAt, createdAt: row.createdAt, deliveredAt: row.deliveredAt)
    }
}

extension MemoryRecords.DeliveryRow {
    var cursor: Cursor { Cursor(createdAt: createdAt, id: state.id) }
}
