import Foundation
import HeraldSupport
import Synchronization

/// The parts of an `amqp://user:password@host:port/vhost?heartbeat=30` URL.
package struct BrokerURL: Sendable, Equatable {
    package var host: String
    package var port: Int
    package var user: String
    package var password: String
    package var virtualHost: String
    /// Seconds between heartbeats; 0 turns them off (not advised).
    package var heartbeat: Int
    /// Seconds to wait for TCP connect and login.
    package var connectTimeout: Int

    package init(_ text: String) throws(BrokerError) {
        guard let components = URLComponents(string: text), components.scheme == "amqp" else {
            throw BrokerError(.invalidURL, message: "expected amqp://user:password@host:port/vhost")
        }
        guard let host = components.host, !host.isEmpty else {
            throw BrokerError(.invalidURL, message: "the URL has no host")
        }
        self.host = host
        self.port = components.port ?? 5672
        self.user = components.user?.removingPercentEncoding ?? "guest"
        self.password = components.password?.removingPercentEncoding ?? "guest"
        // An empty path is the default vhost "/"; "/x" is vhost "x"; "/%2F" is "/".
        let path = components.percentEncodedPath
        if path.isEmpty || path == "/" {
            self.virtualHost = "/"
        } else {
            self.virtualHost = String(path.dropFirst()).removingPercentEncoding ?? String(path.dropFirst())
        }
        self.heartbeat = 30
        self.connectTimeout = 10
        for item in components.queryItems ?? [] {
            switch item.name {
            case "heartbeat":
                guard let value = item.value.flatMap(Int.init), (0...3600).contains(value) else {
                    throw BrokerError(.invalidURL, message: "heartbeat must be 0 to 3600 seconds")
                }
                self.heartbeat = value
            case "connection_timeout":
                guard let value = item.value.flatMap(Int.init), (1...600).contains(value) else {
                    throw BrokerError(.invalidURL, message: "connection_timeout must be 1 to 600 seconds")
                }
                self.connectTimeout = value
            default:
                throw BrokerError(.invalidURL, message: "unknown URL option '\(item.name)'")
            }
        }
    }

    /// Host, port and vhost, for logs: no credentials.
    package var redacted: String { "amqp://\(host):\(port)/\(virtualHost == "/" ? "" : virtualHost)" }
}

extension BrokerURL {
    /// The brokers of a setting: one URL, or the nodes of a cluster as URLs separated by
    /// commas (a comma inside a password is written `%2C`).
    package static func list(_ text: String) throws(BrokerError) -> [BrokerURL] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw BrokerError(.invalidURL, message: "expected amqp://user:password@host:port/vhost") }
        return try items.map { (item: String) throws(BrokerError) -> BrokerURL in try BrokerURL(item) }
    }
}

/// Which broker of a list a process connects to next: a connection is made to the first
/// listed node and, when it fails or is lost, to the next, round the list (replicas spread
/// over a cluster by listing a different node first).
package final class BrokerRotation: Sendable {
    private let next = Mutex<Int>(0)

    package static let shared = BrokerRotation()

    package init(start: Int = 0) {
        next.withLock { $0 = start }
    }

    /// The order to try `count` brokers in this time: from the current one on.
    package func order(_ count: Int) -> [Int] {
        let first = next.withLock { $0 } % max(count, 1)
        return (0..<count).map { (first + $0) % count }
    }

    /// Moves on past broker `index` (it failed, or its connection was lost).
    package func failed(_ index: Int, of count: Int) {
        next.withLock { $0 = (index + 1) % max(count, 1) }
    }

    /// Stays with broker `index` (it answered).
    package func connected(_ index: Int) {
        next.withLock { $0 = index }
    }
}

/// Exponential backoff with full jitter, capped, for reconnecting.
package struct Backoff: Sendable, Equatable {
    package var initial: Duration
    package var maximum: Duration
    package var multiplier: Double

    package init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(10), multiplier: Double = 2) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// The ceiling of the delay before attempt `attempt` (0-based): initial × multiplier^attempt, capped.
    package func ceiling(attempt: Int) -> Duration {
        let seconds = initial.seconds
        let maximumSeconds = maximum.seconds
        let value = min(maximumSeconds, seconds * pow(multiplier, Double(min(attempt, 60))))
        return .milliseconds(Int64(value * 1000))
    }

    /// A random delay in [ceiling / 2, ceiling], so that replicas do not reconnect in lockstep.
    package func delay(attempt: Int) -> Duration {
        let ceiling = ceiling(attempt: attempt)
        let millis = ceiling.milliseconds
        return .milliseconds(Int64.random(in: (millis / 2)...max(millis / 2, millis)))
    }
}
