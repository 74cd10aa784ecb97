import Cryptography
import Foundation
import Migrations
import Postgres
import Testing
import HeraldSupport
import TestSupport

@Suite("PostgreSQL over libpq (real server)")
struct PostgresIntegrationTests {
    @Test func roundTripsTheTypesHeraldUses() async throws {
        try await withTestDatabase { url in
            let connection = try await Connection.connect(to: url, logger: TestServices.logger)
            try await connection.query(
                """
                CREATE TABLE sample (id uuid, name text, small integer, big bigint, flag boolean,
                                     at timestamptz, doc jsonb, tags text[], missing text)
                """)
            let id = UUID()
            let at = Date(timeIntervalSince1970: 1_778_578_200.123456)
            let tags = ["invoice.*", "client.created", "with \"quotes\", commas\\and {braces}"]
            let doc = JSONB(#"{"client": {"name": "Anna Beispiel", "tags": ["Hochzeit", 2026]}}"#)
            let missing: String? = nil
            try await connection.query(
                """
                INSERT INTO sample VALUES (\(id), \("grüße ✓"), \(Int32(-7)), \(Int64.max), \(true), \(at), \(doc), \(tags), \(missing))
                """)
            let row = try #require(try await connection.query("SELECT * FROM sample").first)
            #expect(try row.decode(UUID.self, "id") == id)
            #expect(try row.decode(String.self, "name") == "grüße ✓")
            #expect(try row.decode(Int32.self, "small") == -7)
            #expect(try row.decode(Int64.self, "big") == Int64.max)
            #expect(try row.decode(Bool.self, "flag") == true)
            #expect(abs(try row.decode(Date.self, "at").timeIntervalSince1970 - at.timeIntervalSince1970) < 0.000_001)
            #expect(try row.decode([String].self, "tags") == tags)
            #expect(try row.decode(String?.self, "missing") == nil)
            let parsed = try JSONSerialization.jsonObject(with: Data(try row.decode(JSONB.self, "doc").text.utf8)) as? [String: Any]
            #expect((parsed?["client"] as? [String: Any])?["name"] as? String == "Anna Beispiel")
            #expect(throws: DatabaseError.self) { try row.decode(String.self, "missing") }
            await connection.close()
        }
    }

    /// A caller waiting for a pooled connection used to wait on, cancelled or not, until
    /// one was free. It now returns at once, and the connection freed later goes to the
    /// next caller, not to the one that left.
    @Test func aCancelledAcquireReturnsAtOnceAndLosesNoConnection() async throws {
        let pool = try Pool(url: TestServices.databaseURL, size: 1, logger: TestServices.logger)
        let holding = OneShot<Void>()
        let letGo = OneShot<Void>()
        let holder = Task {
            try await pool.withConnection { _ in
                holding.resume(returning: ())
                try await letGo.wait {}
            }
        }
        try await holding.wait {}
        let cancelled = Task { try await pool.query("SELECT 1") }
        let next = Task { try await pool.query("SELECT 2")[0].decode(Int.self, 0) }
        cancelled.cancel()
        // It returns while the only connection is still held.
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        letGo.resume(returning: ())
        try await holder.value
        #expect(try await next.value == 2)
        #expect(try await pool.query("SELECT 3")[0].decode(Int.self, 0) == 3)
        await pool.close()
    }

    @Test func transactionRollsBackOnError() async throws {
        struct Abort: Error {}
        try await withTestDatabase { url in
            let connection = try await Connection.connect(to: url, logger: TestServices.logger)
            try await connection.query("CREATE TABLE t (n int)")
            await #expect(throws: Abort.self) {
                try await connection.transaction { tx in
                    try await tx.query("INSERT INTO t VALUES (\(1))")
                    throw Abort()
                }
            }
            _ = try await connection.transaction { tx in try await tx.query("INSERT INTO t VALUES (\(2))") }
            let rows = try await connection.query("SELECT n FROM t")
            #expect(try rows.map { try $0.decode(Int.self, 0) } == [2])
            await connection.close()
        }
    }

