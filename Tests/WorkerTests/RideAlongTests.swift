import Delivery
import Foundation
import HeraldEvents
import Records
import Synchronization
import Testing
@testable import Worker

@Suite("Records riding with a store")
struct RideAlongTests {
    struct Refused: Error {}

    func success(_ delivery: UUID = UUID()) -> AttemptRecord {
        AttemptRecord(
            Attempt(
                deliveryID: delivery, endpointID: UUID(), number: 1, trigger: .automatic, requestID: UUID(), startedAt: Date(),
                duration: .milliseconds(3), outcome: Outcome(verdict: .delivered, statusCode: 200), excerpt: []),
            next: .delivered, nextAttemptAt: nil)
    }

    func arrival() -> Arrival { Arrival(event: Event(id: "evt", type: "t", tenantID: UUID(), data: Array("{}".utf8)), targets: [.init(endpoint: UUID())]) }

    /// What the store's writer was given, and a gate that holds it until the test opens it.
    final class Writer: Sendable {
        let seen = Mutex<[[UUID]]>([])
        let open = Mutex(false)
        let fail: Bool
        /// Refuses a statement that carries records, as a record's deleted delivery would.
        let failWithRecords: Bool
        init(fail: Bool = false, failWithRecords: Bool = false) {
            self.fail = fail
            self.failWithRecords = failWithRecords
        }

        func write(_ arrivals: [Arrival], _ records: [AttemptRecord]) async throws -> ([Int], [Recorded]) {
            seen.withLock { $0.append(records.map(\.attempt.deliveryID)) }
            let deadline = ContinuousClock.now + .seconds(10)
            while !open.withLock({ $0 }) && ContinuousClock.now < deadline { await Task.yield() }
            if fail || (failWithRecords && !records.isEmpty) { throw Refused() }
            return (arrivals.map { _ in 1 }, records.map { Recorded(applied: $0.attempt.number == 1, disabledEndpoint: false) })
        }
    }

    func waitFor(_ rides: RideAlong, riders: Int) async {
        let deadline = ContinuousClock.now + .seconds(10)
        while rides.waiting < riders && ContinuousClock.now < deadline { await Task.yield() }
    }

    @Test func withNoStoreUnderWayRecordsGoAlone() async {
        #expect(await RideAlong().ride([success()]) == nil)
    }

    @Test func recordsThatComeDuringAStoreRideWithTheNextAndEachGetsItsOwn() async throws {
        let rides = RideAlong()
        let writer = Writer()
        let first = [success(), success()], second = [success()]
        // The first store is under way, and another follows it at once.
        let firstStore = Task { try await rides.store([arrival()], more: { true }, write: writer.write) }
        let deadline = ContinuousClock.now + .seconds(10)
        while writer.seen.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline { await Task.yield() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { #expect(await rides.ride(first)?.count == 2) }
            group.addTask { #expect(await rides.ride(second)?.count == 1) }
            await waitFor(rides, riders: 2)
            #expect(rides.waiting == 2)
            writer.open.withLock { $0 = true }
            _ = try await firstStore.value
            #expect(rides.waiting == 2, "they wait for the statement that follows")
            _ = try await rides.store([arrival()], more: { false }, write: writer.write)
            try await group.waitForAll()
        }
        let seen = writer.seen.withLock { $0 }
        #expect(seen.count == 2 && seen[0].isEmpty)
        #expect(Set(seen[1]) == Set((first + second).map(\.attempt.deliveryID)), "both rode with the second statement")
        #expect(await rides.ride([success()]) == nil, "no store under way")
    }

    @Test func whenNoStoreFollowsOrTheStoreFailsTheRidersGoAlone() async throws {
        for fail in [false, true] {
            let rides = RideAlong()
            let writer = Writer(fail: fail)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        _ = try await rides.store([arrival()], more: { false }, write: writer.write)
                        #expect(!fail)
                    } catch is Refused {
                        #expect(fail)
                    }
                }
                let deadline = ContinuousClock.now + .seconds(10)
                while writer.seen.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline { await Task.yield() }
                group.addTask { #expect(await rides.ride([success()]) == nil) }
                await waitFor(rides, riders: 1)
                #expect(rides.waiting == 1, "it waited for the store")
                writer.open.withLock { $0 = true }
                try await group.waitForAll()
            }
            #expect(writer.seen.withLock { $0 } == [[]], "the store went without them")
        }
    }

    @Test func failuresAndTwoRecordsOfOneDeliveryNeverRide() async throws {
        var failed = success()
        failed.attempt.outcome = Outcome(verdict: .transient, statusCode: 503, errorClass: .http, errorMessage: "HTTP 503")
        let rides = RideAlong()
        let writer = Writer()
        let shared = UUID()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await rides.store([arrival()], more: { true }, write: writer.write) }
            let deadline = ContinuousClock.now + .seconds(10)
            while writer.seen.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline { await Task.yield() }
            #expect(await rides.ride([failed]) == nil, "a failure is counted on its own")
            group.addTask { #expect(await rides.ride([success(shared)]) == nil) }
            group.addTask { #expect(await rides.ride([success(shared)]) == nil) }
            await waitFor(rides, riders: 2)
            writer.open.withLock { $0 = true }
            // They wait for the next statement, which finds they name one delivery.
            #expect(rides.waiting == 2)
            _ = try await rides.store([arrival()], more: { false }, write: writer.write)
            try await group.waitForAll()
        }
        #expect(writer.seen.withLock { $0 } == [[], []], "one delivery twice in a statement would be moved once")
    }

    /// A statement refused because of its riders is written again without them: the
    /// store succeeds, the riders write on their own.
    @Test func aRiderThatFailsTheStatementNeverFailsTheStore() async throws {
        let rides = RideAlong()
        let writer = Writer(failWithRecords: true)
        let firstStore = Task { try await rides.store([arrival()], more: { true }, write: writer.write) }
        let deadline = ContinuousClock.now + .seconds(10)
        while writer.seen.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline { await Task.yield() }
        let record = success()
        let rider = Task { await rides.ride([record]) }
        await waitFor(rides, riders: 1)
        #expect(rides.waiting == 1)
        writer.open.withLock { $0 = true }
        _ = try await firstStore.value
        #expect(try await rides.store([arrival()], more: { false }, write: writer.write) == [1])
        #expect(await rider.value == nil, "the rider writes on its own")
        #expect(writer.seen.withLock { $0 } == [[], [record.attempt.deliveryID], []])
    }
}
