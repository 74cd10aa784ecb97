import Delivery
import FanOut
import Foundation
import HTTPClient
import HeraldEvents
import Synchronization
import Testing
import TestSupport

/// What a person at the terminal gets from `herald`: a description on every command, the
/// keys a tenant has, the configuration in force, and shell completion.
@Suite("CLI (the built binary)")
struct CLITests {
    static func herald(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HERALD_") }
        for (name, value) in extra { environment[name] = value }
        process.environment = environment
        return try await process.runToCompletion()
    }

    @Test func everyCommandSaysWhatItDoesInOneLine() async throws {
        let (status, output) = try await Self.herald(["--experimental-dump-help"])
        #expect(status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        var missing: [String] = []
        var count = 0
        func walk(_ command: [String: Any], path: String) {
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                let name = "\(path) \(sub["commandName"] as? String ?? "?")"
                count += 1
                if (sub["abstract"] as? String ?? "").isEmpty && name != "herald help" { missing.append(name) }
                walk(sub, path: name)
            }
        }
        walk(try #require(root["command"] as? [String: Any]), path: "herald")
        #expect(count > 40)
        #expect(missing.isEmpty, "without a description: \(missing)")
    }

    @Test func clientCommandsOfferOnlyClientFlags() async throws {
        let (status, output) = try await Self.herald(["endpoints", "list", "--help"])
        #expect(status == 0)
        #expect(output.contains("--api-url") && output.contains("--json"))
        for serverFlag in ["--database-url", "--amqp-url", "--queue-prefix", "--retry-ladder", "--set"] {
            #expect(!output.contains(serverFlag), "\(serverFlag) is listed for a client command")
        }
    }

