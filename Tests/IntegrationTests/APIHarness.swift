import API
import Cryptography
import Delivery
import Foundation
import HTTPClient
import Hummingbird
import Management
import Operations
import Policy
import Dashboard
import FanOut
import Inbound
import Records
import Relay
import ServiceLifecycle
import Testing
import TestSupport
import Topology
import Worker

/// The management API served in-process on a free port, over a `Pipeline` whose worker
/// may only reach loopback addresses because they are allow-listed.
struct APIHarness {
    static let operatorToken = "operator-token-for-tests-0123456789"

    let pipeline: Pipeline
    let base: String
    let port: Int
    let client: Client
    /// The inbound sources the API keeps.
    let sources: SourceCache

    static func run<T>(
        _ options: Pipeline.Options = Pipeline.Options(), quotas: API.Quotas = API.Quotas(requestsPerSecond: 0, eventsPerSecond: 0),
        listener: API.ListenerLimits = API.ListenerLimits(), inbound: API.InboundLimits = API.InboundLimits(), dashboard: Bool = false,
        _ body: (APIHarness) async throws -> T
    ) async throws -> T {
        var options = options
        if options.addressPolicy == nil {
            options.addressPolicy = AddressPolicy(allowed: [Network("127.0.0.0/8")!]).check
        }
        return try await Pipeline.run(options) { pipeline in
            let dispatcher = Dispatcher(amqpURL: TestServices.amqpURL, topology: pipeline.topology, logger: TestServices.logger)
            // As in `herald api`: inbound webhooks' events leave through this relay.
            let bell = RelayBell()
            let relay = RelayService(pool: pipeline.pool, producer: pipeline.producer, bell: bell, prepares: true, logger: TestServices.logger)
            let urlPolicy = URLPolicy(allowHTTP: true, blockedDomains: ["herald.example.org"], allowedHosts: ["localhost"])
            // As in `herald api`: sources kept while PostgreSQL tells of their changes.
            let sources = SourceCache()
            let api = API(
                configuration: .init(
                    operatorToken: operatorToken, urlPolicy: urlPolicy,
                    rotationGrace: .seconds(3600), quotas: quotas, secretKeyring: options.secretKeyring,
                    headerPrefix: options.headerPrefix, inbound: inbound),
                pool: pipeline.pool, dispatcher: dispatcher,
                parking: ParkingLot(amqpURL: TestServices.amqpURL, topology: pipeline.topology, logger: TestServices.logger),
                producer: pipeline.producer, publicURL: "http://127.0.0.1:0", inboundSources: sources,
                readiness: { await Readiness.check(pool: pipeline.pool, broker: { await dispatcher.isConnected }) },
                metrics: { "herald_up 1\n" }, onInboundEvent: { bell.ring() })
            let (ports, continuation) = AsyncStream<Int>.makeStream()
            let router = api.router()
            try Portal(
                configuration: .init(
                    urlPolicy: urlPolicy, rotationGrace: .seconds(3600), request: pipeline.context.requests, ladder: pipeline.topology.ladder,
                    disable: options.disable),
                store: Store(pool: pipeline.pool, keyring: options.secretKeyring), log: PostgresRecords(pool: pipeline.pool),
                access: PortalAccess(pool: pipeline.pool), dispatcher: dispatcher, inbound: api.inbound, onInboundEvent: { bell.ring() }
            ).register(on: router)
            let census = BrokerCensus(amqpURL: TestServices.amqpURL, topology: pipeline.topology, logger: TestServices.logger)
            try Console(
                configuration: .init(), access: ConsoleAccess(pool: pipeline.pool, operatorToken: operatorToken),
                portalAccess: PortalAccess(pool: pipeline.pool), store: Store(pool: pipeline.pool, keyring: options.secretKeyring),
                log: PostgresRecords(pool: pipeline.pool), census: census,
                parking: ParkingLot(amqpURL: TestServices.amqpURL, topology: pipeline.topology, logger: TestServices.logger),
                heartbeats: Heartbeats(pool: pipeline.pool)
            ).register(on: router)
            let app = Application(
                router: router, server: API.server(listener), configuration: API.listener(host: "127.0.0.1", port: 0, limits: listener),
                onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: TestServices.logger)
            // A graceful shutdown, not a cancellation: NIO requires open connections to be finished.
            let sourceChanges = ChangeListener(
                databaseURL: pipeline.databaseURL, feed: .inboundSources, cache: sources, lease: .seconds(20),
                logger: TestServices.logger)
            var services: [any Service] = [BrokerLink(dispatcher: dispatcher), relay, sourceChanges, app]
            if dashboard {
                // What `herald api` and `herald worker` run beside the pages: the hourly figures
                // (counted a second behind here) and the worker's heartbeat.
                let status = pipeline.workerStatus
                services += [
                    Housekeeping(
                        pool: pipeline.pool, retention: .seconds(86_400),
                        rollupLag: .seconds(1), interval: .seconds(1), logger: TestServices.logger),
                    Heartbeat(
                        pool: pipeline.pool, identity: .current(version: "test", concurrency: 50), interval: .seconds(1), logger: TestServices.logger
                    ) { Heartbeats.Beat(inFlight: status.inFlight, consuming: status.consuming) },
                ]
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [], logger: TestServices.logger))
            let server = Task { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            let harness = APIHarness(pipeline: pipeline, base: "http://127.0.0.1:\(port)", port: port, client: Client(), sources: sources)
            do {
                let result = try await body(harness)
                await group.triggerGracefulShutdown()
                _ = await server.result
                await harness.client.shutdown()
                await dispatcher.close()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                _ = await server.result
                await harness.client.shutdown()
                await dispatcher.close()
                throw error
            }
        }
    }

