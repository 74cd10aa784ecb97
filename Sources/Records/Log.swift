import HeraldSupport
public import Foundation
public import Postgres

extension PostgresRecords {
    public func deliveries(tenant: UUID, _ filter: DeliveryFilter) async throws -> Page<DeliveryView> {
        var query: Query = """
            SELECT d.id, d.endpoint_id, d.event_id, e.type, d.status, d.attempts, d.request_id, d.last_status_code,
                   d.last_error_class, d.next_attempt_at, d.created_at, d.delivered_at
            FROM deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
            WHERE d.tenant_id = \(tenant)
            """
        if let endpoint = filter.endpoint { query = query + " AND d.endpoint_id = \(endpoint)" }
        if let status = filter.status { query = query + " AND d.status = \(status.rawValue)" }
        if let type = filter.eventType { query = query + " AND e.type = \(type)" }
        if let eventId = filter.eventId { query = query + " AND d.event_id = \(eventId)" }
        if let since = filter.since { query = query + " AND d.created_at >= \(since)" }
        if let until = filter.until { query = query + " AND d.created_at < \(until)" }
        if let cursor = filter.cursor { query = query + " AND (d.created_at, d.id) < (\(cursor.createdAt), \(cursor.id))" }
        query = query + " ORDER BY d.created_at DESC, d.id DESC LIMIT \(filter.limit + 1)"
        var items = try await reads.query(query).map(Self.delivery)
        var next: String?
        if items.count > filter.limit {
            items.removeLast()
            next = items.last.flatMap { item in UUID(text: item.id).map { Cursor(createdAt: item.createdAt, id: $0).token } }
        }
        return Page(items: items, nextCursor: next)
    }

    /// From the primary: a resend decides its write (and what to restore) from this.
    public func delivery(tenant: UUID, id: UUID) async throws -> DeliveryDetail {
        try await delivery(tenant: tenant, id: id, from: pool)
    }

    private func delivery(tenant: UUID, id: UUID, from pool: Pool) async throws -> DeliveryDetail {
        guard let row = try await pool.query(
            """
            SELECT d.id, d.endpoint_id, d.event_id, e.type, d.status, d.attempts, d.request_id, d.last_status_code,
                   d.last_error_class, d.next_attempt_at, d.created_at, d.delivered_at,
                   e.occurred_at, e.attributes::text, e.data::text
            FROM deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
            WHERE d.tenant_id = \(tenant) AND d.id = \(id)
            """).first
        else { throw RecordError(.notFound, "no such delivery") }
        let delivery = try Self.delivery(row)
        let attributes = (try? JSONSerialization.jsonObject(with: Data(try row.decode(String.self, 13).utf8)) as? [String: String]) ?? [:]
        let event = EventView(
            id: delivery.eventId, type: delivery.eventType, occurredAt: try row.decode(Date.self, 12), attributes: attributes,
            data: JSONValue(parsing: try row.decode(String.self, 14)))
        let attempts = try await pool.query(
            """
            SELECT attempt, trigger, request_id, started_at, duration_ms, status_code, response_excerpt, error_class, error_message
            FROM delivery_attempts WHERE delivery_id = \(id) ORDER BY started_at, id
            """
        ).map { row in
            AttemptView(
                attempt: try row.decode(Int.self, 0), trigger: try row.decode(DeliveryState.Trigger.self, 1), requestId: try row.id(2),
                startedAt: try row.decode(Date.self, 3), durationMs: try row.decode(Int.self, 4), statusCode: try row.decode(Int?.self, 5),
                responseExcerpt: try row.decode(String?.self, 6), errorClass: try row.decode(String?.self, 7),
                errorMessage: try row.decode(String?.self, 8))
        }
        return DeliveryDetail(delivery: delivery, event: event, attempts: attempts)
    }

    /// The new request id says "you really do want to deliver again"; `webhook-id` stays.
    public func reopenForResend(tenant: UUID, id: UUID) async throws -> Int {
        let rows = try await pool.query(
            """
            UPDATE deliveries SET status = \(DeliveryState.Status.pending.rawValue), request_id = gen_random_uuid(), updated_at = now()
            WHERE tenant_id = \(tenant) AND id = \(id) AND status = ANY(\(Self.finalStatuses))
            RETURNING attempts
            """)
        if let row = rows.first { return try row.decode(Int.self, 0) + 1 }
        // Absent or still open: asked of the primary, which just refused the update.
        _ = try await delivery(tenant: tenant, id: id, from: pool)
        throw RecordError(.conflict, "the delivery is still pending or retrying")
    }

    public func restore(delivery id: UUID, status: DeliveryState.Status) async throws {
        try await pool.query(
            """
            UPDATE deliveries SET status = \(status.rawValue), updated_at = now()
            WHERE id = \(id) AND status = \(DeliveryState.Status.pending.rawValue)
            """)
    }

    public func failedDeliveries(tenant: UUID, endpoint: UUID, since: Date) async throws -> [UUID] {
        try await pool.query(
            """
            SELECT id FROM deliveries
            WHERE tenant_id = \(tenant) AND endpoint_id = \(endpoint) AND status = \(DeliveryState.Status.failed.rawValue)
              AND created_at >= \(since)
            ORDER BY created_at
            """).map { try $0.decode(UUID.self, 0) }
    }

