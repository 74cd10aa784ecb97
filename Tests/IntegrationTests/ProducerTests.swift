import HeraldAMQP
import HeraldEvents
import Foundation
import HeraldProducer
import Testing
import TestSupport

@Suite("Producer (real broker)")
struct ProducerTests {
    @Test func refusesInvalidEventsBeforeTheBroker() async throws {
        let producer = Producer(
            configuration: .init(amqpURL: "amqp://guest:guest@127.0.0.1:1/", limits: EventLimits(maxDataBytes: 64)), logger: TestServices.logger)
        await #expect(throws: EventError(field: "type", reason: "must be dot-separated lower-case words like 'invoice.paid'")) {
            try await producer.publish(Event(type: "Bad Type", tenantID: UUID(), data: Array("{}".utf8)))
        }
        do {
            try await producer.publish(Event(type: "a.b", tenantID: UUID(), data: Array(("{\"x\":\"" + String(repeating: "y", count: 100) + "\"}").utf8)))
            Issue.record("an oversized event was published")
        } catch let error as EventError {
            #expect(error.field == "data")
        }
    }

    @Test func anUnreachableBrokerFailsFastWithAClearError() async throws {
        let producer = Producer(configuration: .init(amqpURL: "amqp://guest:guest@127.0.0.1:1/", timeout: .seconds(5)), logger: TestServices.logger)
        let started = ContinuousClock.now
        do {
            try await producer.publish(Event(type: "a.b", tenantID: UUID(), data: Array("{}".utf8)))
            Issue.record("published without a broker")
        } catch let error as PublishError {
            #expect(error.code == .unavailable)
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func anEventNoQueueWouldReceiveIsReportedUnroutable() async throws {
        let exchange = TestServices.uniqueName("lonely") + ".events"
        let producer = Producer(configuration: .init(amqpURL: TestServices.amqpURL, exchange: exchange), logger: TestServices.logger)
        do {
            try await producer.publish(Event(type: "client.created", tenantID: UUID(), data: Array("{}".utf8)))
            Issue.record("an unroutable event was reported as published")
        } catch let error as PublishError {
            #expect(error.code == .unroutable)
        }
        await producer.close()
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        try await connection.openChannel().deleteExchange(exchange)
        await connection.close()
    }

    @Test func confirmedEventsArriveIntactWithTheTypeAsRoutingKey() async throws {
        let exchange = TestServices.uniqueName("p") + ".events"
        let queue = TestServices.uniqueName("p.work")
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        try await channel.declareExchange(exchange, type: .topic)
        try await channel.declareQueue(queue)
        try await channel.bindQueue(queue, exchange: exchange, routingKey: "#")
        let producer = Producer(configuration: .init(amqpURL: TestServices.amqpURL, exchange: exchange), logger: TestServices.logger)
        let tenant = UUID()
        let events = (0..<200).map { Event(type: "invoice.paid", tenantID: tenant, data: Array("{\"n\":\($0)}".utf8), attributes: ["workspace": "w\($0 % 3)"]) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for event in events { group.addTask { try await producer.publish(event) } }
            try await group.waitForAll()
        }
        #expect(try await channel.declareQueue(queue, passive: true).messageCount == 200)
        let consumer = try await channel.consume(queue)
        var received: [String: Event] = [:]
        for try await delivery in consumer {
            #expect(delivery.routingKey == "invoice.paid")
            #expect(delivery.message.persistent)
            let event = try WireFormat.decode(delivery.message.body)
            received[event.id] = event
            channel.ack(delivery.deliveryTag)
            if received.count == events.count { break }
        }
        consumer.cancel()
        for event in events {
            let got = try #require(received[event.id])
            #expect(got.tenantID == tenant)
            #expect(got.data == event.data)
            #expect(got.attributes == event.attributes)
        }
        await producer.close()
        try await channel.deleteQueue(queue)
        try await channel.deleteExchange(exchange)
        await connection.close()
    }
}
