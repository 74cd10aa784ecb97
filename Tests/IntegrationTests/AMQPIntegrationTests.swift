import HeraldAMQP
import Testing
import TestSupport

@Suite("RabbitMQ over rabbitmq-c (real broker)")
struct AMQPIntegrationTests {
    @Test func publishesWithAThousandConfirmsOutstandingThenConsumesAndAcks() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let exchange = TestServices.uniqueName("events")
        let queue = TestServices.uniqueName("work")
        try await channel.declareExchange(exchange, type: .topic)
        try await channel.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
        try await channel.bindQueue(queue, exchange: exchange, routingKey: "client.*")
        try await channel.enableConfirms()

        let count = 1000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    let message = Message(
                        body: Array("{\"n\":\(index)}".utf8), headers: ["n": .int(Int64(index)), "tenant": "t1"],
                        messageID: "evt_\(index)")
                    try await channel.publish(message, exchange: exchange, routingKey: "client.created", mandatory: true)
                }
            }
            try await group.waitForAll()
        }

        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.setPrefetch(100)
        let consumer = try await consumerChannel.consume(queue)
        var seen = Set<Int64>()
        for try await delivery in consumer {
            let n = try #require(delivery.message.headers["n"]?.int)
            #expect(delivery.message.body == Array("{\"n\":\(n)}".utf8))
            #expect(delivery.message.messageID == "evt_\(n)")
            #expect(delivery.message.persistent)
            #expect(delivery.routingKey == "client.created")
            #expect(delivery.message.headers["tenant"] == "t1")
            seen.insert(n)
            consumerChannel.ack(delivery.deliveryTag)
            if seen.count == count { break }
        }
        #expect(seen == Set(0..<Int64(count)))
        consumer.cancel()
        try await consumerChannel.close()

        // Acked messages are gone: after the consuming channel closed, nothing was requeued.
        let info = try await channel.declareQueue(queue, passive: true)
        #expect(info.messageCount == 0)
        try await channel.deleteQueue(queue)
        try await channel.deleteExchange(exchange)
        await connection.close()
        #expect(await connection.closed() == nil)
    }

    /// A consumer cancelled while the broker is sending still hands out every message sent
    /// before the cancel took effect: they are this channel's to ack, and a new consumer on
    /// the same channel takes the rest. Nothing stays unacked, nothing is delivered twice.
    @Test func aCancelledConsumerHandsOutWhatCrossedItsCancelAndTheNextTakesTheRest() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let setup = try await connection.openChannel()
        let queue = TestServices.uniqueName("resubscribe")
        try await setup.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
        try await setup.enableConfirms()
        let count = 3000
        for start in stride(from: 0, to: count, by: 500) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in start..<(start + 500) {
                    group.addTask { try await setup.publish(Message(body: Array("\(n)".utf8)), exchange: "", routingKey: queue) }
                }
                try await group.waitForAll()
            }
        }
        let channel = try await connection.openChannel()
        var seen: [Int] = []
        // Subscriptions cancelled while acks keep the broker sending: deliveries cross the cancel.
        for round in 0..<40 {
            try await channel.setPrefetch(UInt16(5 + round % 20))
            let consumer = try await channel.consume(queue)
            var taken = 0
            for try await delivery in consumer {
                seen.append(try #require(Int(String(decoding: delivery.message.body, as: UTF8.self))))
                channel.ack(delivery.deliveryTag)
                taken += 1
                if taken == 30 { consumer.cancel() }
            }
            #expect(taken >= 30)
        }
        try await channel.setPrefetch(500)
        let last = try await channel.consume(queue)
        // A time limit: were a message lost, the stream would wait for it forever.
        let limit = Task {
            try? await Task.sleep(for: .seconds(60))
            last.cancel()
        }
        if seen.count < count {
            for try await delivery in last {
                seen.append(try #require(Int(String(decoding: delivery.message.body, as: UTF8.self))))
                channel.ack(delivery.deliveryTag)
                if seen.count == count { break }
            }
        }
        limit.cancel()
        last.cancel()
        #expect(seen.count == count, "\(count - Set(seen).count) messages never handed out")
        #expect(Set(seen) == Set(0..<count))
        try await channel.close()
        let info = try await setup.declareQueue(queue, passive: true)
        #expect(info.messageCount == 0, "every message was acked")
        try await setup.deleteQueue(queue)
        await connection.close()
    }

    /// The publisher's one watch over time limits lets every finished publish go: confirmed,
    /// refused before it was sent (a routing key over 255 bytes), or returned unroutable.
    @Test func thePublishersWatchHoldsOnlyWhatWaits() async throws {
        let queue = TestServices.uniqueName("watched")
        let setup = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        try await setup.openChannel().declareQueue(queue)
        let publisher = Publisher(url: TestServices.amqpURL, timeout: .seconds(30), logger: TestServices.logger)
        try await publisher.publish(Message(body: [0]), exchange: "", routingKey: queue)
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<200 {
                group.addTask { try? await publisher.publish(Message(body: [UInt8(n % 256)]), exchange: "", routingKey: queue) }
            }
        }
        #expect(await publisher.watched == 0)
        await #expect(throws: BrokerError.self) {
            try await publisher.publish(Message(body: [1]), exchange: "", routingKey: String(repeating: "q", count: 300))
        }
        await #expect(throws: BrokerError.self) {
            try await publisher.publish(Message(body: [2]), exchange: "", routingKey: TestServices.uniqueName("nowhere"))
        }
        #expect(await publisher.watched == 0, "a finished publish is still watched, and holds back the ones after it")
        try await publisher.publish(Message(body: [3]), exchange: "", routingKey: queue)
        #expect(await publisher.watched == 0)
        await publisher.close()
        let channel = try await setup.openChannel()
        #expect(try await channel.declareQueue(queue).messageCount == 202)
        try await channel.deleteQueue(queue)
        await setup.close()
    }

    @Test func unroutableMandatoryPublishFails() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let exchange = TestServices.uniqueName("nowhere")
        try await channel.declareExchange(exchange, type: .topic, autoDelete: false)
        try await channel.enableConfirms()
        do {
            try await channel.publish(Message(body: [1]), exchange: exchange, routingKey: "no.binding", mandatory: true)
            Issue.record("an unroutable mandatory message was reported as published")
        } catch let error as BrokerError {
            #expect(error.code == .returned)
            #expect(error.replyCode == 312)
        }
        // Routable publishes around it still succeed on the same channel.
        let queue = TestServices.uniqueName("routable")
        try await channel.declareQueue(queue)
        try await channel.bindQueue(queue, exchange: exchange, routingKey: "yes")
        try await channel.publish(Message(body: [2]), exchange: exchange, routingKey: "yes", mandatory: true)
        try await channel.deleteQueue(queue)
        try await channel.deleteExchange(exchange)
        await connection.close()
    }

    @Test func publishingToAMissingExchangeClosesOnlyThatChannel() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        try await channel.enableConfirms()
        do {
            try await channel.publish(Message(body: [1]), exchange: TestServices.uniqueName("missing"), routingKey: "x")
            Issue.record("publishing to a missing exchange succeeded")
        } catch let error as BrokerError {
            #expect(error.code == .channelClosed)
            #expect(error.replyCode == 404)
        }
        let other = try await connection.openChannel()
        try await other.declareQueue(TestServices.uniqueName("alive"), exclusive: true, autoDelete: true)
        #expect(connection.isOpen)
        await connection.close()
    }

    @Test func inequivalentRedeclareIsReportedWithTheQueueName() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let queue = TestServices.uniqueName("ttl")
        try await channel.declareQueue(queue, arguments: ["x-message-ttl": .int(1000)])
        do {
            try await channel.declareQueue(queue, arguments: ["x-message-ttl": .int(2000)])
            Issue.record("redeclaring with another TTL succeeded")
        } catch let error as BrokerError {
            #expect(error.replyCode == 406)
            #expect(error.operation == "queue.declare \(queue)")
        }
        let cleanup = try await connection.openChannel()
        try await cleanup.deleteQueue(queue)
        await connection.close()
    }

    @Test func expiredMessagesDeadLetterIntoTheTargetQueue() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let retryExchange = TestServices.uniqueName("retry")
        let delayQueue = TestServices.uniqueName("delay")
        let target = TestServices.uniqueName("target")
        try await channel.declareExchange(retryExchange, type: .direct)
        try await channel.declareQueue(target)
        try await channel.bindQueue(target, exchange: retryExchange, routingKey: "back")
        try await channel.declareQueue(
            delayQueue,
            arguments: [
                "x-message-ttl": .int(200), "x-dead-letter-exchange": .string(retryExchange),
                "x-dead-letter-routing-key": "back", "x-queue-type": "quorum",
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
            ])
        try await channel.enableConfirms()
        try await channel.publish(
            Message(body: Array("retry me".utf8), headers: ["herald-attempt": .int(2)]), exchange: "", routingKey: delayQueue,
            mandatory: true)

        let consumer = try await channel.consume(target)
        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        #expect(delivery.message.body == Array("retry me".utf8))
        #expect(delivery.message.headers["herald-attempt"]?.int == 2)
        #expect(delivery.routingKey == "back")
        // The broker records why it dead-lettered the message.
        guard case .array(let deaths)? = delivery.message.headers["x-death"], case .table(let death)? = deaths.first else {
            Issue.record("no x-death header")
            return
        }
        #expect(death["reason"] == "expired")
        #expect(death["queue"]?.string == delayQueue)
        channel.ack(delivery.deliveryTag)
        consumer.cancel()
        for queue in [delayQueue, target] { try await channel.deleteQueue(queue) }
        try await channel.deleteExchange(retryExchange)
        await connection.close()
    }

    @Test func rejectedDeliveriesComeBackWhenRequeued() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let queue = TestServices.uniqueName("requeue")
        try await channel.declareQueue(queue)
        try await channel.enableConfirms()
        try await channel.publish(Message(body: [7]), exchange: "", routingKey: queue)
        let consumer = try await channel.consume(queue)
        var iterator = consumer.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(!first.redelivered)
        channel.nack(first.deliveryTag, requeue: true)
        let second = try #require(try await iterator.next())
        #expect(second.redelivered)
        #expect(second.message.body == [7])
        channel.ack(second.deliveryTag)
        consumer.cancel()
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    /// A connection, a channel with confirms and a new quorum queue holding messages
    /// `[0]`, `[1]`, … `[count - 1]`.
    static func quorumQueue(holding count: Int) async throws -> (Connection, HeraldAMQP.Channel, String) {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let queue = TestServices.uniqueName("held")
        try await channel.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
        try await channel.enableConfirms()
        for n in 0..<count { try await channel.publish(Message(body: [UInt8(n)]), exchange: "", routingKey: queue) }
        return (connection, channel, queue)
    }

    /// An ack held for company leaves when its time comes, with nothing else to carry it:
    /// the broker, whose window it fills, sends the next message only then.
    @Test func aHeldAckLeavesWhenItsTimeComes() async throws {
        let (connection, channel, queue) = try await Self.quorumQueue(holding: 12)
        let consuming = try await connection.openChannel()
        // A window of 8 holds up to 2 acks; one held with 7 deliveries in progress waits.
        try await consuming.setPrefetch(8)
        let consumer = try await consuming.consume(queue)
        let ninth: [UInt8]? = try await within(.seconds(10)) {
            var iterator = consumer.makeAsyncIterator()
            var tags: [UInt64] = []
            for _ in 0..<8 { tags.append(try #require(try await iterator.next()).deliveryTag) }
            consuming.ack(tags[0])
            return try await iterator.next()?.message.body
        }
        #expect(ninth == [8], "the ninth message came only if the held ack left")
        consumer.cancel()
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    /// A consumer with a linger reads a message that arrives while its window is quiet only
    /// after the linger; one that arrives while a quarter of the window is in progress at
    /// once; and once that settles, the next waits again.
    @Test func aLingeringConsumerWaitsOnlyWhileItsWindowIsQuiet() async throws {
        let linger = Duration.seconds(4)
        let (connection, _, queue) = try await Self.quorumQueue(holding: 0)
        let publishing = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let publisher = try await publishing.openChannel()
        try await publisher.enableConfirms()
        let consuming = try await connection.openChannel()
        // A window of 4: one message in progress is a quarter.
        try await consuming.setPrefetch(4)
        let consumer = try await consuming.consume(queue, linger: linger)
        var iterator = consumer.makeAsyncIterator()
        func timeToTake(_ n: UInt8) async throws -> (Duration, UInt64) {
            let start = ContinuousClock.now
            try await publisher.publish(Message(body: [n]), exchange: "", routingKey: queue)
            let delivery = try #require(try await iterator.next())
            #expect(delivery.message.body == [n])
            return (ContinuousClock.now - start, delivery.deliveryTag)
        }

        let (alone, first) = try await timeToTake(0)
        #expect(alone >= linger, "nothing in progress: read after the linger")
        let (behind, second) = try await timeToTake(1)
        #expect(behind < linger, "one of four in progress: read at once")
        // Both settled (posted before the next publish, handled before its data is judged).
        consuming.ack(first)
        consuming.ack(second)
        let (again, third) = try await timeToTake(2)
        #expect(again >= linger, "quiet again: read after the linger")
        consuming.ack(third)

        consumer.cancel()
        try await publisher.deleteQueue(queue)
        await publishing.close()
        await connection.close()
    }

    /// Acks held when their channel closes leave before the close: only the messages not
    /// acked go back to the queue.
    @Test func heldAcksLeaveBeforeTheirChannelCloses() async throws {
        let (connection, channel, queue) = try await Self.quorumQueue(holding: 3)
        let consuming = try await connection.openChannel()
        try await consuming.setPrefetch(100)
        let consumer = try await consuming.consume(queue)
        var iterator = consumer.makeAsyncIterator()
        var tags: [UInt64] = []
        for _ in 0..<3 { tags.append(try #require(try await iterator.next()).deliveryTag) }
        // Held: one of the 25 a window of 100 gathers, two deliveries still in progress.
        consuming.ack(tags[0])
        try await consuming.close()
        let limit = ContinuousClock.now + .seconds(10)
        var ready = 0
        while ready == 0 && ContinuousClock.now < limit {
            ready = Int(try await channel.declareQueue(queue, passive: true).messageCount)
            if ready == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(ready == 2, "the acked message does not come back")
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    /// A node that lets the process in but cannot serve it is passed over: the next
    /// connect starts at the following node of the list.
    @Test func anAbandonedNodeIsPassedOverByTheNextConnect() async throws {
        // Two "nodes" that are the same broker, told apart by their heartbeats.
        let base = TestServices.amqpURL.split(separator: "?")[0]
        let list = "\(base)?heartbeat=7,\(base)?heartbeat=9"
        let rotation = BrokerRotation()
        let first = try await Connection.connect(to: list, logger: TestServices.logger, rotation: rotation)
        #expect(first.url.heartbeat == 7)
        await first.close()
        let again = try await Connection.connect(to: list, logger: TestServices.logger, rotation: rotation)
        #expect(again.url.heartbeat == 7, "a connection closed on purpose keeps its node")
        await again.abandon()
        let next = try await Connection.connect(to: list, logger: TestServices.logger, rotation: rotation)
        #expect(next.url.heartbeat == 9)
        await next.close()
    }

    @Test func wrongCredentialsFailToConnect() async throws {
        do {
            _ = try await Connection.connect(to: "amqp://guest:wrong@127.0.0.1:5673/", logger: TestServices.logger)
            Issue.record("logged in with a wrong password")
        } catch let error as BrokerError {
            #expect(error.code == .connectionFailed)
            #expect(!error.description.contains("wrong"))
        }
    }

    @Test func closedConnectionFailsCallsInsteadOfHanging() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        await connection.close()
        await #expect(throws: BrokerError.self) {
            try await channel.publish(Message(body: [1]), exchange: "", routingKey: "x")
        }
        await #expect(throws: BrokerError.self) { _ = try await connection.openChannel() }
    }
}
