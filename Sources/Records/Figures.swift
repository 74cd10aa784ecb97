public import Foundation
import HeraldSupport
import Postgres

// The dashboard's figures: attempts added up per endpoint and hour into `endpoint_hours`,
// so a chart over 7 days reads at most 168 rows per endpoint however many attempts there were.

extension PostgresRecords {
    /// Adds the attempts that started since the last roll-up and more than `lag` ago to
    /// `endpoint_hours`, at most `step` of time per transaction; returns the rows written.
    ///
    /// An attempt's row is written after its request ended, so `lag` must exceed the HTTP
    /// timeout: an attempt still on the wire when its hour is counted would never be.
    @discardableResult
    public func rollUp(lag: Duration, step: Duration = .seconds(6 * 3600)) async throws -> Int {
        var counted = 0
        while true {
            let (written, more) = try await pool.transaction { tx -> (Int, Bool) in
                // The lock makes another replica's roll-up wait, then see the new mark. A mark
                // row that is missing (a table restored without it) is put back at the
                // oldest attempt kept, so nothing is skipped.
                try await tx.query(
                    """
                    INSERT INTO attempt_rollup (rolled_until)
                    SELECT coalesce(min(started_at), now()) FROM delivery_attempts WHERE NOT EXISTS (SELECT 1 FROM attempt_rollup)
                    ON CONFLICT DO NOTHING
                    """)
                guard let row = try await tx.query(
                    """
                    SELECT rolled_until,
                           least(now() - make_interval(secs => \(lag.seconds)), rolled_until + make_interval(secs => \(step.seconds))),
                           rolled_until + make_interval(secs => \(step.seconds)) < now() - make_interval(secs => \(lag.seconds))
                    FROM attempt_rollup FOR UPDATE
                    """
                ).first else { return (0, false) }
                let from = try row.decode(Date.self, 0)
                let until = try row.decode(Date.self, 1)
                guard until > from else { return (0, false) }
                let written = try await tx.query(Self.addHours(from: from, until: until)).affectedRows
                try await tx.query("UPDATE attempt_rollup SET rolled_until = \(until)")
                return (written, try row.decode(Bool.self, 2))
            }
            counted += written
            if !more { return counted }
        }
    }

    /// One row per (endpoint, hour) touched.
    static func addHours(from: Date, until: Date) -> Query {
        let bounds = LatencyHistogram.bounds
        var buckets = ["count(*) FILTER (WHERE a.duration_ms < \(bounds[0]))"]
        for index in 1..<bounds.count {
            buckets.append("count(*) FILTER (WHERE a.duration_ms >= \(bounds[index - 1]) AND a.duration_ms < \(bounds[index]))")
        }
        buckets.append("count(*) FILTER (WHERE a.duration_ms >= \(bounds.last!))")
        let latency = "ARRAY[" + buckets.joined(separator: ", ") + "]::integer[]"
        return Query(
            """
            INSERT INTO endpoint_hours (endpoint_id, tenant_id, hour, succeeded, rejected, unanswered, latency)
            SELECT d.endpoint_id, d.tenant_id, date_trunc('hour', a.started_at, 'UTC'),
                   count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299),
                   count(*) FILTER (WHERE a.status_code IS NOT NULL AND a.status_code NOT BETWEEN 200 AND 299),
                   count(*) FILTER (WHERE a.status_code IS NULL),
                   \(Query(stringLiteral: latency))
            FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
            WHERE a.started_at >= \(from) AND a.started_at < \(until)
            GROUP BY 1, 2, 3
            ON CONFLICT (endpoint_id, hour) DO UPDATE SET
                succeeded = endpoint_hours.succeeded + excluded.succeeded,
                rejected = endpoint_hours.rejected + excluded.rejected,
                unanswered = endpoint_hours.unanswered + excluded.unanswered,
                latency = ARRAY(
                    SELECT coalesce(x, 0) + coalesce(y, 0)
                    FROM unnest(endpoint_hours.latency, excluded.latency) WITH ORDINALITY AS t(x, y, n) ORDER BY n)
            """)
    }

    public func hours(tenant: UUID, endpoint: UUID, since: Date) async throws -> [EndpointHour] {
        try await reads.query(
            """
            SELECT hour, succeeded, rejected, unanswered, array_to_string(latency, ',')
            FROM endpoint_hours WHERE endpoint_id = \(endpoint) AND tenant_id = \(tenant) AND hour >= \(EndpointHour.start(of: since))
            ORDER BY hour
            """
        ).map { row in
            EndpointHour(
                hour: try row.decode(Date.self, 0), succeeded: try row.decode(Int.self, 1), rejected: try row.decode(Int.self, 2),
                unanswered: try row.decode(Int.self, 3),
                latency: LatencyHistogram(counts: try row.decode(String.self, 4).split(separator: ",").map { Int($0) ?? 0 }))
        }
    }

    public func summaries(tenant: UUID, endpoints: [UUID], since: Date) async throws -> [UUID: EndpointSummary] {
        var summaries: [UUID: EndpointSummary] = [:]
        let ids = endpoints.map(\.uuidString)
        for row in try await reads.query(
            """
            SELECT endpoint_id, sum(succeeded + rejected + unanswered)::bigint, sum(succeeded)::bigint FROM endpoint_hours
            WHERE tenant_id = \(tenant) AND hour >= \(EndpointHour.start(of: since)) AND endpoint_id = ANY(\(ids)::uuid[])
            GROUP BY endpoint_id
            """)
        {
            summaries[try row.decode(UUID.self, 0)] = EndpointSummary(attempts: try row.decode(Int.self, 1), succeeded: try row.decode(Int.self, 2))
        }
        // The newest delivery of each, from the index the log pages with.
        for row in try await reads.query(
            """
            SELECT u.id, d.created_at, d.status FROM unnest(\(ids)::uuid[]) AS u(id)
            CROSS JOIN LATERAL (
                SELECT created_at, status FROM deliveries WHERE endpoint_id = u.id AND tenant_id = \(tenant)
                ORDER BY created_at DESC, id DESC LIMIT 1) d
            """)
        {
            let id = try row.decode(UUID.self, 0)
            summaries[id, default: EndpointSummary()].lastDeliveryAt = try row.decode(Date.self, 1)
            summaries[id, default: EndpointSummary()].lastStatus = try row.decode(DeliveryState.Status.self, 2)
        }
        return summaries
    }

    public func tenantActivity(since: Date) async throws -> [UUID: TenantActivity] {
        var activity: [UUID: TenantActivity] = [:]
        for row in try await reads.query(
            """
            SELECT tenant_id, sum(succeeded + rejected + unanswered)::bigint, sum(rejected + unanswered)::bigint
            FROM endpoint_hours WHERE hour >= \(EndpointHour.start(of: since)) GROUP BY tenant_id
            """)
        {
            activity[try row.decode(UUID.self, 0)] = TenantActivity(attempts: try row.decode(Int.self, 1), failed: try row.decode(Int.self, 2))
        }
        return activity
    }
}
