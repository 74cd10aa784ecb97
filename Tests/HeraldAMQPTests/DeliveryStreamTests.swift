import Foundation
@testable import HeraldAMQP
import Testing

@Suite("A consumer's deliveries, from the connection's thread to its reader", .timeLimit(.minutes(1)))
struct DeliveryStreamTests {
    struct Refused: Error, Equatable {}

    static func delivery(_ tag: UInt64) -> Delivery {
        Delivery(message: Message(body: Array("\(tag)".utf8)), deliveryTag: tag, routingKey: "k")
    }

    /// Waits until the reader of `stream` waits, looking every 2 ms; records an issue after 10 s.
    static func readerWaits(_ stream: DeliveryStream) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !stream.readerWaits {
            guard ContinuousClock.now < deadline else {
                Issue.record("the reader never waited")
                return
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test func deliveriesComeInOrderWhetherTheReaderWaitsOrNot() async throws {
        let stream = DeliveryStream()
        for tag: UInt64 in 1...3 { stream.yield(Self.delivery(tag)) }
        var taken: [UInt64] = []
        for _ in 1...3 { taken.append(try #require(try await stream.next()).deliveryTag) }
        let waiting = Task { try await stream.next()?.deliveryTag }
        try await Self.readerWaits(stream)
        stream.yield(Self.delivery(4))
        taken.append(try #require(try await waiting.value))
        #expect(taken == [1, 2, 3, 4])
        #expect(!stream.readerWaits)
    }

    @Test func finishingLetsThePendingDeliveriesThroughThenEnds() async throws {
        let stream = DeliveryStream()
        stream.yield(Self.delivery(1))
        stream.yield(Self.delivery(2))
        stream.finish()
        stream.yield(Self.delivery(3))
        #expect(try await stream.next()?.deliveryTag == 1)
        #expect(try await stream.next()?.deliveryTag == 2)
        #expect(try await stream.next() == nil)
        #expect(try await stream.next() == nil)
    }

    @Test func anErrorComesOnceAfterThePendingDeliveries() async throws {
        let stream = DeliveryStream()
        stream.yield(Self.delivery(1))
        stream.finish(throwing: Refused())
        stream.finish()
        #expect(try await stream.next()?.deliveryTag == 1)
        await #expect(throws: Refused.self) { try await stream.next() }
        #expect(try await stream.next() == nil)
    }

    @Test func aWaitingReaderIsEndedByFinishOrGivenTheError() async throws {
        let ended = DeliveryStream()
        let waiting = Task { try await ended.next() }
        try await Self.readerWaits(ended)
        ended.finish()
        #expect(try await waiting.value == nil)

        let failed = DeliveryStream()
        let failing = Task { try await failed.next() }
        try await Self.readerWaits(failed)
        failed.finish(throwing: Refused())
        await #expect(throws: Refused.self) { try await failing.value }
        #expect(try await failed.next() == nil)
    }

    @Test func cancellingTheWaitingReaderEndsTheStream() async throws {
        let stream = DeliveryStream()
        let waiting = Task { try await stream.next() }
        try await Self.readerWaits(stream)
        waiting.cancel()
        #expect(try await waiting.value == nil)
        stream.yield(Self.delivery(1))
        #expect(try await stream.next() == nil)
    }

    @Test func aReaderAlreadyCancelledTakesWhatIsPendingThenEnds() async throws {
        let stream = DeliveryStream()
        stream.yield(Self.delivery(1))
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let reader = Task {
            for await _ in gate { break }
            var tags: [UInt64] = []
            while let delivery = try await stream.next() { tags.append(delivery.deliveryTag) }
            return tags
        }
        reader.cancel()
        open.yield()
        #expect(try await reader.value == [1])
    }

    /// Past a thousand taken while more wait, what was taken is let go; the order holds.
    @Test func aReaderBehindTheConnectionGetsEverythingInOrder() async throws {
        let stream = DeliveryStream()
        for tag in 0..<3_000 { stream.yield(Self.delivery(UInt64(tag))) }
        var taken: [UInt64] = []
        for _ in 0..<1_500 { taken.append(try #require(try await stream.next()).deliveryTag) }
        // Only what was not taken is held.
        #expect(stream.held == 1_500)
        _ = try await stream.next().map { taken.append($0.deliveryTag) }
        #expect(stream.held == 1_499)
        for tag in 3_000..<4_000 { stream.yield(Self.delivery(UInt64(tag))) }
        stream.finish()
        while let delivery = try await stream.next() { taken.append(delivery.deliveryTag) }
        #expect(taken == Array(0..<4_000))
    }

    /// A thread of its own yields, as the connection's does, while the reader takes.
    @Test func aThreadYieldingWhileTheReaderTakesLosesNothing() async throws {
        let stream = DeliveryStream()
        let count = 20_000
        let thread = Thread {
            for tag in 0..<count { stream.yield(Self.delivery(UInt64(tag))) }
            stream.finish()
        }
        thread.start()
        var iterator = DeliveryStream.Iterator(stream: stream)
        var next: UInt64 = 0
        var inOrder = true
        while let delivery = try await iterator.next() {
            inOrder = inOrder && delivery.deliveryTag == next
            next += 1
        }
        #expect(inOrder)
        #expect(next == UInt64(count))
    }
}
