import HeraldAMQP
import Delivery
import Foundation
import Management
import Testing
import TestSupport
import Topology

/// The delivery limit on the real broker: what returns to the work queue too often ends in
/// the parking lot (never dropped), and queues from an earlier Herald are kept, not refused.
@Suite("Delivery limit and queue arguments (real broker)")
struct DeliveryLimitTests {
    @Test func aMessageReturnedPastTheLimitIsParkedByTheBrokerAndReplayedClean() async throws {
        var options = Pipeline.Options(startWorker: false)
        options.deliveryLimit = 2
        try await Pipeline.run(options) { pipeline in
            let topology = pipeline.topology
            let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
            let channel = try await connection.openChannel()
            try await channel.enableConfirms()
            try await channel.publish(Message(body: Array("{}".utf8), messageID: "poison-1"), exchange: "", routingKey: topology.workQueue)
            try await channel.setPrefetch(1)
            let consumer = try await channel.consume(topology.workQueue)
            var iterator = consumer.makeAsyncIterator()
            // Delivered the first time and after each of the two returns the limit allows;
            // the third return is one too many.
            for returns in 0...2 {
                let delivery = try #require(try await iterator.next())
                #expect(delivery.returns == returns)
                channel.nack(delivery.deliveryTag, requeue: true)
            }
            try await pipeline.eventually("the message is in the parking queue") {
                try await pipeline.queueDepth(topology.parkingQueue) == 1
            }
            consumer.cancel()
            await connection.close()
            #expect(try await pipeline.workQueueDepth() == 0)

            let lot = ParkingLot(amqpURL: TestServices.amqpURL, topology: topology, logger: TestServices.logger)
            // Listing returns the messages it read to the queue (the broker counts them ready
            // again a moment after the listing's connection closed): never a step towards a limit.
            func look() async throws -> ParkedView? {
                var seen: ParkedView?
                try await pipeline.eventually("the parked message is listed") {
                    seen = try await lot.list(limit: 10).first
                    return seen != nil
                }
                return seen
            }
            for _ in 0..<5 { _ = try await look() }
            let parked = try #require(try await look())
            // Named by a digest (a message id alone is not unique), the same at every look.
            #expect(parked.id.hasPrefix("dl-") && parked.id.count == 19)
            #expect(try await look()?.id == parked.id)
            #expect(parked.messageId == "poison-1")
            #expect(parked.reason.contains("delivery limit"))
            #expect(parked.reason.contains(topology.workQueue))
            #expect(parked.routingKey == topology.workQueue)
            #expect(parked.parkedAt != nil)

            try await lot.replay(id: parked.id)
            let replayed = try #require(try await Self.take(from: topology.workQueue))
            #expect(replayed.message.body == Array("{}".utf8))
            #expect(replayed.message.headers["x-death"] == nil)
            #expect(replayed.returns == 0)
            #expect(try await pipeline.queueDepth(topology.parkingQueue) == 0)
        }
    }

    @Test func queuesAnEarlierHeraldDeclaredAreKeptAndNamed() async throws {
        let old = Topology(prefix: TestServices.uniqueName("kept"), ladder: try .init(parsing: "1s"), shards: 1)
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let setup = try await connection.openChannel()
        // What Herald declared before the delivery limit.
        try await setup.declareQueue(old.workQueue, arguments: ["x-queue-type": "quorum"])
        try await setup.declareQueue(old.shardQueue(0), arguments: ["x-queue-type": "quorum", "x-single-active-consumer": true])
        try await setup.declareQueue(old.parkingQueue, arguments: ["x-queue-type": "quorum"])

        let kept = try await old.declare(on: setup)
        #expect(kept.map(\.name) == [old.parkingQueue, old.workQueue, old.shardQueue(0)])
        let work = try #require(kept.first { $0.name == old.workQueue })
        #expect(
            work.missing == [
                "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy", "x-delivery-limit", "x-overflow",
            ])
        // Declaring again on the same channel works: the refusals closed channels of their own.
        #expect(try await old.declare(on: setup).count == 3)

        // Settings changed since the queues were made (another defer delay, another
        // limit): the queues are kept as they are and named, nothing stops.
        let changed = Topology(prefix: old.prefix, ladder: old.ladder, deferDelay: old.deferDelay * 2, shards: 1, deliveryLimit: 5)
        try await old.declare(on: setup)
        let changedKept = try await changed.declare(on: setup)
        #expect(changedKept.contains { $0.name == old.deferQueue && $0.missing == nil })
        #expect(changedKept.first { $0.name == old.workQueue }?.missing != nil, "the earlier version's work queue is still named as such")
        #expect("\(changedKept)".contains("\(old.deferQueue) (with other arguments"))

        let cleanup = try await connection.openChannel()
        for queue in old.queues { try await cleanup.deleteQueue(queue) }
        for exchange in [old.eventsExchange, old.requeueExchange, old.operatorExchange, old.shardExchange, old.unkeyedExchange] {
            try await cleanup.deleteExchange(exchange)
        }
        await connection.close()
    }

    /// The next message of `queue`, acked; nil when none comes within 10 s.
    static func take(from queue: String) async throws -> HeraldAMQP.Delivery? {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        let consumer = try await channel.consume(queue)
        let taken: HeraldAMQP.Delivery? = try await within(.seconds(10)) {
            for try await delivery in consumer { return delivery }
            return nil
        }
        if let taken { channel.ack(taken.deliveryTag) }
        consumer.cancel()
        await connection.close()
        return taken
    }
}
