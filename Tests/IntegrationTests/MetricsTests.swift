import Foundation
import HTTPClient
import HeraldSupport
import Operations
import Testing
import TestSupport
import Topology

/// What Prometheus and its tools accept: `promtool` (Debian's prometheus package, installed
/// by scripts/services) on the real processes' `/metrics` and on the shipped alert rules.
@Suite("Metrics (promtool, real processes)")
struct MetricsTests {
    /// `promtool check metrics` on `text`: its exit status and what it complained about.
    static func promtool(metrics text: String) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        process.standardInput = input
        async let result = process.runToCompletion()
        try input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
        try input.fileHandleForWriting.close()
        return try await result
    }

    /// The worker's and the API's `/metrics` after a delivery and a few API requests pass
    /// `promtool check metrics` with nothing to say: a HELP line for each metric, counters
    /// ending in `_total`, units in the names.
    @Test func theWorkersAndTheAPIsMetricsPassPromtool() async throws {
        let receiver = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            let workerPort = try TestServices.freePort()
            let worker = try WorkerProcess.start(pipeline, ladder: "200ms", environment: ["HERALD_WORKER_PORT": String(workerPort)])
            defer { worker.stopIfRunning() }
            let api = try APIProcess(pipeline)
            let apiPort = api.port
            defer { api.stop() }

            try await pipeline.publish("client.created", tenant: tenant)
            try await receiver.waitForRequests(1)
            let client = HTTPClient.Client()
            func metrics(_ port: Int) async -> String? {
                guard let response = try? await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(port)/metrics", method: "GET", maxResponseBytes: 1 << 20)),
                    response.status == 200
                else { return nil }
                return String(decoding: response.body, as: UTF8.self)
            }
            var workerText = ""
            try await pipeline.eventually("the worker shows the delivery and its queues") {
                workerText = await metrics(workerPort) ?? ""
                return workerText.contains("herald_deliveries_total{outcome=\"delivered\"} 1") && workerText.contains("herald_queue_messages{")
            }
            // Requests the API answers: one refused, one a route with an id, one unknown path.
            try await pipeline.eventually("the API answers") {
                (try? await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(apiPort)/healthz", method: "GET")).status) == 200
            }
            let refused = try await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(apiPort)/v1/endpoints", method: "GET"))
            // Every answer names its request: a new id, or the caller's when it is a short token.
            #expect(refused.status == 401 && UUID(uuidString: refused.header("x-request-id") ?? "") != nil)
            let named = try await client.execute(
                HTTPClient.Request(url: "http://127.0.0.1:\(apiPort)/healthz", method: "GET", headers: [(name: "X-Request-Id", value: "crm-7f3a:42")]))
            #expect(named.header("x-request-id") == "crm-7f3a:42")
            let hostile = try await client.execute(
                HTTPClient.Request(url: "http://127.0.0.1:\(apiPort)/healthz", method: "GET", headers: [(name: "X-Request-Id", value: "a b <script>")]))
            #expect(UUID(uuidString: hostile.header("x-request-id") ?? "") != nil)
            _ = try await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(apiPort)/v1/endpoints/\(UUID())", method: "GET"))
            _ = try await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(apiPort)/no/such/path", method: "GET"))
            var apiText = ""
            // Housekeeping's first measurement runs beside the first requests: waited for too.
            try await pipeline.eventually("the API counts its requests and has measured the endpoints") {
                apiText = await metrics(apiPort) ?? ""
                return apiText.contains("herald_http_requests_total{") && apiText.contains("herald_endpoints_disabled{")
            }
            await client.shutdown()

            // The worker: queue depths by queue and kind, attempts by outcome, every one described.
            #expect(workerText.contains("queue=\"\(pipeline.topology.workQueue)\""))
            #expect(workerText.contains("kind=\"parking\""))
            #expect(workerText.contains("herald_attempt_duration_seconds_bucket{outcome=\"delivered\""))
            #expect(workerText.contains("# HELP herald_deliveries_total "))
            let (workerStatus, workerComplaints) = try await Self.promtool(metrics: workerText)
            #expect(workerStatus == 0 && workerComplaints.isEmpty, "promtool on the worker: \(workerComplaints)")

            // The API: the route pattern, never the id or the unknown path.
            #expect(apiText.contains("route=\"/v1/endpoints/:id\"") || apiText.contains("route=\"/v1/endpoints/{id}\""), "\(apiText.prefix(2000))")
            #expect(apiText.contains("status=\"401\""))
            #expect(!apiText.contains("/no/such/path"))
            #expect(apiText.contains("herald_endpoints_disabled{by=\"automatic\"}"))
            let (apiStatus, apiComplaints) = try await Self.promtool(metrics: apiText)
            #expect(apiStatus == 0 && apiComplaints.isEmpty, "promtool on the API: \(apiComplaints)")
        }
        await receiver.stop()
    }

    @Test func theAlertRulesAreValidAndNameOnlyMetricsHeraldHas() async throws {
        let rules = TestServices.repositoryRoot.appendingPathComponent("deploy/prometheus/herald-alerts.yml")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "rules", rules.path]
        let (status, output) = try await process.runToCompletion()
        #expect(status == 0, "\(output)")
        #expect(output.contains("SUCCESS"))
        for file in ["deploy/prometheus/herald-alerts.yml", "deploy/grafana/herald-dashboard.json"] {
            let text = try String(contentsOf: TestServices.repositoryRoot.appendingPathComponent(file), encoding: .utf8)
            let names = Self.metricNames(in: text)
            #expect(!names.isEmpty, "\(file) names no metric")
            for name in names {
                #expect(Telemetry.help[Self.family(name)] != nil, "\(file) names \(name), which Herald does not export")
            }
        }
    }

    /// Every metric the sources create has its description: `/metrics` never shows one
    /// without help text.
    @Test func everyMetricInTheSourcesIsDescribed() throws {
        let sources = TestServices.repositoryRoot.appendingPathComponent("Sources")
        var found: Set<String> = []
        for case let file as URL in FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)! where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: /label: "(herald_[a-z_]+)"/) { found.insert(String(match.1)) }
        }
        #expect(found.count >= 10, "\(found)")
        for name in found.sorted() {
            #expect(Telemetry.help[name] != nil, "\(name) has no help text in Telemetry.help")
        }
    }

    static func metricNames(in text: String) -> Set<String> {
        Set(text.matches(of: /herald_[a-z_]+/).map { String($0.0) })
    }

    /// A histogram's series names its family with a suffix.
    static func family(_ name: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && Telemetry.help[name] == nil {
            return String(name.dropLast(suffix.count))
        }
        return name
    }
}
