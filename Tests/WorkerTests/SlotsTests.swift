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

/// Shared state of a test's concurrent tasks.
final class Box<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
