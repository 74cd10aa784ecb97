import HeraldAMQP
import Delivery
import HeraldEvents
import FanOut
import Foundation
import HTTPClient
import Logging
import Records
import Synchronization
import Testing
import TestSupport
import Topology
@testable import Worker

/// The worker's processing of one message, without sockets: the record in memory,
/// scripted HTTP answers, and a publisher that keeps what it was asked to publish.
@Suite("Processor (no sockets)")
struct ProcessorTests {
    /// Answers each request with what `answer` says, and keeps the requests.
    final class ScriptedTransport: WebhookTransport {
        let answer: @Sendable (Request) -> Result<Response, TransferError>
        private let sent = Mutex<[Request]>([])

        init(_ answer: @escaping @Sendable (Request) -> Result<Response, TransferError> = { _ in .success(Response(status: 204)) }) {
            self.answer = answer
        }

        var requests: [Request] { sent.withLock { $0 } }

        func execute(_ request: Request) async throws(TransferError) -> Response {
            sent.withLock { $0.append(request) }
            return try answer(request).get()
        }
    }

    /// Keeps every confirmed publish: retries, deferrals, parked messages. While `held`,
    /// a publish waits until `release()`, as one waits for a slow broker's confirm.
    final class RecordingPublisher: ConfirmedPublishing {
        private let published = Mutex<[(message: Message, routingKey: String)]>([])
        private let gate = Mutex<(held: Bool, waiting: Int)>((false, 0))

        var messages: [(message: Message, routingKey: String)] { published.withLock { $0 } }
        /// Publishes waiting at the gate.
        var waiting: Int { gate.withLock { $0.waiting } }

        func hold() { gate.withLock { $0.held = true } }
        func release() { gate.withLock { $0.held = false } }

        func publish(_ message: Message, exchange: String, routingKey: String, mandatory: Bool) async throws {
            if gate.withLock({ state in
                if state.held { state.waiting += 1 }
                return state.held
            }) {
                let deadline = ContinuousClock.now + .seconds(30)
                while gate.withLock({ $0.held }) && ContinuousClock.now < deadline { await Task.yield() }
                gate.withLock { $0.waiting -= 1 }
            }
            published.withLock { $0.append((message, routingKey)) }
        }
    }

    /// One tenant with endpoints, a processor and what it touches.
    struct Harness {
        let tenant = UUID()
        let records: MemoryRecords
        let transport: ScriptedTransport
        let publisher = RecordingPublisher()
        let slots: Slots
        let topology = Topology(prefix: "unit", ladder: .standard)
        let processor: Processor
        let context: WorkerContext
        /// The endpoints as the directory serves them (with the harness's tenant).
        let endpoints: [Endpoint]

        init(
            endpoints: [Endpoint] = [], knownTenant: Bool = true, transport: ScriptedTransport = ScriptedTransport(),
            policy: DisablePolicy = DisablePolicy(threshold: 3, window: .zero), slots: Slots = Slots(ceiling: 10, initial: 10, stall: .seconds(60)),
            logger: Logger? = nil, client: (any WebhookTransport)? = nil, deliverBeforeStore: DeliverBeforeStore = .never,
            replicas: Replicas? = nil
        ) {
            let tenant = self.tenant
            let endpoints = endpoints.map { endpoint -> Endpoint in
                var endpoint = endpoint
                endpoint.tenantID = tenant
                return endpoint
            }
            records = MemoryRecords(policy: policy)
            self.transport = transport
            self.slots = slots
            self.endpoints = endpoints
            let directory = Directory(timeToLive: .zero) { asked in knownTenant && asked == tenant ? endpoints : nil }
            let logger = logger ?? {
                var quiet = Logger(label: "test")
                quiet.logLevel = .critical
                return quiet
            }()
            var context = WorkerContext(
                directory: directory, records: records, client: client ?? transport, requests: RequestSettings(), topology: topology,
                limits: EventLimits(), slots: slots, logger: logger)
            context.deliverBeforeStore = deliverBeforeStore
            context.replicas = replicas
            // A worker that started before the events occurred.
            context.firstCopies = FirstCopies(startedAt: Date(timeIntervalSinceNow: -1))
            self.context = context
            processor = Processor(context: context, publisher: publisher, maxMessageBytes: 64 * 1024)
        }

