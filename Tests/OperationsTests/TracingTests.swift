import Foundation
import Logging
import Testing
import Tracing

@testable import Operations

@Suite("Trace context and the tracer (no sockets)")
struct TracingTests {
    static let example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func readsAndWritesTheW3CExample() throws {
        let parent = try #require(TraceParent(header: Self.example, state: "congo=t61rcWkgMzE"))
        #expect(parent.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parent.spanID == 0x00f0_67aa_0ba9_02b7)
        #expect(parent.sampled)
        #expect(parent.state == "congo=t61rcWkgMzE")
        #expect(parent.headerValue == Self.example)
        #expect(TraceParent(header: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
    }

    @Test(arguments: [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  // no flags
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 with more
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // wrong separator
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  // not hex
    ])
    func ignoresWhatTheSpecificationSaysToIgnore(header: String) {
        #expect(TraceParent(header: header) == nil)
    }

    @Test func readsALaterVersionByItsPrefix() {
        #expect(TraceParent(header: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next")?.spanID == 0x00f0_67aa_0ba9_02b7)
        #expect(TraceParent(header: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x") == nil)
    }

    @Test func dropsAnOverlongTraceState() {
        #expect(TraceParent(header: Self.example, state: String(repeating: "a", count: 513))?.state == nil)
        #expect(TraceParent(header: Self.example, state: "a=1\r\nX-Injected: 1")?.state == nil, "a header break is dropped")
    }

    /// Without a collector nothing is recorded and nothing is invented: the caller's
    /// `traceparent` goes on unchanged, and none goes where none came.
    @Test func withoutAnExporterTheCallersContextPassesThrough() throws {
        let tracer = HeraldTracer(exporter: nil)
        var context = InstrumentationContext.topLevel
        tracer.extract(["traceparent": Self.example], into: &context, using: DictionaryCarrier())
        let span = tracer.startSpan("herald.attempt", context: context, ofKind: .client)
        #expect(!span.isRecording)
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: DictionaryCarrier())
        #expect(headers == ["traceparent": Self.example])

