import Synchronization
import Testing
@testable import Worker

@Suite("Runners: long-lived tasks that take messages in turn")
struct RunnersTests {
    @Test func theFirstItemAsksForARunnerWhichTakesItWithoutWaiting() async {
        let runners = Runners<Int>()
        #expect(runners.submit(7))
        #expect(runners.count == 1)
        #expect(await runners.next() == 7)
    }

    @Test func anIdleRunnerTakesTheNextItemAndNoRunnerIsAskedFor() async throws {
        let runners = Runners<Int>()
        let taken = Task { await runners.next() }
        try await until("the runner waits") { runners.idle == 1 }
        #expect(!runners.submit(3))
        #expect(await taken.value == 3)
        #expect(runners.idle == 0)
        #expect(runners.count == 0)
    }

    @Test func everyBusyRunnerMeansAnotherRunnerIsAskedFor() {
        let runners = Runners<Int>()
        for item in 0..<5 { #expect(runners.submit(item)) }
        #expect(runners.count == 5)
    }

    @Test func closingEndsIdleRunnersAndBusyOnesAfterTheQueuedItems() async throws {
        let runners = Runners<Int>()
        let idle = Task { await runners.next() }
        try await until("the runner waits") { runners.idle == 1 }
        // Taken by the idle runner; the next two queue for runners that are asked for.
        #expect(!runners.submit(1))
        #expect(await idle.value == 1)
        #expect(runners.submit(2))
        #expect(runners.submit(3))
        runners.close()
        var drained: [Int] = []
        while let item = await runners.next() { drained.append(item) }
        #expect(drained == [2, 3])
        #expect(await runners.next() == nil)
    }

    @Test func aRunnerWaitingWhenClosedEnds() async throws {
        let runners = Runners<Int>()
        let waiting = Task { await runners.next() }
        try await until("the runner waits") { runners.idle == 1 }
        runners.close()
        #expect(await waiting.value == nil)
        #expect(runners.idle == 0)
    }

    @Test func aCancelledRunnerEndsAndIsNoLongerGivenItems() async throws {
        let runners = Runners<Int>()
        let waiting = Task { await runners.next() }
        try await until("the runner waits") { runners.idle == 1 }
        waiting.cancel()
        #expect(await waiting.value == nil)
        #expect(runners.idle == 0)
        // No idle runner is left to hand it to: the caller starts one.
        #expect(runners.submit(9))
        #expect(await runners.next() == 9)
    }

    @Test func aRunnerCancelledBeforeItWaitsEndsAtOnce() async {
        let runners = Runners<Int>()
        let result = await withTaskGroup(of: Int?.self) { group in
            group.cancelAll()
            group.addTask { await runners.next() }
            return await group.next() ?? nil
        }
        #expect(result == nil)
        #expect(runners.idle == 0)
    }

    /// Items from one producer, runners started as `submit` asks: each item is handled once,
    /// by far fewer runners than items (a task per item would have made 20,000).
    @Test func everyItemIsHandledOnceByFarFewerRunnersThanItems() async {
        let runners = Runners<Int>()
        let handled = Handled()
        let items = 20_000
        await withDiscardingTaskGroup { group in
            for item in 0..<items {
                if runners.submit(item) {
                    group.addTask {
                        while let item = await runners.next() {
                            if item % 7 == 0 { await Task.yield() }
                            handled.items.withLock { $0.append(item) }
                        }
                    }
                }
                if item % 100 == 0 { await Task.yield() }
            }
            runners.close()
        }
        let all = handled.items.withLock { $0 }
        #expect(all.count == items)
        #expect(Set(all).count == items)
        #expect(runners.count >= 1)
        #expect(runners.count <= items / 10)
    }
}

private final class Handled: Sendable {
    let items = Mutex<[Int]>([])
}
