import FanOut
public import Foundation
public import Postgres

/// One attempt as the delivery log shows it.
public struct Attempt: Sendable {
    public var deliveryID: UUID
    public var endpointID: UUID
    public var number: Int
    public var trigger: String
    public var requestID: UUID
    public var startedAt: Date
    public var duration: Duration
    public var outcome: Outcome
    /// The first bytes of the response body.
    public var excerpt: [UInt8]

    public init(
        deliveryID: UUID, endpointID: UUID, number: Int, trigger: String = "automatic", requestID: UUID, startedAt: Date,
        duration: Duration, outcome: Outcome, excerpt: [UInt8]
    ) {
        self.deliveryID = deliveryID
        self.endpointID = endpointID
        self.number = number
        self.trigger = trigger
        self.requestID = requestID
        self.startedAt = startedAt
        self.duration = duration
        self.outcome = outcome
        self.excerpt = excerpt
    }
}

/// Writes delivery state: claims, attempts, endpoint failure counts.
public struct Ledger: Sendable {
    let pool: Pool
    let policy: DisablePolicy

    public init(pool: Pool, policy: DisablePolicy) {
        self.pool = pool
        self.policy = policy
    }

    /// Claims attempt `number`: true for exactly one caller while the delivery is open
    /// and fewer attempts were started.
    public func claim(delivery: UUID, attempt number: Int) async throws -> Bool {
        let rows = try await pool.query(
            """
            UPDATE deliveries SET attempts = \(number), claimed_at = now(), updated_at = now()
            WHERE id = \(delivery) AND attempts < \(number) AND status IN ('pending', 'retrying')
            RETURNING 1
            """)
        return !rows.isEmpty
    }

    /// Marks a delivery skipped (its endpoint is disabled).
    public func skip(delivery: UUID) async throws {
        try await pool.query(
            "UPDATE deliveries SET status = 'skipped', updated_at = now() WHERE id = \(delivery) AND status IN ('pending', 'retrying')")
    }

    /// The delivery's next state after an attempt.
    public enum Next: String, Sendable {
        case delivered, retrying, failed
    }

    /// What recording an attempt changed.
    public struct Recorded: Sendable, Equatable {
        /// The delivery took the new state. False when it was already final or a later
        /// attempt had started (another holder of a redelivered message got there first):
        /// the attempt is logged, but it must neither move the delivery back nor schedule a retry.
        public var applied: Bool
        /// This attempt disabled the endpoint.
        public var disabledEndpoint: Bool
    }

    /// Logs `attempt` and, unless another holder already settled the delivery, applies its
    /// new state and counts the endpoint's consecutive failures, in one transaction.
    @discardableResult
    public func record(_ attempt: Attempt, next: Next, nextAttemptAt: Date?) async throws -> Recorded {
        let outcome = attempt.outcome
        let excerpt = Self.text(attempt.excerpt)
        let milliseconds = Int(attempt.duration.components.seconds * 1000 + attempt.duration.components.attoseconds / 1_000_000_000_000_000)
        return try await pool.transaction { tx in
            try await tx.query(
                """
                INSERT INTO delivery_attempts (delivery_id, attempt, trigger, request_id, started_at, duration_ms,
                                               status_code, response_excerpt, error_class, error_message)
                VALUES (\(attempt.deliveryID), \(attempt.number), \(attempt.trigger), \(attempt.requestID), \(attempt.startedAt),
                        \(max(0, milliseconds)), \(outcome.statusCode), \(excerpt), \(outcome.errorClass), \(outcome.errorMessage.map { String($0.prefix(500)) }))
                """)
            let updated = try await tx.query(
                """
                UPDATE deliveries SET status = \(next.rawValue), last_status_code = \(outcome.statusCode),
                       last_error_class = \(outcome.errorClass), next_attempt_at = \(nextAttemptAt),
                       delivered_at = CASE WHEN \(next == .delivered) THEN now() ELSE delivered_at END, updated_at = now()
                WHERE id = \(attempt.deliveryID) AND status IN ('pending', 'retrying') AND attempts <= \(attempt.number)
                RETURNING 1
                """)
            guard !updated.isEmpty else { return Recorded(applied: false, disabledEndpoint: false) }
            if outcome.verdict == .delivered {
                try await tx.query(
                    """
                    UPDATE endpoints SET consecutive_failures = 0, first_failure_at = NULL
                    WHERE id = \(attempt.endpointID) AND consecutive_failures <> 0
                    """)
                return Recorded(applied: true, disabledEndpoint: false)
            }
            let counted = try await tx.query(
                """
                UPDATE endpoints SET consecutive_failures = consecutive_failures + 1,
                       first_failure_at = COALESCE(first_failure_at, \(attempt.startedAt))
                WHERE id = \(attempt.endpointID)
                RETURNING consecutive_failures, first_failure_at, enabled
                """)
            guard let row = counted.first, try row.decode(Bool.self, 2) else { return Recorded(applied: true, disabledEndpoint: false) }
            let reason: String?
            if outcome.verdict == .gone {
                reason = "the receiver answered 410 Gone"
            } else if policy.shouldDisable(
                consecutiveFailures: try row.decode(Int.self, 0), firstFailureAt: try row.decode(Date.self, 1), now: Date())
            {
                reason = "\(try row.decode(Int.self, 0)) consecutive failed attempts"
            } else {
                reason = nil
            }
            guard let reason else { return Recorded(applied: true, disabledEndpoint: false) }
            try await tx.query(
                """
                UPDATE endpoints SET enabled = false, disabled_at = now(), disabled_reason = \(reason), updated_at = now()
                WHERE id = \(attempt.endpointID) AND enabled
                """)
            return Recorded(applied: true, disabledEndpoint: true)
        }
    }

    /// A response excerpt as text for the log: invalid UTF-8 replaced, NUL removed.
    static func text(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty else { return nil }
        return String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\u{0}", with: "")
    }
}
