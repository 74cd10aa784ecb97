import API
import Cryptography
import Foundation
@testable import Inbound
import Postgres
import Testing
import TestSupport

/// Inbound webhooks through the real API, PostgreSQL, broker, worker and a receiver.
@Suite("Inbound webhooks (real server, database, broker and receivers)")
struct InboundWebhookTests {
    static let creatio = #"{"Name": "John Best", "Email": "j.best@ourcompany.com", "MobilePhone": "+1 212 542 4238", "CountryId": "f8af0e88-f36b-1410-fa98-00155d043204", "EntityName": "Contact"}"#
    static var entities: [String: Any] { ["event_type_path": "$.EntityName", "event_types": ["Contact": "contact.created", "Lead": "lead.created"]] }
    static let json = [("Content-Type", "application/json")]

    /// A source of `key`'s tenant; returns its id, the path of its URL and its secret.
    func source(_ api: APIHarness, _ key: String, _ body: [String: Any]) async throws -> (id: String, path: String, secret: String) {
        var fields: [String: Any] = ["name": "test source"]
        fields.merge(body) { _, new in new }
        let created = try await api.call("POST", "/v1/sources", token: key, body: fields)
        #expect(created.status == 201, "\(created.object)")
        let url = try #require(created.string("url"))
        let path = String(url[try #require(url.range(of: "/in/")).lowerBound...])
        return (try #require(created.string("id")), path, created.string("secret") ?? "")
    }

    func inbound(_ api: APIHarness, _ key: String, _ id: String) async throws -> [String: Any] {
        try await api.call("GET", "/v1/inbound/\(id)", token: key).object
    }

    @Test func creatiosContactReachesAnEndpointAsContactCreated() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let receiver = try await TestHTTPServer.start()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/hook", types: ["contact.*", "lead.*", "order.*"])
            let source = try await source(api, tenant.key, ["service": "Creatio", "verification": ["method": "basic", "username": "creatio"], "mapping": Self.entities])
            let basic = ("Authorization", "Basic " + Base64.encode(Array("creatio:\(source.secret)".utf8)))

            // JSON, as the reference document's example.
            let answer = try await api.send(source.path, headers: Self.json + [basic], body: Array(Self.creatio.utf8))
            #expect(answer.status == 200)
            #expect(answer.string("status") == "processed")
            let first = try await receiver.waitForRequests(1)[0]
            #expect(first.header("x-herald-event") == "contact.created")
            #expect(first.body == Array(Self.creatio.utf8))
            #expect(heraldSignatureValid(first, secret: endpoint.secret))
            let stored = try await inbound(api, tenant.key, try #require(answer.string("id")))
            #expect(stored["status"] as? String == "processed")
            #expect(stored["body"] as? String == Self.creatio)
            #expect(stored["event_type"] as? String == "contact.created")
            // The credentials are not kept with the webhook.
            let names = (stored["headers"] as? [[String]] ?? []).map { $0[0].lowercased() }
            #expect(names.contains("content-type") && !names.contains("authorization"))

            // Form data, as Creatio's landing pages send it.
            let form = try await api.send(
                source.path, headers: [("Content-Type", "application/x-www-form-urlencoded"), basic],
                body: Array("Name=Jane+Roe&Email=jane%40example.com&EntityName=Lead".utf8))
            #expect(form.string("status") == "processed")
            let second = try await receiver.waitForRequests(2)[1]
            #expect(second.header("x-herald-event") == "lead.created")
            #expect(String(decoding: second.body, as: UTF8.self) == #"{"Name":"Jane Roe","Email":"jane@example.com","EntityName":"Lead"}"#)

            // Multipart fields, as some form builders send them.
            let boundary = "----herald7f3a"
            let multipart = "--\(boundary)\r\nContent-Disposition: form-data; name=\"Name\"\r\n\r\nKim Lee\r\n"
                + "--\(boundary)\r\nContent-Disposition: form-data; name=\"EntityName\"\r\n\r\nContact\r\n--\(boundary)--\r\n"
            let parts = try await api.send(
                source.path, headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)"), basic], body: Array(multipart.utf8))
            #expect(parts.string("status") == "processed")
            let fromParts = try await receiver.waitForRequests(3)[2]
            #expect(String(decoding: fromParts.body, as: UTF8.self) == #"{"Name":"Kim Lee","EntityName":"Contact"}"#)

            // An unregistered entity: accepted, kept, the error names the field.
            let order = try await api.send(source.path, headers: Self.json + [basic], body: Array(#"{"EntityName": "Order", "Number": "A-7"}"#.utf8))
            #expect(order.status == 200)
            #expect(order.string("status") == "parse_error")
            let orderID = try #require(order.string("id"))
            let failed = try await inbound(api, tenant.key, orderID)
            #expect(failed["error_field"] as? String == "$.EntityName")
            #expect(failed["error"] as? String == "'Order' is not a registered entity; registered: Contact, Lead")
            // Without EntityName: stored only.
            let plain = try await api.send(source.path, headers: Self.json + [basic], body: Array(#"{"Name": "No Entity"}"#.utf8))
            #expect(plain.string("status") == "received")

            // The mapping is fixed; the stored webhook is replayed and becomes an event.
            let fixed = try await api.call(
                "PATCH", "/v1/sources/\(source.id)", token: tenant.key,
                body: ["mapping": ["event_type_path": "$.EntityName", "event_types": ["Contact": "contact.created", "Order": "order.created"]]])
            #expect(fixed.status == 200)
            let replay = try await api.call("POST", "/v1/inbound/\(orderID)/replay", token: tenant.key)
            #expect(replay.string("status") == "processed")
            #expect(replay.string("event_type") == "order.created")
            let third = try await receiver.waitForRequests(4)[3]
            #expect(third.header("x-herald-event") == "order.created")
            #expect(String(decoding: third.body, as: UTF8.self) == #"{"EntityName": "Order", "Number": "A-7"}"#)

            // The list filters by status.
            let errors = try await api.call("GET", "/v1/inbound?status=received&source_id=\(source.id)", token: tenant.key)
            #expect(errors.items.count == 1)
            #expect(errors.items.first?["status"] as? String == "received")
            // Another tenant sees none of it.
            let other = try await api.tenant("Other")
            #expect(try await api.call("GET", "/v1/inbound/\(orderID)", token: other.key).status == 404)
            #expect(try await api.call("GET", "/v1/sources/\(source.id)", token: other.key).status == 404)
            #expect(try await api.call("GET", "/v1/inbound", token: other.key).items.isEmpty)
        }
    }

    @Test func eachProvidersSignatureVerifiesAndAForgedOneIsRejectedAndKept() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let body = Array(#"{"id": "evt_1", "type": "invoice.paid", "data": {"object": {"amount": 1200}}}"#.utf8)
            for method in ["github", "stripe", "shopify", "standard-webhooks"] {
                let source = try await source(api, tenant.key, ["verification": ["method": method]])
                let headers = try await Self.signed(method, secret: source.secret, body: body)
                let good = try await api.send(source.path, headers: Self.json + headers, body: body)
                #expect(good.status == 200, "\(method): \(good.object)")
                #expect(good.string("status") == "received", "\(method)")
                // The same signature over another body.
                var tampered = body
                tampered[tampered.count - 3] = UInt8(ascii: "9")
                let forged = try await api.send(source.path, headers: Self.json + headers, body: tampered)
                #expect(forged.status == 401, "\(method)")
                let page = try await api.call("GET", "/v1/inbound?status=rejected&source_id=\(source.id)", token: tenant.key)
                #expect(page.items.count == 1, "\(method)")
                let rejected = try await inbound(api, tenant.key, try #require(page.items.first?["id"] as? String))
                #expect((rejected["error"] as? String)?.hasPrefix("verification failed:") == true, "\(method)")
                #expect(rejected["body"] as? String == String(decoding: tampered, as: UTF8.self), "\(method)")
            }
            // A shared token in a header and in the query (which is not kept).
            let header = try await source(api, tenant.key, ["verification": ["method": "token", "header": "X-Token"]])
            #expect(try await api.send(header.path, headers: Self.json + [("X-Token", header.secret)], body: body).status == 200)
            #expect(try await api.send(header.path, headers: Self.json + [("X-Token", "guess")], body: body).status == 401)
            let query = try await source(api, tenant.key, ["verification": ["method": "token", "query": "key"]])
            let accepted = try await api.send(query.path + "?key=\(query.secret)&page=2", headers: Self.json, body: body)
            #expect(accepted.status == 200)
            #expect(try await inbound(api, tenant.key, try #require(accepted.string("id")))["query"] as? String == "page=2")
            // Generic HMAC over "{timestamp}.{body}", base64.
            let hmac = try await source(
                api, tenant.key,
                ["verification": ["method": "hmac", "header": "X-Sig", "encoding": "base64", "signed": "timestamp.body", "timestamp_header": "X-Time"]])
            let stamp = String(Int(Date().timeIntervalSince1970))
            let signature = Base64.encode(SHA256.hmac(key: Array(hmac.secret.utf8), message: Array("\(stamp).".utf8) + body))
            #expect(try await api.send(hmac.path, headers: Self.json + [("X-Sig", signature), ("X-Time", stamp)], body: body).status == 200)
            #expect(try await api.send(hmac.path, headers: Self.json + [("X-Sig", signature), ("X-Time", "1")], body: body).status == 401)
        }
    }

    /// What `Tests/Inbound/sign.py` computes with the provider's documented algorithm.
    static func signed(_ method: String, secret: String, body: [UInt8]) async throws -> [(String, String)] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("body"))
        try Data(body).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".services/venv/bin/python")
        process.arguments = [TestServices.repositoryRoot.appendingPathComponent("Tests/Inbound/sign.py").path, method, secret, file.path]
        let (status, output) = try await process.runToCompletion()
        #expect(status == 0, "\(output)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: String])
        return object.map { ($0.key, $0.value) }
    }

    @Test func aRepeatedDeliveryIdIsAcknowledgedAsADuplicateAndMakesOneEvent() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let receiver = try await TestHTTPServer.start()
            _ = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/hook", types: ["push.received"])
            let source = try await source(api, tenant.key, ["verification": ["method": "github"], "mapping": ["event_type": "push.received"]])
            let body = Array(#"{"ref": "refs/heads/main"}"#.utf8)
            let headers = try await Self.signed("github", secret: source.secret, body: body)
            let first = try await api.send(source.path, headers: Self.json + headers, body: body)
            let again = try await api.send(source.path, headers: Self.json + headers, body: body)
            #expect(first.string("status") == "processed")
            #expect(again.status == 200)
            #expect(again.string("status") == "duplicate")
            #expect(again.string("duplicate_of") == first.string("id"))
            _ = try await receiver.waitForRequests(1)
            let events = try await api.pipeline.pool.query("SELECT count(*) FROM outbox WHERE attributes->>'inbound_source' = \(source.id)")
            #expect(try events[0].decode(Int.self, 0) == 1)
            // A concurrent burst of the same delivery: one is processed, the rest are duplicates.
            let burstHeaders = try await Self.signed("github", secret: source.secret, body: body)
            let answers = try await withThrowingTaskGroup(of: (status: String?, id: String?, duplicateOf: String?)?.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let answer = try await api.send(source.path, headers: Self.json + burstHeaders, body: body)
                        return (answer.string("status"), answer.string("id"), answer.string("duplicate_of"))
                    }
                }
                return try await group.reduce(into: [(status: String?, id: String?, duplicateOf: String?)?]()) { $0.append($1) }
            }
            #expect(answers.filter { $0?.status == "processed" }.count == 1)
            #expect(answers.filter { $0?.status == "duplicate" }.count == 7)
            // Each duplicate names the one processed, and one event was made for the burst.
            let processed = answers.first { $0?.status == "processed" }??.id
            #expect(answers.filter { $0?.status == "duplicate" }.allSatisfy { $0?.duplicateOf == processed })
            let outbox = try await api.pipeline.pool.query("SELECT count(*) FROM outbox WHERE attributes->>'inbound_source' = \(source.id)")
            #expect(try outbox[0].decode(Int.self, 0) == 2)
            // Neither a duplicate nor a processed webhook is replayed: no second event.
            let duplicate = try #require(answers.first { $0?.status == "duplicate" }??.id)
            #expect(try await api.call("POST", "/v1/inbound/\(duplicate)/replay", token: tenant.key).status == 409)
            #expect(try await api.call("POST", "/v1/inbound/\(try #require(processed))/replay", token: tenant.key).status == 409)
        }
    }

