import HTTPClient
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization
import Tracing

/// Sends finished spans to an OpenTelemetry collector over OTLP/HTTP with the JSON
/// encoding (`POST {endpoint}/v1/traces`), in batches, from its own task: a span's end
/// only appends it to a bounded queue, so a slow or absent collector never slows a
/// delivery. Spans beyond the queue, or of a batch the collector refused, are dropped
/// and counted (`herald_trace_spans_dropped_total`), never retried into memory.
public final class SpanExporter: Service, Sendable, CustomStringConvertible {
    public struct Configuration: Sendable {
        /// The traces URL (`…/v1/traces`).
        public var url: String
        /// Extra request headers (a vendor's API key), from `OTEL_EXPORTER_OTLP_HEADERS`.
        public var headers: [(name: String, value: String)]
        /// `service.name` of the resource the spans belong to.
        public var serviceName: String
        public var serviceVersion: String
        /// Spans sent in one request at most; a full batch is sent at once.
        public var batchSize: Int
        /// Spans waiting at most; more are dropped.
        public var queueSize: Int
        /// How long a span waits for its batch at most.
        public var interval: Duration
        public var timeout: Duration

        public init(
            url: String, headers: [(name: String, value: String)] = [], serviceName: String, serviceVersion: String,
            batchSize: Int = 512, queueSize: Int = 4096, interval: Duration = .seconds(1), timeout: Duration = .seconds(10)
        ) {
            self.url = url
            self.headers = headers
            self.serviceName = serviceName
            self.serviceVersion = serviceVersion
            self.batchSize = batchSize
            self.queueSize = queueSize
            self.interval = interval
            self.timeout = timeout
        }
    }

    public var description: String { "SpanExporter" }

    let configuration: Configuration
    private let queue = Mutex<[FinishedSpan]>([])
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let client: Client
    private let logger: Logger
    private let dropped = Counter(label: "herald_trace_spans_dropped_total")
    private let exported = Counter(label: "herald_trace_spans_exported_total")

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        client = Client(configuration: .init(maxCachedConnections: 2))
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a finished span; called from `HeraldSpan.end`.
    func export(_ span: FinishedSpan) {
        let (accepted, full) = queue.withLock { queue -> (Bool, Bool) in
            guard queue.count < configuration.queueSize else { return (false, false) }
            queue.append(span)
            return (true, queue.count >= configuration.batchSize)
        }
        if !accepted { dropped.increment() }
        if full { wake.yield() }
    }

    /// The spans waiting to be sent.
    package var pending: [FinishedSpan] { queue.withLock { $0 } }

    /// Asks the run loop to send what is queued now.
    func flushSoon() {
        wake.yield()
    }

    public func run() async throws {
        // The interval's timer and the wake-ups of full batches, until shutdown; then
        // everything still queued is sent once.
        let interval = configuration.interval
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                wake.yield()
            }
        }
        defer { ticker.cancel() }
        await cancelWhenGracefulShutdown {
            for await _ in self.wakes {
                await self.sendQueued()
            }
        }
        await sendQueued()
        await client.shutdown()
    }

    /// Sends the queue in batches of at most `batchSize`.
    func sendQueued() async {
        while true {
            let batch = queue.withLock { queue -> [FinishedSpan] in
                let batch = Array(queue.prefix(configuration.batchSize))
                queue.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            await send(batch)
        }
    }

    private func send(_ batch: [FinishedSpan]) async {
        let body = OTLPJSON.encode(batch, serviceName: configuration.serviceName, serviceVersion: configuration.serviceVersion)
        let request = Request(
            url: configuration.url, method: "POST", headers: [("Content-Type", "application/json")] + configuration.headers, body: body,
            timeout: configuration.timeout, connectTimeout: min(configuration.timeout, .seconds(5)))
        do {
            let response = try await client.execute(request)
            guard (200..<300).contains(response.status) else {
                dropped.increment(by: batch.count)
                logger.warning("the trace collector refused spans", metadata: ["spans": "\(batch.count)", "status": "\(response.status)"])
                return
            }
            exported.increment(by: batch.count)
        } catch {
            dropped.increment(by: batch.count)
            logger.warning("spans not sent to the trace collector", metadata: ["spans": "\(batch.count)", "reason": "\(error)"])
        }
    }
}

