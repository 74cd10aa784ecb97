package import HeraldAMQP
public import Delivery
public import HeraldEvents
public import FanOut
public import Foundation
import HTTPClient
public import Logging
import Metrics
import Postgres
public import Records
public import Topology
import HeraldSupport
import Tracing

/// Everything a worker needs to process messages, shared by its connections.
public struct WorkerContext: Sendable {
    public var directory: Directory
    /// Where events, claims and attempts are written: PostgreSQL, or memory in unit tests.
    public var records: any PipelineRecords
    /// Where webhook requests go: libcurl, or scripted answers in unit tests.
    public var client: any WebhookTransport
    public var requests: RequestSettings
    public var topology: Topology
    public var limits: EventLimits
    /// Requests in flight per endpoint, shared by the worker's connections.
    public var slots: Slots
    /// The tenant whose endpoints receive operator events as webhooks; nil: none.
    public var operatorTenant: UUID?
    public var logger: Logger
    /// When first copies of events send their first attempts before they are stored
    /// (`HERALD_DELIVER_BEFORE_STORE`); `auto` needs `replicas`.
    public var deliverBeforeStore: DeliverBeforeStore = .never
    /// How long the store of an event whose deliveries were all sent before it waits for
    /// company (`HERALD_STORE_LINGER`); zero: not at all.
    public var storeLinger: Duration = .zero
    /// How long the consumer may wait before reading messages that arrived while less than
    /// a quarter of its window is in progress, for the next to come with them
    /// (`HERALD_CONSUMER_LINGER`, `ReadLinger`); zero: not at all.
    public var consumerLinger: Duration = .zero
    /// What the heartbeats show of the other replicas: which shards to read, whether this
    /// worker is alone. Nil: no heartbeats (one worker reads every shard, and is never
    /// taken to be alone).
    public var replicas: Replicas?
    /// Events whose copy is held until it is stored, and those stored lately, shared by the
    /// worker's connections.
    package var firstCopies = FirstCopies()
    /// Ends the stores' waits for first attempts that take long; run by `WorkerService`.
    package let firstAttemptDeadlines = FirstAttemptDeadlines()

    /// What this worker's heartbeat says: it counts on being alone (`auto`), from the last
    /// look or because first copies it sent are not stored yet.
    public var countsOnBeingAlone: Bool {
        guard let replicas, replicas.countsOnSolitude else { return false }
        return replicas.alone || firstCopies.sendingFirst > 0
    }

    /// Whether the first copy of `event` may be sent before it is stored: no earlier copy
    /// can have been stored anywhere but in this worker's memory (`FirstCopies`), where
    /// `fanOut` looks first. That needs a time every copy shares, the one in a version 7
    /// id (`Event.idTime`; not `occurredAt`, which a producer may fill anew), and a copy
    /// stored after it: an id made later than now is stored first. With `always`, only
    /// this worker's memory is asked.
    func sendsFirst(made: Date?, at now: Date = Date()) -> Bool {
        guard deliverBeforeStore != .never, let made, made <= now else { return false }
        if deliverBeforeStore == .auto {
            guard let since = replicas?.aloneSince(), made > since else { return false }
        }
        return firstCopies.covers(made)
    }

    package init(
        directory: Directory, records: any PipelineRecords, client: any WebhookTransport, requests: RequestSettings,
        topology: Topology, limits: EventLimits, slots: Slots = Slots(ceiling: 10, httpTimeout: .seconds(10)), operatorTenant: UUID? = nil,
        logger: Logger
    ) {
        self.operatorTenant = operatorTenant
        self.directory = directory
        self.records = records
        self.client = client
        self.requests = requests
        self.topology = topology
        self.limits = limits
        self.slots = slots
        self.logger = logger
    }
}

