import Delivery
import Foundation
import HTTPClient
import HeraldSupport
import Testing
import TestSupport
import Topology

@Suite("Log secrecy (real processes)")
struct LogSecrecyTests {
    /// `herald worker` and `herald api` at the most verbose level, with passwords in both
    /// URLs, through start-up, a delivery and a graceful stop: neither password appears in
    /// anything they write.
    @Test func passwordsNeverReachTheLogsEvenAtTrace() async throws {
        let receiver = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            // Loopback PostgreSQL trusts its clients: the password is carried, not checked.
            let databaseURL = pipeline.databaseURL.replacingOccurrences(of: "postgres://postgres@", with: "postgres://postgres:Db-Pa55word-7@")
            #expect(databaseURL.contains("Db-Pa55word-7"))
            #expect(TestServices.amqpURL.contains("guest:guest@"))
            var outputs: [String] = []
            for command in ["worker", "api"] {
                let process = Process()
                process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
                process.arguments = [command, "--queue-prefix", pipeline.topology.prefix]
                var environment = ProcessInfo.processInfo.environment
                environment["HERALD_DATABASE_URL"] = databaseURL
                environment["HERALD_AMQP_URL"] = TestServices.amqpURL
                environment["HERALD_LOG_LEVEL"] = "trace"
                environment["HERALD_LOG_FORMAT"] = command == "api" ? "json" : "text"
                environment["HERALD_ALLOWED_ADDRESSES"] = "127.0.0.0/8"
                let ports = try TestServices.freePorts(2)
                environment["HERALD_WORKER_PORT"] = String(ports[0])
                environment["HERALD_API_PORT"] = String(ports[1])
                environment["HERALD_DEFER_DELAY"] = "\(pipeline.topology.deferDelay.milliseconds)ms"
                environment["HERALD_RETRY_LADDER"] = pipeline.topology.ladder.description
                process.environment = environment
                async let finished = process.runToCompletion()
                if command == "worker" {
                    try await pipeline.publish("client.created", tenant: tenant)
                    try await receiver.waitForRequests(1)
                } else {
                    let client = HTTPClient.Client()
                    try await pipeline.eventually("the API answers") {
                        let port = environment["HERALD_API_PORT"] ?? ""
                        return (try? await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(port)/readyz", method: "GET")).status) == 200
                    }
                    await client.shutdown()
                }
                kill(process.processIdentifier, SIGTERM)
                let (status, output) = try await finished
                #expect(status == 0, "herald \(command) exited \(status)")
                outputs.append(output)
            }
            // The API's JSON lines: RFC 3339 with milliseconds, numbers as numbers, and an
            // access line per request naming its route pattern and request id.
            let lines = outputs[1].split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
            #expect(lines.count == outputs[1].split(separator: "\n").count, "every line is a JSON object")
            #expect(lines.allSatisfy { ($0["time"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil })
            let access = try #require(lines.first { $0["message"] as? String == "request" && $0["route"] as? String == "/readyz" && $0["status"] as? Int == 200 })
            #expect(access["duration_ms"] is Int)
            #expect((access["request_id"] as? String).flatMap(UUID.init(uuidString:)) != nil)
            for output in outputs {
                #expect(output.split(separator: "\n").count > 10, "trace logs are written: \(output.prefix(300))")
                #expect(!output.contains("Db-Pa55word-7"), "the database password is in the logs")
                #expect(!output.contains("guest:guest"), "the broker password is in the logs")
            }
        }
        await receiver.stop()
    }
}