/// OTLP's JSON encoding of an `ExportTraceServiceRequest` (opentelemetry-proto's
/// `trace.proto` in proto3 JSON: lowerCamelCase names, ids as lower-case hex, 64-bit
/// integers as strings, enums as numbers), written directly: at every span of every
/// delivery, `JSONEncoder` cost the worker more than the span itself.
package enum OTLPJSON {
    package static func encode(_ spans: [FinishedSpan], serviceName: String, serviceVersion: String) -> [UInt8] {
        var out = JSONText()
        out.raw(#"{"resourceSpans":[{"resource":{"attributes":["#)
        out.keyValue("service.name", .string(serviceName))
        out.raw(",")
        out.keyValue("service.version", .string(serviceVersion))
        out.raw(#"]},"scopeSpans":[{"scope":{"name":"herald","version":"#)
        out.string(serviceVersion)
        out.raw(#"},"spans":["#)
        for (index, span) in spans.enumerated() {
            if index > 0 { out.raw(",") }
            out.span(span)
        }
        out.raw("]}]}]}")
        return out.bytes
    }
}

/// A JSON document written piece by piece.
private struct JSONText {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(64 * 1024) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    /// A JSON string: quotes, backslashes and control characters escaped.
    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw(#"\""#)
            case UInt8(ascii: "\\"): raw(#"\\"#)
            case UInt8(ascii: "\n"): raw(#"\n"#)
            case UInt8(ascii: "\r"): raw(#"\r"#)
            case UInt8(ascii: "\t"): raw(#"\t"#)
            case 0..<0x20:
                raw(#"\u00"#)
                let digits: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(digits[Int(byte >> 4)])
                bytes.append(digits[Int(byte & 0xf)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func span(_ span: FinishedSpan) {
        raw(#"{"traceId":""#)
        raw(span.identity.traceIDHex)
        raw(#"","spanId":""#)
        raw(TraceParent.hex(span.identity.spanID))
        raw("\"")
        if let parent = span.parentSpanID {
            raw(#","parentSpanId":""#)
            raw(TraceParent.hex(parent))
            raw("\"")
        }
        if let state = span.identity.state {
            raw(#","traceState":"#)
            string(state)
        }
        raw(#","name":"#)
        string(span.name)
        let kind =
            switch span.kind {
            case .internal: 1
            case .server: 2
            case .client: 3
            case .producer: 4
            case .consumer: 5
            }
        raw(#","kind":"#)
        raw(String(kind))
        raw(#","startTimeUnixNano":""#)
        raw(String(span.start))
        raw(#"","endTimeUnixNano":""#)
        raw(String(span.end))
        raw(#"","attributes":"#)
        attributes(span.attributes)
        if !span.events.isEmpty {
            raw(#","events":["#)
            for (index, event) in span.events.enumerated() {
                if index > 0 { raw(",") }
                raw(#"{"timeUnixNano":""#)
                raw(String(event.nanosecondsSinceEpoch))
                raw(#"","name":"#)
                string(event.name)
                raw(#","attributes":"#)
                attributes(event.attributes)
                raw("}")
            }
            raw("]")
        }
        if !span.links.isEmpty {
            raw(#","links":["#)
            for (index, link) in span.links.enumerated() {
                if index > 0 { raw(",") }
                raw(#"{"traceId":""#)
                raw(link.traceIDHex)
                raw(#"","spanId":""#)
                raw(TraceParent.hex(link.spanID))
                raw(#""}"#)
            }
            raw("]")
        }
        switch span.status?.code {
        case .ok?: raw(#","status":{"code":1}"#)
        case .error?:
            raw(#","status":{"code":2"#)
            if let message = span.status?.message {
                raw(#","message":"#)
                string(message)
            }
            raw("}")
        case nil: raw(#","status":{"code":0}"#)
        }
        raw("}")
    }

    mutating func attributes(_ attributes: SpanAttributes) {
        raw("[")
        var first = true
        attributes.forEach { key, value in
            if !first { raw(",") }
            first = false
            keyValue(key, value)
        }
        raw("]")
    }

    mutating func keyValue(_ key: String, _ value: SpanAttribute) {
        raw(#"{"key":"#)
        string(key)
        raw(#","value":"#)
        anyValue(value)
        raw("}")
    }

    mutating func anyValue(_ value: SpanAttribute) {
        switch value {
        case .int32(let number): integer(Int64(number))
        case .int64(let number): integer(number)
        case .double(let number):
            if number.isFinite {
                raw(#"{"doubleValue":"#)
                raw(String(number))
                raw("}")
            } else {
                raw(#"{"stringValue":"#)
                string(String(number))
                raw("}")
            }
        case .bool(let flag): raw(flag ? #"{"boolValue":true}"# : #"{"boolValue":false}"#)
        case .string(let text): stringValue(text)
        case .stringConvertible(let item): stringValue(item.description)
        case .int32Array(let numbers): array(numbers) { $0.integer(Int64($1)) }
        case .int64Array(let numbers): array(numbers) { $0.integer($1) }
        case .doubleArray(let numbers): array(numbers) { $0.anyValue(.double($1)) }
        case .boolArray(let flags): array(flags) { $0.anyValue(.bool($1)) }
        case .stringArray(let texts): array(texts) { $0.stringValue($1) }
        case .stringConvertibleArray(let items): array(items) { $0.stringValue($1.description) }
        default: stringValue("\(value)")
        }
    }

    mutating func integer(_ number: Int64) {
        raw(#"{"intValue":""#)
        raw(String(number))
        raw(#""}"#)
    }

    mutating func stringValue(_ text: String) {
        raw(#"{"stringValue":"#)
        string(text)
        raw("}")
    }

    mutating func array<Element>(_ elements: [Element], _ write: (inout JSONText, Element) -> Void) {
        raw(#"{"arrayValue":{"values":["#)
        for (index, element) in elements.enumerated() {
            if index > 0 { raw(",") }
            write(&self, element)
        }
        raw("]}}")
    }
}
