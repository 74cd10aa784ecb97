import Foundation
import Testing
import TestSupport

/// Signature profiles, payload formats and payload filters as a tenant sets them through
/// the API and the CLI, and what the worker then sends.
@Suite("Receiver profiles through the API")
struct ProfileAPITests {
    @Test func settingsAreCheckedWhenSavedAndShownAsSaved() async throws {
        try await APIHarness.run { api in
            let (_, key) = try await api.tenant()
            let base: [String: Any] = ["url": "http://localhost:9/in", "event_types": ["invoice.*"]]
            func create(_ extra: [String: Any]) async throws -> APIHarness.Answer {
                try await api.call("POST", "/v1/endpoints", token: key, body: base.merging(extra) { $1 })
            }
            // Refused, each naming its field.
            for (extra, status, field, detail) in [
                (["signature": ["profile": "hmac"]], 400, "signature.profile", "must be one of herald, standard-webhooks, body-hmac, timestamped-hmac, github, stripe, none"),
                (["signature": ["profile": "body-hmac"]], 400, "signature.header", "is required"),
                (["signature": ["profile": "body-hmac", "header": "X-Herald-Signature"]], 400, "signature.header", "'X-Herald-Signature' is a header Herald sets itself"),
                (["payload_format": "xml"], 400, "payload_format", "must be one of raw, envelope, craftdesk, customermates"),
                (["payload_fields": ["type": "id"]], 400, "payload_fields", "the five keys must differ from one another"),
                (["payload_fields": ["type": "event_type"]], 422, "payload_fields", "renames an envelope's keys; set payload_format to envelope, or leave payload_fields out"),
                (["payload_filter": ["total": ["$gte2": "1000"]]], 400, "payload_filter.total.$gte2", nil),
                (["payload_filter": ["$or": "x"]], 400, "payload_filter.$or", "must be a non-empty array of filters"),
                (
                    ["signature": ["profile": "github"], "headers": ["X-Hub-Signature-256": "mine"]], 422, "headers",
                    "'X-Hub-Signature-256' is a header Herald sends itself with the github signature profile"
                ),
            ] as [([String: Any], Int, String, String?)] {
                let answer = try await create(extra)
                #expect(answer.status == status, "\(extra)")
                #expect(answer.string("field") == field, "\(extra)")
                if let detail { #expect(answer.string("detail")?.hasSuffix(detail) == true, "\(extra): \(answer.string("detail") ?? "")") }
            }

            // Saved and shown as saved; the filter keeps the tenant's keys as written.
            let filter: [String: Any] = ["ClientId": ["$in": ["2c856b2f"]], "StepName": "Photography"]
            let saved = try await create([
                "signature": ["profile": "body-hmac", "header": "X-CF-Signature", "event_header": "X-CF-Event"], "payload_format": "envelope",
                "payload_fields": ["type": "event_type"], "payload_filter": filter,
            ])
            #expect(saved.status == 201)
            let id = try #require(saved.string("id"))
            let shown = try await api.call("GET", "/v1/endpoints/\(id)", token: key)
            #expect(shown.object["signature"] as? [String: String] == ["profile": "body-hmac", "header": "X-CF-Signature", "encoding": "hex", "event_header": "X-CF-Event"])
            #expect(shown.object["payload_fields"] as? [String: String] == ["type": "event_type"])
            #expect((shown.object["payload_filter"] as? NSDictionary) == (filter as NSDictionary))
            #expect(shown.object["warnings"] == nil)

            // {} removes the filter; a format that is not an envelope drops the renamed keys.
            let cleared = try await api.call("PATCH", "/v1/endpoints/\(id)", token: key, body: ["payload_filter": [:] as [String: Any], "payload_format": "raw"])
            #expect(cleared.status == 200 && cleared.object["payload_filter"] == nil && cleared.object["payload_fields"] == nil)
            // A custom header taking a name the saved profile sends: refused against the stored profile.
            let clash = try await api.call("PATCH", "/v1/endpoints/\(id)", token: key, body: ["headers": ["x-cf-event": "mine"]])
            #expect(clash.status == 422 && clash.string("field") == "headers")

            // Unsigned only on an explicit choice, and the answer says what it means.
            let unsigned = try await create(["signature": ["profile": "none"]])
            #expect(unsigned.status == 201)
            #expect((unsigned.object["warnings"] as? [String])?.first?.hasPrefix("signature: deliveries to this endpoint are not signed") == true)
            #expect(try await create([:]).object["signature"] as? [String: String] == ["profile": "herald"])
        }
    }

    @Test func theCLISetsAProfileAFormatAndAFilter() async throws {
        try await APIHarness.run { api in
            let (_, key) = try await api.tenant()
            let (status, output) = try await api.cli(
                [
                    "endpoints", "create", "--url", "http://localhost:9/in", "--events", "invoice.paid", "--format", "envelope", "--rename",
                    "type=event_type", "--payload-filter", #"{"total": {"$gte": "1000"}}"#, "--signature", "timestamped-hmac",
                    "--signature-header-prefix", "X-CreatorDesk",
                ], key: key)
            #expect(status == 0, "\(output)")
            let created = APIHarness.object(output)
            #expect(created["signature"] as? [String: String] == ["profile": "timestamped-hmac", "header_prefix": "X-CreatorDesk"])
            #expect(created["payload_fields"] as? [String: String] == ["type": "event_type"])
            let id = try #require(created["id"] as? String)
            let (confirmStatus, confirmOutput) = try await api.cli(["endpoints", "confirm-secret", id], key: key)
            #expect(confirmStatus != 0 && confirmOutput.contains("no rotation of this endpoint's secret is pending"), "\(confirmOutput)")
            let (badStatus, badOutput) = try await api.cli(["endpoints", "update", id, "--signature-header", "X-Sig"], key: key)
            #expect(badStatus != 0 && badOutput.contains("--signature-… options need --signature naming the profile"), "\(badOutput)")
        }
    }

    /// A rate limit is set through the API and the CLI, shown, and removed with 0.
    @Test func aRateLimitIsSetShownAndRemoved() async throws {
        try await APIHarness.run { api in
            let (_, key) = try await api.tenant()
            let base: [String: Any] = ["url": "http://localhost:9/in", "event_types": ["invoice.*"]]
            let tooFast = try await api.call("POST", "/v1/endpoints", token: key, body: base.merging(["rate_limit": 10_001]) { $1 })
            #expect(tooFast.status == 400 && tooFast.string("field") == "rate_limit")
            let negative = try await api.call("POST", "/v1/endpoints", token: key, body: base.merging(["rate_limit": -1]) { $1 })
            #expect(negative.status == 400 && negative.string("field") == "rate_limit")
            let saved = try await api.call("POST", "/v1/endpoints", token: key, body: base.merging(["rate_limit": 50]) { $1 })
            #expect(saved.status == 201 && saved.object["rate_limit"] as? Int == 50)
            let id = try #require(saved.string("id"))
            let removed = try await api.call("PATCH", "/v1/endpoints/\(id)", token: key, body: ["rate_limit": 0])
            #expect(removed.status == 200 && removed.object["rate_limit"] == nil)
            let (status, output) = try await api.cli(["endpoints", "update", id, "--rate-limit", "7"], key: key)
            #expect(status == 0, "\(output)")
            #expect(APIHarness.object(output)["rate_limit"] as? Int == 7)
            let untouched = try await api.call("PATCH", "/v1/endpoints/\(id)", token: key, body: ["description": "x"])
            #expect(untouched.object["rate_limit"] as? Int == 7, "a change of something else keeps the limit")
        }
    }

    @Test func payloadFiltersDecideInFanOutAndFormatsShapeTheBody() async throws {
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let (_, key) = try await api.tenant()
            let bigEndpoint = try await api.endpoint(
                key, url: "http://localhost:\(receiver.port)/big", types: ["invoice.paid"],
                extra: ["payload_filter": ["total": ["$gte": "1000"], "tags": ["$contains": "Hochzeit"]], "payload_format": "craftdesk"])
            _ = try await api.endpoint(
                key, url: "http://localhost:\(receiver.port)/all", types: ["invoice.paid"],
                extra: ["payload_format": "envelope", "payload_fields": ["type": "event_type", "data": "payload"]])
            for (total, tags) in [("1450.00", ["Hochzeit"]), ("99.00", ["Hochzeit"]), ("2300.50", ["Portrait"]), ("1000", ["Hochzeit", "2026"])] {
                _ = try await api.call("POST", "/v1/events", token: key, body: ["type": "invoice.paid", "data": ["total": total, "tags": tags]])
            }
            let requests = try await receiver.waitForRequests(6)
            let big = requests.filter { $0.uri == "/big" }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
            #expect(Set(big.compactMap { ($0["data"] as? [String: Any])?["total"] as? String }) == ["1450.00", "1000"])
            #expect(big.allSatisfy { $0["event"] as? String == "invoice.paid" && $0["workspace_id"] != nil && $0["id"] != nil })
            let all = requests.filter { $0.uri == "/all" }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
            #expect(all.count == 4 && all.allSatisfy { $0["event_type"] as? String == "invoice.paid" && $0["payload"] != nil && $0["type"] == nil })
            // Every event was fanned out (/all has the four); the filtered ones made no delivery at all.
            #expect(try await api.pipeline.deliveries(endpoint: try #require(UUID(uuidString: bigEndpoint.id))).count == 2)
        }
        await receiver.stop()
    }
}
