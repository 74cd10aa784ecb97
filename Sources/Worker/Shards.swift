import Synchronization

/// Which worker replica should read which shard: the live replicas sorted by id, shard
/// `i` to replica `i mod count`. Every replica computes the same from the same heartbeats;
/// the broker's single-active-consumer rule keeps a shard with one reader even while two
/// replicas disagree, so this decides balance, never safety.
package struct ShardAssignment: Sendable, Equatable {
    package var replicas: [String]

    package init(replicas: [String]) {
        self.replicas = Array(Set(replicas)).sorted()
    }

    /// Whether `replica` should read `shard`. A replica the heartbeats do not list yet (or
    /// none listed at all) keeps every shard it holds: nothing is handed to nobody.
    package func owns(_ replica: String, shard: Int) -> Bool {
        guard let index = replicas.firstIndex(of: replica) else { return true }
        return shard % replicas.count == index
    }
}

/// A worker's current view of the replicas (updated after each heartbeat) and its own id.
public final class ShardView: Sendable {
    /// This replica's heartbeat id.
    public let replica: String
    /// How often the view is refreshed, and so how often a shard's reader looks at it.
    public let interval: Duration
    private let assignment = Mutex(ShardAssignment(replicas: []))

    public init(replica: String, interval: Duration) {
        self.replica = replica
        self.interval = interval
    }

    /// The replicas consuming now, from the heartbeats.
    public func update(replicas: [String]) {
        assignment.withLock { $0 = ShardAssignment(replicas: replicas) }
    }

    func owns(shard: Int) -> Bool {
        assignment.withLock { $0.owns(replica, shard: shard) }
    }
}

/// A flag shared by a subscription's tasks: whether the shard delivered since last looked.
final class Flag: Sendable {
    private let value = Atomic(false)

    func set() { value.store(true, ordering: .relaxed) }

    /// Whether it was set, clearing it.
    func take() -> Bool { value.exchange(false, ordering: .relaxed) }
}
