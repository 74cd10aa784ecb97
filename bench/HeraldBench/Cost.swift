import Foundation

/// CPU seconds used so far by each kind of process on this machine, from `/proc`: what a
/// delivery costs each of them is the difference over a run divided by its deliveries,
/// the figure that carries from one machine to another (the rates do not).
struct CPUSnapshot {
    /// The kinds, in the order the table shows them.
    static let kinds = ["worker", "postgres", "rabbitmq", "producer", "nginx"]

    var seconds: [String: Double] = [:]
    /// How many times the workers' threads went to sleep waiting (voluntary context
    /// switches): a thread an event crosses, or a wait for a server. Fewer when threads
    /// find work already waiting, so it too is compared between binaries in one run. A
    /// thread that ends between two snapshots takes its count with it (the worker's
    /// threads live as long as it does; Dispatch's idle ones may not), so it can read low.
    var workerSleeps = 0

    /// The key of `perDelivery`'s result that holds the workers' sleeps per delivery.
    static let sleepsKey = "worker sleeps"

    /// The workers are the given processes, and so are the `herald api` processes (kind
    /// `api`, counted only where given); PostgreSQL every `postgres` process (with the
    /// backends that have exited, counted in their parent's children's time), RabbitMQ
    /// every `beam.smp`, nginx every `nginx`, and the producer this benchmark process.
    static func take(workers: [Int32], apis: [Int32] = []) -> CPUSnapshot {
        var snapshot = CPUSnapshot()
        let workerSet = Set(workers), apiSet = Set(apis)
        let own = ProcessInfo.processInfo.processIdentifier
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        for pid in pids {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
            else { continue }
            let command = String(stat[stat.index(after: open)..<close])
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After the command: state is field 3; utime, stime, cutime, cstime are 14 to 17.
            guard fields.count > 14, let user = Double(fields[11]), let system = Double(fields[12]),
                let childUser = Double(fields[13]), let childSystem = Double(fields[14])
            else { continue }
            let kind: String?
            if workerSet.contains(pid) {
                kind = "worker"
            } else if apiSet.contains(pid) {
                kind = "api"
            } else if pid == own {
                kind = "producer"
            } else if command == "postgres" {
                kind = "postgres"
            } else if command.hasPrefix("beam") {
                kind = "rabbitmq"
            } else if command == "nginx" {
                kind = "nginx"
            } else {
                kind = nil
            }
            guard let kind else { continue }
            // Herald's and the producer's children are not theirs to count.
            let children = kind == "worker" || kind == "api" || kind == "producer" ? 0 : childUser + childSystem
            snapshot.seconds[kind, default: 0] += (user + system + children) / ticks
            if kind == "worker" { snapshot.workerSleeps += voluntarySwitches(of: pid) }
        }
        return snapshot
    }

    /// The voluntary context switches of every thread of `pid` (the process's own status
    /// line counts its main thread only).
    private static func voluntarySwitches(of pid: Int32) -> Int {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var total = 0
        for thread in threads {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/status", encoding: .utf8) else { continue }
            for line in status.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches:") {
                total += Int(line.dropFirst("voluntary_ctxt_switches:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return total
    }

    /// Microseconds of CPU per delivery of each kind, from `self` to `later`.
    func perDelivery(until later: CPUSnapshot, deliveries: Int) -> [String: Double] {
        var cost: [String: Double] = [:]
        for kind in Self.kinds + (later.seconds["api"] == nil ? [] : ["api"]) {
            cost[kind] = max(0, (later.seconds[kind] ?? 0) - (seconds[kind] ?? 0)) * 1e6 / Double(max(1, deliveries))
        }
        cost[Self.sleepsKey] = Double(max(0, later.workerSleeps - workerSleeps)) / Double(max(1, deliveries))
        return cost
    }
}

/// One line of the table: µs of CPU per delivery by process, and the sum of the three
/// that scale with deliveries (worker, PostgreSQL, RabbitMQ).
func costLine(_ cost: [String: Double]) -> String {
    let parts = CPUSnapshot.kinds.map { kind in
        let name = ["worker": "worker", "postgres": "PostgreSQL", "rabbitmq": "RabbitMQ", "producer": "producer", "nginx": "nginx"][kind] ?? kind
        return "\(name) \(format(cost[kind] ?? .nan, "", decimals: 0).trimmingCharacters(in: .whitespaces))"
    }
    let core = (cost["worker"] ?? 0) + (cost["postgres"] ?? 0) + (cost["rabbitmq"] ?? 0)
    let sleeps = cost[CPUSnapshot.sleepsKey].map { String(format: "; the worker's threads slept %.1f times per delivery", $0) } ?? ""
    return parts.joined(separator: ", ") + " µs; worker + PostgreSQL + RabbitMQ \(format(core, "µs"))" + sleeps
}

/// The mean of several runs' costs, kind by kind.
func meanCost(_ costs: [[String: Double]]) -> [String: Double] {
    var mean: [String: Double] = [:]
    for kind in CPUSnapshot.kinds + [CPUSnapshot.sleepsKey] {
        let values = costs.compactMap { $0[kind] }
        if !values.isEmpty { mean[kind] = values.reduce(0, +) / Double(values.count) }
    }
    return mean
}

/// What one run of the peer (bench/peer) measured.
struct PeerResult: Decodable {
    var deliveriesPerSecond: Double
    var events: Int
    var workerMicroseconds: Double
    var pool: String
    var concurrency: Int

    enum CodingKeys: String, CodingKey {
        case deliveriesPerSecond = "deliveries_per_second"
        case events
        case workerMicroseconds = "worker_cpu_us_per_delivery"
        case pool, concurrency
    }
}

/// 13. The peer: Celery with requests doing the same job on the same servers and receiver
/// (`bench/peer/run_peer.py`, with the interpreter of the virtual environment `bench/run`
/// made from `bench/peer/requirements.txt`). Prefork with 16 processes was its best of 4, 8
/// and 16 here (667, 669 and 720 deliveries/s on 5,000 events, within the noise).
func peerRun(_ options: Options) async throws -> PeerResult {
    let environment = ProcessInfo.processInfo.environment
    guard let python = environment["HERALD_BENCH_PEER_PYTHON"] else { throw BenchError("peer: HERALD_BENCH_PEER_PYTHON is not set (bench/run sets it)") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [
        environment["HERALD_BENCH_PEER_SCRIPT"] ?? "bench/peer/run_peer.py", "--amqp", options.amqpURL, "--database", options.adminURL,
        "--receiver", options.receiver, "--events", String(max(1_000, options.events / 10)), "--tenants", String(options.tenants),
        "--pool", "prefork", "--concurrency", "16",
    ]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
    process.waitUntilExit()
    guard process.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last else {
        throw BenchError("peer: run_peer.py exited with \(process.terminationStatus)")
    }
    return try JSONDecoder().decode(PeerResult.self, from: Data(line.utf8))
}
