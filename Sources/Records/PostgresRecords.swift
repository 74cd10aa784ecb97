public import Delivery
public import Postgres

/// The delivery record in PostgreSQL: the only code that writes `events`, `deliveries` and
/// `delivery_attempts` (and, while recording an attempt, an endpoint's failure run, in the
/// same transaction). Every interpolated value is bound.
public struct PostgresRecords: PipelineRecords, DeliveryLog {
    let pool: Pool
    /// When a run of failed attempts disables an endpoint.
    let policy: DisablePolicy

    public init(pool: Pool, policy: DisablePolicy = DisablePolicy()) {
        self.pool = pool
        self.policy = policy
    }

    /// Statuses from which a delivery may still move.
    static let openStatuses = DeliveryState.Status.allCases.filter { !$0.isFinal }.map(\.rawValue)
    /// Statuses a delivery ends in; only such a delivery can be resent.
    static let finalStatuses = DeliveryState.Status.allCases.filter(\.isFinal).map(\.rawValue)
}
