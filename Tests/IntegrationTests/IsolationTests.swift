import Foundation
import Synchronization
import Testing
import TestSupport
import Worker

/// A receiver that hangs until told to answer.
final class Switch: Sendable {
    private let hanging = Mutex(true)
    var isHanging: Bool { hanging.withLock { $0 } }
    func answer() { hanging.withLock { $0 = false } }
}

@Suite("Endpoint isolation (real servers)")
struct IsolationTests {
    /// A hanging endpoint holds at most its limit of requests; its other deliveries wait in
    /// the defer queue, unattempted, while the tenant's healthy endpoint gets everything,
    /// and once it answers again every deferred delivery arrives.
    @Test func aHangingEndpointHoldsOnlyItsLimitAndLosesNothing() async throws {
        var options = Pipeline.Options()
        options.endpointConcurrency = 2
        // Long enough that the hung requests outlast the healthy endpoint's twenty on a slow
        // machine: a timed-out one would be sent again and counted below.
        options.httpTimeout = .seconds(15)
        let hang = Switch()
        let slow = try await TestHTTPServer.start { _ in hang.isHanging ? .hang : .status(200) }
        let healthy = try await TestHTTPServer.start()
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let stuck = try await pipeline.endpoint(tenant: tenant, url: slow.url + "/in")
            let fine = try await pipeline.endpoint(tenant: tenant, url: healthy.url + "/in")
            for n in 0..<20 { try await pipeline.publish("client.created", tenant: tenant, id: "evt_\(n)") }

            try await healthy.waitForRequests(20)
            try await pipeline.eventually("the healthy endpoint's deliveries are recorded") {
                try await pipeline.deliveries(endpoint: fine).allSatisfy { $0.status == "delivered" }
            }
            let held = try await pipeline.deliveries(endpoint: stuck)
            #expect(held.count == 20)
            #expect(held.filter { $0.attempts > 0 }.count <= 2)
            #expect(slow.requests.count <= 2)

            hang.answer()
            try await pipeline.eventually(timeout: .seconds(60), "every deferred delivery arrives") {
                try await pipeline.deliveries(endpoint: stuck).allSatisfy { $0.status == "delivered" }
            }
            let received = Set(slow.requests.compactMap { $0.header("webhook-id") })
            #expect(received.count == 20)
        }
        await slow.stop()
        await healthy.stop()
    }

    /// Messages of an endpoint that never answers fill a worker's whole window (8 in
    /// flight: its requests and its waiters): the consumer is replaced by one with a
    /// window of its own, and another tenant's events are delivered long before the hung
    /// requests time out, not after.
    @Test func aWindowThatHangingRequestsFillIsReplaced() async throws {
        var options = Pipeline.Options(startWorker: false)
        options.httpTimeout = .seconds(20)
        let hanging = try await TestHTTPServer.start { _ in .hang }
        let healthy = try await TestHTTPServer.start()
        try await Pipeline.run(options) { pipeline in
            let stuck = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: stuck, url: hanging.url + "/in")
            let fine = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: fine, url: healthy.url + "/in")
            let worker = pipeline.startWorker(concurrency: 8)
            defer { worker.cancel() }
            // A sample of lifetimes to judge by.
            for n in 0..<80 { try await pipeline.publish("client.created", tenant: fine, id: "evt_a\(n)") }
            _ = try await healthy.waitForRequests(80)
            for n in 0..<8 { try await pipeline.publish("client.created", tenant: stuck, id: "evt_h\(n)") }
            // Its first requests on the wire, the rest waiting for its slots.
            _ = try await hanging.waitForRequests(1)
            try await pipeline.eventually("the window is the hanging endpoint's") { pipeline.workerStatus.inFlight == 8 }
            let published = ContinuousClock.now
            for n in 0..<20 { try await pipeline.publish("client.created", tenant: fine, id: "evt_b\(n)") }
            // Within a quarter of the HTTP timeout: the old window frees nothing before half
            // of it (its waiters give up then) and its requests hold on until the timeout.
            _ = try await healthy.waitForRequests(100, timeout: .seconds(5))
            #expect(ContinuousClock.now - published < .seconds(5))
            await hanging.stop()
            worker.cancel()
            _ = await worker.result
        }
        await healthy.stop()
    }
}