    struct Answer {
        var status: Int
        var contentType: String?
        var json: Any?
        var allow: String?
        var retryAfter: String?
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var items: [[String: Any]] { object["items"] as? [[String: Any]] ?? [] }
        subscript(key: String) -> Any? { object[key] }
        func string(_ key: String) -> String? { object[key] as? String }
    }

    /// One request; `body` may be a JSON object or raw text.
    @discardableResult
    func call(_ method: String, _ path: String, token: String? = nil, scheme: String = "Bearer", body: Any? = nil) async throws -> Answer {
        var headers: [(name: String, value: String)] = []
        if let token { headers.append(("Authorization", "\(scheme) \(token)")) }
        var bytes: [UInt8] = []
        if let text = body as? String {
            bytes = Array(text.utf8)
        } else if let body {
            bytes = Array(try JSONSerialization.data(withJSONObject: body))
        }
        if !bytes.isEmpty { headers.append(("Content-Type", "application/json")) }
        let response = try await client.execute(
            HTTPClient.Request(url: base + path, method: method, headers: headers, body: bytes, maxResponseBytes: 4 * 1024 * 1024))
        let json = response.body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(response.body))
        return Answer(
            status: response.status, contentType: response.header("content-type"), json: json, allow: response.header("allow"),
            retryAfter: response.header("retry-after"))
    }

    /// A request with the body and headers exactly as given (a sender's webhook).
    func send(_ path: String, headers: [(String, String)], body: [UInt8]) async throws -> Answer {
        let response = try await client.execute(
            HTTPClient.Request(url: base + path, method: "POST", headers: headers.map { (name: $0.0, value: $0.1) }, body: body, maxResponseBytes: 1024 * 1024))
        let json = response.body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(response.body))
        return Answer(status: response.status, contentType: response.header("content-type"), json: json, allow: nil, retryAfter: nil)
    }

    /// `herald` (the built binary) against this API, with `--json`; its exit status and output.
    func cli(_ arguments: [String], key: String? = nil, environment extra: [String: String] = [:]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/herald")
        process.arguments = arguments + ["--api-url", base, "--json"] + (key.map { ["--api-key", $0] } ?? [])
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_OPERATOR_TOKEN"] = Self.operatorToken
        for (name, value) in extra { environment[name] = value }
        process.environment = environment
        return try await process.runToCompletion()
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    /// A tenant and one of its keys.
    func tenant(_ name: String = "Studio") async throws -> (id: String, key: String) {
        let tenant = try await call("POST", "/v1/tenants", token: Self.operatorToken, body: ["name": name])
        let id = try #require(tenant.string("id"))
        let key = try await call("POST", "/v1/tenants/\(id)/keys", token: Self.operatorToken, body: ["name": "tests"])
        return (id, try #require(key.string("key")))
    }

    /// An enabled endpoint at `url`; returns its id and secret.
    func endpoint(_ key: String, url: String, types: [String] = ["*"], extra: [String: Any] = [:]) async throws -> (id: String, secret: String) {
        var body: [String: Any] = ["url": url, "event_types": types, "dpa_confirmed_by": "Anna Beispiel", "enabled": true]
        body.merge(extra) { _, new in new }
        let answer = try await call("POST", "/v1/endpoints", token: key, body: body)
        #expect(answer.status == 201)
        return (try #require(answer.string("id")), try #require(answer.string("secret")))
    }
}

/// Whether the X-Herald-Signature of `request` verifies with `secret`.
func heraldSignatureValid(_ request: ReceivedRequest, secret: String) -> Bool {
    guard let timestamp = request.header("x-herald-timestamp"), let signature = request.header("x-herald-signature") else { return false }
    return constantTimeEquals(Array(Signature.herald(secret: secret, timestamp: timestamp, body: request.body).utf8), Array(signature.utf8))
}

/// Which of `secrets` have a matching `v1,` entry in webhook-signature.
func verifiedSecrets(_ request: ReceivedRequest, _ secrets: [String]) -> [String] {
    guard let id = request.header("webhook-id"), let seconds = request.header("webhook-timestamp").flatMap(Int64.init),
        let header = request.header("webhook-signature")
    else { return [] }
    let entries = Set(header.split(separator: " ").map(String.init))
    return secrets.filter { entries.contains(Signature.standard(secret: $0, id: id, seconds: seconds, body: request.body)) }
}
