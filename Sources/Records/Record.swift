public import Delivery
public import HeraldEvents
public import Foundation
import Cryptography
import HeraldSupport

/// A delivery as the worker sees it when deciding what to do.
public struct DeliveryState: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable, Codable {
        case pending, retrying, delivered, failed, skipped

        public var isFinal: Bool { self == .delivered || self == .failed || self == .skipped }
    }

    /// What started an attempt: the pipeline, or someone's resend.
    public enum Trigger: String, Sendable, Codable {
        case automatic, manual
    }

    public var id: UUID
    public var endpointID: UUID
    public var requestID: UUID
    public var status: Status
    /// Attempts started (claimed).
    public var attempts: Int
    /// The highest attempt number recorded in `delivery_attempts`.
    public var recordedAttempts: Int
    /// It has a place in its ordered endpoint's order: it is sent only as the endpoint's
    /// oldest open delivery, and settling it lets the next one go.
    public var ordered: Bool

    public init(id: UUID, endpointID: UUID, requestID: UUID, status: Status, attempts: Int, recordedAttempts: Int, ordered: Bool = false) {
        self.ordered = ordered
        self.id = id
        self.endpointID = endpointID
        self.requestID = requestID
        self.status = status
        self.attempts = attempts
        self.recordedAttempts = recordedAttempts
    }
}

/// One event as the worker hands it to `PipelineRecords.store`, with the endpoints it goes to.
public struct Arrival: Sendable {
    /// An endpoint the event goes to.
    public struct Target: Sendable {
        public var endpoint: UUID
        /// Recorded as skipped (the endpoint is disabled), never sent.
        public var skip: Bool
        /// A delivery created for it starts with attempt 1 claimed by the caller, so the
        /// claim costs no statement of its own.
        public var claim: Bool
        /// The endpoint is ordered: a delivery created for it takes the next position.
        public var ordered: Bool
        /// Attempt 1, already made and delivered before the event was stored: a delivery
        /// created for it is written delivered, with this attempt, in the same statement.
        /// Its id is `DeliveryState.identity`'s, which the request carried.
        public var sent: AttemptRecord?

        public init(endpoint: UUID, skip: Bool = false, claim: Bool = false, ordered: Bool = false) {
            self.endpoint = endpoint
            self.skip = skip
            self.ordered = ordered
            self.claim = claim && !skip && !ordered
        }

        /// A target whose first attempt `sent` delivered before the store.
        public init(endpoint: UUID, sent: AttemptRecord) {
            precondition(sent.next == .delivered && sent.attempt.number == 1, "only a delivered first attempt is written with its delivery")
            self.init(endpoint: endpoint)
            self.sent = sent
        }
    }

    public var event: Event
    public var targets: [Target]

    public init(event: Event, targets: [Target]) {
        self.event = event
        self.targets = targets
    }
}

/// What `PipelineRecords.store` did with one arrival.
public struct Stored: Sendable {
    /// The stored event: a republished id keeps its first content.
    public var event: Event
    /// Every delivery of the event, new or not.
    public var deliveries: [DeliveryState]
    /// The deliveries this call created with attempt 1 claimed for the caller.
    public var claimed: Set<UUID>
    /// The deliveries this call created delivered, with the attempt their target had sent.
    public var settled: Set<UUID>

    public init(event: Event, deliveries: [DeliveryState], claimed: Set<UUID>, settled: Set<UUID> = []) {
        self.event = event
        self.deliveries = deliveries
        self.claimed = claimed
        self.settled = settled
    }
}

extension DeliveryState {
    /// The id and first request id of the delivery of an event to an endpoint, the same in
    /// every worker and on every try: a first attempt may be sent before its delivery is
    /// written, and a message that comes back after a crash in between creates the
    /// delivery and sends it again under the same `webhook-id`, which the receiver
    /// deduplicates on.
    public static func identity(tenant: UUID, event: String, endpoint: UUID) -> (id: UUID, requestID: UUID) {
        // SHA-256 of "herald.delivery\0", the tenant's and the endpoint's 16 bytes and the
        // event id's UTF-8, written on the stack: this runs for every delivery.
        let domain = "herald.delivery\u{0}".utf8
        var event = event
        return event.withUTF8 { name in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: domain.count + 32 + name.count + SHA256.byteCount) { memory in
                let input = UnsafeMutableBufferPointer(rebasing: memory[SHA256.byteCount...])
                var n = input.initialize(fromContentsOf: domain)
                n += withUnsafeBytes(of: tenant.uuid) { UnsafeMutableBufferPointer(rebasing: input[n...]).initialize(fromContentsOf: $0) }
                n += withUnsafeBytes(of: endpoint.uuid) { UnsafeMutableBufferPointer(rebasing: input[n...]).initialize(fromContentsOf: $0) }
                n += UnsafeMutableBufferPointer(rebasing: input[n...]).initialize(fromContentsOf: name)
                let digest = UnsafeMutableBufferPointer(rebasing: memory[..<SHA256.byteCount])
                SHA256.hash(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: input[..<n])), into: UnsafeMutableRawBufferPointer(digest))
                return (uuid(UnsafeBufferPointer(digest), from: 0), uuid(UnsafeBufferPointer(digest), from: 16))
            }
        }
    }

    /// 16 bytes of a digest from `start` as a UUID of version 8 (RFC 9562: custom, here
    /// name-based).
    private static func uuid(_ d: UnsafeBufferPointer<UInt8>, from start: Int) -> UUID {
        let s = start
        return UUID(
            uuid: (
                d[s], d[s + 1], d[s + 2], d[s + 3], d[s + 4], d[s + 5], (d[s + 6] & 0x0F) | 0x80, d[s + 7], (d[s + 8] & 0x3F) | 0x80,
                d[s + 9], d[s + 10], d[s + 11], d[s + 12], d[s + 13], d[s + 14], d[s + 15]
            ))
    }
}

