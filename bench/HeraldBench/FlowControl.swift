import Foundation
import Glibc
import HeraldEvents
import HeraldProducer
import Postgres
import Synchronization

/// A receiver whose answer takes `delay` (changed while it runs), counting the requests
/// it holds: what an endpoint sees of Herald's concurrency. One thread per connection,
/// blocking sockets, HTTP/1.1 keep-alive; it answers 204 to every request.
final class SlowingServer: Sendable {
    let port: Int
    private let delay = Atomic<Int>(5_000)
    private let holding = Atomic<Int>(0)
    private let served = Atomic<Int>(0)

    /// The answer's delay, in microseconds.
    func setDelay(microseconds: Int) { delay.store(microseconds, ordering: .relaxed) }
    /// Requests received and not answered yet.
    var inFlight: Int { holding.load(ordering: .relaxed) }
    var answered: Int { served.load(ordering: .relaxed) }

    init() throws {
        let (fd, port) = try listeningSocket(backlog: 1024)
        self.port = port
        Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return
                }
                Thread { self.serve(client) }.start()
            }
        }.start()
    }

    /// Reads requests (headers, then `Content-Length` bytes) and answers each after the delay.
    private func serve(_ client: Int32) {
        defer { close(client) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            // One request: its headers, then its body.
            var headerEnd: Int?
            while headerEnd == nil {
                if let range = buffer.firstRange(of: separator) {
                    headerEnd = range.upperBound
                    break
                }
                let n = read(client, &chunk, chunk.count)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            guard let end = headerEnd else { return }
            let head = String(decoding: buffer[0..<end], as: UTF8.self).lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            while buffer.count < end + length {
                let n = read(client, &chunk, chunk.count)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            buffer.removeFirst(end + length)
            holding.add(1, ordering: .relaxed)
            usleep(UInt32(delay.load(ordering: .relaxed)))
            holding.subtract(1, ordering: .relaxed)
            served.add(1, ordering: .relaxed)
            let answer = Array("HTTP/1.1 204 No Content\r\n\r\n".utf8)
            guard answer.withUnsafeBytes({ write(client, $0.baseAddress, $0.count) }) == answer.count else { return }
        }
    }
}

/// What the slowdown run saw at the receiver.
struct Slowdown {
    struct Sample {
        var seconds: Double
        var inFlight: Int
        var slow: Bool
    }

    var samples: [Sample]
    /// Requests held by the receiver, mean over each phase's second half.
    var fast: Double
    var slow: Double
    var recovered: Double
    /// The most it held in the first seconds after recovering (the backlog draining).
    var recoveredPeak: Int
    /// From the switch to 500 ms until the receiver held at most half of what it held at
    /// the switch's first second, for good.
    var secondsToFewer: Double
}

/// 11. One endpoint whose receiver answers in 5 ms, then 500 ms for `phase` seconds, then
/// 5 ms again, under a steady `rate` of events: how many requests it is sent at once.
func slowdown(_ options: Options, rate: Int = 300, phase: Int = 10) async throws -> Slowdown {
    try await Scenario.run(options, label: "slowdown") { scenario in
        let server = try SlowingServer()
        let database = scenario.database
        let tenant = try await database.tenants(1, receiver: "http://127.0.0.1:\(server.port)")[0]
        try await scenario.startWorkers(1)
        let producer = scenario.producer()
        let count = rate * phase * 3
        let origin = ContinuousClock.now
        let samples = Locked<[Slowdown.Sample]>([])
        let slow = Locked(false)
        let sampler = Task {
            while !Task.isCancelled {
                let elapsed = seconds(ContinuousClock.now - origin)
                samples.withLock { $0.append(Slowdown.Sample(seconds: elapsed, inFlight: server.inFlight, slow: slow.withLock { $0 })) }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let switcher = Task {
            try? await Task.sleep(until: origin + .seconds(phase))
            server.setDelay(microseconds: 500_000)
            slow.withLock { $0 = true }
            try? await Task.sleep(until: origin + .seconds(2 * phase))
            server.setDelay(microseconds: 5_000)
            slow.withLock { $0 = false }
        }
        _ = await publish(producer, count: count, rate: rate) { n in
            Event(id: Event.generateID(), type: "client.created", tenantID: tenant, data: payload(n))
        }
        await producer.close()
        await switcher.value
        try await database.await(
            "SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: count, within: .seconds(600), label: "slowdown")
        sampler.cancel()
        await sampler.value
        let seen = samples.withLock { $0 }
        let p = Double(phase)
        func mean(_ from: Double, _ to: Double) -> Double {
            let window = seen.filter { $0.seconds >= from && $0.seconds < to }
            return window.isEmpty ? .nan : Double(window.map(\.inFlight).reduce(0, +)) / Double(window.count)
        }
        let atSwitch = seen.filter { $0.seconds >= p && $0.seconds < p + 1 }.map(\.inFlight).max() ?? 0
        let slowSamples = seen.filter { $0.seconds >= p && $0.seconds < 2 * p }
        // The last sample of the slow phase above half the first second's level.
        let lastHigh = slowSamples.last { Double($0.inFlight) > Double(atSwitch) / 2 }?.seconds ?? p
        let result = Slowdown(
            samples: seen, fast: mean(p / 2, p), slow: mean(1.5 * p, 2 * p), recovered: mean(2.5 * p, 3 * p),
            recoveredPeak: seen.filter { $0.seconds >= 2 * p && $0.seconds < 2 * p + 5 }.map(\.inFlight).max() ?? 0,
            secondsToFewer: lastHigh + 0.1 - p)
        try svg(result, phase: p).write(toFile: options.output + "/slowdown.svg", atomically: true, encoding: .utf8)
        return result
    }
}

/// The receiver's requests in flight over time, the slow phase shaded.
func svg(_ run: Slowdown, phase: Double) -> String {
    let width = 720.0
    let height = 300.0
    let left = 50.0
    let bottom = 30.0
    let end = max(3 * phase, run.samples.last?.seconds ?? 0)
    let top = max(4, run.samples.map(\.inFlight).max() ?? 1)
    func x(_ seconds: Double) -> Double { left + seconds / end * (width - left - 10) }
    func y(_ value: Int) -> Double { height - bottom - Double(value) / Double(top) * (height - bottom - 30) }
    var out = ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" font-family="sans-serif" font-size="11">"##
    out += ##"<rect x="\##(x(phase))" y="30" width="\##(x(2 * phase) - x(phase))" height="\##(height - bottom - 30)" fill="#fde2e2"/>"##
    out += ##"<text x="\##(x(phase) + 4)" y="44">receiver answers in 500 ms</text>"##
    out += ##"<text x="\##(left + 4)" y="14">requests held by the receiver (sampled every 100 ms); 5 ms, then 500 ms, then 5 ms per answer</text>"##
    for tick in stride(from: 0, through: top, by: max(1, top / 5)) {
        out += ##"<line x1="\##(left)" x2="\##(width - 10)" y1="\##(y(tick))" y2="\##(y(tick))" stroke="#ddd"/>"##
        out += ##"<text x="\##(left - 6)" y="\##(y(tick) + 4)" text-anchor="end">\##(tick)</text>"##
    }
    for second in stride(from: 0.0, through: end, by: 5) {
        out += ##"<text x="\##(x(second))" y="\##(height - bottom + 16)" text-anchor="middle">\##(Int(second)) s</text>"##
    }
    let points = run.samples.map { String(format: "%.1f,%.1f", x($0.seconds), y($0.inFlight)) }.joined(separator: " ")
    out += ##"<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="\##(points)"/>"##
    out += "</svg>\n"
    return out
}
