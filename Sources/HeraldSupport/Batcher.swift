public import Synchronization

/// Gathers the items that concurrent tasks submit and writes them with one call per batch:
/// while a batch is being written, the next one fills up, so batches grow with the load
/// and a lone item is written at once.
///
/// Each submitter waits for its own item's result. When a batch fails (nothing of it was
/// committed), its items are written one by one, so that one bad item fails alone and
/// never holds back the others.
///
/// A lone item that nobody waits on to go on (`Lingering.patient`: a store of deliveries
/// already sent) may wait `Lingering.longest` for company before its write starts, as a
/// producer's `linger.ms` does: under moderate load every write is otherwise a commit of
/// its own. A full batch or an impatient item ends the wait at once; while writes follow
/// each other (the load that makes batches anyway) nothing waits.
///
/// Its work is `@inlinable` (its state `@usableFromInline`) so that a module using it
/// specialises it for its items. The type is `public`, its members `package`: Swift 6.3
/// neither inlines nor specialises the `@inlinable` members of a `package` type in
/// another module (it does a `public` type's), and run generically every use looked
/// its types up in the runtime (docs/PERFORMANCE.md).
public final class Batcher<Item: Sendable, Output: Sendable>: Sendable {
    @usableFromInline package typealias Flush = @Sendable ([Item]) async throws -> [Output]
    /// A flush that may ask, while it writes, whether items wait for the next flush.
    @usableFromInline package typealias FlushSeeingQueue = @Sendable (_ items: [Item], _ more: @escaping @Sendable () -> Bool) async throws -> [Output]

    /// A struct: a class instance of a generic type asks the runtime for its type when it
    /// is made. (A checked continuation, whose layout is not known where the batcher is
    /// specialised, made a struct's copies ask instead; `Continuation` is unchecked in
    /// release builds.)
    @usableFromInline struct Waiting: Sendable {
        @usableFromInline let item: Item
        @usableFromInline let continuation: Continuation<Output, any Error>

        @inlinable init(item: Item, continuation: Continuation<Output, any Error>) {
            self.item = item
            self.continuation = continuation
        }
    }

    /// Which lone items wait for company, and how long at most.
    @usableFromInline package struct Lingering: Sendable {
        @usableFromInline package let longest: Duration
        @usableFromInline package let patient: @Sendable (Item) -> Bool

        package init(longest: Duration, patient: @escaping @Sendable (Item) -> Bool) {
            self.longest = longest
            self.patient = patient
        }
    }

    @usableFromInline struct State {
        @usableFromInline var waiting: [Waiting] = []
        @usableFromInline var flushing = 0
        /// The wait of a lingering item, cancelled to end it early.
        @usableFromInline var lingering: Task<Void, Never>?
        /// In order: the failure that stopped the batcher; every later item fails with it.
        @usableFromInline var stopped: (any Error)?

        @usableFromInline init() {}
    }

    @usableFromInline let flush: FlushSeeingQueue
    @usableFromInline let maxBatch: Int
    /// A batch holds items of at most this much `weight` in all (at least one item), so
    /// that large items make smaller batches: a statement's parameters are copied on
    /// their way to the database, and a batch of large events would hold them several times.
    @usableFromInline let maxWeight: Int
    @usableFromInline let weight: @Sendable (Item) -> Int
    @usableFromInline let maxFlushes: Int
    /// Nil: items are independent. Otherwise items are written strictly in submission
    /// order (one flush at a time), and a failed batch is written one by one in order up to
    /// the first item whose error this does not call its own; that item, the rest and every
    /// later item fail with that error, so nothing is written after something before it failed.
    @usableFromInline let ownFailure: (@Sendable (any Error) -> Bool)?
    @usableFromInline let state: Mutex<State> = Mutex(State())
    @usableFromInline let lingering: Lingering?

    /// `flush` returns one output per item, in order; at most `maxFlushes` run at once.
    package convenience init(
        maxBatch: Int, maxFlushes: Int, maxWeight: Int = .max, weight: @escaping @Sendable (Item) -> Int = { _ in 0 },
        lingering: Lingering? = nil, flush: @escaping Flush
    ) {
        self.init(maxBatch: maxBatch, maxFlushes: maxFlushes, maxWeight: maxWeight, weight: weight, lingering: lingering) { items, _ in
            try await flush(items)
        }
    }

    /// `flush` returns one output per item, in order, and is told whether more items wait
    /// behind its batch; at most `maxFlushes` run at once.
    package init(
        maxBatch: Int, maxFlushes: Int, maxWeight: Int = .max, weight: @escaping @Sendable (Item) -> Int = { _ in 0 },
        lingering: Lingering? = nil, flushSeeingQueue flush: @escaping FlushSeeingQueue
    ) {
        precondition(maxBatch > 0 && maxFlushes > 0 && maxWeight > 0)
        self.lingering = lingering.flatMap { $0.longest > .zero ? $0 : nil }
        self.maxBatch = maxBatch
        self.maxFlushes = maxFlushes
        self.maxWeight = maxWeight
        self.weight = weight
        self.flush = flush
        ownFailure = nil
    }

