import Foundation
import HTTPClient
import Testing
import TestSupport

/// Receivers of every reference system verify Herald's deliveries unchanged: each
/// reference document's own verification snippet (Tests/Receivers, run by its language's
/// interpreter from Debian's packages), the official standardwebhooks library, GitHub's
/// documented check and Stripe's library, each against real deliveries of an endpoint with
/// the matching signature profile and payload format. Every delivery verifies; the same
/// request with one byte of the body changed fails in each.
@Suite("Receivers of the reference systems")
struct ReceiverAcceptanceTests {
    struct Receiver: Sendable, CustomStringConvertible {
        var name: String
        /// The interpreter and its arguments; `{port}` and `{file}` are filled in.
        var command: [String]
        var path: String
        /// Where it listens, when not at /webhook.
        var route = "/webhook"
        var signature: [String: String]
        var format: String
        var fields: [String: String] = [:]
        /// What the snippet answers to a forged signature.
        var refusal: Int
        var description: String { name }
    }

    static let venvPython = TestServices.repositoryRoot.appendingPathComponent(".services/venv/bin/python").path

    static let receivers: [Receiver] = [
        Receiver(
            name: "CreatorDesk, Python (Flask)", command: [venvPython, "{file}"], path: "creatordesk_flask.py",
            signature: ["profile": "timestamped-hmac", "header_prefix": "X-CreatorDesk"], format: "raw", refusal: 401),
        Receiver(
            name: "CreatorDesk, Node.js (Express)", command: ["node", "{file}"], path: "creatordesk_express.js",
            signature: ["profile": "timestamped-hmac", "header_prefix": "X-CreatorDesk"], format: "raw", refusal: 401),
        Receiver(
            name: "CreatorDesk, PHP", command: ["php", "-S", "127.0.0.1:{port}", "{file}"], path: "creatordesk.php",
            signature: ["profile": "timestamped-hmac", "header_prefix": "X-CreatorDesk"], format: "raw", refusal: 401),
        Receiver(
            name: "CraftDesk, Python (Flask)", command: [venvPython, "{file}"], path: "craftdesk_flask.py",
            signature: ["profile": "body-hmac", "header": "X-Webhook-Signature"], format: "craftdesk", refusal: 401),
        Receiver(
            name: "Creative Force, Ruby (Sinatra)", command: ["ruby", "{file}"], path: "creativeforce_sinatra.rb", route: "/payload",
            signature: ["profile": "body-hmac", "header": "X-CF-Signature", "event_header": "X-CF-Event"], format: "envelope", refusal: 500),
        Receiver(
            name: "Standard Webhooks (official Python library)", command: [venvPython, "{file}"], path: "standardwebhooks_receiver.py",
            signature: ["profile": "standard-webhooks"], format: "envelope", fields: ["type": "event_type"], refusal: 401),
        Receiver(
            name: "GitHub's documented check", command: [venvPython, "{file}"], path: "github_receiver.py",
            signature: ["profile": "github"], format: "customermates", refusal: 403),
        Receiver(
            name: "Stripe's library", command: [venvPython, "{file}"], path: "stripe_receiver.py", signature: ["profile": "stripe"],
            format: "envelope", refusal: 400),
    ]

