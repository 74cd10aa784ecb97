import Synchronization
import API
import Cryptography
import Delivery
import Foundation
import Policy
import Testing
import TestSupport

@Suite("Management API (real server, database, broker and receivers)")
struct APITests {
    @Test func tenantsAreIsolatedOnEveryRoute() async throws {
        try await APIHarness.run { api in
            let a = try await api.tenant("A")
            let b = try await api.tenant("B")
            let receiver = try await TestHTTPServer.start()
            let endpoint = try await api.endpoint(a.key, url: "http://localhost:\(receiver.port)/a")
            let test = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/test", token: a.key, body: ["event_type": "client.created"])
            #expect(test.status == 202)
            let delivery = try #require(test.string("delivery_id"))
            try await receiver.waitForRequests(1)
            try await api.pipeline.eventually("the test delivery is delivered") {
                try await api.call("GET", "/v1/deliveries/\(delivery)", token: a.key).object["delivery"].flatMap { ($0 as? [String: Any])?["status"] as? String } == "delivered"
            }
            // The CLI's --field reads the delivery, or each attempt for what only attempts have.
            let (statusCode, status) = try await api.cli(["deliveries", "show", delivery, "--field", "status"], key: a.key)
            #expect(statusCode == 0 && status == "delivered\n")
            let (_, answers) = try await api.cli(["deliveries", "show", delivery, "--field", "status_code"], key: a.key)
            #expect(answers == "200\n")
            let (missingCode, _) = try await api.cli(["deliveries", "show", delivery, "--field", "nonsense"], key: a.key)
            #expect(missingCode != 0)
            let e = endpoint.id
            let foreign: [(String, String, Any?)] = [
                ("GET", "/v1/endpoints/\(e)", nil), ("PATCH", "/v1/endpoints/\(e)", ["description": "x"]),
                ("GET", "/v1/endpoints/\(e)/secret", nil), ("POST", "/v1/endpoints/\(e)/rotate-secret", nil),
                ("POST", "/v1/endpoints/\(e)/enable", nil), ("POST", "/v1/endpoints/\(e)/disable", nil),
                ("POST", "/v1/endpoints/\(e)/activate", nil), ("POST", "/v1/endpoints/\(e)/test", ["event_type": "client.created"]),
                ("GET", "/v1/endpoints/\(e)/deliveries", nil), ("POST", "/v1/endpoints/\(e)/recover", ["since": "2020-01-01T00:00:00Z"]),
                ("GET", "/v1/deliveries/\(delivery)", nil), ("POST", "/v1/deliveries/\(delivery)/retry", nil),
                ("DELETE", "/v1/endpoints/\(e)", nil),
            ]
            for (method, path, body) in foreign {
                let answer = try await api.call(method, path, token: b.key, body: body)
                #expect(answer.status == 404, "\(method) \(path) answered \(answer.status) to another tenant")
                #expect(answer.contentType == "application/problem+json")
            }
            #expect(try await api.call("GET", "/v1/endpoints", token: b.key).items.isEmpty)
            #expect(try await api.call("GET", "/v1/deliveries", token: b.key).items.isEmpty)
            #expect(try await api.call("GET", "/v1/deliveries?endpoint_id=\(e)", token: b.key).items.isEmpty)
            // A's objects are untouched.
            #expect(try await api.call("GET", "/v1/endpoints/\(e)", token: a.key).status == 200)
            #expect(try await api.call("GET", "/v1/deliveries", token: a.key).items.count == 1)

            // Roles and keys.
            #expect(try await api.call("GET", "/v1/endpoints").status == 401)
            #expect(try await api.call("GET", "/v1/endpoints", token: "hk_" + String(repeating: "0", count: 64)).status == 401)
            #expect(try await api.call("GET", "/v1/endpoints", token: APIHarness.operatorToken).status == 403)
            #expect(try await api.call("POST", "/v1/tenants", token: a.key, body: ["name": "evil"]).status == 403)
            let keys = try await api.call("POST", "/v1/tenants/\(a.id)/keys", token: APIHarness.operatorToken, body: ["name": "second"])
            let second = try #require(keys.string("key"))
            let secondID = try #require(keys.string("id"))
            #expect(try await api.call("DELETE", "/v1/keys/\(secondID)", token: b.key).status == 404)
            #expect(try await api.call("GET", "/v1/endpoints", token: second).status == 200)
            #expect(try await api.call("DELETE", "/v1/keys/\(secondID)", token: a.key).status == 204)
            #expect(try await api.call("GET", "/v1/endpoints", token: second).status == 401)
            // The operator may revoke any tenant's key.
            let third = try await api.call("POST", "/v1/tenants/\(b.id)/keys", token: APIHarness.operatorToken, body: [:] as [String: Any])
            let thirdID = try #require(third.string("id"))
            let thirdKey = try #require(third.string("key"))
            #expect(try await api.call("DELETE", "/v1/keys/\(thirdID)", token: APIHarness.operatorToken).status == 204)
            #expect(try await api.call("GET", "/v1/endpoints", token: thirdKey).status == 401)
            await receiver.stop()
        }
    }

