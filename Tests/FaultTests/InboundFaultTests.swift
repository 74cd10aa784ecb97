import Foundation
import Glibc
import HTTPClient
import Testing
import TestSupport

/// A sender that got a 2xx never loses its webhook: `herald api` and `herald worker` run as
/// processes on the faults instance while the worker is killed, the broker restarts and
/// the database restarts between requests; every webhook answered 2xx reaches the endpoint.
extension RestartTests {
    @Test func everyInboundWebhookAnswered2xxReachesTheEndpointThroughRestarts() async throws {
        let receiver = try await TestHTTPServer.start()
        try await withTestDatabase(base: TestServices.faultsDatabaseURL) { database in
            // Senders post to a listener of their own, as a deployment exposing only it would.
            let ports = try TestServices.freePorts(2)
            let (port, inboundPort) = (ports[0], ports[1])
            let operatorToken = "fault-operator-token-0123456789"
            var environment = ProcessInfo.processInfo.environment
            environment["HERALD_DATABASE_URL"] = database
            environment["HERALD_AMQP_URL"] = TestServices.faultsAMQPURL
            environment["HERALD_QUEUE_PREFIX"] = TestServices.uniqueName("inbound")
            environment["HERALD_MIGRATIONS_DIR"] = TestServices.repositoryRoot.appendingPathComponent("migrations").path
            environment["HERALD_API_PORT"] = String(port)
            environment["HERALD_INBOUND_PORT"] = String(inboundPort)
            environment["HERALD_OPERATOR_TOKEN"] = operatorToken
            environment["HERALD_ALLOW_HTTP"] = "true"
            environment["HERALD_ALLOWED_HOSTS"] = "localhost"
            environment["HERALD_ALLOWED_PORTS"] = String(receiver.port)
            environment["HERALD_ALLOWED_ADDRESSES"] = "127.0.0.0/8"
            environment["HERALD_WORKER_PORT"] = "0"
            environment["HERALD_LOG_LEVEL"] = "critical"
            environment["HERALD_RETRY_LADDER"] = "500ms,1s,2s"
            environment["HERALD_API_RATE_LIMIT"] = "0"
            func herald(_ arguments: String...) throws -> Process {
                let process = Process()
                process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
                process.arguments = arguments
                process.environment = environment
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                return process
            }
            let migrate = try herald("migrate")
            migrate.waitUntilExit()
            #expect(migrate.terminationStatus == 0)
            let api = try herald("api")
            var worker = try herald("worker")
            defer {
                for process in [api, worker] where process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            let client = Client()
            defer { Task { await client.shutdown() } }
            let base = "http://127.0.0.1:\(port)"
            func call(
                _ method: String, _ path: String, token: String? = nil, base: String = "http://127.0.0.1:\(port)", _ body: [String: Any]? = nil
            ) async throws -> (Int, [String: Any]) {
                var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
                if let token { headers.append(("Authorization", "Bearer \(token)")) }
                let bytes = try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) } ?? []
                let response = try await client.execute(
                    Request(url: base + path, method: method, headers: headers, body: bytes, timeout: .seconds(10), maxResponseBytes: 1 << 20))
                return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:])
            }
            // The API is up when it answers.
            let deadline = ContinuousClock.now + .seconds(60)
            while (try? await call("GET", "/healthz").0) != 200 {
                guard ContinuousClock.now < deadline else { throw WaitTimedOut(expected: 1, received: 0) }
                try await Task.sleep(for: .milliseconds(100))
            }
            let tenant = try #require(try await call("POST", "/v1/tenants", token: operatorToken, ["name": "Faults"]).1["id"] as? String)
            let key = try #require(try await call("POST", "/v1/tenants/\(tenant)/keys", token: operatorToken, ["name": "k"]).1["key"] as? String)
            let endpoint = try await call(
                "POST", "/v1/endpoints", token: key,
                ["url": "http://localhost:\(receiver.port)/hook", "event_types": ["lead.created"], "enabled": true, "dpa_confirmed_by": "Ada"])
            #expect(endpoint.0 == 201)
            let source = try await call(
                "POST", "/v1/sources", token: key, ["name": "forms", "verification": ["method": "none"], "mapping": ["event_type": "lead.created"]])
            let url = try #require(source.1["url"] as? String)
            #expect(url.hasPrefix("http://127.0.0.1:\(inboundPort)/in/"), "\(url)")
            let path = String(url[try #require(url.range(of: "/in/")).lowerBound...])
            // The API's listener does not take webhooks; the senders' listener takes nothing else.
            #expect(try await call("POST", path, ["n": -1]).0 == 404)
            let senders = "http://127.0.0.1:\(inboundPort)"
            let management = try await client.execute(Request(url: senders + "/v1/tenants", method: "GET", maxResponseBytes: 4096))
            #expect(management.status == 404)

            var accepted: Set<Int> = []
            var refused = 0
            for n in 0..<240 {
                switch n {
                case 40: kill(worker.processIdentifier, SIGKILL)
                case 70: worker = try herald("worker")
                case 100: try TestServices.script("stop-rabbitmq", "faults")
                case 130: try TestServices.script("start-rabbitmq", "faults")
                case 160: try TestServices.script("stop-postgres", "faults")
                case 190: try TestServices.script("start-postgres", "faults")
                default: break
                }
                do {
                    let (status, answer) = try await call("POST", path, base: senders, ["n": n])
                    if status == 200, answer["status"] as? String == "processed" { accepted.insert(n) } else { refused += 1 }
                } catch {
                    refused += 1
                }
            }
            // The database was down for a stretch: those requests were refused, the rest accepted.
            #expect(accepted.count >= 200, "accepted \(accepted.count), refused \(refused)")
            #expect(refused >= 1, "the requests while the database was down are refused, not acknowledged")
            var delivered: Set<Int> = []
            let end = ContinuousClock.now + .seconds(120)
            while !accepted.isSubset(of: delivered) && ContinuousClock.now < end {
                delivered = Set(receiver.requests.compactMap { request in
                    (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Int])?["n"]
                })
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(accepted.subtracting(delivered).isEmpty, "lost: \(accepted.subtracting(delivered).sorted())")
            // The API counted what it stored.
            let metrics = try await client.execute(Request(url: base + "/metrics", method: "GET", maxResponseBytes: 1 << 20))
            let text = String(decoding: metrics.body, as: UTF8.self)
            #expect(text.contains("herald_inbound_requests_total{status=\"processed\"}"), "\(text.prefix(2000))")
            #expect(text.contains("herald_inbound_accept_seconds"))
            kill(api.processIdentifier, SIGTERM)
            kill(worker.processIdentifier, SIGTERM)
            api.waitUntilExit()
            worker.waitUntilExit()
        }
    }
}
