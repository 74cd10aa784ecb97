import HeraldAMQP
import Delivery
import HeraldEvents
import FanOut
import Foundation
import HTTPClient
import Postgres
import HeraldProducer
import Topology

/// A JSON object of `bytes` bytes (1 KiB unless told) for event number `n`.
func payload(_ n: Int, bytes: Int = 1024) -> [UInt8] {
    let head = "{\"n\":\(n),\"client\":{\"name\":\"Bench Client\",\"email\":\"client\(n)@example.com\"},\"pad\":\""
    // Bytes, not `String(repeating:)` (which appends one string at a time): the benchmark's
    // own process shares the two cores and is counted as the producer's CPU.
    var out = Array(head.utf8)
    out.reserveCapacity(max(bytes, out.count + 2))
    out.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: max(0, bytes - 2 - out.count)))
    out += "\"}".utf8
    return out
}

/// Publishes events `0..<count` from concurrent lanes, each waiting for its confirm
/// (many outstanding in all), retrying what the broker did not confirm. With `rate`, event
/// `n` is published no earlier than `n / rate` seconds after the start, by `paced`, and
/// `lanes` does not apply: a paced run does not wait for earlier publishes.
/// Returns the wall time at which each publish began.
func publish(
    _ producer: Producer, count: Int, lanes: Int = 128, rate: Int? = nil, make: @escaping @Sendable (Int) -> Event
) async -> [Double] {
    let times = Locked([Double](repeating: 0, count: count))
    if let rate { return await paced(producer, count: count, rate: rate, times: times, make: make) }
    await withTaskGroup(of: Void.self) { group in
        for lane in 0..<min(lanes, count) {
            group.addTask {
                var n = lane
                while n < count {
                    await publishOne(producer, n, times: times, make: make)
                    n += lanes
                }
            }
        }
    }
    return times.withLock { $0 }
}

/// One clock for a paced run: every event due by now leaves at once, each in a task of
/// its own, and the pacer sleeps until the next is due, a millisecond at least. A timer
/// per lane and per event (the earlier way) cost the benchmark process 130–145 µs of CPU
/// per event at 2,000 a second, counted in the producer's column and taken from the
/// machine whose latency is measured.
private func paced(
    _ producer: Producer, count: Int, rate: Int, times: Locked<[Double]>, make: @escaping @Sendable (Int) -> Event
) async -> [Double] {
    let origin = ContinuousClock.now
    func due(_ n: Int) -> ContinuousClock.Instant { origin + .microseconds(Int64(n) * 1_000_000 / Int64(rate)) }
    await withDiscardingTaskGroup { group in
        var next = 0
        while next < count {
            let now = ContinuousClock.now
            while next < count && due(next) <= now {
                let n = next
                group.addTask { await publishOne(producer, n, times: times, make: make) }
                next += 1
            }
            if next < count { try? await Task.sleep(until: max(due(next), now + .milliseconds(1))) }
        }
    }
    return times.withLock { $0 }
}

