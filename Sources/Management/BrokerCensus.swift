import Delivery
import HeraldAMQP
public import Logging
public import Topology

/// What a queue is for.
public enum QueueRole: Sendable, Equatable {
    case work
    /// A work queue shard for events (`HERALD_WORK_SHARDS`).
    case shard(Int)
    /// The retry ladder's rung, with its delay's label (`5m`).
    case retry(rung: Int, delay: String)
    case deferred
    case parking

    public var label: String {
        switch self {
        case .work: "work"
        case .shard(let index): "shard \(index)"
        case .retry(_, let delay): "retry \(delay)"
        case .deferred: "defer"
        case .parking: "parking"
        }
    }
}

/// One of Herald's queues as the broker reports it.
public struct QueueView: Sendable, Equatable {
    public var role: QueueRole
    public var name: String
    /// Nil when the queue is missing (no worker declared it yet).
    public var messages: Int?
    public var consumers: Int?
}

/// The depth and consumers of every Herald queue, from passive declares: what the console
/// shows and the worker's queue gauges record. No management plugin is needed.
public struct BrokerCensus: Sendable {
    let amqpURL: String
    let topology: Topology
    let logger: Logger

    public init(amqpURL: String, topology: Topology, logger: Logger) {
        self.amqpURL = amqpURL
        self.topology = topology
        self.logger = logger
    }

    /// Every queue in the order a message travels: work (and its shards), the rungs,
    /// defer, parking.
    public var roles: [(role: QueueRole, name: String)] {
        [(.work, topology.workQueue)] + (0..<topology.shards).map { (.shard($0), topology.shardQueue($0)) }
            + topology.ladder.delays.indices.map { (.retry(rung: $0, delay: topology.ladder.label(rung: $0)), topology.retryQueue(rung: $0)) }
            + [(.deferred, topology.deferQueue), (.parking, topology.parkingQueue)]
    }

    /// `ManagementError.unavailable` when the broker cannot be reached.
    public func queues() async throws -> [QueueView] {
        let connection: Connection
        do {
            connection = try await Connection.connect(to: amqpURL, logger: logger)
        } catch {
            throw ManagementError(.unavailable, "the broker is unreachable: \(error)")
        }
        var views: [QueueView] = []
        for (role, name) in roles {
            // A passive declare on its own channel: a missing queue closes only that channel.
            if let channel = try? await connection.openChannel(), let info = try? await channel.declareQueue(name, passive: true) {
                views.append(QueueView(role: role, name: name, messages: Int(info.messageCount), consumers: Int(info.consumerCount)))
                try? await channel.close()
            } else {
                views.append(QueueView(role: role, name: name))
            }
        }
        await connection.close()
        return views
    }
}
