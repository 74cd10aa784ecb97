// The dashboard with a large log: 1,000,000 deliveries and 3,000,000 attempts over 7 days,
// half of them one tenant's; every portal and console page timed through a real `herald
// api`, and the plans of the figures' queries checked for indexes.
import Foundation
import HTTPClient
import Postgres
import Records
import Topology

struct PageTiming {
    var page: String
    var p50: Double
    var p95: Double
}

struct DashboardFigures {
    var seedSeconds: Double
    var rollupSeconds: Double
    var pages: [PageTiming]
    /// Each figures query with whether its plan reads an index (and no sequential scan).
    var plans: [(query: String, indexed: Bool)]
}

func dashboard(_ options: Options, deliveries: Int = 1_000_000, samples: Int = 40) async throws -> DashboardFigures {
    try await Scenario.run(options, label: "dashboard") { scenario in
        let database = scenario.database
        _ = try await database.tenants(10, receiver: options.receiver, endpointsEach: 5)
        let seedStart = ContinuousClock.now
        // Endpoints 0…4 (one tenant) take every other delivery; the 45 others share the rest.
        let targets = "(SELECT row_number() OVER (ORDER BY tenant_id, id) - 1 AS n, tenant_id, id FROM endpoints)"
        let spread = 604_800.0 / Double(deliveries)
        try await database.pool.query(
            Query(
                stringLiteral: """
                    INSERT INTO events (tenant_id, id, type, occurred_at, data, received_at)
                    SELECT t.tenant_id, 'evt_' || g, (ARRAY['client.created','booking.confirmed','invoice.paid','gallery.published'])[1 + g % 4],
                           now() - make_interval(secs => g * \(spread)), '{"id":1,"name":"Anna"}', now() - make_interval(secs => g * \(spread))
                    FROM generate_series(0, \(deliveries - 1)) g
                    JOIN \(targets) t ON t.n = CASE WHEN g % 2 = 0 THEN g % 5 ELSE 5 + g % 45 END
                    """))
        try await database.pool.query(
            Query(
                stringLiteral: """
                    INSERT INTO deliveries (tenant_id, event_id, endpoint_id, status, attempts, last_status_code, created_at, updated_at)
                    SELECT t.tenant_id, 'evt_' || g, t.id,
                           CASE g % 20 WHEN 0 THEN 'failed' WHEN 1 THEN 'retrying' ELSE 'delivered' END, 3,
                           CASE g % 20 WHEN 0 THEN 503 WHEN 1 THEN 503 ELSE 200 END,
                           now() - make_interval(secs => g * \(spread)), now() - make_interval(secs => g * \(spread))
                    FROM generate_series(0, \(deliveries - 1)) g
                    JOIN \(targets) t ON t.n = CASE WHEN g % 2 = 0 THEN g % 5 ELSE 5 + g % 45 END
                    """))
        try await database.pool.query(
            """
            INSERT INTO delivery_attempts (delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code, error_class)
            SELECT d.id, a, 'automatic', d.request_id, d.created_at + make_interval(secs => a * 60), (random() * 300)::int,
                   CASE WHEN a < 3 OR d.status <> 'delivered' THEN 503 ELSE 200 END, CASE WHEN a < 3 OR d.status <> 'delivered' THEN 'http' END
            FROM deliveries d CROSS JOIN generate_series(1, 3) a
            """)
        try await database.pool.query("ANALYZE")
        let seedSeconds = (ContinuousClock.now - seedStart).seconds

        // The hourly figures from nothing: what an upgraded deployment's first roll-up does.
        try await database.pool.query("UPDATE attempt_rollup SET rolled_until = (SELECT min(started_at) FROM delivery_attempts)")
        let rollupStart = ContinuousClock.now
        try await PostgresRecords(pool: database.pool).rollUp(lag: .zero)
        let rollupSeconds = (ContinuousClock.now - rollupStart).seconds
        try await database.pool.query("ANALYZE")

        let heavy = try await database.pool.query(
            Query(stringLiteral: "SELECT tenant_id, id FROM \(targets) t WHERE n = 0"))[0]
        let tenant = try heavy.decode(UUID.self, 0)
        let endpoint = try heavy.decode(UUID.self, 1)
        let plans = try await queryPlans(database.pool, tenant: tenant, endpoint: endpoint)

        let api = try APIProcess(options, databaseURL: database.url, prefix: scenario.topology.topology.prefix)
        let client = Client()
        do {
            let pages = try await timePages(api, client, tenant: tenant, endpoint: endpoint, samples: samples)
            api.stop()
            await client.shutdown()
            return DashboardFigures(seedSeconds: seedSeconds, rollupSeconds: rollupSeconds, pages: pages, plans: plans)
        } catch {
            api.stop()
            await client.shutdown()
            throw error
        }
    }
}

