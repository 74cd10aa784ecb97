import Delivery
import Foundation
import Postgres
import Synchronization
import Testing
import TestSupport
import Worker

@Suite("Circuit breaker (real servers)")
struct CircuitBreakerIntegrationTests {
    /// A receiver that fails most requests opens its endpoint's circuit: from then on it
    /// sees only probes, one per cool-down, while the deliveries wait unattempted (their
    /// retry ladders unspent); once it answers again every delivery arrives, none failed,
    /// and the circuit closes. The endpoint's row says when it opened, for the API.
    @Test func duringAnOutageTheReceiverSeesProbesOnlyAndAfterItEverything() async throws {
        var options = Pipeline.Options()
        options.breaker = CircuitBreaker.Settings(failureRate: 0.5, minimumAttempts: 5, window: .seconds(60), coolDown: .milliseconds(500))
        options.disable = DisablePolicy(threshold: 0, window: .zero)
        // Each probe is a real attempt, and the same delivery may be the probe every time
        // (its retry comes back before the held ones): a ladder longer than the eight
        // arrivals this test waits for, so that none runs out of it while held.
        options.ladder = Array(repeating: "200ms", count: 16).joined(separator: ",")
        let outage = Mutex(true)
        let arrivals = Mutex<[ContinuousClock.Instant]>([])
        let receiver = try await TestHTTPServer.start { _ in
            arrivals.withLock { $0.append(.now) }
            return outage.withLock { $0 } ? .status(503) : .status(204)
        }
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/in")
            for n in 0..<30 { try await pipeline.publish("client.created", tenant: tenant, id: "evt_\(n)") }

            try await pipeline.eventually("the circuit opens") {
                try await pipeline.pool.query("SELECT circuit_opened_at IS NOT NULL FROM endpoints WHERE id = \(endpoint)")[0].decode(Bool.self, 0)
            }
            let atOpening = arrivals.withLock { $0.count }
            // Three probes, each failing. Attempts in flight when the circuit opened (at
            // most the endpoint's starting concurrency limit, 4) may still reach the
            // receiver after the row says so: the last three of eight arrivals are probes
            // whatever came first.
            _ = try await receiver.waitForRequests(atOpening + 8)
            let probes = arrivals.withLock { Array($0.suffix(3)) }
            #expect(probes[1] - probes[0] >= .milliseconds(500) && probes[2] - probes[1] >= .milliseconds(500), "one probe per cool-down")
            let spent = try await pipeline.deliveries(endpoint: endpoint).filter { $0.status == "failed" }.count
            #expect(spent == 0, "no delivery ran out of its ladder while held")

            outage.withLock { $0 = false }
            try await pipeline.eventually(timeout: .seconds(60), "every delivery arrives once the receiver answers") {
                try await pipeline.deliveries(endpoint: endpoint).allSatisfy { $0.status == "delivered" }
            }
            try await pipeline.eventually("the circuit is closed again") {
                try await pipeline.pool.query("SELECT circuit_opened_at IS NULL FROM endpoints WHERE id = \(endpoint)")[0].decode(Bool.self, 0)
            }
            let delivered = Set(receiver.requests.compactMap { $0.header("webhook-id") })
            #expect(try await pipeline.deliveries(endpoint: endpoint).count == 30)
            #expect(delivered.count == 30)
        }
        await receiver.stop()
    }

    /// A row left saying "open" (by another worker, or one that restarted) is cleared by a
    /// worker that delivers to the endpoint, so the API does not show a stale circuit.
    @Test func aDeliveryClearsAStaleOpenCircuitInTheRow() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url + "/in")
            try await pipeline.pool.query("UPDATE endpoints SET circuit_opened_at = now() WHERE id = \(endpoint)")
            try await pipeline.publish("client.created", tenant: tenant)
            _ = try await receiver.waitForRequests(1)
            try await pipeline.eventually("the row says closed") {
                try await pipeline.pool.query("SELECT circuit_opened_at IS NULL FROM endpoints WHERE id = \(endpoint)")[0].decode(Bool.self, 0)
            }
        }
        await receiver.stop()
    }
}