    @Test(arguments: receivers)
    func everyDeliveryVerifiesAndATamperedOneFails(_ receiver: Receiver) async throws {
        // An interpreter's first request can take seconds on a busy machine (Sinatra loads
        // lazily): the production timeout, not the harness's 2 s, so no attempt is spent on it.
        var options = Pipeline.Options()
        options.httpTimeout = .seconds(10)
        try await APIHarness.run(options) { api in
            let (_, key) = try await api.tenant()
            let port = try TestServices.freePort()
            var body: [String: Any] = ["signature": receiver.signature, "payload_format": receiver.format]
            if !receiver.fields.isEmpty { body["payload_fields"] = receiver.fields }
            let endpoint = try await api.endpoint(key, url: "http://localhost:\(port)\(receiver.route)", types: ["invoice.paid"], extra: body)
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("receiver-\(UUID().uuidString).jsonl")
            defer { try? FileManager.default.removeItem(at: log) }
            let process = try Self.start(receiver, port: port, secret: endpoint.secret, log: log)
            // SIGKILL: the receiver inherits the spawning thread's signal mask, in which the
            // test runner blocks SIGTERM (Python and PHP kept running after the suite, SIGTERM pending).
            defer {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            try await Self.waitUntilListening(port: port, process: process)

            for total in ["1450.00", "99.00", "2300.50"] {
                let sent = try await api.call(
                    "POST", "/v1/events", token: key, body: ["type": "invoice.paid", "data": ["total": total, "tags": ["Hochzeit"]]])
                #expect(sent.status == 202)
            }
            let requests = try await Self.logged(log, count: 3, pipeline: api.pipeline)
            #expect(requests.map(\.status) == [200, 200, 200], "\(receiver.name): \(requests.map(\.status))")
            let id = try #require(UUID(uuidString: endpoint.id))
            try await api.pipeline.eventually("Herald records the three as delivered") {
                try await api.pipeline.deliveries(endpoint: id).map(\.status) == ["delivered", "delivered", "delivered"]
            }

            // The same request again verifies (a check that really ran), one byte changed does not.
            let real = try #require(requests.last)
            let again = try await Self.send(real, body: real.body, port: port, route: receiver.route, client: api.client)
            #expect(again == 200, "\(receiver.name) refused a replayed genuine request")
            var tampered = real.body
            if let index = tampered.firstIndex(of: UInt8(ascii: "1")) ?? tampered.indices.last { tampered[index] ^= 0x01 }
            let forged = try await Self.send(real, body: tampered, port: port, route: receiver.route, client: api.client)
            #expect(forged == receiver.refusal, "\(receiver.name) answered \(forged) to a tampered body")
        }
    }

    struct Logged {
        var headers: [String: String]
        var body: [UInt8]
        var status: Int
    }

    static func start(_ receiver: Receiver, port: Int, secret: String, log: URL) throws -> Process {
        let file = TestServices.repositoryRoot.appendingPathComponent("Tests/Receivers/\(receiver.path)").path
        let process = Process()
        let command = receiver.command.map { $0.replacingOccurrences(of: "{file}", with: file).replacingOccurrences(of: "{port}", with: String(port)) }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        var environment = ProcessInfo.processInfo.environment
        environment["PORT"] = String(port)
        environment["WEBHOOK_SECRET"] = secret
        environment["SECRET_TOKEN"] = secret
        environment["RECEIVER_LOG"] = log.path
        environment["NODE_PATH"] = "/usr/share/nodejs:/usr/lib/nodejs"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Until the receiver accepts connections (an interpreter takes a moment to start), or fails after 30 s.
    static func waitUntilListening(port: Int, process: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                Issue.record("the receiver exited with status \(process.terminationStatus)")
                throw WaitTimedOut(expected: 1, received: 0)
            }
            let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(socket)
            if connected == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the receiver did not listen on \(port) within 30 s")
        throw WaitTimedOut(expected: 1, received: 0)
    }

    /// The receiver's log once it holds `count` requests.
    static func logged(_ log: URL, count: Int, pipeline: Pipeline) async throws -> [Logged] {
        var lines: [Logged] = []
        try await pipeline.eventually(timeout: .seconds(60), "the receiver logs \(count) requests") {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let headers = object["headers"] as? [String: String], let body = (object["body_base64"] as? String).flatMap({ Data(base64Encoded: $0) }),
                    let status = object["status"] as? Int
                else { return nil }
                return Logged(headers: headers, body: Array(body), status: status)
            }
            return lines.count >= count
        }
        return lines
    }

    /// `request`'s headers with `body`, straight to the receiver; its status.
    static func send(_ request: Logged, body: [UInt8], port: Int, route: String, client: Client) async throws -> Int {
        let skipped: Set<String> = ["host", "content-length", "connection", "transfer-encoding", "expect", "accept", "accept-encoding", "user-agent"]
        let headers = request.headers.filter { !skipped.contains($0.key.lowercased()) }.map { (name: $0.key, value: $0.value) }
        let response = try await client.execute(
            Request(url: "http://127.0.0.1:\(port)\(route)", method: "POST", headers: headers, body: body, timeout: .seconds(10)))
        return response.status
    }
}
