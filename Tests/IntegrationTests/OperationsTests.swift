import Cryptography
import Foundation
import HTTPClient
import Migrations
import Operations
import Postgres
import Testing
import TestSupport
import Topology

@Suite("Retention, CLI and worker operations")
struct OperationsTests {
    @Test func retentionDeletesOnlyWhatIsOlderThanTheAge() async throws {
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/in")
            for (id, age) in [("evt_old", "100 days"), ("evt_new", "1 day")] {
                try await pipeline.pool.query(
                    """
                    INSERT INTO events (tenant_id, id, type, occurred_at, data, received_at)
                    VALUES (\(tenant), \(id), 'a.b', now(), '{}'::json, now() - \(age)::interval)
                    """)
                let delivery = try await pipeline.pool.query(
                    "INSERT INTO deliveries (tenant_id, event_id, endpoint_id, status) VALUES (\(tenant), \(id), \(endpoint), 'delivered') RETURNING id"
                )[0].decode(UUID.self, 0)
                try await pipeline.pool.query(
                    """
                    INSERT INTO delivery_attempts (delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code)
                    VALUES (\(delivery), 1, 'automatic', gen_random_uuid(), now() - \(age)::interval, 5, 200)
                    """)
            }
            let housekeeping = Housekeeping(
                pool: pipeline.pool, retention: .seconds(90 * 86_400), rollupLag: .seconds(70),
                logger: TestServices.logger)
            #expect(await housekeeping.applyRetention() >= 2)
            let events = try await pipeline.pool.query("SELECT id FROM events ORDER BY id").map { try $0.decode(String.self, 0) }
            #expect(events == ["evt_new"])
            #expect(try await pipeline.pool.query("SELECT count(*) FROM delivery_attempts")[0].decode(Int.self, 0) == 1)
            #expect(try await pipeline.deliveries(endpoint: endpoint).map(\.eventID) == ["evt_new"])
        }
    }

    /// Attempts are partitioned by day: retention drops whole days past the age, deletes
    /// what is older in the history partition (the attempts from before partitioning),
    /// and makes the coming week's partitions.
    @Test func retentionDropsWholeDaysOfAttempts() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: "https://example.com/in")
            try await pipeline.pool.query(
                "INSERT INTO events (tenant_id, id, type, occurred_at, data) VALUES (\(tenant), 'evt_1', 'a.b', now(), '{}'::json)")
            let delivery = try await pipeline.pool.query(
                "INSERT INTO deliveries (tenant_id, event_id, endpoint_id, status) VALUES (\(tenant), 'evt_1', \(endpoint), 'delivered') RETURNING id"
            )[0].decode(UUID.self, 0)
            func partition(_ daysAgo: Int) async throws -> String? {
                try await pipeline.pool.query(
                    """
                    SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'delivery_attempts'::regclass
                      AND c.relname = 'delivery_attempts_p' || to_char((now() AT TIME ZONE 'UTC')::date - \(daysAgo)::integer, 'YYYYMMDD')
                    """
                ).first.map { try $0.decode(String.self, 0) }
            }
            // The migrations made yesterday's partition and the days ahead; older attempts
            // belong to the history partition.
            for (attempt, started) in [
                (1, "now() - interval '100 days'"), (2, "((now() AT TIME ZONE 'UTC')::date - 1 + time '12:00') AT TIME ZONE 'UTC'"), (3, "now()"),
            ] as [(Int, Query)] {
                try await pipeline.pool.query(
                    """
                    INSERT INTO delivery_attempts (delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code)
                    VALUES (\(delivery), \(attempt), 'automatic', gen_random_uuid(), \(started), 5, 200)
                    """)
            }
            let placed = try await pipeline.pool.query(
                "SELECT attempt, tableoid::regclass::text FROM delivery_attempts ORDER BY attempt"
            ).map { (try $0.decode(Int.self, 0), try $0.decode(String.self, 1)) }
            #expect(placed.map(\.1) == ["delivery_attempts_history", try await partition(1) ?? "?", try await partition(0) ?? "?"])

            let housekeeping = Housekeeping(pool: pipeline.pool, retention: .seconds(90 * 86_400), rollupLag: .seconds(70), logger: TestServices.logger)
            _ = await housekeeping.applyRetention()
            var left = try await pipeline.pool.query("SELECT attempt FROM delivery_attempts ORDER BY attempt").map { try $0.decode(Int.self, 0) }
            #expect(left == [2, 3], "the row older than the retention deleted, the recent ones kept")
            for day in 0...7 {
                let ahead = try await partition(-day)
                #expect(ahead != nil, "the partition \(day) days ahead exists")
            }

            // A cutoff at the start of today drops yesterday whole, and nothing younger.
            let dropped = try await pipeline.pool.query(
                "SELECT herald_drop_attempt_partitions(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')")[0].decode(Int.self, 0)
            // (Two when the migrations ran before midnight UTC and this after it.)
            #expect(dropped >= 1)
            #expect(try await partition(1) == nil)
            #expect(try await partition(0) != nil)
            left = try await pipeline.pool.query("SELECT attempt FROM delivery_attempts ORDER BY attempt").map { try $0.decode(Int.self, 0) }
            #expect(left == [3])
        }
    }

    /// Making or dropping a partition needs the whole table to itself: behind a long
    /// reader it gives way after a second instead of making every writer queue behind it.
    @Test func partitionUpkeepGivesWayToALongReader() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let reader = try Pool(url: pipeline.databaseURL, size: 1, logger: TestServices.logger)
            let (held, holding) = AsyncStream<Void>.makeStream()
            let (released, release) = AsyncStream<Void>.makeStream()
            // Whatever fails below, the reader's transaction ends.
            defer { release.finish() }
            let transaction = Task {
                try await reader.transaction { connection in
                    _ = try await connection.query("SELECT count(*) FROM delivery_attempts")
                    holding.yield()
                    for await _ in released { break }
                }
            }
            for await _ in held { break }
            // The eighth day ahead does not exist yet; its partition waits for the reader.
            let behindReader = try await pipeline.pool.query("SELECT herald_make_attempt_partitions(8)")[0].decode(Int.self, 0)
            #expect(behindReader == 0)
            let usable = try await pipeline.pool.query("SELECT count(*) FROM delivery_attempts")[0].decode(Int.self, 0)
            #expect(usable == 0, "the table answers once the upkeep gave way")
            release.yield()
            try await transaction.value
            let afterReader = try await pipeline.pool.query("SELECT herald_make_attempt_partitions(8)")[0].decode(Int.self, 0)
            #expect(afterReader == 1)
            await reader.close()
        }
    }

    /// Migration 0012 moves every attempt into the partitioned table with its id, and new
    /// attempts number on after them.
    @Test func partitioningTheAttemptsKeepsEveryRow() async throws {
        try await withTestDatabase { url in
            let all = try Migration.load(directory: TestServices.repositoryRoot.appendingPathComponent("migrations").path)
            try await Migrator(databaseURL: url, migrations: all.filter { $0.version < 12 }, logger: TestServices.logger).run()
            let pool = try Pool(url: url, size: 2, logger: TestServices.logger)
            let tenant = try await pool.query("INSERT INTO tenants (name) VALUES ('t') RETURNING id")[0].decode(UUID.self, 0)
            let endpoint = try await pool.query(
                "INSERT INTO endpoints (tenant_id, url, secret, enabled) VALUES (\(tenant), 'https://example.com/in', 'whsec_x', false) RETURNING id"
            )[0].decode(UUID.self, 0)
            try await pool.query("INSERT INTO events (tenant_id, id, type, occurred_at, data) VALUES (\(tenant), 'evt_1', 'a.b', now(), '{}'::json)")
            let delivery = try await pool.query(
                "INSERT INTO deliveries (tenant_id, event_id, endpoint_id) VALUES (\(tenant), 'evt_1', \(endpoint)) RETURNING id")[0].decode(UUID.self, 0)
            var ids: [Int] = []
            for (attempt, age) in [(1, "40 days"), (2, "0 days")] {
                ids.append(
                    try await pool.query(
                        """
                        INSERT INTO delivery_attempts (delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code)
                        VALUES (\(delivery), \(attempt), 'automatic', gen_random_uuid(), now() - \(age)::interval, 5, 503) RETURNING id
                        """)[0].decode(Int.self, 0))
            }
            try await Migrator(databaseURL: url, migrations: all, logger: TestServices.logger).run()
            let kept = try await pool.query("SELECT id, attempt FROM delivery_attempts ORDER BY id").map { (try $0.decode(Int.self, 0), try $0.decode(Int.self, 1)) }
            #expect(kept.map(\.0) == ids && kept.map(\.1) == [1, 2])
            #expect(try await pool.query("SELECT relkind::text FROM pg_class WHERE relname = 'delivery_attempts'")[0].decode(String.self, 0) == "p")
            let next = try await pool.query(
                """
                INSERT INTO delivery_attempts (delivery_id, attempt, trigger, request_id, started_at, duration_ms)
                VALUES (\(delivery), 3, 'automatic', gen_random_uuid(), now(), 5) RETURNING id
                """)[0].decode(Int.self, 0)
            #expect(next > (ids.max() ?? 0))
            // Migration 0013 gave the attempts from before partitioning a partition of their own.
            let homes = try await pool.query("SELECT attempt, tableoid::regclass::text FROM delivery_attempts WHERE attempt < 3 ORDER BY attempt")
                .map { try $0.decode(String.self, 1) }
            #expect(homes.first == "delivery_attempts_history")
            #expect(homes.last?.hasPrefix("delivery_attempts_p") == true)
            #expect(try await pool.query("SELECT count(*) FROM delivery_attempts_default")[0].decode(Int.self, 0) == 0)
            await pool.close()
        }
    }

    @Test func theCLIDrivesTheAPIWithStableExitCodes() async throws {
        try await APIHarness.run { api in
            func herald(_ arguments: [String], key: String? = nil, environment extra: [String: String] = [:]) async throws -> (Int32, String) {
                try await api.cli(arguments, key: key, environment: extra)
            }
            func object(_ text: String) -> [String: Any] { APIHarness.object(text) }
            let (tenantStatus, tenantJSON) = try await herald(["tenants", "create", "CLI Studio"])
            #expect(tenantStatus == 0)
            let tenant = try #require(object(tenantJSON)["id"] as? String)
            let (keyStatus, keyJSON) = try await herald(["keys", "create", "--tenant", tenant])
            #expect(keyStatus == 0)
            let key = try #require(object(keyJSON)["key"] as? String)
            let (createStatus, createJSON) = try await herald(
                ["endpoints", "create", "--url", "https://hooks.example.com/in", "--events", "client.created,invoice.*",
                 "--header", "X-Team=photo", "--filter", "workspace=w1,w2", "--dpa-confirmed-by", "Anna", "--enabled", "true"], key: key)
            #expect(createStatus == 0)
            let created = object(createJSON)
            #expect(created["event_types"] as? [String] == ["client.created", "invoice.*"])
            #expect(created["filters"] as? [String: [String]] == ["workspace": ["w1", "w2"]])
            #expect((created["secret"] as? String)?.hasPrefix("whsec_") == true)
            // Updating one header keeps the others; one can be removed.
            let endpointID = try #require(created["id"] as? String)
            let (addStatus, addJSON) = try await herald(["endpoints", "update", endpointID, "--header", "X-Region=eu"], key: key)
            #expect(addStatus == 0, "\(addJSON)")
            #expect(object(addJSON)["headers"] as? [String: String] == ["X-Team": "photo", "X-Region": "eu"])
            let (removeStatus, removeJSON) = try await herald(["endpoints", "update", endpointID, "--remove-header", "x-team"], key: key)
            #expect(removeStatus == 0, "\(removeJSON)")
            #expect(object(removeJSON)["headers"] as? [String: String] == ["X-Region": "eu"])
            #expect(try await herald(["endpoints", "update", endpointID, "--remove-header", "X-Absent"], key: key).0 == 64)
            let (listStatus, listJSON) = try await herald(["endpoints", "list"], key: key)
            #expect(listStatus == 0)
            #expect((object(listJSON)["items"] as? [[String: Any]])?.count == 1)
            // Refused by the API: 1. Unreachable: 3. Usage: 64.
            let missing = try await herald(["endpoints", "show", UUID().uuidString], key: key)
            #expect(missing.0 == 1, "exit \(missing.0): \(missing.1)")
            let refused = try await herald(["endpoints", "create", "--url", "https://127.0.0.1/", "--events", "*"], key: key)
            #expect(refused.0 == 1, "exit \(refused.0): \(refused.1)")
            let unreachable = Process()
            unreachable.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
            unreachable.arguments = ["endpoints", "list", "--api-url", "http://127.0.0.1:1", "--api-key", key]
            unreachable.standardError = FileHandle.nullDevice
            try unreachable.run()
            unreachable.waitUntilExit()
            #expect(unreachable.terminationStatus == 3)
            #expect(try await herald(["endpoints", "frobnicate"], key: key).0 == 64)

            // Credentials from files, so that `ps` never shows them.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("cli"))
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let keyFile = folder.appendingPathComponent("key")
            try Data((key + "\n").utf8).write(to: keyFile)
            let secret = "whsec_" + Base64.encode(randomBytes(count: 32))
            let secretFile = folder.appendingPathComponent("secret")
            try Data((secret + "\n").utf8).write(to: secretFile)
            let (fileStatus, fileJSON) = try await herald(
                ["endpoints", "create", "--url", "https://hooks.example.com/file", "--events", "*", "--secret-file", secretFile.path,
                 "--api-key-file", keyFile.path])
            #expect(fileStatus == 0, "\(fileJSON)")
            #expect(object(fileJSON)["secret"] as? String == secret)
            let headerFile = folder.appendingPathComponent("headers")
            try Data("Authorization=Bearer receiver-token\n\nX-Region=eu\n".utf8).write(to: headerFile)
            let (headersStatus, headersJSON) = try await herald(
                ["endpoints", "create", "--url", "https://hooks.example.com/headers", "--events", "*", "--header-file", headerFile.path,
                 "--header", "X-Region=us"], key: key)
            #expect(headersStatus == 0, "\(headersJSON)")
            #expect(object(headersJSON)["headers"] as? [String: String] == ["Authorization": "[redacted]", "X-Region": "us"])
            let (missingFile, missingText) = try await herald(["endpoints", "list", "--api-key-file", folder.appendingPathComponent("none").path])
            #expect(missingFile == 64 && missingText.contains("--api-key-file"), "exit \(missingFile): \(missingText)")

            // Each command takes the credential it needs: with the README's
            // `export HERALD_API_KEY=…`, operator commands still use the operator token.
            let both = try await herald(["tenants", "list"], environment: ["HERALD_API_KEY": key])
            #expect(both.0 == 0, "exit \(both.0): \(both.1)")
            let tenantOnly = try await herald(["tenants", "list"], environment: ["HERALD_API_KEY": key, "HERALD_OPERATOR_TOKEN": ""])
            #expect(tenantOnly.0 == 64 && tenantOnly.1.contains("HERALD_OPERATOR_TOKEN"), "exit \(tenantOnly.0): \(tenantOnly.1)")
            let neither = try await herald(["endpoints", "list"], environment: ["HERALD_OPERATOR_TOKEN": ""])
            #expect(neither.0 == 64 && neither.1.contains("HERALD_API_KEY"), "exit \(neither.0): \(neither.1)")
        }
    }

    @Test func aWorkerServesHealthReadinessAndMetrics() async throws {
        let receiver = try await TestHTTPServer.start()
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            let port = try TestServices.freePort()
            let worker = try WorkerProcess.start(pipeline, ladder: "200ms", environment: ["HERALD_WORKER_PORT": String(port)])
            defer { worker.stopIfRunning() }
            try await pipeline.publish("client.created", tenant: tenant)
            try await receiver.waitForRequests(1)
            let client = HTTPClient.Client()
            var metrics = ""
            try await pipeline.eventually("the delivery shows in the worker's metrics") {
                guard let response = try? await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(port)/metrics", method: "GET", maxResponseBytes: 1 << 20))
                else { return false }
                metrics = String(decoding: response.body, as: UTF8.self)
                return metrics.contains("herald_deliveries_total{outcome=\"delivered\"} 1")
            }
            #expect(metrics.contains("herald_attempt_duration_seconds_bucket"))
            #expect(metrics.contains("herald_deliveries_in_flight"))
            #expect(try await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(port)/healthz", method: "GET")).status == 200)
            let ready = try await client.execute(HTTPClient.Request(url: "http://127.0.0.1:\(port)/readyz", method: "GET"))
            #expect(ready.status == 200)
            #expect(String(decoding: ready.body, as: UTF8.self).contains("\"database\":true"))
            await client.shutdown()
            worker.signal(SIGTERM)
            #expect(await worker.exitStatus() == 0)
        }
        await receiver.stop()
    }
}
