package import Foundation
import Records
import Synchronization

/// With deliver before store, the events whose copy this worker holds until it is stored
/// (`Processor.fanOut`, `sendFirst`), and those it stored lately. A second copy of one of
/// them (the producer published it twice) takes the path that stores first and finds the
/// deliveries there, so it sends nothing again: at once when the first was stored lately,
/// after the first copy's store ended while it is held. What it forgot it no longer
/// covers (`covers`): an event that occurred before then is stored first.
package final class FirstCopies: Sendable {
    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var held: [EventKey: [Waiter]] = [:]
        var nextID = 0
        /// Hashes of the events stored lately, the oldest overwritten first. A collision
        /// only sends a copy the way that stores first, which is right for any copy.
        var recent: Set<Int> = []
        var ring: [(hash: Int, at: Date)] = []
        var oldest = 0
        /// The memory holds every event stored here since then: when the worker started,
        /// or when the last one forgotten was stored.
        var since: Date
    }

    /// Events remembered as stored: about 2 MiB.
    static let remembered = 65_536

    private let state: Mutex<State>

    package init(startedAt: Date = Date()) {
        state = Mutex(State(since: startedAt))
    }

    /// Whether every copy of an event that occurred at `occurredAt` and was stored here is
    /// still remembered: it occurred after the memory began, and a copy is stored after its
    /// event occurred.
    func covers(_ occurredAt: Date) -> Bool {
        state.withLock { occurredAt > $0.since }
    }

    /// True when no copy of `key` is held here or was stored lately: the caller holds it
    /// now and must `leave` it. Otherwise false, after the holder left (or this task was
    /// cancelled); `beforeWaiting` runs first when it has to wait.
    func enter(_ key: EventKey, beforeWaiting: () -> Void = {}) async -> Bool {
        let hash = key.hashValue
        let entered: Bool? = state.withLock { state in
            if state.recent.contains(hash) { return false }
            guard state.held[key] == nil else { return nil }
            state.held[key] = []
            return true
        }
        if let entered { return entered }
        beforeWaiting()
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let waiting = state.withLock { state in
                    guard state.held[key] != nil, !Task.isCancelled else { return false }
                    state.held[key]?.append(Waiter(id: id, continuation: continuation))
                    return true
                }
                if !waiting { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.held[key]?.firstIndex(where: { $0.id == id }) else { return nil }
                return state.held[key]?.remove(at: index)
            }
            waiter?.continuation.resume()
        }
        return false
    }

    /// Events held now.
    var holding: Int { state.withLock { $0.held.count } }
    /// Copies waiting for a holder to leave.
    var waiting: Int { state.withLock { $0.held.values.reduce(0) { $0 + $1.count } } }

    /// Ends the hold of `key`, remembering it when it was `stored` (at `now`); the copies
    /// that waited for it go on.
    func leave(_ key: EventKey, stored: Bool, at now: Date = Date()) {
        let waiters = state.withLock { state in
            if stored {
                let hash = key.hashValue
                if state.recent.insert(hash).inserted {
                    if state.ring.count < Self.remembered {
                        state.ring.append((hash, now))
                    } else {
                        let forgotten = state.ring[state.oldest]
                        state.recent.remove(forgotten.hash)
                        state.since = max(state.since, forgotten.at)
                        state.ring[state.oldest] = (hash, now)
                        state.oldest = (state.oldest + 1) % Self.remembered
                    }
                }
            }
            return state.held.removeValue(forKey: key) ?? []
        }
        for waiter in waiters { waiter.continuation.resume() }
    }
}

