import Foundation
import HTTPClient
import Postgres
import Synchronization
import Testing
import TestSupport

@Suite("Endpoint rate limits (real servers)")
struct RateLimitTests {
    /// Two `herald worker` processes share an endpoint's limit of 50 a second: each learns
    /// from the heartbeats that two consume and sends its half, evenly spaced, so the
    /// receiver never gets more than 50 + 10 % in a whole second, and about 50 while both
    /// have work.
    @Test func twoWorkersKeepAnEndpointsLimitTogether() async throws {
        let arrivals = Mutex<[ContinuousClock.Instant]>([])
        let receiver = try await TestHTTPServer.start { _ in
            arrivals.withLock { $0.append(.now) }
            return .status(204)
        }
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/in")
            try await pipeline.pool.query("UPDATE endpoints SET rate_limit = 50 WHERE id = \(endpoint)")
            let ports = try TestServices.freePorts(2)
            let workers = try ports.map { port in
                try WorkerProcess.start(
                    pipeline, ladder: "200ms",
                    environment: ["HERALD_WORKER_PORT": String(port), "HERALD_HEARTBEAT_INTERVAL": "1s", "HERALD_WORKER_CONCURRENCY": "100"])
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

            let count = 400
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<count {
                    group.addTask { try await pipeline.publish("client.created", tenant: tenant, id: "evt_rate_\(n)") }
                }
                try await group.waitForAll()
            }
            try await pipeline.eventually(timeout: .seconds(60), "every delivery arrives") {
                let deliveries = try await pipeline.deliveries(endpoint: endpoint)
                return deliveries.count == count && deliveries.allSatisfy { $0.status == "delivered" }
            }
            let times = arrivals.withLock { $0 }.sorted()
            #expect(times.count == count)
            let start = try #require(times.first)
            var perSecond = [Int](repeating: 0, count: 10)
            for time in times {
                let second = Int((time - start) / .seconds(1))
                if second < perSecond.count { perSecond[second] += 1 }
            }
            // No second passes the limit by more than a tenth (each worker paces at its half
            // and never catches up after a stall). While both hold work they reach it
            // together: a worker counting a third replica would send a third, and the two
            // at most about 34 a second. (When the broker gave one of them more of the 400,
            // the other runs dry first and the last seconds are one worker's half.)
            for (second, received) in perSecond.enumerated() {
                #expect(received <= 55, "second \(second): \(received) requests (\(perSecond))")
            }
            #expect(perSecond.max() ?? 0 >= 45, "\(perSecond)")
        }
        await receiver.stop()
    }
}