        func event(_ type: String = "invoice.paid", id: String = Event.generateID()) -> Event {
            Event(id: id, type: type, tenantID: tenant, data: Array(#"{"amount":1.10}"#.utf8))
        }

        /// The message a producer publishes for `event`.
        func handle(_ event: Event, redelivered: Bool = false) async throws {
            let message = Message(body: WireFormat.encode(event))
            try await processor.handle(HeraldAMQP.Delivery(message: message, redelivered: redelivered, routingKey: event.type))
        }

        /// The message a retry, a deferral or a resend puts on the work queue.
        func handle(retry delivery: UUID, attempt: Int, manual: Bool = false, endpoint: UUID? = nil, redelivered: Bool = false) async throws {
            let message = WorkMessage.retry(delivery: delivery, attempt: attempt, manual: manual, endpoint: endpoint)
            try await processor.handle(HeraldAMQP.Delivery(message: message, redelivered: redelivered, routingKey: topology.workQueue))
        }

        func deliveries(to endpoint: UUID) -> [DeliveryState] {
            records.states.values.filter { $0.endpointID == endpoint }
        }
    }

    static func endpoint(_ types: [String] = ["*"], url: String = "https://receiver.example/in", enabled: Bool = true, disabledAt: Date? = nil)
        -> Endpoint
    {
        Endpoint(
            id: UUID(), tenantID: UUID(), url: url, eventTypes: types, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", enabled: enabled,
            disabledAt: disabledAt)
    }

    @Test func anEventGoesToEveryMatchingEndpointAndIsRecordedDelivered() async throws {
        let invoices = Self.endpoint(["invoice.*"], url: "https://a.example/in")
        let all = Self.endpoint(["*"], url: "https://b.example/in")
        let bookings = Self.endpoint(["booking.confirmed"], url: "https://c.example/in")
        let harness = Harness(endpoints: [invoices, all, bookings])
        let event = harness.event()
        try await harness.handle(event)

        #expect(Set(harness.transport.requests.map(\.url)) == ["https://a.example/in", "https://b.example/in"])
        // The receiver gets the event's bytes exactly, signed.
        for request in harness.transport.requests {
            #expect(request.body == event.data)
            #expect(request.headers.contains { $0.name.lowercased() == "webhook-signature" })
        }
        for endpoint in [invoices, all] {
            let states = harness.deliveries(to: endpoint.id)
            #expect(states.map(\.status) == [.delivered])
            let attempts = harness.records.attempts(of: states[0].id)
            #expect(attempts.map(\.number) == [1] && attempts[0].trigger == .automatic)
        }
        #expect(harness.deliveries(to: bookings.id).isEmpty)
        #expect(harness.publisher.messages.isEmpty)
        #expect(harness.slots.taken == 0)
    }

    @Test func aSecondCopyOfTheEventSendsNothingAgain() async throws {
        let endpoint = Self.endpoint()
        let harness = Harness(endpoints: [endpoint])
        let event = harness.event()
        try await harness.handle(event)
        try await harness.handle(event)
        try await harness.handle(event, redelivered: true)
        #expect(harness.transport.requests.count == 1)
        #expect(harness.deliveries(to: endpoint.id).map(\.status) == [.delivered])
    }

    @Test func aTransientFailureSchedulesTheNextAttemptOnTheFirstRung() async throws {
        let endpoint = Self.endpoint()
        let harness = Harness(endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: 503)) })
        try await harness.handle(harness.event())

