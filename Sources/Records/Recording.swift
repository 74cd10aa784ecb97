public import Foundation
import HeraldSupport
import Delivery
import Postgres

extension PostgresRecords {
    /// One statement per round: a delivery named twice is claimed in a later round, so
    /// only one of its claims succeeds.
    public func claim(_ claims: [AttemptClaim]) async throws -> [Bool] {
        guard !claims.isEmpty else { return [] }
        var granted = [Bool](repeating: false, count: claims.count)
        for round in Self.rounds(claims.map(\.delivery)) {
            let deliveries = Column(round.map { claims[$0].delivery })
            let claim: Query = """
                UPDATE deliveries d SET attempts = v.attempt, claimed_at = now(), updated_at = now()
                FROM unnest(\(deliveries)::uuid[], \(Column(round.map { claims[$0].attempt }))::int[]) AS v (id, attempt)
                WHERE d.id = ANY(\(deliveries)::uuid[]) AND d.id = v.id AND d.attempts < v.attempt AND d.status = ANY(\(Self.openStatuses))
                RETURNING d.id
                """
            let updated = try await pool.query(claim.prepared())
            let ids = Set(try updated.map { try $0.decode(UUID.self, 0) })
            for index in round where ids.contains(claims[index].delivery) { granted[index] = true }
        }
        return granted
    }

    /// Indices grouped so that no round names a delivery twice, in submission order.
    static func rounds(_ deliveries: [UUID]) -> [[Int]] {
        var rounds: [[Int]] = []
        var occurrences: [UUID: Int] = [:]
        for (index, delivery) in deliveries.enumerated() {
            let round = occurrences[delivery, default: 0]
            occurrences[delivery] = round + 1
            if round == rounds.count { rounds.append([]) }
            rounds[round].append(index)
        }
        return rounds
    }

    public func skip(delivery id: UUID) async throws {
        try await pool.query(
            """
            UPDATE deliveries SET status = \(DeliveryState.Status.skipped.rawValue), updated_at = now()
            WHERE id = \(id) AND status = ANY(\(Self.openStatuses))
            """)
    }

    public func circuit(endpoint: UUID, openedAt: Date?) async throws {
        try await pool.query("UPDATE endpoints SET circuit_opened_at = \(openedAt) WHERE id = \(endpoint)")
    }

    /// A batch in one statement or transaction, meaning what recording them one by one
    /// would. A transaction that lost a deadlock is run again.
    public func record(_ entries: [AttemptRecord]) async throws -> [Recorded] {
        guard !entries.isEmpty else { return [] }
        let allDelivered = entries.allSatisfy { $0.attempt.outcome.verdict == .delivered }
        let simple = allDelivered && Self.rounds(entries.map(\.attempt.deliveryID)).count == 1
        var tries = 0
        while true {
            do {
                if simple { return try await recordDelivered(entries) }
                return try await pool.transaction { tx in try await record(entries, in: tx) }
            } catch let error as DatabaseError where ["40P01", "40001"].contains(error.sqlState ?? "") && tries < 4 {
                tries += 1
            }
        }
    }

    /// The common case, successes of distinct deliveries, in one statement: attempts
    /// logged, deliveries moved, their endpoints' failure runs ended.
    private func recordDelivered(_ entries: [AttemptRecord]) async throws -> [Recorded] {
        let statement: Query = """
            WITH \(Self.delivered(entries))
            SELECT id FROM m
            """
        let moved = try await pool.query(statement.prepared())
        let ids = Set(try moved.map { try $0.decode(UUID.self, 0) })
        return entries.map { Recorded(applied: ids.contains($0.attempt.deliveryID), disabledEndpoint: false) }
    }

    /// What recording successes of distinct deliveries writes, as common table expressions
    /// for `recordDelivered`'s statement (a store writes the same with its own `r`):
    /// attempts logged (`a`), deliveries moved (`m`, their ids and endpoints), the
    /// endpoints' runs of failures ended (`r`).
    static func delivered(_ entries: [AttemptRecord]) -> Query {
        """
        a AS (\(insertAttempts(entries))), m AS (\(moveDeliveries(entries, indices: Array(entries.indices)))), r AS (
            UPDATE endpoints SET consecutive_failures = 0, first_failure_at = NULL
            WHERE id IN (SELECT endpoint_id FROM m) AND consecutive_failures <> 0
        )
        """
    }

    /// Logs the attempts of `entries`, those that `condition` (on `v`) lets through.
    static func insertAttempts(_ entries: [AttemptRecord], where condition: Query = "") -> Query {
        let attempts = entries.map(\.attempt)
        return """
            INSERT INTO delivery_attempts (delivery_id, attempt, trigger, request_id, started_at, duration_ms,
                                           status_code, response_excerpt, error_class, error_message)
            SELECT v.* FROM unnest(
                \(Column(attempts.map(\.deliveryID)))::uuid[], \(Column(attempts.map(\.number)))::int[],
                \(Column(attempts.map(\.trigger.rawValue)))::text[], \(Column(attempts.map(\.requestID)))::uuid[],
                \(Column(attempts.map(\.startedAt)))::timestamptz[], \(Column(attempts.map { max(0, Int($0.duration.milliseconds)) }))::int[],
                \(Column(attempts.map(\.outcome.statusCode)))::int[], \(Column(attempts.map { Self.text($0.excerpt) }))::text[],
                \(Column(attempts.map(\.outcome.errorClass?.rawValue)))::text[],
                \(Column(attempts.map { $0.outcome.errorMessage.map { String($0.prefix(500)) } }))::text[])
                AS v (delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code, response_excerpt, error_class,
                      error_message)
            \(condition)
            """
    }