    @Test func configShowsEachValueWhereItCameFromAndMasksSecrets() async throws {
        let (status, output) = try await Self.herald(
            ["config", "--json", "--set", "HERALD_RETRY_LADDER=1m,2m"],
            environment: [
                "HERALD_HTTP_TIMEOUT": "5s", "HERALD_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                "HERALD_DATABASE_URL": "postgres://herald:Db-Pa55@db.internal:5432/herald", "HERALD_OPERATOR_TOKEN": "operator-token-0123456789",
            ])
        #expect(status == 0, "\(output)")
        let items = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: String]])
        let byName = Dictionary(uniqueKeysWithValues: items.compactMap { item in item["name"].map { ($0, item) } })
        #expect(byName["HERALD_RETRY_LADDER"] == ["name": "HERALD_RETRY_LADDER", "value": "1m,2m", "source": "flag"])
        #expect(byName["HERALD_HTTP_TIMEOUT"]?["source"] == "environment" && byName["HERALD_HTTP_TIMEOUT"]?["value"] == "5s")
        #expect(byName["HERALD_WORKER_CONCURRENCY"] == ["name": "HERALD_WORKER_CONCURRENCY", "value": "500", "source": "default"])
        #expect(byName["HERALD_SECRET_KEY"]?["value"] == "********")
        #expect(byName["HERALD_OPERATOR_TOKEN"]?["value"] == "********")
        #expect(byName["HERALD_DATABASE_URL"]?["value"] == "postgres://herald:****@db.internal:5432/herald")
        #expect(!output.contains("Db-Pa55") && !output.contains("operator-token-0123456789") && !output.contains("MDEyMzQ1"))
        // The settings file: under the environment, over the defaults; a bad line is named
        // by its number, never by its value.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("herald.env")
        try Data(
            """
            # Herald, production
            HERALD_HTTP_TIMEOUT=7s
            export HERALD_WORKER_CONCURRENCY=9
            HERALD_SECRET_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

            """.utf8
        ).write(to: file)
        let (fileStatus, fileOutput) = try await Self.herald(
            ["config", "--json"], environment: ["HERALD_CONFIG_FILE": file.path, "HERALD_WORKER_CONCURRENCY": "11"])
        #expect(fileStatus == 0, "\(fileOutput)")
        let fromFile = try #require(try JSONSerialization.jsonObject(with: Data(fileOutput.utf8)) as? [[String: String]])
        let fileByName = Dictionary(uniqueKeysWithValues: fromFile.compactMap { item in item["name"].map { ($0, item) } })
        #expect(fileByName["HERALD_HTTP_TIMEOUT"]?["value"] == "7s" && fileByName["HERALD_HTTP_TIMEOUT"]?["source"] == "file")
        #expect(fileByName["HERALD_WORKER_CONCURRENCY"]?["value"] == "11" && fileByName["HERALD_WORKER_CONCURRENCY"]?["source"] == "environment")
        #expect(fileByName["HERALD_SECRET_KEY"]?["value"] == "********" && fileByName["HERALD_SECRET_KEY"]?["source"] == "file")
        try Data("HERALD_HTTP_TIMEOUT=7s\nHERALD_NOT_A_SETTING=hunter2\n".utf8).write(to: file)
        let (wrongStatus, wrongOutput) = try await Self.herald(["config"], environment: ["HERALD_CONFIG_FILE": file.path])
        #expect(wrongStatus != 0 && wrongOutput.contains("line 2") && !wrongOutput.contains("hunter2"), "\(wrongOutput)")

        // A value no server would start with is an error here too, naming the variable.
        let (badStatus, badOutput) = try await Self.herald(["config"], environment: ["HERALD_WORKER_CONCURRENCY": "lots"])
        #expect(badStatus != 0 && badOutput.contains("HERALD_WORKER_CONCURRENCY"), "\(badOutput)")
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func shellCompletionScriptsNameTheCommands(_ shell: String) async throws {
        let (status, output) = try await Self.herald(["--generate-completion-script", shell])
        #expect(status == 0)
        for command in ["endpoints", "deliveries", "keys", "config"] { #expect(output.contains(command), "\(shell): \(command)") }
    }

    @Test func keysAreListedWithoutTheKeysThemselvesOperatorAndTenantAlike() async throws {
        try await APIHarness.run { api in
            let studio = try await api.tenant("Studio")
            let other = try await api.tenant("Other")
            let second = try await api.call("POST", "/v1/tenants/\(studio.id)/keys", token: APIHarness.operatorToken, body: ["name": "zapier"])
            let secondID = try #require(second.string("id"))
            #expect(try await api.call("DELETE", "/v1/keys/\(secondID)", token: studio.key).status == 204)

            let listed = try await api.call("GET", "/v1/tenants/\(studio.id)/keys", token: APIHarness.operatorToken)
            #expect(listed.status == 200)
            #expect(listed.items.count == 2)
            #expect(listed.items.allSatisfy { $0["key"] == nil && $0["tenant_id"] as? String == studio.id })
            #expect(listed.items.first { $0["id"] as? String == secondID }?["revoked_at"] is String)
            // A tenant sees its own keys, never another's; the operator route is not for tenants.
            let own = try await api.call("GET", "/v1/keys", token: studio.key)
            #expect(Set(own.items.compactMap { $0["id"] as? String }) == Set(listed.items.compactMap { $0["id"] as? String }))
            #expect(try await api.call("GET", "/v1/keys", token: other.key).items.count == 1)
            #expect(try await api.call("GET", "/v1/tenants/\(studio.id)/keys", token: other.key).status == 403)
            #expect(try await api.call("GET", "/v1/tenants/\(UUID())/keys", token: APIHarness.operatorToken).status == 404)

            // The CLI: the operator names the tenant; a tenant lists its own.
            let (status, output) = try await api.cli(["keys", "list", "--tenant", studio.id])
            #expect(status == 0, "\(output)")
            #expect(output.contains(secondID) && output.contains("zapier"))
            let (ownStatus, ownOutput) = try await api.cli(["keys", "list"], key: other.key)
            #expect(ownStatus == 0 && !ownOutput.contains(secondID), "\(ownOutput)")

            // A server setting in the environment the API would refuse (an operator token too
            // short) does not stop a tenant's command; an error follows --json.
            let (tenantStatus, tenantOutput) = try await api.cli(["endpoints", "list"], key: studio.key, environment: ["HERALD_OPERATOR_TOKEN": "short"])
            #expect(tenantStatus == 0, "\(tenantOutput)")
            let (missingStatus, missingOutput) = try await api.cli(["endpoints", "show", UUID().uuidString], key: studio.key)
            #expect(missingStatus == 1)
            let line = try #require(missingOutput.split(separator: "\n").last { $0.hasPrefix("{") }, "\(missingOutput)")
            let error = try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["error"] as? [String: Any])
            #expect(error["status"] as? Int == 404 && error["detail"] is String)
        }
    }

    /// A request Herald signed, saved as received, checks out under both of Herald's
    /// signatures; one changed byte, the wrong secret or a missing header does not, and the
    /// reason is said.
    @Test func verifyChecksASavedRequestAsAReceiverWould() async throws {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let endpoint = Endpoint(id: UUID(), tenantID: UUID(), url: "https://hooks.example.com/in", eventTypes: ["*"], secret: secret)
        let event = Event(id: "evt_verify", type: "invoice.paid", tenantID: endpoint.tenantID, data: Array(#"{"total":"1200.00"}"#.utf8))
        let request = WebhookRequest.make(event: event, endpoint: endpoint, deliveryID: UUID(), requestID: UUID(), now: Date(), settings: RequestSettings())
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func save(_ name: String, headers: [(name: String, value: String)], body: [UInt8]) throws -> String {
            let head = "POST /in HTTP/1.1\r\n" + headers.map { "\($0.name): \($0.value)\r\n" }.joined() + "\r\n"
            let file = folder.appendingPathComponent(name)
            try Data(Array(head.utf8) + body).write(to: file)
            return file.path
        }
        let good = try save("good", headers: request.headers, body: request.body)
        for scheme in ["standard-webhooks", "herald"] {
            let (status, output) = try await Self.herald(["verify", good, "--scheme", scheme, "--secret", secret])
            #expect(status == 0 && output.hasPrefix("valid"), "\(scheme): \(output)")
        }
        var tampered = request.body
        tampered[tampered.count - 3] = UInt8(ascii: "9")
        let changed = try save("changed", headers: request.headers, body: tampered)
        let (changedStatus, changedOutput) = try await Self.herald(["verify", changed, "--secret", secret])
        #expect(changedStatus == 1 && changedOutput.contains("invalid"), "\(changedOutput)")
        let (wrongStatus, _) = try await Self.herald(["verify", good, "--secret", "whsec_" + String(repeating: "A", count: 32)])
        #expect(wrongStatus == 1)
        let bare = try save("bare", headers: request.headers.filter { !$0.name.lowercased().hasPrefix("webhook-") }, body: request.body)
        let (bareStatus, bareOutput) = try await Self.herald(["verify", bare, "--secret", secret])
        #expect(bareStatus == 1 && bareOutput.contains("webhook-"), "\(bareOutput)")
        // An old request's age counts only when asked.
        let (ageStatus, ageOutput) = try await Self.herald(["verify", good, "--secret", secret, "--tolerance", "60"])
        #expect(ageStatus == 0, "a request signed a moment ago is within a minute: \(ageOutput)")
    }

    /// `herald listen` prints what arrives, with the signature's verdict, and answers 204.
    @Test func listenPrintsEachWebhookWithItsSignatureCheck() async throws {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let port = try TestServices.freePort()
        let process = Process()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
        process.arguments = ["listen", "--port", String(port), "--secret", secret]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let printed = Printed()
        output.fileHandleForReading.readabilityHandler = { handle in printed.append(handle.availableData) }

        let endpoint = Endpoint(id: UUID(), tenantID: UUID(), url: "http://127.0.0.1:\(port)/hooks/crm", eventTypes: ["*"], secret: secret)
        let event = Event(id: "evt_listen", type: "booking.confirmed", tenantID: endpoint.tenantID, data: Array(#"{"booking":"b_17"}"#.utf8))
        var request = WebhookRequest.make(event: event, endpoint: endpoint, deliveryID: UUID(), requestID: UUID(), now: Date(), settings: RequestSettings())
        let client = HTTPClient.Client()
        var status = 0
        let deadline = ContinuousClock.now + .seconds(20)
        while status != 204 && ContinuousClock.now < deadline {
            status = (try? await client.execute(request))?.status ?? 0
            if status != 204 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(status == 204)
        request.body[request.body.count - 2] = UInt8(ascii: "9")
        #expect((try await client.execute(request)).status == 204)
        await client.shutdown()
        let deadlinePrinted = ContinuousClock.now + .seconds(30)
        // Both verdicts, not any two "signature:" (each request's `webhook-signature:` header has one).
        while !(printed.text.contains("signature: valid") && printed.text.contains("signature: INVALID")) && ContinuousClock.now < deadlinePrinted {
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(process.processIdentifier, SIGTERM)
        let text = printed.text
        #expect(text.contains("POST /hooks/crm") && text.contains(#"{"booking":"b_17"}"#), "\(text)")
        #expect(text.contains("signature: valid") && text.contains("signature: INVALID"), "\(text)")
    }

    /// What a child process printed so far.
    final class Printed: Sendable {
        private let data = Mutex(Data())
        func append(_ more: Data) { data.withLock { $0.append(more) } }
        var text: String { String(decoding: data.withLock { $0 }, as: UTF8.self) }
    }
}
