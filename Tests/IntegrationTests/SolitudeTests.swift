import Foundation
import Operations
import Postgres
import Testing
import TestSupport
import Worker

/// `HERALD_DELIVER_BEFORE_STORE=auto` on real heartbeats: a worker counts on being alone
/// only while no other replica can consume.
@Suite("Solitude (real database)")
struct SolitudeTests {
    /// A replica with its heartbeat, reading the others every 100 ms.
    struct Replica {
        let replicas: Replicas
        let task: Task<Void, any Error>

        init(_ pipeline: Pipeline) {
            let identity = Heartbeat.Identity.current(version: "test", concurrency: 10)
            let replicas = Replicas(replica: identity.id, interval: .seconds(1), look: .milliseconds(100), countsOnSolitude: true)
            let heartbeat = Heartbeat(
                pool: pipeline.pool, identity: identity, interval: .seconds(1), logger: TestServices.logger,
                replicas: { live, written, asked in
                    replicas.update(
                        consuming: live.filter(\.consuming).map(\.id), live: live.map(\.id), alone: live.filter(\.alone).map(\.id),
                        announced: written.alone, asked: asked)
                }
            ) { Heartbeats.Beat(inFlight: 0, consuming: true, alone: replicas.alone) }
            self.replicas = replicas
            task = Task { try await heartbeat.run() }
        }

        func stop() async {
            task.cancel()
            _ = await task.result
        }
    }

    @Test func aReplicaThatStartsIsSeenByTheOneAloneBeforeItConsumes() async throws {
        try await Pipeline.run(Pipeline.Options(startWorker: false)) { pipeline in
            let a = Replica(pipeline)
            #expect(try await a.replicas.cleared())
            try await pipeline.eventually("the first replica is alone") { a.replicas.aloneSince() != nil }
            let b = Replica(pipeline)
            #expect(try await b.replicas.cleared(), "cleared by a look, not by the time limit")
            #expect(a.replicas.aloneSince() == nil, "the first saw the second before it was cleared to consume")
            #expect(b.replicas.aloneSince() == nil)
            // The first stops (its row is removed): the second is alone from then on.
            await a.stop()
            let rows = try await pipeline.pool.query("SELECT count(*) FROM worker_heartbeats")
            #expect(try rows[0].decode(Int.self, 0) == 1)
            try await pipeline.eventually("the second replica is alone") { b.replicas.aloneSince() != nil }
            await b.stop()
        }
    }
}
