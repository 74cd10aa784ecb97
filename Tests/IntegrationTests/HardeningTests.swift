import HeraldAMQP
import Cryptography
import HeraldEvents
import API
import Foundation
import Glibc
import HTTPClient
import Postgres
import Testing
import TestSupport
import Topology
import Delivery
import HeraldSupport

/// Regressions of what an attack on the running system broke (the hardening issue): each
/// failed before its fix.
@Suite("Hardening (real servers)")
struct HardeningTests {
    /// Item 1: the base64 of `9223372036854775807:<uuid>` trapped in the timestamp writer
    /// and took the whole API process down.
    @Test func aForgedCursorIsABadRequestAndTheAPIStaysUp() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let id = UUID().uuidString.lowercased()
            for micros in ["9223372036854775807", "-9223372036854775808", "253402300800000000", "-62135596801000000"] {
                let token = Base64.encode(Array("\(micros):\(id)".utf8))
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
                let answer = try await api.call("GET", "/v1/deliveries?cursor=\(token)", token: tenant.key)
                #expect(answer.status == 400, "cursor \(micros) answered \(answer.status)")
                #expect(answer.string("field") == "cursor")
            }
            // The first page for an empty cursor, as the schema allows.
            #expect(try await api.call("GET", "/v1/deliveries?cursor=", token: tenant.key).status == 200)
            #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key).status == 200)
        }
    }

    /// Item 5: every `/readyz` opened a broker connection and its thread (300 probes took
    /// the API from 14 to 110 threads). It now reports the connections the process has:
    /// `herald api` as a child process, its threads counted while 300 probes run.
    @Test func readinessProbesOpenNoConnections() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let api = try APIProcess(
                pipeline,
                environment: [
                    "HERALD_API_RATE_LIMIT": "0", "HERALD_RETRY_LADDER": pipeline.topology.ladder.description, "HERALD_DATABASE_POOL_SIZE": "4",
                ])
            defer { api.stop() }
            let port = api.port
            let process = api.process
            let client = Client()
            func probe() async -> Int {
                (try? await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(port)/readyz", method: "GET")).status) ?? 0
            }
            try await pipeline.eventually("the API reports ready") { await probe() == 200 }
            // Threads other than Dispatch's own workers, which it adds and parks under any load,
            // and the database pool's, which grows lazily to its bound whenever the API's own
            // jobs (relay, housekeeping) happen to run together: the broker's are what leaked.
            let folder = "/proc/\(process.processIdentifier)/task"
            let names = {
                ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).map { task in
                    (try? String(contentsOfFile: "\(folder)/\(task)/comm", encoding: .utf8)) ?? ""
                }
            }
            let threads = { names().filter { !$0.contains("qos") && !$0.hasPrefix("postgres") }.count }
            // A first round, as concurrent as the measured one, fills what the process
            // grows lazily up to a bound (its database pool).
            func round() async -> Set<Int> {
                await withTaskGroup(of: Set<Int>.self) { group in
                    for _ in 0..<12 {
                        group.addTask {
                            var statuses: Set<Int> = []
                            for _ in 0..<25 { statuses.insert(await probe()) }
                            return statuses
                        }
                    }
                    return await group.reduce(into: Set<Int>()) { $0.formUnion($1) }
                }
            }
            _ = await round()
            let before = threads()
            async let sampled: Int = {
                var most = before
                for _ in 0..<200 {
                    most = max(most, threads())
                    try? await Task.sleep(for: .milliseconds(5))
                }
                return most
            }()
            let answered = await round()
            let most = await sampled
            await client.shutdown()
            #expect(answered == [200])
            #expect(most - before < 3, "threads rose from \(before) to \(most) under 300 probes")
            // The database sessions' threads stay within the pool (and the one session that
            // hears of inbound source changes), however many probes ask.
            #expect(names().filter { $0.hasPrefix("postgres") }.count <= 4 + 1)
        }
    }

    /// Item 4: dates a lenient parser rolled over, and instants before year 1, were
    /// accepted (or reached PostgreSQL as year 0); NUL bytes and `null` reached the
    /// database. Each is refused naming its field, and nothing is created.
    @Test func badInputIsRefusedNamingTheFieldBeforeAnythingIsAccepted() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let cases: [(String, String, Any, String)] = [
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "occurred_at": "2026-02-30T00:00:00Z"], "occurred_at"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "occurred_at": "2026-05-12T12:99:00Z"], "occurred_at"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "occurred_at": "0001-01-01T00:00:00+01:00"], "occurred_at"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "id": String(repeating: "\u{1F4F7}", count: 100)], "id"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "attributes": ["w": "a\u{0}b"]], "attributes.w"),
                ("POST", "/v1/events", ["type": "a.b", "data": [:] as [String: Any], "id": NSNull()], "id"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "description": "a\u{0}b"], "description"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["a\u{0}.b"]], "event_types"),
                ("POST", "/v1/endpoints", ["url": "https://example.com", "event_types": ["*"], "description": NSNull()], "description"),
                ("POST", "/v1/endpoints/\(UUID().uuidString)/recover", ["since": "0000-12-31T00:00:00Z"], "since"),
                ("POST", "/v1/tenants", ["name": String(repeating: "e\u{301}", count: 150)], "name"),
            ]
            for (method, path, body, field) in cases {
                let token = path == "/v1/tenants" ? APIHarness.operatorToken : tenant.key
                let answer = try await api.call(method, path, token: token, body: body)
                #expect((400...422).contains(answer.status), "\(path) \(field) answered \(answer.status)")
                #expect(answer.contentType == "application/problem+json")
                #expect(answer.string("field") == field, "\(path) named \(answer.string("field") ?? "no field") instead of \(field)")
            }
            for query in ["since=2026-02-30T00:00:00Z", "until=2026-05-12T24:00:00Z", "since=-0001-01-01T00:00:00Z"] {
                #expect(try await api.call("GET", "/v1/deliveries?\(query)", token: tenant.key).status == 400, "\(query)")
            }
            #expect(try await api.call("GET", "/v1/deliveries?since=2026-05-12T09:30:00%2B19:49", token: tenant.key).status == 200)
            #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key).items.isEmpty)
            #expect(try await api.pipeline.pool.query("SELECT count(*) FROM events")[0].decode(Int.self, 0) == 0)
        }
    }

    /// Item 2: a batch with no delivery to insert built an empty `VALUES` list; such an
    /// event was never stored or acked and came back every second, until events of
    /// tenants without endpoints filled every slot and stopped everything else.
    @Test func eventsThatMatchNoEndpointAreStoredAndAckedAndTheRestIsDelivered() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let lonely = try await pipeline.tenant()
            let busy = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: busy, url: receiver.url, types: ["client.created"])
            // More unmatched events than the test worker's 50 slots, first and alone.
            for _ in 0..<120 { try await pipeline.publish("client.created", tenant: lonely) }
            try await pipeline.eventually("the unmatched events are stored") {
                try await pipeline.pool.query("SELECT count(*) FROM events WHERE tenant_id = \(lonely)")[0].decode(Int.self, 0) == 120
            }
            for index in 0..<40 {
                try await pipeline.publish("client.created", tenant: busy, id: "match_\(index)")
                try await pipeline.publish("booking.confirmed", tenant: busy)
                try await pipeline.publish("invoice.paid", tenant: lonely)
            }
            let requests = try await receiver.waitForRequests(40, timeout: .seconds(30))
            #expect(Set(requests.compactMap { $0.header("x-herald-event") }) == ["client.created"])
            try await pipeline.eventually("every event is stored, every message acked") {
                let stored = try await pipeline.pool.query("SELECT count(*) FROM events")[0].decode(Int.self, 0)
                let depth = try await pipeline.workQueueDepth()
                return stored == 240 && depth == 0
            }
            #expect(try await pipeline.pool.query("SELECT count(*) FROM deliveries")[0].decode(Int.self, 0) == 40)
        }
        await receiver.stop()
    }

    /// Item 3: an id of more than 255 UTF-8 bytes broke the AMQP connection the API shares
    /// with every tenant. The protocol's limits are checked before a message reaches the
    /// connection: that one publish fails, the next one on the same channel goes through.
    @Test func aMessageTheProtocolCannotCarryFailsAloneAndTheConnectionLives() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        try await channel.enableConfirms()
        let queue = TestServices.uniqueName("long-id")
        try await channel.declareQueue(queue, durable: false, autoDelete: true)
        let tooLong: [Message] = [
            Message(body: [], messageID: String(repeating: "\u{1F4F7}", count: 100)),
            Message(body: [], headers: [String(repeating: "h", count: 129): "x"]),
            Message(body: [], type: String(repeating: "t", count: 256)),
        ]
        for message in tooLong {
            await #expect(throws: BrokerError.self) { try await channel.publish(message, exchange: "", routingKey: queue) }
        }
        await #expect(throws: BrokerError.self) {
            try await channel.publish(Message(body: []), exchange: "", routingKey: String(repeating: "q", count: 256))
        }
        try await channel.publish(Message(body: Array("fine".utf8), messageID: String(repeating: "\u{E9}", count: 127)), exchange: "", routingKey: queue)
        #expect(try await channel.declareQueue(queue, passive: true).messageCount == 1)
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    /// Item 3, second half: commands the connection's thread had taken when it stopped
    /// were dropped, and their callers waited forever. Publishes posted right behind a
    /// close now all return, each with an answer or an error.
    @Test func everyCommandTakenWhenTheConnectionStopsIsAnswered() async throws {
        let connection = try await Connection.connect(to: TestServices.amqpURL, logger: TestServices.logger)
        let channel = try await connection.openChannel()
        try await channel.enableConfirms()
        let queue = TestServices.uniqueName("closing")
        try await channel.declareQueue(queue, durable: false, autoDelete: true)
        let answered = Counter()
        // Unstructured: a publish that is never answered must fail the test, not hang it.
        // The close is posted among the publishes, so some are taken in the same batch.
        for index in 0..<1000 {
            if index == 500 { Task { await connection.close() } }
            Task {
                _ = try? await channel.publish(Message(body: Array("x".utf8)), exchange: "", routingKey: queue)
                _ = answered.next()
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while answered.count < 1000, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(answered.count == 1000, "publishes never answered")
    }

    /// Item 6: 1,500 idle connections were held indefinitely. An idle connection is
    /// closed after the listener's idle timeout.
    @Test func anIdleConnectionIsClosed() async throws {
        try await APIHarness.run(listener: .init(idleTimeout: .milliseconds(500), maxConnections: 100)) { api in
            let socket = try RawSocket(port: api.port)
            try await socket.waitForClose(within: .seconds(15))
            socket.close()
            #expect(try await api.call("GET", "/healthz").status == 200)
        }
    }

    /// Item 6: at most `maxConnections` are open at once; a request beyond them waits
    /// until one closes, then is answered.
    @Test func connectionsAreCapped() async throws {
        try await APIHarness.run(listener: .init(idleTimeout: .seconds(60), maxConnections: 3)) { api in
            var held = try (0..<3).map { _ in try RawSocket(port: api.port) }
            // Each held connection is accepted: it answers a request.
            for socket in held { #expect(try await socket.get("/healthz").hasPrefix("HTTP/1.1 200")) }
            let waiting = try RawSocket(port: api.port)
            try waiting.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await waiting.read(within: .milliseconds(500)) == nil, "a fourth connection was served")
            held.removeFirst().close()
            let answer = try await waiting.read(within: .seconds(15))
            #expect(answer?.hasPrefix("HTTP/1.1 200") == true)
            waiting.close()
            held.forEach { $0.close() }
        }
    }

    /// Item 7: quotas. Requests per credential and events per tenant answer 429 with
    /// `Retry-After` beyond their rate; another tenant's key is not slowed; a tenant has at
    /// most so many endpoints.
    @Test func quotasAnswer429WithRetryAfterPerCredential() async throws {
        try await APIHarness.run(quotas: .init(requestsPerSecond: 2, eventsPerSecond: 1, endpointsPerTenant: 2)) { api in
            let a = try await api.tenant("A")
            let b = try await api.tenant("B")
            // Concurrent, so that a slow machine cannot spread them over more than a second.
            func burst(_ count: Int, _ make: @escaping @Sendable () async throws -> APIHarness.Answer) async throws -> [(status: Int, retryAfter: String?)] {
                try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                    for _ in 0..<count { group.addTask { let answer = try await make(); return (answer.status, answer.retryAfter) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            let requests = try await burst(16) { try await api.call("GET", "/v1/endpoints", token: a.key) }
            #expect(requests.filter { $0.status == 200 }.count >= 4, "\(requests.map(\.status))")
            #expect(requests.filter { $0.status == 429 }.count >= 1, "\(requests.map(\.status))")
            #expect(requests.filter { $0.status == 429 }.allSatisfy { $0.retryAfter.flatMap(Int.init).map { $0 >= 1 } == true })
            #expect(try await api.call("GET", "/v1/endpoints", token: b.key).status == 200)
            // Events: the same rule per tenant, on B's own requests.
            let events = try await burst(10) {
                try await api.call("POST", "/v1/events", token: b.key, body: ["type": "a.b", "data": [:] as [String: Any]])
            }.map(\.status)
            #expect(events.contains(429), "\(events)")
        }
        try await APIHarness.run(quotas: .init(requestsPerSecond: 0, eventsPerSecond: 0, endpointsPerTenant: 2)) { api in
            let a = try await api.tenant("A")
            for index in 0..<2 { _ = try await api.endpoint(a.key, url: "https://example.com/\(index)") }
            let third = try await api.call(
                "POST", "/v1/endpoints", token: a.key,
                body: ["url": "https://example.com/3", "event_types": ["*"]])
            #expect(third.status == 409)
            #expect(try await api.call("GET", "/v1/endpoints", token: a.key).items.count == 2)
        }
    }

    /// Items 7 and 11: header names are HTTP tokens (the worker refused `X(a)` later, so
    /// every delivery failed), weak secrets and ports other than 80/443 are refused,
    /// undeclared methods answer 405 with `Allow`, and `Bearer` is case-insensitive.
    @Test func theContractIsEnforcedAtTheAPI() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let base: [String: Any] = ["url": "https://example.com/hook", "event_types": ["*"]]
            let refused: [([String: Any], String)] = [
                (["headers": ["X(a)": "1"]], "headers"), (["headers": ["X-A": "line\u{1}"]], "headers"),
                (["headers": ["X,A": "1"]], "headers"), (["secret": String(repeating: "ab", count: 20)], "secret"),
                (["secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "secret"), (["url": "https://example.com:22/"], "url"),
                // Unverifiable by Standard Webhooks libraries, however long (architecture issue 4.8).
                (["secret": "a-long-random-looking-secret-" + Hex.encode(randomBytes(count: 16))], "secret"),
            ]
            for (extra, field) in refused {
                let answer = try await api.call("POST", "/v1/endpoints", token: tenant.key, body: base.merging(extra) { _, new in new })
                #expect((400...422).contains(answer.status), "\(extra) answered \(answer.status)")
                #expect(answer.string("field") == field)
            }
            let strong = "whsec_" + Base64.encode(randomBytes(count: 32))
            #expect(try await api.call("POST", "/v1/endpoints", token: tenant.key, body: base.merging(["secret": strong, "headers": ["X-Api-Key~1": "v"]]) { _, new in new }).status == 201)
            for (method, path, allow) in [("PUT", "/v1/endpoints", "GET, POST"), ("DELETE", "/v1/tenants", "GET, POST"), ("POST", "/healthz", "GET")] {
                let answer = try await api.call(method, path, token: tenant.key)
                #expect(answer.status == 405, "\(method) \(path)")
                #expect(answer.allow == allow)
                #expect(answer.contentType == "application/problem+json")
            }
            for scheme in ["bearer", "BEARER", "Bearer"] {
                #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key, scheme: scheme).status == 200, "\(scheme)")
            }
            #expect(try await api.call("GET", "/v1/endpoints", token: tenant.key, scheme: "Basic").status == 401)
        }
    }
}

/// A plain TCP client for what an HTTP client hides: idle and held connections.
final class RawSocket: Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else { throw WaitTimedOut(expected: 1, received: 0) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw WaitTimedOut(expected: 1, received: 0) }
    }

    /// What arrives within `limit` (nil: nothing yet), polled without blocking a thread.
    func read(within limit: Duration) async throws -> String? {
        let deadline = ContinuousClock.now + limit
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { return String(decoding: buffer[0..<count], as: UTF8.self) }
            if count == 0 { return "" }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    func get(_ path: String) async throws -> String {
        try send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        return try await read(within: .seconds(15)) ?? ""
    }

    /// Waits until the server closes the connection (end of stream), or fails after `limit`.
    func waitForClose(within limit: Duration) async throws {
        guard try await read(within: limit) == "" else {
            Issue.record("the connection was not closed")
            throw WaitTimedOut(expected: 1, received: 0)
        }
    }

    func close() {
        _ = Glibc.close(fd)
    }
}
