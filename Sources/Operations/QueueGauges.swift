public import Logging
public import Management
import Metrics
public import ServiceLifecycle

/// A worker's view of the queues it uses: every `interval`, the messages ready and the
/// consumers of each (`herald_queue_messages`, `herald_queue_consumers` by queue and kind),
/// read from the broker with passive declares, so operators can alert on a growing backlog.
public struct QueueGauges: Service, CustomStringConvertible {
    public var description: String { "QueueGauges" }

    let census: BrokerCensus
    let interval: Duration
    let logger: Logger

    public init(census: BrokerCensus, interval: Duration = .seconds(15), logger: Logger) {
        self.census = census
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await record()
            } catch {
                logger.debug("queue gauges not read", metadata: ["reason": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Reads every queue once and records what it found; a missing queue records nothing.
    public func record() async throws {
        for queue in try await census.queues() {
            let kind =
                switch queue.role {
                case .work: "work"
                case .shard: "shard"
                case .retry: "retry"
                case .deferred: "defer"
                case .parking: "parking"
                }
            let labels = [("queue", queue.name), ("kind", kind)]
            if let messages = queue.messages { Gauge(label: "herald_queue_messages", dimensions: labels).record(messages) }
            if let consumers = queue.consumers { Gauge(label: "herald_queue_consumers", dimensions: labels).record(consumers) }
        }
    }
}