/// Processes one message to the point where it may be acked: everything it caused is
/// recorded in PostgreSQL and every retry it scheduled is confirmed by the broker.
///
/// Events, claims and attempts of concurrent messages are written in shared batches (a
/// statement or a transaction each); a message is acked only after the batches holding
/// its writes committed.
package final class Processor: Sendable {
    let context: WorkerContext
    /// A channel in confirm mode for retries, deferred deliveries and parked messages.
    let publisher: any ConfirmedPublishing
    /// The consumer's body limit, named in the reason of a message parked for it.
    let maxMessageBytes: Int
    private let stores: Batcher<Arrival, Stored>
    /// Event data per store statement at most (one event may exceed it alone): 64 events of
    /// 256 KiB would be held several times over on their way to the database.
    static let storeBatchBytes = 2 * 1024 * 1024
    private let records: Batcher<AttemptRecord, Recorded>
    private let claims: Batcher<AttemptClaim, Bool>
    /// Deliveries deferred by concurrent messages, published as one message per endpoint.
    private let deferrals: Batcher<Postponement, Void>
    /// Deferrals waiting for the publish in progress to end.
    var queuedDeferrals: Int { deferrals.queued }

    package init(context: WorkerContext, publisher: any ConfirmedPublishing, maxMessageBytes: Int = .max) {
        self.context = context
        self.publisher = publisher
        self.maxMessageBytes = maxMessageBytes
        let records = context.records
        // Records ride with the next store while one is being written (`RideAlong`); the
        // store's batcher tells whether another statement follows.
        let rides = RideAlong()
        // An event whose deliveries were all sent first waits for company: only the log
        // and the broker's ack wait on its store.
        let lingering = Batcher<Arrival, Stored>.Lingering(longest: context.storeLinger) { arrival in
            !arrival.targets.isEmpty && arrival.targets.allSatisfy { $0.sent != nil }
        }
        stores = Batcher(
            maxBatch: 64, maxFlushes: 1, maxWeight: Self.storeBatchBytes, weight: { $0.event.dataBytes.count }, lingering: lingering
        ) { arrivals, more in
            try await rides.store(arrivals, more: more) { try await records.store($0, recording: $1) }
        }
        self.records = Batcher(maxBatch: 256, maxFlushes: 1) { entries in
            if let recorded = await rides.ride(entries) { return recorded }
            return try await records.record(entries)
        }
        claims = Batcher(maxBatch: 256, maxFlushes: 1) { try await records.claim($0) }
        let deferQueue = context.topology.deferQueue
        deferrals = Batcher(maxBatch: WorkMessage.maxDeferrals, maxFlushes: 1) { postponements in
            // One message per endpoint, in the order they came; a failed batch is published
            // again one by one by the batcher.
            var order: [UUID] = []
            var groups: [UUID: [WorkMessage.Deferral]] = [:]
            for postponement in postponements {
                if groups[postponement.endpoint] == nil { order.append(postponement.endpoint) }
                groups[postponement.endpoint, default: []].append(postponement.deferral)
            }
            for endpoint in order {
                try await publisher.publish(
                    WorkMessage.deferred(groups[endpoint] ?? [], endpoint: endpoint), exchange: "", routingKey: deferQueue, mandatory: true)
            }
            return postponements.map { _ in () }
        }
    }

    /// The store of one shard subscription: its events written strictly in the order its
    /// messages arrived; an event the database refuses fails alone (it is parked), any
    /// other failure stops the store.
    func orderedStore() -> Batcher<Arrival, Stored> {
        let records = context.records
        return Batcher(
            orderedBatch: 64, maxWeight: Self.storeBatchBytes, weight: { $0.event.dataBytes.count },
            ownFailure: { ($0 as? DatabaseError)?.refusesData == true }
        ) { try await records.store($0) }
    }

    /// Handles `delivery`; throws when the message must not be acked (database or broker
    /// trouble), so it comes back. From a shard, `intake` gives the message its place in
    /// the shard's order: an event is stored after every event that arrived before it.
    package func handle(_ delivery: HeraldAMQP.Delivery, intake: Intake? = nil) async throws {
        // The message's span continues the trace its headers carry (the producer's
        // publish, or the message that scheduled this retry): every attempt, retry and
        // nudge it makes is its child.
        var trace = InstrumentationContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(delivery.message.headers, into: &trace, using: MessageHeaders())
        let name = delivery.message.headers[WorkMessage.kindHeader] == nil ? "herald.fanout" : "herald.delivery"
        try await withSpan(name, context: trace, ofKind: .consumer) { span in
            try await process(delivery, intake: intake, span: span)
        }
        // Whatever stored nothing lets the next message of its shard go.
        await intake?.turn.pass()
    }

    private func process(_ delivery: HeraldAMQP.Delivery, intake: Intake?, span: any Span) async throws {
        let limit = context.topology.deliveryLimit
        if delivery.returns >= limit {
            // The broker would dead-letter it on the next return; parked here, it says why.
            try await park(
                delivery,
                reason: "returned to the queue unprocessed \(delivery.returns) times (HERALD_DELIVERY_LIMIT \(limit)); the worker's log says why each time")
            return
        }
        if delivery.isTruncated {
            // Only an excerpt was read: the body is parked as that excerpt, with its size.
            try await park(
                delivery,
                reason: "the message body is \(delivery.bodySize) bytes; the limit is \(maxMessageBytes) (HERALD_MAX_MESSAGE_BYTES)")
            return
        }
        let message: WorkMessage
        do {
            message = try WorkMessage.parse(delivery.message, limits: context.limits)
        } catch {
            try await park(delivery, reason: error.description)
            return
        }
        if span.isRecording {
            span.attributes["messaging.system"] = "rabbitmq"
            span.attributes["messaging.destination.name"] = delivery.routingKey
            span.attributes["messaging.rabbitmq.message.redelivered"] = delivery.redelivered
            switch message {
            case .event(let event):
                span.attributes["herald.event_id"] = event.id
                span.attributes["herald.event_type"] = event.type
                span.attributes["herald.tenant_id"] = event.tenantID.lowercasedText
            case .delivery(let id, let attempt, _, _):
                span.attributes["herald.delivery_id"] = id.lowercasedText
                span.attributes["herald.attempt"] = attempt
            case .deferred(let endpoint, let deliveries):
                span.attributes["herald.endpoint_id"] = endpoint.lowercasedText
                span.attributes["herald.deliveries"] = deliveries.count
            }
        }
        switch message {
        case .event(let event):
            try await fanOut(event, from: delivery, intake: intake)
        case .delivery(let id, let attempt, let manual, let endpoint):
            try await take(id, attempt: attempt, manual: manual, endpoint: endpoint, redelivered: delivery.redelivered)
        case .deferred(let endpoint, let deferrals):
            // Each as its own delivery message; those deferred again leave as one message.
            try await Self.settle(
                deferrals.map { deferral in
                    {
                        try await self.take(
                            deferral.id, attempt: deferral.attempt, manual: deferral.manual, endpoint: endpoint,
                            redelivered: delivery.redelivered || deferral.redelivered)
                    }
                })
        }
    }

    /// Takes attempt `attempt` of a delivery a message asks for. A delivery that names its
    /// endpoint takes a slot before any lookup, so behind a stalled endpoint it waits again
    /// without one. Not a redelivered one: its attempt may be claimed already, and only
    /// this message can finish it.
    private func take(_ id: UUID, attempt: Int, manual: Bool, endpoint: UUID?, redelivered: Bool) async throws {
        var lease: SlotLease?
        if let endpoint, !redelivered {
            guard let taken = await context.slots.lease(endpoint) else {
                try await postpone(id, attempt: attempt, manual: manual, endpoint: endpoint)
                return
            }
            lease = taken
        }
        guard let (state, event) = try await context.records.load(delivery: id) else {
            lease?.release(after: .unused)
            return
        }
        let endpoints = try await context.directory.endpoints(tenant: event.tenantID) ?? []
        try await run(state, event: event, attempt: attempt, manual: manual, redelivered: redelivered, endpoints: endpoints, holding: lease)
    }

    private func fanOut(_ event: Event, from delivery: HeraldAMQP.Delivery, intake: Intake?) async throws {
        guard let endpoints = try await context.directory.endpoints(tenant: event.tenantID) else {
            try await park(delivery, reason: "tenant_id: no tenant \(event.tenantID.lowercasedText)")
            return
        }
        let slots = context.slots
        // A delivery created with a slot in hand starts with attempt 1 claimed; the others
        // wait for a slot in `run`, or are deferred.
        var targets: [Arrival.Target] = []
        var leases: [UUID: SlotLease] = [:]
        // Outside a shard, while first copies may be sent before they are stored, every
        // copy of an event is held in `firstCopies` until it is stored. A first copy may send
        // its first attempts before anything is written (`sendFirst`) when no earlier copy
        // can have been stored elsewhere (`sendsFirst`); a redelivered one finds what its
        // first holder stored, and a large one is stored first (`sendFirstBytes`).
        let guarded = context.deliverBeforeStore != .never && intake == nil
        let candidate = guarded && !delivery.redelivered && event.dataBytes.count <= Self.sendFirstBytes
        // When the event's id was made (`Event.idTime`), read once.
        let made = context.deliverBeforeStore != .never ? event.idTime : nil
        if candidate { context.firstCopies.startSendingFirst() }
        let first = candidate && context.sendsFirst(made: made)
        var firsts: [(endpoint: Endpoint, lease: SlotLease)] = []
        // The endpoints that take a slot, and the last of them that found none free.
        var slotted = 0
        var waitFor: Endpoint?
        let data = ParsedData(event.dataBytes)
        for endpoint in endpoints {
            switch endpoint.target(for: event.type, attributes: event.attributes, data: data) {
            case .deliver where endpoint.ordered:
                // Sent only as its endpoint's oldest open delivery (`nudge`).
                targets.append(Arrival.Target(endpoint: endpoint.id, ordered: true))
            case .deliver:
                // A delivery created with its attempt claimed goes at once: not to an
                // endpoint that has a pace to keep (`run` keeps it).
                let paced = endpoint.rateLimit != nil || slots.paceWait(endpoint.id, rateLimit: nil) > .zero
                let lease = paced ? nil : slots.tryLease(endpoint.id)
                leases[endpoint.id] = lease
                slotted += 1
                if first, let lease, endpoint.unusable == nil {
                    firsts.append((endpoint, lease))
                } else {
                    if lease == nil, !paced, endpoint.unusable == nil { waitFor = endpoint }
                    targets.append(Arrival.Target(endpoint: endpoint.id, claim: lease != nil))
                }
            case .skip: targets.append(Arrival.Target(endpoint: endpoint.id, skip: true))
            case .none: break
            }
        }
        // The only endpoint with no free slot: stored now, its delivery would wait for one
        // anyway, then take a statement to claim its attempt and another to record it.
        // While its turn is due within the second a first copy may be missing from the log
        // (`Lane.admit`), it waits here instead and goes first, written once with its
        // attempt; otherwise it is stored now and waits as before. Only with no other
        // slot in hand: two messages each holding one endpoint's slot while waiting for the
        // other's would wait for ever.
        if first, slotted == 1, let endpoint = waitFor, let lease = await slots.lease(endpoint.id, beforeStore: Self.firstAttemptWait) {
            // What the wait may have changed: a pause the endpoint asked for (a 429's
            // Retry-After), or the worker's memory of stored events moving past this one.
            if slots.paceWait(endpoint.id, rateLimit: nil) == .zero, context.sendsFirst(made: made) {
                leases[endpoint.id] = lease
                firsts.append((endpoint, lease))
                targets.removeAll { $0.endpoint == endpoint.id }
            } else {
                lease.release(after: .unused)
            }
        }
        // Another copy held here (the producer published it twice) waits, then stores first
        // and finds the deliveries. A copy that waits gives its slots back first; `run`
        // takes them again.
        let key = EventKey(event)
        var held = false
        if guarded {
            var waited = false
            held = await context.firstCopies.enter(key) {
                waited = true
                for lease in leases.values { lease.release(after: .unused) }
            }
            if waited {
                leases = [:]
                targets = targets.map { target in
                    var target = target
                    target.claim = false
                    return target
                }
                targets += firsts.map { Arrival.Target(endpoint: $0.endpoint.id) }
                firsts = []
            }
        }
        if held, !firsts.isEmpty {
            try await sendFirst(event, made: made, to: firsts, others: targets, leases: leases, from: delivery, endpoints: endpoints)
            return
        }
        if candidate { context.firstCopies.stopSendingFirst() }
        targets += firsts.map { Arrival.Target(endpoint: $0.endpoint.id, claim: true) }
        // Remembered after any attempt: a store that failed may have committed.
        func afterStore() {
            if held {
                context.firstCopies.leave(key, made: made)
            } else if context.deliverBeforeStore != .never {
                context.firstCopies.remember(key, made: made)
            }
        }
        let result: Stored?
        do {
            result = try await store(Arrival(event: event, targets: targets), from: delivery, intake: intake, leases: leases)
        } catch {
            afterStore()
            throw error
        }
        afterStore()
        guard let stored = result else { return }
        try await Self.settle(follow(stored, leases: leases, endpoints: endpoints, redelivered: delivery.redelivered))
    }

    /// Deliver first, write once: sends attempt 1 to each of `firsts` with its slot (the
    /// caller holds the event in `firstCopies`, left once it is stored) before anything is
    /// written, then stores the event with its deliveries, those delivered written settled
    /// with their attempt in the same statement. The store waits for the exchanges `firstAttemptWait` at most: one that takes longer
    /// is stored claimed and recorded when it ends, so the log shows the event meanwhile.
    /// A crash before the store sends again when the message comes back, under the same
    /// delivery id (`DeliveryState.identity`), so the receiver sees one `webhook-id`.
    private func sendFirst(
        _ event: Event, made: Date?, to firsts: [(endpoint: Endpoint, lease: SlotLease)], others: [Arrival.Target], leases: [UUID: SlotLease],
        from delivery: HeraldAMQP.Delivery, endpoints: [Endpoint]
    ) async throws {
        let states = firsts.map(\.endpoint).map { endpoint in
            let identity = DeliveryState.identity(tenant: event.tenantID, event: event.id, endpoint: endpoint.id)
            return DeliveryState(
                id: identity.id, endpointID: endpoint.id, requestID: identity.requestID, status: .pending, attempts: 1, recordedAttempts: 0)
        }
        if firsts.count == 1 {
            return try await sendOneFirst(
                event, made: made, to: firsts[0], state: states[0], others: others, leases: leases, from: delivery, endpoints: endpoints)
        }
        let attempts = FirstAttempts(expected: firsts.count)
        context.firstAttemptDeadlines.add(attempts, deadline: .now + Self.firstAttemptWait)
        let failure: (any Error)? = await withTaskGroup(of: (Int, Exchange)?.self) { group in
            for (index, (endpoint, lease)) in firsts.enumerated() {
                group.addTask {
                    let exchange = await self.exchange(1, of: states[index], event: event, endpoint: endpoint, lease: lease)
                    return attempts.made(index, exchange) ? nil : (index, exchange)
                }
            }
            await attempts.wait()
            let (stored, storeFailure) = await storeSentFirst(
                event, made: made, firsts: firsts, states: states, ended: attempts.close(), others: others, leases: leases, from: delivery,
                endpoints: endpoints)
            guard let stored else {
                // Nothing to record them against: the exchanges still under way end on their
                // own, never cut off on the wire.
                for await _ in group {}
                return storeFailure
            }
            var failure = storeFailure
            // Exchanges that outlasted the wait, recorded as they end.
            for await late in group {
                guard let (index, exchange) = late else { continue }
                if let error = await Self.failure(of: { try await conclude(exchange, of: states[index], at: firsts[index].endpoint, stored: stored, event: event) }) {
                    failure = failure ?? error
                }
            }
            return failure
        }
        if let failure { throw failure }
    }

    /// `sendFirst` to one endpoint, the common case: the exchange runs in the message's own
    /// task instead of a child task made for it. If it outlasts the wait, the deadline's
    /// loop (`FirstAttemptDeadlines`) starts the store in a task of its own meanwhile, and
    /// the exchange is recorded against that store when it ends.
    private func sendOneFirst(
        _ event: Event, made: Date?, to first: (endpoint: Endpoint, lease: SlotLease), state: DeliveryState, others: [Arrival.Target],
        leases: [UUID: SlotLease], from delivery: HeraldAMQP.Delivery, endpoints: [Endpoint]
    ) async throws {
        let store: @Sendable ([Int: Exchange]) async -> (stored: Stored?, failure: (any Error)?) = { ended in
            await self.storeSentFirst(
                event, made: made, firsts: [first], states: [state], ended: ended, others: others, leases: leases, from: delivery,
                endpoints: endpoints)
        }
        let storedAtDeadline = OneShot<(stored: Stored?, failure: (any Error)?)>()
        let attempts = FirstAttempts(expected: 1) {
            Task { storedAtDeadline.resume(returning: await store([:])) }
        }
        context.firstAttemptDeadlines.add(attempts, deadline: .now + Self.firstAttemptWait)
        let exchange = await self.exchange(1, of: state, event: event, endpoint: first.endpoint, lease: first.lease)
        if attempts.made(0, exchange) {
            if let failure = await store(attempts.close()).failure { throw failure }
            return
        }
        // Late: stored at the deadline meanwhile; recorded against that store now. The wait
        // is not cut short by this task's cancellation: the exchange reached the receiver,
        // and the store must not outlive the message's processing.
        let (stored, failure) = try await Task { try await storedAtDeadline.wait {} }.value
        if let stored {
            let concluded = await Self.failure { try await self.conclude(exchange, of: state, at: first.endpoint, stored: stored, event: event) }
            if let error = failure ?? concluded { throw error }
        } else if let failure {
            throw failure
        }
    }

    /// What follows the wait for first attempts: the event stored with the exchanges that
    /// ended (`ended`, by index into `firsts`; the others claimed), then those recorded and
    /// the other endpoints' deliveries followed. Returns the store, nil when nothing was
    /// written or the event was parked, and the first failure.
    private func storeSentFirst(
        _ event: Event, made: Date?, firsts: [(endpoint: Endpoint, lease: SlotLease)], states: [DeliveryState], ended: [Int: Exchange],
        others: [Arrival.Target], leases: [UUID: SlotLease], from delivery: HeraldAMQP.Delivery, endpoints: [Endpoint]
    ) async -> (stored: Stored?, failure: (any Error)?) {
        var targets = others
        for (index, (endpoint, _)) in firsts.enumerated() {
            if let exchange = ended[index], exchange.outcome.verdict == .delivered {
                targets.append(Arrival.Target(endpoint: endpoint.id, sent: exchange.record(1, of: states[index], manual: false, ladder: context.topology.ladder).record))
            } else {
                targets.append(Arrival.Target(endpoint: endpoint.id, claim: true))
            }
        }
        var rest = leases
        for (endpoint, _) in firsts { rest[endpoint.id] = nil }
        let stored: Stored?
        do {
            stored = try await store(Arrival(event: event, targets: targets), from: delivery, intake: nil, leases: rest)
            context.firstCopies.leave(EventKey(event), made: made, sentFirst: true)
        } catch {
            context.firstCopies.leave(EventKey(event), made: made, sentFirst: true)
            // Nothing was written: the message comes back and sends again.
            return (nil, error)
        }
        guard let stored else {
            // Parked: the receivers have it, the log does not.
            context.logger.warning(
                "an event sent before its store was refused by the database and parked; its attempts are not in the log",
                metadata: ["tenant_id": "\(event.tenantID.lowercasedText)", "event_id": "\(event.id)", "endpoints": "\(firsts.count)"])
            return (nil, nil)
        }
        do {
            // A first endpoint's delivery is `conclude`'s, also one another copy created.
            var others = stored
            if firsts.count == 1 {
                // The usual case, without a set to build.
                let first = firsts[0].endpoint.id
                others.deliveries.removeAll { $0.endpointID == first }
            } else {
                let firstEndpoints = Set(firsts.map(\.endpoint.id))
                others.deliveries.removeAll { firstEndpoints.contains($0.endpointID) }
            }
            try await Self.settle(
                ended.map { index, exchange in
                    { try await self.conclude(exchange, of: states[index], at: firsts[index].endpoint, stored: stored, event: event) }
                } + follow(others, leases: rest, endpoints: endpoints, redelivered: false))
        } catch {
            return (stored, error)
        }
        return (stored, nil)
    }

    /// How long a store waits for first attempts sent before it (`sendFirst`): bounds how
    /// long an event is missing from the log while a slow receiver answers.
    static let firstAttemptWait: Duration = .seconds(1)

    /// Events with more data than this are stored before they are sent, with or without
    /// `deliverBeforeStore`. Sent first, every message of the window builds its request
    /// bodies at once instead of behind the store: for events up to this size that stays
    /// within the concurrency × 8 KiB (4 MiB at the default 500). Larger ones gained no
    /// speed and held more: the worker's peak 94–96 against 84–86 MiB with 16 KiB events,
    /// 104 against 95 MiB with 255 KiB events.
    static let sendFirstBytes = 8 * 1024

    /// Records attempt 1 of a delivery sent before its store, as the store left it: written
    /// with it (nothing to write), claimed by it (recorded now), or created before by
    /// another copy of the event (another worker's). That delivery's attempts belong to
    /// their holder: a delivered exchange is logged as its current attempt, and settles it
    /// if it is still open (the holder's own record is then logged, not applied, as a stale
    /// holder's is); a failed one is only in the worker's log, so that it neither moves
    /// the delivery nor starts a second chain of retries.
    private func conclude(_ exchange: Exchange, of state: DeliveryState, at endpoint: Endpoint, stored: Stored, event: Event) async throws {
        if stored.settled.contains(state.id) {
            try await conclude(1, of: state, event: stored.event, endpoint: endpoint, exchange: exchange, manual: false,
                recorded: Recorded(applied: true, disabledEndpoint: false))
        } else if stored.claimed.contains(state.id) {
            try await conclude(1, of: state, event: stored.event, endpoint: endpoint, exchange: exchange, manual: false)
        } else if let existing = stored.deliveries.first(where: { $0.endpointID == endpoint.id }) {
            let k = max(existing.attempts, 1)
            pipelineLogger(tenant: event.tenantID, endpoint: endpoint.id, event: event.id, delivery: existing.id, requestID: existing.requestID)
                .info(
                    "a copy of an event another worker stored was sent before it found the delivery",
                    metadata: ["attempt": "\(k)", "outcome": "\(exchange.outcome.summary)"])
            guard exchange.outcome.verdict == .delivered else { return }
            try await conclude(k, of: existing, event: stored.event, endpoint: endpoint, exchange: exchange, manual: false)
        } else {
            // The endpoint was deleted meanwhile: the store made no delivery to log it for.
            pipelineLogger(tenant: event.tenantID, endpoint: endpoint.id, event: event.id, delivery: state.id, requestID: state.requestID)
                .info("a copy sent before its store has no delivery: its endpoint was deleted", metadata: ["outcome": "\(exchange.outcome.summary)"])
        }
    }

    /// Stores `arrival`; nil when the database refused the event and its message was
    /// parked. Gives back the slots of `leases` on every path that claims nothing with them.
    private func store(_ arrival: Arrival, from delivery: HeraldAMQP.Delivery, intake: Intake?, leases: [UUID: SlotLease]) async throws -> Stored? {
        let stored: Stored
        do {
            if let intake {
                try await intake.turn.take()
                stored = try await intake.stores.submit(arrival) { intake.turn.passTaken() }
            } else {
                stored = try await stores.submit(arrival)
            }
        } catch let error as DatabaseError where error.refusesData {
            // The database will never take this event (it failed on its own, not with its
            // batch): parked with the SQLSTATE only, never the values.
            for lease in leases.values { lease.release(after: .unused) }
            try await park(delivery, reason: "the database refused the event (SQLSTATE \(error.sqlState ?? error.code.description))")
            return nil
        } catch {
            for lease in leases.values { lease.release(after: .unused) }
            throw error
        }
        // Slots taken for deliveries that existed already go back; `run` takes its own.
        guard !leases.isEmpty else { return stored }
        let claimedEndpoints = Set(stored.deliveries.filter { stored.claimed.contains($0.id) }.map(\.endpointID))
        for (endpoint, lease) in leases where !claimedEndpoints.contains(endpoint) { lease.release(after: .unused) }
        return stored
    }

    /// What each delivery of `stored` needs next: an ordered one's nudge, a claimed one's
    /// attempt with its lease, the others' `run`.
    private func follow(_ stored: Stored, leases: [UUID: SlotLease], endpoints: [Endpoint], redelivered: Bool) -> [Work] {
        // Nothing to follow when every delivery went first (the usual case): no table to build.
        guard !stored.deliveries.isEmpty else { return [] }
        let byID = Dictionary(endpoints.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var work: [Work] = []
        for state in stored.deliveries {
            if state.ordered {
                // The one that is its endpoint's head goes (its creator, or a redelivered
                // copy, asks for it); the others wait for the ones before them.
                if !state.status.isFinal {
                    work.append { try await self.nudge(state.endpointID, creating: state.id) }
                }
            } else if stored.claimed.contains(state.id) {
                // Claimed only for targets taken from `endpoints`, each with its lease.
                guard let endpoint = byID[state.endpointID], let lease = leases[state.endpointID] else {
                    leases[state.endpointID]?.release(after: .unused)
                    continue
                }
                work.append { try await self.attempt(1, of: state, event: stored.event, endpoint: endpoint, lease: lease, manual: false) }
            } else {
                work.append { try await self.run(state, event: stored.event, attempt: 1, manual: false, redelivered: redelivered, endpoints: endpoints) }
            }
        }
        return work
    }

    typealias Work = @Sendable () async throws -> Void

    /// Runs `work` to its end, each concurrently with the others (one alone in this
    /// task), then throws the first failure. One delivery failing (its endpoint cannot
    /// sign, the database is away) must not cancel its siblings' requests on the wire:
    /// they would be sent again when the message returns.
    private static func settle(_ work: [Work]) async throws {
        if work.count == 1 { return try await work[0]() }
        let first = await withTaskGroup(of: (any Error)?.self) { group in
            for item in work { group.addTask { await Self.failure(of: item) } }
            var first: (any Error)?
            for await result in group where first == nil { first = result }
            return first
        }
        if let first { throw first }
    }

    private static func failure(of operation: () async throws -> Void) async -> (any Error)? {
        do {
            try await operation()
            return nil
        } catch {
            return error
        }
    }

    /// Takes attempt `k` of a delivery as far as the state allows. `holding`: a slot of
    /// that endpoint the caller took; given back on every path that sends nothing.
    private func run(
        _ state: DeliveryState, event: Event, attempt k: Int, manual: Bool, redelivered: Bool, endpoints: [Endpoint],
        holding: SlotLease? = nil
    ) async throws {
        var lease = holding
        // Every path that sends nothing gives it back; after a request this does nothing.
        defer { lease?.release(after: .unused) }
        switch Step.decide(state, attempt: k, redelivered: redelivered) {
        case .done:
            // A settled ordered delivery's successor may be waiting for the nudge that the
            // holder before this one did not live to publish.
            if state.ordered && state.status.isFinal { try await nudge(state.endpointID) }
        case .republish(let next):
            let rung = context.topology.ladder.rung(afterAttempt: k) ?? (context.topology.ladder.delays.count - 1)
            try await schedule(state.id, attempt: next, rung: rung, endpoint: state.endpointID)
        case .attempt(let claim):
            // Dropping or skipping a delivery is final, so a cached "absent" or "disabled"
            // (an endpoint just created or re-activated) is checked against fresh data first.
            var endpoint = endpoints.first { $0.id == state.endpointID }
            if endpoint?.enabled != true {
                context.directory.invalidate(tenant: event.tenantID)
                endpoint = try await context.directory.endpoints(tenant: event.tenantID)?.first { $0.id == state.endpointID }
            }
            guard let endpoint else { return }
            guard endpoint.enabled else {
                try await context.records.skip(delivery: state.id)
                pipelineLogger(tenant: event.tenantID, endpoint: endpoint.id, event: event.id, delivery: state.id, requestID: state.requestID)
                    .info("delivery skipped: the endpoint is disabled", metadata: ["attempt": "\(k)"])
                if state.ordered { try await nudge(endpoint.id) }
                return
            }
            if lease?.endpoint != endpoint.id {
                lease?.release(after: .unused)
                // An attempt this message already owns (claim == false) goes out whatever the limit.
                lease = await context.slots.lease(endpoint.id, force: !claim)
            }
            guard let held = lease else {
                try await postpone(state.id, attempt: k, manual: manual, endpoint: endpoint.id, redelivered: redelivered)
                return
            }
            // Further than a moment from its turn at the endpoint's pace, the delivery is
            // deferred (not an attempt this message owns already); otherwise its turn is
            // reserved once it is claimed, and it waits for it.
            if claim, context.slots.paceWait(endpoint.id, rateLimit: endpoint.rateLimit) > Slots.maxPaceWait {
                held.release(after: .unused)
                try await postpone(state.id, attempt: k, manual: manual, endpoint: endpoint.id, redelivered: redelivered)
                return
            }
            if claim {
                // A holder whose session ended (its connection lost, its work cancelled)
                // claims nothing: its message returns, and whoever takes it makes the attempt.
                try Task.checkCancellation()
                guard try await claims.submit(AttemptClaim(delivery: state.id, attempt: k)) else {
                    // Another holder started attempt k since the state was read. A redelivered
                    // message's previous holder may be that one, its connection gone: it can
                    // neither ack nor schedule what follows, and this message is the only one
                    // left. So it decides again on what the claim found (at most once more:
                    // that state has attempt k started).
                    guard redelivered, let (found, _) = try await context.records.load(delivery: state.id) else { return }
                    held.release(after: .unused)
                    lease = nil
                    try await run(found, event: event, attempt: k, manual: manual, redelivered: true, endpoints: endpoints)
                    return
                }
                if case .at(let instant) = context.slots.pace(endpoint.id, rateLimit: endpoint.rateLimit) {
                    try await Task.sleep(until: instant)
                }
            }
            // `attempt` gives the slot back when its exchange ends.
            try await attempt(k, of: state, event: event, endpoint: endpoint, lease: held, manual: manual)
        }
    }

    /// Makes and records the attempt, holding a slot of the endpoint that it gives back as
    /// soon as the exchange is over (before recording: the request is no longer in flight).
    private func attempt(_ k: Int, of state: DeliveryState, event: Event, endpoint: Endpoint, lease: SlotLease, manual: Bool) async throws {
        if let reason = endpoint.unusable {
            // Nothing can be signed: the message returns to the queue (and this attempt is
            // made once the key is there); other endpoints' deliveries are not held.
            lease.release(after: .unused)
            context.directory.invalidate(tenant: event.tenantID)
            context.logger.error(
                "endpoint cannot sign; its delivery waits",
                metadata: ["endpoint_id": "\(endpoint.id.lowercasedText)", "reason": "\(reason)"])
            throw SecretUnavailable(endpoint: endpoint.id)
        }
        let exchange = await exchange(k, of: state, event: event, endpoint: endpoint, lease: lease)
        try await conclude(k, of: state, event: event, endpoint: endpoint, exchange: exchange, manual: manual)
    }

    /// Sends attempt `k` to a usable endpoint and classifies the answer, holding a slot of
    /// the endpoint that it gives back as soon as the exchange is over.
    private func exchange(_ k: Int, of state: DeliveryState, event: Event, endpoint: Endpoint, lease: SlotLease) async -> Exchange {
        let startedAt = Date()
        var request = WebhookRequest.make(
            event: event, endpoint: endpoint, deliveryID: state.id, requestID: state.requestID, now: startedAt, settings: context.requests)
        // The attempt's span; its `traceparent` goes to the receiver, whose own tracing
        // may continue the trace.
        let span = startSpan("herald.attempt", ofKind: .client)
        InstrumentationSystem.instrument.inject(span.context, into: &request.headers, using: RequestHeaders())
        let clock = ContinuousClock.now
        let outcome: Outcome
        var excerpt: [UInt8] = []
        let use: Slots.Use
        var cancelled = false
        context.slots.sending(endpoint.id)
        do {
            let response = try await context.client.execute(request)
            let latency = ContinuousClock.now - clock
            let classified = Outcome.of(status: response.status, retryAfter: response.header("Retry-After"), now: Date())
            outcome = endpoint.rotationSettles(at: startedAt) ? classified.settlingRotation() : classified
            // A 429's Retry-After pauses the endpoint in this worker for that long (at most
            // the ladder's longest delay).
            let pause = response.status == 429 ? outcome.retryAfter.map { min($0, context.topology.ladder.delays.last ?? $0) } : nil
            // The endpoint's limit learns from the exchange as curl timed it on its own
            // thread: on a busy worker the wait for this task to resume is the worker's
            // latency, not the endpoint's (a transport that does not time it: the wall time).
            let endpointLatency = response.duration > .zero ? response.duration : latency
            use = .answered(endpointLatency, delivered: outcome.verdict == .delivered, pause: pause)
            excerpt = response.body
        } catch {
            outcome = Outcome.of(error)
            // Cut short here (the worker's session ended, or it stops): nothing the endpoint did.
            cancelled = error.kind == .cancelled
            use = cancelled ? .cancelled : outcome.errorClass == .timeout ? .timedOut : .failed
        }
        if let transition = lease.release(after: use) {
            await circuit(transition, endpoint: endpoint)
        } else if endpoint.circuitOpenedAt != nil, outcome.verdict == .delivered {
            // The row says open (another worker's circuit, or this one's before a restart)
            // while this worker delivers: the row follows what the endpoint does now.
            do {
                try await context.records.circuit(endpoint: endpoint.id, openedAt: nil)
            } catch {
                context.logger.warning("the endpoint's circuit state was not written", metadata: ["reason": "\(error)"])
            }
            context.directory.invalidate(tenant: endpoint.tenantID)
        }
        let duration = ContinuousClock.now - clock
        if span.isRecording {
            span.attributes["http.request.method"] = request.method
            span.attributes["server.address"] = Self.host(of: endpoint.url)
            span.attributes["http.response.status_code"] = outcome.statusCode
            span.attributes["herald.outcome"] = outcome.summary
            span.attributes["herald.delivery_id"] = state.id.lowercasedText
            span.attributes["herald.endpoint_id"] = endpoint.id.lowercasedText
            span.attributes["herald.event_id"] = event.id
            span.attributes["herald.attempt"] = k
            if outcome.verdict != .delivered {
                span.attributes["error.type"] = outcome.statusCode.map(String.init) ?? outcome.errorClass?.rawValue ?? "failed"
                span.setStatus(SpanStatus(code: .error))
            }
        }
        span.end()
        return Exchange(endpointID: endpoint.id, startedAt: startedAt, duration: duration, outcome: outcome, excerpt: excerpt, cancelled: cancelled)
    }

    /// Records attempt `k` as `exchange` ended it (unless `recorded` says it was written
    /// already) and does what follows: metrics, the log line, operator events, the retry,
    /// an ordered endpoint's next delivery.
    private func conclude(
        _ k: Int, of state: DeliveryState, event: Event, endpoint: Endpoint, exchange: Exchange, manual: Bool, recorded given: Recorded? = nil
    ) async throws {
        // A request this worker cut short is no attempt to log or count against the endpoint.
        // Its attempt stays claimed and unrecorded, and the message returns: its next holder
        // repeats the attempt with the same request id (`Step`).
        if exchange.cancelled { throw CancellationError() }
        let (record, rung) = exchange.record(k, of: state, manual: manual, ladder: context.topology.ladder)
        let recorded: Recorded
        if let given {
            recorded = given
        } else {
            recorded = try await records.submit(record)
        }
        let next = record.next, nextAttemptAt = record.nextAttemptAt, outcome = exchange.outcome, duration = exchange.duration
        // The duration first: a scrape that counts the attempt also finds its duration.
        AttemptMetrics.durations[next]?.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        AttemptMetrics.outcomes[next]?.increment()
        // Every failed attempt and every delivery that ends badly at info, with what names it;
        // a delivered attempt at debug. Never the payload, the secret or the response body.
        let failed = outcome.verdict != .delivered
        if failed || recorded.disabledEndpoint || context.logger.logLevel <= .debug {
            let logger = pipelineLogger(tenant: event.tenantID, endpoint: endpoint.id, event: event.id, delivery: state.id, requestID: state.requestID)
            var metadata: Logger.Metadata = [
                "attempt": "\(k)", "outcome": "\(next.rawValue)", "duration_ms": "\(Int(duration.milliseconds))",
                "status": "\(outcome.statusCode.map(String.init) ?? outcome.errorClass?.rawValue ?? "-")",
            ]
            if let nextAttemptAt { metadata["next_attempt_at"] = "\(RFC3339.format(nextAttemptAt, fractionDigits: 3))" }
            switch next {
            case .delivered: logger.debug("attempt delivered", metadata: metadata)
            case .retrying: logger.info("attempt failed; retry scheduled", metadata: metadata)
            case .failed where outcome.verdict == .transient: logger.info("delivery exhausted its retries", metadata: metadata)
            case .failed: logger.info("delivery failed", metadata: metadata)
            }
            if recorded.disabledEndpoint {
                logger.warning("endpoint disabled after failed deliveries")
            }
        }
        if recorded.disabledEndpoint {
            context.directory.invalidate(tenant: event.tenantID)
            try await announce(
                OperatorEvent(.endpointDisabled, tenant: event.tenantID, endpoint: endpoint.id, delivery: state.id, event: event.id, attempt: k,
                    reason: outcome.verdict == .gone ? "the receiver answered 410 Gone" : "failed attempts in a row (the last: \(outcome.summary))"))
        }
        if recorded.applied && next == .failed && outcome.verdict == .transient {
            try await announce(
                OperatorEvent(.deliveryExhausted, tenant: event.tenantID, endpoint: endpoint.id, delivery: state.id, event: event.id, attempt: k,
                    reason: outcome.summary))
        } else if recorded.applied && next == .retrying && k == 3 {
            try await announce(
                OperatorEvent(.deliveryFailing, tenant: event.tenantID, endpoint: endpoint.id, delivery: state.id, event: event.id, attempt: k,
                    reason: outcome.summary))
        }
        // A stale holder (the delivery was settled by another) schedules nothing.
        if let rung, next == .retrying, recorded.applied {
            try await schedule(state.id, attempt: k + 1, rung: rung, endpoint: endpoint.id)
        }
        if state.ordered && next != .retrying {
            try await nudge(endpoint.id)
        }
    }

    /// Lets an ordered endpoint's oldest open delivery go, if nobody has started it: a
    /// message for its first attempt, confirmed before the current message is acked, so a
    /// holder that dies leaves the nudge to the message's next holder. A duplicate is
    /// absorbed by the claim. With `creating`, only when that delivery is the head (its
    /// predecessors' settling nudges otherwise).
    private func nudge(_ endpoint: UUID, creating: UUID? = nil) async throws {
        guard let head = try await context.records.head(ofOrdered: endpoint), head.attempts == 0 else { return }
        if let creating, head.id != creating { return }
        try await publisher.publish(
            Self.traced(WorkMessage.retry(delivery: head.id, attempt: 1, endpoint: endpoint)), exchange: "", routingKey: context.topology.workQueue,
            mandatory: true)
    }

    /// The host of an endpoint's URL, for its attempts' spans: between `://` and the next
    /// `/`, `?`, `#` or port (never the path or query: a Zapier URL's path is its secret).
    static func host(of url: String) -> String {
        guard let scheme = url.range(of: "://") else { return "" }
        let rest = url[scheme.upperBound...]
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") { return String(rest[rest.index(after: rest.startIndex)..<close]) }
        return String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" && $0 != ":" })
    }

    /// `message` with the current trace context in its headers: the message it leads to
    /// continues this message's trace.
    private static func traced(_ message: Message) -> Message {
        guard let current = InstrumentationContext.current else { return message }
        var message = message
        InstrumentationSystem.instrument.inject(current, into: &message.headers, using: MessageHeaders())
        return message
    }

    /// Makes an endpoint's circuit, opened or closed in this worker, known: a warning in
    /// the log, a metric, and the endpoint's row (what the API and the dashboard show). The
    /// row is best effort: the worker's own circuit decides, whatever the database says.
    private func circuit(_ transition: CircuitBreaker.Transition, endpoint: Endpoint) async {
        var logger = context.logger
        logger[metadataKey: "tenant_id"] = "\(endpoint.tenantID.lowercasedText)"
        logger[metadataKey: "endpoint_id"] = "\(endpoint.id.lowercasedText)"
        let openedAt: Date?
        switch transition {
        case .opened:
            openedAt = Date()
            AttemptMetrics.circuitsOpened.increment()
            logger.warning("circuit opened: deliveries to the endpoint are held until a probe succeeds")
        case .closed:
            openedAt = nil
            AttemptMetrics.circuitsClosed.increment()
            logger.warning("circuit closed: the endpoint's probe succeeded")
        }
        do {
            try await context.records.circuit(endpoint: endpoint.id, openedAt: openedAt)
        } catch {
            logger.warning("the endpoint's circuit state was not written", metadata: ["reason": "\(error)"])
        }
        do {
            try await announce(OperatorEvent(openedAt == nil ? .circuitClosed : .circuitOpened, tenant: endpoint.tenantID, endpoint: endpoint.id))
        } catch {
            logger.warning("operator event not published", metadata: ["reason": "\(error)"])
        }
    }

    /// The worker's logger with what names a delivery, the same keys on every line of the
    /// pipeline (`tenant_id`, `endpoint_id`, `event_id`, `delivery_id`, `request_id`).
    private func pipelineLogger(tenant: UUID, endpoint: UUID, event: String, delivery: UUID, requestID: UUID) -> Logger {
        var logger = context.logger
        logger[metadataKey: "tenant_id"] = "\(tenant.lowercasedText)"
        logger[metadataKey: "endpoint_id"] = "\(endpoint.lowercasedText)"
        logger[metadataKey: "event_id"] = "\(event)"
        logger[metadataKey: "delivery_id"] = "\(delivery.lowercasedText)"
        logger[metadataKey: "request_id"] = "\(requestID.lowercasedText)"
        return logger
    }

    /// Publishes an operator event with a confirm, before the current message is acked.
    private func announce(_ event: OperatorEvent) async throws {
        for (message, exchange) in OperatorEvents.messages(event, topology: context.topology, operatorTenant: context.operatorTenant) {
            try await publisher.publish(message, exchange: exchange, routingKey: event.kind.rawValue, mandatory: false)
        }
    }

    /// Sends attempt `attempt` to the defer queue, unclaimed, to be looked at again after
    /// the topology's defer delay, in one message with the other deliveries of its endpoint
    /// deferred meanwhile; confirmed before the current message is acked. `redelivered`: the
    /// message deferring it was, and the deferral says so to whoever takes it next.
    private func postpone(_ delivery: UUID, attempt: Int, manual: Bool, endpoint: UUID, redelivered: Bool = false) async throws {
        try await deferrals.submit(
            Postponement(
                endpoint: endpoint, deferral: WorkMessage.Deferral(id: delivery, attempt: attempt, manual: manual, redelivered: redelivered)))
        AttemptMetrics.deferred.increment()
    }

    /// Publishes the retry with a confirm; only then may the current message be acked.
    private func schedule(_ delivery: UUID, attempt: Int, rung: Int, endpoint: UUID) async throws {
        try await publisher.publish(
            Self.traced(WorkMessage.retry(delivery: delivery, attempt: attempt, endpoint: endpoint)), exchange: "",
            routingKey: context.topology.retryQueue(rung: rung), mandatory: true)
    }

    /// Moves an unprocessable message to the parking queue with the reason.
    private func park(_ delivery: HeraldAMQP.Delivery, reason: String) async throws {
        var message = delivery.message
        message.headers = message.headers.filter { !$0.key.hasPrefix("x-") }
        message.headers[Parked.idHeader] = .string(UUID().lowercasedText)
        message.headers[Parked.reasonHeader] = .string(String(reason.prefix(500)))
        message.headers[Parked.fromHeader] = .string(delivery.routingKey)
        message.headers[Parked.atHeader] = .int(Int64(Date().timeIntervalSince1970 * 1000))
        if delivery.isTruncated {
            message.headers[Parked.bodyBytesHeader] = .int(Int64(delivery.bodySize))
        }
        message.persistent = true
        try await publisher.publish(message, exchange: "", routingKey: context.topology.parkingQueue, mandatory: true)
        context.logger.warning("message parked", metadata: ["reason": "\(reason)", "routing_key": "\(delivery.routingKey)"])
        try await announce(OperatorEvent(.messageParked, reason: reason))
    }
}

/// The worker's per-attempt metrics, created once rather than looked up per attempt.
enum AttemptMetrics {
    static let outcomes: [AttemptRecord.Next: Counter] = Dictionary(
        uniqueKeysWithValues: AttemptRecord.Next.allCases.map {
            ($0, Counter(label: "herald_deliveries_total", dimensions: [("outcome", $0.rawValue)]))
        })
    static let durations: [AttemptRecord.Next: Timer] = Dictionary(
        uniqueKeysWithValues: AttemptRecord.Next.allCases.map {
            ($0, Timer(label: "herald_attempt_duration_seconds", dimensions: [("outcome", $0.rawValue)]))
        })
    /// Deliveries sent to the defer queue because their endpoint had no free slot or its
    /// circuit was open.
    static let deferred = Counter(label: "herald_deliveries_deferred_total")
    static let circuitsOpened = Counter(label: "herald_circuit_transitions_total", dimensions: [("to", "open")])
    static let circuitsClosed = Counter(label: "herald_circuit_transitions_total", dimensions: [("to", "closed")])
}

/// A shard message's place in its subscription's order, and the subscription's store,
/// which writes events strictly in that order and stops at the first failure it cannot
/// isolate (the subscription then ends and everything it held returns to the shard).
package struct Intake: Sendable {
    let turn: Turn
    let stores: Batcher<Arrival, Stored>
}

/// Carries a trace context in a webhook request's headers.
struct RequestHeaders: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [(name: String, value: String)]) {
        carrier.append((key, value))
    }
}

