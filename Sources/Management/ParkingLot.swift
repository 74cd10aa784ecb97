import HeraldAMQP
public import Foundation
public import Logging
import Synchronization
public import Topology

/// A parked message as the operator sees it: why, from where, when; never its body.
public struct ParkedView: Codable, Sendable, Equatable {
    public var id: String
    public var reason: String
    public var routingKey: String
    public var parkedAt: Date?
    /// The body's size; `bodyKept` is false when only an excerpt was parked.
    public var bodyBytes: Int
    public var bodyKept: Bool
    public var messageId: String?
}

/// The parking queue for the operator: list what waits there, replay a message into the
/// work queue (after the cause is fixed, e.g. its tenant created), or discard it.
///
/// AMQP cannot address a message in a queue, so each call takes up to `scanLimit`
/// messages with a consumer, acts on the one it needs, and lets the others return to the
/// queue unacknowledged when its connection closes. Listing and discarding read no body
/// (only headers and declared sizes); a replay reads bodies up to the workers' limit, so
/// it holds at most `scanLimit` × `maxMessageBytes`.
public struct ParkingLot: Sendable {
    let amqpURL: String
    let topology: Topology
    let logger: Logger
    /// Messages one call looks at at most.
    let scanLimit: Int
    /// The workers' `HERALD_MAX_MESSAGE_BYTES`: no parked body is larger, but an excerpt.
    let maxMessageBytes: Int
    /// When a look of this lot last let messages go back to the queue.
    private let released = Released()

    public init(amqpURL: String, topology: Topology, scanLimit: Int = 1000, maxMessageBytes: Int = 320 * 1024, logger: Logger) {
        self.amqpURL = amqpURL
        self.topology = topology
        self.scanLimit = scanLimit
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
    }

    /// The oldest `limit` parked messages.
    public func list(limit: Int) async throws -> [ParkedView] {
        try await scan(limit: limit, maxBodyBytes: 0) { _, messages in messages.map(Self.view) }
    }

    /// Publishes the parked message `id` into the work queue, as it arrived (without the
    /// parking headers), then removes it from the parking queue.
    public func replay(id: String) async throws {
        try await withParked(id, maxBodyBytes: maxMessageBytes) { connection, parked in
            guard !parked.isTruncated, parked.message.headers[Parked.bodyBytesHeader] == nil else {
                throw ManagementError(
                    .conflict, "only an excerpt of this message was kept (its body was over HERALD_MAX_MESSAGE_BYTES): discard it")
            }
            var message = parked.message
            // Without the parking headers and the broker's (`x-death`, `x-delivery-count`).
            message.headers = message.headers.filter { !Parked.headers.contains($0.key) && !$0.key.hasPrefix("x-") }
            message.persistent = true
            let publisher = try await connection.openChannel()
            try await publisher.enableConfirms()
            try await publisher.publish(message, exchange: "", routingKey: topology.workQueue, mandatory: true)
            parked.acknowledge()
            logger.notice("parked message replayed", metadata: ["parked_id": "\(id)"])
        }
    }

    /// Removes the parked message `id` for good.
    public func discard(id: String) async throws {
        try await withParked(id, maxBodyBytes: 0) { _, parked in
            parked.acknowledge()
            logger.notice("parked message discarded", metadata: ["parked_id": "\(id)"])
        }
    }

    /// Runs `act` on the parked message `id`. A message another look held a moment ago may
    /// not be back in the queue yet: two more looks, a little later, before "not found".
    private func withParked(_ id: String, maxBodyBytes: Int, _ act: (Connection, Taken) async throws -> Void) async throws {
        for look in 0..<3 {
            let found = try await scan(limit: scanLimit, maxBodyBytes: maxBodyBytes) { connection, messages in
                guard let parked = messages.first(where: { Self.view($0).id == id }) else { return false }
                try await act(connection, parked)
                return true
            }
            if found { return }
            if look < 2 { try await Task.sleep(for: .milliseconds(100 << look)) }
        }
        throw ManagementError(.notFound, "no parked message \(id.prefix(64)) among the oldest \(scanLimit)")
    }

    /// Takes up to `limit` parked messages (fewer if others hold some for a second) and
    /// hands them to `body`; whatever `body` does not acknowledge returns to the queue.
    private func scan<T>(limit: Int, maxBodyBytes: Int, _ body: (Connection, [Taken]) async throws -> T) async throws -> T {
        let connection: Connection
        do {
            connection = try await Connection.connect(to: amqpURL, logger: logger)
        } catch {
            throw ManagementError(.unavailable, "the broker is unreachable: \(error)")
        }
        // What another look holds, or held until a moment ago, is counted ready again a
        // moment after its connection closed (a quorum queue returns messages through its
        // log): then an empty count is asked again a few times before it is believed.
        let looks = released.isRecent ? 5 : 1
        released.begin()
        defer { released.end() }
        do {
            let channel = try await connection.openChannel()
            var waiting = 0
            for look in 0..<looks {
                waiting = Int(try await channel.declareQueue(topology.parkingQueue, passive: true).messageCount)
                if waiting > 0 || look == looks - 1 { break }
                try await Task.sleep(for: .milliseconds(25 << look))
            }
            let wanted = min(waiting, limit, Int(UInt16.max))
            var taken: [HeraldAMQP.Delivery] = []
            if wanted > 0 {
                try await channel.setPrefetch(UInt16(wanted))
                let consumer = try await channel.consume(topology.parkingQueue, maxBodyBytes: maxBodyBytes)
                taken = await Self.collect(wanted, from: consumer, within: .seconds(2))
                consumer.cancel()
            }
            let result = try await body(connection, taken.map { Taken(delivery: $0, channel: channel) })
            await connection.close()
            if !taken.isEmpty { released.now() }
            return result
        } catch {
            await connection.close()
            released.now()
            throw error
        }
    }

