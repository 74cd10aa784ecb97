import Foundation
import Testing
import TestSupport

/// The tenant portal driven by a real headless Chromium (Debian's, with its driver given
/// explicitly: nothing is downloaded) against the real API, worker and a receiver:
/// `Tests/Portal/portal_browser.py` holds the steps. Screenshots of the main pages go to
/// `.services/screenshots`.
@Suite("Tenant portal in Chromium")
struct PortalBrowserTests {
    @Test func aTenantManagesItsEndpointsAndReadsItsLogInTheBrowser() async throws {
        let python = TestServices.repositoryRoot.appendingPathComponent(".services/venv/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"), "chromium-driver is missing: scripts/services start installs it")
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let a = try await api.tenant("Studio A")
            let b = try await api.tenant("Studio B")
            func link(_ tenant: String, readOnly: Bool = false) async throws -> String {
                let created = try await api.call(
                    "POST", "/v1/tenants/\(tenant)/portal-links", token: APIHarness.operatorToken, body: ["read_only": readOnly])
                #expect(created.status == 201)
                return try #require(created.string("path"))
            }
            let run = Process()
            run.executableURL = python
            run.arguments = [TestServices.repositoryRoot.appendingPathComponent("Tests/Portal/portal_browser.py").path]
            var environment = ProcessInfo.processInfo.environment
            environment["HERALD_BASE_URL"] = api.base
            environment["HERALD_RECEIVER_URL"] = "http://localhost:\(receiver.port)/in"
            environment["PORTAL_LINK_A"] = try await link(a.id)
            environment["PORTAL_LINK_A2"] = try await link(a.id)
            environment["PORTAL_LINK_A_READ_ONLY"] = try await link(a.id, readOnly: true)
            environment["PORTAL_LINK_B"] = try await link(b.id)
            environment["SCREENSHOTS"] = TestServices.repositoryRoot.appendingPathComponent(".services/screenshots").path
            run.environment = environment
            let (status, output) = try await run.runToCompletion()
            #expect(status == 0 && output.contains("portal: all steps passed"), "\(output.suffix(6000))")
        }
        // The receiver got the test event and its retry, both signed.
        let received = receiver.requests
        #expect(received.count >= 2)
        #expect(received.allSatisfy { $0.headers.contains { $0.name.lowercased() == "webhook-signature" } })
        await receiver.stop()
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