    @Test func hostileURLsAreRejectedOnCreateAndUpdate() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            #expect(HostileURLs.all.count >= 40)
            for url in HostileURLs.all {
                let answer = try await api.call("POST", "/v1/endpoints", token: tenant.key, body: ["url": url, "event_types": ["*"]])
                #expect(answer.status == 422 || answer.status == 400, "\(url) was accepted")
                #expect(answer.string("field") == "url")
            }
            let endpoint = try await api.endpoint(tenant.key, url: "https://hooks.example.com/in")
            let update = try await api.call("PATCH", "/v1/endpoints/\(endpoint.id)", token: tenant.key, body: ["url": "https://169.254.169.254/"])
            #expect(update.status == 422)
            #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key).items.count == 1)
        }
    }

    @Test func aNameResolvingToLoopbackIsRefusedAtConnectTimeUnlessAllowListed() async throws {
        var options = Pipeline.Options()
        options.addressPolicy = AddressPolicy().check
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run(options) { api in
            let tenant = try await api.tenant()
            // localhost passes the URL rules here (an allowed host), but resolves to loopback.
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in")
            let test = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/test", token: tenant.key, body: ["event_type": "client.created"])
            let delivery = try #require(test.string("delivery_id"))
            try await api.pipeline.eventually("the attempt is recorded") {
                !(try await api.call("GET", "/v1/deliveries/\(delivery)", token: tenant.key).object["attempts"] as? [Any] ?? []).isEmpty
            }
            let detail = try await api.call("GET", "/v1/deliveries/\(delivery)", token: tenant.key)
            let attempt = try #require((detail["attempts"] as? [[String: Any]])?.first)
            #expect(attempt["error_class"] as? String == "blocked")
            #expect(receiver.requests.isEmpty)
        }
        await receiver.stop()
    }

    @Test func theDPAGatesEnabling() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let refused = try await api.call("POST", "/v1/endpoints", token: tenant.key, body: ["url": "https://example.com/a", "event_types": ["*"], "enabled": true])
            #expect(refused.status == 422)
            #expect(refused.string("field") == "enabled")
            let created = try await api.call("POST", "/v1/endpoints", token: tenant.key, body: ["url": "https://example.com/a", "event_types": ["*"]])
            let id = try #require(created.string("id"))
            #expect(created["enabled"] as? Bool == false)
            #expect(try await api.call("POST", "/v1/endpoints/\(id)/enable", token: tenant.key).status == 422)
            #expect(try await api.call("POST", "/v1/endpoints/\(id)/activate", token: tenant.key).status == 422)
            let confirmed = try await api.call("PATCH", "/v1/endpoints/\(id)", token: tenant.key, body: ["dpa_confirmed_by": "Anna Beispiel", "enabled": true])
            #expect(confirmed.status == 200)
            #expect(confirmed["enabled"] as? Bool == true)
            #expect(confirmed.string("dpa_confirmed_by") == "Anna Beispiel")
            #expect(confirmed.string("dpa_confirmed_at") != nil)
        }
    }

    @Test func rotationSignsWithBothSecretsWhereTheyFitTheReceiversOneElsewhereUntilConfirmed() async throws {
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in")
            let rotated = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/rotate-secret", token: tenant.key, body: ["grace_seconds": 3600])
            let newSecret = try #require(rotated.string("secret"))
            #expect(newSecret != endpoint.secret)
            #expect(try await api.call("GET", "/v1/endpoints/\(endpoint.id)/secret", token: tenant.key).string("secret") == newSecret)
            #expect(try await api.call("GET", "/v1/endpoints/\(endpoint.id)", token: tenant.key).string("previous_secret_expires_at") != nil)
            /// The next test delivery, once the worker's endpoint cache (200 ms here) shows `condition`.
            func delivery(where condition: @escaping (ReceivedRequest) -> Bool) async throws -> ReceivedRequest {
                try await api.pipeline.eventually("a delivery signed as expected") {
                    let count = receiver.requests.count
                    _ = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/test", token: tenant.key, body: ["event_type": "invoice.paid"])
                    return condition(try await receiver.waitForRequests(count + 1)[count])
                }
                return try #require(receiver.requests.last)
            }
            let during = try await delivery { verifiedSecrets($0, [endpoint.secret, newSecret]).count == 2 }
            // X-Herald-Signature has room for one: the receiver's secret until the rotation is confirmed.
            #expect(heraldSignatureValid(during, secret: endpoint.secret))
            #expect(!heraldSignatureValid(during, secret: newSecret))
            // The shipped verifiers pass with either secret: webhook-signature carries both.
            for verifier in [["python3", "examples/verify/verify.py"], ["node", "examples/verify/verify.js"]] {
                for secret in [endpoint.secret, newSecret] {
                    #expect(try runVerifier(verifier, secret: secret, request: during, body: during.body) == 0, "\(verifier[0])")
                }
            }

            // Rotating again while one is pending replaces the pending secret, not the receiver's.
            let again = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/rotate-secret", token: tenant.key, body: ["grace_seconds": 3600])
            let newest = try #require(again.string("secret"))
            let replaced = try await delivery { verifiedSecrets($0, [endpoint.secret, newSecret, newest]) == [endpoint.secret, newest] }
            #expect(heraldSignatureValid(replaced, secret: endpoint.secret))

            let confirmed = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/confirm-secret", token: tenant.key)
            #expect(confirmed.status == 200 && confirmed.string("previous_secret_expires_at") == nil)
            let after = try await delivery { verifiedSecrets($0, [endpoint.secret, newSecret, newest]) == [newest] }
            #expect(heraldSignatureValid(after, secret: newest))
            // Nothing left to confirm: a conflict saying so.
            let twice = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/confirm-secret", token: tenant.key)
            #expect(twice.status == 409 && twice.string("detail") == "no rotation of this endpoint's secret is pending")

            // Without a grace period the new secret signs at once.
            let immediate = try #require(
                try await api.call("POST", "/v1/endpoints/\(endpoint.id)/rotate-secret", token: tenant.key, body: ["grace_seconds": 0]).string("secret"))
            let last = try await delivery { verifiedSecrets($0, [newest, immediate]) == [immediate] }
            #expect(heraldSignatureValid(last, secret: immediate))
        }
        await receiver.stop()
    }

    @Test func aManualRetryCarriesANewRequestIDAndIsRecordedAsManual() async throws {
        let answers = Counter()
        let receiver = try await TestHTTPServer.start { _ in answers.next() == 1 ? .status(404) : .status(200) }
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in")
            let test = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/test", token: tenant.key, body: ["event_type": "order.paid"])
            let delivery = try #require(test.string("delivery_id"))
            try await api.pipeline.eventually("the first attempt failed") { try await status(api, tenant.key, delivery) == "failed" }
            let retry = try await api.call("POST", "/v1/deliveries/\(delivery)/retry", token: tenant.key)
            #expect(retry.status == 202)
            #expect(retry["attempt"] as? Int == 2, "the attempt number is an integer")
            try await api.pipeline.eventually("the resend is delivered") { try await status(api, tenant.key, delivery) == "delivered" }
            let requests = receiver.requests
            #expect(requests.count == 2)
            #expect(requests[0].header("x-herald-request-id") != requests[1].header("x-herald-request-id"))
            // The message is the same one: webhook-id stays, so receivers deduplicate it.
            #expect(requests[0].header("webhook-id") == delivery && requests[1].header("webhook-id") == delivery)
            let detail = try await api.call("GET", "/v1/deliveries/\(delivery)", token: tenant.key)
            #expect((detail["event"] as? [String: Any])?["data"] is [String: Any], "an event's data is an object")
            let attempts = detail["attempts"] as? [[String: Any]] ?? []
            #expect(attempts.map { $0["trigger"] as? String } == ["manual", "manual"])
            #expect(attempts.map { $0["status_code"] as? Int } == [404, 200])
            #expect(attempts.last?["request_id"] as? String == requests[1].header("x-herald-request-id"))
            // A delivery that is still open (its request hangs) cannot be resent.
            let hanging = try await TestHTTPServer.start { _ in .hang }
            let slow = try await api.endpoint(tenant.key, url: "http://localhost:\(hanging.port)/in")
            let open = try await api.call("POST", "/v1/endpoints/\(slow.id)/test", token: tenant.key, body: ["event_type": "order.paid"])
            try await hanging.waitForRequests(1)
            let conflict = try await api.call("POST", "/v1/deliveries/\(try #require(open.string("delivery_id")))/retry", token: tenant.key)
            #expect(conflict.status == 409)
            #expect(conflict.contentType == "application/problem+json")
            await hanging.stop()
        }
        await receiver.stop()
    }

    @Test func recoverResendsExactlyWhatTheDryRunCounted() async throws {
        let healthy = Flag()
        let receiver = try await TestHTTPServer.start { _ in healthy.isSet ? .status(200) : .status(400) }
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in", types: ["invoice.paid"])
            let tenantID = try #require(UUID(uuidString: tenant.id))
            for n in 0..<4 { try await api.pipeline.publish("invoice.paid", tenant: tenantID, id: "evt_recover_\(n)") }
            try await api.pipeline.eventually("four deliveries failed") {
                try await api.call("GET", "/v1/endpoints/\(endpoint.id)/deliveries?status=failed", token: tenant.key).items.count == 4
            }
            let dry = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/recover", token: tenant.key, body: ["since": "2020-01-01T00:00:00Z", "dry_run": true])
            #expect(dry["count"] as? Int == 4)
            #expect(dry["resent"] as? Int == 0)
            healthy.set()
            let run = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/recover", token: tenant.key, body: ["since": "2020-01-01T00:00:00Z"])
            #expect(run["resent"] as? Int == dry["count"] as? Int)
            try await receiver.waitForRequests(8)
            try await api.pipeline.eventually("all four are delivered") {
                try await api.call("GET", "/v1/endpoints/\(endpoint.id)/deliveries?status=delivered", token: tenant.key).items.count == 4
            }
        }
        await receiver.stop()
    }

    @Test func activationResetsTheCountAndReplaysSkippedDeliveries() async throws {
        let healthy = Flag()
        let receiver = try await TestHTTPServer.start { _ in healthy.isSet ? .status(200) : .status(404) }
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in", types: ["client.*"])
            let tenantID = try #require(UUID(uuidString: tenant.id))
            for n in 0..<5 {
                try await api.pipeline.publish("client.updated", tenant: tenantID, id: "evt_fail_\(n)")
                try await receiver.waitForRequests(n + 1)
            }
            try await api.pipeline.eventually("the endpoint is disabled") {
                try await api.call("GET", "/v1/endpoints/\(endpoint.id)", token: tenant.key)["enabled"] as? Bool == false
            }
            for n in 0..<2 { try await api.pipeline.publish("client.updated", tenant: tenantID, id: "evt_skip_\(n)") }
            try await api.pipeline.eventually("two deliveries are skipped") {
                try await api.call("GET", "/v1/endpoints/\(endpoint.id)/deliveries?status=skipped", token: tenant.key).items.count == 2
            }
            healthy.set()
            let activated = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/activate", token: tenant.key, body: ["replay_skipped": true])
            #expect(activated.status == 200)
            #expect(activated["replayed"] as? Int == 2)
            let view = activated["endpoint"] as? [String: Any]
            #expect(view?["enabled"] as? Bool == true)
            #expect(view?["consecutive_failures"] as? Int == 0)
            #expect(view?["disabled_reason"] is NSNull || view?["disabled_reason"] == nil)
            try await receiver.waitForRequests(7)
            try await api.pipeline.eventually("the replayed deliveries are delivered") {
                try await api.call("GET", "/v1/endpoints/\(endpoint.id)/deliveries?status=delivered", token: tenant.key).items.count == 2
            }
        }
        await receiver.stop()
    }

    @Test func badInputAlwaysGetsAProblemNamingTheField() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "https://hooks.example.com/in")
            let cases: [(String, String, Any?, Int, String?)] = [
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "colour": "red"], 400, "colour"),
                ("POST", "/v1/endpoints", ["url": 5, "event_types": ["*"]], 400, "url"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": "client.created"], 400, "event_types"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": []], 400, "event_types"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["Client Created"]], 400, "event_types"),
                ("POST", "/v1/endpoints", ["event_types": ["*"]], 400, "url"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "enabled": 1], 400, "enabled"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "payload_format": "xml"], 400, "payload_format"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "headers": ["X-Herald-Signature": "x"]], 422, "headers"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "headers": ["Bad Name": "x"]], 400, "headers"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "secret": "short"], 400, "secret"),
                ("POST", "/v1/endpoints", "{not json", 400, nil),
                ("POST", "/v1/endpoints", "[1,2]", 400, nil),
                ("PATCH", "/v1/endpoints/\(endpoint.id)", ["filters": ["workspace": "w1"]], 400, "filters"),
                ("POST", "/v1/endpoints/\(endpoint.id)/rotate-secret", ["grace_seconds": -1], 400, "grace_seconds"),
                ("POST", "/v1/endpoints/\(endpoint.id)/test", ["event_type": "unknown.type"], 422, "event_type"),
                ("POST", "/v1/endpoints/\(endpoint.id)/test", [:] as [String: Any], 400, "event_type"),
                ("POST", "/v1/endpoints/\(endpoint.id)/recover", ["since": "yesterday"], 400, "since"),
                ("GET", "/v1/deliveries?status=lost", nil, 400, "status"),
                ("GET", "/v1/deliveries?cursor=forged", nil, 400, "cursor"),
                ("GET", "/v1/deliveries?limit=5000", nil, 400, "limit"),
                ("GET", "/v1/deliveries?colour=red", nil, 400, "colour"),
                ("GET", "/v1/endpoints/not-a-uuid", nil, 404, nil),
                ("GET", "/v1/nowhere", nil, 404, nil),
                ("POST", "/v1/events", ["type": "client.created"], 400, "data"),
                ("POST", "/v1/events", ["type": "Bad", "data": [:] as [String: Any]], 422, "type"),
                ("POST", "/v1/events", ["type": "a.b", "data": [1]], 400, "data"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "occurred_at": "soon"], 400, "occurred_at"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "attributes": ["w": 1]], 400, "attributes"),
            ]
            for (method, path, body, status, field) in cases {
                let answer = try await api.call(method, path, token: tenant.key, body: body)
                #expect(answer.status == status, "\(method) \(path) \(String(describing: body)) answered \(answer.status)")
                #expect(answer.contentType == "application/problem+json", "\(method) \(path)")
                #expect(answer.string("detail")?.isEmpty == false)
                if let field { #expect(answer.string("field") == field, "\(method) \(path) named \(answer.string("field") ?? "no field")") }
            }
            let big = "{\"url\":\"https://example.com\",\"event_types\":[\"*\"],\"description\":\"" + String(repeating: "x", count: 1_100_000) + "\"}"
            let tooLarge = try await api.call("POST", "/v1/endpoints", token: tenant.key, body: big)
            #expect(tooLarge.status == 413)
            #expect(tooLarge.contentType == "application/problem+json")
            // Nothing was created by any of them.
            #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key).items.count == 1)
        }
    }

    @Test func catalogIngestionAndTheDeliveryLog() async throws {
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in", types: ["booking.*"], extra: ["payload_format": "envelope"])
            let catalog = try await api.call("GET", "/v1/event-types", token: tenant.key)
            #expect(catalog.items.count == 17)
            #expect(catalog.items.allSatisfy { $0["sample"] is [String: Any] })
            for n in 0..<5 {
                let published = try await api.call(
                    "POST", "/v1/events", token: tenant.key,
                    body: ["type": "booking.confirmed", "id": "evt_http_\(n)", "data": ["slot_date": "2026-08-14", "n": n]])
                #expect(published.status == 202)
                #expect(published.string("id") == "evt_http_\(n)")
            }
            // Idempotent on the event id.
            _ = try await api.call("POST", "/v1/events", token: tenant.key, body: ["type": "booking.confirmed", "id": "evt_http_0", "data": ["n": 0]])
            try await receiver.waitForRequests(5)
            try await api.pipeline.eventually("five deliveries are delivered") {
                try await api.call("GET", "/v1/deliveries?status=delivered", token: tenant.key).items.count == 5
            }
            // Newest first, two at a time, with a cursor.
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await api.call("GET", "/v1/endpoints/\(endpoint.id)/deliveries?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), token: tenant.key)
                seen += page.items.compactMap { $0["event_id"] as? String }
                cursor = page.string("next_cursor")
            } while cursor != nil
            // Pages add up to the whole log, newest first, each delivery once.
            let whole = try await api.call("GET", "/v1/endpoints/\(endpoint.id)/deliveries?limit=200", token: tenant.key).items
            #expect(seen == whole.compactMap { $0["event_id"] as? String })
            #expect(Set(seen) == Set((0..<5).map { "evt_http_\($0)" }))
            let times = whole.compactMap { $0["created_at"] as? String }
            #expect(times == times.sorted(by: >))
            #expect(try await api.call("GET", "/v1/deliveries?event_type=booking.confirmed&status=failed", token: tenant.key).items.isEmpty)
            let detail = try await api.call("GET", "/v1/deliveries?limit=1", token: tenant.key)
            let id = try #require(detail.items.first?["id"] as? String)
            let full = try await api.call("GET", "/v1/deliveries/\(id)", token: tenant.key)
            #expect((full["event"] as? [String: Any])?["type"] as? String == "booking.confirmed")
            #expect((full["attempts"] as? [[String: Any]])?.first?["status_code"] as? Int == 200)
            // Operations routes.
            #expect(try await api.call("GET", "/healthz").status == 200)
            #expect(try await api.call("GET", "/readyz").string("status") == "ready")
        }
        await receiver.stop()
    }

    private func status(_ api: APIHarness, _ key: String, _ delivery: String) async throws -> String? {
        (try await api.call("GET", "/v1/deliveries/\(delivery)", token: key)["delivery"] as? [String: Any])?["status"] as? String
    }
}

/// A switch a receiver reads and a test flips.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
