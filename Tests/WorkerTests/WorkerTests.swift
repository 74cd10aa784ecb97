import HeraldAMQP
import HeraldEvents
import FanOut
import Records
import Foundation
import Testing
import Topology
import Worker

@Suite("Delivery steps")
struct StepTests {
    func state(_ status: DeliveryState.Status, attempts: Int, recorded: Int) -> DeliveryState {
        DeliveryState(id: UUID(), endpointID: UUID(), requestID: UUID(), status: status, attempts: attempts, recordedAttempts: recorded)
    }

    @Test(arguments: [DeliveryState.Status.delivered, .failed, .skipped])
    func finalDeliveriesAreDone(_ status: DeliveryState.Status) {
        for redelivered in [false, true] {
            for k in 1...3 {
                #expect(Step.decide(state(status, attempts: k, recorded: k), attempt: k, redelivered: redelivered) == .done)
            }
        }
    }

    @Test func aFreshAttemptIsClaimed() {
        #expect(Step.decide(state(.pending, attempts: 0, recorded: 0), attempt: 1, redelivered: false) == .attempt(claim: true))
        #expect(Step.decide(state(.retrying, attempts: 2, recorded: 2), attempt: 3, redelivered: false) == .attempt(claim: true))
        // Even a redelivered message claims when nobody started the attempt.
        #expect(Step.decide(state(.pending, attempts: 0, recorded: 0), attempt: 1, redelivered: true) == .attempt(claim: true))
    }

    @Test func aDuplicateCopyDoesNothing() {
        #expect(Step.decide(state(.pending, attempts: 1, recorded: 0), attempt: 1, redelivered: false) == .done)
        #expect(Step.decide(state(.retrying, attempts: 3, recorded: 3), attempt: 3, redelivered: false) == .done)
        // An older attempt's message after a newer attempt started.
        #expect(Step.decide(state(.retrying, attempts: 4, recorded: 3), attempt: 3, redelivered: true) == .done)
    }

    @Test func aRedeliveredClaimWithoutRecordRepeatsTheRequest() {
        #expect(Step.decide(state(.pending, attempts: 1, recorded: 0), attempt: 1, redelivered: true) == .attempt(claim: false))
        #expect(Step.decide(state(.retrying, attempts: 3, recorded: 2), attempt: 3, redelivered: true) == .attempt(claim: false))
    }

    @Test func aRedeliveredRecordedFailureRepublishesItsRetry() {
        #expect(Step.decide(state(.retrying, attempts: 2, recorded: 2), attempt: 2, redelivered: true) == .republish(next: 3))
    }
}

@Suite("Work messages")
struct WorkMessageTests {
    @Test func retriesRoundTrip() throws {
        let id = UUID()
        let message = WorkMessage.retry(delivery: id, attempt: 3)
        #expect(message.persistent)
        #expect(try WorkMessage.parse(message, limits: EventLimits()) == .delivery(id: id, attempt: 3, manual: false))
        let manual = WorkMessage.retry(delivery: id, attempt: 4, manual: true)
        #expect(try WorkMessage.parse(manual, limits: EventLimits()) == .delivery(id: id, attempt: 4, manual: true))
        let endpoint = UUID()
        let deferred = WorkMessage.retry(delivery: id, attempt: 1, endpoint: endpoint)
        #expect(try WorkMessage.parse(deferred, limits: EventLimits()) == .delivery(id: id, attempt: 1, manual: false, endpoint: endpoint))
    }

    /// Deliveries of one endpoint deferred together travel as one message.
    @Test func deferredBatchesRoundTrip() throws {
        let endpoint = UUID()
        let deferrals = (1...3).map { WorkMessage.Deferral(id: UUID(), attempt: $0, manual: $0 == 2, redelivered: $0 == 3) }
        let message = WorkMessage.deferred(deferrals, endpoint: endpoint)
        #expect(message.persistent)
        #expect(try WorkMessage.parse(message, limits: EventLimits()) == .deferred(endpoint: endpoint, deliveries: deferrals))
    }

    @Test func eventsAreMessagesWithoutAKind() throws {
        let event = Event(id: "evt_1", type: "client.created", tenantID: UUID(), occurredAt: Date(timeIntervalSince1970: 1_778_578_200), data: Array("{}".utf8))
        guard case .event(let parsed) = try WorkMessage.parse(Message(body: WireFormat.encode(event)), limits: EventLimits()) else {
            Issue.record("not parsed as an event")
            return
        }
        #expect(parsed.id == "evt_1")
    }

    @Test(arguments: [
        (["herald-kind": "delivery"] as FieldTable, #"{"delivery_id":"00000000-0000-0000-0000-000000000001"}"#, "herald-attempt"),
        (["herald-kind": "delivery", "herald-attempt": .int(0)], #"{"delivery_id":"00000000-0000-0000-0000-000000000001"}"#, "herald-attempt"),
        (["herald-kind": "delivery", "herald-attempt": "2"], #"{"delivery_id":"00000000-0000-0000-0000-000000000001"}"#, "herald-attempt"),
        (["herald-kind": "delivery", "herald-attempt": .int(2)], #"{"delivery_id":"nope"}"#, "delivery_id"),
        (["herald-kind": "delivery", "herald-attempt": .int(2)], "garbage", "delivery_id"),
        (["herald-kind": "mystery"], "{}", "herald-kind"),
        (["herald-kind": "deferred"], #"{"deliveries":[]}"#, "herald-endpoint"),
        (["herald-kind": "deferred", "herald-endpoint": "00000000-0000-0000-0000-000000000002"], #"{"deliveries":[]}"#, "deliveries"),
        (
            ["herald-kind": "deferred", "herald-endpoint": "00000000-0000-0000-0000-000000000002"],
            #"{"deliveries":[{"delivery_id":"00000000-0000-0000-0000-000000000001","attempt":0}]}"#, "deliveries"
        ),
        ([:], "{not json", "body"),
    ])
    func unreadableMessagesSayWhy(_ headers: FieldTable, _ body: String, _ field: String) {
        do {
            _ = try WorkMessage.parse(Message(body: Array(body.utf8), headers: headers), limits: EventLimits())
            Issue.record("parsed an unreadable message")
        } catch {
            #expect(error.field == field)
        }
    }
}

@Suite("Holding a message before it returns")
struct ReturningTests {
    @Test func theHoldDoublesFromOneSecondToAMinute() {
        let holds = (0...9).map { Returning.hold(afterReturns: $0) }
        #expect(holds == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60].map { Duration.seconds($0) })
        #expect(Returning.hold(afterReturns: -1) == .seconds(1))
        #expect(Returning.hold(afterReturns: .max) == Returning.ceiling)
    }

    /// At the default limit, an outage must last about a quarter of an hour before the
    /// messages it keeps failing are parked.
    @Test func theDefaultLimitOutlastsAQuarterHourOutage() {
        let total = (0..<20).reduce(Duration.zero) { $0 + Returning.hold(afterReturns: $1) }
        #expect(total >= .seconds(15 * 60))
        #expect(total <= .seconds(16 * 60))
    }
}
