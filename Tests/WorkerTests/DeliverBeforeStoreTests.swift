import Delivery
import FanOut
import Foundation
import HeraldEvents
import HTTPClient
import HeraldSupport
import Records
import Synchronization
import Testing
import TestSupport
import Topology
@testable import Worker

/// `HERALD_DELIVER_BEFORE_STORE`: a first copy sends before it is stored, then writes
/// event, deliveries and delivered attempts at once (`Processor.sendFirst`).
@Suite("Deliver before store (no sockets)")
struct DeliverBeforeStoreTests {
    typealias Harness = ProcessorTests.Harness

    /// Answers 204 (or `status`) and notes, for each request, whether its event was stored
    /// when it went out. While held, a request waits for `release()`.
    final class WatchingTransport: WebhookTransport {
        private struct State {
            var records: MemoryRecords?
            var storedAtSend: [Bool] = []
            var held = false
            var waiting: [CheckedContinuation<Void, Never>] = []
        }

        private let state = Mutex(State())
        let status: Int

        init(status: Int = 204, held: Bool = false) {
            self.status = status
            state.withLock { $0.held = held }
        }

        func watch(_ records: MemoryRecords) { state.withLock { $0.records = records } }
        var storedAtSend: [Bool] { state.withLock { $0.storedAtSend } }
        var waiting: Int { state.withLock { $0.waiting.count } }