/// One attempt's exchange with its receiver, classified, before it is recorded.
struct Exchange: Sendable {
    var endpointID: UUID
    var startedAt: Date
    var duration: Duration
    var outcome: Outcome
    /// The first bytes of the response body.
    var excerpt: [UInt8]
    /// The worker cut the request short (`TransferError.Kind.cancelled`): not an answer of
    /// the endpoint, so it is not recorded as an attempt (`conclude`).
    var cancelled = false

    /// The record of attempt `k` of `state` that this exchange made, and the ladder's rung
    /// of its retry, if one follows.
    func record(_ k: Int, of state: DeliveryState, manual: Bool, ladder: Ladder) -> (record: AttemptRecord, rung: Int?) {
        var next: AttemptRecord.Next
        var rung: Int?
        switch outcome.verdict {
        case .delivered:
            next = .delivered
        case .transient:
            rung = ladder.rung(afterAttempt: k, retryAfter: outcome.retryAfter)
            next = rung == nil ? .failed : .retrying
        case .permanent, .gone:
            next = .failed
        }
        let nextAttemptAt = rung.map { startedAt.addingTimeInterval(Double(ladder.delays[$0].milliseconds) / 1000) }
        let attempt = Attempt(
            deliveryID: state.id, endpointID: endpointID, number: k, trigger: manual ? .manual : .automatic, requestID: state.requestID,
            startedAt: startedAt, duration: duration, outcome: outcome, excerpt: excerpt)
        return (AttemptRecord(attempt, next: next, nextAttemptAt: nextAttemptAt), rung)
    }
}

/// A delivery to defer, with its endpoint.
struct Postponement: Sendable {
    var endpoint: UUID
    var deferral: WorkMessage.Deferral
}

/// An endpoint's secret could not be opened with this process's keys.
struct SecretUnavailable: Error, CustomStringConvertible {
    let endpoint: UUID
    var description: String { "the secret of endpoint \(endpoint.lowercasedText) cannot be opened with this process's keys" }
}

/// Where the processor publishes what must be confirmed before its message is acked
/// (retries, deferred deliveries, parked messages): a channel in confirm mode, or a
/// recorder in the worker's unit tests.
package protocol ConfirmedPublishing: Sendable {
    func publish(_ message: Message, exchange: String, routingKey: String, mandatory: Bool) async throws
}

extension Channel: ConfirmedPublishing {}
