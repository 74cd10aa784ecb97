import HeraldEvents
import FanOut
import Foundation
import Testing
import TestSupport
import Topology
import HeraldSupport

/// The `herald api` executable as a child process on a free port, with the pipeline's
/// queues and a 200 ms ladder; `stop()` (in a `defer`) kills it if it still runs.
struct APIProcess {
    let process = Process()
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    /// `environment` adds to (or overrides) the settings it starts with.
    init(_ pipeline: Pipeline, environment extra: [String: String] = [:]) throws {
        port = try TestServices.freePort()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
        process.arguments = ["api", "--queue-prefix", pipeline.topology.prefix]
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_DATABASE_URL"] = pipeline.databaseURL
        environment["HERALD_AMQP_URL"] = TestServices.amqpURL
        environment["HERALD_LOG_LEVEL"] = "error"
        environment["HERALD_API_PORT"] = "\(port)"
        environment["HERALD_DEFER_DELAY"] = "\(pipeline.topology.deferDelay.milliseconds)ms"
        environment["HERALD_RETRY_LADDER"] = "200ms"
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        try process.run()
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// The `herald worker` executable as a child process, for the tests that kill it.
struct WorkerProcess {
    let process: Process

    /// `environment` adds to (or overrides) the settings below.
    static func start(_ pipeline: Pipeline, ladder: String, environment extra: [String: String] = [:]) throws -> WorkerProcess {
        let process = Process()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
        process.arguments = ["worker", "--queue-prefix", pipeline.topology.prefix, "--retry-ladder", ladder]
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_DATABASE_URL"] = pipeline.databaseURL
        environment["HERALD_AMQP_URL"] = TestServices.amqpURL
        environment["HERALD_LOG_LEVEL"] = "error"
        environment["HERALD_WORKER_CONCURRENCY"] = "20"
        environment["HERALD_ENDPOINT_CACHE_TTL"] = "200ms"
        // The receiver is on loopback, which the address guard refuses unless allow-listed.
        environment["HERALD_ALLOWED_ADDRESSES"] = "127.0.0.0/8"
        environment["HERALD_WORKER_PORT"] = "0"
        // Its declarations must match the harness's (a differing queue argument fails with 406).
        environment["HERALD_DEFER_DELAY"] = "\(pipeline.topology.deferDelay.milliseconds)ms"
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        try process.run()
        return WorkerProcess(process: process)
    }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// SIGKILL unless it has exited: a test that fails must not leave a worker holding
    /// the test runner's output open.
    func stopIfRunning() {
        if process.isRunning { signal(SIGKILL) }
    }

    /// Waits for the process to exit and returns its status.
    func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
    }
}

@Suite("Worker processes")
struct WorkerProcessTests {
    @Test func aWorkerKilledMidBatchAndRestartedLosesNoDelivery() async throws {
        let receiver = try await TestHTTPServer.start { _ in .delayed(.milliseconds(20), .status(200)) }
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            let endpoint = try await pipeline.endpoint(tenant: tenant, url: receiver.url, format: .envelope)
            let first = try WorkerProcess.start(pipeline, ladder: "200ms,400ms,800ms")
            defer { first.stopIfRunning() }
            let count = 300
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<count {
                    group.addTask { try await pipeline.publish("client.created", tenant: tenant, id: "evt_kill_\(n)") }
                }
                try await group.waitForAll()
            }
            // Kill it while it holds a batch of messages in flight.
            try await receiver.waitForRequests(60)
            first.signal(SIGKILL)
            #expect(await first.exitStatus() == SIGKILL)
            let second = try WorkerProcess.start(pipeline, ladder: "200ms,400ms,800ms")
            defer { second.stopIfRunning() }

            func receivedIDs() -> [String: Set<String>] {
                var ids: [String: Set<String>] = [:]
                for request in receiver.requests {
                    guard let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
                        let id = object["id"] as? String
                    else { continue }
                    ids[id, default: []].insert(request.header("x-herald-request-id") ?? "")
                }
                return ids
            }
            try await pipeline.eventually(timeout: .seconds(60), "every event reached the receiver") { receivedIDs().count == count }
            try await pipeline.eventually(timeout: .seconds(60), "every delivery is recorded as delivered") {
                try await pipeline.deliveries(endpoint: endpoint).filter { $0.status == "delivered" }.count == count
            }
            let ids = receivedIDs()
            #expect(Set(ids.keys).isSuperset(of: Set((0..<count).map { "evt_kill_\($0)" })))
            // A repeated request carries the same request id.
            #expect(ids.values.allSatisfy { $0.count == 1 })
            #expect(try await pipeline.deliveries(endpoint: endpoint).count == count)

            // The restarted worker is the only one left: events published now prove it consumes
            // (and so has its signal handlers installed) before it is asked to stop.
            for n in 0..<5 { try await pipeline.publish("client.created", tenant: tenant, id: "evt_after_\(n)") }
            try await pipeline.eventually(timeout: .seconds(60), "the restarted worker delivers new events") {
                try await pipeline.deliveries(endpoint: endpoint).filter { $0.status == "delivered" }.count == count + 5
            }
            // SIGTERM stops the worker gracefully with status 0.
            second.signal(SIGTERM)
            let status = await second.exitStatus()
            #expect(status == 0, "exit status \(status)")
        }
        await receiver.stop()
    }
}
