import Foundation
import Postgres
import HeraldEvents
import HeraldProducer
import Synchronization
import Testing
import TestSupport

/// The dashboard driven by a real headless Chromium (Debian's, with its driver given
/// explicitly: nothing is downloaded) against the real API, worker and receivers:
/// `Tests/Browser/portal_browser.py` and `console_browser.py` hold the steps. Screenshots
/// of the main pages go to `.services/screenshots`.
@Suite("Dashboard in Chromium")
struct DashboardBrowserTests {
    /// A receiver's switch the browser test flips over HTTP: failing until healed.
    final class Health: Sendable {
        let healed = Atomic(false)
    }

    @Test func tenantsAndTheOperatorUseTheDashboardInTheBrowser() async throws {
        let python = TestServices.repositoryRoot.appendingPathComponent(".services/venv/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"), "chromium-driver is missing: scripts/services start installs it")
        let health = Health()
        // /in answers 200; /flaky answers 503 with markup in its body until /heal is posted.
        let receiver = try await TestHTTPServer.start { request in
            if request.uri.hasPrefix("/heal") {
                health.healed.store(true, ordering: .relaxed)
                return .status(200)
            }
            if request.uri.hasPrefix("/flaky") && !health.healed.load(ordering: .relaxed) {
                return .status(503, body: Array("<script>alert('excerpt')</script> down for maintenance".utf8))
            }
            return .status(200)
        }
        try await APIHarness.run(dashboard: true) { api in
            let a = try await api.tenant("Studio A")
            let b = try await api.tenant("Studio B")
            func link(_ tenant: String, readOnly: Bool = false) async throws -> String {
                let created = try await api.call(
                    "POST", "/v1/tenants/\(tenant)/portal-links", token: APIHarness.operatorToken, body: ["read_only": readOnly])
                #expect(created.status == 201)
                return try #require(created.string("path"))
            }
            var environment = ProcessInfo.processInfo.environment
            environment["PYTHONPATH"] = TestServices.repositoryRoot.appendingPathComponent("Tests/Browser").path
            environment["HERALD_BASE_URL"] = api.base
            environment["SCREENSHOTS"] = TestServices.repositoryRoot.appendingPathComponent(".services/screenshots").path

            var portal = environment
            portal["HERALD_RECEIVER_URL"] = "http://localhost:\(receiver.port)/in"
            portal["HERALD_FLAKY_URL"] = "http://localhost:\(receiver.port)/flaky"
            portal["HERALD_HEAL_URL"] = "http://127.0.0.1:\(receiver.port)/heal"
            portal["TENANT_A_KEY"] = a.key
            portal["PORTAL_LINK_A"] = try await link(a.id)
            portal["PORTAL_LINK_A2"] = try await link(a.id)
            portal["PORTAL_LINK_A_READ_ONLY"] = try await link(a.id, readOnly: true)
            portal["PORTAL_LINK_B"] = try await link(b.id)
            let (portalStatus, portalOutput) = try await Self.run(python, "portal_browser.py", portal)
            #expect(portalStatus == 0 && portalOutput.contains("portal: all steps passed"), "\(portalOutput.suffix(6000))")

            // What the console shows besides: a tenant named with markup, an endpoint its
            // tenant disabled, two messages for a tenant that does not exist (parked).
            let hostile = "<script>alert('tenant')</script>"
            _ = try await api.tenant(hostile)
            let disabled = try await api.endpoint(b.key, url: "http://localhost:\(receiver.port)/in")
            #expect(try await api.call("PATCH", "/v1/endpoints/\(disabled.id)", token: b.key, body: ["enabled": false]).status == 200)
            // An endpoint whose circuit a worker opened (what the worker writes).
            let tripped = try await api.endpoint(b.key, url: "http://localhost:\(receiver.port)/tripped")
            try await api.pipeline.pool.query("UPDATE endpoints SET circuit_opened_at = now() WHERE id::text = \(tripped.id)")
            for n in 0..<2 {
                try await api.pipeline.producer.publish(
                    Event(id: "evt_orphan_\(n)", type: "client.created", tenantID: UUID(), data: Array(#"{"id":1}"#.utf8)))
            }
            var console = environment
            console["OPERATOR_TOKEN"] = APIHarness.operatorToken
            console["TENANT_NAME"] = "Studio A"
            console["HOSTILE_TENANT_NAME"] = hostile
            let (consoleStatus, consoleOutput) = try await Self.run(python, "console_browser.py", console)
            #expect(consoleStatus == 0 && consoleOutput.contains("console: all steps passed"), "\(consoleOutput.suffix(6000))")
        }
        // The receivers got the test events and the retries, all signed.
        let received = receiver.requests.filter { !$0.uri.hasPrefix("/heal") }
        #expect(received.count >= 6)
        #expect(received.allSatisfy { $0.headers.contains { $0.name.lowercased() == "webhook-signature" } })
        await receiver.stop()
    }

    static func run(_ python: URL, _ script: String, _ environment: [String: String]) async throws -> (Int32, String) {
        let run = Process()
        run.executableURL = python
        run.arguments = [TestServices.repositoryRoot.appendingPathComponent("Tests/Browser/\(script)").path]
        run.environment = environment
        return try await run.runToCompletion()
    }

    @Test func aLinkIsRefusedForAnUnknownTenantAndTheContractHolds() async throws {
        try await APIHarness.run { api in
            let unknown = try await api.call(
                "POST", "/v1/tenants/\(UUID().uuidString)/portal-links", token: APIHarness.operatorToken, body: [:] as [String: String])
            #expect(unknown.status == 404)
            let tenant = try await api.tenant()
            let asTenant = try await api.call("POST", "/v1/tenants/\(tenant.id)/portal-links", token: tenant.key, body: [:] as [String: String])
            #expect(asTenant.status == 403, "only the operator (the CRM) hands out links")
            let unknownField = try await api.call(
                "POST", "/v1/tenants/\(tenant.id)/portal-links", token: APIHarness.operatorToken, body: ["ttl": 5])
            #expect(unknownField.status == 400)
        }
    }
}
