import HeraldAMQP
import Foundation
import Glibc
import Logging
import Migrations
import Postgres
import HeraldProducer
import Settings
import Synchronization
import Topology

/// What `bench/run` passes in, and the sizes of the run.
struct Options {
    var events = 50_000
    var tenants = 100
    /// Tenants of the many-tenants scenario (16).
    var manyTenants = 10_000
    /// nil: half of the end-to-end rate just measured (1,000 when it was not measured).
    var latencyRate: Int?
    var latencySeconds = 30
    var fanoutEndpoints = 100
    var fanoutEvents = 500
    /// Events the instruction count drains under callgrind (after 200 to warm up).
    var instructionEvents = 2_000
    /// Runs of 3 and 5 each, in turns.
    var rounds = 2
    var only: Set<String> = []
    var amqpURL = ProcessInfo.processInfo.environment["HERALD_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"
    var adminURL = ProcessInfo.processInfo.environment["HERALD_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5433/herald"
    var receiver = ProcessInfo.processInfo.environment["HERALD_BENCH_RECEIVER"] ?? "http://127.0.0.1:8089"
    var accessLog = ProcessInfo.processInfo.environment["HERALD_BENCH_ACCESS_LOG"] ?? ".services/bench/logs/access.log"
    var herald = ProcessInfo.processInfo.environment["HERALD_BENCH_HERALD"] ?? ".build/release/herald"
    var migrations = ProcessInfo.processInfo.environment["HERALD_BENCH_MIGRATIONS"] ?? "migrations"
    /// Where plots are written.
    var output = ProcessInfo.processInfo.environment["HERALD_BENCH_OUTPUT"] ?? ".services/bench"

    static let usage = """
        usage: herald-bench [--events N] [--tenants N] [--many-tenants N] [--latency-rate N] [--latency-seconds N]
                            [--fanout-events N] [--instruction-events N] [--rounds N]
                            [--only broker,http,e2e,latency,isolation,manytenants,scaling,waitscaling,waitisolation,payloads,fanout,peer,instructions,slowdown,dashboard,inbound]
        """

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            let value = iterator.next() ?? ""
            func number() -> Int {
                guard let n = Int(value), n > 0 else {
                    print("herald-bench: \(argument) needs a positive number, not '\(value)'\n\(Self.usage)")
                    exit(64)
                }
                return n
            }
            switch argument {
            case "--events": events = number()
            case "--tenants": tenants = number()
            case "--many-tenants": manyTenants = number()
            case "--latency-rate": latencyRate = number()
            case "--latency-seconds": latencySeconds = number()
            case "--fanout-events": fanoutEvents = number()
            case "--instruction-events": instructionEvents = number()
            case "--rounds": rounds = number()
            case "--only": only = Set(value.split(separator: ",").map(String.init))
            default:
                print(Self.usage)
                exit(64)
            }
        }
    }

    func wants(_ name: String) -> Bool { only.isEmpty || only.contains(name) }
}

let logger: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    return logger
}()

func say(_ message: String) {
    FileHandle.standardError.write(Data("bench: \(message)\n".utf8))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Shared mutable state of concurrent lanes.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout sending Value) -> sending R) -> sending R { mutex.withLock(body) }
}

/// A database of its own for one scenario, migrated; dropped by `drop()`.
struct ScenarioDatabase {
    let name: String
    let url: String
    let adminURL: String
    let pool: Pool

    static func create(_ options: Options, label: String) async throws -> ScenarioDatabase {
        let name = "bench_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try await Postgres.Connection.connect(to: options.adminURL, logger: logger)
        // The name is built here from a fixed label and hex digits only.
        try await admin.execute(script: "CREATE DATABASE \(name)")
        await admin.close()
        var components = URLComponents(string: options.adminURL)!
        components.path = "/" + name
        let url = components.string!
        _ = try await Migrator(databaseURL: url, migrations: try Migration.load(directory: options.migrations), logger: logger).run()
        return ScenarioDatabase(name: name, url: url, adminURL: options.adminURL, pool: try Pool(url: url, size: 2, logger: logger))
    }

    /// Tenants with one endpoint each on the receiver, subscribed to everything; returns
    /// the tenant ids in order.
    func tenants(_ count: Int, receiver: String, endpointsEach: Int = 1, payloadFilter: String? = nil) async throws -> [UUID] {
        var ids: [UUID] = []
        for t in 0..<count {
            let tenant = try await pool.query("INSERT INTO tenants (name) VALUES (\("bench \(t)")) RETURNING id")[0].decode(UUID.self, 0)
            for e in 0..<endpointsEach {
                try await pool.query(
                    """
                    INSERT INTO endpoints (tenant_id, url, event_types, secret, enabled, dpa_confirmed_at, payload_filter)
                    VALUES (\(tenant), \("\(receiver)/t\(t)/e\(e)"), \(["*"]), \("whsec_" + Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()), true, now(),
                            \(payloadFilter.map(JSONB.init)))
                    """)
            }
            ids.append(tenant)
        }
        return ids
    }