    public func reopenSkipped(endpoint: UUID) async throws -> [(UUID, Int)] {
        try await pool.query(
            """
            UPDATE deliveries SET status = \(DeliveryState.Status.pending.rawValue), updated_at = now()
            WHERE endpoint_id = \(endpoint) AND status = \(DeliveryState.Status.skipped.rawValue)
            RETURNING id, attempts
            """).map { (try $0.decode(UUID.self, 0), try $0.decode(Int.self, 1) + 1) }
    }

    public func storeTestEvent(tenant: UUID, endpoint id: UUID, type: String, data: String) async throws -> UUID {
        try await pool.transaction { tx in
            let eventID = "evt_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            try await tx.query(
                """
                INSERT INTO events (tenant_id, id, type, occurred_at, data, attributes)
                VALUES (\(tenant), \(eventID), \(type), now(), \(data)::json, '{"test": "true"}'::jsonb)
                """)
            // The endpoint locked as a store batch locks it (`insertDeliveries`).
            guard
                let row = try await tx.query(
                    """
                    INSERT INTO deliveries (tenant_id, event_id, endpoint_id)
                    SELECT \(tenant), \(eventID), id FROM endpoints WHERE id = \(id) AND tenant_id = \(tenant) FOR KEY SHARE
                    RETURNING id
                    """
                ).first
            else { throw RecordError(.notFound, "no such endpoint") }
            return try row.decode(UUID.self, 0)
        }
    }

    /// `delivery_attempts` is partitioned by day (migration 0012): makes the partitions of
    /// today and the next `ahead` days, and drops whole the days that ended before
    /// `cutoff`; what is left older (in the default partition, or the first day's part
    /// before the cutoff) `deleteOlder` deletes in batches.
    public func maintainAttemptPartitions(cutoff: Date, ahead: Int = 7) async throws -> (made: Int, dropped: Int) {
        let made = try await pool.query("SELECT herald_make_attempt_partitions(\(ahead)::integer)")[0].decode(Int.self, 0)
        let dropped = try await pool.query("SELECT herald_drop_attempt_partitions(\(cutoff)::timestamptz)")[0].decode(Int.self, 0)
        return (made, dropped)
    }

    /// Deletes the deliveries of `endpoint` and their attempts, which no foreign key cascades
    /// to (migrations 0019, 0020), in the transaction on `connection` that has just deleted
    /// the endpoint (`Store.deleteEndpoint`): a statement of its own, whose snapshot sees
    /// every store batch the endpoint's delete waited for.
    package static func deleteDeliveries(ofEndpoint endpoint: UUID, on connection: Connection) async throws {
        try await connection.query(
            """
            WITH d AS (DELETE FROM deliveries WHERE endpoint_id = \(endpoint) RETURNING id)
            DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM d)
            """)
    }

    /// Small batches keep any statement from holding locks for long.
    public func deleteOlder(than cutoff: Date, batch: Int = 1000) async throws -> Int {
        var total = 0
        while true {
            let attempts = try await pool.query(
                """
                DELETE FROM delivery_attempts WHERE (id, started_at) IN
                    (SELECT id, started_at FROM delivery_attempts WHERE started_at < \(cutoff) LIMIT \(batch))
                """).affectedRows
            // An event goes with its deliveries and their attempts (no foreign key cascades
            // there, migration 0019).
            let events = try await pool.query(
                """
                WITH e AS (
                    DELETE FROM events WHERE (tenant_id, id) IN
                        (SELECT tenant_id, id FROM events WHERE received_at < \(cutoff) LIMIT \(batch))
                    RETURNING tenant_id, id),
                d AS (DELETE FROM deliveries d USING e WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id RETURNING d.id),
                a AS (DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM d))
                SELECT count(*)::bigint FROM e
                """)[0].decode(Int.self, 0)
            total += attempts + events
            if attempts < batch && events < batch { break }
        }
        // A week of hourly figures stays for the charts, whatever the attempts' retention.
        total += try await pool.query(
            "DELETE FROM endpoint_hours WHERE hour < least(\(cutoff)::timestamptz, now() - interval '8 days')"
        ).affectedRows
        return total
    }

    static func delivery(_ row: Row) throws -> DeliveryView {
        DeliveryView(
            id: try row.id(0), endpointId: try row.id(1), eventId: try row.decode(String.self, 2),
            eventType: try row.decode(String.self, 3), status: try row.decode(DeliveryState.Status.self, 4), attempts: try row.decode(Int.self, 5),
            requestId: try row.id(6), lastStatusCode: try row.decode(Int?.self, 7),
            lastErrorClass: try row.decode(String?.self, 8), nextAttemptAt: try row.decode(Date?.self, 9),
            createdAt: try row.decode(Date.self, 10), deliveredAt: try row.decode(Date?.self, 11))
    }
}

// A status or trigger the type does not know is a decoding error, not a guess.
extension DeliveryState.Status: ColumnDecodable {
    public init?(postgresText text: String) { self.init(rawValue: text) }
}

extension DeliveryState.Trigger: ColumnDecodable {
    public init?(postgresText text: String) { self.init(rawValue: text) }
}