/// Whether this worker is the only live replica, from what its heartbeats read
/// (`DeliverBeforeStore.auto`): then every copy of an event comes to it, and `FirstCopies`
/// knows each one it stored since. Pure: told each look, asked at a time of the caller's.
///
/// A worker counts on being alone only after its heartbeat said so (`intent`) and a later
/// look still showed no other replica. A replica that starts writes its heartbeat, then
/// looks: it sees one that said so, and waits two looks' validity before it consumes
/// (`Replicas.cleared`), or that one's look came after its heartbeat and saw it.
package struct Solitude: Sendable, Equatable {
    /// The first look of the run of looks that showed no other replica after this one said
    /// it counts on being alone; nil after one that showed another.
    package private(set) var since: Date?
    package private(set) var lastLook: Date?
    /// What the next heartbeat says: the last look showed no other replica.
    package private(set) var intent = false
    /// How long a look counts: a worker that cannot read the heartbeats stops counting
    /// itself alone, and starts over when it reads them again.
    package let validity: Duration

    package init(validity: Duration) {
        self.validity = validity
    }

    /// A look at `now` showed `others` live replicas besides this one, after a heartbeat
    /// that said (`announced`) or did not say it counts on being alone.
    package mutating func look(others: Int, announced: Bool, at now: Date) {
        intent = others == 0
        if others > 0 || !announced {
            since = nil
        } else if since == nil || !fresh(at: now) {
            since = now
        }
        lastLook = now
    }

    /// Since when the worker has been alone, if it is at `now`. An event that occurred
    /// before then may have had a copy taken by another replica.
    package func aloneSince(at now: Date) -> Date? {
        guard let since, fresh(at: now) else { return nil }
        return since
    }

    private func fresh(at now: Date) -> Bool {
        guard let lastLook else { return false }
        return now.timeIntervalSince(lastLook) < validity.seconds
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// The first attempts of one event sent before its store (`Processor.sendFirst`): the
/// store waits until each exchange ended or the wait's deadline passed
/// (`FirstAttemptDeadlines`), then takes those that ended; the others are late.
final class FirstAttempts: Sendable {
    private struct State {
        var made: [Int: Exchange] = [:]
        var expected: Int
        var closed = false
        var expired = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    init(expected: Int) {
        state = Mutex(State(expected: expected))
    }

    /// Hands over exchange `index`; false once the store took what had ended (it is late).
    func made(_ index: Int, _ exchange: Exchange) -> Bool {
        let (taken, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.closed else { return (false, nil) }
            state.made[index] = exchange
            guard state.made.count == state.expected else { return (true, nil) }
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume()
        return taken
    }

    /// The deadline passed: the store goes on with what ended.
    func expire() {
        let waiter = state.withLock { state in
            state.expired = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once every exchange ended, the deadline passed, or this task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    guard state.made.count < state.expected, !state.expired, !Task.isCancelled else { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            expire()
        }
    }

    /// The exchanges that ended, by index; the others are late from now on.
    func close() -> [Int: Exchange] {
        state.withLock { state in
            state.closed = true
            defer { state.made = [:] }
            return state.made
        }
    }

    var isClosed: Bool { state.withLock { $0.closed } }
}

/// Ends the waits of `FirstAttempts` whose deadline passed: one loop for the worker
/// (`run`, in `WorkerService`), which wakes once per `tolerance` at most while events
/// come, instead of a timer per event. Every deadline is the same distance from its
/// start, so they come in order and a queue holds them.
package final class FirstAttemptDeadlines: Sendable {
    private struct Entry {
        var at: ContinuousClock.Instant
        var attempts: FirstAttempts
    }

    private struct State {
        var queue: [Entry] = []
        var head = 0
        var idle: CheckedContinuation<Void, Never>?

        /// Drops closed entries from the front; the first open one's deadline.
        mutating func firstOpen() -> ContinuousClock.Instant? {
            while head < queue.count, queue[head].attempts.isClosed { head += 1 }
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
                return nil
            }
            if head > 1024, head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return queue[head].at
        }
    }

    /// How late past its deadline a wait may end: what lets one wake-up end many.
    static let tolerance: Duration = .milliseconds(100)

    private let state = Mutex(State())

    package init() {}

    /// Ends `attempts`' wait at `deadline` unless it closed before.
    func add(_ attempts: FirstAttempts, deadline: ContinuousClock.Instant) {
        let idle = state.withLock { state in
            state.queue.append(Entry(at: deadline, attempts: attempts))
            defer { state.idle = nil }
            return state.idle
        }
        idle?.resume()
    }

    /// Runs until cancelled.
    package func run() async {
        while !Task.isCancelled {
            guard let next = state.withLock({ $0.firstOpen() }) else {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let now = state.withLock { state in
                            guard state.head == state.queue.count, !Task.isCancelled else { return true }
                            state.idle = continuation
                            return false
                        }
                        if now { continuation.resume() }
                    }
                } onCancel: {
                    let idle = state.withLock { state in
                        defer { state.idle = nil }
                        return state.idle
                    }
                    idle?.resume()
                }
                continue
            }
            do {
                try await Task.sleep(until: next + Self.tolerance, clock: .continuous)
            } catch {
                return
            }
            let now = ContinuousClock.now
            let due = state.withLock { state in
                var due: [FirstAttempts] = []
                while state.head < state.queue.count, state.queue[state.head].at <= now {
                    due.append(state.queue[state.head].attempts)
                    state.head += 1
                }
                return due
            }
            for attempts in due { attempts.expire() }
        }
    }
}
