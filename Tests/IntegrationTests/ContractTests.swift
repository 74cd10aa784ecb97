import Foundation
import HTTPClient
import Testing
import TestSupport

/// The API against its own OpenAPI document, as an outsider generates requests from it:
/// schemathesis (installed by scripts/services) with a fixed seed and a bounded number of
/// examples, as a tenant. No answer may be a 5xx or differ from the document.
@Suite("Contract")
struct ContractTests {
    static let schemathesis = TestServices.repositoryRoot.appendingPathComponent(".services/venv/bin/schemathesis")

    @Test func schemathesisFindsNoServerErrorAndNoSchemaViolation() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.schemathesis.path),
            "schemathesis is missing: scripts/services start installs it under .services/venv")
        // No worker: the endpoints it creates name hosts that deliveries must never try.
        try await APIHarness.run(Pipeline.Options(startWorker: false)) { api in
            let tenant = try await api.tenant()
            let process = Process()
            process.executableURL = Self.schemathesis
            process.arguments = [
                "run", "\(api.base)/v1/openapi.json", "-H", "Authorization: Bearer \(tenant.key)",
                "--checks", "not_a_server_error,response_schema_conformance", "--seed", "1", "--max-examples", "20", "--workers", "1",
                "--request-timeout", "10",
            ]
            var environment = ProcessInfo.processInfo.environment
            environment["NO_COLOR"] = "1"
            // Its settings folder and examples database stay out of the home folder.
            environment["HOME"] = FileManager.default.temporaryDirectory.path
            process.environment = environment
            process.currentDirectoryURL = FileManager.default.temporaryDirectory
            let (status, text) = try await process.runToCompletion()
            #expect(status == 0, "schemathesis found failures:\n\(text.suffix(6000))")
            let summary = try #require(text.split(separator: "\n").first { $0.contains(" generated, ") }, "no summary in:\n\(text.suffix(2000))")
            #expect(summary.contains("passed") && !summary.contains("failed"), "\(summary)")
        }
    }

    /// The committed document is a valid OpenAPI 3.1 description (openapi-spec-validator).
    @Test func theCommittedDocumentIsValidOpenAPI() async throws {
        let validator = TestServices.repositoryRoot.appendingPathComponent(".services/venv/bin/openapi-spec-validator")
        try #require(
            FileManager.default.isExecutableFile(atPath: validator.path),
            "openapi-spec-validator is missing: scripts/services start installs it under .services/venv")
        let process = Process()
        process.executableURL = validator
        process.arguments = [TestServices.repositoryRoot.appendingPathComponent("Sources/API/openapi.json").path]
        let (status, output) = try await process.runToCompletion()
        #expect(status == 0, "\(output.suffix(4000))")
    }

    /// A client generated from the served document (openapi-python-client) drives the
    /// running API as a tenant's developer would: every call typed as the document says.
    @Test func aClientGeneratedFromTheDocumentWorksAgainstTheAPI() async throws {
        let venv = TestServices.repositoryRoot.appendingPathComponent(".services/venv/bin")
        let generator = venv.appendingPathComponent("openapi-python-client")
        try #require(
            FileManager.default.isExecutableFile(atPath: generator.path),
            "openapi-python-client is missing: scripts/services start installs it under .services/venv")
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("client"))
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let served = try await api.client.execute(HTTPClient.Request(url: api.base + "/v1/openapi.json", method: "GET", maxResponseBytes: 4 << 20))
            #expect(served.status == 200)
            let document = folder.appendingPathComponent("openapi.json")
            try Data(served.body).write(to: document)

            let generate = Process()
            generate.executableURL = generator
            generate.arguments = ["generate", "--path", document.path, "--meta", "none", "--output-path", folder.appendingPathComponent("herald_client").path]
            generate.currentDirectoryURL = folder
            let (generated, generateOutput) = try await generate.runToCompletion()
            #expect(generated == 0, "\(generateOutput.suffix(3000))")

            let run = Process()
            run.executableURL = venv.appendingPathComponent("python")
            run.arguments = [TestServices.repositoryRoot.appendingPathComponent("Tests/Contract/client_round_trip.py").path]
            var environment = ProcessInfo.processInfo.environment
            environment["PYTHONPATH"] = folder.path
            environment["HERALD_BASE_URL"] = api.base
            environment["HERALD_OPERATOR_TOKEN"] = APIHarness.operatorToken
            environment["HERALD_RECEIVER_URL"] = "http://localhost:\(receiver.port)/in"
            run.environment = environment
            let (status, output) = try await run.runToCompletion()
            #expect(status == 0 && output.contains("client round trip:"), "\(output.suffix(4000))")
        }
        await receiver.stop()
    }
}
