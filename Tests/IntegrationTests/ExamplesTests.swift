import Foundation
import HTTPClient
import HeraldSupport
import Postgres
import Testing
import TestSupport
import Topology

/// The README's runnable example, run as it is written, so it cannot drift from the CLI.
@Suite("The README's examples (real processes)")
struct ExamplesTests {
    /// The block after the README's `ExamplesTests runs this block` marker.
    static func readmeBlock() throws -> String {
        let readme = try String(contentsOf: TestServices.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- ExamplesTests runs this block"))
        let rest = readme[marker.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "\n```"))
        return String(rest[open.upperBound..<close.lowerBound])
    }

    /// "A first webhook": with a worker and the API running, the block creates a tenant,
    /// a key and an endpoint at `herald listen`, sends a test event and waits for the
    /// receiver, which prints the webhook with a valid signature; the delivery log lists it.
    @Test func theFirstWebhookRunsAsWritten() async throws {
        let block = try Self.readmeBlock()
        #expect(block.contains("herald listen") && block.contains("--field id"))
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let worker = try WorkerProcess.start(pipeline, ladder: "200ms")
            defer { worker.stopIfRunning() }
            let operatorToken = "operator-token-for-the-readme"
            let api = try APIProcess(
                pipeline, environment: ["HERALD_OPERATOR_TOKEN": operatorToken, "HERALD_ALLOW_HTTP": "true", "HERALD_ALLOWED_HOSTS": "127.0.0.1"])
            defer { api.stop() }
            let binaries = TestServices.repositoryRoot.appendingPathComponent(".build/debug")
            let client = HTTPClient.Client()
            try await pipeline.eventually("the API answers") {
                (try? await client.execute(HTTPClient.Request(url: "\(api.url)/readyz", method: "GET")).status) == 200
            }
            await client.shutdown()

            // What a reader has after the demo: the binaries on PATH, the API's address and
            // the operator token; nothing else.
            var shell = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HERALD_") }
            shell["PATH"] = binaries.path + ":" + (shell["PATH"] ?? "/usr/bin:/bin")
            shell["HERALD_API_URL"] = api.url
            shell["HERALD_OPERATOR_TOKEN"] = operatorToken
            let (status, output) = try await Self.run(block, environment: shell, timeout: .seconds(90))
            #expect(status == 0, "the block failed:\n\(output)")
            #expect(output.contains("POST /hooks"), "the receiver printed the webhook:\n\(output)")
            #expect(output.contains("signature: valid (standard-webhooks)"), "\(output)")
            #expect(output.contains("client.created"))
            // The delivery log's table: a header and the delivery.
            let table = output.split(separator: "\n").drop { !$0.hasPrefix("ID") }
            #expect(table.count == 2, "one delivery listed:\n\(output)")
            try await pipeline.eventually("the delivery is recorded as delivered") {
                try await pipeline.pool.query("SELECT count(*) FROM deliveries WHERE status = 'delivered'")[0].decode(Int.self, 0) == 1
            }
        }
    }

    /// Runs `script` with bash (`-euo pipefail`); on its exit, and on the timeout's
    /// SIGTERM, its background jobs (the receiver) are killed with it.
    static func run(_ script: String, environment: [String: String], timeout: Duration) async throws -> (Int32, String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        let guarded = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\ntrap 'exit 143' TERM\n" + script
        process.arguments = ["-euo", "pipefail", "-c", guarded]
        process.environment = environment
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let pid = process.processIdentifier
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            kill(pid, SIGTERM)
        }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume()
            }
        }
        watchdog.cancel()
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }
}
