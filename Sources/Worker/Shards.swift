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

/// A worker's view of the replicas from its heartbeats (updated after each look) and its
/// own id: which shards it should read, and whether it is alone (`Solitude`).
public final class Replicas: Sendable {
    /// This replica's heartbeat id.
    public let replica: String
    /// How often the view is refreshed, and so how often a shard's reader looks at it.
    public let interval: Duration
    /// Whether this replica may count on being alone (`DeliverBeforeStore.auto`).
    public let countsOnSolitude: Bool
    private let assignment = Mutex(ShardAssignment(replicas: []))
    private let solitude: Mutex<Solitude>
    private let clearance: AsyncStream<Duration>
    private let clear: AsyncStream<Duration>.Continuation

    /// `look`: how often the heartbeats are read; a look counts for two.
    public init(replica: String, interval: Duration, look: Duration, countsOnSolitude: Bool) {
        self.replica = replica
        self.interval = interval
        self.countsOnSolitude = countsOnSolitude
        solitude = Mutex(Solitude(validity: look * 2))
        (clearance, clear) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// What a look at `now` saw: the replicas consuming, every live one (consuming or
    /// about to), and those that count on being alone; `announced`: whether this one's
    /// heartbeat said it does.
    public func update(consuming: [String], live: [String], alone: [String], announced: Bool, at now: Date = Date()) {
        assignment.withLock { $0 = ShardAssignment(replicas: consuming) }
        let others = live.filter { $0 != replica }.count
        let validity = solitude.withLock { solitude in
            solitude.look(others: countsOnSolitude ? others : 1, announced: announced, at: now)
            return solitude.validity
        }
        clear.yield(alone.contains { $0 != replica } ? validity : .zero)
        clear.finish()
    }

    /// Whether the next heartbeat says this replica counts on being alone.
    public var alone: Bool { solitude.withLock { $0.intent } }

    /// Returns when this replica may start consuming: after its first look, and when that
    /// look found a replica counting on being alone, once that one has looked again (or
    /// stopped counting on it).
    package func cleared() async throws {
        var looks = clearance.makeAsyncIterator()
        guard let wait = await looks.next() else {
            try Task.checkCancellation()
            return
        }
        if wait > .zero { try await Task.sleep(for: wait) }
    }

    func owns(shard: Int) -> Bool {
        assignment.withLock { $0.owns(replica, shard: shard) }
    }

    /// Since when this replica has been the only live one; nil when it is not, or its
    /// heartbeats have not been read lately.
    package func aloneSince(at now: Date = Date()) -> Date? {
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
