// The fault run: publishes events to several tenants' endpoints on a local receiver while
// killing, freezing and restarting workers, the broker and the database, then accounts for
// every (event, endpoint) pair. Runs against the `faults` servers of scripts/services; with
// `--cluster`, against the three-node `cluster` (PostgreSQL still the `faults` one), where
// the broker faults are a kill -9 of the node leading the work queue (restarted after) and
// a stop of another node.
import HeraldAMQP
import Delivery
import HeraldEvents
import Foundation
import Migrations
import Postgres
import HeraldProducer
import Synchronization
import TestSupport
import Topology

struct Options {
    var events = 20_000
    var tenants = 3
    var endpointsPerTenant = 2
    var kills = 5
    /// Events published per second, so that the faults land while work is in flight.
    var rate = 400
    var ladder = "200ms,400ms,800ms,1600ms,3200ms"
    var timeout: Duration = .seconds(900)
    var cluster = false
    /// Worker replicas; with one, `HERALD_DELIVER_BEFORE_STORE=auto` sends first copies
    /// before their store while the worker is alone.
    var workers = 2

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            if argument == "--cluster" {
                cluster = true
                continue
            }
            let value = iterator.next() ?? ""
            switch argument {
            case "--events": events = Int(value) ?? events
            case "--tenants": tenants = Int(value) ?? tenants
            case "--endpoints": endpointsPerTenant = Int(value) ?? endpointsPerTenant
            case "--kills": kills = Int(value) ?? kills
            case "--rate": rate = max(1, Int(value) ?? rate)
            case "--ladder": ladder = value
            case "--timeout": timeout = .seconds(Int(value) ?? 900)
            case "--workers": workers = max(1, Int(value) ?? workers)
            default:
                print("usage: faultrun [--events N] [--rate N] [--tenants N] [--endpoints N] [--kills N] [--ladder L] [--timeout SECONDS] [--workers N] [--cluster]")
                exit(2)
            }
        }
    }
}

/// Shared state for the run's concurrent parts.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout sending Value) -> sending R) -> sending R { mutex.withLock(body) }
}