/// Publishes event `n` until the broker confirms it; records when the last try began.
private func publishOne(_ producer: Producer, _ n: Int, times: Locked<[Double]>, make: @Sendable (Int) -> Event) async {
    let event = make(n)
    while true {
        let time = Date().timeIntervalSince1970
        do {
            try await producer.publish(event)
            times.withLock { $0[n] = time }
            return
        } catch {
            say("publish \(event.id) failed (\(error)); again")
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// 1. Persistent 1 KiB messages through a quorum queue, confirms with many outstanding,
/// a consumer acking each one: messages per second, and RabbitMQ's CPU per message (the
/// floor of its share of a delivery: one publish, one delivery, one ack).
func brokerCeiling(_ options: Options) async throws -> (rate: Double, brokerMicroseconds: Double) {
    let count = options.events
    let queue = "bench.broker.\(UUID().uuidString.prefix(8).lowercased())"
    let publishing = try await HeraldAMQP.Connection.connect(to: options.amqpURL, logger: logger)
    let consuming = try await HeraldAMQP.Connection.connect(to: options.amqpURL, logger: logger)
    defer {
        Task {
            await publishing.close()
            await consuming.close()
        }
    }
    let publisher = try await publishing.openChannel()
    try await publisher.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
    try await publisher.enableConfirms()
    let channel = try await consuming.openChannel()
    try await channel.setPrefetch(200)
    let consumer = try await channel.consume(queue)
    let body = payload(0)
    let cpu = CPUSnapshot.take(workers: [])
    let started = ContinuousClock.now
    let consumed = Task {
        var n = 0
        for try await delivery in consumer {
            channel.ack(delivery.deliveryTag)
            n += 1
            if n == count { break }
        }
        return ContinuousClock.now
    }
    await withThrowingTaskGroup(of: Void.self) { group in
        let lanes = 256
        for lane in 0..<lanes {
            group.addTask {
                var n = lane
                while n < count {
                    try await publisher.publish(Message(body: body), exchange: "", routingKey: queue)
                    n += lanes
                }
            }
        }
        while let result = await group.nextResult() {
            if case .failure(let error) = result { say("broker ceiling: publish failed: \(error)") }
        }
    }
    let finished = try await consumed.value
    let cost = cpu.perDelivery(until: CPUSnapshot.take(workers: []), deliveries: count)
    try await publisher.deleteQueue(queue)
    return (Double(count) / seconds(finished - started), cost["rabbitmq"] ?? .nan)
}

/// 2. Our curl-multi client alone, posting signed 1 KiB bodies to the receiver with the
/// worker's default concurrency: requests per second.
func httpCeiling(_ options: Options) async throws -> Double {
    let count = options.events
    let client = Client()
    let endpoint = Endpoint(id: UUID(), tenantID: UUID(), url: options.receiver + "/ceiling", eventTypes: ["*"], secret: Signature.generateSecret())
    let event = Event(type: "client.created", tenantID: endpoint.tenantID, data: payload(0))
    let failures = Locked(0)
    let started = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        let lanes = 200
        for lane in 0..<lanes {
            group.addTask {
                var n = lane
                while n < count {
                    let request = WebhookRequest.make(event: event, endpoint: endpoint, deliveryID: UUID(), requestID: UUID(), now: Date(), settings: RequestSettings())
                    let status = (try? await client.execute(request))?.status
                    if status != 204 { failures.withLock { $0 += 1 } }
                    n += lanes
                }
            }
        }
    }
    let elapsed = ContinuousClock.now - started
    await client.shutdown()
    let failed = failures.withLock { $0 }
    guard failed == 0 else { throw BenchError("http ceiling: \(failed) requests did not get 204") }
    return Double(count) / seconds(elapsed)
}

/// What an end-to-end run measured.
struct Drain {
    var deliveriesPerSecond: Double
    var received: Int
    var expected: Int
    var peakRSS: Int
    /// µs of CPU per delivery, by kind of process (`CPUSnapshot.kinds`).
    var cost: [String: Double] = [:]
    /// The size of each event's data.
    var dataBytes = 1024

    /// The mean rate of several runs, the worst count and the highest peak.
    static func mean(_ runs: [Drain]) -> Drain? {
        guard let first = runs.first else { return nil }
        var mean = first
        mean.deliveriesPerSecond = runs.map(\.deliveriesPerSecond).reduce(0, +) / Double(runs.count)
        mean.peakRSS = runs.map(\.peakRSS).max() ?? 0
        mean.received = runs.first { $0.received != $0.expected }?.received ?? first.received
        mean.cost = meanCost(runs.map(\.cost))
        return mean
    }
}

/// 3, 5 and 6: `events` events over the tenants, drained by `workers` worker processes with
/// every guarantee on; with `hanging`, that share of the tenants' endpoints never answer
/// and only deliveries to the others are timed.
/// With `delay`, every endpoint is a `SlowingServer` answering after that long and the
/// workers run with `environment`: scaling where the work is waiting, not CPU.
func endToEnd(
    _ options: Options, label: String, workers: Int, hanging: Double = 0, events: Int? = nil, dataBytes: Int = 1024,
    delay: Duration? = nil, environment: [String: String] = [:], tenantCount: Int? = nil, warmUp: Bool = false
) async throws -> Drain {
    let eventCount = events ?? options.events
    return try await Scenario.run(options, label: label) { scenario in
        let database = scenario.database
        let tenants = try await database.tenants(tenantCount ?? options.tenants, receiver: options.receiver)
        let delayServer = try delay.map { delay in
            let server = try SlowingServer()
            server.setDelay(microseconds: Int(delay.components.seconds * 1_000_000 + delay.components.attoseconds / 1_000_000_000_000))
            return server
        }
        if let delayServer {
            try await database.pool.query("UPDATE endpoints SET url = \("http://127.0.0.1:\(delayServer.port)/t")")
        }
        let hangingCount = Int((Double(tenants.count) * hanging).rounded())
        // Held until the scenario ends: its accepted connections never answer.
        let server = hangingCount > 0 ? try HangingServer() : nil
        if let server {
            try await database.pool.query(
                """
                UPDATE endpoints SET url = \("http://127.0.0.1:\(server.port)/hang")
                WHERE tenant_id::text = ANY(\(tenants.prefix(hangingCount).map { $0.uuidString.lowercased() }))
                """)
        }
        let healthy = Set(tenants.dropFirst(hangingCount))
        let expected = (0..<eventCount).filter { healthy.contains(tenants[$0 % tenants.count]) }.count
        let log = AccessLog(path: options.accessLog)
        try await scenario.startWorkers(workers, environment: environment)
        let producer = scenario.producer()
        // One event per tenant first, so that what follows finds the worker as it is after
        // a while in service: every tenant seen, caches filled.
        let warmed = warmUp ? tenants.count : 0
        if warmUp {
            _ = await publish(producer, count: warmed) { n in
                Event(id: Event.generateID(), type: "client.created", tenantID: tenants[n], data: payload(n, bytes: dataBytes))
            }
            try await log.awaitLines(warmed, within: .seconds(600), label: label)
            try await database.await(
                "SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: warmed, within: .seconds(600), label: label)
            say("\(label): warmed up with one event for each of \(warmed) tenants")
        }
        let workerIDs = scenario.workers.map(\.process.processIdentifier)
        // The setting up (10,000 tenants are as many commits) and the warm-up are not counted.
        let commitsBefore = try await database.count("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        let before = CPUSnapshot.take(workers: workerIDs)
        let started = Date()
        let times = await publish(producer, count: eventCount) { n in
            Event(id: Event.generateID(), type: "client.created", tenantID: tenants[n % tenants.count], data: payload(n, bytes: dataBytes))
        }
        await producer.close()
        let published = Date()
        // The receiver's log says when the requests are all in; PostgreSQL is asked once
        // they are (its records commit a moment after the requests).
        if delayServer == nil { try await log.awaitLines(expected + warmed, within: .seconds(600), label: label) }
        try await database.await(
            "SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: expected + warmed, within: .seconds(600), label: label)
        let finished = try await database.pool.query("SELECT max(delivered_at) FROM deliveries WHERE status = 'delivered'")[0].decode(Date.self, 0)
        let cost = before.perDelivery(until: CPUSnapshot.take(workers: workerIDs), deliveries: expected)
        let rss = scenario.workers.map(\.peakRSS).max() ?? 0
        let cpu = scenario.workers.map(\.cpuSeconds).reduce(0, +)
        // Statistics arrive at the collector a moment after the commits.
        try await Task.sleep(for: .milliseconds(700))
        let commits = try await database.count("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()") - commitsBefore
        // Updates of deliveries, and the share PostgreSQL made in place (HOT): no new index entries.
        let counted = try await database.pool.query(
            "SELECT n_tup_upd::bigint, n_tup_hot_upd::bigint FROM pg_stat_user_tables WHERE relname = 'deliveries'")[0]
        let updates = try counted.decode(Int.self, 0)
        let inPlace = updates == 0 ? -1 : 100 * (try counted.decode(Int.self, 1)) / updates
        // Deliveries whose endpoint had no free slot wait in the defer queue.
        let waited = try await database.count(
            "SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered' AND delivered_at - created_at > interval '2 seconds'")
        // Delivered deliveries whose event was stored before their first attempt began:
        // a worker alone sends first copies before their store, unless a delivery waits.
        let storedFirst = try await database.count(
            """
            SELECT count(*)::bigint FROM deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
            JOIN delivery_attempts a ON a.delivery_id = d.id AND a.attempt = 1
            WHERE d.status = 'delivered' AND e.received_at <= a.started_at
            """)
        let received: Int
        if let delayServer {
            received = delayServer.answered
        } else {
            received = try await log.lines().filter { $0.uri.hasPrefix("/t") }.count - warmed
        }
        let first = times.filter { $0 > 0 }.min() ?? started.timeIntervalSince1970
        let elapsed = finished.timeIntervalSince1970 - first
        say(
            "\(label): published \(eventCount) in \(String(format: "%.1f", published.timeIntervalSince(started))) s; \(expected) delivered "
                + "\(String(format: "%.1f", elapsed)) s after the first publish; worker CPU \(String(format: "%.1f", cpu)) s; "
                + "\(commits) PostgreSQL commits; \(inPlace < 0 ? "no delivery updated" : "\(updates) delivery updates, \(inPlace) % in place (HOT)"); \(waited) delivered more than 2 s after being stored; \(storedFirst) stored before their first attempt")
        withExtendedLifetime(server) {}
        withExtendedLifetime(delayServer) {}
        say("\(label): CPU per delivery: \(costLine(cost))")
        return Drain(
            deliveriesPerSecond: Double(expected) / elapsed, received: received, expected: expected, peakRSS: rss, cost: cost, dataBytes: dataBytes)
    }
}

/// What the latency run measured, in milliseconds.
struct Latency {
    var p50: Double
    var p95: Double
    var p99: Double
    var max: Double
    var samples: Int
    /// Where the time went, p50 / p99 of each in ms: publish → the first attempt began
    /// (`started_at`: broker, intake, a slot, and the store when it comes first), → nginx
    /// logged it; and when the store statement began (`events.received_at`) from the
    /// attempt's start, negative for an event stored before its first attempt (a worker
    /// sends first by default while it is alone).
    var stages: [(name: String, p50: Double, p99: Double)] = []
    /// µs of CPU per event by process while the events were published (the steady part),
    /// and the share of all cores the measured processes used meanwhile: half of the end
    /// to end rate is not half of the machine (smaller batches cost more per event).
    var cost: [String: Double] = [:]
    var busy: Double = 0
}

/// 4. Events at `rate` a second for a while; publish → receiver, from the receiver's log.
func latency(_ options: Options, rate: Int) async throws -> Latency {
    try await Scenario.run(options, label: "latency") { scenario in
        let database = scenario.database
        let tenants = try await database.tenants(options.tenants, receiver: options.receiver)
        try await scenario.startWorkers(1)
        let log = AccessLog(path: options.accessLog)
        let producer = scenario.producer()
        let count = rate * options.latencySeconds
        let workerIDs = scenario.workers.map(\.process.processIdentifier)
        let before = CPUSnapshot.take(workers: workerIDs), started = ContinuousClock.now
        let times = await publish(producer, count: count, rate: rate) { n in
            Event(id: Event.generateID(), type: "client.created", tenantID: tenants[n % tenants.count], data: payload(n))
        }
        let after = CPUSnapshot.take(workers: workerIDs), elapsed = started.duration(to: .now)
        await producer.close()
        let used = CPUSnapshot.kinds.reduce(0.0) { $0 + max(0, (after.seconds[$1] ?? 0) - (before.seconds[$1] ?? 0)) }
        let busy = used / (elapsed.seconds * Double(ProcessInfo.processInfo.activeProcessorCount))
        try await database.await("SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: count, within: .seconds(300), label: "latency")
        var event: [Substring: (n: Int, stored: Double, started: Double)] = [:]
        // nginx logs webhook-id, which is the delivery's id.
        for row in try await database.pool.query(
            """
            SELECT d.id::text, (e.data->>'n')::int, extract(epoch FROM e.received_at)::float8, extract(epoch FROM a.started_at)::float8
            FROM deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
            JOIN delivery_attempts a ON a.delivery_id = d.id AND a.attempt = 1
            """)
        {
            event[Substring(try row.decode(String.self, 0))] = (
                try row.decode(Int.self, 1), try row.decode(Double.self, 2), try row.decode(Double.self, 3)
            )
        }
        var latencies: [Double] = []
        var stages: [[Double]] = [[], [], []]
        // Every sample, for looking at when the slow ones happened.
        var csv = "published_s,total_ms,attempt_ms,receiver_ms,stored_after_attempt_ms\n"
        for line in try await log.lines() {
            guard let (n, stored, started) = event[line.webhookID] else { continue }
            let sample = [(line.time - times[n]) * 1000, (started - times[n]) * 1000, (line.time - started) * 1000, (stored - started) * 1000]
            latencies.append(sample[0])
            for stage in 0..<3 { stages[stage].append(sample[stage + 1]) }
            csv += String(format: "%.6f,%.3f,%.3f,%.3f,%.3f\n", times[n], sample[0], sample[1], sample[2], sample[3])
        }
        try csv.write(toFile: options.output + "/latency.csv", atomically: true, encoding: .utf8)
        latencies.sort()
        let names = ["publish → attempt", "attempt → receiver", "attempt → stored"]
        return Latency(
            p50: quantile(latencies, 0.50), p95: quantile(latencies, 0.95), p99: quantile(latencies, 0.99), max: latencies.last ?? .nan,
            samples: latencies.count,
            stages: zip(names, stages).map { name, values in
                let sorted = values.sorted()
                return (name, quantile(sorted, 0.50), quantile(sorted, 0.99))
            },
            cost: before.perDelivery(until: after, deliveries: count), busy: busy)
    }
}

/// What the fan-out run measured.
struct FanOutResult {
    var deliveriesPerSecond: Double
    /// Publish → the last of one event's deliveries received, median of several events.
    var oneEventMilliseconds: Double
    var endpoints: Int
    /// µs of CPU per delivery, by kind of process, over the many events.
    var cost: [String: Double] = [:]
}

/// A payload filter every benchmark event passes, as a tenant would write one: a path
/// into a sub-object, a substring, a number and an alternative.
let benchFilter = #"{"client.email": {"$contains": "@example.com"}, "n": {"$gte": 0}, "$or": [{"client.name": "Bench Client"}, {"vip": true}]}"#

/// 8. One tenant with many endpoints: single events timed to their last delivery, then
/// many events for throughput. `filtered`: every endpoint has `benchFilter`.
func fanOut(_ options: Options, filtered: Bool = false) async throws -> FanOutResult {
    try await Scenario.run(options, label: filtered ? "fanout_filtered" : "fanout") { scenario in
        let database = scenario.database
        let endpoints = options.fanoutEndpoints
        let tenant = try await database.tenants(1, receiver: options.receiver, endpointsEach: endpoints, payloadFilter: filtered ? benchFilter : nil)[0]
        try await scenario.startWorkers(1)
        let producer = scenario.producer()

        var singles: [Double] = []
        for n in 0..<11 {
            let log = AccessLog(path: options.accessLog)
            let id = Event.generateID()
            let time = await publish(producer, count: 1) { _ in
                Event(id: id, type: "client.created", tenantID: tenant, data: payload(n))
            }[0]
            try await database.await(
                "SELECT count(*)::bigint FROM deliveries WHERE event_id = \(id) AND status = 'delivered'",
                reaches: endpoints, within: .seconds(60), label: "fan-out single")
            let last = try await log.lines().map(\.time).max() ?? time
            // The first event warms the worker's caches and connections.
            if n > 0 { singles.append((last - time) * 1000) }
        }
        singles.sort()

        let count = options.fanoutEvents
        let workerIDs = scenario.workers.map(\.process.processIdentifier)
        let log = AccessLog(path: options.accessLog)
        let cpu = CPUSnapshot.take(workers: workerIDs)
        let before = try await database.count("SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'")
        let times = await publish(producer, count: count, lanes: 32) { n in
            Event(id: Event.generateID(), type: "client.created", tenantID: tenant, data: payload(n))
        }
        await producer.close()
        try await log.awaitLines(count * endpoints, within: .seconds(600), label: "fan-out")
        try await database.await(
            "SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: before + count * endpoints, within: .seconds(600),
            label: "fan-out")
        let finished = try await database.pool.query("SELECT max(delivered_at) FROM deliveries")[0].decode(Date.self, 0)
        let first = times.filter { $0 > 0 }.min() ?? 0
        return FanOutResult(
            deliveriesPerSecond: Double(count * endpoints) / (finished.timeIntervalSince1970 - first),
            oneEventMilliseconds: quantile(singles, 0.5), endpoints: endpoints,
            cost: cpu.perDelivery(until: CPUSnapshot.take(workers: workerIDs), deliveries: count * endpoints))
    }
}

/// The filter's own cost, as fan-out pays it per event: the benchmark's 1 KiB data parsed
/// once, then `benchFilter` evaluated for 100 endpoints; microseconds per event for the
/// parse alone and for the whole.
func filterMicroseconds() throws -> (parse: Double, total: Double) {
    let filter = try PayloadFilter(parsing: Array(benchFilter.utf8))
    var endpoint = Endpoint(id: UUID(), tenantID: UUID(), url: "", eventTypes: ["*"], secret: "")
    endpoint.payloadFilter = filter
    let endpoints = Array(repeating: endpoint, count: 100)
    let events = (0..<2_000).map { payload($0) }
    func microseconds(_ body: () -> Void) -> Double {
        let start = ContinuousClock.now
        body()
        let elapsed = ContinuousClock.now - start
        return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(events.count)
    }
    var parsed = 0
    let parse = microseconds {
        for data in events where ParsedData(data).root != nil { parsed += 1 }
    }
    var matched = 0
    let total = microseconds {
        for data in events {
            let parsed = ParsedData(data)
            for endpoint in endpoints where endpoint.target(for: "client.created", attributes: [:], data: parsed) == .deliver { matched += 1 }
        }
    }
    precondition(parsed == events.count && matched == events.count * 100, "the benchmark's filter must pass every event")
    return (parse, total)
}
