import HeraldSupport
import HeraldAMQP
public import HeraldEvents
import Foundation
public import Logging
import Tracing

/// What the CRM links to publish events: validates each event, publishes it persistent
/// and `mandatory` to the events exchange with the type as routing key, and returns only
/// once the broker confirmed it. Many publishes may be in flight at once.
public struct Producer: Sendable {
    public struct Configuration: Sendable {
        /// The broker, or a cluster's nodes as URLs separated by commas: the producer
        /// connects to one and, when it is lost, to the next; a publish in flight then
        /// fails (never reported as sent), so an outbox relay publishes it again.
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
    private let publisher: Publisher

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        let exchange = configuration.exchange
        publisher = Publisher(url: configuration.amqpURL, timeout: configuration.timeout, logger: logger) { channel in
            try await channel.declareExchange(exchange, type: .topic)
        }
    }

    /// Publishes `event`. Throws `EventError` for an invalid event and `PublishError` when
    /// the broker did not confirm it within the timeout.
    public func publish(_ event: Event) async throws {
        try event.validate(configuration.limits)
        try await withSpan("herald.publish", ofKind: .producer) { span in
            var headers: FieldTable = [WireFormat.bucketHeader: .string(String(WireFormat.bucket(of: event.tenantID)))]
            if span.isRecording {
                span.attributes["messaging.system"] = "rabbitmq"
                span.attributes["messaging.destination.name"] = configuration.exchange
                span.attributes["messaging.rabbitmq.destination.routing_key"] = event.type
                span.attributes["messaging.message.id"] = event.id
                span.attributes["herald.tenant_id"] = event.tenantID.lowercasedText
            }
            InstrumentationSystem.instrument.inject(span.context, into: &headers, using: MessageHeaders())
            try await publish(
                Message(
                    body: WireFormat.encode(event), headers: headers, contentType: "application/json", messageID: event.id, type: event.type,
                    timestamp: UInt64(max(0, event.occurredAt.timeIntervalSince1970))),
                type: event.type)
        }
    }

    private func publish(_ message: Message, type: String) async throws {
        do {
            try await publisher.publish(message, exchange: configuration.exchange, routingKey: type)
        } catch let error as BrokerError {
            switch error.code {
            case .returned:
                throw PublishError(.unroutable, "no queue is bound to \(configuration.exchange) for '\(type)': is a worker's topology declared?")
            case .nacked:
                throw PublishError(.rejected, "the broker refused the event")
            case .connectionFailed:
                throw PublishError(.unavailable, error.message)
            case .timeout:
                throw PublishError(.timeout, error.message)
            default:
                throw PublishError(.unavailable, error.description)
            }
        }
    }

    /// Closes the connection; a later publish opens a new one.
    public func close() async {
        await publisher.close()
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