enum Elapsed {
    static func seconds(_ duration: Duration) -> String {
        String(format: "%.2f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }
}

/// What the receiver saw.
final class Ledger: Sendable {
    struct State {
        var requests = 0
        /// Requests answered 2xx; beyond one per pair they are duplicates.
        var accepted = 0
        var invalidSignatures = 0
        /// (event id, endpoint path) → request ids seen
        var pairs: [String: Set<String>] = [:]
        var failing = false
    }
    let state = Mutex(State())
    let secrets: [String: String]

    init(secrets: [String: String]) {
        self.secrets = secrets
    }

    func receive(_ request: ReceivedRequest) -> Reply {
        let path = String(request.uri.split(separator: "?").first ?? "")
        let secret = secrets[path] ?? ""
        let valid: Bool = {
            guard let timestamp = request.header("x-herald-timestamp"), let signature = request.header("x-herald-signature"),
                let id = request.header("webhook-id"), let seconds = request.header("webhook-timestamp").flatMap(Int64.init),
                let standard = request.header("webhook-signature")
            else { return false }
            return Signature.herald(secret: secret, timestamp: timestamp, body: request.body) == signature
                && standard.split(separator: " ").contains { $0 == Signature.standard(secret: secret, id: id, seconds: seconds, body: request.body) }
        }()
        let eventID = (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])?["id"] as? String ?? "?"
        return state.withLock { state in
            state.requests += 1
            if !valid { state.invalidSignatures += 1 }
            if state.failing { return .status(503) }
            state.accepted += 1
            state.pairs["\(eventID) \(path)", default: []].insert(request.header("webhook-id") ?? "")
            return .status(200)
        }
    }
}

func log(_ message: String) {
    FileHandle.standardOutput.write(Data("faultrun: \(message)\n".utf8))
}

func run() async throws -> Int32 {
    let options = Options(CommandLine.arguments)
    let started = ContinuousClock.now
    let root = TestServices.repositoryRoot
    try TestServices.script("start", "faults")
    // On the cluster each process lists a different node first: two workers and the
    // producer start on three different nodes.
    func node(_ n: Int) -> String { "amqp://guest:guest@127.0.0.1:\(5700 + n)/?heartbeat=2" }
    func nodes(from first: Int) -> String { (0..<3).map { node((first - 1 + $0) % 3 + 1) }.joined(separator: ",") }
    if options.cluster { try TestServices.script("start", "cluster") }
    let amqpURL = options.cluster ? nodes(from: 3) : "amqp://guest:guest@127.0.0.1:5674/?heartbeat=2"
    let adminURL = TestServices.faultsDatabaseURL

    // A database and a queue prefix of its own.
    let database = TestServices.uniqueName("faultrun")
    let admin = try await Postgres.Connection.connect(to: adminURL, logger: TestServices.logger)
    try await admin.execute(script: "CREATE DATABASE \(database)")
    await admin.close()
    var components = URLComponents(string: adminURL)!
    components.path = "/" + database
    let databaseURL = components.string!
    try await Migrator(databaseURL: databaseURL, migrations: try Migration.load(directory: root.appendingPathComponent("migrations").path), logger: TestServices.logger).run()
    let prefix = TestServices.uniqueName("faultrun")

    // Tenants, endpoints and the receiver.
    let pool = try Pool(url: databaseURL, size: 4, logger: TestServices.logger)
    var tenants: [(UUID, [String])] = []
    var secrets: [String: String] = [:]
    let ledgerBox = Locked<Ledger?>(nil)
    let receiver = try await TestHTTPServer.start { request in
        ledgerBox.withLock { $0 }?.receive(request) ?? .status(503)
    }
    for t in 0..<options.tenants {
        let tenant = try await pool.query("INSERT INTO tenants (name) VALUES (\("tenant \(t)")) RETURNING id")[0].decode(UUID.self, 0)
        var paths: [String] = []
        for e in 0..<options.endpointsPerTenant {
            let path = "/t\(t)/e\(e)"
            let secret = Signature.generateSecret()
            secrets[path] = secret
            paths.append(path)
            try await pool.query(
                """
                INSERT INTO endpoints (tenant_id, url, event_types, payload_format, secret, enabled, dpa_confirmed_at)
                VALUES (\(tenant), \(receiver.url + path), \(["*"]), 'envelope', \(secret), true, now())
                """)
        }
        tenants.append((tenant, paths))
    }
    let ledger = Ledger(secrets: secrets)
    ledgerBox.withLock { $0 = ledger }
    // Endpoints must never be disabled by the planned outages.
    try await pool.query("UPDATE endpoints SET consecutive_failures = 0")

    // Two workers unless told otherwise.
    let workersStarted = Locked<Int>(0)
    func startWorker() throws -> Process {
        let first = workersStarted.withLock { count in
            count += 1
            return count % 2 + 1
        }
        let process = Process()
        process.executableURL = root.appendingPathComponent(".build/debug/herald")
        process.arguments = ["worker", "--queue-prefix", prefix, "--retry-ladder", options.ladder]
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_DATABASE_URL"] = databaseURL
        environment["HERALD_AMQP_URL"] = options.cluster ? nodes(from: first) : amqpURL
        environment["HERALD_ALLOWED_ADDRESSES"] = "127.0.0.0/8"
        environment["HERALD_WORKER_PORT"] = "0"
        // FAULTRUN_WORKER_LOGS=DIR keeps each worker's log in DIR/worker-N.log, at
        // FAULTRUN_WORKER_LOG_LEVEL (info shows every failed attempt, debug every delivery).
        environment["HERALD_LOG_LEVEL"] = environment["FAULTRUN_WORKER_LOG_LEVEL"] ?? "error"
        environment["HERALD_DISABLE_AFTER"] = "0"
        environment["HERALD_WORKER_CONCURRENCY"] = "100"
        // Circuits open during the 503 stretch and probe soon after it.
        environment["HERALD_BREAKER_MIN_ATTEMPTS"] = "10"
        environment["HERALD_BREAKER_COOLDOWN"] = "2s"
        process.environment = environment
        if let dir = environment["FAULTRUN_WORKER_LOGS"] {
            let path = "\(dir)/worker-\(workersStarted.withLock { $0 }).log"
            guard FileManager.default.createFile(atPath: path, contents: nil), let log = FileHandle(forWritingAtPath: path) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
            process.standardOutput = log
            process.standardError = log
        }
        try process.run()
        return process
    }
    let workers = Locked<[Process]>(try (0..<options.workers).map { _ in try startWorker() })
    let topology = Topology(prefix: prefix, ladder: .standard)

    // Wait until a worker declared the topology, then publish everything, retrying what
    // the broker did not confirm (what a CRM does); the confirmed set is the expectation.
    let producer = Producer(configuration: .init(amqpURL: amqpURL, exchange: topology.eventsExchange, timeout: .seconds(5)), logger: TestServices.logger)
    let expected = Locked<Set<String>>([])
    let tenantList = tenants
    // Circuits the workers open, seen in the endpoints' rows (endpoint and opening time).
    let circuits = Locked<Set<String>>([])
    let watching = Task {
        while !Task.isCancelled {
            if let rows = try? await pool.query("SELECT id::text, circuit_opened_at::text FROM endpoints WHERE circuit_opened_at IS NOT NULL") {
                let seen = rows.compactMap { row in (try? row.decode(String.self, 0)).flatMap { id in (try? row.decode(String.self, 1)).map { id + "@" + $0 } } }
                circuits.withLock { $0.formUnion(seen) }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
    let publishing = Task {
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<16 {
                group.addTask {
                    var n = lane
                    // A time-ordered id as the producer makes them, kept for every attempt
                    // to publish the same event.
                    var id = Event.generateID()
                    let origin = ContinuousClock.now
                    while n < options.events {
                        let due = origin + .milliseconds(Int64(n) * 1000 / Int64(options.rate))
                        if due > ContinuousClock.now { try? await Task.sleep(until: due) }
                        let (tenant, paths) = tenantList[n % tenantList.count]
                        let event = Event(id: id, type: "client.created", tenantID: tenant, data: Array("{\"n\":\(n)}".utf8))
                        do {
                            try await producer.publish(event)
                            expected.withLock { set in for path in paths { set.insert("\(event.id) \(path)") } }
                            n += 16
                            id = Event.generateID()
                        } catch {
                            try? await Task.sleep(for: .milliseconds(200))
                        }
                    }
                }
            }
        }
    }
    let total = options.events * options.endpointsPerTenant
    func delivered() -> Int { ledger.state.withLock { $0.pairs.count } }
    func waitFor(_ fraction: Double) async {
        while delivered() < Int(Double(total) * fraction) && ContinuousClock.now - started < options.timeout {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    // The faults, spread over the run.
    var recoveries: [String] = []
    var schedule: [(Double, String)] =
        options.cluster
        ? [(0.05, "503"), (0.3, "kill-leader"), (0.6, "stop-node")]
        : [(0.05, "503"), (0.35, "rabbitmq"), (0.55, "postgres"), (0.75, "freeze")]
    var restarted = 0
    for k in 0..<options.kills { schedule.append((0.1 + 0.6 * Double(k) / Double(max(1, options.kills)), "kill")) }
    schedule.sort { $0.0 < $1.0 }
    /// Seconds from `since` until deliveries move past `count` (how long a fault stalled them).
    func resumed(after count: Int, since: ContinuousClock.Instant) async -> String {
        while delivered() == count && delivered() < total && ContinuousClock.now - started < options.timeout {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return Elapsed.seconds(ContinuousClock.now - since)
    }
    for (fraction, fault) in schedule {
        await waitFor(fraction)
        let before = delivered()
        let faultStart = ContinuousClock.now
        switch fault {
        case "kill":
            let index = Int.random(in: 0..<options.workers)
            let victim = workers.withLock { $0[index] }
            kill(victim.processIdentifier, SIGKILL)
            victim.waitUntilExit()
            let replacement = try startWorker()
            workers.withLock { $0[index] = replacement }
            log("killed worker \(victim.processIdentifier) with SIGKILL at \(before)/\(total), started \(replacement.processIdentifier)")
            continue
        case "503":
            ledger.state.withLock { $0.failing = true }
            try await Task.sleep(for: .seconds(2))
            ledger.state.withLock { $0.failing = false }
            log("receiver answered 503 for 2 s at \(before)/\(total)")
        case "rabbitmq":
            try TestServices.script("restart-rabbitmq", "faults")
            log("restarted RabbitMQ at \(before)/\(total)")
        case "postgres":
            try TestServices.script("restart-postgres", "faults")
            log("restarted PostgreSQL at \(before)/\(total)")
        case "kill-leader":
            let leader = try TestServices.scriptOutput("leader", "cluster", topology.workQueue)
            try TestServices.script("kill-node", "cluster", leader)
            let killedAt = ContinuousClock.now
            restarted = Int(leader) ?? 1
            log("killed node \(leader), the work queue's leader, with SIGKILL at \(before)/\(total)")
            let count = delivered()
            recoveries.append("kill-leader: deliveries moving \(await resumed(after: count, since: killedAt)) s after node \(leader) was killed")
            try await Task.sleep(for: .seconds(3))
            try TestServices.script("start-node", "cluster", leader)
            log("restarted node \(leader)")
        case "stop-node":
            // Another node than the one restarted: one node down at a time keeps the majority.
            let other = String(restarted % 3 + 1)
            try TestServices.script("stop-node", "cluster", other)
            let stoppedAt = ContinuousClock.now
            log("stopped node \(other) at \(before)/\(total)")
            let count = delivered()
            recoveries.append("stop-node: deliveries moving \(await resumed(after: count, since: stoppedAt)) s after node \(other) stopped")
            try await Task.sleep(for: .seconds(3))
            try TestServices.script("start-node", "cluster", other)
            log("started node \(other)")
        default:
            let frozen = workers.withLock { $0[0] }
            kill(frozen.processIdentifier, SIGSTOP)
            try await Task.sleep(for: .seconds(8))
            kill(frozen.processIdentifier, SIGCONT)
            log("froze worker \(frozen.processIdentifier) for 8 s (heartbeat 2 s) at \(before)/\(total)")
        }
        // Time to recover: from the end of the fault until deliveries move again.
        let faultEnd = ContinuousClock.now
        let after = delivered()
        while delivered() == after && delivered() < total && ContinuousClock.now - started < options.timeout {
            try await Task.sleep(for: .milliseconds(20))
        }
        recoveries.append(
            "\(fault): lasted \(Elapsed.seconds(faultEnd - faultStart)) s; deliveries moving again \(Elapsed.seconds(ContinuousClock.now - faultEnd)) s after it ended")
    }
    await publishing.value

    // The messages ready in each of the run's queues; nil when the broker could not be asked.
    let queues = Topology(prefix: prefix, ladder: try Ladder(parsing: options.ladder)).queues
    func waiting() async -> [String: Int]? {
        guard let connection = try? await HeraldAMQP.Connection.connect(to: amqpURL, logger: TestServices.logger) else { return nil }
        var counts: [String: Int] = [:]
        for queue in queues {
            if let channel = try? await connection.openChannel(), let info = try? await channel.declareQueue(queue, passive: true) {
                counts[queue] = Int(info.messageCount)
            }
        }
        await connection.close()
        return counts
    }

    // Settle: everything confirmed delivered, every delivery final, every queue empty.
    let want = expected.withLock { $0 }
    var final = false
    var emptyQueues = false
    while ContinuousClock.now - started < options.timeout {
        let seen = Set(ledger.state.withLock { $0.pairs.keys })
        if want.isSubset(of: seen) {
            let open = (try? await pool.query("SELECT count(*) FROM deliveries WHERE status NOT IN ('delivered', 'failed', 'skipped')")[0].decode(Int.self, 0)) ?? -1
            final = open == 0
            if final, let counts = await waiting() {
                emptyQueues = counts.values.allSatisfy { $0 == 0 }
                if emptyQueues { break }
            }
        }
        try await Task.sleep(for: .milliseconds(200))
    }
    for worker in workers.withLock({ $0 }) {
        kill(worker.processIdentifier, SIGTERM)
        worker.waitUntilExit()
    }
    // What an unfinished run left in the queues once its workers gave back what they held:
    // open deliveries with no message anywhere were lost, not late.
    var waitingLine = ""
    if !emptyQueues, let counts = await waiting() {
        let named = counts.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key.dropFirst(prefix.count + 1)) \($0.value)" }
        waitingLine = "\n  messages waiting      " + (named.isEmpty ? "none, in any queue" : named.joined(separator: ", "))
    }
    await producer.close()

    watching.cancel()
    await watching.value
    let stillOpen = (try? await pool.query("SELECT count(*) FROM endpoints WHERE circuit_opened_at IS NOT NULL")[0].decode(Int.self, 0)) ?? -1
    let snapshot = ledger.state.withLock { $0 }
    let seen = Set(snapshot.pairs.keys)
    let lost = want.subtracting(seen).count
    let unexpected = seen.subtracting(want).count
    let duplicates = snapshot.accepted - seen.count
    let refused = snapshot.requests - snapshot.accepted
    let repeatedIDs = snapshot.pairs.values.filter { $0.count > 1 }.count
    let attempts = (try? await pool.query("SELECT count(*) FROM delivery_attempts")[0].decode(Int.self, 0)) ?? -1
    let failed = (try? await pool.query("SELECT count(*) FROM deliveries WHERE status <> 'delivered'")[0].decode(Int.self, 0)) ?? -1
    await pool.close()
    await receiver.stop()
    let elapsed = ContinuousClock.now - started
    print("""

        fault run: \(options.events) events at \(options.rate)/s × \(options.endpointsPerTenant) endpoints, \(options.tenants) tenants, \
        \(options.workers) worker\(options.workers == 1 ? "" : "s"), \(options.kills) SIGKILLs, \
        \(options.cluster ? "a three-node cluster: its work queue's leader killed and restarted, another node stopped" : "RabbitMQ and PostgreSQL restarts, an 8 s freeze"), \
        2 s of 503s, in \(Elapsed.seconds(elapsed)) s
          confirmed pairs       \(want.count)
          delivered pairs       \(seen.count)
          lost                  \(lost)
          unexpected            \(unexpected)
          invalid signatures    \(snapshot.invalidSignatures)
          requests              \(snapshot.requests) (\(refused) answered 503 during the stretch)
          duplicates            \(duplicates) (a pair accepted more than once: work in flight at a kill, freeze or restart)
          pairs with >1 request id  \(repeatedIDs)
          attempts recorded     \(attempts)
          circuits opened       \(circuits.withLock { $0.count }) (\(stillOpen) still open at the end)
          deliveries not delivered  \(failed)
          every delivery final  \(final)
          every queue empty     \(emptyQueues)\(waitingLine)
        """)
    for line in recoveries { print("  " + line) }
    let ok = lost == 0 && unexpected == 0 && snapshot.invalidSignatures == 0 && final && emptyQueues && failed == 0
    if ok {
        let admin = try await Postgres.Connection.connect(to: adminURL, logger: TestServices.logger)
        try? await admin.execute(script: "DROP DATABASE \(database) WITH (FORCE)")
        await admin.close()
    } else {
        print("the run's database is kept for inspection: \(database), queue prefix \(prefix)")
    }
    print(ok ? "fault run: PASSED" : "fault run: FAILED")
    return ok ? 0 : 1
}

exit(try await run())