/// One attempt as the delivery log shows it.
public struct Attempt: Sendable {
    public var deliveryID: UUID
    public var endpointID: UUID
    public var number: Int
    public var trigger: DeliveryState.Trigger
    public var requestID: UUID
    public var startedAt: Date
    public var duration: Duration
    public var outcome: Outcome
    /// The first bytes of the response body.
    public var excerpt: [UInt8]

    public init(
        deliveryID: UUID, endpointID: UUID, number: Int, trigger: DeliveryState.Trigger = .automatic, requestID: UUID, startedAt: Date,
        duration: Duration, outcome: Outcome, excerpt: [UInt8]
    ) {
        self.deliveryID = deliveryID
        self.endpointID = endpointID
        self.number = number
        self.trigger = trigger
        self.requestID = requestID
        self.startedAt = startedAt
        self.duration = duration
        self.outcome = outcome
        self.excerpt = excerpt
    }
}

/// A claim of attempt `attempt` of a delivery, made before its request is sent.
public struct AttemptClaim: Sendable, Hashable {
    public var delivery: UUID
    public var attempt: Int

    public init(delivery: UUID, attempt: Int) {
        self.delivery = delivery
        self.attempt = attempt
    }
}

/// One attempt to record, with the delivery's state after it.
public struct AttemptRecord: Sendable {
    /// The delivery's next state after an attempt.
    public enum Next: String, Sendable, CaseIterable {
        case delivered, retrying, failed
    }

    public var attempt: Attempt
    public var next: Next
    public var nextAttemptAt: Date?

    public init(_ attempt: Attempt, next: Next, nextAttemptAt: Date?) {
        self.attempt = attempt
        self.next = next
        self.nextAttemptAt = nextAttemptAt
    }
}

extension AttemptRecord {
    /// Whether `records` may be written with a store (`store(_:recording:)`): successes of
    /// distinct deliveries, which count no endpoint's failures.
    public static func mayRide(_ records: [AttemptRecord]) -> Bool {
        records.allSatisfy { $0.attempt.outcome.verdict == .delivered } && Set(records.map(\.attempt.deliveryID)).count == records.count
    }
}

/// What recording an attempt changed.
public struct Recorded: Sendable, Equatable {
    /// The delivery took the new state. False when it was already final or a later
    /// attempt had started (another holder of a redelivered message got there first):
    /// the attempt is logged, but it must neither move the delivery back nor schedule a retry.
    public var applied: Bool
    /// This attempt disabled the endpoint.
    public var disabledEndpoint: Bool

    public init(applied: Bool, disabledEndpoint: Bool) {
        self.applied = applied
        self.disabledEndpoint = disabledEndpoint
    }
}

/// An event's identity in the tables, compared as PostgreSQL compares it: the id's bytes.
/// Swift's `String` equality would make one key of two ids that differ only in their
/// Unicode normalisation (`café` composed and decomposed), which the table keeps apart.
package struct EventKey: Hashable, Sendable {
    package var tenant: UUID
    package var id: String

    package init(tenant: UUID, id: String) {
        self.tenant = tenant
        self.id = id
    }

    package init(_ event: Event) {
        self.init(tenant: event.tenantID, id: event.id)
    }

    package static func == (a: EventKey, b: EventKey) -> Bool {
        a.tenant == b.tenant && a.id.hasSameUTF8(as: b.id)
    }

    /// The tenant as two words and the id as its bytes: a store hashes these keys a dozen
    /// times per delivery, and `UUID`'s own hashing goes through the slower byte path.
    package func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: tenant.uuid) { tenant in
            hasher.combine(tenant.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            hasher.combine(tenant.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        var id = id
        id.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// A delivery's identity in the tables.
package struct DeliveryKey: Hashable, Sendable {
    package var event: EventKey
    package var endpoint: UUID

    package init(_ event: EventKey, _ endpoint: UUID) {
        self.event = event
        self.endpoint = endpoint
    }
}

/// A delivery log call that names something absent or asks what its state forbids.
public struct RecordError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// No such delivery for this tenant (a foreign one is indistinguishable).
        case notFound
        /// The delivery's state forbids it (a resend of an open delivery).
        case conflict
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
