package import Foundation
import HeraldSupport
import Records
import Synchronization

/// With deliver before store, the events whose copy this worker holds until it is stored
/// (`Processor.fanOut`, `sendFirst`), and those it stored lately. A second copy of one of
/// them (the producer published it twice) takes the path that stores first and finds the
/// deliveries there, so it sends nothing again: at once when the first was stored lately,
/// after the first copy's store ended while it is held. What it forgot it no longer
/// covers (`covers`): an event whose id was made before then is stored first.
package final class FirstCopies: Sendable {
    fileprivate struct Waiter {
        var id: Int
        var continuation: Continuation<Void, Never>
    }

    fileprivate struct State {
        var held: [EventKey: [Waiter]] = [:]
        var nextID = 0
        /// Hashes of the events stored lately, the oldest overwritten first. A collision
        /// only sends a copy the way that stores first, which is right for any copy.
        var recent: Set<Int> = []
        var ring: [(hash: Int, at: Date)] = []
        var oldest = 0
        /// The memory holds every event stored here since then: when the worker started,
        /// or when the last one forgotten was stored (or its id made, if later).
        var since: Date
        var sendingFirst = 0
    }

    /// Events remembered as stored: about 2 MiB.
    static let remembered = 65_536

    private let state: Mutex<State>

    package init(startedAt: Date = Date()) {
        state = Mutex(State(since: startedAt))
    }

    /// Whether every copy stored here of an event whose id was `made` then is still
    /// remembered: the id was made after the memory began (a copy is stored after its id
    /// was made, or remembered as of the id's time).
    func covers(_ made: Date) -> Bool {
        state.withLock { made > $0.since }
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
            await withContinuation { continuation in
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

    /// Copies sending their first attempts before their store now: while there are any,
    /// the worker still counts on being alone (`Replicas`).
    var sendingFirst: Int { state.withLock { $0.sendingFirst } }

    /// A copy may send first: counted before it asks whether it may (`sendsFirst`), so
    /// that a heartbeat that stops counting on being alone after that question still sees
    /// it. Ended by `stopSendingFirst`, or by the `leave` of a copy that sent first.
    func startSendingFirst() {
        state.withLock { $0.sendingFirst += 1 }
    }

    func stopSendingFirst() {
        state.withLock { $0.sendingFirst -= 1 }
    }

    /// Ends the hold of `key` after its store was attempted, and remembers it (`remember`);
    /// the copies that waited for it go on. `sentFirst`: the holder had started sending first.
    func leave(_ key: EventKey, made: Date?, sentFirst: Bool = false, at now: Date = Date()) {
        let waiters = state.withLock { state in
            state.remember(key, made: made, at: now)
            if sentFirst { state.sendingFirst -= 1 }
            return state.held.removeValue(forKey: key) ?? []
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    /// Remembers `key` as stored, also after a store that failed (it may have committed;
    /// a copy found here is only stored first, which is right for any copy). What is
    /// forgotten is remembered as a time: that of its store, or its id's if later
    /// (`made`), so `covers` stays true to every event it forgot whatever the clocks.
    func remember(_ key: EventKey, made: Date?, at now: Date = Date()) {
        state.withLock { $0.remember(key, made: made, at: now) }
    }
}

extension FirstCopies.State {
    fileprivate mutating func remember(_ key: EventKey, made: Date?, at now: Date) {
        let hash = key.hashValue
        guard recent.insert(hash).inserted else { return }
        let at = max(now, made ?? now)
        if ring.count < FirstCopies.remembered {
            ring.append((hash, at))
        } else {
            let forgotten = ring[oldest]
            recent.remove(forgotten.hash)
            since = max(since, forgotten.at)
            ring[oldest] = (hash, at)
            oldest = (oldest + 1) % FirstCopies.remembered
        }
    }
}

/// Whether this worker is the only live replica, from what its heartbeats read
/// (`DeliverBeforeStore.auto`): then every copy of an event comes to it, and `FirstCopies`
/// knows each one it stored since. Pure: told each look, asked at a time of the caller's.
///
/// A worker counts on being alone only after its heartbeat said so (`intent`) and a later
/// look still showed no other replica. A replica that starts writes its heartbeat, then
/// looks; if the look shows one that says it counts on being alone, that one's look came
/// before, and it waits until none does (`Replicas.cleared`); otherwise that one's next
/// look sees it.
package struct Solitude: Sendable, Equatable {
    /// The first look of the run of looks that showed no other replica after this one said
    /// it counts on being alone (when its answer came); nil after one that showed another.
    package private(set) var since: Date?
    /// When the last look was asked.
    package private(set) var lastLook: ContinuousClock.Instant?
    /// What the next heartbeat says: the last look showed no other replica.
    package private(set) var intent = false
    /// How long a look counts: a worker that cannot read the heartbeats stops counting
    /// itself alone, and starts over when it reads them again.
    package let validity: Duration

    package init(validity: Duration) {
        self.validity = validity
    }

    /// A look asked at `asked` and answered at `now` showed `others` live replicas besides
    /// this one, after a heartbeat that said (`announced`) or did not say it counts on
    /// being alone.
    package mutating func look(others: Int, announced: Bool, asked: ContinuousClock.Instant, at now: Date) {
        intent = others == 0
        if others > 0 || !announced {
            since = nil
        } else if since == nil || !fresh(at: asked) {
            since = now
        }
        lastLook = asked
    }

    /// Since when the worker has been alone, if it is at `instant`. An event whose id was
    /// made before then may have had a copy taken by another replica.
    package func aloneSince(at instant: ContinuousClock.Instant) -> Date? {
        guard let since, fresh(at: instant) else { return nil }
        return since
    }

    private func fresh(at instant: ContinuousClock.Instant) -> Bool {
        guard let lastLook else { return false }
        return instant - lastLook < validity
    }
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
        var waiter: Continuation<Void, Never>?
        /// Set when no one waits (`Processor.sendOneFirst`): the deadline starts the store
        /// itself. Dropped on closing, with the message it holds.
        var onExpiry: (@Sendable () -> Void)?
    }

    private let state: Mutex<State>

    init(expected: Int, onExpiry: (@Sendable () -> Void)? = nil) {
        state = Mutex(State(expected: expected, onExpiry: onExpiry))
    }

    /// Hands over exchange `index`; false once the store took what had ended (it is late).
    func made(_ index: Int, _ exchange: Exchange) -> Bool {
        let (taken, waiter) = state.withLock { state -> (Bool, Continuation<Void, Never>?) in
            guard !state.closed else { return (false, nil) }
            state.made[index] = exchange
            guard state.made.count == state.expected else { return (true, nil) }
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume()
        return taken
    }

    /// The deadline passed: the store goes on with what ended. Without a waiter, unless
    /// every exchange ended, this closes the attempts (those that end later are late) and
    /// calls `onExpiry`, which stores.
    func expire() {
        let (waiter, action) = state.withLock { state -> (Continuation<Void, Never>?, (@Sendable () -> Void)?) in
            if let action = state.onExpiry {
                guard !state.closed, state.made.count < state.expected else { return (nil, nil) }
                state.closed = true
                state.onExpiry = nil
                return (nil, action)
            }
            state.expired = true
            defer { state.waiter = nil }
            return (state.waiter, nil)
        }
        waiter?.resume()
        action?()
    }

    /// Returns once every exchange ended, the deadline passed, or this task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withContinuation { continuation in
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
            state.onExpiry = nil
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
        var idle: Continuation<Void, Never>?

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
                    await withContinuation { continuation in
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