    /// A batcher that writes in submission order and stops at the first failure that
    /// `ownFailure` does not isolate to its item (an item the database refuses is one).
    package init(
        orderedBatch maxBatch: Int, maxWeight: Int = .max, weight: @escaping @Sendable (Item) -> Int = { _ in 0 },
        ownFailure: @escaping @Sendable (any Error) -> Bool, flush: @escaping Flush
    ) {
        precondition(maxBatch > 0 && maxWeight > 0)
        lingering = nil
        self.maxBatch = maxBatch
        self.maxWeight = maxWeight
        self.weight = weight
        maxFlushes = 1
        self.flush = { items, _ in try await flush(items) }
        self.ownFailure = ownFailure
    }

    /// Items waiting for a flush to start.
    @inlinable package var queued: Int { state.withLock { $0.waiting.count } }

    /// `queued` runs once the item has its place in the order (before it is written).
    @inlinable package func submit(_ item: Item, queued: () -> Void = {}) async throws -> Output {
        try await withThrowingContinuation { continuation in
            let start: Start? = state.withLock { state in
                if let stopped = state.stopped {
                    continuation.resume(throwing: stopped)
                    return nil
                }
                state.waiting.append(Waiting(item: item, continuation: continuation))
                // A wait exists only with `lingering`; it ends at a full batch or an impatient item.
                if let wait = state.lingering, let lingering {
                    guard state.waiting.count >= maxBatch || !lingering.patient(item) else { return nil }
                    state.lingering = nil
                    return .endWait(wait)
                }
                guard state.flushing < maxFlushes else { return nil }
                state.flushing += 1
                if let lingering, state.flushing == 1, state.waiting.count == 1, lingering.patient(item) {
                    let wait = Task { _ = try? await Task.sleep(for: lingering.longest) }
                    state.lingering = wait
                    return .afterWait(wait)
                }
                return .now(take(&state))
            }
            queued()
            switch start {
            case .now(let batch):
                // The writer outlives no one: it ends as soon as nothing waits.
                Task { await drain(batch) }
            case .afterWait(let wait):
                Task {
                    await wait.value
                    let batch = state.withLock { state in
                        state.lingering = nil
                        if state.waiting.isEmpty { state.flushing -= 1 }
                        return take(&state)
                    }
                    // Empty when a stop failed what waited.
                    if !batch.isEmpty { await drain(batch) }
                }
            case .endWait(let wait):
                wait.cancel()
            case nil:
                break
            }
        }
    }

    /// What a submitter starts.
    @usableFromInline enum Start {
        case now([Waiting])
        case afterWait(Task<Void, Never>)
        case endWait(Task<Void, Never>)
    }

    @inlinable func take(_ state: inout State) -> [Waiting] {
        var count = 0
        var total = 0
        for waiting in state.waiting.prefix(maxBatch) {
            let next = weight(waiting.item)
            if count > 0 && total + next > maxWeight { break }
            total += next
            count += 1
        }
        defer { state.waiting.removeFirst(count) }
        return Array(state.waiting.prefix(count))
    }

    /// Writes `batch`, then whatever queued up meanwhile, until nothing waits.
    @inlinable func drain(_ batch: [Waiting]) async {
        let more: @Sendable () -> Bool = { [self] in queued > 0 }
        var batch = batch
        while true {
            do {
                // A closure: a key path is applied here through the runtime (800 instructions each).
                let outputs = try await flush(batch.map { $0.item }, more)
                precondition(outputs.count == batch.count, "a flush returns one output per item")
                // Indices rather than `zip`, whose iterator runs here unspecialised.
                for index in batch.indices { batch[index].continuation.resume(returning: outputs[index]) }
            } catch {
                if batch.count == 1 {
                    batch[0].continuation.resume(throwing: error)
                    if let ownFailure, !ownFailure(error) { stop(after: [], error) }
                }
                for (index, waiting) in batch.enumerated() where batch.count > 1 {
                    do {
                        let outputs = try await flush([waiting.item], more)
                        precondition(outputs.count == 1, "a flush returns one output per item")
                        waiting.continuation.resume(returning: outputs[0])
                    } catch {
                        waiting.continuation.resume(throwing: error)
                        if let ownFailure, !ownFailure(error) {
                            stop(after: Array(batch[(index + 1)...]), error)
                            break
                        }
                    }
                }
            }
            let next: [Waiting]? = state.withLock { state in
                guard !state.waiting.isEmpty else {
                    state.flushing -= 1
                    return nil
                }
                return take(&state)
            }
            guard let next else { return }
            batch = next
        }
    }

    /// Fails `rest` and everything waiting or submitted later with `error`.
    @inlinable func stop(after rest: [Waiting], _ error: any Error) {
        let waiting = state.withLock { state in
            state.stopped = error
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for item in rest + waiting { item.continuation.resume(throwing: error) }
    }
}
