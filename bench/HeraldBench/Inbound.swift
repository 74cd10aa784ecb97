// 10. Inbound webhooks through a real `herald api` and `herald worker`: GitHub-signed
// 1 KiB JSON webhooks to one source whose mapping makes each an event for the tenant's
// endpoint. First as fast as concurrent senders go (accepted = stored durably and
// answered 200), then paced, timing each from the sender's 200 to the receiver's request.
import Cryptography
import Foundation
import HTTPClient
import Postgres
import Topology

struct InboundFigures {
    var acceptedPerSecond: Double
    /// Webhooks per second from the first send until the last one was delivered: the
    /// rate the whole path keeps, where accepting alone may run ahead of the deliveries.
    var deliveredPerSecond: Double
    var senders: Int
    var p50: Double
    var p99: Double
    var max: Double
    var samples: Int
    var rate: Int
    /// µs of CPU per accepted webhook, from the first send until every one is delivered,
    /// by kind of process (`CPUSnapshot`; the senders are the producer).
    var cost: [String: Double]
}

/// The inbound line: what each process spent per accepted webhook, through its delivery.
func inboundCostLine(_ cost: [String: Double]) -> String {
    let names = [("api", "API"), ("worker", "worker"), ("postgres", "PostgreSQL"), ("rabbitmq", "RabbitMQ"), ("producer", "senders"), ("nginx", "nginx")]
    let parts = names.map { "\($0.1) \(format(cost[$0.0] ?? .nan, "", decimals: 0).trimmingCharacters(in: .whitespaces))" }
    let herald = ["api", "worker", "postgres", "rabbitmq"].reduce(0) { $0 + (cost[$1] ?? 0) }
    return parts.joined(separator: ", ") + " µs; API + worker + PostgreSQL + RabbitMQ \(format(herald, "µs"))"
}

func inbound(_ options: Options, count: Int = 5000, senders: Int = 32, rate: Int = 200, seconds: Int = 10) async throws -> InboundFigures {
    try await Scenario.run(options, label: "inbound") { scenario in
        let database = scenario.database
        let tenant = try await database.tenants(1, receiver: options.receiver)[0].uuidString.lowercased()
        try await scenario.startWorkers(1)
        let api = try APIProcess(options, databaseURL: database.url, prefix: scenario.topology.topology.prefix)
        let client = Client()
        do {
            let figures = try await measureInbound(
                api, client, scenario: scenario, tenant: tenant, options: options, count: count, senders: senders, rate: rate, seconds: seconds)
            api.stop()
            await client.shutdown()
            return figures
        } catch {
            api.stop()
            await client.shutdown()
            throw error
        }
    }
}

private func measureInbound(
    _ api: APIProcess, _ client: Client, scenario: Scenario, tenant: String, options: Options, count: Int, senders: Int, rate: Int, seconds: Int
) async throws -> InboundFigures {
    let database = scenario.database
    try await api.awaitHealthy(client)
    func object(_ response: HTTPClient.Response) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }
    let keyAnswer = try await api.send(client, "POST", "/v1/tenants/\(tenant)/keys", token: APIProcess.token, body: "{}")
    guard let key = object(keyAnswer)["key"] as? String else { throw BenchError("inbound: no key (\(keyAnswer.status))") }
    let sourceAnswer = try await api.send(
        client, "POST", "/v1/sources", token: key,
        body: #"{"name": "bench", "verification": {"method": "github"}, "mapping": {"event_type": "client.created"}}"#)
    guard let url = object(sourceAnswer)["url"] as? String, let secret = object(sourceAnswer)["secret"] as? String,
        let start = url.range(of: "/in/")
    else { throw BenchError("inbound: no source (\(sourceAnswer.status))") }
    let path = String(url[start.lowerBound...])

    /// One signed webhook; the wall time of its 200, nil when refused.
    @Sendable func send(_ n: Int) async -> Double? {
        let body = payload(n)
        let signature = "sha256=" + Hex.encode(SHA256.hmac(key: Array(secret.utf8), message: body))
        let request = HTTPClient.Request(
            url: api.base + path, method: "POST",
            headers: [("Content-Type", "application/json"), ("X-Hub-Signature-256", signature), ("X-GitHub-Delivery", "bench-\(n)")], body: body,
            timeout: .seconds(30), maxResponseBytes: 4096)
        guard let response = try? await client.execute(request), response.status == 200 else { return nil }
        return Date().timeIntervalSince1970
    }

    // Throughput: `senders` concurrent senders, each sending its next as soon as one is answered.
    let accepted = Locked(0)
    let workers = scenario.workers.map(\.process.processIdentifier), apis = [api.process.processIdentifier]
    let before = CPUSnapshot.take(workers: workers, apis: apis)
    let started = ContinuousClock.now, startedAt = Date()
    await withTaskGroup(of: Void.self) { group in
        for lane in 0..<senders {
            group.addTask {
                var n = lane
                while n < count {
                    if await send(n) != nil { accepted.withLock { $0 += 1 } }
                    n += senders
                }
            }
        }
    }
    let elapsed = (ContinuousClock.now - started).seconds
    let acceptedCount = accepted.withLock { $0 }
    guard acceptedCount == count else { throw BenchError("inbound: \(count - acceptedCount) of \(count) refused") }
    try await database.await("SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: count, within: .seconds(300), label: "inbound")
    let cost = before.perDelivery(until: CPUSnapshot.take(workers: workers, apis: apis), deliveries: count)
    let lastDelivered = try await database.pool.query("SELECT max(delivered_at) FROM deliveries WHERE status = 'delivered'")[0].decode(Date.self, 0)
    let deliveredIn = lastDelivered.timeIntervalSince(startedAt)
    say("inbound: \(count) accepted in \(String(format: "%.2f", elapsed)) s, delivered \(String(format: "%.2f", deliveredIn)) s after the first send")
    say("inbound: CPU per accepted webhook: \(inboundCostLine(cost))")

    // Latency: paced, each timed from its 200 to the receiver's log line.
    let log = AccessLog(path: options.accessLog)
    let paced = rate * seconds
    let answered = Locked([Int: Double]())
    let origin = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for lane in 0..<min(senders, paced) {
            group.addTask {
                var n = lane
                while n < paced {
                    let due = origin + .microseconds(Int64(n) * 1_000_000 / Int64(rate))
                    if due > .now { try? await Task.sleep(until: due) }
                    if let time = await send(count + n) { answered.withLock { $0[count + n] = time } }
                    n += senders
                }
            }
        }
    }
    try await database.await(
        "SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: count + paced, within: .seconds(300), label: "inbound paced")
    // The receiver logs webhook-id, the delivery's id; the sender's delivery id names n.
    var delivery: [Substring: Int] = [:]
    for row in try await database.pool.query(
        """
        SELECT d.id::text, w.dedup_key FROM inbound_webhooks w JOIN deliveries d ON d.tenant_id = w.tenant_id AND d.event_id = w.event_id
        """)
    {
        if let n = Int(try row.decode(String.self, 1).dropFirst("bench-".count)) { delivery[Substring(try row.decode(String.self, 0))] = n }
    }
    let times = answered.withLock { $0 }
    var latencies: [Double] = []
    for line in try await log.lines() {
        guard let n = delivery[line.webhookID], let answeredAt = times[n] else { continue }
        latencies.append((line.time - answeredAt) * 1000)
    }
    latencies.sort()
    return InboundFigures(
        acceptedPerSecond: Double(count) / elapsed, deliveredPerSecond: Double(count) / deliveredIn, senders: senders, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99),
        max: latencies.last ?? .nan, samples: latencies.count, rate: rate, cost: cost)
}
