import Foundation
import Synchronization
import Testing
@testable import Worker

@Suite("Per-endpoint slots")
struct SlotsTests {
    @Test func anEndpointGetsAtMostItsLimitAndForceGoesBeyond() {
        let slots = Slots(ceiling: 2, stall: .zero)
        let a = UUID()
        let b = UUID()
        #expect(slots.tryAcquire(a))
        #expect(slots.tryAcquire(a))
        #expect(!slots.tryAcquire(a))
        // Another endpoint is not affected.
        #expect(slots.tryAcquire(b))
        // An attempt the caller already owns goes out whatever the limit.
        #expect(slots.tryAcquire(a, force: true))
        #expect(slots.taken == 4)
        slots.release(a, after: .unused)
        slots.release(a, after: .unused)
        #expect(slots.tryAcquire(a))
    }

    /// No limit on requests, but the circuit breaker still works.
    @Test func zeroMeansNoLimit() {
        let slots = Slots(ceiling: 0, stall: .seconds(5), breaker: .init(failureRate: 0.5, minimumAttempts: 2, window: .seconds(60), coolDown: .seconds(60)))
        let a = UUID()
        for _ in 0..<1000 { #expect(slots.tryAcquire(a)) }
        slots.sending(a)
        slots.sending(a)
        #expect(slots.release(a, after: .failed) == nil)
        #expect(slots.release(a, after: .failed) == .opened)
        #expect(!slots.tryAcquire(a))
    }

    /// Behind an endpoint whose requests have gone unanswered for `stall`, a delivery is
    /// refused at once: the caller defers it instead of holding a slot of the worker.
    @Test func aStalledEndpointRefusesAtOnce() async {
        let slots = Slots(ceiling: 1, stall: .zero)
        let a = UUID()
        #expect(await slots.acquire(a))
        slots.sending(a)
        #expect(await !slots.acquire(a))
        // A timeout is no answer: the endpoint stays stalled once a request is out again.
        slots.release(a, after: .timedOut)
        #expect(await slots.acquire(a))
        slots.sending(a)
        #expect(await !slots.acquire(a))
    }

    /// Slots held while nothing is on the wire (the worker waiting for its database) are
    /// no stall: deliveries wait for them rather than being deferred.
    @Test func slotsHeldWithoutARequestAreNoStall() async {
        let slots = Slots(ceiling: 1, stall: .zero)
        let a = UUID()
        #expect(slots.tryAcquire(a))
        let waiter = Task { await slots.acquire(a) }
        while slots.waiting(a) < 1 { await Task.yield() }
        slots.release(a, after: .unused)
        #expect(await waiter.value)
    }

    /// Behind an endpoint that answers, a delivery waits and takes over the next slot
    /// that comes free, in order.
    @Test func anAnsweringEndpointHandsSlotsToWaitersInOrder() async throws {
        let slots = Slots(ceiling: 1, stall: .seconds(3600))
        let a = UUID()
        #expect(slots.tryAcquire(a))
        slots.sending(a)
        slots.release(a, after: .answered(.milliseconds(1), delivered: true))
        #expect(slots.tryAcquire(a))
        slots.sending(a)
        let order = Box<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<3 {
                // Waiters queue one after another.
                while slots.waiting(a) < n { await Task.yield() }
                group.addTask {
                    let granted = await slots.acquire(a)
                    #expect(granted)
                    order.withLock { $0.append(n) }
                    slots.sending(a)
                    slots.release(a, after: .answered(.milliseconds(1), delivered: true))
                }
                while slots.waiting(a) < n + 1 { await Task.yield() }
            }
            slots.release(a, after: .answered(.milliseconds(1), delivered: true))
            try await group.waitForAll()
        }
        #expect(order.withLock { $0 } == [0, 1, 2])
        #expect(slots.taken == 0)
    }

    /// An endpoint not heard from yet gets `limit` waiters; the next one is refused.
    @Test func anEndpointNotHeardFromGetsLimitedWaiters() async throws {
        let slots = Slots(ceiling: 1, stall: .seconds(3600))
        let a = UUID()
        #expect(slots.tryAcquire(a))
        let waiter = Task { await slots.acquire(a) }
        while slots.waiting(a) < 1 { await Task.yield() }
        #expect(await !slots.acquire(a))
        slots.release(a, after: .unused)
        #expect(await waiter.value)
    }

    /// A delivery behind an endpoint that stops answering is refused once the stall is
    /// noticed (by any later call: no timer of its own), or at once if it came late.
    @Test func aWaiterIsRefusedWhenItsEndpointStalls() async {
        let slots = Slots(ceiling: 1, stall: .milliseconds(50))
        let a = UUID()
        #expect(slots.tryAcquire(a))
        slots.sending(a)
        let answer = Box<Bool?>(nil)
        let waiter = Task {
            let granted = await slots.acquire(a)
            answer.withLock { $0 = granted }
        }
        // Other endpoints' traffic goes on; the sweep it triggers finds `a` silent.
        let other = UUID()
        while answer.withLock({ $0 }) == nil {
            if slots.tryAcquire(other) { slots.release(other, after: .unused) }
            await Task.yield()
        }
        await waiter.value
        #expect(answer.withLock { $0 } == false)
        #expect(slots.waiting(a) == 0)
        #expect(slots.taken == 1)
        #expect(await !slots.acquire(a))
    }
}

