import HeraldAMQP
import Foundation
import Testing
import TestSupport
import Topology
import Worker

@Suite("Consumer lifecycle")
struct ConsumerTests {
    /// The broker cancels a consumer when its queue is deleted (or its node is lost). The
    /// worker did not announce `consumer_cancel_notify`, so it was never told: it kept no
    /// consumer, stayed ready and logged nothing until restarted. Now it is told, declares
    /// the topology again and subscribes again.
    @Test func aWorkerWhoseConsumerTheBrokerCancelsSubscribesAgain() async throws {
        let receiver = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            let service = WorkerService(amqpURL: TestServices.amqpURL, context: pipeline.context, concurrency: 50)
            let worker = Task { try await service.run() }
            do {
                try await pipeline.eventually("the worker consumes") {
                    (try? await pipeline.queueInfo(pipeline.topology.workQueue).consumerCount) == 1
                }
                let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
                try await connection.openChannel().deleteQueue(pipeline.topology.workQueue)
                await connection.close()
                try await pipeline.eventually("the worker declared its queue and subscribed again") {
                    (try? await pipeline.queueInfo(pipeline.topology.workQueue).consumerCount) == 1
                }
                #expect(service.status.consuming)
                try await pipeline.publish("client.created", tenant: tenant)
                try await receiver.waitForRequests(1)
            } catch {
                worker.cancel()
                _ = await worker.result
                throw error
            }
            worker.cancel()
            _ = await worker.result
        }
        await receiver.stop()
    }
}
