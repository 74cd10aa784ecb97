import Synchronization
import Testing

@testable import HeraldSupport

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

extension BatcherTests {
    /// Even items are patient: nothing but their result waits on them.
    static func lingering(_ longest: Duration) -> Batcher<Int, Int>.Lingering {
        Batcher<Int, Int>.Lingering(longest: longest) { $0 % 2 == 0 }
    }

    /// Polls `condition` until it holds or ten seconds pass.
    static func eventually(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }

    /// A lone patient item waits for company (a minute here, longer than the test), and
    /// those that come meanwhile join it; an impatient item ends the wait, and all go as
    /// one batch.
    @Test func patientItemsWaitForCompanyUntilAnImpatientOneComes() async throws {
        let flushes = Box<[[Int]]>([])
        let batcher = Batcher<Int, Int>(maxBatch: 64, maxFlushes: 1, lingering: Self.lingering(.seconds(60))) { items in
            flushes.withLock { $0.append(items) }
            return items.map { $0 * 10 }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in [0, 2, 4] {
                group.addTask {
                    let result = try await batcher.submit(n)
                    #expect(result == n * 10)
                }
                #expect(await Self.eventually { batcher.queued == n / 2 + 1 })
            }
            #expect(flushes.withLock { $0 }.isEmpty)
            group.addTask {
                let result = try await batcher.submit(7)
                #expect(result == 70)
            }
            try await group.waitForAll()
        }
        #expect(flushes.withLock { $0 } == [[0, 2, 4, 7]])
    }

    /// A full batch does not wait for the rest of the minute.
    @Test func aFullBatchEndsTheWait() async throws {
        let flushes = Box<[[Int]]>([])
        let batcher = Batcher<Int, Int>(maxBatch: 4, maxFlushes: 1, lingering: Self.lingering(.seconds(60))) { items in
            flushes.withLock { $0.append(items) }
            return items
        }
        let done = Box(0)
        await withTaskGroup(of: Void.self) { group in
            for n in [0, 2, 4, 6] {
                group.addTask {
                    _ = try? await batcher.submit(n)
                    done.withLock { $0 += 1 }
                }
            }
            #expect(await Self.eventually { done.withLock { $0 } == 4 })
            group.cancelAll()
        }
        #expect(flushes.withLock { $0 }.map { $0.sorted() } == [[0, 2, 4, 6]])
    }

    /// Alone, a patient item goes when its wait is over.
    @Test func aLoneItemGoesWhenItsWaitIsOver() async throws {
        let flushes = Box<[[Int]]>([])
        let batcher = Batcher<Int, Int>(maxBatch: 64, maxFlushes: 1, lingering: Self.lingering(.milliseconds(20))) { items in
            flushes.withLock { $0.append(items) }
            return items
        }
        let done = Box(false)
        let started = ContinuousClock.now
        Task {
            _ = try? await batcher.submit(8)
            done.withLock { $0 = true }
        }
        #expect(await Self.eventually { done.withLock { $0 } })
        #expect(ContinuousClock.now - started >= .milliseconds(20))
        #expect(flushes.withLock { $0 } == [[8]])
    }

    /// While writes follow each other nothing waits: items queued behind a write go as
    /// soon as it ends, patient or not.
    @Test func itemsBehindAWriteDoNotWait() async throws {
        let flushes = Box<[[Int]]>([])
        let gate = Box(false)
        let batcher = Batcher<Int, Int>(maxBatch: 64, maxFlushes: 1, lingering: Self.lingering(.seconds(60))) { items in
            flushes.withLock { $0.append(items) }
            if items == [1] { while !gate.withLock({ $0 }) { await Task.yield() } }
            return items
        }
        let done = Box(0)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                _ = try? await batcher.submit(1)
                done.withLock { $0 += 1 }
            }
            #expect(await Self.eventually { !flushes.withLock { $0 }.isEmpty })
            for n in [0, 2] {
                group.addTask {
                    _ = try? await batcher.submit(n)
                    done.withLock { $0 += 1 }
                }
            }
            #expect(await Self.eventually { batcher.queued == 2 })
            gate.withLock { $0 = true }
            #expect(await Self.eventually { done.withLock { $0 } == 3 })
            group.cancelAll()
        }
        #expect(flushes.withLock { $0 }.map { $0.sorted() } == [[1], [0, 2]])
    }
}

/// Shared state of a test's concurrent tasks.
private final class Box<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