        func release() {
            let waiting = state.withLock { state in
                state.held = false
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }

        func execute(_ request: Request) async throws(TransferError) -> Response {
            state.withLock { state in state.storedAtSend.append(!(state.records?.states.isEmpty ?? true)) }
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    guard state.held else { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
            return Response(status: status)
        }
    }

    /// Waits until `condition` holds, looking every 5 ms; fails after 10 s.
    func until(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func aDeliveredFirstAttemptGoesBeforeTheStoreAndIsWrittenWithIt() async throws {
        let endpoints = [ProcessorTests.endpoint(url: "https://a.example/in"), ProcessorTests.endpoint(url: "https://b.example/in")]
        let transport = WatchingTransport()
        let harness = Harness(endpoints: endpoints, client: transport, deliverBeforeStore: true)
        transport.watch(harness.records)
        let event = harness.event()
        try await harness.handle(event)
        #expect(transport.storedAtSend == [false, false], "both requests left before anything was stored")
        for endpoint in endpoints {
            let identity = DeliveryState.identity(tenant: harness.tenant, event: event.id, endpoint: endpoint.id)
            let states = harness.deliveries(to: endpoint.id)
            #expect(states.map(\.id) == [identity.id] && states.map(\.status) == [.delivered] && states[0].attempts == 1)
            #expect(harness.records.attempts(of: identity.id).map(\.number) == [1])
        }
        #expect(harness.publisher.messages.isEmpty && harness.slots.taken == 0)
        #expect(harness.context.firstCopies.holding == 0)
    }

    @Test func withoutTheSettingTheStoreComesFirst() async throws {
        let transport = WatchingTransport()
        let harness = Harness(endpoints: [ProcessorTests.endpoint()], client: transport)
        transport.watch(harness.records)
        try await harness.handle(harness.event())
        #expect(transport.storedAtSend == [true])
    }

    @Test func aLargeEventIsStoredFirst() async throws {
        let transport = WatchingTransport()
        let harness = Harness(endpoints: [ProcessorTests.endpoint()], client: transport, deliverBeforeStore: true)
        transport.watch(harness.records)
        let pad = String(repeating: "x", count: Processor.sendFirstBytes)
        try await harness.handle(Event(id: Event.generateID(), type: "invoice.paid", tenantID: harness.tenant, data: Array(#"{"pad":"\#(pad)"}"#.utf8)))
        #expect(transport.storedAtSend == [true])
    }

    @Test func aRedeliveredCopyStoresFirstUnderTheSameIdentity() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport()
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: true)
        transport.watch(harness.records)
        let event = harness.event()
        try await harness.handle(event, redelivered: true)
        #expect(transport.storedAtSend == [true])
        #expect(harness.deliveries(to: endpoint.id).map(\.id) == [DeliveryState.identity(tenant: harness.tenant, event: event.id, endpoint: endpoint.id).id])
    }

    @Test func aFailedFirstAttemptIsRecordedAndRetried() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport(status: 503)
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: true)
        transport.watch(harness.records)
        try await harness.handle(harness.event())
        #expect(transport.storedAtSend == [false])
        let states = harness.deliveries(to: endpoint.id)
        #expect(states.map(\.status) == [.retrying])
        #expect(harness.records.attempts(of: states[0].id).map(\.number) == [1])
        #expect(harness.publisher.messages.map(\.routingKey) == [harness.topology.retryQueue(rung: 0)])
    }

    /// Handles `event` twice at once: the second copy while the first copy's request waits
    /// (`transport` starts held), the request released once the second copy waits too.
    func twoCopies(of event: Event, _ harness: Harness, _ transport: WatchingTransport) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await harness.handle(event) }
            try await until("the first copy's request waits") { transport.waiting == 1 }
            group.addTask { try await harness.handle(event) }
            try await until("the second copy waits for the first") { harness.context.firstCopies.waiting == 1 }
            transport.release()
            try await group.waitForAll()
        }
    }

    @Test func aSecondCopySendsNothingAgainWhileTheFirstIsSentOrAfterItWasStored() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport(held: true)
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: true)
        let event = harness.event()
        try await twoCopies(of: event, harness, transport)
        try await harness.handle(event)
        #expect(transport.storedAtSend.count == 1)
        #expect(harness.deliveries(to: endpoint.id).map(\.status) == [.delivered])
        #expect(harness.records.attempts(of: harness.deliveries(to: endpoint.id)[0].id).count == 1)
    }

    /// A copy that finds no free slot would store and send at once: it waits for the
    /// first copy's store like any other, its slots given back meanwhile.
    @Test func aSecondCopyWithoutASlotWaitsForTheFirstCopysStore() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport(held: true)
        let harness = Harness(
            endpoints: [endpoint], slots: Slots(ceiling: 1, initial: 1, stall: .seconds(60)), client: transport, deliverBeforeStore: true)
        let event = harness.event()
        try await twoCopies(of: event, harness, transport)
        #expect(transport.storedAtSend.count == 1)
        let states = harness.deliveries(to: endpoint.id)
        #expect(states.map(\.status) == [.delivered] && harness.records.attempts(of: states[0].id).count == 1)
        #expect(harness.slots.taken == 0)
    }

    @Test func aSlowFirstAttemptLetsItsEventBeStoredMeanwhile() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport(held: true)
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await harness.context.firstAttemptDeadlines.run() }
            group.addTask { try await harness.handle(harness.event()) }
            // Stored claimed while the request still waits for its answer.
            try await until("the event is stored") { harness.deliveries(to: endpoint.id).map(\.status) == [.pending] }
            #expect(transport.waiting == 1 && harness.deliveries(to: endpoint.id)[0].attempts == 1)
            transport.release()
            try await until("the attempt is recorded") { harness.deliveries(to: endpoint.id).map(\.status) == [.delivered] }
            group.cancelAll()
        }
        #expect(harness.records.attempts(of: harness.deliveries(to: endpoint.id)[0].id).map(\.number) == [1])
    }

    @Test func firstCopiesRememberWhatWasStored() async {
        let copies = FirstCopies()
        let stored = EventKey(tenant: UUID(), id: "evt_stored"), failed = EventKey(tenant: UUID(), id: "evt_failed")
        #expect(await copies.enter(stored) && copies.holding == 1)
        copies.leave(stored, stored: true)
        #expect(await !copies.enter(stored), "stored lately: the path that stores first")
        #expect(await copies.enter(failed))
        copies.leave(failed, stored: false)
        #expect(await copies.enter(failed), "not stored: a later copy sends first again")
        copies.leave(failed, stored: false)
        #expect(copies.holding == 0)
    }

    @Test func anIdentityIsStableAndNamesItsEventAndEndpoint() {
        let tenant = UUID(), endpoint = UUID()
        let identity = DeliveryState.identity(tenant: tenant, event: "evt_1", endpoint: endpoint)
        #expect(identity == DeliveryState.identity(tenant: tenant, event: "evt_1", endpoint: endpoint))
        #expect(identity.id != identity.requestID)
        for other in [
            DeliveryState.identity(tenant: UUID(), event: "evt_1", endpoint: endpoint), DeliveryState.identity(tenant: tenant, event: "evt_2", endpoint: endpoint),
            DeliveryState.identity(tenant: tenant, event: "evt_1", endpoint: UUID()),
        ] {
            #expect(other.id != identity.id && other.requestID != identity.requestID)
        }
        // Version 8, variant 10 (RFC 9562).
        #expect(identity.id.uuid.6 >> 4 == 8 && identity.id.uuid.8 >> 6 == 2)
    }
}
