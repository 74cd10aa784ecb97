import HeraldAMQP
public import Foundation
public import Logging
public import Topology
public import HeraldEvents

/// What puts a delivery message on the work queue: the API's `Dispatcher`, or a recorder
/// in the route tests.
public protocol DeliveryDispatching: Sendable {
    func dispatch(delivery: UUID, attempt: Int, manual: Bool) async throws
    /// Publishes an operator event; a failure is logged, never the caller's.
    func announce(_ event: OperatorEvent) async
}

extension DeliveryDispatching {
    public func announce(_ event: OperatorEvent) async {}
}

/// Sends delivery messages (resends, replays, test events) into the work queue, with a
/// confirm, for processes other than the worker.
public struct Dispatcher: DeliveryDispatching {
    let publisher: Publisher
    let topology: Topology
    /// The tenant whose endpoints receive operator events as webhooks; nil: none.
    let operatorTenant: UUID?
    let logger: Logger

    public init(amqpURL: String, topology: Topology, timeout: Duration = .seconds(10), operatorTenant: UUID? = nil, logger: Logger) {
        self.topology = topology
        self.operatorTenant = operatorTenant
        self.logger = logger
        publisher = Publisher(url: amqpURL, timeout: timeout, logger: logger) { channel in
            let kept = try await topology.declare(on: channel)
            if !kept.isEmpty { logger.warning("\(Topology.KeptQueue.warning)", metadata: ["queues": "\(kept)"]) }
        }
    }

    public func dispatch(delivery: UUID, attempt: Int, manual: Bool) async throws {
        do {
            try await publisher.publish(
                WorkMessage.retry(delivery: delivery, attempt: attempt, manual: manual), exchange: topology.requeueExchange,
                routingKey: Topology.requeueRoutingKey)
        } catch {
            throw ManagementError(.unavailable, "the broker did not accept the delivery: \(error)")
        }
    }

    public func announce(_ event: OperatorEvent) async {
        do {
            for (message, exchange) in OperatorEvents.messages(event, topology: topology, operatorTenant: operatorTenant) {
                try await publisher.publish(message, exchange: exchange, routingKey: event.kind.rawValue, mandatory: false)
            }
        } catch {
            logger.warning("operator event not published", metadata: ["type": "\(event.kind.rawValue)", "reason": "\(error)"])
        }
    }

    public func close() async {
        await publisher.close()
    }

    /// Whether its broker connection is open (see `Publisher.maintain`).
    public var isConnected: Bool {
        get async { await publisher.isConnected }
    }

    /// Keeps the connection open until cancelled: run it as a service of the process.
    public func maintainConnection() async {
        await publisher.maintain()
    }
}