@Suite("Batcher")
struct BatcherTests {
    @Test func everySubmitterGetsItsOwnResultAndBatchesStayWithinBounds() async throws {
        let sizes = Box<[Int]>([])
        let running = Box((now: 0, most: 0))
        let batcher = Batcher<Int, Int>(maxBatch: 16, maxFlushes: 2) { items in
            running.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            defer { running.withLock { $0.now -= 1 } }
            sizes.withLock { $0.append(items.count) }
            await Task.yield()
            return items.map { $0 * 2 }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<500 {
                group.addTask {
                    let doubled = try await batcher.submit(n)
                    #expect(doubled == n * 2)
                }
            }
            try await group.waitForAll()
        }
        let seen = sizes.withLock { $0 }
        #expect(seen.reduce(0, +) == 500)
        #expect(seen.allSatisfy { $0 >= 1 && $0 <= 16 })
        #expect(running.withLock { $0.most } <= 2)
    }

    /// Large items make small batches; an item over the weight alone still goes, alone.
    @Test func batchesStayWithinTheirWeightAndAHeavyItemGoesAlone() async throws {
        let batches = Box<[[Int]]>([])
        let gate = Box(false)
        let batcher = Batcher<Int, Int>(maxBatch: 64, maxFlushes: 1, maxWeight: 100, weight: { $0 }) { items in
            batches.withLock { $0.append(items) }
            // The first flush waits until everything else has queued behind it.
            while !gate.withLock({ $0 }) { await Task.yield() }
            return items
        }
        let weights = [10, 30, 30, 30, 30, 250, 5, 5, 60, 60]
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await batcher.submit(1) }
            while batches.withLock({ $0.isEmpty }) { await Task.yield() }
            for weight in weights {
                group.addTask {
                    let written = try await batcher.submit(weight)
                    #expect(written == weight)
                }
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while batcher.queued < weights.count && ContinuousClock.now < deadline { await Task.yield() }
            #expect(batcher.queued == weights.count)
            gate.withLock { $0 = true }
            try await group.waitForAll()
        }
        let seen = batches.withLock { $0 }
        #expect(seen.flatMap { $0 }.sorted() == ([1] + weights).sorted())
        for batch in seen where batch.count > 1 {
            #expect(batch.reduce(0, +) <= 100, "\(batch)")
        }
        #expect(seen.contains([250]), "the heavy item went alone: \(seen)")
    }

    /// A flush can ask, while it writes, whether items wait for the next flush: the store
    /// keeps records riding only when another statement follows.
    @Test func aFlushSeesWhetherItemsWaitBehindIt() async throws {
        let gate = Box(false)
        let asked = Box<[(batch: [Int], before: Bool, after: Bool)]>([])
        let started = Box(0)
        let batcher = Batcher<Int, Int>(maxBatch: 64, maxFlushes: 1) { items, more in
            let before = more()
            started.withLock { $0 += 1 }
            // The first flush waits until the others have queued behind it.
            if items == [0] { while !gate.withLock({ $0 }) { await Task.yield() } }
            asked.withLock { $0.append((items, before, more())) }
            return items
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await batcher.submit(0) }
            let deadline = ContinuousClock.now + .seconds(10)
            while started.withLock({ $0 }) == 0 && ContinuousClock.now < deadline { await Task.yield() }
            for n in 1...3 { group.addTask { _ = try await batcher.submit(n) } }
            while batcher.queued < 3 && ContinuousClock.now < deadline { await Task.yield() }
            #expect(batcher.queued == 3)
            gate.withLock { $0 = true }
            try await group.waitForAll()
        }
        let seen = asked.withLock { $0 }
        #expect(seen.map { $0.batch.sorted() } == [[0], [1, 2, 3]])
        #expect(seen.map(\.before) == [false, false])
        #expect(seen.map(\.after) == [true, false])
    }

    /// One bad item fails alone: a failed batch is written again item by item.
    @Test func aBadItemFailsAloneAndTheRestOfItsBatchGoesThrough() async throws {
        struct Refused: Error {}
        let flushes = Box<[[Int]]>([])
        let batcher = Batcher<Int, Int>(maxBatch: 64, maxFlushes: 1) { items in
            flushes.withLock { $0.append(items) }
            if items.contains(3) { throw Refused() }
            return items
        }
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 0..<20 {
                group.addTask { (n, (try? await batcher.submit(n)) == n) }
            }
            var results: [Int: Bool] = [:]
            for await (n, succeeded) in group { results[n] = succeeded }
            return results
        }
        #expect(results.count == 20)
        #expect(results.filter { !$0.value }.map(\.key) == [3])
        // The item failed on its own too, after its batch.
        #expect(flushes.withLock { $0 }.contains([3]))
    }
}

/// Shared state of a test's concurrent tasks.
final class Box<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