    @Test func uniqueViolationCarriesSQLStateAndConstraint() async throws {
        try await withTestDatabase { url in
            let connection = try await Connection.connect(to: url, logger: TestServices.logger)
            try await connection.query("CREATE TABLE t (email text CONSTRAINT t_email_key UNIQUE)")
            try await connection.query("INSERT INTO t VALUES (\("anna@example.com"))")
            do {
                try await connection.query("INSERT INTO t VALUES (\("anna@example.com"))")
                Issue.record("expected a unique violation")
            } catch let error as DatabaseError {
                #expect(error.code == .server)
                #expect(error.sqlState == "23505")
                #expect(error.isUniqueViolation)
                #expect(error.constraint == "t_email_key")
                #expect(error.query == "INSERT INTO t VALUES ($1)")
                // The bound value is a payload: it must not leak into the error.
                #expect(!"\(error)".contains("anna@example.com"))
            }
            // The connection stays usable after a failed statement.
            #expect(try await connection.query("SELECT 1").count == 1)
            await connection.close()
        }
    }

    /// A batch's columns as arrays: any number of rows in one statement whose text never
    /// changes, every value exact (quotes, backslashes, braces, the word NULL, JSON, NULLs).
    @Test func columnsCarryABatchExactly() async throws {
        try await withTestDatabase { url in
            let connection = try await Connection.connect(to: url, logger: TestServices.logger)
            try await connection.query("CREATE TABLE t (n bigint, s text, doc json, at timestamptz, flag boolean)")
            let tricky = ["row '1'; --", #"a "quoted" {brace}, comma \ back"#, "NULL", "", "grüße ✓"]
            let count = 70_000
            let numbers = Array(1...count)
            let texts: [String?] = numbers.map { $0 % 7 == 0 ? nil : tricky[$0 % tricky.count] }
            let docs = numbers.map { Array(#"{"n": \#($0), "s": "x\"y\\z ✓"}"#.utf8) }
            let at = Date(timeIntervalSince1970: 1_778_578_200.5)
            let insert: Query = """
                INSERT INTO t SELECT * FROM unnest(\(Column(numbers))::bigint[], \(Column(texts))::text[], \(Column(json: docs))::json[],
                                                   \(Column(numbers.map { at.addingTimeInterval(Double($0)) }))::timestamptz[],
                                                   \(Column(numbers.map { $0 % 2 == 0 }))::bool[])
                """
            #expect(try await connection.query(insert.prepared()).affectedRows == count)
            let check = try await connection.query(
                "SELECT count(*), sum(n), count(s), sum((doc->>'n')::bigint), min(at), count(*) FILTER (WHERE flag) FROM t")
            #expect(try check[0].decode(Int.self, 0) == count)
            #expect(try check[0].decode(Int.self, 1) == count * (count + 1) / 2)
            #expect(try check[0].decode(Int.self, 2) == count - count / 7)
            #expect(try check[0].decode(Int.self, 3) == count * (count + 1) / 2)
            #expect(try check[0].decode(Date.self, 4) == at.addingTimeInterval(1))
            #expect(try check[0].decode(Int.self, 5) == count / 2)
            // Every kind of text, and a NULL (n = 7), read back one by one.
            for n in 1...10 {
                let row = try await connection.query("SELECT s, doc::text FROM t WHERE n = \(n)")
                #expect(try row[0].decode(String?.self, 0) == texts[n - 1])
                #expect(try row[0].decode(String.self, 1) == #"{"n": \#(n), "s": "x\"y\\z ✓"}"#)
            }
            // Identifiers and instants travel in binary; they must name what their text names,
            // NULLs included, at the edges of rounding and of the years Herald writes.
            let ids: [UUID?] = (0..<1_000).map { $0 % 10 == 0 ? nil : UUID() }
            let instants: [Date?] = [
                nil, Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 946_684_800), Date(timeIntervalSince1970: 946_684_799.999_999_6),
                Date(timeIntervalSince1970: -1.000_000_4), Date(timeIntervalSince1970: 1_778_578_200.123_456_5), RFC3339.earliest, RFC3339.latest,
                Date.distantPast, Date.distantFuture, Date(),
            ]
            let agree = try await connection.query(
                """
                SELECT count(*) FILTER (WHERE a IS NOT DISTINCT FROM b), count(a)
                FROM unnest(\(Column(ids))::uuid[], \(Column(ids.map { $0?.postgresText }))::uuid[]) AS v (a, b)
                """)
            #expect(try agree[0].decode(Int.self, 0) == ids.count)
            #expect(try agree[0].decode(Int.self, 1) == ids.count - ids.count / 10)
            let same = try await connection.query(
                """
                SELECT count(*) FILTER (WHERE a IS NOT DISTINCT FROM b), count(a)
                FROM unnest(\(Column(instants))::timestamptz[], \(Column(instants.map { $0?.postgresText }))::timestamptz[]) AS v (a, b)
                """)
            #expect(try same[0].decode(Int.self, 0) == instants.count)
            #expect(try same[0].decode(Int.self, 1) == instants.count - 1)
            #expect(try await connection.query("SELECT count(*) FROM unnest(\(Column(json: [[UInt8]]()))::json[])")[0].decode(Int.self, 0) == 0)
            // The server still checks each document.
            await #expect(throws: DatabaseError.self) {
                try await connection.query("SELECT * FROM unnest(\(Column(json: [Array("{\"a\":".utf8)]))::json[])")
            }
            // Bytes travel as they are, every byte value and the empty string kept apart from
            // NULL; optional documents likewise.
            let blobs: [[UInt8]?] = [Array(0...255), [], nil, Array("\\x00'\"".utf8), [0]]
            let optionalDocs: [[UInt8]?] = [Array(#"{"a": [1, "\u0001"]}"#.utf8), nil, Array("[]".utf8)]
            let exact = try await connection.query(
                """
                SELECT b, encode(b, 'hex'), d::text FROM unnest(\(Column(bytes: blobs))::bytea[], \(Column(json: optionalDocs))::json[]) AS v (b, d)
                """)
            #expect(exact.count == blobs.count)
            for (index, row) in exact.enumerated() {
                #expect(try row.decode(Bytea?.self, 0)?.bytes == blobs[index])
                #expect(try row.decode(String?.self, 1) == blobs[index].map { Hex.encode($0) })
                #expect(try row.decode(String?.self, 2) == (index < optionalDocs.count ? optionalDocs[index].map { String(decoding: $0, as: UTF8.self) } : nil))
            }
            await connection.close()
        }
    }

