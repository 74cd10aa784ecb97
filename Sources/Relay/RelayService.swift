import HeraldEvents
import Foundation
public import Logging
public import Postgres
public import HeraldProducer
public import ServiceLifecycle

/// Publishes the outbox: pending rows, oldest first, in batches locked with
/// `FOR UPDATE SKIP LOCKED` so that several relays share the work. A batch is marked sent
/// in the same transaction only after the broker confirmed every event; a relay that dies
/// in between leaves the rows pending and another publishes them again: the event id is
/// the same, and the worker stores each (tenant, id) once.
public struct RelayService: Service, CustomStringConvertible {
    /// What service-lifecycle logs for this service: never a URL, which holds a password.
    public var description: String { "RelayService(batch: \(batchSize))" }

    let pool: Pool
    let producer: Producer
    let batchSize: Int
    let idleInterval: Duration
    let bell: RelayBell
    let prepares: Bool
    let logger: Logger

    /// `bell`: rung by whoever just wrote to the outbox in this process (an inbound
    /// webhook's event), so it is published at once instead of at the next look.
    /// `prepares`: the statements are prepared once per session, for Herald's own database,
    /// whose sessions a pooler must keep anyway (the workers prepare theirs); not for a
    /// CRM's database, which may sit behind a pooler in transaction mode.
    public init(
        pool: Pool, producer: Producer, batchSize: Int = 200, idleInterval: Duration = .milliseconds(200), bell: RelayBell = RelayBell(),
        prepares: Bool = false, logger: Logger
    ) {
        self.pool = pool
        self.producer = producer
        self.batchSize = batchSize
        self.idleInterval = idleInterval
        self.bell = bell
        self.prepares = prepares
        self.logger = logger
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                // The outbox is also written by other processes: look at least every idle interval.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: idleInterval)
                        bell.ring()
                    }
                }
                var failures = 0
                for await _ in bell.rings {
                    while !Task.isShuttingDownGracefully {
                        do {
                            let relayed = try await relayBatch()
                            failures = 0
                            if relayed == 0 { break }
                        } catch {
                            failures += 1
                            logger.warning("outbox batch not relayed; retrying", metadata: ["reason": "\(error)"])
                            let pause = Duration.milliseconds(min(5000, 200 * (1 << min(failures, 5))))
                            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                            break
                        }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            bell.close()
        }
    }

    /// Relays one batch; returns the rows it settled (sent or refused as invalid).
    public func relayBatch() async throws -> Int {
        try await pool.transaction { tx in
            // A relay woken for every inbound webhook runs these for batches of a few rows.
            let pending: Query = """
                SELECT id, tenant_id, event_id, type, occurred_at, data::text, attributes::text
                FROM outbox WHERE sent_at IS NULL AND error IS NULL
                ORDER BY id LIMIT \(batchSize)
                FOR UPDATE SKIP LOCKED
                """
            let rows = try await tx.query(prepares ? pending.prepared() : pending)
            guard !rows.isEmpty else { return 0 }
            var invalid: [(Int64, String)] = []
            var events: [(Int64, Event)] = []
            for row in rows {
                let id = try row.decode(Int64.self, 0)
                let attributes = (try? JSONSerialization.jsonObject(with: Data(try row.decode(String.self, 6).utf8)) as? [String: String]) ?? [:]
                let event = Event(
                    id: try row.decode(String.self, 2), type: try row.decode(String.self, 3), tenantID: try row.decode(UUID.self, 1),
                    occurredAt: try row.decode(Date.self, 4), data: Array(try row.decode(String.self, 5).utf8), attributes: attributes)
                do throws(EventError) {
                    try event.validate(producer.configuration.limits)
                    events.append((id, event))
                } catch {
                    invalid.append((id, error.description))
                }
            }
            // Every valid event confirmed, or the whole batch stays pending.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (_, event) in events {
                    group.addTask { try await producer.publish(event) }
                }
                try await group.waitForAll()
            }
            let sent = events.map { String($0.0) }
            if !sent.isEmpty {
                let settled: Query = "UPDATE outbox SET sent_at = now() WHERE id = ANY(\(sent)::bigint[])"
                try await tx.query(prepares ? settled.prepared() : settled)
            }
            for (id, reason) in invalid {
                try await tx.query("UPDATE outbox SET error = \(reason) WHERE id = \(id)")
                logger.warning("outbox row refused", metadata: ["outbox_id": "\(id)", "reason": "\(reason)"])
            }
            return rows.count
        }
    }
}

/// Wakes a relay: rings are not counted, one pending ring stands for any number.
public final class RelayBell: Sendable {
    let rings: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (rings, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func ring() {
        continuation.yield()
    }

    /// Ends the relay's loop after the batch in hand.
    func close() {
        continuation.finish()
    }
}
