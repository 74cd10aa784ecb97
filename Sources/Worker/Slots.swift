public import Foundation
import Synchronization

/// Requests in flight per endpoint in this worker, with a limit: an endpoint that hangs
/// holds at most `limit` of the worker's slots, and its other deliveries wait in the
/// defer queue instead of taking the rest.
public final class Slots: Sendable {
    public let limit: Int
    private let inFlight = Mutex<[UUID: Int]>([:])

    /// `limit` 0 means no limit.
    public init(limit: Int) {
        self.limit = limit
    }

    /// Takes a slot of `endpoint` if one is free (always with `force`).
    public func acquire(_ endpoint: UUID, force: Bool = false) -> Bool {
        inFlight.withLock { counts in
            let count = counts[endpoint, default: 0]
            guard force || limit == 0 || count < limit else { return false }
            counts[endpoint] = count + 1
            return true
        }
    }

    /// Whether `endpoint` has a free slot now (a hint: another task may take it first).
    public func isFree(_ endpoint: UUID) -> Bool {
        limit == 0 || inFlight.withLock { $0[endpoint, default: 0] } < limit
    }

    public func release(_ endpoint: UUID) {
        inFlight.withLock { counts in
            let count = counts[endpoint, default: 0] - 1
            counts[endpoint] = count > 0 ? count : nil
        }
    }

    /// Slots taken across all endpoints.
    public var taken: Int {
        inFlight.withLock { $0.values.reduce(0, +) }
    }
}