    func count(_ sql: Query) async throws -> Int {
        try await pool.query(sql)[0].decode(Int.self, 0)
    }

    /// Waits until `sql` counts at least `target`, or `limit` passes.
    func await(_ sql: Query, reaches target: Int, within limit: Duration, label: String) async throws {
        let deadline = ContinuousClock.now + limit
        var last = -1
        var lastChange = ContinuousClock.now
        while true {
            let n = try await count(sql)
            if n >= target { return }
            if n != last { last = n; lastChange = .now }
            if ContinuousClock.now > deadline || ContinuousClock.now - lastChange > .seconds(60) {
                throw BenchError("\(label): \(n) of \(target) after \(limit) (no progress for \(ContinuousClock.now - lastChange))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func drop() async {
        await pool.close()
        if let admin = try? await Postgres.Connection.connect(to: adminURL, logger: logger) {
            _ = try? await admin.execute(script: "DROP DATABASE \(name) WITH (FORCE)")
            await admin.close()
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A `herald worker` process of the release build.
final class WorkerProcess: Sendable {
    let process: Process

    /// A program and its arguments that run the worker (valgrind), given the binary to run
    /// after them.
    typealias Tool = (program: String, arguments: [String], binary: String)

    /// `tool`: what runs the worker; nil runs `options.herald` itself.
    init(
        _ options: Options, databaseURL: String, prefix: String, environment extra: [String: String] = [:], under tool: Tool? = nil
    ) throws {
        let process = Process()
        let worker = ["worker", "--queue-prefix", prefix]
        if let tool {
            process.executableURL = URL(fileURLWithPath: tool.program)
            process.arguments = tool.arguments + [tool.binary] + worker
        } else {
            process.executableURL = URL(fileURLWithPath: options.herald)
            process.arguments = worker
        }
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_DATABASE_URL"] = databaseURL
        environment["HERALD_AMQP_URL"] = options.amqpURL
        environment["HERALD_ALLOWED_ADDRESSES"] = "127.0.0.0/8"
        environment["HERALD_WORKER_PORT"] = "0"
        environment["HERALD_LOG_LEVEL"] = "warning"
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        try process.run()
        self.process = process
    }

    /// The peak resident set size so far (VmHWM), in bytes.
    var peakRSS: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    /// CPU time used so far (user + system), in seconds.
    var cpuSeconds: Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// SIGKILL: the scenario is over and its queues are deleted next.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// The queues and exchanges of one scenario's prefix, declared before workers start so
/// that publishing can begin at once, deleted afterwards.
struct ScenarioTopology {
    let topology: Topology
    let connection: HeraldAMQP.Connection
    let channel: Channel

    static func declare(_ options: Options, prefix: String) async throws -> ScenarioTopology {
        let connection = try await HeraldAMQP.Connection.connect(to: options.amqpURL, logger: logger)
        let channel = try await connection.openChannel()
        // The workers read the same environment: their declarations must match.
        let settings = try Settings(environment: ProcessInfo.processInfo.environment)
        let topology = Topology(
            prefix: prefix, ladder: settings.retryLadder, deferDelay: settings.deferDelay, shards: settings.workShards,
            deliveryLimit: settings.deliveryLimit, quorumGroupSize: settings.quorumGroupSize)
        try await topology.declare(on: channel)
        return ScenarioTopology(topology: topology, connection: connection, channel: channel)
    }

    /// Waits until `count` consumers are on the work queue.
    func awaitConsumers(_ count: Int, within limit: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + limit
        while try await channel.declareQueue(topology.workQueue, arguments: ["x-queue-type": "quorum"], passive: true).consumerCount < count {
            guard ContinuousClock.now < deadline else { throw BenchError("no worker consumed \(topology.workQueue) within \(limit)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func delete() async {
        for queue in topology.queues { _ = try? await channel.deleteQueue(queue) }
        _ = try? await channel.deleteExchange(topology.eventsExchange)
        _ = try? await channel.deleteExchange(topology.requeueExchange)
        _ = try? await channel.deleteExchange(topology.operatorExchange)
        _ = try? await channel.deleteExchange(topology.shardExchange)
        _ = try? await channel.deleteExchange(topology.unkeyedExchange)
        await connection.close()
    }
}

/// One scenario's own database, queues and `herald worker` processes, torn down however
/// the scenario ends.
struct Scenario {
    let database: ScenarioDatabase
    let topology: ScenarioTopology
    let options: Options
    private(set) var workers: [WorkerProcess] = []

    static func run<T>(_ options: Options, label: String, _ body: (inout Scenario) async throws -> T) async throws -> T {
        let database = try await ScenarioDatabase.create(options, label: label)
        let topology: ScenarioTopology
        do {
            topology = try await ScenarioTopology.declare(options, prefix: "bench_\(label)_\(UUID().uuidString.prefix(6).lowercased())")
        } catch {
            await database.drop()
            throw error
        }
        var scenario = Scenario(database: database, topology: topology, options: options)
        do {
            let result = try await body(&scenario)
            await scenario.tearDown()
            return result
        } catch {
            await scenario.tearDown()
            throw error
        }
    }

    /// Starts `count` workers (with `environment` added to their settings) and waits
    /// until they consume.
    mutating func startWorkers(
        _ count: Int, environment: [String: String] = [:], under tool: WorkerProcess.Tool? = nil,
        within limit: Duration = .seconds(60)
    ) async throws {
        for _ in 0..<count {
            var environment = environment
            // The scenario's first worker serves /metrics there, to be read during a run.
            if workers.isEmpty, let port = ProcessInfo.processInfo.environment["HERALD_BENCH_WORKER_PORT"] {
                environment["HERALD_WORKER_PORT"] = port
            }
            workers.append(
                try WorkerProcess(options, databaseURL: database.url, prefix: topology.topology.prefix, environment: environment, under: tool))
        }
        try await topology.awaitConsumers(workers.count, within: limit)
    }

    func producer() -> Producer {
        Producer(configuration: .init(amqpURL: options.amqpURL, exchange: topology.topology.eventsExchange), logger: logger)
    }

    private func tearDown() async {
        for worker in workers { worker.stop() }
        await topology.delete()
        await database.drop()
    }
}

/// The receiver's access log (`msec uri webhook-id status`), read from an offset on.
struct AccessLog {
    let path: String
    let start: UInt64

    init(path: String) {
        self.path = path
        start = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
    }

    struct Line {
        var time: Double
        var uri: Substring
        var webhookID: Substring
        var status: Substring
    }

    /// Waits until `target` lines were written since this reader was made, reading only
    /// what was added since the last look: a wait that costs the servers nothing (polling
    /// PostgreSQL with a count would be counted in its CPU per delivery).
    func awaitLines(_ target: Int, within limit: Duration, label: String) async throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw BenchError("cannot read \(path)") }
        defer { try? handle.close() }
        try handle.seek(toOffset: start)
        let deadline = ContinuousClock.now + limit
        var lines = 0
        var lastChange = ContinuousClock.now
        while lines < target {
            let added = handle.readDataToEndOfFile().reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            if added > 0 { lines += added; lastChange = .now }
            if ContinuousClock.now > deadline || ContinuousClock.now - lastChange > .seconds(60) {
                throw BenchError("\(label): the receiver logged \(lines) of \(target) requests after \(limit)")
            }
            if lines < target { try await Task.sleep(for: .milliseconds(100)) }
        }
    }

    /// The lines written since this reader was made; nginx flushes its buffer every 100 ms.
    func lines() async throws -> [Line] {
        try await Task.sleep(for: .milliseconds(300))
        guard let handle = FileHandle(forReadingAtPath: path) else { throw BenchError("cannot read \(path)") }
        defer { try? handle.close() }
        try handle.seek(toOffset: start)
        let data = handle.readDataToEndOfFile()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 4, let time = Double(fields[0]) else { return nil }
            return Line(time: time, uri: fields[1], webhookID: fields[2], status: fields[3])
        }
    }
}

/// Accepts connections and never answers: endpoints that hang until the timeout.
final class HangingServer: Sendable {
    let port: Int
    private let socket: Int32

    init() throws {
        let (fd, port) = try listeningSocket(backlog: 4096)
        socket = fd
        self.port = port
        let thread = Thread {
            // Accepted sockets stay open and unread until the process ends.
            var held: [Int32] = []
            while true {
                let client = accept(fd, nil, nil)
                if client >= 0 { held.append(client) } else if errno != EINTR { break }
            }
            _ = held
        }
        thread.start()
    }
}

/// A TCP socket listening on 127.0.0.1 on a port the kernel chose, and that port.
func listeningSocket(backlog: Int32) throws -> (fd: Int32, port: Int) {
    let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0, listen(fd, backlog) == 0 else { throw BenchError("bind/listen: errno \(errno)") }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// The `p` quantile (0…1) of sorted values.
func quantile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}
