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
    /// when it went out, and whether its own delivery was (by its `webhook-id`). While
    /// held, a request waits for `release()`.
    final class WatchingTransport: WebhookTransport {
        private struct State {
            var records: MemoryRecords?
            var storedAtSend: [Bool] = []
            var ownStoredAtSend: [Bool] = []
            var held = false
            var waiting: [CheckedContinuation<Void, Never>] = []
            var response: Response
        }

        private let state: Mutex<State>

        init(status: Int = 204, held: Bool = false) {
            state = Mutex(State(held: held, response: Response(status: status)))
        }

        /// Requests from now on get `response`.
        func answer(_ response: Response) { state.withLock { $0.response = response } }

        func watch(_ records: MemoryRecords) { state.withLock { $0.records = records } }
        var storedAtSend: [Bool] { state.withLock { $0.storedAtSend } }
        var ownStoredAtSend: [Bool] { state.withLock { $0.ownStoredAtSend } }
        var waiting: Int { state.withLock { $0.waiting.count } }

        /// Requests from now on wait for `release()`.
        func hold() { state.withLock { $0.held = true } }

        func release() {
            let waiting = state.withLock { state in
                state.held = false
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }

        func execute(_ request: Request) async throws(TransferError) -> Response {
            let delivery = request.headers.first { $0.name == "webhook-id" }.flatMap { UUID(uuidString: $0.value) }
            let states = state.withLock { $0.records }?.states ?? [:]
            state.withLock { state in
                state.storedAtSend.append(!states.isEmpty)
                state.ownStoredAtSend.append(delivery.map { states[$0] != nil } ?? false)
            }
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    guard state.held else { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
            return state.withLock { $0.response }
        }
    }

    @Test func aDeliveredFirstAttemptGoesBeforeTheStoreAndIsWrittenWithIt() async throws {
        let endpoints = [ProcessorTests.endpoint(url: "https://a.example/in"), ProcessorTests.endpoint(url: "https://b.example/in")]
        let transport = WatchingTransport()
        let harness = Harness(endpoints: endpoints, client: transport, deliverBeforeStore: .always)
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
        let harness = Harness(endpoints: [ProcessorTests.endpoint()], client: transport, deliverBeforeStore: .always)
        transport.watch(harness.records)
        let pad = String(repeating: "x", count: Processor.sendFirstBytes)
        try await harness.handle(Event(id: Event.generateID(), type: "invoice.paid", tenantID: harness.tenant, data: Array(#"{"pad":"\#(pad)"}"#.utf8)))
        #expect(transport.storedAtSend == [true])
    }

    @Test func aRedeliveredCopyStoresFirstUnderTheSameIdentity() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport()
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: .always)
        transport.watch(harness.records)
        let event = harness.event()
        try await harness.handle(event, redelivered: true)
        #expect(transport.storedAtSend == [true])
        #expect(harness.deliveries(to: endpoint.id).map(\.id) == [DeliveryState.identity(tenant: harness.tenant, event: event.id, endpoint: endpoint.id).id])
    }

    /// A first attempt the worker cuts short before its store (its session ended) is no
    /// attempt: the event is stored with it claimed, nothing is logged or scheduled, the
    /// message returns, and the redelivered copy makes it with the same request id. With
    /// one endpoint (`sendOneFirst`) and with two (`sendFirst`).
    @Test(arguments: [1, 2])
    func aFirstAttemptCutShortBeforeItsStoreIsNoAttempt(_ count: Int) async throws {
        let endpoints = (0..<count).map { ProcessorTests.endpoint(url: "https://\($0).example/in") }
        let cut = Mutex(true)
        let transport = ProcessorTests.ScriptedTransport { _ in
            cut.withLock { $0 } ? .failure(TransferError(.cancelled, message: "cancelled")) : .success(Response(status: 204))
        }
        let harness = Harness(endpoints: endpoints, client: transport, deliverBeforeStore: .always)
        let event = harness.event()
        await #expect(throws: CancellationError.self) { try await harness.handle(event) }
        for endpoint in endpoints {
            let states = harness.deliveries(to: endpoint.id)
            #expect(states.map(\.status) == [.pending] && states.map(\.attempts) == [1])
            #expect(harness.records.attempts(of: states[0].id).isEmpty)
            #expect(harness.slots.lane(endpoint.id)?.requesting == 0)
        }
        #expect(harness.publisher.messages.isEmpty)
        #expect(harness.slots.taken == 0)
        cut.withLock { $0 = false }
        try await harness.handle(event, redelivered: true)
        #expect(transport.requests.count == 2 * count)
        for endpoint in endpoints {
            let states = harness.deliveries(to: endpoint.id)
            #expect(states.map(\.status) == [.delivered])
            #expect(harness.records.attempts(of: states[0].id).map(\.number) == [1])
            let ids = transport.requests.filter { $0.url == endpoint.url }.map { $0.headers.first { $0.name == "X-Herald-Request-ID" }?.value }
            #expect(ids.count == 2 && ids[0] != nil && ids[0] == ids[1])
        }
    }

    @Test func aFailedFirstAttemptIsRecordedAndRetried() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport(status: 503)
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: .always)
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
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: .always)
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
            endpoints: [endpoint], slots: Slots(ceiling: 1, initial: 1, stall: .seconds(60)), client: transport, deliverBeforeStore: .always)
        let event = harness.event()
        try await twoCopies(of: event, harness, transport)
        #expect(transport.storedAtSend.count == 1)
        let states = harness.deliveries(to: endpoint.id)
        #expect(states.map(\.status) == [.delivered] && harness.records.attempts(of: states[0].id).count == 1)
        #expect(harness.slots.taken == 0)
    }

    /// One endpoint with one slot, sending first, its requests watched.
    struct OneSlot {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport()
        let harness: Harness

        init() {
            harness = Harness(
                endpoints: [endpoint], slots: Slots(ceiling: 1, initial: 1, stall: .seconds(60)), client: transport, deliverBeforeStore: .always)
            transport.watch(harness.records)
        }

        func delivery(of event: Event) -> UUID {
            DeliveryState.identity(tenant: harness.tenant, event: event.id, endpoint: endpoint.id).id
        }

        /// Handles `a`, whose request is held, and `b` once it waits for the slot (`during`
        /// runs then), and lets both finish.
        func handle(_ a: Event, then b: Event, during: () -> Void = {}) async throws {
            transport.hold()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await harness.handle(a) }
                try await until("a's request waits") { transport.waiting == 1 }
                group.addTask { try await harness.handle(b) }
                try await until("b waits for the slot") { harness.slots.waiting(endpoint.id) == 1 }
                during()
                transport.release()
                try await group.waitForAll()
            }
        }
    }

    /// An event whose only endpoint has no free slot, but its turn due within the bound,
    /// waits for it unstored and still goes before its store: written once with its
    /// attempt, no claim of its own. An endpoint not heard from yet gives no such promise.
    @Test func anEventWaitsUnstoredForASlotDueSoonAndStillGoesFirst() async throws {
        let one = OneSlot(), harness = one.harness, transport = one.transport
        let (first, second) = (harness.event(), harness.event())
        transport.hold()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Not heard from yet: the second event is stored and waits as before.
            group.addTask { try await harness.handle(first) }
            try await until("the first request waits") { transport.waiting == 1 }
            group.addTask { try await harness.handle(second) }
            try await until("the second event is stored without a slot") { harness.records.states[one.delivery(of: second)] != nil }
            transport.release()
            try await group.waitForAll()
        }
        #expect(transport.ownStoredAtSend == [false, true])
        let (a, b) = (harness.event(), harness.event())
        try await one.handle(a, then: b) {
            #expect(harness.records.states[one.delivery(of: b)] == nil, "b is not stored while it waits")
        }
        #expect(transport.ownStoredAtSend == [false, true, false, false])
        for id in [one.delivery(of: a), one.delivery(of: b)] {
            #expect(harness.records.states[id]?.status == .delivered && harness.records.attempts(of: id).map(\.number) == [1])
        }
        #expect(harness.slots.taken == 0 && harness.context.firstCopies.holding == 0)
    }

    /// A pause the endpoint asks for while an event waits for its slot (a 429's
    /// Retry-After) holds that event too: stored, then deferred unattempted.
    @Test func aPauseAskedForDuringTheWaitHoldsTheWaitingEvent() async throws {
        let one = OneSlot(), harness = one.harness
        try await harness.handle(harness.event())
        let (a, b) = (harness.event(), harness.event())
        one.transport.answer(Response(status: 429, headers: [("Retry-After", "120")]))
        try await one.handle(a, then: b)
        #expect(one.transport.ownStoredAtSend.count == 2, "nothing sent to b's endpoint during the pause")
        let idB = one.delivery(of: b)
        #expect(harness.records.states[idB]?.status == .pending && harness.records.attempts(of: idB).isEmpty)
        #expect(harness.publisher.messages.contains { $0.routingKey == harness.topology.deferQueue })
        #expect(harness.slots.taken == 0)
    }

    @Test func aSlowFirstAttemptLetsItsEventBeStoredMeanwhile() async throws {
        let endpoint = ProcessorTests.endpoint()
        let transport = WatchingTransport(held: true)
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: .always)
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

    /// Two endpoints: their exchanges run in child tasks and both are late for the store.
    @Test func slowFirstAttemptsToTwoEndpointsLetTheirEventBeStoredMeanwhile() async throws {
        let endpoints = [ProcessorTests.endpoint(url: "https://a.example/in"), ProcessorTests.endpoint(url: "https://b.example/in")]
        let transport = WatchingTransport(held: true)
        let harness = Harness(endpoints: endpoints, client: transport, deliverBeforeStore: .always)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await harness.context.firstAttemptDeadlines.run() }
            group.addTask { try await harness.handle(harness.event()) }
            try await until("the event is stored") { endpoints.allSatisfy { harness.deliveries(to: $0.id).map(\.status) == [.pending] } }
            #expect(transport.waiting == 2)
            transport.release()
            try await until("the attempts are recorded") { endpoints.allSatisfy { harness.deliveries(to: $0.id).map(\.status) == [.delivered] } }
            group.cancelAll()
        }
        for endpoint in endpoints {
            #expect(harness.records.attempts(of: harness.deliveries(to: endpoint.id)[0].id).map(\.number) == [1])
        }
    }

    /// With no one waiting (one endpoint, its exchange in the message's own task), the
    /// deadline takes the store over once, unless the exchange ended first.
    @Test func theDeadlineStoresForALoneExchangeOnlyIfItHasNotEnded() {
        let exchange = Exchange(
            endpointID: UUID(), startedAt: Date(), duration: .milliseconds(1), outcome: Outcome(verdict: .delivered, statusCode: 200), excerpt: [])
        let calls = Calls()
        let late = FirstAttempts(expected: 1) { calls.count.withLock { $0 += 1 } }
        late.expire()
        late.expire()
        #expect(calls.count.withLock { $0 } == 1)
        #expect(!late.made(0, exchange))
        #expect(late.isClosed)

        let inTime = FirstAttempts(expected: 1) { calls.count.withLock { $0 += 1 } }
        #expect(inTime.made(0, exchange))
        inTime.expire()
        #expect(inTime.close().count == 1)
        inTime.expire()
        #expect(calls.count.withLock { $0 } == 1)
    }

    @Test func firstCopiesRememberEveryEventWhoseStoreWasAttempted() async {
        let copies = FirstCopies()
        let stored = EventKey(tenant: UUID(), id: "evt_stored"), failed = EventKey(tenant: UUID(), id: "evt_failed")
        #expect(await copies.enter(stored) && copies.holding == 1)
        copies.leave(stored, made: nil)
        #expect(await !copies.enter(stored), "stored lately: the path that stores first")
        copies.remember(failed, made: nil)
        #expect(await !copies.enter(failed), "a store that failed may have committed")
        #expect(copies.holding == 0)
        copies.startSendingFirst()
        #expect(copies.sendingFirst == 1)
        let sent = EventKey(tenant: UUID(), id: "evt_sent")
        #expect(await copies.enter(sent))
        copies.leave(sent, made: nil, sentFirst: true)
        #expect(copies.sendingFirst == 0 && copies.holding == 0)
    }

    @Test func aWorkerIsAloneWhileFreshLooksShowNoOtherReplicaAfterItSaidSo() {
        let t0 = Date(timeIntervalSince1970: 1_000_000), i0 = ContinuousClock.now
        var solitude = Solitude(validity: .seconds(2))
        func look(_ others: Int, announced: Bool, _ seconds: Int) {
            solitude.look(others: others, announced: announced, asked: i0 + .seconds(seconds), at: t0 + Double(seconds))
        }
        #expect(solitude.aloneSince(at: i0) == nil && !solitude.intent, "never looked")
        look(0, announced: false, 0)
        #expect(solitude.intent && solitude.aloneSince(at: i0) == nil, "not before its heartbeat said so")
        look(0, announced: true, 1)
        #expect(solitude.aloneSince(at: i0 + .milliseconds(1500)) == t0 + 1)
        look(0, announced: true, 2)
        #expect(solitude.aloneSince(at: i0 + .milliseconds(2500)) == t0 + 1, "a run of looks without others keeps its start")
        #expect(solitude.aloneSince(at: i0 + .seconds(4)) == nil, "the last look is too old")
        look(0, announced: true, 10)
        #expect(solitude.aloneSince(at: i0 + .seconds(10)) == t0 + 10, "after a gap it starts over: another may have come and gone")
        look(1, announced: true, 11)
        #expect(solitude.aloneSince(at: i0 + .seconds(11)) == nil && !solitude.intent)
        look(0, announced: false, 12)
        #expect(solitude.aloneSince(at: i0 + .seconds(12)) == nil && solitude.intent)
        look(0, announced: true, 13)
        #expect(solitude.aloneSince(at: i0 + .seconds(13)) == t0 + 13)
    }

    @Test func theReplicasViewLeavesItselfOutAndCountsReplicasNotConsumingYet() {
        let replicas = Replicas(replica: "me", interval: .seconds(10), look: .seconds(1), countsOnSolitude: true)
        let now = Date(), asked = ContinuousClock.now
        replicas.update(consuming: [], live: [], alone: [], announced: false, asked: asked, at: now)
        #expect(replicas.alone && replicas.aloneSince(at: asked) == nil, "it says so first")
        replicas.update(consuming: [], live: ["me"], alone: ["me"], announced: true, asked: asked, at: now)
        #expect(replicas.aloneSince(at: asked) == now, "its own heartbeat does not count")
        replicas.update(consuming: ["me"], live: ["me", "starting"], alone: ["me"], announced: true, asked: asked, at: now)
        #expect(!replicas.alone && replicas.aloneSince(at: asked) == nil)
        let never = Replicas(replica: "me", interval: .seconds(10), look: .seconds(1), countsOnSolitude: false)
        never.update(consuming: [], live: [], alone: [], announced: true, asked: asked, at: now)
        #expect(!never.alone && never.aloneSince(at: asked) == nil, "only with auto")
    }

    @Test func aStartingReplicaWaitsUntilNoOtherCountsOnBeingAlone() async throws {
        let replicas = Replicas(replica: "b", interval: .seconds(100), look: .seconds(10), countsOnSolitude: true)
        let waiting = Task { try await replicas.cleared() }
        replicas.update(consuming: [], live: ["a", "b"], alone: ["a", "b"], announced: false)
        #expect(!replicas.isCleared, "a counts on being alone")
        replicas.update(consuming: [], live: ["a", "b"], alone: ["b"], announced: false)
        #expect(try await waiting.value, "a saw b")
        #expect(try await replicas.cleared(), "and for good")
        let cancelled = Task { try await Replicas(replica: "d", interval: .seconds(10), look: .seconds(1), countsOnSolitude: true).cleared() }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        let stuck = Replicas(replica: "e", interval: .milliseconds(30), look: .milliseconds(3), countsOnSolitude: true)
        stuck.update(consuming: [], live: ["a", "e"], alone: ["a"], announced: false)
        #expect(try await !stuck.cleared(), "not held back beyond three intervals")
    }

    @Test func firstCopiesCoverIDsMadeAfterWhatTheyForgot() {
        let start = Date(timeIntervalSince1970: 1_000_000)
        let copies = FirstCopies(startedAt: start)
        #expect(!copies.covers(start - 1) && !copies.covers(start) && copies.covers(start + 0.001))
        // The memory full, the next store forgets the oldest: stored at `start + 1`.
        for n in 0..<FirstCopies.remembered {
            copies.remember(EventKey(tenant: UUID(), id: "evt_\(n)"), made: nil, at: start + 1 + Double(n) / 1_000_000)
        }
        #expect(copies.covers(start + 0.5))
        copies.remember(EventKey(tenant: UUID(), id: "evt_next"), made: nil, at: start + 2)
        #expect(!copies.covers(start + 0.5) && !copies.covers(start + 1) && copies.covers(start + 1.001))
        // An id made later than its store (a producer's clock ahead) is forgotten as of then.
        copies.remember(EventKey(tenant: UUID(), id: "evt_ahead"), made: start + 60, at: start + 3)
        for n in 0..<FirstCopies.remembered {
            copies.remember(EventKey(tenant: UUID(), id: "evt_later_\(n)"), made: nil, at: start + 4)
        }
        #expect(!copies.covers(start + 60) && copies.covers(start + 60.001))
    }

    /// With `auto`, only while the heartbeats show no other replica, and only for events
    /// whose id was made since: a copy taken by another replica before cannot be in memory.
    @Test func autoSendsFirstOnlyWhileTheWorkerIsAlone() async throws {
        // A look counts for twice its interval: long enough for the steps below on a busy machine.
        let replicas = Replicas(replica: "me", interval: .seconds(10), look: .seconds(10), countsOnSolitude: true)
        func sentFirst(made: Date = Date(), id: String? = nil) async throws -> Bool {
            let transport = WatchingTransport()
            let harness = Harness(endpoints: [ProcessorTests.endpoint()], client: transport, deliverBeforeStore: .auto, replicas: replicas)
            transport.watch(harness.records)
            try await harness.handle(Event(id: id ?? Event.generateID(at: made), type: "invoice.paid", tenantID: harness.tenant, data: Array("{}".utf8)))
            #expect(transport.storedAtSend.count == 1)
            #expect(harness.context.firstCopies.sendingFirst == 0)
            return transport.storedAtSend == [false]
        }
        #expect(try await !sentFirst(), "no heartbeat read yet")
        replicas.update(consuming: ["me"], live: ["me", "other"], alone: ["me"], announced: true)
        #expect(try await !sentFirst(), "another replica is live")
        replicas.update(consuming: ["me"], live: ["me"], alone: [], announced: false)
        #expect(try await !sentFirst(), "its heartbeat has not said it is alone yet")
        // Alone since a second ago (ids hold milliseconds).
        let since = Date() - 1
        replicas.update(consuming: ["me"], live: ["me"], alone: ["me"], announced: true, at: since)
        #expect(try await sentFirst())
        #expect(try await !sentFirst(made: since - 0.01), "its id was made while another replica was live")
        #expect(try await !sentFirst(made: Date() + 60), "an id made later than now")
        #expect(try await !sentFirst(id: "evt_chosen_by_the_crm"), "no time in the id")
    }

    /// A second copy waits for the first's store, not for its requests.
    @Test func aCopyWaitsForTheStoreNotForTheRequests() async throws {
        let transport = WatchingTransport(held: true)
        let endpoint = ProcessorTests.endpoint()
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: .always)
        transport.watch(harness.records)
        let event = harness.event()
        let done = Flag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Redelivered: stored first, its request then held by the receiver.
            group.addTask { try await harness.handle(event, redelivered: true) }
            try await until("the first copy's request waits") { transport.waiting == 1 }
            group.addTask {
                try await harness.handle(event)
                done.set()
            }
            try await until("the second copy is done") { done.take() }
            #expect(transport.waiting == 1 && transport.storedAtSend == [true], "it sent nothing")
            transport.release()
            try await group.waitForAll()
        }
        #expect(harness.deliveries(to: endpoint.id).map(\.status) == [.delivered])
    }

    @Test func anEventOlderThanTheWorkersMemoryIsStoredFirst() async throws {
        let transport = WatchingTransport()
        let harness = Harness(endpoints: [ProcessorTests.endpoint()], client: transport, deliverBeforeStore: .always)
        transport.watch(harness.records)
        try await harness.handle(Event(id: Event.generateID(at: Date(timeIntervalSinceNow: -60)), type: "invoice.paid", tenantID: harness.tenant, data: Array("{}".utf8)))
        #expect(transport.storedAtSend == [true])
    }

    /// A copy that came back to the worker is stored first; a later copy published again
    /// finds it in memory and sends nothing.
    @Test func aCopyStoredFirstIsRememberedForTheNextOne() async throws {
        let transport = WatchingTransport()
        let endpoint = ProcessorTests.endpoint()
        let harness = Harness(endpoints: [endpoint], client: transport, deliverBeforeStore: .always)
        transport.watch(harness.records)
        let event = harness.event()
        try await harness.handle(event, redelivered: true)
        try await harness.handle(event)
        #expect(transport.storedAtSend == [true], "one request, after the store")
        #expect(harness.deliveries(to: endpoint.id).map(\.status) == [.delivered])
        #expect(harness.context.firstCopies.holding == 0)
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

private final class Calls: Sendable {
    let count = Mutex(0)
}