    /// A prepared statement is made once per session and reused; the session keeps a bounded
    /// number of them, and one that disappeared (`DISCARD ALL`) is made again.
    @Test func preparedStatementsAreReusedBoundedAndRemade() async throws {
        let connection = try await Connection.connect(to: TestServices.databaseURL, logger: TestServices.logger)
        func prepared() async throws -> [String] {
            try await connection.query("SELECT name FROM pg_prepared_statements ORDER BY name").map { try $0.decode(String.self, 0) }
        }
        let double: Query = "SELECT 2 * n FROM unnest(\(Column([1, 2, 3]))::int[]) AS n"
        #expect(try await connection.query(double.prepared()).map { try $0.decode(Int.self, 0) } == [2, 4, 6])
        let made = try await prepared()
        #expect(made.count == 1)
        #expect(try await connection.query(double.prepared()).count == 3)
        #expect(try await prepared() == made)
        // Unprepared statements leave nothing behind.
        #expect(try await connection.query(double).count == 3)
        #expect(try await prepared() == made)
        for n in 0..<40 {
            _ = try await connection.query(Query(stringLiteral: "SELECT \(n)").prepared())
        }
        #expect(try await prepared().count == 32)
        try await connection.query("DISCARD ALL")
        #expect(try await prepared().isEmpty)
        // The session still lists "SELECT 39" as prepared: the failed run prepares it again.
        #expect(try await connection.query(Query(stringLiteral: "SELECT 39").prepared())[0].decode(Int.self, 0) == 39)
        #expect(try await prepared().count == 1)
        // Inside a transaction the first statement found gone aborts it; every other one the
        // session listed is forgotten with it (and one made meanwhile is deallocated), so the
        // transaction run again succeeds whole, each statement prepared once.
        try await connection.query("DISCARD ALL")
        let twice = {
            try await connection.transaction { tx in
                try await tx.query(Query(stringLiteral: "SELECT 38").prepared())[0].decode(Int.self, 0)
                    + tx.query(Query(stringLiteral: "SELECT 39").prepared())[0].decode(Int.self, 0)
            }
        }
        await #expect(throws: DatabaseError.self) { try await twice() }
        #expect(try await twice() == 77)
        let listed = try await connection.query("SELECT statement FROM pg_prepared_statements").map { try $0.decode(String.self, 0) }
        #expect(listed.count == 2, "\(listed)")
        // A migration that changes what a prepared statement returns: prepared again, once.
        try await connection.query("CREATE TEMPORARY TABLE t (a int)")
        try await connection.query("INSERT INTO t VALUES (1)")
        let all: Query = "SELECT * FROM t WHERE a = ANY(\(Column([1]))::int[])"
        #expect(try await connection.query(all.prepared()).columns == ["a"])
        try await connection.query("ALTER TABLE t ADD COLUMN b int")
        #expect(try await connection.query(all.prepared()).columns == ["a", "b"])
        #expect(try await prepared().count == 3, "the first plan's statement is deallocated")
        await connection.close()
    }