    /// Requests that arrive together are stored by one statement per round: a repeated
    /// delivery id waits for the next round and finds the first's claim, a rejected request
    /// claims nothing, a request the database refuses fails alone, every row gets its own
    /// columns, and the events reach the outbox in the order their webhooks came.
    @Test func aBatchIsStoredInRoundsAndABadRequestFailsAlone() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let source = try await source(api, tenant.key, ["verification": ["method": "none"]])
            let sourceID = try #require(UUID(uuidString: source.id)), tenantID = try #require(UUID(uuidString: tenant.id))
            var made = 0
            func arrival(_ key: String?, status: InboundStatus = .processed, claims: Bool = true, header: String = "ok", body: Bool = true)
                -> InboundStore.Arrival
            {
                made += 1
                let processed = status == .processed
                let text = Array(#"{"n": \#(made)}"#.utf8)
                return InboundStore.Arrival(
                    id: UUID(), sourceID: sourceID, tenantID: tenantID, dedupWindow: 60, claimKey: claims ? key : nil, status: status.rawValue,
                    error: status == .rejected ? "signature \(made)" : nil, errorField: status == .parseError ? "$.n" : nil,
                    responseStatus: status == .rejected ? 401 : 200, remoteAddress: "10.0.0.\(made)", contentType: "application/json",
                    headers: Array(#"[["X-N","\#(made)"],["X-H","\#(header)"]]"#.utf8), query: "n=\(made)", body: body ? text : nil,
                    bodySize: text.count, dedupKey: key, eventID: processed ? "evt_\(made)_\(UUID().uuidString)" : nil,
                    eventType: processed ? "thing.\(made)" : nil, data: processed ? text : nil)
            }
            // PostgreSQL refuses `\u0000` in a jsonb document: the statement fails on the server.
            let batch = [
                arrival("k1"), arrival("k1"), arrival("k2"), arrival("k1"), arrival("k3", header: "\\u0000"),
                arrival(nil, status: .received, body: false), arrival("k2", status: .rejected, claims: false), arrival("k3"),
                arrival("k4", status: .parseError), arrival(nil),
            ]
            #expect(InboundStore.rounds(batch) == [[0, 2, 4, 5, 6, 8, 9], [1, 7], [3]])
            // A batch that goes through whole, in one statement: every column its own row's.
            let clean = [batch[0], batch[2], batch[5], batch[6], batch[8], batch[9]]
            let statuses: [InboundStatus] = [.processed, .processed, .received, .rejected, .parseError, .processed]
            #expect(try await InboundStore.insert(clean, on: api.pipeline.pool).map(\.status) == statuses)
            let rows = try await api.pipeline.pool.query(
                """
                SELECT id, status, dedup_key, body, error, error_field, remote_address, headers::text, query, event_id, event_type,
                       processed_at IS NOT NULL, body_size
                FROM inbound_webhooks WHERE source_id = \(sourceID)
                """)
            #expect(rows.count == clean.count)
            for row in rows {
                let index = try #require(clean.firstIndex { $0.id == (try? row.decode(UUID.self, 0)) })
                let arrival = clean[index]
                #expect(try row.decode(String.self, 1) == statuses[index].rawValue)
                #expect(try row.decode(String?.self, 2) == arrival.dedupKey)
                #expect(try row.decode(Bytea?.self, 3)?.bytes == arrival.body)
                #expect(try row.decode(String?.self, 4) == arrival.error && row.decode(String?.self, 5) == arrival.errorField)
                #expect(try row.decode(String.self, 6) == arrival.remoteAddress && row.decode(String.self, 8) == arrival.query)
                #expect(try row.decode(String.self, 7).contains(arrival.remoteAddress.split(separator: ".").last.map { "\"X-N\", \"\($0)\"" } ?? "-"))
                #expect(try row.decode(String?.self, 9) == arrival.eventID && row.decode(String?.self, 10) == arrival.eventType)
                #expect(try row.decode(Bool.self, 11) == [.processed, .parseError].contains(statuses[index]))
                #expect(try row.decode(Int.self, 12) == arrival.bodySize)
            }
            let queued = try await api.pipeline.pool.query(
                "SELECT event_id, type, data::text, attributes->>'inbound_source' FROM outbox WHERE tenant_id = \(tenantID) ORDER BY id")
            let events = [batch[0], batch[2], batch[9]]
            #expect(try queued.map { try $0.decode(String.self, 0) } == events.compactMap(\.eventID))
            #expect(try queued.map { try $0.decode(String.self, 1) } == events.compactMap(\.eventType))
            #expect(try queued.map { try $0.decode(String.self, 2) } == events.compactMap { $0.data.map { String(decoding: $0, as: UTF8.self) } })
            #expect(try queued.allSatisfy { try $0.decode(String.self, 3) == source.id })

            // The whole batch again under new ids: repeats wait for their round, the refused one fails alone.
            let again = batch.map { arrival in
                var copy = arrival
                copy.id = UUID()
                copy.eventID = arrival.eventID.map { $0 + "_again" }
                return copy
            }
            let results = await InboundStore.write(again, on: api.pipeline.pool)
            let receipts = results.map { try? $0.get() }
            // k1 and k2 were claimed by the clean batch, k3 by its second request, k4 by a parse error.
            #expect(receipts.map(\.?.status) == [.duplicate, .duplicate, .duplicate, .duplicate, nil, .received, .rejected, .processed, .duplicate, .processed])
            #expect(receipts[0]?.duplicateOf == batch[0].id && receipts[2]?.duplicateOf == batch[2].id && receipts[8]?.duplicateOf == batch[8].id)
            #expect(receipts[1]?.duplicateOf == batch[0].id && receipts[3]?.duplicateOf == batch[0].id)
            #expect(receipts.compactMap { $0?.eventID } == [again[7].eventID, again[9].eventID].compactMap { $0 })
            // The refused request names the server's reason; the rest of its round was written without it.
            #expect(throws: DatabaseError.self) { try results[4].get() }
            let claims = try await api.pipeline.pool.query("SELECT key, webhook_id FROM inbound_dedup WHERE source_id = \(sourceID) ORDER BY key")
            #expect(try claims.map { try $0.decode(String.self, 0) } == ["k1", "k2", "k3", "k4"])
            #expect(try claims.map { try $0.decode(UUID.self, 1) } == [batch[0].id, batch[2].id, again[7].id, batch[8].id])
            let stored = try await api.pipeline.pool.query("SELECT count(*) FROM inbound_webhooks WHERE source_id = \(sourceID)")
            #expect(try stored[0].decode(Int.self, 0) == clean.count + again.count - 1)
            let outbox = try await api.pipeline.pool.query("SELECT event_id FROM outbox WHERE tenant_id = \(tenantID) ORDER BY id")
            #expect(try outbox.map { try $0.decode(String.self, 0) } == (events + [again[9], again[7]]).compactMap(\.eventID))
        }
    }

