import HeraldAMQP
import Delivery
import HeraldEvents
import FanOut
import Foundation
import HTTPClient
import Records
import HeraldSupport
import Synchronization
import Testing
import TestSupport
import Topology
@testable import Worker

/// Ordered intake (shards read one message after another into the store) and ordered
/// endpoints (one delivery at a time, a retrying one holding the rest), without sockets.
@Suite("Ordered delivery (no sockets)")
struct OrderedTests {
    @Test func everyShardHasExactlyOneOwnerAndTheyAreBalanced() {
        let replicas = ["worker-c", "worker-a", "worker-b"]
        let assignment = ShardAssignment(replicas: replicas)
        var owned: [String: Int] = [:]
        for shard in 0..<16 {
            let owners = replicas.filter { assignment.owns($0, shard: shard) }
            #expect(owners.count == 1, "shard \(shard): \(owners)")
            owned[owners[0], default: 0] += 1
        }
        #expect(owned.values.max()! - owned.values.min()! <= 1)
        // Every replica computes the same, whatever order the heartbeats listed them in.
        #expect(ShardAssignment(replicas: replicas.reversed()) == assignment)
        // One the heartbeats do not list yet keeps what it holds; so does everyone without a view.
        #expect((0..<16).allSatisfy { assignment.owns("worker-new", shard: $0) })
        #expect((0..<16).allSatisfy { ShardAssignment(replicas: []).owns("worker-a", shard: $0) })
    }

    /// What concurrent tasks write down, shared by reference.
    final class Log<Value: Sendable>: Sendable {
        let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        func withLock<R>(_ body: (inout sending Value) -> R) -> R { value.withLock { body(&$0) } }
    }

    @Test func turnsAreTakenInTicketOrderWhateverOrderTheTasksGetThere() async throws {
        let turns = Turns()
        let tickets = (0..<50).map { _ in turns.issue() }
        let order = Log<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for turn in tickets.shuffled() {
                group.addTask {
                    try await turn.take()
                    order.withLock { $0.append(turn.ticket) }
                    turn.passTaken()
                }
            }
            try await group.waitForAll()
        }
        #expect(order.withLock { $0 } == Array(0..<50))
    }

    @Test func aTurnPassedWithoutBeingTakenStillWaitsForThoseBefore() async throws {
        let turns = Turns()
        let first = turns.issue()
        let second = turns.issue()
        let third = turns.issue()
        let order = Log<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await third.take()
                order.withLock { $0.append(3) }
            }
            group.addTask {
                // Noted before passing: the third may go the moment the pass lands.
                order.withLock { $0.append(2) }
                await second.pass()
            }
            try await first.take()
            order.withLock { $0.append(1) }
            first.passTaken()
            try await group.waitForAll()
        }
        #expect(order.withLock { $0 }.last == 3, "the third went before the first was taken or the second passed")
    }

    struct Refused: Error {}
    struct Broken: Error {}

    /// Items 3 (refused alone) and 6 (the store broke) fail; the batcher writes 0, 1, 2, 4,
    /// 5 in that order and nothing after 6, then refuses everything submitted later.
    @Test func anOrderedBatcherWritesInOrderAndStopsAtAFailureItCannotIsolate() async throws {
        let written = Log<[Int]>([])
        let batcher = Batcher<Int, Int>(orderedBatch: 4, ownFailure: { $0 is Refused }) { items in
            if items.contains(3) && items.count == 1 { throw Refused() }
            if items.contains(6) { throw Broken() }
            if items.contains(3) { throw Refused() }
            written.withLock { $0 += items }
            return items
        }
        let turns = Turns()
        let results = Log<[Int: String]>([:])
        await withTaskGroup(of: Void.self) { group in
            for item in 0..<10 {
                let turn = turns.issue()
                group.addTask {
                    let result: String
                    do {
                        try await turn.take()
                        result = String(try await batcher.submit(item) { turn.passTaken() })
                    } catch {
                        result = error is Refused ? "refused" : error is Broken ? "broken" : "\(error)"
                    }
                    results.withLock { $0[item] = result }
                }
            }
        }
        let outcome = results.withLock { $0 }
        #expect((0..<3).allSatisfy { outcome[$0] == String($0) } && outcome[4] == "4" && outcome[5] == "5")
        #expect(outcome[3] == "refused")
        #expect((6..<10).allSatisfy { outcome[$0] == "broken" }, "\(outcome)")
        #expect(written.withLock { $0 } == [0, 1, 2, 4, 5])
        await #expect(throws: Broken.self) { try await batcher.submit(10) }
    }

    /// Three events for an ordered endpoint: one request at a time in event order, the
    /// second failing once holds the third until its retry succeeds.
    @Test func anOrderedEndpointGetsOneDeliveryAtATimeAndARetryHoldsTheRest() async throws {
        var endpoint = ProcessorTests.endpoint()
        endpoint.ordered = true
        let failures = Log(1)
        let transport = ProcessorTests.ScriptedTransport { request in
            let second = String(decoding: request.body, as: UTF8.self).contains("\"n\":2")
            let fail = second && failures.withLock { remaining in
                defer { remaining = max(0, remaining - 1) }
                return remaining > 0
            }
            return .success(Response(status: fail ? 503 : 204))
        }
        let harness = ProcessorTests.Harness(endpoints: [endpoint], transport: transport)
        let events = (1...3).map { n in
            Event(id: "evt_\(n)", type: "invoice.paid", tenantID: harness.tenant, data: Array(#"{"n":\#(n)}"#.utf8))
        }
        for event in events { try await harness.handle(event) }
        // Stored, not sent: only the head was asked for, once.
        #expect(harness.transport.requests.isEmpty)
        var handled = 0
        var bodies: [String] = []
        // Play the broker: hand each published delivery message back, the retry's too.
        while handled < harness.publisher.messages.count {
            let message = harness.publisher.messages[handled].message
            handled += 1
            guard case .delivery(let id, let attempt, let manual, let target) = try WorkMessage.parse(message, limits: EventLimits()) else {
                Issue.record("unexpected message")
                continue
            }
            let before = harness.transport.requests.count
            try await harness.handle(retry: id, attempt: attempt, manual: manual, endpoint: target)
            bodies += harness.transport.requests[before...].map { String(decoding: $0.body, as: UTF8.self) }
        }
        #expect(bodies == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":2}"#, #"{"n":3}"#])
        #expect(harness.deliveries(to: endpoint.id).allSatisfy { $0.status == .delivered && $0.ordered })
        // One request per message: never two deliveries asked for at once.
        #expect(harness.publisher.messages.count == 4)
        #expect(harness.slots.taken == 0)
    }
}