        let root = tracer.startSpan("herald.publish", context: .topLevel, ofKind: .producer)
        var none: [String: String] = [:]
        tracer.inject(root.context, into: &none, using: DictionaryCarrier())
        #expect(none.isEmpty)
    }

    /// With a collector each span gets its own id under the caller's trace and parent,
    /// is exported once when it ends, and its child names it as parent.
    @Test func withAnExporterSpansFormATree() throws {
        let exporter = SpanExporter(configuration: .init(url: "http://127.0.0.1:9/v1/traces", serviceName: "test", serviceVersion: "0"), logger: Logger(label: "test"))
        let tracer = HeraldTracer(exporter: exporter)
        var context = InstrumentationContext.topLevel
        tracer.extract(["traceparent": Self.example, "tracestate": "congo=t61rcWkgMzE"], into: &context, using: DictionaryCarrier())
        let fanOut = tracer.startSpan("herald.fanout", context: context, ofKind: .consumer)
        let attempt = tracer.startSpan("herald.attempt", context: fanOut.context, ofKind: .client)
        attempt.attributes["http.response.status_code"] = 503
        attempt.setStatus(SpanStatus(code: .error))
        var headers: [String: String] = [:]
        tracer.inject(attempt.context, into: &headers, using: DictionaryCarrier())
        attempt.end()
        attempt.end()
        fanOut.end()

        let sent = exporter.pending
        #expect(sent.map(\.name) == ["herald.attempt", "herald.fanout"], "each span once, when it ends")
        let fanOutSpan = try #require(sent.last)
        let attemptSpan = try #require(sent.first)
        #expect(fanOutSpan.identity.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(fanOutSpan.parentSpanID == 0x00f0_67aa_0ba9_02b7)
        #expect(fanOutSpan.identity.spanID != 0x00f0_67aa_0ba9_02b7)
        #expect(attemptSpan.parentSpanID == fanOutSpan.identity.spanID)
        #expect(attemptSpan.end >= attemptSpan.start)
        // What the receiver gets names the attempt, in the same trace, with the vendor's state.
        let toReceiver = try #require(headers["traceparent"].flatMap { TraceParent(header: $0) })
        #expect(toReceiver.traceIDHex == fanOutSpan.identity.traceIDHex)
        #expect(toReceiver.spanID == attemptSpan.identity.spanID)
        #expect(toReceiver.sampled)
        #expect(headers["tracestate"] == "congo=t61rcWkgMzE")
    }

    /// An unsampled parent's children are not recorded but keep the trace going.
    @Test func followsTheParentsSampledFlag() throws {
        let exporter = SpanExporter(configuration: .init(url: "http://127.0.0.1:9/v1/traces", serviceName: "test", serviceVersion: "0"), logger: Logger(label: "test"))
        let tracer = HeraldTracer(exporter: exporter, sampleRatio: 1)
        var context = InstrumentationContext.topLevel
        tracer.extract(["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"], into: &context, using: DictionaryCarrier())
        let span = tracer.startSpan("herald.fanout", context: context, ofKind: .consumer)
        #expect(!span.isRecording)
        span.end()
        #expect(exporter.pending.isEmpty)
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: DictionaryCarrier())
        let propagated = try #require(headers["traceparent"].flatMap { TraceParent(header: $0) })
        #expect(propagated.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736" && !propagated.sampled)
    }

    /// The ratio keeps roughly that share of new traces, the same choice for the same id.
    @Test func sampleRatioKeepsItsShareOfRoots() {
        var generator = SystemRandomNumberGenerator()
        let ids = (0..<20_000).map { _ in (high: generator.next() as UInt64, low: generator.next() as UInt64) }
        for ratio in [0.0, 0.1, 0.5, 1.0] {
            let kept = ids.filter { HeraldTracer.sample($0, ratio: ratio) }.count
            #expect(abs(Double(kept) / Double(ids.count) - ratio) < 0.02, "ratio \(ratio) kept \(kept)")
            #expect(ids.prefix(100).allSatisfy { HeraldTracer.sample($0, ratio: ratio) == HeraldTracer.sample($0, ratio: ratio) })
        }
    }

    /// OTLP's JSON: hex ids, 64-bit integers as strings, enums as numbers, typed values.
    @Test func encodesOTLPJSON() throws {
        let parent = try #require(TraceParent(header: Self.example))
        var span = FinishedSpan(
            identity: TraceParent(traceID: parent.traceID, spanID: 0x1, sampled: true), parentSpanID: parent.spanID, name: "herald.attempt",
            kind: .client, start: 1_700_000_000_000_000_000)
        span.end = 1_700_000_000_250_000_000
        span.attributes["http.response.status_code"] = 503
        span.attributes["server.address"] = "hooks.example.com"
        span.attributes["retry"] = true
        span.attributes["note"] = "a \"quoted\" \\ value\n\u{1}é"
        span.attributes["codes"] = [200, 503] as [Int64]
        span.status = SpanStatus(code: .error)
        let json = try JSONSerialization.jsonObject(with: Data(OTLPJSON.encode([span], serviceName: "herald-worker", serviceVersion: "1.2.3")))
        let resourceSpans = try #require((json as? [String: Any])?["resourceSpans"] as? [[String: Any]])
        let resource = try #require((resourceSpans.first?["resource"] as? [String: Any])?["attributes"] as? [[String: Any]])
        #expect(resource.contains { $0["key"] as? String == "service.name" && ($0["value"] as? [String: Any])?["stringValue"] as? String == "herald-worker" })
        let scope = try #require((resourceSpans.first?["scopeSpans"] as? [[String: Any]])?.first)
        let encoded = try #require((scope["spans"] as? [[String: Any]])?.first)
        #expect(encoded["traceId"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(encoded["spanId"] as? String == "0000000000000001")
        #expect(encoded["parentSpanId"] as? String == "00f067aa0ba902b7")
        #expect(encoded["kind"] as? Int == 3)
        #expect(encoded["startTimeUnixNano"] as? String == "1700000000000000000")
        #expect(encoded["endTimeUnixNano"] as? String == "1700000000250000000")
        #expect((encoded["status"] as? [String: Any])?["code"] as? Int == 2)
        let attributes = try #require(encoded["attributes"] as? [[String: Any]])
        func value(_ key: String) -> [String: Any]? { attributes.first { $0["key"] as? String == key }?["value"] as? [String: Any] }
        #expect(value("http.response.status_code")?["intValue"] as? String == "503")
        #expect(value("server.address")?["stringValue"] as? String == "hooks.example.com")
        #expect(value("retry")?["boolValue"] as? Bool == true)
        #expect(value("note")?["stringValue"] as? String == "a \"quoted\" \\ value\n\u{1}é", "escaped and read back")
        let codes = (value("codes")?["arrayValue"] as? [String: Any])?["values"] as? [[String: Any]]
        #expect(codes?.compactMap { $0["intValue"] as? String } == ["200", "503"])
    }
}

/// A plain dictionary as a carrier, as HTTP headers are one.
struct DictionaryCarrier: Injector, Extractor {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