    /// Moves the deliveries of `entries[indices]` (no delivery twice) to their new state,
    /// unless settled or overtaken; returns the ids and endpoints of those it moved.
    static func moveDeliveries(_ entries: [AttemptRecord], indices: [Int]) -> Query {
        let moves = indices.map { entries[$0] }
        let ids = Column(moves.map(\.attempt.deliveryID))
        return """
            UPDATE deliveries d SET status = v.status, last_status_code = v.code,
                   last_error_class = v.class, next_attempt_at = v.next_at,
                   delivered_at = CASE WHEN v.status = \(DeliveryState.Status.delivered.rawValue) THEN now() ELSE d.delivered_at END, updated_at = now()
            FROM unnest(\(ids)::uuid[], \(Column(moves.map(\.attempt.number)))::int[],
                        \(Column(moves.map(\.next.rawValue)))::text[], \(Column(moves.map(\.attempt.outcome.statusCode)))::int[],
                        \(Column(moves.map(\.attempt.outcome.errorClass?.rawValue)))::text[], \(Column(moves.map(\.nextAttemptAt)))::timestamptz[])
                 AS v (id, attempt, status, code, class, next_at)
            WHERE d.id = ANY(\(ids)::uuid[]) AND d.id = v.id AND d.status = ANY(\(Self.openStatuses)) AND d.attempts <= v.attempt
            RETURNING d.id, d.endpoint_id
            """
    }

    private func record(_ entries: [AttemptRecord], in tx: Connection) async throws -> [Recorded] {
        try await tx.query(Self.insertAttempts(entries).prepared())
        // A delivery named twice in one batch (two holders of it) is updated in rounds, in
        // submission order, as separate records would be.
        var applied = [Bool](repeating: false, count: entries.count)
        for round in Self.rounds(entries.map(\.attempt.deliveryID)) {
            let updated = try await tx.query(Self.moveDeliveries(entries, indices: round).prepared())
            let ids = Set(try updated.map { try $0.decode(UUID.self, 0) })
            for index in round where ids.contains(entries[index].attempt.deliveryID) { applied[index] = true }
        }
        return try await countEndpoints(entries, applied: applied, in: tx)
    }

    /// Ends the failure runs of endpoints that succeeded and counts (and may disable) those
    /// that failed, sorted by endpoint so that concurrent batches lock them in one order.
    private func countEndpoints(_ entries: [AttemptRecord], applied: [Bool], in tx: Connection) async throws -> [Recorded] {
        var recorded = applied.map { Recorded(applied: $0, disabledEndpoint: false) }
        // A delivered attempt ends its endpoint's run of failures.
        let succeeded = Set(entries.indices.filter { applied[$0] && entries[$0].attempt.outcome.verdict == .delivered }.map { entries[$0].attempt.endpointID })
        if !succeeded.isEmpty {
            try await tx.query(
                """
                UPDATE endpoints SET consecutive_failures = 0, first_failure_at = NULL
                WHERE id = ANY(\(succeeded.map { $0.lowercasedText }.sorted())::uuid[]) AND consecutive_failures <> 0
                """)
        }
        let failed = entries.indices.filter { applied[$0] && entries[$0].attempt.outcome.verdict != .delivered }
        for index in failed.sorted(by: { entries[$0].attempt.endpointID.lowercasedText < entries[$1].attempt.endpointID.lowercasedText }) {
            recorded[index].disabledEndpoint = try await countFailure(entries[index].attempt, in: tx)
        }
        return recorded
    }

    /// Counts a failed attempt against its endpoint and disables the endpoint when the
    /// policy says so (or at once on 410 Gone); true when this attempt disabled it.
    private func countFailure(_ attempt: Attempt, in tx: Connection) async throws -> Bool {
        let counted = try await tx.query(
            """
            UPDATE endpoints SET consecutive_failures = consecutive_failures + 1,
                   first_failure_at = COALESCE(first_failure_at, \(attempt.startedAt))
            WHERE id = \(attempt.endpointID)
            RETURNING consecutive_failures, first_failure_at, enabled
            """)
        guard let row = counted.first, try row.decode(Bool.self, 2) else { return false }
        let failures = try row.decode(Int.self, 0)
        let reason: String
        if attempt.outcome.verdict == .gone {
            reason = "the receiver answered 410 Gone"
        } else if policy.shouldDisable(consecutiveFailures: failures, firstFailureAt: try row.decode(Date.self, 1), now: Date()) {
            reason = "\(failures) consecutive failed attempts"
        } else {
            return false
        }
        try await tx.query(
            """
            UPDATE endpoints SET enabled = false, disabled_at = now(), disabled_reason = \(reason), updated_at = now()
            WHERE id = \(attempt.endpointID) AND enabled
            """)
        return true
    }

    /// A response excerpt as text for the log: invalid UTF-8 replaced, NUL removed.
    static func text(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty else { return nil }
        return String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\u{0}", with: "")
    }
}
