import Testing
import TestSupport
@testable import Worker

/// The prefetch that follows message sizes, size by size: no broker.
@Suite("Prefetch window")
struct PrefetchWindowTests {
    static let mib = 1024 * 1024

    /// Feeds `count` messages of `size`; returns every change the window asked for.
    static func feed(_ window: inout PrefetchWindow, _ count: Int, of size: Int) -> [Int] {
        (0..<count).compactMap { _ in window.observe(size: size) }
    }

    @Test func itOpensAtWhatTheLargestReadableMessageWouldFill() {
        #expect(PrefetchWindow(budget: 32 * Self.mib, most: 500, largestMessage: 320 * 1024).prefetch == 102)
        #expect(PrefetchWindow(budget: 32 * Self.mib, most: 50, largestMessage: 320 * 1024).prefetch == 50, "never above the concurrency")
        #expect(PrefetchWindow(budget: Self.mib, most: 500, largestMessage: 128 * Self.mib).prefetch == 1, "never below one")
    }

    @Test func smallMessagesOpenItToTheConcurrencyAfterAWholeSample() {
        var window = PrefetchWindow(budget: 32 * Self.mib, most: 500, largestMessage: 320 * 1024, sample: 64)
        #expect(Self.feed(&window, 63, of: 1024).isEmpty, "a sample is seen before it grows")
        #expect(window.observe(size: 1024) == 500)
        #expect(window.prefetch == 500)
        #expect(Self.feed(&window, 1000, of: 1024).isEmpty, "and it stays")
    }

    @Test func largeMessagesCloseItAfterAQuarterOfASampleKeepingTheBytesNearTheBudget() {
        var window = PrefetchWindow(budget: 32 * Self.mib, most: 500, largestMessage: 320 * 1024, sample: 64)
        _ = Self.feed(&window, 64, of: 1024)
        #expect(window.prefetch == 500)
        // Within a quarter of a sample of large messages, in one step.
        #expect(Self.feed(&window, 16, of: 255 * 1024) == [128])
        #expect(Self.feed(&window, 256, of: 255 * 1024).isEmpty)
        let held = window.prefetch * 255 * 1024
        #expect(held <= 32 * Self.mib && held * 2 > 32 * Self.mib, "prefetch \(window.prefetch) holds \(held) bytes")
    }

    /// Sizes that alternate around a mean never make the consumer come and go.
    @Test func aMixedStreamSettles() {
        var window = PrefetchWindow(budget: 8 * Self.mib, most: 500, largestMessage: 320 * 1024, sample: 64)
        var changes: [Int] = []
        for n in 0..<10_000 { if let change = window.observe(size: n % 2 == 0 ? 1024 : 64 * 1024) { changes.append(change) } }
        #expect(changes == [252], "opened once, after a sample")
        #expect(window.prefetch == 8 * Self.mib / ((1024 + 64 * 1024) / 2))
    }

    /// Whatever the sizes, the prefetch stays within one and the concurrency, and the bytes
    /// a settled window holds stay within twice the budget (or one message).
    @Test(arguments: 0..<50)
    func anySizesStayWithinTheBounds(seed: Int) {
        var random = SeededRandom(seed: UInt64(seed))
        let most = Int(random.next() % 600) + 1
        let budget = Int(random.next() % UInt64(64 * Self.mib)) + Self.mib
        var window = PrefetchWindow(budget: budget, most: most, largestMessage: 320 * 1024, sample: 64)
        var phase = Int(random.next() % 300_000) + 1
        for n in 0..<5_000 {
            if n % 700 == 0 { phase = Int(random.next() % 300_000) + 1 }
            let size = max(1, phase + Int(random.next() % 1000) - 500)
            if let change = window.observe(size: size) {
                #expect(change == window.prefetch)
            }
            #expect((1...most).contains(window.prefetch))
            if n % 700 == 699, let mean = window.meanSize {
                #expect(window.prefetch * mean <= 2 * budget || window.prefetch == 1, "prefetch \(window.prefetch) of \(mean) bytes, budget \(budget)")
            }
        }
    }
}

/// How many messages may be in hand with earlier subscriptions' stragglers.
@Suite("Prefetch window: most held")
struct MostHeldTests {
    @Test func threeTimesTheConcurrencyOrTheBudgetWhicheverIsLess() {
        var window = PrefetchWindow(budget: 24 * 1024 * 1024, most: 500, largestMessage: 320 * 1024, sample: 64)
        #expect(window.mostHeld == window.prefetch, "no more than the window before a message is seen")
        _ = PrefetchWindowTests.feed(&window, 64, of: 1024)
        #expect(window.prefetch == 500)
        #expect(window.mostHeld == 1500)
        _ = PrefetchWindowTests.feed(&window, 64, of: 20 * 1024)
        #expect(window.mostHeld == 24 * 1024 * 1024 / (20 * 1024))
        _ = PrefetchWindowTests.feed(&window, 64, of: 256 * 1024)
        #expect(window.mostHeld == window.prefetch, "large messages fill the budget with the window alone")
    }
}