/// Every page `samples` times (after 3 to warm up), one after another; p50 and p95 in ms.
private func timePages(_ api: APIProcess, _ client: Client, tenant: UUID, endpoint: UUID, samples: Int) async throws -> [PageTiming] {
        try await api.awaitHealthy(client)
        let link = try await api.send(
            client, "POST", "/v1/tenants/\(tenant.uuidString.lowercased())/portal-links", token: APIProcess.token, body: "{}")
        guard let path = (try? JSONSerialization.jsonObject(with: Data(link.body))) as? [String: Any], let enter = path["path"] as? String else {
            throw BenchError("dashboard: no portal link (\(link.status))")
        }
        let entered = try await api.send(client, "GET", enter)
        let portalCookie = try cookie(entered, "herald_portal")
        let signedIn = try await api.send(
            client, "POST", "/console/sign-in", body: "token=\(APIProcess.token)", contentType: "application/x-www-form-urlencoded")
        let consoleCookie = try cookie(signedIn, "herald_console")

        let id = endpoint.uuidString.lowercased()
        let firstPage = try await api.send(client, "GET", "/portal/deliveries?endpoint_id=\(id)", cookie: portalCookie)
        let page = String(decoding: firstPage.body, as: UTF8.self)
        let next = page.firstMatch(of: /id="next-page" href="([^"]+)"/).map { String($0.output.1).replacingOccurrences(of: "&amp;", with: "&") }
        let delivery = page.firstMatch(of: /href="\/portal\/deliveries\/([0-9a-f-]{36})"/).map { String($0.output.1) }
        var pages: [(String, String, String)] = [
            ("portal: endpoints (summaries)", "/portal/endpoints", portalCookie),
            ("portal: endpoint, 24 h chart", "/portal/endpoints/\(id)", portalCookie),
            ("portal: endpoint, 7 d chart", "/portal/endpoints/\(id)?period=7d", portalCookie),
            ("portal: delivery log", "/portal/deliveries", portalCookie),
            ("portal: log of one endpoint, failed", "/portal/deliveries?endpoint_id=\(id)&status=failed", portalCookie),
            ("portal: log by event type and time", "/portal/deliveries?event_type=invoice.paid&since=2026-01-01T00:00", portalCookie),
            ("portal: log by event id", "/portal/deliveries?event_id=evt_4242", portalCookie),
            ("portal: help", "/portal/endpoints/\(id)/help", portalCookie),
            ("console: tenants", "/console", consoleCookie),
            ("console: workers", "/console/workers", consoleCookie),
            ("console: queues", "/console/queues", consoleCookie),
        ]
        if let next { pages.append(("portal: log, next page", next, portalCookie)) }
        if let delivery { pages.append(("portal: delivery with attempts", "/portal/deliveries/\(delivery)", portalCookie)) }
        var timings: [PageTiming] = []
        for (name, path, cookie) in pages {
            var durations: [Double] = []
            for n in 0..<(samples + 3) {
                let start = ContinuousClock.now
                let response = try await api.send(client, "GET", path, cookie: cookie)
                guard response.status == 200 else { throw BenchError("dashboard: \(path) answered \(response.status)") }
                if n >= 3 { durations.append((ContinuousClock.now - start).seconds * 1000) }
            }
            durations.sort()
            timings.append(PageTiming(page: name, p50: durations[durations.count / 2], p95: durations[Int(Double(durations.count) * 0.95) - 1]))
        }
        return timings
}

