import AMQP
public import Events
import Foundation
public import Logging

/// What the CRM links to publish events: validates each event, publishes it persistent
/// and `mandatory` to the events exchange with the type as routing key, and returns only
/// once the broker confirmed it. Many publishes may be in flight at once.
public actor Producer {
    public struct Configuration: Sendable {
        public var amqpURL: String
        public var exchange: String
        public var limits: EventLimits
        /// How long a publish may wait for a connection and the broker's confirm.
        public var timeout: Duration

        public init(amqpURL: String, exchange: String = "herald.events", limits: EventLimits = EventLimits(), timeout: Duration = .seconds(10)) {
            self.amqpURL = amqpURL
            self.exchange = exchange
            self.limits = limits
            self.timeout = timeout
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private var connection: Connection?
    private var channel: Channel?
    private var connecting: Task<(Connection, Channel), any Error>?

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Publishes `event`. Throws `EventError` for an invalid event and `PublishError` when
    /// the broker did not confirm it within the timeout (nothing is reported as sent
    /// unless it was).
    public func publish(_ event: Event) async throws {
        try event.validate(configuration.limits)
        let body = WireFormat.encode(event)
        let message = Message(
            body: body, contentType: "application/json", messageID: event.id, type: event.type,
            timestamp: UInt64(max(0, event.occurredAt.timeIntervalSince1970)))
        let exchange = configuration.exchange
        let timeout = configuration.timeout
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let channel = try await self.readyChannel()
                    try await channel.publish(message, exchange: exchange, routingKey: event.type, mandatory: true)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw PublishError(.timeout, "no confirm from the broker within \(timeout)")
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch let error as BrokerError {
            if error.code == .connectionLost || error.code == .closed || error.code == .channelClosed { await reset() }
            switch error.code {
            case .returned:
                throw PublishError(.unroutable, "no queue is bound to \(exchange) for '\(event.type)': is a worker's topology declared?")
            case .nacked:
                throw PublishError(.rejected, "the broker refused the event")
            case .connectionFailed:
                throw PublishError(.unavailable, error.message)
            default:
                throw PublishError(.unavailable, error.description)
            }
        } catch let error as PublishError {
            if error.code == .timeout { await reset() }
            throw error
        }
    }

    /// Closes the connection; a later publish opens a new one.
    public func close() async {
        await reset()
    }

    /// The open channel, connecting first if needed; concurrent callers share one attempt.
    private func readyChannel() async throws -> Channel {
        if let channel, connection?.isOpen == true { return channel }
        let url = configuration.amqpURL
        let exchange = configuration.exchange
        let logger = logger
        let task = connecting ?? Task {
            let connection = try await Connection.connect(to: url, logger: logger)
            let channel = try await connection.openChannel()
            try await channel.declareExchange(exchange, type: .topic)
            try await channel.enableConfirms()
            return (connection, channel)
        }
        connecting = task
        defer { connecting = nil }
        let (connection, channel) = try await task.value
        self.connection = connection
        self.channel = channel
        return channel
    }

    private func reset() async {
        let old = connection
        connection = nil
        channel = nil
        await old?.close()
    }
}

/// Why an event was not confirmed by the broker.
public struct PublishError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        /// The broker could not be reached.
        case unavailable
        /// No confirm within the configured timeout.
        case timeout
        /// No queue is bound for the event's type (the message came back).
        case unroutable
        /// The broker nacked the message.
        case rejected
    }

    public let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "publish \(code.rawValue): \(message)" }
}