    /// The looks of this lot that hold messages now, and when one last gave messages back:
    /// meanwhile, and for a moment after, the queue counts them as not ready.
    private final class Released: Sendable {
        private let state = Mutex<(looking: Int, last: ContinuousClock.Instant?)>((0, nil))

        func begin() { state.withLock { $0.looking += 1 } }
        func end() { state.withLock { $0.looking -= 1 } }
        func now() { state.withLock { $0.last = .now } }

        var isRecent: Bool {
            state.withLock { $0.looking > 0 || $0.last.map { ContinuousClock.now - $0 < .seconds(2) } ?? false }
        }
    }

    /// Up to `count` deliveries, or those that came within `limit`.
    private static func collect(_ count: Int, from consumer: Consumer, within limit: Duration) async -> [HeraldAMQP.Delivery] {
        let collected = Collected()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await delivery in consumer {
                        if collected.append(delivery) >= count { return }
                    }
                } catch {}
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
        return collected.items.withLock { $0 }
    }

    private final class Collected: Sendable {
        let items = Mutex<[HeraldAMQP.Delivery]>([])

        func append(_ delivery: HeraldAMQP.Delivery) -> Int {
            items.withLock {
                $0.append(delivery)
                return $0.count
            }
        }
    }

    /// A parked message in hand, acknowledged (removed) only on purpose.
    struct Taken {
        let delivery: HeraldAMQP.Delivery
        let channel: Channel

        var message: Message { delivery.message }
        var isTruncated: Bool { delivery.isTruncated }

        func acknowledge() {
            channel.ack(delivery.deliveryTag)
        }
    }

    static func view(_ taken: Taken) -> ParkedView {
        let headers = taken.message.headers
        let parkedAt = headers[Parked.atHeader]?.int.map { Date(timeIntervalSince1970: Double($0) / 1000) }
        let fullSize = headers[Parked.bodyBytesHeader]?.int.map(Int.init)
        // A message the broker dead-lettered (over the delivery limit) has no parking
        // headers, only the broker's `x-death` record.
        let death = BrokerDeath(headers)
        return ParkedView(
            id: headers[Parked.idHeader]?.string ?? death?.id(messageID: taken.message.messageID, bodySize: taken.delivery.bodySize)
                ?? taken.message.messageID ?? "",
            reason: headers[Parked.reasonHeader]?.string ?? death?.reason ?? "",
            routingKey: headers[Parked.fromHeader]?.string ?? death?.routingKey ?? taken.delivery.routingKey,
            parkedAt: parkedAt ?? death?.time, bodyBytes: fullSize ?? taken.delivery.bodySize, bodyKept: fullSize == nil,
            messageId: taken.message.messageID)
    }
}

/// The broker's record of a message it dead-lettered into the parking queue: the first
/// entry of `x-death`.
struct BrokerDeath {
    var reason: String
    var routingKey: String?
    var time: Date?
    /// What names this death among others: the queue, the broker's time and count.
    private var facts: String

    init?(_ headers: FieldTable) {
        guard case .array(let deaths) = headers["x-death"], case .table(let death)? = deaths.first,
            let cause = death["reason"]?.string
        else { return nil }
        let queue = death["queue"]?.string ?? "its queue"
        reason =
            cause == "delivery_limit"
            ? "returned to \(queue) unprocessed more times than its delivery limit (HERALD_DELIVERY_LIMIT); the broker dead-lettered it"
            : "dead-lettered by the broker from \(queue) (\(cause))"
        if case .array(let keys)? = death["routing-keys"] { routingKey = keys.first?.string }
        var seconds: UInt64 = 0
        if case .timestamp(let value)? = death["time"] {
            seconds = value
            time = Date(timeIntervalSince1970: Double(value))
        }
        facts = "\(queue)|\(seconds)|\(death["count"]?.int ?? 0)|\(routingKey ?? "")"
    }

    /// An id for a message the broker parked, the same at every look: its message id is
    /// not enough (a deferred message has none, an event's is unique within its tenant
    /// only), so it is a digest of that, the death's facts and the body's size.
    func id(messageID: String?, bodySize: Int) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(messageID ?? "")|\(facts)|\(bodySize)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "dl-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