    @Test func hostileInputGetsAClearStatusAndNothingAcceptedIsLost() async throws {
        try await APIHarness.run(inbound: .init(bodyTimeout: .seconds(1), rejectionsKeptPerSecond: 5)) { api in
            let tenant = try await api.tenant()
            let open = try await source(api, tenant.key, ["verification": ["method": "none"], "max_body_bytes": 65536])
            let invalid = try await api.send(open.path, headers: Self.json, body: Array("{\"a\": ".utf8))
            #expect(invalid.status == 400)
            #expect((invalid.string("detail"))?.contains("invalid JSON at byte 6") == true)
            let utf8 = try await api.send(open.path, headers: Self.json, body: [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D])
            #expect(utf8.status == 400)
            let deep = try await api.send(open.path, headers: Self.json, body: Array(repeating: UInt8(ascii: "["), count: 10_000) + Array(repeating: UInt8(ascii: "]"), count: 10_000))
            #expect(deep.status == 400)
            #expect(deep.string("detail")?.contains("nested more than 64 levels deep") == true)
            let xml = try await api.send(open.path, headers: [("Content-Type", "text/xml")], body: Array("<a/>".utf8))
            #expect(xml.status == 415)
            // 50 MB: refused from its length, nothing of it kept.
            let large = try await api.send(open.path, headers: Self.json, body: [UInt8](repeating: UInt8(ascii: " "), count: 50 * 1024 * 1024))
            #expect(large.status == 413)
            let rejected = try await api.call("GET", "/v1/inbound?status=rejected", token: tenant.key).items
            let tooLarge = try #require(rejected.first { ($0["response_status"] as? Int) == 413 })
            #expect(tooLarge["body_size"] as? Int == 50 * 1024 * 1024)
            #expect(try await inbound(api, tenant.key, try #require(tooLarge["id"] as? String))["body"] == nil)
            // 2 MB without a length (chunked): reading stops past the limit; refused the same way.
            let chunked = try await Self.chunked(port: api.port, path: open.path, chunks: 256, size: 8192)
            #expect(chunked.hasPrefix("HTTP/1.1 413"), "\(chunked.prefix(200))")
            // An unknown URL.
            #expect(try await api.send("/in/hin_unknown", headers: Self.json, body: Array("{}".utf8)).status == 404)

            // A sender trickling its body is cut off after the time limit.
            let trickled = try await Self.trickle(port: api.port, path: open.path)
            #expect(trickled.hasPrefix("HTTP/1.1 408"), "\(trickled.prefix(200))")

            // A flood of forged requests: each answered 401; a sample is kept; accepted ones still are.
            let guarded = try await source(api, tenant.key, ["verification": ["method": "token", "header": "X-Token"]])
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0..<200 {
                    group.addTask { try await api.send(guarded.path, headers: Self.json + [("X-Token", "guess\(n)")], body: Array("{}".utf8)).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 401 })
            let kept = try await api.call("GET", "/v1/inbound?status=rejected&source_id=\(guarded.id)&limit=200", token: tenant.key).items.count
            #expect(kept >= 1 && kept < 200)
            let accepted = try await api.send(guarded.path, headers: Self.json + [("X-Token", guarded.secret)], body: Array(#"{"ok": true}"#.utf8))
            #expect(accepted.string("status") == "received")
            #expect(try await inbound(api, tenant.key, try #require(accepted.string("id")))["body"] as? String == #"{"ok": true}"#)
        }
    }

    /// Sends a request whose body never completes: its headers announce 100 bytes, then
    /// one byte every 200 ms. Returns what the server answered.
    static func trickle(port: Int, path: String) async throws -> String {
        let socket = try RawSocket(port: port)
        defer { socket.close() }
        try socket.send("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let answer = try await socket.read(within: .milliseconds(200)) { return answer }
            try? socket.send(" ")
        }
        return ""
    }

    /// Sends `chunks` chunks of `size` bytes with chunked transfer encoding (no length
    /// announced); returns what the server answered.
    static func chunked(port: Int, path: String, chunks: Int, size: Int) async throws -> String {
        let socket = try RawSocket(port: port)
        defer { socket.close() }
        try socket.send("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = String(format: "%x", size) + "\r\n" + String(repeating: " ", count: size) + "\r\n"
        for _ in 0..<chunks {
            // The server may answer and close before the last chunk: that is the point.
            guard (try? socket.send(chunk)) != nil else { break }
            if let answer = try await socket.read(within: .milliseconds(1)), !answer.isEmpty { return answer }
        }
        try? socket.send("0\r\n\r\n")
        return try await socket.read(within: .seconds(10)) ?? ""
    }

    @Test func aRotatedURLWorksDuringItsGraceThenAnswers404() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let source = try await source(api, tenant.key, ["verification": ["method": "none"]])
            let graceful = try await api.call("POST", "/v1/sources/\(source.id)/rotate-url", token: tenant.key, body: ["grace_seconds": 3600])
            let newURL = try #require(graceful.string("url"))
            let newPath = String(newURL[try #require(newURL.range(of: "/in/")).lowerBound...])
            #expect(newPath != source.path)
            #expect(graceful.string("previous_url_expires_at") != nil)
            #expect(try await api.send(source.path, headers: Self.json, body: Array("{}".utf8)).status == 200)
            #expect(try await api.send(newPath, headers: Self.json, body: Array("{}".utf8)).status == 200)
            let immediate = try await api.call("POST", "/v1/sources/\(source.id)/rotate-url", token: tenant.key, body: ["grace_seconds": 0])
            let latest = try #require(immediate.string("url"))
            #expect(try await api.send(newPath, headers: Self.json, body: Array("{}".utf8)).status == 404)
            #expect(try await api.send(String(latest[try #require(latest.range(of: "/in/")).lowerBound...]), headers: Self.json, body: Array("{}".utf8)).status == 200)
        }
    }

    /// A source is kept once looked up, and whoever changes it (the API, or SQL behind its
    /// back) the next requests see the change: the API's own changes at once, others once
    /// PostgreSQL's notification arrives.
    @Test func aKeptSourceChangedByAnyoneIsSeenByTheNextRequests() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let source = try await source(api, tenant.key, ["verification": ["method": "none"]])
            let small = Array("{}".utf8), large = Array(#"{"a": "0123456789"}"#.utf8)
            // Sends to `path` (each answered 200) until the API keeps the source.
            func kept(_ path: String, _ body: [UInt8], _ what: String, within limit: Duration) async throws {
                try await api.pipeline.eventually(timeout: limit, what) {
                    let status = try await api.send(path, headers: Self.json, body: body).status
                    #expect(status == 200)
                    return api.sources.count == 1
                }
            }
            // Kept once the listener's lease holds: requests then no longer look the source up.
            try await kept(source.path, large, "the source is kept", within: .seconds(20))
            // Kept means not looked up: a change that nobody announces (made as a replica applies
            // changes, without triggers) goes unseen.
            let id = try #require(UUID(uuidString: source.id))
            try await unannounced("UPDATE inbound_sources SET max_body_bytes = 10 WHERE id = \(id)", api)
            for _ in 0..<3 { #expect(try await api.send(source.path, headers: Self.json, body: large).status == 200) }
            // Announced, as every change is: the notification drops the source and the limit applies.
            try await api.pipeline.pool.query("UPDATE inbound_sources SET max_body_bytes = 11 WHERE id = \(id)")
            try await api.pipeline.eventually(timeout: .seconds(10), "the smaller limit applies") {
                try await api.send(source.path, headers: Self.json, body: large).status == 413
            }
            #expect(try await api.send(source.path, headers: Self.json, body: small).status == 200)
            // Through the API: a rotation without grace ends the old URL for the very next request.
            try await kept(source.path, small, "the source is kept again", within: .seconds(10))
            let rotated = try await api.call("POST", "/v1/sources/\(source.id)/rotate-url", token: tenant.key, body: ["grace_seconds": 0])
            #expect(try await api.send(source.path, headers: Self.json, body: small).status == 404)
            let url = try #require(rotated.string("url"))
            let path = String(url[try #require(url.range(of: "/in/")).lowerBound...])
            try await kept(path, small, "the new URL is kept", within: .seconds(10))
            // A token in its grace is looked up each time, never kept: its end needs no notification.
            let graceful = try await api.call("POST", "/v1/sources/\(source.id)/rotate-url", token: tenant.key, body: ["grace_seconds": 3600])
            let newest = try #require(graceful.string("url"))
            let newestPath = String(newest[try #require(newest.range(of: "/in/")).lowerBound...])
            try await kept(newestPath, small, "the newest URL is kept", within: .seconds(10))
            for _ in 0..<3 { #expect(try await api.send(path, headers: Self.json, body: small).status == 200) }
            try await unannounced("UPDATE inbound_sources SET previous_token_expires_at = now() WHERE id = \(id)", api)
            #expect(try await api.send(path, headers: Self.json, body: small).status == 404)
            #expect(try await api.send(newestPath, headers: Self.json, body: small).status == 200)
            // Deleted behind the API's back (its tenant gone): the URL answers 404.
            try await api.pipeline.pool.query("DELETE FROM tenants WHERE id = \(UUID(uuidString: tenant.id)!)")
            try await api.pipeline.eventually(timeout: .seconds(10), "the deleted source's URL answers 404") {
                try await api.send(newestPath, headers: Self.json, body: small).status == 404
            }
            #expect(api.sources.count == 0)
        }
    }

    /// A statement that loses its connection may or may not have committed. Written again,
    /// a request stored by it finds its own row and is answered with it; one that was not
    /// stored is stored now. Nothing kept is answered 500, nothing is stored twice.
    @Test func requestsWhoseStatementLostItsConnectionAreAnsweredWithWhatWasStored() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let source = try await source(api, tenant.key, ["verification": ["method": "none"]])
            let sourceID = try #require(UUID(uuidString: source.id)), tenantID = try #require(UUID(uuidString: tenant.id))
            func arrival() -> InboundStore.Arrival {
                InboundStore.Arrival(
                    id: UUID(), sourceID: sourceID, tenantID: tenantID, dedupWindow: 60, claimKey: nil, status: InboundStatus.processed.rawValue,
                    error: nil, errorField: nil, responseStatus: 200, remoteAddress: "127.0.0.1", contentType: "application/json",
                    headers: Array("[]".utf8), query: "", body: Array("{}".utf8), bodySize: 2, dedupKey: nil,
                    eventID: "evt_\(UUID().uuidString)", eventType: "thing.happened", data: Array("{}".utf8))
            }
            let pool = api.pipeline.pool
            func count(_ arrivals: [InboundStore.Arrival]) async throws -> (webhooks: Int, events: Int) {
                let rows = try await pool.query(
                    """
                    SELECT (SELECT count(*) FROM inbound_webhooks WHERE id = ANY(\(arrivals.map(\.id.uuidString))::uuid[])),
                           (SELECT count(*) FROM outbox WHERE event_id = ANY(\(arrivals.compactMap(\.eventID))::text[]))
                    """)
                return (try rows[0].decode(Int.self, 0), try rows[0].decode(Int.self, 1))
            }
            // Committed, the answer lost: written again with a new request, both are answered
            // with their rows, the first as it was stored.
            let stored = arrival(), fresh = arrival()
            _ = try await InboundStore.insert([stored], on: pool)
            let again = await InboundStore.write([stored, fresh], on: pool).map { try? $0.get() }
            #expect(again.map(\.?.status) == [.processed, .processed])
            #expect(again.map(\.?.eventID) == [stored.eventID, fresh.eventID])
            #expect(try await count([stored, fresh]) == (2, 2))
            // Not committed: the session ended while the statement waited for a lock (the
            // source's row, which the webhooks' foreign key reads); written again, alone too.
            for arrivals in [[arrival(), arrival()], [arrival()]] {
                let results = try await pool.transaction { tx in
                    try await tx.query("SELECT 1 FROM inbound_sources WHERE id = \(sourceID) FOR UPDATE")
                    let writing = Task { await InboundStore.write(arrivals, on: pool) }
                    try await api.pipeline.eventually(timeout: .seconds(10), "the batch waits for the source's row") {
                        let ended = try await pool.query(
                            """
                            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH input AS%'
                            """)
                        return !ended.isEmpty
                    }
                    return writing
                }.value
                #expect(results.map { (try? $0.get())?.status } == arrivals.map { _ in .processed })
                #expect(try await count(arrivals) == (arrivals.count, arrivals.count))
            }
        }
    }

    /// A change no trigger announces: as a replica applies changes (`session_replication_role`).
    func unannounced(_ statement: Query, _ api: APIHarness) async throws {
        try await api.pipeline.pool.transaction { tx in
            try await tx.query("SET LOCAL session_replication_role = replica")
            try await tx.query(statement)
        }
    }

    /// The API's own changes drop a kept source at once, with no notification to wait for
    /// (here no listener runs at all: the lease is granted by hand).
    @Test func theAPIsOwnChangesDropAKeptSourceAtOnce() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let tenantID = try #require(UUID(uuidString: tenant.id))
            let cache = SourceCache()
            cache.trustNotifications(until: .now + .seconds(3600))
            let store = InboundStore(pool: api.pipeline.pool, keyring: .plaintext, publicURL: "http://x", maxDataBytes: 1024, sources: cache)
            func kept(_ body: [String: Any]) async throws -> (id: UUID, token: String) {
                let source = try await source(api, tenant.key, body)
                let token = String(source.path.dropFirst("/in/".count))
                #expect(try await store.intake(token: token)?.source.maxBodyBytes == 1_048_576)
                #expect(try await store.intake(token: token) != nil)
                #expect(cache.cached(InboundStore.hash(token).bytes) != nil)
                return (try #require(UUID(uuidString: source.id)), token)
            }
            let none: [String: Any] = ["verification": ["method": "none"]]
            let updated = try await kept(none)
            _ = try await store.updateSource(tenant: tenantID, id: updated.id, try SourceInput(object: ["max_body_bytes": 2048], creating: false))
            #expect(cache.cached(InboundStore.hash(updated.token).bytes) == nil)
            #expect(try await store.intake(token: updated.token)?.source.maxBodyBytes == 2048)
            let rotated = try await kept(none)
            _ = try await store.rotateToken(tenant: tenantID, id: rotated.id, grace: .zero)
            #expect(cache.cached(InboundStore.hash(rotated.token).bytes) == nil)
            #expect(try await store.intake(token: rotated.token) == nil)
            let deleted = try await kept(none)
            try await store.deleteSource(tenant: tenantID, id: deleted.id)
            #expect(cache.cached(InboundStore.hash(deleted.token).bytes) == nil)
            #expect(try await store.intake(token: deleted.token) == nil)
            // The kept entry names the source, never its secret.
            let signed = try await source(api, tenant.key, ["verification": ["method": "github"]])
            let found = try #require(try await store.intake(token: String(signed.path.dropFirst("/in/".count))))
            #expect(!"\(SourceCache.Found(source: found.source, secret: found.secret))".contains(signed.secret))
        }
    }

    @Test func retentionDeletesByStatusWithASourcesOwnAge() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let short = try await source(api, tenant.key, ["verification": ["method": "none"], "retention_days": ["received": 2]])
            let normal = try await source(api, tenant.key, ["verification": ["method": "token", "header": "X-Token"]])
            for path in [short.path, normal.path] {
                _ = try await api.send(path, headers: Self.json + [("X-Token", normal.secret)], body: Array("{}".utf8))
                _ = try await api.send(path, headers: Self.json + [("X-Token", "forged")], body: Array("{}".utf8))
            }
            let pool = api.pipeline.pool
            let sources = [short.id, normal.id]
            try await pool.query("UPDATE inbound_webhooks SET received_at = now() - interval '5 days' WHERE source_id::text = ANY(\(sources))")
            // The deployment keeps received for 90 days and rejected for 3.
            let deleted = try await InboundStore.deleteExpired(on: pool, defaults: [.received: 90, .rejected: 3, .processed: 90])
            #expect(deleted >= 2)
            let left = try await pool.query(
                "SELECT source_id::text, status FROM inbound_webhooks WHERE source_id::text = ANY(\(sources)) ORDER BY source_id, status"
            ).map { "\(try $0.decode(String.self, 0) == short.id ? "short" : "normal") \(try $0.decode(String.self, 1))" }
            // short: its received is past its own 2 days, its rejected past 3; normal keeps its received.
            #expect(left == ["normal received"])
        }
    }

    @Test func aSenderAcknowledgedWhileNoWorkerRunsIsDeliveredWhenOneStarts() async throws {
        var options = Pipeline.Options()
        options.startWorker = false
        try await APIHarness.run(options) { api in
            let tenant = try await api.tenant()
            let receiver = try await TestHTTPServer.start()
            _ = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/hook", types: ["contact.created"])
            let source = try await source(api, tenant.key, ["verification": ["method": "none"], "mapping": Self.entities])
            let answer = try await api.send(source.path, headers: Self.json, body: Array(Self.creatio.utf8))
            #expect(answer.string("status") == "processed")
            // Published (the outbox row is sent) while no worker consumes.
            try await api.pipeline.eventually("the outbox row is published") {
                try await api.pipeline.pool.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND attributes->>'inbound_source' = \(source.id)")[0]
                    .decode(Int.self, 0) == 0
            }
            #expect(receiver.requests.isEmpty)
            let worker = api.pipeline.startWorker()
            defer { worker.cancel() }
            let delivered = try await receiver.waitForRequests(1)[0]
            #expect(delivered.body == Array(Self.creatio.utf8))
        }
    }

    @Test func theCLIManagesSourcesAndReadsTheInboundLog() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let (status, created) = try await api.cli(
                ["sources", "create", "Creatio forms", "--service", "Creatio", "--verify", "token", "--verify-option", "header=X-Token",
                 "--event-type-path", "$.EntityName", "--event-map", "Contact=contact.created", "--retention", "rejected=7"], key: tenant.key)
            #expect(status == 0, "\(created)")
            let source = APIHarness.object(created)
            let id = try #require(source["id"] as? String)
            let secret = try #require(source["secret"] as? String)
            #expect(source["retention_days"] as? [String: Int] == ["rejected": 7])
            let url = try #require(source["url"] as? String)
            let path = String(url[try #require(url.range(of: "/in/")).lowerBound...])
            let order = try await api.send(path, headers: Self.json + [("X-Token", secret)], body: Array(#"{"EntityName": "Order"}"#.utf8))
            #expect(order.string("status") == "parse_error")
            let (listStatus, list) = try await api.cli(["inbound", "list", "--source", id, "--status", "parse_error"], key: tenant.key)
            #expect(listStatus == 0)
            #expect((APIHarness.object(list)["items"] as? [[String: Any]])?.count == 1)
            let (showStatus, shown) = try await api.cli(["inbound", "show", try #require(order.string("id"))], key: tenant.key)
            #expect(showStatus == 0)
            #expect(APIHarness.object(shown)["error_field"] as? String == "$.EntityName")
            // Store only from now on: the replay keeps it, with no event and no error.
            #expect(try await api.cli(["sources", "update", id, "--no-mapping"], key: tenant.key).0 == 0)
            let (replayStatus, replayed) = try await api.cli(["inbound", "replay", try #require(order.string("id"))], key: tenant.key)
            #expect(replayStatus == 0, "\(replayed)")
            #expect(APIHarness.object(replayed)["status"] as? String == "received")
            // Usage errors are refused before any request.
            #expect(try await api.cli(["sources", "update", id, "--no-mapping", "--event-type", "a.b"], key: tenant.key).0 == 64)
            #expect(try await api.cli(["sources", "create", "x", "--verify", "md5"], key: tenant.key).0 == 1)
            #expect(try await api.cli(["sources", "delete", id], key: tenant.key).0 == 0)
            #expect(try await api.send(path, headers: Self.json + [("X-Token", secret)], body: Array("{}".utf8)).status == 404)
        }
    }

    @Test func tokensAndSecretsAreSealedAtRestAndResealedAfterAKeyRotation() async throws {
        let first = try SecretsTests.key()
        var options = Pipeline.Options()
        options.secretKeyring = SecretKeyring(currentKey: first, retiredKeys: [])
        try await APIHarness.run(options) { api in
            let tenant = try await api.tenant()
            let source = try await source(api, tenant.key, ["verification": ["method": "token", "header": "X-Token"]])
            let token = String(source.path.dropFirst("/in/".count))
            let row = try await api.pipeline.pool.query("SELECT token, secret FROM inbound_sources WHERE id::text = \(source.id)")[0]
            for (stored, plain) in [(try row.decode(String.self, 0), token), (try row.decode(String.self, 1), source.secret)] {
                #expect(stored.hasPrefix("aes256gcm:\(first.id):") && !stored.contains(plain))
            }
            #expect(try await api.send(source.path, headers: Self.json + [("X-Token", source.secret)], body: Array("{}".utf8)).status == 200)
            // A new key, the first retired: rekey seals the source again; then the first key can go.
            let second = try SecretsTests.key()
            let rotating = InboundStore(
                pool: api.pipeline.pool, keyring: SecretKeyring(currentKey: second, retiredKeys: [first]), publicURL: "http://x", maxDataBytes: 1024)
            #expect(try await rotating.resealSecrets() == 1)
            #expect(try await rotating.resealSecrets() == 0)
            let onlySecond = InboundStore(pool: api.pipeline.pool, keyring: SecretKeyring(currentKey: second, retiredKeys: []), publicURL: "http://x", maxDataBytes: 1024)
            let found = try #require(try await onlySecond.intake(token: token))
            #expect(found.secret == source.secret)
            #expect(try await onlySecond.sources(tenant: try #require(UUID(uuidString: tenant.id))).first?.url == "http://x/in/\(token)")
        }
    }
}