    @Test func nulBytesAreRefusedNotTruncated() async throws {
        let connection = try await Connection.connect(to: TestServices.databaseURL, logger: TestServices.logger)
        for query: Query in ["SELECT \("before\u{0}after")::text, \("fine")::text", Query("SELECT \("fine")::text, \("\u{0}")::text").prepared()] {
            let error = await #expect(throws: DatabaseError.self) { try await connection.query(query) }
            #expect(error?.code == .encoding, "\(String(describing: error))")
        }
        // The same connection goes on, with the same statement and text without NUL.
        let row = try #require(try await connection.query(Query("SELECT \("fine")::text, \("grüße")::text").prepared()).first)
        #expect(try row.decode(String.self, 1) == "grüße")
        await connection.close()
    }

    @Test func poolServesMoreCallersThanConnections() async throws {
        let pool = try Pool(url: TestServices.databaseURL, size: 3, logger: TestServices.logger)
        let pids = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await pool.query("SELECT pg_backend_pid(), pg_sleep(0.01)")[0].decode(Int.self, 0)
                }
            }
            var pids = Set<Int>()
            for try await pid in group { pids.insert(pid) }
            return pids
        }
        #expect(pids.count >= 1 && pids.count <= 3)
        await pool.close()
        await #expect(throws: DatabaseError.self) { try await pool.query("SELECT 1") }
    }

    /// A statement through the pool checks an idle connection in its own trip to the
    /// connection's thread: one the server closed meanwhile is replaced, and the caller
    /// never sees it. `withConnection` checks it before lending it.
    @Test(arguments: [true, false]) func aPooledConnectionTheServerClosedIsReplaced(lent: Bool) async throws {
        let pool = try Pool(url: TestServices.databaseURL, size: 1, logger: TestServices.logger)
        let admin = try await Connection.connect(to: TestServices.databaseURL, logger: TestServices.logger)
        let first = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        // Waits (at most 10 s) until the backend has gone.
        let terminated = try await admin.query("SELECT pg_terminate_backend(\(first), 10000)")[0].decode(Bool.self, 0)
        #expect(terminated)
        let second =
            lent
            ? try await pool.withConnection { try await $0.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0) }
            : try await pool.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        #expect(second != first)
        await pool.close()
        await admin.close()
    }

    /// A server that ends an idle session sends a FATAL notice, then closes: a pooled
    /// connection that has read the notice but not yet the close is not lent (before, the
    /// next statement went to a session that was gone). The proxy holds the close back
    /// until the client writes again, so the window is open every time.
    @Test func aSessionWhoseEndWasAnnouncedIsNotLentBeforeItsClose() async throws {
        let direct = try #require(URLComponents(string: TestServices.databaseURL))
        let proxy = try await HeldCloseProxy.start(toHost: direct.host ?? "127.0.0.1", port: direct.port ?? 5432)
        var viaProxy = direct
        viaProxy.host = "127.0.0.1"
        viaProxy.port = proxy.port
        let pool = try Pool(url: try #require(viaProxy.string), size: 1, logger: TestServices.logger)
        let admin = try await Connection.connect(to: TestServices.databaseURL, logger: TestServices.logger)
        let first = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        #expect(try await admin.query("SELECT pg_terminate_backend(\(first), 10000)")[0].decode(Bool.self, 0))
        let deadline = ContinuousClock.now + .seconds(10)
        while proxy.serverCloses < 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(proxy.serverCloses == 1)
        let second = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        #expect(second != first)
        await pool.close()
        await admin.close()
        await proxy.close()
    }

    /// A pool that asks for generic plans plans a prepared statement once per session; by
    /// default PostgreSQL plans it again for each of its first five executions at least.
    @Test(arguments: [true, false]) func genericPlansAreAPoolsChoice(generic: Bool) async throws {
        let pool = try Pool(url: TestServices.databaseURL, size: 1, genericPlans: generic, logger: TestServices.logger)
        for n in 1...3 {
            let probe: Query = "SELECT \(n)::int + 1 AS herald_plan_probe"
            #expect(try await pool.query(probe.prepared())[0].decode(Int.self, 0) == n + 1)
        }
        let plans = try await pool.query(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%herald_plan_probe%'")
        #expect(plans.count == 1)
        let (genericPlans, customPlans) = (try plans[0].decode(Int.self, 0), try plans[0].decode(Int.self, 1))
        #expect(generic ? (genericPlans, customPlans) == (3, 0) : (genericPlans, customPlans) == (0, 3))
        await pool.close()
    }

    /// A connection handed back inside a transaction (its caller's body began one and
    /// returned) is closed, not lent to the next caller with the transaction still open.
    @Test func aConnectionLeftInATransactionIsNotLentAgain() async throws {
        let pool = try Pool(url: TestServices.databaseURL, size: 1, logger: TestServices.logger)
        let first = try await pool.withConnection { connection in
            try await connection.query("BEGIN")
            return try await connection.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        }
        let next = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        #expect(next != first)
        await pool.close()
    }

    @Test func badCredentialsFailClearly() async throws {
        do {
            _ = try await Connection.connect(to: "postgres://postgres@127.0.0.1:1/herald", logger: TestServices.logger)
            Issue.record("expected a connection failure")
        } catch let error as DatabaseError {
            #expect(error.code == .connectionFailed)
            #expect(error.message?.isEmpty == false)
        }
    }
}

@Suite("Migrations (real server)")
struct MigrationIntegrationTests {
    var migrations: [Migration] {
        get throws { try Migration.load(directory: TestServices.repositoryRoot.appendingPathComponent("migrations").path) }
    }

    @Test func appliedTwiceIsAppliedOnce() async throws {
        try await withTestDatabase { url in
            let migrator = Migrator(databaseURL: url, migrations: try migrations, logger: TestServices.logger)
            let first = try await migrator.run()
            let second = try await migrator.run()
            #expect(first == (try migrations.map(\.name)))
            #expect(second.isEmpty)
            let connection = try await Connection.connect(to: url, logger: TestServices.logger)
            let recorded = try await connection.query("SELECT count(*) FROM schema_migrations")
            #expect(try recorded[0].decode(Int.self, 0) == (try migrations.count))
            let tables = try await connection.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
            let names = try tables.map { try $0.decode(String.self, 0) }
            for table in ["tenants", "endpoints", "events", "deliveries", "delivery_attempts"] {
                #expect(names.contains(table))
            }
            await connection.close()
        }
    }

    @Test func concurrentRunsBothSucceed() async throws {
        try await withTestDatabase { url in
            let migrator = Migrator(databaseURL: url, migrations: try migrations, logger: TestServices.logger)
            async let a = migrator.run()
            async let b = migrator.run()
            let (first, second) = try await (a, b)
            // The advisory lock serialises them: one applies everything, the other nothing.
            #expect((first + second).sorted() == (try migrations.map(\.name)).sorted())
            #expect(first.isEmpty || second.isEmpty)
        }
    }

    @Test func anEditedAppliedMigrationIsRefused() async throws {
        try await withTestDatabase { url in
            let original = try Migration(name: "0001_t.sql", sql: "CREATE TABLE t (n int);")
            try await Migrator(databaseURL: url, migrations: [original], logger: TestServices.logger).run()
            let edited = try Migration(name: "0001_t.sql", sql: "CREATE TABLE t (n bigint);")
            await #expect(throws: MigrationError(.changedAfterApply, file: "0001_t.sql")) {
                try await Migrator(databaseURL: url, migrations: [edited], logger: TestServices.logger).run()
            }
        }
    }

    @Test func aFailingMigrationLeavesNoTrace() async throws {
        try await withTestDatabase { url in
            let good = try Migration(name: "0001_good.sql", sql: "CREATE TABLE good (n int);")
            let bad = try Migration(name: "0002_bad.sql", sql: "CREATE TABLE half (n int); SELECT no_such_function();")
            await #expect(throws: DatabaseError.self) {
                try await Migrator(databaseURL: url, migrations: [good, bad], logger: TestServices.logger).run()
            }
            let connection = try await Connection.connect(to: url, logger: TestServices.logger)
            let versions = try await connection.query("SELECT version FROM schema_migrations").map { try $0.decode(Int.self, 0) }
            #expect(versions == [1])
            let half = try await connection.query("SELECT to_regclass('half') IS NULL")
            #expect(try half[0].decode(Bool.self, 0))
            await connection.close()
        }
    }
}
