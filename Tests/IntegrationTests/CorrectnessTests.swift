import Foundation
import Postgres
import Testing
import TestSupport

/// Bugs found by trying Herald as a new user would (the architecture issue, section 4).
@Suite("Found by trying it")
struct CorrectnessTests {
    /// 4.2: enabling an endpoint the worker disabled kept its failure count, so one more
    /// failure disabled it again.
    @Test func enablingStartsTheFailureCountAnew() async throws {
        try await APIHarness.run(Pipeline.Options(startWorker: false)) { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:9/in")
            let id = try #require(UUID(uuidString: endpoint.id))
            _ = try await api.pipeline.pool.query(
                """
                UPDATE endpoints SET enabled = false, disabled_at = now(), disabled_reason = 'after 5 failed attempts',
                       consecutive_failures = 5, first_failure_at = now() - interval '2 hours'
                WHERE id = \(id)
                """)
            let enabled = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/enable", token: tenant.key)
            #expect(enabled.status == 200)
            #expect(enabled["enabled"] as? Bool == true)
            #expect(enabled["consecutive_failures"] as? Int == 0)
            #expect(enabled["disabled_reason"] == nil || enabled["disabled_reason"] is NSNull)
            let firstFailure = try await api.pipeline.pool.query("SELECT first_failure_at FROM endpoints WHERE id = \(id)")[0]
                .decode(Date?.self, 0)
            #expect(firstFailure == nil)
        }
    }

    /// 4.3: the DPA gate took an empty or blank name.
    @Test(arguments: ["", "   ", "\t\n"])
    func theDPAGateNeedsAName(_ name: String) async throws {
        try await APIHarness.run(Pipeline.Options(startWorker: false)) { api in
            let tenant = try await api.tenant()
            let created = try await api.call(
                "POST", "/v1/endpoints", token: tenant.key,
                body: ["url": "http://localhost:9/in", "event_types": ["*"], "dpa_confirmed_by": name, "enabled": true])
            #expect(created.status == 400)
            #expect(created.string("field") == "dpa_confirmed_by")
            let pending = try await api.call("POST", "/v1/endpoints", token: tenant.key, body: ["url": "http://localhost:9/in", "event_types": ["*"]])
            let id = try #require(pending.string("id"))
            let patched = try await api.call("PATCH", "/v1/endpoints/\(id)", token: tenant.key, body: ["dpa_confirmed_by": name, "enabled": true])
            #expect(patched.status == 400)
            #expect(try await api.call("GET", "/v1/endpoints/\(id)", token: tenant.key)["enabled"] as? Bool == false)
        }
    }

    /// 4.4: custom headers were checked against `X-Herald` whatever HERALD_HEADER_PREFIX
    /// said, so `X-CreatorDesk-Signature` was stored and then silently dropped by the worker.
    @Test func reservedHeaderNamesFollowTheConfiguredPrefix() async throws {
        var options = Pipeline.Options(startWorker: false)
        options.headerPrefix = "X-CreatorDesk"
        try await APIHarness.run(options) { api in
            let tenant = try await api.tenant()
            for name in ["X-CreatorDesk-Signature", "x-creatordesk-event", "webhook-id"] {
                let answer = try await api.call(
                    "POST", "/v1/endpoints", token: tenant.key,
                    body: ["url": "http://localhost:9/in", "event_types": ["*"], "headers": [name: "mine"]])
                #expect(answer.status == 422, "\(name) answered \(answer.status)")
                #expect(answer.string("field") == "headers")
            }
        }
    }
}
