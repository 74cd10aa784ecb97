import Cryptography
import Delivery
import FanOut
import Foundation
import Management
import Postgres
import Synchronization
import Testing
import TestSupport

/// Endpoint secrets at rest (sealed with the deployment key) and credentials in views.
@Suite("Secrets")
struct SecretsTests {
    static func key() throws -> SecretKeyring.Key {
        try SecretKeyring.Key(base64: Base64.encode(randomBytes(count: 32)))
    }

    @Test func endpointSecretsAreSealedAtRestRevealedToTheTenantAndStillSign() async throws {
        let first = try Self.key()
        var options = Pipeline.Options()
        options.secretKeyring = SecretKeyring(currentKey: first, retiredKeys: [])
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run(options) { api in
            let tenant = try await api.tenant()
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in")
            let id = try #require(UUID(uuidString: endpoint.id))
            let stored = try await api.pipeline.pool.query("SELECT secret FROM endpoints WHERE id = \(id)")[0].decode(String.self, 0)
            #expect(stored.hasPrefix("aes256gcm:\(first.id):"))
            #expect(!stored.contains(endpoint.secret))
            #expect(!stored.contains(String(endpoint.secret.dropFirst(6))))
            #expect(try await api.call("GET", "/v1/endpoints/\(endpoint.id)/secret", token: tenant.key).string("secret") == endpoint.secret)

            // The worker opens it and signs with the secret the tenant was given.
            _ = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/test", token: tenant.key, body: ["event_type": "invoice.paid"])
            let request = try #require(try await receiver.waitForRequests(1).first)
            #expect(heraldSignatureValid(request, secret: endpoint.secret))

            // A rotation seals the new secret too; the old one stays sealed as previous.
            let rotated = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/rotate-secret", token: tenant.key, body: ["grace_seconds": 3600])
            let newSecret = try #require(rotated.string("secret"))
            let row = try await api.pipeline.pool.query("SELECT secret, previous_secret FROM endpoints WHERE id = \(id)")[0]
            let (current, previous) = (try row.decode(String.self, 0), try row.decode(String?.self, 1))
            #expect(SecretKeyring.isSealed(current) && !current.contains(newSecret))
            #expect(previous == stored)

            // A sealed value is bound to its row: copied onto another endpoint, it does not open.
            let other = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/other")
            let otherID = try #require(UUID(uuidString: other.id))
            #expect(throws: SecretKeyError.self) { try options.secretKeyring.open(current, endpoint: otherID) }
            // A tampered value does not open either.
            var bytes = Array(current.utf8)
            bytes[bytes.count - 3] = bytes[bytes.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(throws: SecretKeyError.self) { try options.secretKeyring.open(String(decoding: bytes, as: UTF8.self), endpoint: id) }

            // Rows written before a key was set hold plaintext; they are read as they are.
            let legacy = "legacy-secret-written-in-plaintext-0123456789"
            _ = try await api.pipeline.pool.query("UPDATE endpoints SET secret = \(legacy) WHERE id = \(otherID)")

            // Key rotation: the new key is current, the first retired; rekey seals every row anew.
            let second = try Self.key()
            let rotating = SecretKeyring(currentKey: second, retiredKeys: [first])
            #expect(try await Store(pool: api.pipeline.pool, keyring: rotating).resealSecrets() == 2)
            #expect(try await Store(pool: api.pipeline.pool, keyring: rotating).resealSecrets() == 0)
            for secret in try await api.pipeline.pool.query("SELECT secret, previous_secret FROM endpoints").flatMap({ row in
                [try row.decode(String.self, 0), try row.decode(String?.self, 1)].compactMap { $0 }
            }) {
                #expect(secret.hasPrefix("aes256gcm:\(second.id):"))
            }
            // With the first key gone, everything still opens.
            let tenantID = try #require(UUID(uuidString: tenant.id))
            let onlySecond = Directory(pool: api.pipeline.pool, keyring: SecretKeyring(currentKey: second, retiredKeys: []))
            let endpoints = try #require(try await onlySecond.endpoints(tenant: tenantID))
            #expect(endpoints.first { $0.id == id }?.secret == newSecret)
            #expect(endpoints.first { $0.id == id }?.previousSecret == endpoint.secret)
            #expect(endpoints.first { $0.id == otherID }?.secret == legacy)

            // Without the key, each endpoint says why it cannot sign, naming the key, never the
            // secret; the tenant's endpoints still load (one bad row holds up no other).
            let keyless = try #require(try await Directory(pool: api.pipeline.pool, keyring: .plaintext).endpoints(tenant: tenantID))
            #expect(keyless.count == 2)
            for endpoint in keyless {
                let reason = try #require(endpoint.unusable)
                #expect(reason.contains(second.id) && !reason.contains(newSecret))
            }
            #expect(endpoints.allSatisfy { $0.unusable == nil })
        }
        await receiver.stop()
    }

    /// One endpoint sealed with a key the worker lacks (an API restarted with a new key
    /// before the workers) held up every delivery of its tenant. Now only its own wait.
    @Test func anEndpointWhoseSecretCannotBeOpenedHoldsUpNoOther() async throws {
        let healthy = try await TestHTTPServer.start()
        let locked = try await TestHTTPServer.start()
        try await Pipeline.run { pipeline in
            let tenant = try await pipeline.tenant()
            let open = try await pipeline.endpoint(tenant: tenant, url: healthy.url)
            let sealed = try await pipeline.endpoint(tenant: tenant, url: locked.url)
            let foreign = SecretKeyring(currentKey: try Self.key(), retiredKeys: [])
            _ = try await pipeline.pool.query(
                "UPDATE endpoints SET secret = \(foreign.seal(Signature.generateSecret(), endpoint: sealed)) WHERE id = \(sealed)")
            try await pipeline.publish("client.created", tenant: tenant)
            try await healthy.waitForRequests(1)
            try await pipeline.eventually("the healthy endpoint's delivery is recorded") {
                try await pipeline.deliveries(endpoint: open).first?.status == "delivered"
            }
            #expect(locked.requests.isEmpty)
            #expect(try await pipeline.deliveries(endpoint: sealed).allSatisfy { $0.status != "delivered" && $0.status != "failed" })
        }
        await healthy.stop()
        await locked.stop()
    }

    @Test func aTenantSecretInTheSealedFormIsRefused() async throws {
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let answer = try await api.call(
                "POST", "/v1/endpoints", token: tenant.key,
                body: ["url": "http://localhost:9/in", "event_types": ["*"], "secret": "aes256gcm:00000000:" + String(repeating: "Ab1", count: 20)])
            #expect(answer.status == 400)
            #expect(answer.string("field") == "secret")
        }
    }

