import HeraldAMQP
import Foundation
import Testing
import TestSupport
import Topology
import Worker

/// What a message costs the worker: a body over HERALD_MAX_MESSAGE_BYTES is refused from
/// the size its header declares, without being read whole.
@Suite("Memory per message")
struct MemoryTests {
    @Test func oversizedMessagesAreParkedUnreadAndTheWorkerStaysSmall() async throws {
        let receiver = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url)

            // Read whole, these took the worker past 1 GiB (measured); refused from their
            // declared size, they cost it about 40 MiB.
            let count = 100
            let size = 10_000_000
            let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
            let channel = try await connection.openChannel()
            try await channel.enableConfirms()
            let body = [UInt8](repeating: UInt8(ascii: "x"), count: size)
            for start in stride(from: 0, to: count, by: 25) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in start..<(start + 25) {
                        group.addTask {
                            try await channel.publish(
                                Message(body: body, messageID: "big_\(n)"), exchange: pipeline.topology.eventsExchange, routingKey: "client.created")
                        }
                    }
                    try await group.waitForAll()
                }
            }
            await connection.close()
            // An ordinary event behind them is delivered as usual.
            try await pipeline.publish("client.created", tenant: tenant, id: "evt_after_large")
            // Started once they wait in the queue, with prefetch 500: the broker sends it
            // every one of them at once.
            let worker = try WorkerProcess.start(
                pipeline, ladder: "200ms,400ms,800ms", environment: ["HERALD_WORKER_CONCURRENCY": "500"])
            defer { worker.stopIfRunning() }
            try await receiver.waitForRequests(1, timeout: .seconds(120))
            try await pipeline.eventually(timeout: .seconds(120), "every large message is parked") {
                try await pipeline.queueDepth(pipeline.topology.parkingQueue) == UInt32(count)
            }
            let peak = try Self.peakResidentMiB(of: worker.process.processIdentifier)
            #expect(peak < 200, "the worker's peak RSS was \(peak) MiB after \(count) messages of \(size) bytes")

            let parked = try #require(try await pipeline.parked(1).first)
            #expect(parked.message.headers["herald-parked-body-bytes"]?.int == Int64(size))
            #expect(parked.message.headers["herald-parked-reason"]?.string?.contains("HERALD_MAX_MESSAGE_BYTES") == true)
            #expect(parked.message.body.count == 4096, "an excerpt is kept, not the body")
            #expect(parked.message.messageID?.hasPrefix("big_") == true)
        }
        await receiver.stop()
    }

    /// The worker's prefetch follows the size of its messages: it opens from what the
    /// largest readable message would fill to the concurrency on small events, and closes
    /// again on large ones. Each change is a new subscription on the same channel; every
    /// event is delivered once all the same.
    @Test func thePrefetchFollowsTheMessageSizeAndNothingIsLostOnTheWay() async throws {
        let receiver = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            // 1 MiB of bodies: three messages of the largest size (320 KiB), or fifty small ones.
            let worker = pipeline.startWorker(windowBytes: 1024 * 1024)
            try await pipeline.eventually("the worker subscribed") { pipeline.workerStatus.prefetch > 0 }
            #expect(pipeline.workerStatus.prefetch == 3)
            for n in 0..<100 { _ = try await pipeline.publish("client.created", tenant: tenant, id: "evt_small_\(n)") }
            try await pipeline.eventually("the window opened to the concurrency") { pipeline.workerStatus.prefetch == 50 }
            let blob = String(repeating: "x", count: 100 * 1024)
            for n in 0..<40 { _ = try await pipeline.publish("client.created", tenant: tenant, id: "evt_large_\(n)", data: #"{"blob":"\#(blob)"}"#) }
            try await pipeline.eventually("the window closed on 100 KiB messages") { pipeline.workerStatus.prefetch <= 10 }
            let requests = try await receiver.waitForRequests(140, timeout: .seconds(60))
            let ids = requests.compactMap { $0.header("webhook-id") }
            #expect(requests.count == 140 && Set(ids).count == 140, "\(requests.count) requests, \(Set(ids).count) distinct")
            try await pipeline.eventually("every delivery is recorded as delivered") {
                try await pipeline.deliveries(endpoint: endpoint).filter { $0.status == "delivered" }.count == 140
            }
            worker.cancel()
            _ = await worker.result
            // A message left unacked by a cancelled consumer would be back in the queue now.
            #expect(try await pipeline.queueDepth(pipeline.topology.workQueue) == 0)
        }
        await receiver.stop()
    }

    /// VmHWM of a live process, in MiB.
    static func peakResidentMiB(of pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        let kilobytes = try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        return kilobytes / 1024
    }
}
