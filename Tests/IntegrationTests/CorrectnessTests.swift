import HeraldAMQP
import Foundation
import Postgres
import Testing
import TestSupport
import Topology

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

    /// 4.7: `POST /v1/events` re-serialised `data` (sorted keys, `1.10` became `1.1`), and
    /// only a tenant key could publish. The body is now kept byte for byte, and the
    /// operator token publishes for the tenant it names.
    @Test func eventsPublishedOverHTTPKeepTheirBytesAndTheOperatorMayPublish() async throws {
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            _ = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in")
            let data = #"{ "z": 1.10, "a": "caf\u00e9", "n": [1, 2e3],"o":{}}"#
            let body = #"{"type": "invoice.paid", "id": "evt_bytes", "data": "# + data + "}"
            #expect(try await api.call("POST", "/v1/events", token: tenant.key, body: body).status == 202)
            let first = try #require(try await receiver.waitForRequests(1).first)
            #expect(String(decoding: first.body, as: UTF8.self) == data)

            let operatorBody = #"{"type": "invoice.paid", "id": "evt_operator", "tenant_id": ""# + tenant.id + #"", "data": {"n": 1.0}}"#
            #expect(try await api.call("POST", "/v1/events", token: APIHarness.operatorToken, body: operatorBody).status == 202)
            let second = try await receiver.waitForRequests(2)
            #expect(second.contains { String(decoding: $0.body, as: UTF8.self) == #"{"n": 1.0}"# })

            let missing = try await api.call("POST", "/v1/events", token: APIHarness.operatorToken, body: ["type": "invoice.paid", "data": [:]])
            #expect(missing.status == 400 && missing.string("field") == "tenant_id")
            let unknown = try await api.call(
                "POST", "/v1/events", token: APIHarness.operatorToken,
                body: ["type": "invoice.paid", "data": [:], "tenant_id": UUID().uuidString])
            #expect(unknown.status == 422 && unknown.string("field") == "tenant_id")
            let foreign = try await api.call(
                "POST", "/v1/events", token: tenant.key, body: ["type": "invoice.paid", "data": [:], "tenant_id": tenant.id])
            #expect(foreign.status == 400 && foreign.string("field") == "tenant_id")
        }
        await receiver.stop()
    }

    /// 4.10: parked messages could be neither listed nor replayed. The operator lists
    /// them with their reasons, replays one once its cause is fixed, and discards another.
    @Test func theOperatorListsReplaysAndDiscardsParkedMessages() async throws {
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let missingTenant = UUID()
            try await api.pipeline.publish("invoice.paid", tenant: missingTenant, id: "evt_for_a_tenant_not_yet_created")
            let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
            let channel = try await connection.openChannel()
            try await channel.enableConfirms()
            try await channel.publish(
                Message(body: Array("not json".utf8), messageID: "garbage"), exchange: api.pipeline.topology.eventsExchange,
                routingKey: "client.created")
            await connection.close()

            var items: [[String: Any]] = []
            try await api.pipeline.eventually("both messages are parked") {
                items = try await api.call("GET", "/v1/parked", token: APIHarness.operatorToken).items
                return items.count == 2
            }
            let reasons = items.compactMap { $0["reason"] as? String }
            #expect(reasons.contains { $0.contains("no tenant \(missingTenant.uuidString.lowercased())") })
            #expect(items.allSatisfy { ($0["id"] as? String)?.isEmpty == false && $0["body_kept"] as? Bool == true })
            let tenant = try await api.tenant()
            #expect(try await api.call("GET", "/v1/parked", token: tenant.key).status == 403)

            // The cause is fixed (the tenant exists now, with an endpoint): replay delivers it.
            _ = try await api.pipeline.pool.query("INSERT INTO tenants (id, name) VALUES (\(missingTenant), 'late')")
            _ = try await api.pipeline.endpoint(tenant: missingTenant, url: receiver.url)
            let parkedEvent = try #require(items.first { ($0["reason"] as? String)?.contains("no tenant") == true }?["id"] as? String)
            #expect(try await api.call("POST", "/v1/parked/\(parkedEvent)/replay", token: APIHarness.operatorToken).status == 202)
            let request = try #require(try await receiver.waitForRequests(1).first)
            #expect(request.header("x-herald-event") == "invoice.paid")

            let garbage = try #require(items.first { ($0["reason"] as? String)?.contains("no tenant") == false }?["id"] as? String)
            #expect(try await api.call("DELETE", "/v1/parked/\(garbage)", token: APIHarness.operatorToken).status == 204)
            #expect(try await api.call("GET", "/v1/parked", token: APIHarness.operatorToken).items.isEmpty)
            #expect(try await api.call("DELETE", "/v1/parked/\(garbage)", token: APIHarness.operatorToken).status == 404)
        }
        await receiver.stop()
    }
}
