public import Events
public import Foundation
public import Postgres

/// A delivery as the worker sees it when deciding what to do.
public struct DeliveryState: Sendable, Equatable {
    public enum Status: String, Sendable {
        case pending, retrying, delivered, failed, skipped

        public var isFinal: Bool { self == .delivered || self == .failed || self == .skipped }
    }

    public var id: UUID
    public var endpointID: UUID
    public var requestID: UUID
    public var status: Status
    /// Attempts started (claimed).
    public var attempts: Int
    /// The highest attempt number recorded in `delivery_attempts`.
    public var recordedAttempts: Int

    public init(id: UUID, endpointID: UUID, requestID: UUID, status: Status, attempts: Int, recordedAttempts: Int) {
        self.id = id
        self.endpointID = endpointID
        self.requestID = requestID
        self.status = status
        self.attempts = attempts
        self.recordedAttempts = recordedAttempts
    }
}

/// Stores events and creates their deliveries, idempotently.
public struct FanOutStore: Sendable {
    let pool: Pool

    public init(pool: Pool) {
        self.pool = pool
    }

    /// Stores `event` once per (tenant, id) and one delivery per target endpoint, in one
    /// transaction. Returns the stored event (a republished id keeps its first content)
    /// and every delivery of the event, new or not.
    public func store(_ event: Event, targets: [(endpoint: UUID, skip: Bool)]) async throws -> (Event, [DeliveryState]) {
        try await pool.transaction { tx in
            let attributes = String(decoding: try JSONSerialization.data(withJSONObject: event.attributes, options: [.sortedKeys]), as: UTF8.self)
            let inserted = try await tx.query(
                """
                INSERT INTO events (tenant_id, id, type, occurred_at, data, attributes)
                VALUES (\(event.tenantID), \(event.id), \(event.type), \(event.occurredAt), \(String(decoding: event.data, as: UTF8.self))::json, \(JSONB(attributes)))
                ON CONFLICT (tenant_id, id) DO NOTHING
                RETURNING 1
                """)
            var stored = event
            if inserted.isEmpty {
                let row = try await tx.query(
                    "SELECT type, occurred_at, data::text FROM events WHERE tenant_id = \(event.tenantID) AND id = \(event.id)")[0]
                stored.type = try row.decode(String.self, 0)
                stored.occurredAt = try row.decode(Date.self, 1)
                stored.data = Array(try row.decode(String.self, 2).utf8)
            }
            if !targets.isEmpty {
                let rows: [[any Bindable]] = targets.map { target in
                    [event.tenantID, event.id, target.endpoint, target.skip ? "skipped" : "pending"]
                }
                try await tx.query(
                    """
                    INSERT INTO deliveries (tenant_id, event_id, endpoint_id, status)
                    VALUES \(Query.values(rows))
                    ON CONFLICT (endpoint_id, tenant_id, event_id) DO NOTHING
                    """)
            }
            let deliveries = try await tx.query(
                """
                SELECT d.id, d.endpoint_id, d.request_id, d.status, d.attempts,
                       COALESCE((SELECT max(a.attempt) FROM delivery_attempts a WHERE a.delivery_id = d.id), 0)
                FROM deliveries d
                WHERE d.tenant_id = \(event.tenantID) AND d.event_id = \(event.id)
                """)
            return (stored, try deliveries.map(Self.state))
        }
    }

    /// A delivery with its event, for a retry; nil when it no longer exists.
    public func load(delivery id: UUID) async throws -> (DeliveryState, Event)? {
        let rows = try await pool.query(
            """
            SELECT d.id, d.endpoint_id, d.request_id, d.status, d.attempts,
                   COALESCE((SELECT max(a.attempt) FROM delivery_attempts a WHERE a.delivery_id = d.id), 0),
                   e.tenant_id, e.id, e.type, e.occurred_at, e.data::text, e.attributes::text
            FROM deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
            WHERE d.id = \(id)
            """)
        guard let row = rows.first else { return nil }
        let attributes = (try? JSONSerialization.jsonObject(with: Data(try row.decode(String.self, 11).utf8)) as? [String: String]) ?? [:]
        let event = Event(
            id: try row.decode(String.self, 7), type: try row.decode(String.self, 8), tenantID: try row.decode(UUID.self, 6),
            occurredAt: try row.decode(Date.self, 9), data: Array(try row.decode(String.self, 10).utf8), attributes: attributes)
        return (try Self.state(row), event)
    }

    static func state(_ row: Row) throws -> DeliveryState {
        DeliveryState(
            id: try row.decode(UUID.self, 0), endpointID: try row.decode(UUID.self, 1), requestID: try row.decode(UUID.self, 2),
            status: DeliveryState.Status(rawValue: try row.decode(String.self, 3)) ?? .pending,
            attempts: try row.decode(Int.self, 4), recordedAttempts: try row.decode(Int.self, 5))
    }
}
