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
    private struct Clearance {
        var cleared = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    }

    /// This replica's heartbeat id.
    public let replica: String
    /// How often the view is refreshed, and so how often a shard's reader looks at it.
    public let interval: Duration
    /// How often the heartbeats are read; a look counts for two.
    public let look: Duration
    /// Whether this replica may count on being alone (`DeliverBeforeStore.auto`).
    public let countsOnSolitude: Bool
    private let assignment = Mutex(ShardAssignment(replicas: []))
    private let solitude: Mutex<Solitude>
    private let clearance = Mutex(Clearance())

    public init(replica: String, interval: Duration, look: Duration, countsOnSolitude: Bool) {
        self.replica = replica
        self.interval = interval
        self.look = look
        self.countsOnSolitude = countsOnSolitude
        solitude = Mutex(Solitude(validity: look * 2))
    }

    /// What a look asked at `asked` saw: the replicas consuming, every live one (consuming
    /// or about to), and those that count on being alone now; `announced`: whether this
    /// one's heartbeat said it does.
    public func update(
        consuming: [String], live: [String], alone: [String], announced: Bool, asked: ContinuousClock.Instant = .now, at now: Date = Date()
    ) {
        assignment.withLock { $0 = ShardAssignment(replicas: consuming) }
        let others = live.filter { $0 != replica }.count
        solitude.withLock { $0.look(others: countsOnSolitude ? others : 1, announced: announced, asked: asked, at: now) }
        guard !alone.contains(where: { $0 != replica }) else { return }
        let waiters = clearance.withLock { clearance in
            clearance.cleared = true
            defer { clearance.waiters = [:] }
            return clearance.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Whether the next heartbeat says this replica counts on being alone.
    public var alone: Bool { solitude.withLock { $0.intent } }

    /// Whether a look has shown no other replica counting on being alone.
    package var isCleared: Bool { clearance.withLock { $0.cleared } }

    /// Returns when this replica may start consuming: once a look showed no other replica
    /// counting on being alone (one that does stops when it sees this one, after its first
    /// copies in flight are stored), or after three heartbeat intervals whatever the looks
    /// said (`false`), so that a replica stuck saying it cannot hold the others back.
    package func cleared() async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await self.clear()
                return true
            }
            group.addTask {
                try await Task.sleep(for: self.interval * 3)
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
    }

    private func clear() async throws {
        let id = clearance.withLock { clearance in
            defer { clearance.nextID += 1 }
            return clearance.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = clearance.withLock { clearance in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if clearance.cleared { return .success(()) }
                    clearance.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            clearance.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }

    func owns(shard: Int) -> Bool {
        assignment.withLock { $0.owns(replica, shard: shard) }
    }

    /// Since when this replica has been the only live one; nil when it is not, or its
    /// heartbeats have not been read lately.
    package func aloneSince(at instant: ContinuousClock.Instant = .now) -> Date? {
        solitude.withLock { $0.aloneSince(at: instant) }
    }
}

/// A flag shared by a subscription's tasks: whether the shard delivered since last looked.
final class Flag: Sendable {
    private let value = Atomic(false)

    func set() { value.store(true, ordering: .relaxed) }

    /// Whether it was set, clearing it.
    func take() -> Bool { value.exchange(false, ordering: .relaxed) }
}
