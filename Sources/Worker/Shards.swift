public import Foundation
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

/// A worker's view of the replicas from its heartbeats (updated after each one) and its
/// own id: which shards it should read, and whether it is alone (`Solitude`).
public final class Replicas: Sendable {
    /// This replica's heartbeat id.
    public let replica: String
    /// How often the view is refreshed, and so how often a shard's reader looks at it.
    public let interval: Duration
    private let assignment = Mutex(ShardAssignment(replicas: []))
    private let solitude: Mutex<Solitude>

    public init(replica: String, interval: Duration) {
        self.replica = replica
        self.interval = interval
        solitude = Mutex(Solitude(validity: interval * 2))
    }

    /// What a heartbeat saw at `now`: the replicas consuming, and every live one
    /// (consuming or about to).
    public func update(consuming: [String], live: [String], at now: Date = Date()) {
        assignment.withLock { $0 = ShardAssignment(replicas: consuming) }
        let others = live.filter { $0 != replica }.count
        solitude.withLock { $0.look(others: others, at: now) }
    }

    func owns(shard: Int) -> Bool {
        assignment.withLock { $0.owns(replica, shard: shard) }
    }

    /// Since when this replica has been the only live one; nil when it is not, or its
    /// heartbeats have not been read lately.
    func aloneSince(at now: Date = Date()) -> Date? {
        solitude.withLock { $0.aloneSince(at: now) }
    }
}

/// A flag shared by a subscription's tasks: whether the shard delivered since last looked.
final class Flag: Sendable {
    private let value = Atomic(false)

    func set() { value.store(true, ordering: .relaxed) }

    /// Whether it was set, clearing it.
    func take() -> Bool { value.exchange(false, ordering: .relaxed) }
}
