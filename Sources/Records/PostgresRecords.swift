public import Delivery
public import Postgres

/// The delivery record in PostgreSQL: the only code that writes `events`, `deliveries` and
/// `delivery_attempts` (and, while recording an attempt, an endpoint's failure run, in the
/// same transaction). Every interpolated value is bound.
public struct PostgresRecords: PipelineRecords, DeliveryLog {
    let pool: Pool
    /// Where the delivery log's pages and the dashboard's figures are read: a streaming
    /// replica (`HERALD_DATABASE_READ_URL`), or the primary. Writes, and reads that decide
    /// a write, always go to the primary.
    let reads: Pool
    /// When a run of failed attempts disables an endpoint.
    let policy: DisablePolicy

    public init(pool: Pool, readPool: Pool? = nil, policy: DisablePolicy = DisablePolicy()) {
        self.pool = pool
        reads = readPool ?? pool
        self.policy = policy
    }

    /// Statuses from which a delivery may still move.
    static let openStatuses = DeliveryState.Status.allCases.filter { !$0.isFinal }.map(\.rawValue)
    /// Statuses a delivery ends in; only such a delivery can be resent.
    static let finalStatuses = DeliveryState.Status.allCases.filter(\.isFinal).map(\.rawValue)
}
