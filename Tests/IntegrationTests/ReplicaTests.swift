import Foundation
import HTTPClient
import HeraldSupport
import Postgres
import Testing
import TestSupport
import Topology

/// The API reading the delivery log from a streaming replica (`HERALD_DATABASE_READ_URL`)
/// while the worker writes to the primary.
@Suite("Reads from a replica (real servers)")
struct ReplicaTests {
    /// A delivery the worker recorded on the primary appears in `GET /v1/deliveries` once
    /// the replica has replayed it, and not before: with the replica's replay paused, the
    /// primary has the second delivery and the API still lists one; resumed, it lists two.
    /// Keys and endpoints (what decides a write) are read from the primary meanwhile.
    @Test func theDeliveryLogIsReadFromTheReplica() async throws {
        let receiver = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            var replica = try #require(URLComponents(string: pipeline.databaseURL))
            let replicaServer = try #require(URLComponents(string: TestServices.replicaDatabaseURL))
            replica.host = replicaServer.host
            replica.port = replicaServer.port
            let replicaURL = try #require(replica.string)
            // The test's database was created on the primary; the replica replays it.
            try await pipeline.eventually("the replica has the test's database") {
                guard let connection = try? await Postgres.Connection.connect(to: replicaURL, logger: TestServices.logger) else { return false }
                await connection.close()
                return true
            }
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            let operatorToken = "operator-token-for-the-replica-test"
            let api = try APIProcess(pipeline, environment: ["HERALD_OPERATOR_TOKEN": operatorToken, "HERALD_DATABASE_READ_URL": replicaURL])
            defer { api.stop() }
            let client = HTTPClient.Client()
            try await pipeline.eventually("the API answers") {
                (try? await client.execute(HTTPClient.Request(url: "\(api.url)/readyz", method: "GET")).status) == 200
            }
            let keyAnswer = try await client.execute(
                HTTPClient.Request(
                    url: "\(api.url)/v1/tenants/\(tenant.uuidString.lowercased())/keys", method: "POST",
                    headers: [("Authorization", "Bearer \(operatorToken)"), ("Content-Type", "application/json")], body: Array(#"{"name":"r"}"#.utf8)))
            let key = try #require(((try? JSONSerialization.jsonObject(with: Data(keyAnswer.body))) as? [String: Any])?["key"] as? String)
            /// The deliveries the API lists, or nil when it did not answer 200 (the replica
            /// may not have replayed the test's tables yet).
            func listed() async throws -> Int? {
                let answer = try await client.execute(
                    HTTPClient.Request(
                        url: "\(api.url)/v1/deliveries?endpoint_id=\(endpoint.uuidString.lowercased())", method: "GET",
                        headers: [("Authorization", "Bearer \(key)")], maxResponseBytes: 1 << 20))
                guard answer.status == 200 else { return nil }
                let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
                return (object?["items"] as? [Any])?.count
            }
            func deliveredOnPrimary() async throws -> Int {
                try await pipeline.pool.query("SELECT count(*) FROM deliveries WHERE status = 'delivered'")[0].decode(Int.self, 0)
            }

            // The replica has the schema and the endpoint before anything is asked of it.
            try await pipeline.eventually("the replica has replayed the endpoint") {
                guard let connection = try? await Postgres.Connection.connect(to: replicaURL, logger: TestServices.logger) else { return false }
                let count = try? await connection.query("SELECT count(*) FROM endpoints WHERE id = \(endpoint)")[0].decode(Int.self, 0)
                await connection.close()
                return count == 1
            }
            _ = try await pipeline.publish("client.created", tenant: tenant)
            try await pipeline.eventually("the first delivery is listed") { try await listed() == 1 }

            let standby = try await Postgres.Connection.connect(to: replicaURL, logger: TestServices.logger)
            _ = try await standby.query("SELECT pg_wal_replay_pause()")
            do {
                _ = try await pipeline.publish("client.created", tenant: tenant)
                try await pipeline.eventually("the primary has the second delivery") { try await deliveredOnPrimary() == 2 }
                #expect(try await listed() == 1, "the list came from the primary, not the paused replica")
            } catch {
                _ = try? await standby.query("SELECT pg_wal_replay_resume()")
                throw error
            }
            _ = try await standby.query("SELECT pg_wal_replay_resume()")
            await standby.close()
            try await pipeline.eventually("the replica caught up") { try await listed() == 2 }
            await client.shutdown()
        }
        await receiver.stop()
    }
}
