import Foundation
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
        }
    }
}