    @Test func credentialHeadersAreRedactedInEveryViewButSentAndKept() async throws {
        let receiver = try await TestHTTPServer.start()
        try await APIHarness.run { api in
            let tenant = try await api.tenant()
            let headers = ["Authorization": "Bearer receiver-credential-1234", "X-Api-Key": "k-5678", "X-Team": "blue"]
            let endpoint = try await api.endpoint(tenant.key, url: "http://localhost:\(receiver.port)/in", extra: ["headers": headers])
            for view in [
                try await api.call("GET", "/v1/endpoints/\(endpoint.id)", token: tenant.key).object,
                try await api.call("GET", "/v1/endpoints", token: tenant.key).items.first ?? [:],
            ] {
                let shown = view["headers"] as? [String: String]
                #expect(shown == ["Authorization": "[redacted]", "X-Api-Key": "[redacted]", "X-Team": "blue"])
            }
            // Sending a view back keeps the values behind "[redacted]".
            let updated = try await api.call(
                "PATCH", "/v1/endpoints/\(endpoint.id)", token: tenant.key,
                body: ["headers": ["Authorization": "[redacted]", "X-Api-Key": "k-new", "X-Team": "green"]])
            #expect(updated.status == 200)
            // A placeholder with nothing behind it is refused rather than stored.
            let placeholder = try await api.call(
                "PATCH", "/v1/endpoints/\(endpoint.id)", token: tenant.key, body: ["headers": ["X-Secret-Token": "[redacted]"]])
            #expect(placeholder.status == 422 && placeholder.string("field") == "headers", "\(placeholder.status)")
            _ = try await api.call("POST", "/v1/endpoints/\(endpoint.id)/test", token: tenant.key, body: ["event_type": "invoice.paid"])
            let request = try #require(try await receiver.waitForRequests(1).first)
            #expect(request.header("authorization") == "Bearer receiver-credential-1234")
            #expect(request.header("x-api-key") == "k-new")
            #expect(request.header("x-team") == "green")
        }
        await receiver.stop()
    }
}

/// A `herald` command as a child process whose output is collected as it comes.
final class HeraldChild: @unchecked Sendable {
    // Process is not Sendable; it is only signalled and read after `init`.
    let process: Process
    private let output = Collected()

    private final class Collected: Sendable {
        let text = Mutex("")
    }

    init(_ arguments: [String], environment extra: [String: String]) throws {
        process = Process()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = self.output
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var text: String { output.text.withLock { $0 } }

    /// Waits until the output contains `marker`, for at most `limit`.
    func waitFor(_ marker: String, within limit: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + limit
        while !text.contains(marker) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                Issue.record("'\(marker)' never appeared in the output of herald \(process.arguments ?? [])")
                throw WaitTimedOut(expected: 1, received: 0)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// SIGTERM, then the exit status once it has stopped (SIGKILL after `limit`).
    func terminate(within limit: Duration = .seconds(20)) async -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }
}

@Suite("Passwords in logs")
struct PasswordLogTests {
    /// The broker password was logged 22 times at debug level (service-lifecycle prints
    /// each service, and the worker held the URL). A broker that refuses the password also
    /// kept a stopping worker waiting for ever.
    @Test(arguments: ["worker", "api", "relay"])
    func debugLogsNeverHoldTheBrokerPassword(_ command: String) async throws {
        let password = "pw-\(UUID().uuidString.prefix(8))-never-logged"
        let broker = TestServices.amqpURL.replacingOccurrences(of: "guest:guest@", with: "guest:\(password)@")
        #expect(broker.contains(password))
        let child = try HeraldChild(
            [command, "--queue-prefix", TestServices.uniqueName("pw")],
            environment: [
                "HERALD_AMQP_URL": broker, "HERALD_LOG_LEVEL": "debug", "HERALD_WORKER_PORT": "0",
                "HERALD_API_PORT": "\(try TestServices.freePort())", "HERALD_DATABASE_URL": TestServices.databaseURL,
            ])
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        // The services have started (service-lifecycle logs them) and, for the two that
        // connect at once, the broker refused a login: by then the signal handlers are in
        // place (the relay connects only to publish, so its exit status is not judged).
        try await child.waitFor("Starting service")
        if command != "relay" { try await child.waitFor("ACCESS_REFUSED") }
        let status = await child.terminate()
        if command != "relay" {
            #expect(status == 0, "herald \(command) exited with \(status) after SIGTERM")
            #expect(child.text.contains("amqp://127.0.0.1"), "the broker is still named, without its password")
        }
        #expect(!child.text.contains(password))
    }
}
