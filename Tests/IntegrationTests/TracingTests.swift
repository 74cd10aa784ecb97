import Foundation
import HTTPClient
import HeraldSupport
import Synchronization
import Testing
import TestSupport
import Topology

/// Tracing across the queue with real processes: `herald api` and `herald worker` export
/// to a collector (a real HTTP server taking OTLP/HTTP JSON), a receiver takes the webhook.
@Suite("Tracing across the queue (real processes)")
struct TracingIntegrationTests {
    /// A publish that carries the CRM's `traceparent` becomes one trace: the API's server
    /// span is the CRM span's child, the producer's publish the API span's, the worker's
    /// fan-out the publish's, the attempt the fan-out's; the receiver's `traceparent`
    /// names the attempt; a refused first attempt's retry continues the same trace.
    @Test func aPublishIsOneTraceFromTheCallerToTheReceiver() async throws {
        let collector = try await TestHTTPServer.start()
        let refusals = Refusals()
        let receiver = try await TestHTTPServer.start { _ in refusals.next() ? .status(503) : .status(200) }
        var options = Pipeline.Options()
        options.startWorker = false
        try await Pipeline.run(options) { pipeline in
            let tenant = try await pipeline.tenant()
            _ = try await pipeline.endpoint(tenant: tenant, url: receiver.url)
            let tracing = [
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_TRACES_SAMPLER_ARG": "1",
                // A vendor's key goes to the collector only.
                "OTEL_EXPORTER_OTLP_HEADERS": "x-vendor-key=k%3D1",
            ]
            let worker = try WorkerProcess.start(pipeline, ladder: "300ms", environment: tracing)
            defer { worker.stopIfRunning() }
            let operatorToken = "operator-token-for-tracing-tests"
            let api = try APIProcess(
                pipeline,
                environment: tracing.merging(["HERALD_OPERATOR_TOKEN": operatorToken, "OTEL_SERVICE_NAME": "crm-herald-api", "HERALD_RETRY_LADDER": "300ms"]) { _, new in new })
            defer { api.stop() }

            let client = HTTPClient.Client()
            let base = api.url
            try await pipeline.eventually("the API answers") {
                (try? await client.execute(HTTPClient.Request(url: "\(base)/readyz", method: "GET")).status) == 200
            }
            let keyAnswer = try await client.execute(
                HTTPClient.Request(
                    url: "\(base)/v1/tenants/\(tenant.uuidString.lowercased())/keys", method: "POST",
                    headers: [("Authorization", "Bearer \(operatorToken)"), ("Content-Type", "application/json")], body: Array(#"{"name":"t"}"#.utf8)))
            let key = try #require(((try? JSONSerialization.jsonObject(with: Data(keyAnswer.body))) as? [String: Any])?["key"] as? String)
            let crmTrace = "0af7651916cd43dd8448eb211c80319c"
            let crmSpan = "b7ad6b7169203331"
            let published = try await client.execute(
                HTTPClient.Request(
                    url: "\(base)/v1/events", method: "POST",
                    headers: [
                        ("Authorization", "Bearer \(key)"), ("Content-Type", "application/json"),
                        ("traceparent", "00-\(crmTrace)-\(crmSpan)-01"), ("tracestate", "crm=7"),
                    ],
                    body: Array(#"{"type":"booking.confirmed","data":{"id":7}}"#.utf8)))
            #expect(published.status == 202, "\(String(decoding: published.body, as: UTF8.self))")

            // The first attempt is refused, the retry delivered: two requests, one trace.
            let requests = try await receiver.waitForRequests(2)
            let parents = requests.compactMap { $0.header("traceparent") }
            #expect(parents.count == 2, "every attempt carries a traceparent")
            #expect(parents.allSatisfy { $0.hasPrefix("00-\(crmTrace)-") && $0.hasSuffix("-01") }, "\(parents)")
            #expect(requests.allSatisfy { $0.header("tracestate") == "crm=7" })

            // Spans arrive within the exporter's interval; wait for the whole tree.
            var spans: [ExportedSpan] = []
            try await pipeline.eventually("the collector has the trace") {
                spans = ExportedSpan.all(in: collector.requests).filter { $0.traceID == crmTrace }
                let names = Set(spans.map(\.name))
                return spans.filter { $0.name == "herald.attempt" }.count == 2
                    && names.isSuperset(of: ["POST /v1/events", "herald.publish", "herald.fanout", "herald.delivery"])
            }
            let server = try #require(spans.first { $0.name == "POST /v1/events" })
            let publish = try #require(spans.first { $0.name == "herald.publish" })
            let fanOut = try #require(spans.first { $0.name == "herald.fanout" })
            let retry = try #require(spans.first { $0.name == "herald.delivery" })
            let attempts = spans.filter { $0.name == "herald.attempt" }.sorted { $0.start < $1.start }
            #expect(server.parentID == crmSpan && server.kind == 2 && server.service == "crm-herald-api")
            #expect(publish.parentID == server.spanID && publish.kind == 4)
            #expect(fanOut.parentID == publish.spanID && fanOut.kind == 5 && fanOut.service == "herald-worker")
            #expect(attempts.first?.parentID == fanOut.spanID && attempts.first?.kind == 3)
            #expect(retry.parentID == fanOut.spanID, "the retry continues the message that scheduled it")
            #expect(attempts.last?.parentID == retry.spanID)
            #expect(attempts.first?.attributes["http.response.status_code"] == "503" && attempts.first?.statusCode == 2)
            #expect(attempts.last?.attributes["http.response.status_code"] == "200" && attempts.last?.statusCode == 0)
            // The receiver's traceparent names the attempt that sent it.
            #expect(Set(parents.map { String($0.split(separator: "-")[2]) }) == Set(attempts.map(\.spanID)))
            // The vendor's header goes to the collector; the route pattern, never a path with ids.
            #expect(collector.requests.allSatisfy { $0.header("x-vendor-key") == "k=1" })
            #expect(!spans.contains { $0.name.contains(tenant.uuidString.lowercased()) })
            await client.shutdown()
        }
        await receiver.stop()
        await collector.stop()
    }
}

/// The first request is refused, the rest accepted.
final class Refusals: Sendable {
    private let count = Atomic<Int>(0)
    func next() -> Bool { count.add(1, ordering: .relaxed).oldValue == 0 }
}

/// A span as a collector received it (OTLP/HTTP JSON).
struct ExportedSpan {
    var service: String
    var traceID: String
    var spanID: String
    var parentID: String?
    var name: String
    var kind: Int
    var start: String
    var statusCode: Int
    /// Scalar attributes as text.
    var attributes: [String: String]

    static func all(in requests: [ReceivedRequest]) -> [ExportedSpan] {
        requests.flatMap { request -> [ExportedSpan] in
            guard request.uri == "/v1/traces", request.header("content-type") == "application/json",
                let object = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any],
                let resources = object["resourceSpans"] as? [[String: Any]]
            else { return [] }
            return resources.flatMap { resource -> [ExportedSpan] in
                let resourceAttributes = ((resource["resource"] as? [String: Any])?["attributes"] as? [[String: Any]]) ?? []
                let service = text(resourceAttributes.first { $0["key"] as? String == "service.name" }?["value"]) ?? ""
                return ((resource["scopeSpans"] as? [[String: Any]]) ?? []).flatMap { scope in
                    ((scope["spans"] as? [[String: Any]]) ?? []).map { span in
                        var attributes: [String: String] = [:]
                        for attribute in (span["attributes"] as? [[String: Any]]) ?? [] {
                            if let key = attribute["key"] as? String { attributes[key] = text(attribute["value"]) }
                        }
                        return ExportedSpan(
                            service: service, traceID: span["traceId"] as? String ?? "", spanID: span["spanId"] as? String ?? "",
                            parentID: span["parentSpanId"] as? String, name: span["name"] as? String ?? "", kind: span["kind"] as? Int ?? 0,
                            start: span["startTimeUnixNano"] as? String ?? "", statusCode: (span["status"] as? [String: Any])?["code"] as? Int ?? -1,
                            attributes: attributes)
                    }
                }
            }
        }
    }

    private static func text(_ value: Any?) -> String? {
        guard let value = value as? [String: Any] else { return nil }
        if let text = value["stringValue"] as? String { return text }
        if let text = value["intValue"] as? String { return text }
        if let flag = value["boolValue"] as? Bool { return String(flag) }
        return nil
    }
}
