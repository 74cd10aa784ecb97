import Delivery
import HeraldEvents
import Postgres
import Foundation
import HeraldSupport
import Management
import Records
import Testing
import TestSupport

/// The same scenarios against PostgreSQL and the in-memory record the worker's unit tests
/// use: if they ever mean different things, one of these fails.
@Suite("Delivery records: PostgreSQL and memory agree")
struct RecordsConformanceTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case postgres, memory
        var testDescription: String { rawValue }
    }

    typealias Records = any PipelineRecords & DeliveryLog

    static let policy = DisablePolicy(threshold: 2, window: .zero)

    /// A record with one tenant and `endpoints` enabled endpoints of it.
    func withRecords(_ backend: Backend, endpoints count: Int = 1, _ body: (Records, UUID, [UUID]) async throws -> Void) async throws {
        switch backend {
        case .memory:
            try await body(MemoryRecords(policy: Self.policy), UUID(), (0..<count).map { _ in UUID() })
        case .postgres:
            var options = Pipeline.Options(startWorker: false)
            options.disable = Self.policy
            try await Pipeline.run(options) { pipeline in
                let tenant = try await pipeline.tenant()
                var endpoints: [UUID] = []
                for n in 0..<count { endpoints.append(try await pipeline.endpoint(tenant: tenant, url: "https://example.com/\(n)")) }
                try await body(PostgresRecords(pool: pipeline.pool, policy: Self.policy), tenant, endpoints)
            }
        }
    }

    func event(_ tenant: UUID, _ id: String, type: String = "invoice.paid", data: String = #"{"n":1.10}"#) -> Event {
        Event(id: id, type: type, tenantID: tenant, data: Array(data.utf8))
    }

    func record(_ state: DeliveryState, _ number: Int, _ outcome: Outcome, next: AttemptRecord.Next, trigger: DeliveryState.Trigger = .automatic)
        -> AttemptRecord
    {
        AttemptRecord(
            Attempt(
                deliveryID: state.id, endpointID: state.endpointID, number: number, trigger: trigger, requestID: state.requestID,
                startedAt: Date(), duration: .milliseconds(4), outcome: outcome, excerpt: Array("ok".utf8)),
            next: next, nextAttemptAt: next == .retrying ? Date().addingTimeInterval(60) : nil)
    }

    static let ok = Outcome(verdict: .delivered, statusCode: 200)
    static let unavailable = Outcome(verdict: .transient, statusCode: 503, errorClass: .http, errorMessage: "HTTP 503")
    static let gone = Outcome(verdict: .gone, statusCode: 410, errorClass: .http, errorMessage: "410 Gone")

    @Test(arguments: Backend.allCases)
    func storingIsIdempotentAndTheFirstContentStays(_ backend: Backend) async throws {
        try await withRecords(backend, endpoints: 2) { records, tenant, endpoints in
            let targets = [Arrival.Target(endpoint: endpoints[0], claim: true), Arrival.Target(endpoint: endpoints[1], skip: true)]
            let first = try await records.store([Arrival(event: event(tenant, "evt_1"), targets: targets)])[0]
            #expect(first.deliveries.count == 2)
            #expect(Set(first.deliveries.map(\.status)) == [.pending, .skipped])
            let claimed = try #require(first.deliveries.first { $0.endpointID == endpoints[0] })
            #expect(first.claimed == [claimed.id] && claimed.attempts == 1)

            // The same id again, with other content, in a batch with a second copy of itself.
            let again = try await records.store([
                Arrival(event: event(tenant, "evt_1", data: #"{"n":2}"#), targets: targets),
                Arrival(event: event(tenant, "evt_1", data: #"{"n":3}"#), targets: targets),
            ])
            for stored in again {
                #expect(Set(stored.deliveries.map(\.id)) == Set(first.deliveries.map(\.id)))
                #expect(stored.claimed.isEmpty)
                #expect(stored.event.data == Array(#"{"n":1.10}"#.utf8), "the first content, byte for byte")
            }
            let (state, loaded) = try #require(try await records.load(delivery: claimed.id))
            #expect(state.id == claimed.id && loaded.id == "evt_1" && loaded.data == Array(#"{"n":1.10}"#.utf8))
            #expect(try await records.load(delivery: UUID()) == nil)
        }
    }

    /// Two ids that differ only in their Unicode normalisation are two events (the table
    /// compares bytes), each with its own deliveries and data, in one batch or two.
    @Test(arguments: Backend.allCases)
    func idsThatDifferOnlyInNormalisationAreTwoEvents(_ backend: Backend) async throws {
        try await withRecords(backend) { records, tenant, endpoints in
            let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
            #expect(composed == decomposed, "Swift calls them equal; the table does not")
            let arrivals = [
                Arrival(event: event(tenant, composed, data: #"{"n":1}"#), targets: [.init(endpoint: endpoints[0], claim: true)]),
                Arrival(event: event(tenant, decomposed, data: #"{"n":2}"#), targets: [.init(endpoint: endpoints[0], claim: true)]),
            ]
            let stored = try await records.store(arrivals)
            #expect(stored.map { $0.deliveries.count } == [1, 1])
            #expect(Set(stored.flatMap { $0.deliveries.map(\.id) }).count == 2)
            #expect(stored.map { $0.claimed.count } == [1, 1], "each event claims its own first attempt")
            #expect(stored.map(\.event.data) == [Array(#"{"n":1}"#.utf8), Array(#"{"n":2}"#.utf8)])
            for (arrival, result) in zip(arrivals, stored) {
                let delivery = try #require(result.deliveries.first)
                let (_, loaded) = try #require(try await records.load(delivery: delivery.id))
                #expect(Array(loaded.id.utf8) == Array(arrival.event.id.utf8) && loaded.data == arrival.event.data)
            }
            // Stored again, one per batch and both in one: each finds its own earlier rows.
            for batch in [[arrivals[1]], [arrivals[0]], arrivals] {
                let again = try await records.store(batch)
                for (arrival, result) in zip(batch, again) {
                    let index = try #require(arrivals.firstIndex { Array($0.event.id.utf8) == Array(arrival.event.id.utf8) })
                    let original = stored[index]
                    #expect(result.deliveries.map(\.id) == original.deliveries.map(\.id) && result.claimed.isEmpty)
                    #expect(result.event.data == original.event.data)
                }
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func anAttemptIsClaimedOnceAndAStaleHolderNeverMovesItBack(_ backend: Backend) async throws {
        try await withRecords(backend) { records, tenant, endpoints in
            let state = try await records.store([Arrival(event: event(tenant, "evt_1"), targets: [.init(endpoint: endpoints[0])])])[0].deliveries[0]
            #expect(try await records.claim([AttemptClaim(delivery: state.id, attempt: 1), AttemptClaim(delivery: state.id, attempt: 1)]) == [true, false])
            #expect(try await records.record([record(state, 1, Self.ok, next: .delivered)]) == [Recorded(applied: true, disabledEndpoint: false)])
            // A second holder's failure of the same attempt is logged but changes nothing.
            #expect(try await records.record([record(state, 1, Self.unavailable, next: .retrying)]) == [Recorded(applied: false, disabledEndpoint: false)])
            #expect(try await records.claim([AttemptClaim(delivery: state.id, attempt: 2)]) == [false], "a final delivery takes no claim")
            let detail = try await records.delivery(tenant: tenant, id: state.id)
            #expect(detail.delivery.status == .delivered && detail.attempts.count == 2)
            #expect(try await records.load(delivery: state.id)?.0.recordedAttempts == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func aRunOfFailuresOrA410DisablesTheEndpointOnce(_ backend: Backend) async throws {
        try await withRecords(backend, endpoints: 2) { records, tenant, endpoints in
            var states: [DeliveryState] = []
            for n in 0..<3 {
                states += try await records.store([
                    Arrival(event: event(tenant, "evt_\(n)"), targets: endpoints.map { Arrival.Target(endpoint: $0, claim: true) })
                ])[0].deliveries
            }
            let first = states.filter { $0.endpointID == endpoints[0] }
            // Threshold 2: the second failure in a row disables; a success in between resets the run.
            #expect(try await records.record([record(first[0], 1, Self.unavailable, next: .retrying)]).map(\.disabledEndpoint) == [false])
            #expect(try await records.record([record(first[1], 1, Self.ok, next: .delivered)]).map(\.disabledEndpoint) == [false])
            #expect(try await records.record([record(first[2], 1, Self.unavailable, next: .retrying)]).map(\.disabledEndpoint) == [false])
            #expect(try await records.claim([AttemptClaim(delivery: first[0].id, attempt: 2)]) == [true])
            #expect(try await records.record([record(first[0], 2, Self.unavailable, next: .retrying)]) == [Recorded(applied: true, disabledEndpoint: true)])
            let second = states.filter { $0.endpointID == endpoints[1] }
            #expect(try await records.record([record(second[0], 1, Self.gone, next: .failed)]).map(\.disabledEndpoint) == [true])
            #expect(try await records.record([record(second[1], 1, Self.gone, next: .failed)]).map(\.disabledEndpoint) == [false], "disabled once")
        }
    }

    /// Successes written with a store mean what `record` means: logged, the delivery
    /// moved unless settled, the endpoint's run of failures ended.
    @Test(arguments: Backend.allCases)
    func recordsWrittenWithAStoreMeanWhatRecordMeans(_ backend: Backend) async throws {
        try await withRecords(backend) { records, tenant, endpoints in
            var states: [DeliveryState] = []
            for n in 0..<3 {
                states += try await records.store([Arrival(event: event(tenant, "evt_\(n)"), targets: [.init(endpoint: endpoints[0], claim: true)])])[0].deliveries
            }
            #expect(try await records.record([record(states[0], 1, Self.unavailable, next: .retrying)]).map(\.disabledEndpoint) == [false])
            let (stored, recorded) = try await records.store(
                [Arrival(event: event(tenant, "evt_3"), targets: [.init(endpoint: endpoints[0], claim: true)])],
                recording: [record(states[1], 1, Self.ok, next: .delivered), record(states[2], 1, Self.ok, next: .delivered)])
            #expect(recorded == [Recorded(applied: true, disabledEndpoint: false), Recorded(applied: true, disabledEndpoint: false)])
            let fourth = try #require(stored.first?.deliveries.first)
            #expect(stored.first?.claimed == [fourth.id] && fourth.attempts == 1)
            // The successes ended the run: one more failure (threshold 2) does not disable.
            #expect(try await records.record([record(fourth, 1, Self.unavailable, next: .retrying)]).map(\.disabledEndpoint) == [false])
            // A settled delivery is logged again but not moved; events without deliveries too.
            let (none, again) = try await records.store(
                [Arrival(event: event(tenant, "evt_4"), targets: [])], recording: [record(states[1], 1, Self.ok, next: .delivered)])
            #expect(again == [Recorded(applied: false, disabledEndpoint: false)] && none.first?.deliveries.isEmpty == true)
            let detail = try await records.delivery(tenant: tenant, id: states[1].id)
            #expect(detail.delivery.status == .delivered && detail.attempts.count == 2)
            #expect(try await records.delivery(tenant: tenant, id: states[2].id).delivery.status == .delivered)
            #expect(try await records.delivery(tenant: tenant, id: fourth.id).delivery.status == .retrying)
        }
    }

    /// A first attempt sent before the store is written with its delivery: delivered,
    /// logged once, the endpoint's run of failures ended; the delivery's id and request id
    /// are the ones the request carried. A second store of the event writes nothing again.
    @Test(arguments: Backend.allCases)
    func anAttemptSentBeforeTheStoreIsWrittenWithItsDelivery(_ backend: Backend) async throws {
        try await withRecords(backend, endpoints: 2) { records, tenant, endpoints in
            let failing = try await records.store([Arrival(event: event(tenant, "evt_0"), targets: [.init(endpoint: endpoints[0], claim: true)])])[0]
            #expect(try await records.record([record(failing.deliveries[0], 1, Self.unavailable, next: .retrying)]).map(\.disabledEndpoint) == [false])
            let identity = DeliveryState.identity(tenant: tenant, event: "evt_1", endpoint: endpoints[0])
            let sent = DeliveryState(id: identity.id, endpointID: endpoints[0], requestID: identity.requestID, status: .pending, attempts: 1, recordedAttempts: 0)
            let targets = [Arrival.Target(endpoint: endpoints[0], sent: record(sent, 1, Self.ok, next: .delivered)), Arrival.Target(endpoint: endpoints[1], claim: true)]
            let stored = try await records.store([Arrival(event: event(tenant, "evt_1"), targets: targets)])[0]
            let settled = try #require(stored.deliveries.first { $0.endpointID == endpoints[0] })
            let claimed = try #require(stored.deliveries.first { $0.endpointID == endpoints[1] })
            #expect(settled.id == identity.id && settled.requestID == identity.requestID)
            #expect(settled.status == .delivered && settled.attempts == 1 && settled.recordedAttempts == 1)
            #expect(stored.settled == [settled.id] && stored.claimed == [claimed.id])
            #expect(claimed.id == DeliveryState.identity(tenant: tenant, event: "evt_1", endpoint: endpoints[1]).id, "every delivery under its identity")
            let detail = try await records.delivery(tenant: tenant, id: settled.id)
            #expect(detail.delivery.status == .delivered && detail.delivery.lastStatusCode == 200 && detail.delivery.deliveredAt != nil)
            #expect(detail.attempts.map(\.attempt) == [1] && detail.attempts[0].requestId == identity.requestID.lowercasedText)
            // The success ended the endpoint's run: one more failure (threshold 2) does not disable.
            #expect(try await records.record([record(failing.deliveries[0], 2, Self.unavailable, next: .retrying)]).map(\.disabledEndpoint) == [false])

            let again = try await records.store([Arrival(event: event(tenant, "evt_1"), targets: targets)])[0]
            #expect(again.settled.isEmpty && again.claimed.isEmpty)
            #expect(Set(again.deliveries.map(\.id)) == Set(stored.deliveries.map(\.id)))
            #expect(try await records.delivery(tenant: tenant, id: settled.id).attempts.count == 1, "logged once")

            // A copy earlier in the batch created the delivery pending: the later copy's
            // attempt is not written against it.
            let other = DeliveryState.identity(tenant: tenant, event: "evt_2", endpoint: endpoints[0])
            let sentToo = DeliveryState(id: other.id, endpointID: endpoints[0], requestID: other.requestID, status: .pending, attempts: 1, recordedAttempts: 0)
            let copies = try await records.store([
                Arrival(event: event(tenant, "evt_2"), targets: [.init(endpoint: endpoints[0], claim: true)]),
                Arrival(event: event(tenant, "evt_2"), targets: [.init(endpoint: endpoints[0], sent: record(sentToo, 1, Self.ok, next: .delivered))]),
            ])
            #expect(copies[0].claimed == [other.id] && copies.allSatisfy { $0.settled.isEmpty })
            let pending = try await records.delivery(tenant: tenant, id: other.id)
            #expect(pending.delivery.status == .pending && pending.attempts.isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func theLogPagesNewestFirstAndFilters(_ backend: Backend) async throws {
        try await withRecords(backend, endpoints: 2) { records, tenant, endpoints in
            var ids: [UUID] = []
            for n in 0..<7 {
                let stored = try await records.store([
                    Arrival(event: event(tenant, "evt_\(n)", type: n % 2 == 0 ? "invoice.paid" : "booking.confirmed"), targets: [.init(endpoint: endpoints[n % 2])])
                ])
                ids += stored[0].deliveries.map(\.id)
            }
            var seen: [String] = []
            var filter = DeliveryFilter(limit: 3)
            while true {
                let page = try await records.deliveries(tenant: tenant, filter)
                seen += page.items.map(\.id)
                guard let next = page.nextCursor else { break }
                let cursor = Cursor(token: next)
                #expect(cursor != nil, "a cursor the log returned reads back")
                filter.cursor = cursor
                if cursor == nil { break }
            }
            #expect(seen == ids.reversed().map { $0.uuidString.lowercased() }, "every delivery once, newest first")
            let invoices = try await records.deliveries(tenant: tenant, DeliveryFilter(eventType: "invoice.paid"))
            #expect(invoices.items.count == 4 && invoices.items.allSatisfy { $0.eventType == "invoice.paid" })
            let second = try await records.deliveries(tenant: tenant, DeliveryFilter(endpoint: endpoints[1], status: .pending))
            #expect(second.items.count == 3)
            #expect(try await records.deliveries(tenant: UUID(), DeliveryFilter()).items.isEmpty, "another tenant sees nothing")
        }
    }

    @Test(arguments: Backend.allCases)
    func resendsReopenOnlyFinalDeliveries(_ backend: Backend) async throws {
        try await withRecords(backend) { records, tenant, endpoints in
            let state = try await records.store([Arrival(event: event(tenant, "evt_1"), targets: [.init(endpoint: endpoints[0], claim: true)])])[0]
                .deliveries[0]
            await #expect(throws: RecordError(.conflict, "the delivery is still pending or retrying")) {
                try await records.reopenForResend(tenant: tenant, id: state.id)
            }
            await #expect(throws: RecordError(.notFound, "no such delivery")) { try await records.reopenForResend(tenant: UUID(), id: state.id) }
            await #expect(throws: RecordError(.notFound, "no such delivery")) { try await records.delivery(tenant: tenant, id: UUID()) }
            _ = try await records.record([record(state, 1, Outcome(verdict: .permanent, statusCode: 404, errorClass: .http), next: .failed)])
            #expect(try await records.failedDeliveries(tenant: tenant, endpoint: endpoints[0], since: Date().addingTimeInterval(-60)) == [state.id])
            #expect(try await records.reopenForResend(tenant: tenant, id: state.id) == 2)
            let reopened = try await records.delivery(tenant: tenant, id: state.id).delivery
            #expect(reopened.status == .pending && reopened.requestId != state.requestID.uuidString.lowercased())
            // A dispatch that failed puts it back.
            try await records.restore(delivery: state.id, status: .failed)
            #expect(try await records.delivery(tenant: tenant, id: state.id).delivery.status == .failed)
        }
    }

    @Test(arguments: Backend.allCases)
    func skippedDeliveriesReopenAndTestEventsAreStored(_ backend: Backend) async throws {
        try await withRecords(backend) { records, tenant, endpoints in
            let state = try await records.store([Arrival(event: event(tenant, "evt_1"), targets: [.init(endpoint: endpoints[0])])])[0].deliveries[0]
            try await records.skip(delivery: state.id)
            #expect(try await records.delivery(tenant: tenant, id: state.id).delivery.status == .skipped)
            let reopened = try await records.reopenSkipped(endpoint: endpoints[0])
            #expect(reopened.map(\.0) == [state.id] && reopened.map(\.1) == [1])
            #expect(try await records.delivery(tenant: tenant, id: state.id).delivery.status == .pending)

            let test = try await records.storeTestEvent(tenant: tenant, endpoint: endpoints[0], type: "client.created", data: #"{"id":"c_1"}"#)
            let detail = try await records.delivery(tenant: tenant, id: test)
            #expect(detail.event.type == "client.created" && detail.event.attributes == ["test": "true"])
            #expect(detail.event.data == .object(["id": .string("c_1")]))
        }
    }

    @Test(arguments: Backend.allCases)
    func retentionDeletesWhatIsOlderOnly(_ backend: Backend) async throws {
        try await withRecords(backend) { records, tenant, endpoints in
            let state = try await records.store([Arrival(event: event(tenant, "evt_1"), targets: [.init(endpoint: endpoints[0], claim: true)])])[0]
                .deliveries[0]
            _ = try await records.record([record(state, 1, Self.ok, next: .delivered)])
            #expect(try await records.deleteOlder(than: Date().addingTimeInterval(-3600), batch: 10) == 0)
            // The event and its attempt are older than a cutoff in the future.
            #expect(try await records.deleteOlder(than: Date().addingTimeInterval(3600), batch: 10) == 2)
            #expect(try await records.load(delivery: state.id) == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func figuresCountAttemptsPerEndpointAndHourOnce(_ backend: Backend) async throws {
        try await withRecords(backend, endpoints: 2) { records, tenant, endpoints in
            let since = Date().addingTimeInterval(-3600)
            let timeout = Outcome(verdict: .transient, errorClass: .timeout, errorMessage: "timed out")
            var states: [DeliveryState] = []
            for n in 0..<3 {
                states += try await records.store([
                    Arrival(event: event(tenant, "evt_\(n)"), targets: endpoints.map { Arrival.Target(endpoint: $0, claim: true) })
                ])[0].deliveries
            }
            let first = states.filter { $0.endpointID == endpoints[0] }
            let second = states.filter { $0.endpointID == endpoints[1] }
            _ = try await records.record([
                record(first[0], 1, Self.ok, next: .delivered), record(first[1], 1, Self.unavailable, next: .retrying),
                record(first[2], 1, timeout, next: .retrying), record(second[0], 1, Self.ok, next: .delivered),
            ])
            // PostgreSQL answers from the hourly counts: add them up (twice: nothing counts twice).
            if let postgres = records as? PostgresRecords {
                #expect(try await postgres.rollUp(lag: .zero) > 0)
                #expect(try await postgres.rollUp(lag: .zero) == 0)
            }
            // Another attempt in the same hour adds to the row: every latency bucket in place.
            _ = try await records.record([record(second[1], 1, Self.ok, next: .delivered)])
            if let postgres = records as? PostgresRecords { #expect(try await postgres.rollUp(lag: .zero) > 0) }
            let secondHours = try await records.hours(tenant: tenant, endpoint: endpoints[1], since: since)
            #expect(secondHours.map(\.succeeded).reduce(0, +) == 2)
            #expect(secondHours.map { $0.latency.counts[LatencyHistogram.bucket(milliseconds: 4)] }.reduce(0, +) == 2)
            let hours = try await records.hours(tenant: tenant, endpoint: endpoints[0], since: since)
            #expect(hours.map(\.succeeded).reduce(0, +) == 1)
            #expect(hours.map(\.rejected).reduce(0, +) == 1)
            #expect(hours.map(\.unanswered).reduce(0, +) == 1)
            #expect(hours.map(\.latency.total).reduce(0, +) == 3)
            #expect(hours.allSatisfy { $0.latency.counts[LatencyHistogram.bucket(milliseconds: 4)] == $0.attempts }, "each took 4 ms")
            #expect(try await records.hours(tenant: UUID(), endpoint: endpoints[0], since: since).isEmpty, "another tenant sees nothing")

            let summaries = try await records.summaries(tenant: tenant, endpoints: endpoints, since: since)
            #expect(summaries[endpoints[0]]?.attempts == 3 && summaries[endpoints[0]]?.succeeded == 1)
            #expect(summaries[endpoints[1]]?.successRate == 1 && summaries[endpoints[1]]?.attempts == 2)
            #expect(summaries[endpoints[0]]?.lastDeliveryAt != nil && summaries[endpoints[0]]?.lastStatus == .retrying)
            #expect(try await records.summaries(tenant: UUID(), endpoints: endpoints, since: since).isEmpty)

            let activity = try await records.tenantActivity(since: since)
            #expect(activity[tenant] == TenantActivity(attempts: 5, failed: 2))
        }
    }
}

/// How the worker's writes reach PostgreSQL: what keeps them cheap per delivery.
@Suite("Delivery writes on the server (real server)")
struct DeliveryWriteTests {
    /// Without foreign keys to endpoints (migration 0020) no delivery outlives its endpoint:
    /// a delete waits for a batch that locked the endpoint and then deletes what it stored,
    /// and a batch after the delete stores nothing for it.
    @Test func noDeliveryOutlivesItsEndpoint() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let deleted = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/deleted")
            let kept = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/kept")
            let pool = try Pool(url: pipeline.databaseURL, size: 3, logger: TestServices.logger)
            let records = PostgresRecords(pool: pool, policy: DisablePolicy(threshold: 100, window: .zero))
            func arrival(_ id: String) -> Arrival {
                Arrival(
                    event: Event(id: id, type: "invoice.paid", tenantID: tenant, data: Array("{}".utf8)),
                    targets: [.init(endpoint: deleted, claim: true), .init(endpoint: kept, claim: true)])
            }
            func waiting(_ statement: String) async throws -> Int {
                try await pipeline.pool.query(
                    """
                    SELECT count(*)::bigint FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE \(statement)
                    """
                )[0].decode(Int.self, 0)
            }
            // A batch in progress holds the endpoint as the store's statement does; the delete
            // waits for it, and the delivery it adds meanwhile goes too.
            let deleting = try await pool.transaction { tx in
                try await tx.query("SELECT 1 FROM endpoints WHERE id = \(deleted) FOR KEY SHARE")
                let deleting = Task { try await Store(pool: pool).deleteEndpoint(tenant: tenant, id: deleted) }
                try await pipeline.eventually("the delete waits for the lock") {
                    try await waiting("DELETE FROM endpoints%") == 1
                }
                try await tx.query("INSERT INTO events (tenant_id, id, type, occurred_at, data) VALUES (\(tenant), 'evt_0', 'invoice.paid', now(), '{}')")
                try await tx.query("INSERT INTO deliveries (tenant_id, event_id, endpoint_id) VALUES (\(tenant), 'evt_0', \(deleted))")
                return deleting
            }
            try await deleting.value
            // A batch after the delete stores the kept endpoint's delivery only.
            let stored = try await records.store([arrival("evt_1")])
            #expect(stored[0].deliveries.map(\.endpointID) == [kept] && stored[0].claimed.count == 1)
            // A batch that comes while a delete is in progress waits for it, then stores
            // nothing for that endpoint.
            let other = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/other")
            let storing = try await pool.transaction { tx in
                try await tx.query("DELETE FROM endpoints WHERE id = \(other)")
                let storing = Task {
                    try await records.store([
                        Arrival(
                            event: Event(id: "evt_2", type: "invoice.paid", tenantID: tenant, data: Array("{}".utf8)),
                            targets: [.init(endpoint: other, claim: true), .init(endpoint: kept, claim: true)])
                    ])
                }
                try await pipeline.eventually("the batch waits for the delete") { try await waiting("%INSERT INTO deliveries%") == 1 }
                return storing
            }
            let waited = try await storing.value
            #expect(waited[0].deliveries.map(\.endpointID) == [kept])
            let left = try await pipeline.pool.query("SELECT endpoint_id FROM deliveries").map { try $0.decode(UUID.self, 0) }
            #expect(left == [kept, kept])
            await #expect(throws: RecordError(.notFound, "no such endpoint")) {
                try await records.storeTestEvent(tenant: tenant, endpoint: deleted, type: "invoice.paid", data: "{}")
            }
            await pool.close()
        }
    }

    /// A batch is written as if none of its events were stored (no key looked up before
    /// each insert); one that holds a stored event fails on its key, changing nothing, and
    /// is written again skipping what exists: one rolled-back statement, the same result.
    @Test func batchesAreWrittenAgainSkippingWhatExistsOnlyWhenTheyHoldIt() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/a")
            // One session, so that its statistics are flushed where they are read.
            let pool = try Pool(url: pipeline.databaseURL, size: 1, logger: TestServices.logger)
            let records = PostgresRecords(pool: pool, policy: DisablePolicy(threshold: 100, window: .zero))
            func arrival(_ id: String, targets: [Arrival.Target]? = nil) -> Arrival {
                Arrival(
                    event: Event(id: id, type: "invoice.paid", tenantID: tenant, data: Array(#"{"id":"\#(id)"}"#.utf8)),
                    targets: targets ?? [.init(endpoint: endpoint, claim: true)])
            }
            func rollbacks() async throws -> Int {
                _ = try await pool.query("SELECT pg_stat_force_next_flush()")
                return try await pool.query("SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()")[0].decode(Int.self, 0)
            }
            let start = try await rollbacks()
            let first = try await records.store([arrival("evt_1"), arrival("evt_2")])
            #expect(first.allSatisfy { $0.deliveries.count == 1 && $0.claimed.count == 1 })
            #expect(try await rollbacks() == start)
            let second = try await records.store([arrival("evt_2"), arrival("evt_3")])
            #expect(second[0].deliveries.map(\.id) == first[1].deliveries.map(\.id) && second[0].claimed.isEmpty)
            #expect(second[1].deliveries.count == 1 && second[1].claimed.count == 1)
            #expect(try await rollbacks() == start + 1)
            // Events that match no endpoint take the same way.
            #expect(try await records.store([arrival("evt_4", targets: [])])[0].deliveries.isEmpty)
            #expect(try await rollbacks() == start + 1)
            #expect(try await records.store([arrival("evt_4", targets: []), arrival("evt_5", targets: [])]).allSatisfy { $0.deliveries.isEmpty })
            #expect(try await rollbacks() == start + 2)
            let counts = try await pool.query("SELECT (SELECT count(*) FROM events)::bigint, (SELECT count(*) FROM deliveries)::bigint")[0]
            #expect(try counts.decode(Int.self, 0) == 5 && counts.decode(Int.self, 1) == 3)
            await pool.close()
        }
    }

    /// Deliveries have no foreign key to their events, nor attempts to their deliveries
    /// (migration 0019): retention and deleting an endpoint delete them themselves, and
    /// leave everything else.
    @Test func retentionAndEndpointDeletionTakeTheDeliveriesAndAttemptsWithThem() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let kept = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/kept")
            let deleted = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/deleted")
            let records = PostgresRecords(pool: pipeline.pool, policy: DisablePolicy(threshold: 100, window: .zero))
            let stored = try await records.store(
                ["evt_old", "evt_new"].map { id in
                    Arrival(
                        event: Event(id: id, type: "invoice.paid", tenantID: tenant, data: Array("{}".utf8)),
                        targets: [.init(endpoint: kept, claim: true), .init(endpoint: deleted, claim: true)])
                })
            let deliveries = stored.flatMap(\.deliveries)
            #expect(deliveries.count == 4)
            let ok = Outcome(verdict: .delivered, statusCode: 204)
            let applied = try await records.record(
                deliveries.map { state in
                    AttemptRecord(
                        Attempt(
                            deliveryID: state.id, endpointID: state.endpointID, number: 1, trigger: .automatic, requestID: state.requestID,
                            startedAt: Date(), duration: .milliseconds(2), outcome: ok, excerpt: []),
                        next: .delivered, nextAttemptAt: nil)
                })
            #expect(applied.allSatisfy { $0.applied })
            func remaining() async throws -> (deliveries: [String], attempts: [String]) {
                let rows = try await pipeline.pool.query(
                    """
                    SELECT d.event_id || '→' || e.url, (SELECT count(*) FROM delivery_attempts a WHERE a.delivery_id = d.id)::bigint
                    FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id ORDER BY 1
                    """)
                let orphans = try await pipeline.pool.query(
                    "SELECT a.delivery_id::text FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)")
                return (
                    try rows.map { try "\($0.decode(String.self, 0)) \($0.decode(Int.self, 1))" }, try orphans.map { try $0.decode(String.self, 0) }
                )
            }
            try await Store(pool: pipeline.pool).deleteEndpoint(tenant: tenant, id: deleted)
            var left = try await remaining()
            #expect(left.deliveries == ["evt_new→https://example.com/kept 1", "evt_old→https://example.com/kept 1"])
            #expect(left.attempts.isEmpty)
            // The old event's attempt started now: only the event's own age takes it.
            try await pipeline.pool.query("UPDATE events SET received_at = now() - interval '2 days' WHERE id = 'evt_old'")
            #expect(try await records.deleteOlder(than: Date().addingTimeInterval(-86_400), batch: 10) == 1)
            left = try await remaining()
            #expect(left.deliveries == ["evt_new→https://example.com/kept 1"])
            #expect(left.attempts.isEmpty)
            #expect(try await pipeline.pool.query("SELECT id FROM events").map { try $0.decode(String.self, 0) } == ["evt_new"])
        }
    }

    /// The worker's batch statements are prepared, and PostgreSQL may keep one generic plan
    /// for a session whatever the tables grow to. Made on an empty table (a fresh install),
    /// that plan must still find deliveries through an index, or every batch would read the
    /// whole table.
    @Test func genericPlansMadeOnEmptyTablesReadDeliveriesByIndex() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoints = [
                try await pipeline.endpoint(tenant: tenant, url: "https://example.com/a"),
                try await pipeline.endpoint(tenant: tenant, url: "https://example.com/b"),
            ]
            try await pipeline.pool.query(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_generic_plan', current_database()); END $$")
            // The tables keep the statistics of a fresh install while the test runs: the 64
            // failures below leave 64 dead endpoint rows, enough for autovacuum to find a
            // three-page table that a sequential scan reads more cheaply than its key.
            for table in ["events", "deliveries", "endpoints"] {
                try await pipeline.pool.query(Query(stringLiteral: "ALTER TABLE \(table) SET (autovacuum_enabled = off)"))
            }
            let pool = try Pool(url: pipeline.databaseURL, size: 1, logger: TestServices.logger)
            #expect(try await pool.query("SHOW plan_cache_mode")[0].decode(String.self, 0) == "force_generic_plan")
            let records = PostgresRecords(pool: pool, policy: DisablePolicy(threshold: 100, window: .zero))
            let arrivals = (0..<64).map { n in
                Arrival(
                    event: Event(id: "evt_\(n)", type: "invoice.paid", tenantID: tenant, data: Array(#"{"n":\#(n)}"#.utf8)),
                    targets: [.init(endpoint: endpoints[0], claim: true), .init(endpoint: endpoints[1])])
            }
            func sequentialScans() async throws -> Int {
                _ = try await pool.query("SELECT pg_stat_force_next_flush()")
                return try await pool.query("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'deliveries'")[0].decode(Int.self, 0)
            }
            // The migrations read the empty table; only what follows counts.
            let before = try await sequentialScans()
            let stored = try await records.store(arrivals)
            #expect(stored.allSatisfy { $0.deliveries.count == 2 && $0.claimed.count == 1 })
            let first = stored.flatMap(\.deliveries).filter { $0.endpointID == endpoints[0] }
            let second = stored.flatMap(\.deliveries).filter { $0.endpointID == endpoints[1] }
            #expect(try await records.claim(second.map { AttemptClaim(delivery: $0.id, attempt: 1) }) == Array(repeating: true, count: 64))
            func attempt(_ state: DeliveryState, _ outcome: Outcome, next: AttemptRecord.Next) -> AttemptRecord {
                AttemptRecord(
                    Attempt(
                        deliveryID: state.id, endpointID: state.endpointID, number: 1, trigger: .automatic, requestID: state.requestID,
                        startedAt: Date(), duration: .milliseconds(3), outcome: outcome, excerpt: []),
                    next: next, nextAttemptAt: next == .retrying ? Date().addingTimeInterval(60) : nil)
            }
            // Successes ride with a store (one statement) or take the one-statement path,
            // failures the transaction.
            let ok = Outcome(verdict: .delivered, statusCode: 204)
            let unavailable = Outcome(verdict: .transient, statusCode: 503, errorClass: .http, errorMessage: "HTTP 503")
            let riding = (0..<64).map { n in
                Arrival(
                    event: Event(id: "evt_ride_\(n)", type: "invoice.paid", tenantID: tenant, data: Array("{}".utf8)),
                    targets: [.init(endpoint: endpoints[0], claim: true)])
            }
            let (rode, recorded) = try await records.store(riding, recording: first.prefix(32).map { attempt($0, ok, next: .delivered) })
            #expect(rode.allSatisfy { $0.claimed.count == 1 } && recorded.allSatisfy(\.applied) && recorded.count == 32)
            #expect(try await records.record(first.dropFirst(32).map { attempt($0, ok, next: .delivered) }).allSatisfy(\.applied))
            #expect(try await records.record(second.map { attempt($0, unavailable, next: .retrying) }).allSatisfy(\.applied))
            #expect(try await sequentialScans() == before, "a batch statement read deliveries sequentially")
            // A republished batch reads its earlier events and deliveries back by their keys: its
            // statements planned now, on the small table, and kept while the tenant's other rows
            // grow to 10,000, which the reads must leave alone.
            #expect(try await records.store(arrivals).allSatisfy { $0.deliveries.count == 2 && $0.claimed.isEmpty })
            try await pipeline.pool.query(
                """
                WITH e AS (INSERT INTO events (tenant_id, id, type, occurred_at, data)
                           SELECT \(tenant), 'evt_other_' || n, 'invoice.paid', now(), '{}' FROM generate_series(1, 10000) AS n
                           RETURNING tenant_id, id)
                INSERT INTO deliveries (tenant_id, event_id, endpoint_id, status) SELECT tenant_id, id, \(endpoints[0]), 'delivered' FROM e
                """)
            let again = try await records.store(arrivals)
            #expect(again.allSatisfy { $0.deliveries.count == 2 && $0.claimed.isEmpty })
            #expect(Set(again.flatMap(\.deliveries).map(\.id)) == Set((first + second).map(\.id)))
            // The plans the session keeps, one per prepared statement, as it would run them.
            let statements = try await pool.query("SELECT name, cardinality(parameter_types) FROM pg_prepared_statements")
            #expect(statements.count >= 6)
            var locks = 0
            for statement in statements {
                let name = try statement.decode(String.self, 0), parameters = try statement.decode(Int.self, 1)
                let nulls = Array(repeating: "NULL", count: parameters).joined(separator: ", ")
                let plan = try await pool.query(Query(stringLiteral: "EXPLAIN EXECUTE \"\(name)\"(\(nulls))")).map { try $0.decode(String.self, 0) }
                #expect(!plan.contains { $0.contains("Seq Scan on deliveries") || $0.contains("Seq Scan on events") }, "\(plan.joined(separator: "\n"))")
                // Looked up by the whole key, not by the tenant and filtered.
                #expect(!plan.contains { $0.contains("Filter: (event_id = ANY") || $0.contains("Filter: (id = ANY") }, "\(plan.joined(separator: "\n"))")
                // A batch's endpoints are locked one by one through their key.
                for (index, line) in plan.enumerated() where line.contains("LockRows") {
                    locks += 1
                    #expect(plan[index + 1].contains("Index Scan using endpoints_pkey on endpoints"), "\(plan.joined(separator: "\n"))")
                }
            }
            #expect(locks >= 1, "no kept plan locks a batch's endpoints")
            let counts = try await pool.query("SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'retrying') FROM deliveries WHERE event_id NOT LIKE 'evt_other_%' AND event_id NOT LIKE 'evt_ride_%'")[0]
            #expect(try counts.decode(Int.self, 0) == 64 && counts.decode(Int.self, 1) == 64)
            await pool.close()
        }
    }

    /// A delivery settles with a HOT update only while no index of deliveries names a column
    /// the settling changes; an ordered endpoint's queue is indexed on `open_position`, which
    /// PostgreSQL computes from the status: it must agree with the records' open statuses.
    @Test func settlingTouchesNoIndexAndTheOrderedQueueHoldsOpenDeliveriesOnly() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let settled = ["status", "last_status_code", "last_error_class", "next_attempt_at", "delivered_at", "updated_at", "attempts", "claimed_at"]
            // Every word of every index's definition: its columns, expressions and predicate.
            let definitions = try await pipeline.pool.query("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'deliveries'::regclass")
                .map { try $0.decode(String.self, 0) }
            let indexed = Set(definitions.flatMap { $0.split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init) })
            #expect(indexed.contains("endpoint_id") && indexed.contains("open_position"))
            #expect(indexed.isDisjoint(with: settled), "\(definitions)")

            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/ordered")
            for (n, status) in DeliveryState.Status.allCases.enumerated() {
                try await pipeline.pool.query(
                    """
                    WITH e AS (INSERT INTO events (tenant_id, id, type, occurred_at, data) VALUES (\(tenant), \("evt_\(n)"), 'invoice.paid', now(), '{}') RETURNING tenant_id, id)
                    INSERT INTO deliveries (tenant_id, event_id, endpoint_id, status, position) SELECT tenant_id, id, \(endpoint), \(status.rawValue), \(n + 1) FROM e
                    """)
                let row = try await pipeline.pool.query("SELECT open_position FROM deliveries WHERE event_id = \("evt_\(n)")")[0]
                #expect(try row.decode(Int?.self, 0) == (status.isFinal ? nil : n + 1), "\(status)")
            }
            // A delivery without a position (any other endpoint's) stays out of the queue.
            try await pipeline.pool.query(
                """
                WITH e AS (INSERT INTO events (tenant_id, id, type, occurred_at, data) VALUES (\(tenant), 'evt_unordered', 'invoice.paid', now(), '{}') RETURNING tenant_id, id)
                INSERT INTO deliveries (tenant_id, event_id, endpoint_id, status) SELECT tenant_id, id, \(endpoint), 'pending' FROM e
                """)
            #expect(try await pipeline.pool.query("SELECT open_position FROM deliveries WHERE event_id = 'evt_unordered'")[0].decode(Int?.self, 0) == nil)
            let records = PostgresRecords(pool: pipeline.pool, policy: DisablePolicy(threshold: 100, window: .zero))
            let head = try #require(try await records.head(ofOrdered: endpoint))
            let first = DeliveryState.Status.allCases.firstIndex { !$0.isFinal }! + 1
            #expect(try await pipeline.pool.query("SELECT position FROM deliveries WHERE id = \(head.id)")[0].decode(Int.self, 0) == first)
        }
    }

    /// Settled in batches as the worker does, nine in ten deliveries at least are updated in place.
    @Test func settledDeliveriesAreUpdatedInPlace() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/a")
            let records = PostgresRecords(pool: pipeline.pool, policy: DisablePolicy(threshold: 100, window: .zero))
            let ok = Outcome(verdict: .delivered, statusCode: 204)
            // Batches as large as a busy worker's: rows inserted together are settled
            // together, so each page needs room for a second version of all of them.
            for batch in 0..<4 {
                let arrivals = (0..<48).map { n in
                    Arrival(
                        event: Event(id: "evt_\(batch)_\(n)", type: "invoice.paid", tenantID: tenant, data: Array(#"{"n":\#(n)}"#.utf8)),
                        targets: [.init(endpoint: endpoint, claim: true)])
                }
                let states = try await records.store(arrivals).flatMap(\.deliveries)
                let attempts = states.map { state in
                    AttemptRecord(
                        Attempt(
                            deliveryID: state.id, endpointID: state.endpointID, number: 1, trigger: .automatic, requestID: state.requestID,
                            startedAt: Date(), duration: .milliseconds(3), outcome: ok, excerpt: []),
                        next: .delivered, nextAttemptAt: nil)
                }
                #expect(try await records.record(attempts).allSatisfy(\.applied))
            }
            let (updates, inPlace) = try await waitForUpdates(192, pool: pipeline.pool)
            #expect(updates == 192)
            #expect(inPlace * 10 >= updates * 9, "\(inPlace) of \(updates) updates in place")
        }
    }

    /// The table's update counts, once the statistics of the last commits have arrived.
    private func waitForUpdates(_ expected: Int, pool: Pool) async throws -> (Int, Int) {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let row = try await pool.query("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'deliveries'")[0]
            let counts = (try row.decode(Int.self, 0), try row.decode(Int.self, 1))
            if counts.0 >= expected || ContinuousClock.now > deadline { return counts }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
