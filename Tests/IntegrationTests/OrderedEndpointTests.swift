import Foundation
import HTTPClient
import HeraldEvents
import Postgres
import Synchronization
import Testing
import TestSupport

@Suite("Ordered endpoints (real servers, two worker processes)")
struct OrderedEndpointTests {
    /// 1,000 numbered events for an ordered endpoint, read from two shards by two `herald
    /// worker` processes. The receiver fails some requests, is stopped and started again
    /// midway, and the worker reading the tenant's shard is killed: the receiver still sees
    /// the numbers in order, each one at least once, a number repeated only right after
    /// itself (a retry, or the request the killed worker had on the wire).
    @Test func numbersArriveInOrderThroughFailuresARestartedReceiverAndAKilledWorker() async throws {
        let seen = Mutex<[Int]>([])
        let failedOnce = Mutex<Set<Int>>([])
        let reply: @Sendable (ReceivedRequest) -> Reply = { request in
            let text = String(decoding: request.body, as: UTF8.self)
            guard let n = Int(text.drop { !$0.isNumber }.prefix { $0.isNumber }) else { return .status(400) }
            seen.withLock { $0.append(n) }
            // Every 97th number is refused once: the delivery retries and holds the rest.
            if n % 97 == 0 && failedOnce.withLock({ $0.insert(n).inserted }) { return .status(500) }
            return .status(204)
        }
        var receiver = try await TestHTTPServer.start(reply)
        let port = receiver.port
        var options = Pipeline.Options()
        options.startWorker = false
        options.shards = 2
        options.ladder = "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/in")
            try await pipeline.pool.query("UPDATE endpoints SET ordered = true WHERE id = \(endpoint)")
            let ports = try TestServices.freePorts(2)
            let workers = try ports.map { port in
                try WorkerProcess.start(
                    pipeline, ladder: options.ladder,
                    environment: [
                        "HERALD_WORKER_PORT": String(port), "HERALD_HEARTBEAT_INTERVAL": "1s", "HERALD_WORK_SHARDS": "2",
                        "HERALD_DISABLE_AFTER": "0",
                    ])
            }
            defer { for worker in workers { worker.stopIfRunning() } }
            let client = HTTPClient.Client()
            for port in ports {
                try await pipeline.eventually("the worker on \(port) counts two workers") {
                    guard let response = try? await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(port)/metrics", method: "GET", maxResponseBytes: 1 << 20))
                    else { return false }
                    return String(decoding: response.body, as: UTF8.self).contains("herald_worker_replicas 2")
                }
            }
            await client.shutdown()

            let count = 1_000
            let publishing = Task {
                for n in 1...count {
                    _ = try await pipeline.publish("invoice.paid", tenant: tenant, id: "evt_fifo_\(n)", data: #"{"n":\#(n)}"#)
                }
            }
            try await pipeline.eventually(timeout: .seconds(60), "a third has arrived") { seen.withLock { $0.max() ?? 0 } >= count / 3 }
            await receiver.stop()
            // The receiver is down for a moment: the head's attempts fail and retry.
            try await Task.sleep(for: .milliseconds(500))
            receiver = try await TestHTTPServer.start(port: port, reply)
            try await pipeline.eventually(timeout: .seconds(60), "two thirds have arrived") { seen.withLock { $0.max() ?? 0 } >= 2 * count / 3 }
            // Kill the worker that should read the tenant's shard (by the heartbeats, as the
            // workers assign shards); the other takes the shard over.
            let replicas = try await pipeline.pool.query("SELECT id FROM worker_heartbeats WHERE consuming ORDER BY id").map {
                try $0.decode(String.self, 0)
            }
            let shard = WireFormat.bucket(of: tenant) % 2
            let owner = replicas.count == 2 ? replicas[shard % 2] : replicas.first ?? ""
            let ownerPID = owner.split(separator: "-").dropLast().last.flatMap { Int32($0) }
            let victim = workers.first { $0.process.processIdentifier == ownerPID } ?? workers[0]
            victim.signal(SIGKILL)
            _ = await victim.exitStatus()
            try await publishing.value

            try await pipeline.eventually(timeout: .seconds(120), "every delivery is delivered") {
                let deliveries = try await pipeline.deliveries(endpoint: endpoint)
                return deliveries.count == count && deliveries.allSatisfy { $0.status == "delivered" }
            }
            let numbers = seen.withLock { $0 }
            #expect(Set(numbers) == Set(1...count), "missing: \(Set(1...count).subtracting(numbers).sorted().prefix(20))")
            var previous = 0
            var repeats = 0
            for n in numbers {
                if n == previous {
                    repeats += 1
                } else {
                    #expect(n == previous + 1, "\(n) arrived after \(previous)")
                    previous = n
                }
            }
            // The refused numbers came again at least once each.
            #expect(repeats >= failedOnce.withLock { $0.count })
        }
        await receiver.stop()
    }
}
