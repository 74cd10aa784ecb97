import HeraldSupport
/// An AMQP channel: topology, publishing with confirms, consuming with manual acks.
///
/// A value handle: every call goes to the connection's thread. Delivery tags and
/// publisher-confirm sequence numbers belong to the channel they came from.
package struct Channel: Sendable {
    package let id: UInt16
    package let connection: Connection

    package func declareExchange(
        _ name: String, type: ExchangeType, durable: Bool = true, autoDelete: Bool = false, isInternal: Bool = false,
        arguments: FieldTable = [:]
    ) async throws {
        _ = try await rpc(.declareExchange(name: name, type: type, durable: durable, autoDelete: autoDelete, isInternal: isInternal, arguments: arguments))
    }

    package func deleteExchange(_ name: String) async throws {
        _ = try await rpc(.deleteExchange(name: name))
    }

    /// Declares a queue, or checks that it exists with `passive`; returns its depth.
    /// Declaring an existing queue with other arguments closes the channel (406).
    @discardableResult
    package func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: FieldTable = [:], passive: Bool = false
    ) async throws -> QueueInfo {
        let info = try await rpc(
            .declareQueue(name: name, passive: passive, durable: durable, exclusive: exclusive, autoDelete: autoDelete, arguments: arguments))
        return info ?? QueueInfo(name: name, messageCount: 0, consumerCount: 0)
    }

    package func bindQueue(_ queue: String, exchange: String, routingKey: String, arguments: FieldTable = [:]) async throws {
        _ = try await rpc(.bindQueue(queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments))
    }

    /// Removes a binding; one that does not exist is no error.
    package func unbindQueue(_ queue: String, exchange: String, routingKey: String, arguments: FieldTable = [:]) async throws {
        _ = try await rpc(.unbindQueue(queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments))
    }

    /// Routes what `source` routes with `routingKey` into the exchange `destination` too.
    package func bindExchange(_ destination: String, to source: String, routingKey: String) async throws {
        _ = try await rpc(.bindExchange(destination: destination, source: source, routingKey: routingKey))
    }

    package func unbindExchange(_ destination: String, from source: String, routingKey: String) async throws {
        _ = try await rpc(.unbindExchange(destination: destination, source: source, routingKey: routingKey))
    }

    package func purgeQueue(_ name: String) async throws {
        _ = try await rpc(.purgeQueue(name: name))
    }

    package func deleteQueue(_ name: String) async throws {
        _ = try await rpc(.deleteQueue(name: name))
    }

    /// How many unacknowledged deliveries the broker sends this channel's consumers.
    package func setPrefetch(_ count: UInt16) async throws {
        _ = try await rpc(.qos(prefetch: count))
    }

    /// Puts the channel in confirm mode: from then on `publish` returns only once the
    /// broker has taken responsibility for the message.
    package func enableConfirms() async throws {
        _ = try await rpc(.confirmSelect)
    }

    /// Publishes `message`. In confirm mode this returns after the broker's ack and throws
    /// on a nack, on a `mandatory` message that could not be routed (`returned`) and on a
    /// lost connection, and at once when the calling task is cancelled (the message may
    /// still reach the broker); many publishes may be outstanding at once.
    package func publish(_ message: Message, exchange: String, routingKey: String, mandatory: Bool = false) async throws {
        try await publish(message, exchange: exchange, routingKey: routingKey, mandatory: mandatory, reply: OneShot())
    }

    /// As above, answered through `reply`, which the caller may also answer first (with a
    /// time limit's error: `Publisher`).
    func publish(_ message: Message, exchange: String, routingKey: String, mandatory: Bool, reply: OneShot<Void>) async throws {
        if let violation = message.protocolViolation(exchange: exchange, routingKey: routingKey) {
            throw BrokerError(.invalidArgument, message: violation, operation: "basic.publish")
        }
        // Cancelling the caller ends its wait at once; a confirm that comes later is dropped.
        try await reply.wait {
            connection.post(.publish(id, Publish(message: message, exchange: exchange, routingKey: routingKey, mandatory: mandatory, reply: reply)))
        }
    }

    /// Starts consuming `queue` with manual acknowledgements. The sequence ends when the
    /// consumer is cancelled or the channel closes (throwing the reason). A delivery the
    /// broker still sends to a consumer this channel cancelled before comes through this
    /// one when it reads the same queue: it is this channel's to settle.
    ///
    /// A message whose body is over `maxBodyBytes` arrives with an excerpt of its body only
    /// (`Delivery.isTruncated`): its size is read from the content header and its frames
    /// are dropped as they come, so a consumer holds at most its prefetch (and what a
    /// cancelled one hands over) times this limit.
    ///
    /// With a `linger` and a prefetch window, the connection waits up to `linger` before
    /// reading messages that arrived while less than a quarter of the window is in
    /// progress, so that those of the next milliseconds are taken with them (`ReadLinger`).
    package func consume(
        _ queue: String, consumerTag: String = "", exclusive: Bool = false, arguments: FieldTable = [:],
        maxBodyBytes: Int = .max, linger: Duration = .zero
    ) async throws -> Consumer {
        let stream = DeliveryStream()
        let tag = try await withCheckedThrowingContinuation { (started: CheckedContinuation<String, any Error>) in
            connection.post(
                .consume(id, Consume(
                    queue: queue, consumerTag: consumerTag, exclusive: exclusive, arguments: arguments,
                    maxBodyBytes: maxBodyBytes, linger: linger, stream: stream, started: started)))
        }
        return Consumer(tag: tag, channel: self, deliveries: stream)
    }

    package func ack(_ deliveryTag: UInt64, multiple: Bool = false) {
        connection.post(.ack(id, deliveryTag, multiple: multiple))
    }

    package func nack(_ deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) {
        connection.post(.nack(id, deliveryTag, multiple: multiple, requeue: requeue))
    }

    package func reject(_ deliveryTag: UInt64, requeue: Bool) {
        connection.post(.reject(id, deliveryTag, requeue: requeue))
    }

    package func close() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            connection.post(.closeChannel(id, continuation))
        }
    }

    private func rpc(_ rpc: RPC) async throws -> QueueInfo? {
        try await withCheckedThrowingContinuation { continuation in
            connection.post(.rpc(id, rpc, continuation))
        }
    }
}

/// The deliveries of one consumer, in order.
package struct Consumer: AsyncSequence, Sendable {
    package typealias Element = Delivery
    package let tag: String
    package let channel: Channel
    let deliveries: DeliveryStream

    package func makeAsyncIterator() -> DeliveryStream.Iterator {
        DeliveryStream.Iterator(stream: deliveries)
    }

    /// Asks the broker to stop sending; the sequence ends at its reply (`basic.cancel-ok`),
    /// after the deliveries sent before it.
    package func cancel() {
        channel.connection.post(.cancel(channel.id, consumerTag: tag))
    }
}