/// EXPLAIN of what the charts, the endpoints list and the console read.
private func queryPlans(_ pool: Pool, tenant: UUID, endpoint: UUID) async throws -> [(query: String, indexed: Bool)] {
    let week = Date().addingTimeInterval(-7 * 86_400)
    let queries: [(String, Query)] = [
        (
            "chart: an endpoint's hours, 7 d",
            "EXPLAIN SELECT hour FROM endpoint_hours WHERE endpoint_id = \(endpoint) AND tenant_id = \(tenant) AND hour >= \(week) ORDER BY hour"
        ),
        (
            "endpoints list: the tenant's day",
            "EXPLAIN SELECT endpoint_id, sum(succeeded) FROM endpoint_hours WHERE tenant_id = \(tenant) AND hour >= \(week) GROUP BY endpoint_id"
        ),
        (
            "endpoints list: newest delivery",
            "EXPLAIN SELECT created_at FROM deliveries WHERE endpoint_id = \(endpoint) AND tenant_id = \(tenant) ORDER BY created_at DESC, id DESC LIMIT 1"
        ),
        ("console: every tenant's day", "EXPLAIN SELECT tenant_id, sum(rejected) FROM endpoint_hours WHERE hour >= now() - interval '1 day' GROUP BY tenant_id"),
    ]
    var plans: [(String, Bool)] = []
    for (name, query) in queries {
        let plan = try await pool.query(query).map { try $0.decode(String.self, 0) }.joined(separator: "\n")
        plans.append((name, plan.contains("Index") && !plan.contains("Seq Scan")))
    }
    return plans
}

private func cookie(_ response: HTTPClient.Response, _ name: String) throws -> String {
    guard let header = response.headers.first(where: { $0.name.lowercased() == "set-cookie" && $0.value.hasPrefix(name + "=") }) else {
        throw BenchError("dashboard: no \(name) cookie (\(response.status))")
    }
    return String(header.value.split(separator: ";")[0])
}

/// A `herald api` process of the build under test, on a free port.
final class APIProcess: Sendable {
    static let token = "bench-operator-token-0123456789abcdef"
    let process: Process
    let base: String

    init(_ options: Options, databaseURL: String, prefix: String) throws {
        let port = 18_000 + Int.random(in: 0..<2000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: options.herald)
        process.arguments = ["api"]
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_DATABASE_URL"] = databaseURL
        environment["HERALD_AMQP_URL"] = options.amqpURL
        environment["HERALD_API_PORT"] = String(port)
        environment["HERALD_OPERATOR_TOKEN"] = Self.token
        environment["HERALD_QUEUE_PREFIX"] = prefix
        environment["HERALD_LOG_LEVEL"] = "warning"
        process.environment = environment
        try process.run()
        self.process = process
        base = "http://127.0.0.1:\(port)"
    }

    func awaitHealthy(_ client: Client) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? await send(client, "GET", "/healthz"))?.status != 200 {
            guard ContinuousClock.now < deadline, process.isRunning else { throw BenchError("herald api did not start") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func send(
        _ client: Client, _ method: String, _ path: String, token: String? = nil, cookie: String? = nil, body: String? = nil,
        contentType: String = "application/json"
    ) async throws -> HTTPClient.Response {
        var headers: [(name: String, value: String)] = []
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if let cookie { headers.append(("Cookie", cookie)) }
        if body != nil { headers.append(("Content-Type", contentType)) }
        let request = HTTPClient.Request(
            url: base + path, method: method, headers: headers, body: Array((body ?? "").utf8), timeout: .seconds(30), maxResponseBytes: 1 << 20)
        do {
            return try await client.execute(request)
        } catch {
            throw BenchError("dashboard: \(method) \(path): \(error)")
        }
    }

    func stop() {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
