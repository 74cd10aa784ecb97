import Foundation
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
        let body: [UInt8]
        do {
            body = try OTLPJSON.encode(batch, serviceName: configuration.serviceName, serviceVersion: configuration.serviceVersion)
        } catch {
            dropped.increment(by: batch.count)
            logger.warning("spans not encoded", metadata: ["spans": "\(batch.count)", "reason": "\(error)"])
            return
        }
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
/// integers as strings, enums as numbers).
package enum OTLPJSON {
    package static func encode(_ spans: [FinishedSpan], serviceName: String, serviceVersion: String) throws -> [UInt8] {
        let request = ExportRequest(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [
                    KeyValue(key: "service.name", value: .init(stringValue: serviceName)),
                    KeyValue(key: "service.version", value: .init(stringValue: serviceVersion)),
                ]),
                scopeSpans: [ScopeSpans(scope: Scope(name: "herald", version: serviceVersion), spans: spans.map(Span.init))])
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return Array(try encoder.encode(request))
    }

    struct ExportRequest: Encodable { var resourceSpans: [ResourceSpans] }
    struct ResourceSpans: Encodable {
        var resource: Resource
        var scopeSpans: [ScopeSpans]
    }
    struct Resource: Encodable { var attributes: [KeyValue] }
    struct ScopeSpans: Encodable {
        var scope: Scope
        var spans: [Span]
    }
    struct Scope: Encodable {
        var name: String
        var version: String
    }

    struct Span: Encodable {
        var traceId: String
        var spanId: String
        var parentSpanId: String?
        var traceState: String?
        var name: String
        var kind: Int
        var startTimeUnixNano: String
        var endTimeUnixNano: String
        var attributes: [KeyValue]
        var events: [Event]
        var links: [Link]
        var status: Status

        init(_ span: FinishedSpan) {
            traceId = span.identity.traceIDHex
            spanId = TraceParent.hex(span.identity.spanID)
            parentSpanId = span.parentSpanID.map(TraceParent.hex)
            traceState = span.identity.state
            name = span.name
            kind =
                switch span.kind {
                case .internal: 1
                case .server: 2
                case .client: 3
                case .producer: 4
                case .consumer: 5
                }
            startTimeUnixNano = String(span.start)
            endTimeUnixNano = String(span.end)
            attributes = KeyValue.list(span.attributes)
            events = span.events.map { Event(timeUnixNano: String($0.nanosecondsSinceEpoch), name: $0.name, attributes: KeyValue.list($0.attributes)) }
            links = span.links.map { Link(traceId: $0.traceIDHex, spanId: TraceParent.hex($0.spanID)) }
            switch span.status?.code {
            case .ok?: status = Status(code: 1, message: nil)
            case .error?: status = Status(code: 2, message: span.status?.message)
            case nil: status = Status(code: 0, message: nil)
            }
        }
    }

    struct Event: Encodable {
        var timeUnixNano: String
        var name: String
        var attributes: [KeyValue]
    }
    struct Link: Encodable {
        var traceId: String
        var spanId: String
    }
    struct Status: Encodable {
        var code: Int
        var message: String?
    }

    struct KeyValue: Encodable {
        var key: String
        var value: AnyValue

        static func list(_ attributes: SpanAttributes) -> [KeyValue] {
            var list: [KeyValue] = []
            attributes.forEach { key, attribute in list.append(KeyValue(key: key, value: AnyValue(attribute))) }
            return list.sorted { $0.key < $1.key }
        }
    }

    struct AnyValue: Encodable {
        var stringValue: String?
        var intValue: String?
        var doubleValue: Double?
        var boolValue: Bool?
        var arrayValue: ArrayValue?

        init(stringValue: String? = nil, intValue: String? = nil, doubleValue: Double? = nil, boolValue: Bool? = nil, arrayValue: ArrayValue? = nil) {
            self.stringValue = stringValue
            self.intValue = intValue
            self.doubleValue = doubleValue
            self.boolValue = boolValue
            self.arrayValue = arrayValue
        }

        init(_ attribute: SpanAttribute) {
            switch attribute {
            case .int32(let value): self.init(intValue: String(value))
            case .int64(let value): self.init(intValue: String(value))
            case .double(let value): self.init(doubleValue: value)
            case .bool(let value): self.init(boolValue: value)
            case .string(let value): self.init(stringValue: value)
            case .int32Array(let values): self.init(arrayValue: ArrayValue(values: values.map { AnyValue(intValue: String($0)) }))
            case .int64Array(let values): self.init(arrayValue: ArrayValue(values: values.map { AnyValue(intValue: String($0)) }))
            case .doubleArray(let values): self.init(arrayValue: ArrayValue(values: values.map { AnyValue(doubleValue: $0) }))
            case .boolArray(let values): self.init(arrayValue: ArrayValue(values: values.map { AnyValue(boolValue: $0) }))
            case .stringArray(let values): self.init(arrayValue: ArrayValue(values: values.map { AnyValue(stringValue: $0) }))
            case .stringConvertibleArray(let values): self.init(arrayValue: ArrayValue(values: values.map { AnyValue(stringValue: $0.description) }))
            case .stringConvertible(let value): self.init(stringValue: value.description)
            default: self.init(stringValue: "\(attribute)")
            }
        }
    }

    struct ArrayValue: Encodable { var values: [AnyValue] }
}