        let state = try #require(harness.deliveries(to: endpoint.id).first)
        #expect(state.status == .retrying)
        let published = try #require(harness.publisher.messages.first)
        #expect(harness.publisher.messages.count == 1)
        #expect(published.routingKey == harness.topology.retryQueue(rung: 0))
        #expect(try WorkMessage.parse(published.message, limits: EventLimits()) == .delivery(id: state.id, attempt: 2, manual: false, endpoint: endpoint.id))
        #expect(harness.records.attempts(of: state.id).first?.outcome.statusCode == 503)
        #expect(harness.slots.taken == 0)
    }

    /// The race the cluster's fault run lost deliveries to: a holder whose connection died
    /// (its message already redelivered here) claims the attempt between this holder's
    /// read and its claim, then can neither send nor schedule anything. The redelivered
    /// message, the only one left, must make the attempt itself, with the same request id.
    @Test func aRedeliveredMessageWhoseClaimAHolderWithoutConnectionWonStillMakesTheAttempt() async throws {
        let endpoint = Self.endpoint()
        let answers = Mutex([503, 200])
        let harness = Harness(
            endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: answers.withLock { $0.removeFirst() })) })
        try await harness.handle(harness.event())
        let state = try #require(harness.deliveries(to: endpoint.id).first)
        #expect(state.status == .retrying && state.attempts == 1)
        harness.records.claimBeforeNext(AttemptClaim(delivery: state.id, attempt: 2))
        try await harness.handle(retry: state.id, attempt: 2, endpoint: endpoint.id, redelivered: true)
        let requests = harness.transport.requests
        #expect(requests.count == 2)
        let ids = requests.map { $0.headers.first { $0.name == "X-Herald-Request-ID" }?.value }
        #expect(ids[0] != nil && ids[0] == ids[1])
        #expect(harness.records.attempts(of: state.id).map(\.number) == [1, 2])
        #expect(harness.records.states[state.id]?.status == .delivered)
        #expect(harness.slots.taken == 0)
    }

    /// The race again, with the redelivered message deferred (no free slot) before the
    /// holder without a connection claims: its deferral, back as a fresh message, says it
    /// came from a redelivery, so its taker makes the claimed, unrecorded attempt.
    @Test func aDeferralOfARedeliveredMessageResumesAsARedelivery() async throws {
        let endpoint = Self.endpoint()
        // Any request on the wire counts as stalled: a retry finding no free slot defers.
        let slots = Slots(ceiling: 1, stall: .zero)
        let answers = Mutex([503, 200])
        let harness = Harness(
            endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: answers.withLock { $0.removeFirst() })) },
            slots: slots)
        try await harness.handle(harness.event())
        let state = try #require(harness.deliveries(to: endpoint.id).first)
        let busy = try #require(slots.tryLease(endpoint.id))
        slots.sending(endpoint.id)
        try await harness.handle(retry: state.id, attempt: 2, endpoint: endpoint.id, redelivered: true)
        let deferred = try #require(harness.publisher.messages.last)
        #expect(deferred.routingKey == harness.topology.deferQueue)
        guard case .deferred(_, let deferrals) = try WorkMessage.parse(deferred.message, limits: EventLimits()) else {
            Issue.record("not a deferral")
            return
        }
        #expect(deferrals.map(\.redelivered) == [true])
        busy.release(after: .cancelled)
        // The holder without a connection claims attempt 2 now, and sends nothing.
        #expect(try await harness.records.claim([AttemptClaim(delivery: state.id, attempt: 2)]) == [true])
        try await harness.processor.handle(HeraldAMQP.Delivery(message: deferred.message, redelivered: false, routingKey: harness.topology.workQueue))
        #expect(harness.transport.requests.count == 2)
        #expect(harness.records.attempts(of: state.id).map(\.number) == [1, 2])
        #expect(harness.records.states[state.id]?.status == .delivered)
        #expect(slots.taken == 0)
    }

    /// The same race for a first copy (not redelivered): the holder that claimed has its
    /// own message, so this copy sends nothing and publishes nothing.
    @Test func aFirstCopyWhoseClaimAnotherHolderWonSendsNothing() async throws {
        let endpoint = Self.endpoint()
        let harness = Harness(endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: 503)) })
        try await harness.handle(harness.event())
        let state = try #require(harness.deliveries(to: endpoint.id).first)
        let published = harness.publisher.messages.count
        harness.records.claimBeforeNext(AttemptClaim(delivery: state.id, attempt: 2))
        try await harness.handle(retry: state.id, attempt: 2, endpoint: endpoint.id)
        #expect(harness.transport.requests.count == 1)
        #expect(harness.publisher.messages.count == published)
        #expect(harness.records.states[state.id]?.attempts == 2)
        #expect(harness.slots.taken == 0)
    }

    /// A request the worker cut short (its session ended while it was on the wire) is not
    /// the endpoint's failure: no attempt is logged, no retry scheduled, nothing counted
    /// against the endpoint; the message returns (the processing throws) and its next
    /// holder makes the claimed attempt with the same request id.
    @Test func aRequestCutShortIsNoAttemptAndItsMessageReturns() async throws {
        let endpoint = Self.endpoint()
        let calls = Mutex(0)
        let transport = ScriptedTransport { _ in
            calls.withLock { count in
                count += 1
                return count == 1 ? .failure(TransferError(.cancelled, message: "cancelled")) : .success(Response(status: 200))
            }
        }
        let harness = Harness(endpoints: [endpoint], transport: transport)
        let event = harness.event()
        await #expect(throws: CancellationError.self) { try await harness.handle(event) }
        let state = try #require(harness.deliveries(to: endpoint.id).first)
        #expect(state.status == .pending && state.attempts == 1)
        #expect(harness.records.attempts(of: state.id).isEmpty)
        #expect(harness.publisher.messages.isEmpty)
        #expect(harness.slots.taken == 0)
        #expect(harness.slots.lane(endpoint.id)?.requesting == 0)
        try await harness.handle(event, redelivered: true)
        let requests = harness.transport.requests
        #expect(requests.count == 2)
        let ids = requests.map { $0.headers.first { $0.name == "X-Herald-Request-ID" }?.value }
        #expect(ids[0] != nil && ids[0] == ids[1])
        #expect(harness.records.attempts(of: state.id).map(\.number) == [1])
        #expect(harness.records.states[state.id]?.status == .delivered)
    }

    /// A holder whose session ended (its task cancelled) claims nothing: the attempt stays
    /// free for the message's next holder.
    @Test func aCancelledHolderClaimsNothing() async throws {
        let endpoint = Self.endpoint()
        let harness = Harness(endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: 503)) })
        try await harness.handle(harness.event())
        let state = try #require(harness.deliveries(to: endpoint.id).first)
        let (gate, open) = AsyncStream<Void>.makeStream()
        let holder = Task {
            // Ends when the task is cancelled: the handling below starts cancelled.
            for await _ in gate {}
            try await harness.handle(retry: state.id, attempt: 2)
        }
        holder.cancel()
        open.finish()
        await #expect(throws: CancellationError.self) { try await holder.value }
        #expect(harness.records.states[state.id]?.attempts == 1)
        #expect(harness.transport.requests.count == 1)
        #expect(harness.slots.taken == 0)
    }

    @Test func theRetryMakesTheNextAttemptOnceAndAResendIsManual() async throws {
        let endpoint = Self.endpoint()
        let answers = Mutex([503, 200, 200])
        let transport = ScriptedTransport { _ in .success(Response(status: answers.withLock { $0.removeFirst() })) }
        let harness = Harness(endpoints: [endpoint], transport: transport)
        try await harness.handle(harness.event())
        let id = try #require(harness.deliveries(to: endpoint.id).first?.id)

        try await harness.handle(retry: id, attempt: 2, endpoint: endpoint.id)
        // A duplicate of the retry message (the broker redelivered a copy) sends nothing.
        try await harness.handle(retry: id, attempt: 2, endpoint: endpoint.id)
        #expect(harness.transport.requests.count == 2)
        #expect(harness.records.states[id]?.status == .delivered)

        // A resend reopens the delivery; its attempt is recorded as manual.
        _ = try await harness.records.reopenForResend(tenant: harness.tenant, id: id)
        try await harness.handle(retry: id, attempt: 3, manual: true)
        #expect(harness.records.attempts(of: id).map(\.trigger) == [.automatic, .automatic, .manual])
        #expect(harness.records.states[id]?.status == .delivered)
        #expect(harness.slots.taken == 0)
    }

    @Test(arguments: [(404, DeliveryState.Status.failed, false), (410, .failed, true), (200, .delivered, false)])
    func aFinalAnswerSchedulesNothing(_ status: Int, _ expected: DeliveryState.Status, _ disables: Bool) async throws {
        let endpoint = Self.endpoint()
        let harness = Harness(endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: status)) })
        try await harness.handle(harness.event())
        #expect(harness.deliveries(to: endpoint.id).map(\.status) == [expected])
        // No retry; only the operator event of an endpoint disabled.
        #expect(harness.publisher.messages.map(\.routingKey) == (disables ? ["endpoint.disabled"] : []))
        #expect(harness.records.disabledEndpoints == (disables ? [endpoint.id] : []))
    }

    @Test func aTimeoutIsTransientAndLoggedAsATimeout() async throws {
        let endpoint = Self.endpoint()
        let harness = Harness(
            endpoints: [endpoint], transport: ScriptedTransport { _ in .failure(TransferError(.timeout, message: "no answer within 10 s")) })
        try await harness.handle(harness.event())
        let state = try #require(harness.deliveries(to: endpoint.id).first)
        #expect(state.status == .retrying)
        #expect(harness.records.attempts(of: state.id).first?.outcome.errorClass == .timeout)
        #expect(harness.slots.taken == 0)
    }

    @Test func aDisabledEndpointsDeliveryIsSkippedWithoutARequest() async throws {
        let disabled = Self.endpoint(enabled: false, disabledAt: Date())
        let harness = Harness(endpoints: [disabled])
        try await harness.handle(harness.event())
        #expect(harness.deliveries(to: disabled.id).map(\.status) == [.skipped])
        #expect(harness.transport.requests.isEmpty)
    }

    @Test func anEventForAnUnknownTenantIsParkedWithTheReason() async throws {
        let harness = Harness(endpoints: [Self.endpoint()], knownTenant: false)
        try await harness.handle(harness.event())
        let parked = try #require(harness.publisher.messages.first)
        #expect(parked.routingKey == harness.topology.parkingQueue)
        #expect(parked.message.headers[Parked.reasonHeader]?.string?.hasPrefix("tenant_id: no tenant") == true)
        #expect(harness.records.states.isEmpty && harness.transport.requests.isEmpty)
    }

    @Test func anUnreadableMessageIsParkedNotRetried() async throws {
        let harness = Harness(endpoints: [Self.endpoint()])
        try await harness.processor.handle(HeraldAMQP.Delivery(message: Message(body: Array("not json".utf8)), routingKey: "invoice.paid"))
        let parked = try #require(harness.publisher.messages.first)
        #expect(parked.routingKey == harness.topology.parkingQueue)
        #expect(parked.message.headers[Parked.fromHeader]?.string == "invoice.paid")
        #expect(harness.records.states.isEmpty)
    }

    @Test func aMessageReturnedAsOftenAsTheLimitAllowsIsParkedUnprocessed() async throws {
        let harness = Harness(endpoints: [Self.endpoint()])
        let limit = harness.topology.deliveryLimit
        let event = harness.event()
        var message = Message(body: WireFormat.encode(event))
        message.headers["x-delivery-count"] = .int(Int64(limit))
        try await harness.processor.handle(HeraldAMQP.Delivery(message: message, redelivered: true, routingKey: event.type))
        let parked = try #require(harness.publisher.messages.first)
        #expect(parked.routingKey == harness.topology.parkingQueue)
        let reason = try #require(parked.message.headers[Parked.reasonHeader]?.string)
        #expect(reason.contains("unprocessed \(limit) times (HERALD_DELIVERY_LIMIT \(limit))"))
        // The broker's count is not carried into the parking queue (a replay starts afresh).
        #expect(parked.message.headers["x-delivery-count"] == nil)
        #expect(harness.records.states.isEmpty && harness.transport.requests.isEmpty)
        let published = harness.publisher.messages.count

        // One return fewer: processed as any other.
        message.headers["x-delivery-count"] = .int(Int64(limit - 1))
        try await harness.processor.handle(HeraldAMQP.Delivery(message: message, redelivered: true, routingKey: event.type))
        #expect(harness.publisher.messages.count == published)
        #expect(harness.records.states.count == 1)
    }

    @Test func aRetryForAStalledEndpointIsDeferred() async throws {
        let endpoint = Self.endpoint()
        // Any request on the wire counts as stalled: a retry finding no free slot defers.
        let slots = Slots(ceiling: 1, stall: .zero)
        let harness = Harness(endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: 503)) }, slots: slots)
        try await harness.handle(harness.event())
        let id = try #require(harness.deliveries(to: endpoint.id).first?.id)
        let busy = try #require(slots.tryLease(endpoint.id))
        slots.sending(endpoint.id)

        try await harness.handle(retry: id, attempt: 2, endpoint: endpoint.id)
        let deferred = try #require(harness.publisher.messages.last)
        #expect(deferred.routingKey == harness.topology.deferQueue)
        #expect(harness.transport.requests.count == 1, "nothing sent while the endpoint is at its limit")
        busy.release(after: .unused)
        #expect(slots.taken == 0)
    }

    /// A 429 with Retry-After pauses the endpoint in this worker: the next event's delivery
    /// to it is deferred unattempted, while another endpoint of the tenant still gets its.
    @Test func a429WithRetryAfterPausesTheEndpoint() async throws {
        let limited = Self.endpoint(url: "https://limited.example/in")
        let other = Self.endpoint(url: "https://other.example/in")
        let transport = ScriptedTransport { request in
            request.url.hasPrefix("https://limited") ? .success(Response(status: 429, headers: [("Retry-After", "120")])) : .success(Response(status: 204))
        }
        let harness = Harness(endpoints: [limited, other], transport: transport)
        try await harness.handle(harness.event())
        #expect(harness.transport.requests.count == 2)
        try await harness.handle(harness.event())
        #expect(harness.transport.requests.filter { $0.url.hasPrefix("https://limited") }.count == 1, "nothing more during the pause")
        #expect(harness.transport.requests.filter { $0.url.hasPrefix("https://other") }.count == 2)
        #expect(harness.publisher.messages.contains { $0.routingKey == harness.topology.deferQueue })
        let paused = try #require(harness.slots.lane(limited.id)?.rate.pausedUntil)
        #expect(paused - ContinuousClock.now > .seconds(100))
    }

    /// Deliveries deferred by concurrent messages leave as one message per endpoint, and
    /// that message, back from the defer queue, takes each delivery as its own.
    @Test func deferredDeliveriesTravelTogetherAndComeBackEachOnItsOwn() async throws {
        let endpoint = Self.endpoint()
        let slots = Slots(ceiling: 1, stall: .zero)
        let harness = Harness(endpoints: [endpoint], slots: slots)
        // The endpoint has a request on the wire and no answer: every delivery is deferred.
        let busy = try #require(slots.tryLease(endpoint.id))
        slots.sending(endpoint.id)
        // The first deferral's publish waits for its confirm while the other 19 queue behind it.
        harness.publisher.hold()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { try await harness.handle(harness.event()) } }
            let deadline = ContinuousClock.now + .seconds(30)
            while !(harness.publisher.waiting == 1 && harness.processor.queuedDeferrals == 19) && ContinuousClock.now < deadline {
                await Task.yield()
            }
            #expect(harness.processor.queuedDeferrals == 19)
            harness.publisher.release()
            try await group.waitForAll()
        }
        let deferred = harness.publisher.messages.filter { $0.routingKey == harness.topology.deferQueue }
        var ids: [UUID] = []
        for message in deferred {
            guard case .deferred(let to, let deliveries) = try WorkMessage.parse(message.message, limits: EventLimits()) else {
                Issue.record("not a deferred batch")
                return
            }
            #expect(to == endpoint.id)
            ids += deliveries.map(\.id)
        }
        #expect(Set(ids) == Set(harness.deliveries(to: endpoint.id).map(\.id)) && ids.count == 20)
        #expect(deferred.count < 20, "\(deferred.count) messages for 20 deferrals")
        #expect(harness.transport.requests.isEmpty)
        // Back from the defer queue with the endpoint free: each delivery is made, or (the
        // endpoint busy again at once) deferred again; none is lost.
        busy.release(after: .answered(.milliseconds(1), delivered: true))
        let before = harness.publisher.messages.count
        for message in deferred {
            try await harness.processor.handle(HeraldAMQP.Delivery(message: message.message, routingKey: harness.topology.workQueue))
        }
        var again: [UUID] = []
        for message in harness.publisher.messages.dropFirst(before) where message.routingKey == harness.topology.deferQueue {
            if case .deferred(_, let deliveries) = try WorkMessage.parse(message.message, limits: EventLimits()) { again += deliveries.map(\.id) }
        }
        let made = harness.transport.requests.compactMap { $0.headers.first { $0.name == "webhook-id" }?.value }.compactMap(UUID.init(uuidString:))
        #expect(!made.isEmpty)
        #expect(Set(made).union(again) == Set(ids))
        #expect(Set(made).isDisjoint(with: again))
    }

    /// An endpoint's limit learns from the exchange as the transport timed it, not from
    /// how long the worker took to resume the delivery: answers that take the endpoint a
    /// millisecond while the worker is slow to come back leave the limit where it was.
    @Test func theLimitLearnsFromTheEndpointsTimeNotTheWorkersDelay() async throws {
        let endpoint = Self.endpoint()
        let answered = Box(0)
        let transport = ScriptedTransport { _ in
            // After five answers the worker is slow: 20 ms between the answer and its
            // handling, which a busy machine adds and the endpoint does not.
            if answered.withLock({ $0 += 1; return $0 }) > 5 { usleep(20_000) }
            return .success(Response(status: 204, duration: .milliseconds(1)))
        }
        let slots = Slots(ceiling: 20, initial: 4, stall: .seconds(3600))
        let harness = Harness(endpoints: [endpoint], transport: transport, slots: slots)
        for _ in 0..<15 { try await harness.handle(harness.event()) }
        #expect(harness.transport.requests.count == 15)
        #expect(slots.lane(endpoint.id)?.limit.limit == 4, "ten slow resumptions are not a slower endpoint")
    }

    @Test func aRedeliveredClaimWithoutRecordRepeatsTheSameRequest() async throws {
        let endpoint = Self.endpoint()
        let harness = Harness(endpoints: [endpoint], transport: ScriptedTransport { _ in .success(Response(status: 503)) })
        try await harness.handle(harness.event())
        let state = try #require(harness.deliveries(to: endpoint.id).first)
        // Attempt 2 was claimed by a worker that died before recording it.
        #expect(try await harness.records.claim([AttemptClaim(delivery: state.id, attempt: 2)]) == [true])
        try await harness.handle(retry: state.id, attempt: 2, redelivered: true)
        let requests = harness.transport.requests
        #expect(requests.count == 2)
        let ids = requests.map { $0.headers.first { $0.name == "X-Herald-Request-ID" }?.value }
        #expect(ids[0] != nil && ids[0] == ids[1], "the repeat carries the request id of the claimed attempt")
        #expect(harness.records.attempts(of: state.id).map(\.number) == [1, 2])
    }
}
