import Foundation
import Testing
@testable import Worker

/// A slot lease is given back exactly once on every path: after its request, when the
/// path returns early, throws, or its task is cancelled.
@Suite("Slot leases")
struct SlotLeaseTests {
    struct Failed: Error {}

    @Test func aReleaseCountsOnceAndTheLastReferenceGivesBackWhatWasNotReleased() {
        let slots = Slots(ceiling: 2, stall: .seconds(60))
        let endpoint = UUID()
        let lease = slots.tryLease(endpoint)
        #expect(slots.taken == 1)
        lease?.release(after: .unused)
        lease?.release(after: .unused)
        #expect(slots.taken == 0)
        do {
            let early = slots.tryLease(endpoint)
            #expect(early != nil && slots.taken == 1)
        }
        #expect(slots.taken == 0, "a lease dropped without a release gives its slot back")
    }

    @Test func aThrowingPathLeavesNoSlotTaken() {
        let slots = Slots(ceiling: 1, stall: .seconds(60))
        let endpoint = UUID()
        func send() throws {
            guard let lease = slots.tryLease(endpoint) else { return }
            _ = lease.endpoint
            throw Failed()
        }
        #expect(throws: Failed.self) { try send() }
        #expect(slots.taken == 0)
        #expect(slots.tryLease(endpoint) != nil, "the slot is free again")
    }

    @Test func aCancelledTaskLeavesNoSlotTaken() async {
        let slots = Slots(ceiling: 1, stall: .seconds(60))
        let endpoint = UUID()
        let holding = AsyncStream<Void>.makeStream()
        let task = Task {
            guard let lease = await slots.lease(endpoint) else { return }
            holding.continuation.yield()
            try? await Task.sleep(for: .seconds(3600))
            _ = lease.endpoint
        }
        var iterator = holding.stream.makeAsyncIterator()
        await iterator.next()
        #expect(slots.taken == 1)
        task.cancel()
        await task.value
        #expect(slots.taken == 0)
    }

    @Test func aWaiterHandedTheSlotOfAReleasedLeaseHoldsItAlone() async {
        let slots = Slots(ceiling: 1, stall: .seconds(60))
        let endpoint = UUID()
        let first = slots.tryLease(endpoint)
        let waiting = Task { await slots.lease(endpoint) }
        let deadline = ContinuousClock.now + .seconds(10)
        while slots.waiting(endpoint) == 0 {
            guard ContinuousClock.now < deadline else {
                Issue.record("the second lease never waited")
                return
            }
            await Task.yield()
        }
        first?.release(after: .answered(.milliseconds(1), delivered: true))
        let second = await waiting.value
        #expect(second != nil && slots.taken == 1)
        second?.release(after: .answered(.milliseconds(1), delivered: true))
        #expect(slots.taken == 0)
    }
}
