import Records
import Synchronization

/// Lets the attempts' records ride with the events' store: a record batch that becomes
/// ready while a store batch is being written waits for the next store statement and is
/// written in it (`PipelineRecords.store(_:recording:)`), instead of a statement and a
/// commit of its own. The store never waits for records: at moderate load, where every
/// event would otherwise cost two commits (its store before its request, its record
/// after), a store carries the records of the events before it.
///
/// Records ride only while the store's batcher is busy: when a store statement ends and
/// no store waits behind it, the records that came meanwhile are written on their own
/// at once, so a rider waits for the rest of one store statement and the next at most.
final class RideAlong: Sendable {
    private struct Rider {
        var records: [AttemptRecord]
        /// Nil: write them yourself.
        var continuation: CheckedContinuation<[Recorded]?, Never>
    }

    private struct State {
        /// A store statement is being written, or the next one is about to start.
        var storing = false
        var riders: [Rider] = []
    }

    private let state = Mutex(State())

    /// Record batches waiting for a store statement.
    var waiting: Int { state.withLock { $0.riders.count } }

    /// Waits for a store statement to write `records` with it; nil when none is under way
    /// (or it could not take them), and the caller writes them itself.
    func ride(_ records: [AttemptRecord]) async -> [Recorded]? {
        guard AttemptRecord.mayRide(records) else { return nil }
        return await withCheckedContinuation { continuation in
            let riding = state.withLock { state in
                guard state.storing else { return false }
                state.riders.append(Rider(records: records, continuation: continuation))
                return true
            }
            if !riding { continuation.resume(returning: nil) }
        }
    }

    /// Writes `arrivals` with whatever records wait to ride, through `write`; `more` says
    /// afterwards whether another store statement follows at once (then records that came
    /// meanwhile wait for it).
    func store<T>(
        _ arrivals: [Arrival], more: @Sendable () -> Bool,
        write: ([Arrival], [AttemptRecord]) async throws -> ([T], [Recorded])
    ) async throws -> [T] {
        let riders = state.withLock { state in
            state.storing = true
            defer { state.riders.removeAll() }
            return state.riders
        }
        defer {
            let left = state.withLock { state in
                state.storing = more()
                guard !state.storing else { return [Rider]() }
                defer { state.riders.removeAll() }
                return state.riders
            }
            for rider in left { rider.continuation.resume(returning: nil) }
        }
        let records = riders.flatMap(\.records)
        guard !records.isEmpty, AttemptRecord.mayRide(records), arrivals.contains(where: { !$0.targets.isEmpty }) else {
            // Two riders may name one delivery, or the store creates no delivery to share a
            // statement with: they go on their own, like any record.
            for rider in riders { rider.continuation.resume(returning: nil) }
            return try await write(arrivals, []).0
        }
        let written: ([T], [Recorded])
        do {
            written = try await write(arrivals, records)
        } catch {
            // Nothing was committed. The riders go on their own and the store is written
            // alone: a record's failure (its delivery deleted meanwhile, a deadlock) must
            // never fail or park the events.
            for rider in riders { rider.continuation.resume(returning: nil) }
            return try await write(arrivals, []).0
        }
        precondition(written.1.count == records.count, "one answer per record")
        var recorded = written.1[...]
        for rider in riders {
            rider.continuation.resume(returning: Array(recorded.prefix(rider.records.count)))
            recorded = recorded.dropFirst(rider.records.count)
        }
        return written.0
    }
}
