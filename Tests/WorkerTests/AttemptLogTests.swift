import Delivery
import FanOut
import Foundation
import HTTPClient
import HeraldEvents
import Logging
import Records
import Synchronization
import Testing
import Topology
@testable import Worker

/// What the worker writes about attempts at the default level: every failed attempt and
/// every delivery that ends badly, each naming what it concerns, never the payload.
@Suite("Attempt log lines (no sockets)")
struct AttemptLogTests {
    /// Keeps every line logged through it.
    final class Lines: Sendable {
        struct Line: Sendable {
            var level: Logger.Level
            var message: String
            var metadata: [String: String]
        }

        private let lines = Mutex<[Line]>([])
        var all: [Line] { lines.withLock { $0 } }

        func logger(level: Logger.Level) -> Logger {
            var logger = Logger(label: "test") { _ in Handler(lines: self) }
            logger.logLevel = level
            return logger
        }

        fileprivate func append(_ line: Line) { lines.withLock { $0.append(line) } }
    }

    struct Handler: LogHandler {
        let lines: Lines
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            lines.append(.init(level: event.level, message: event.message.description, metadata: merged.mapValues(\.description)))
        }
    }

    func run(status: Int, level: Logger.Level) async throws -> (lines: [Lines.Line], event: Event, endpoint: Endpoint) {
        let lines = Lines()
        let endpoint = ProcessorTests.endpoint()
        let harness = ProcessorTests.Harness(
            endpoints: [endpoint], transport: ProcessorTests.ScriptedTransport { _ in .success(Response(status: status)) },
            logger: lines.logger(level: level))
        let event = Event(id: "evt_log", type: "invoice.paid", tenantID: harness.tenant, data: Array(#"{"card":"4242 secret"}"#.utf8))
        try await harness.handle(event)
        return (lines.all, event, harness.endpoints[0])
    }

    @Test(arguments: [(503, "attempt failed; retry scheduled"), (404, "delivery failed")])
    func aFailedAttemptIsLoggedAtInfoWithWhatNamesIt(_ status: Int, _ message: String) async throws {
        let (lines, event, endpoint) = try await run(status: status, level: .info)
        let line = try #require(lines.first { $0.message == message }, "\(lines.map(\.message))")
        #expect(line.level == .info)
        #expect(line.metadata["tenant_id"] == event.tenantID.uuidString.lowercased())
        #expect(line.metadata["endpoint_id"] == endpoint.id.uuidString.lowercased())
        #expect(line.metadata["event_id"] == "evt_log")
        #expect(line.metadata["delivery_id"].flatMap(UUID.init(uuidString:)) != nil)
        #expect(line.metadata["request_id"].flatMap(UUID.init(uuidString:)) != nil)
        #expect(line.metadata["attempt"] == "1" && line.metadata["status"] == String(status))
        // Never the payload.
        #expect(!lines.contains { $0.message.contains("secret") || $0.metadata.values.contains { $0.contains("secret") } })
    }

    @Test func aDeliveredAttemptIsLoggedAtDebugOnly() async throws {
        let (atInfo, _, _) = try await run(status: 204, level: .info)
        #expect(atInfo.isEmpty, "\(atInfo.map(\.message))")
        let (atDebug, _, _) = try await run(status: 204, level: .debug)
        #expect(atDebug.contains { $0.message == "attempt delivered" && $0.level == .debug && $0.metadata["status"] == "204" })
    }

    /// An attempt's span names the receiver's host, never its path or query (a Zapier
    /// catch hook's path is its secret).
    @Test(arguments: [
        ("https://hooks.zapier.com/hooks/catch/123/abc/", "hooks.zapier.com"),
        ("https://api.example.com:8443/in?token=s3cret", "api.example.com"),
        ("http://127.0.0.1:8765/hooks", "127.0.0.1"),
        ("https://[2001:db8::1]:443/x", "2001:db8::1"),
        ("https://example.com#frag", "example.com"),
        ("not a url", ""),
    ])
    func anAttemptsSpanNamesOnlyTheHost(url: String, host: String) {
        #expect(Processor.host(of: url) == host)
    }
}
