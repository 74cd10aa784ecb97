import Delivery
import Foundation
import Postgres
import Testing
import TestSupport
@testable import Worker

@Suite("Slot accounting")
struct SlotAccountingTests {
    /// Slots used to be held in optional ids with eight release sites. Whatever happens to
    /// a delivery — delivered, failed for good, skipped, waiting behind the per-endpoint
    /// limit — no slot is left taken once everything is settled.
    @Test func noSlotIsLeftTakenAfterSuccessFailureSkipAndWaiting() async throws {
        let fine = try await TestHTTPServer.start { _ in .delayed(.milliseconds(20), .status(200)) }
        let gone = try await TestHTTPServer.start { _ in .status(404) }
        var options = Pipeline.Options()
        options.endpointConcurrency = 1
        // Eight 404s in a row would disable the endpoint part-way (the rest then skipped,
        // depending on how fast the directory notices): not what this test is about.
        options.disable = DisablePolicy(threshold: 0, window: .zero)
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let delivered = try await pipeline.endpoint(tenant: tenant, url: fine.url)
            let failed = try await pipeline.endpoint(tenant: tenant, url: gone.url)
            let skipped = try await pipeline.endpoint(tenant: tenant, url: fine.url + "/off")
            _ = try await pipeline.pool.query("UPDATE endpoints SET enabled = false, disabled_at = now() WHERE id = \(skipped)")
            let count = 8
            for n in 0..<count { try await pipeline.publish("client.created", tenant: tenant, id: "evt_slots_\(n)") }
            try await pipeline.eventually("every delivery is settled") {
                let a = try await pipeline.deliveries(endpoint: delivered).filter { $0.status == "delivered" }.count
                let b = try await pipeline.deliveries(endpoint: failed).filter { $0.status == "failed" }.count
                let c = try await pipeline.deliveries(endpoint: skipped).filter { $0.status == "skipped" }.count
                return a == count && b == count && c == count
            }
            #expect(pipeline.context.slots.taken == 0)
        }
        await fine.stop()
        await gone.stop()
    }
}
