import Synchronization
public import Tracing

/// Herald's tracer, installed in every `herald` process, so that spans made through
/// swift-distributed-tracing (Hummingbird's request spans, the producer's publish, the
/// worker's fan-out and attempts) get W3C ids and reach an OTLP collector.
///
/// Without an exporter nothing is recorded and no id is made: a `traceparent` that came
/// with a request or an event is passed along unchanged, so a CRM's trace still reaches
/// the receiver; with one, each span gets its own id and is sampled as its parent was (a
/// root by `sampleRatio` of its trace id).
public struct HeraldTracer: Tracer {
    public typealias Span = HeraldSpan

    let exporter: SpanExporter?
    let sampleRatio: Double

    public init(exporter: SpanExporter?, sampleRatio: Double = 1) {
        self.exporter = exporter
        self.sampleRatio = min(1, max(0, sampleRatio))
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> HeraldSpan {
        var context = context()
        guard let exporter else { return HeraldSpan(context: context, operationName: operationName, recorder: nil) }
        let parent = context.traceParent
        let traceID = parent?.traceID ?? Self.newTraceID()
        let sampled = parent?.sampled ?? Self.sample(traceID, ratio: sampleRatio)
        let identity = TraceParent(traceID: traceID, spanID: UInt64.random(in: 1...UInt64.max), sampled: sampled, state: parent?.state)
        context.traceParent = identity
        guard sampled else { return HeraldSpan(context: context, operationName: operationName, recorder: nil) }
        let recorder = SpanRecorder(
            FinishedSpan(
                identity: identity, parentSpanID: parent?.spanID, name: operationName, kind: kind, start: instant().nanosecondsSinceEpoch),
            exporter: exporter)
        return HeraldSpan(context: context, operationName: operationName, recorder: recorder)
    }

    public func forceFlush() {
        exporter?.flushSoon()
    }

    public func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject)
    where Carrier == Inject.Carrier {
        guard let parent = context.traceParent else { return }
        injector.inject(parent.headerValue, forKey: TraceParent.header, into: &carrier)
        if let state = parent.state { injector.inject(state, forKey: TraceParent.stateHeader, into: &carrier) }
    }

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract)
    where Carrier == Extract.Carrier {
        guard let value = extractor.extract(key: TraceParent.header, from: carrier),
            let parent = TraceParent(header: value, state: extractor.extract(key: TraceParent.stateHeader, from: carrier))
        else { return }
        context.traceParent = parent
    }

    static func newTraceID() -> (high: UInt64, low: UInt64) {
        (UInt64.random(in: 0...UInt64.max), UInt64.random(in: 1...UInt64.max))
    }

    /// The trace-id ratio rule: a trace is kept when its id's low 63 bits fall under the
    /// ratio, so every process keeps or drops the same roots.
    static func sample(_ traceID: (high: UInt64, low: UInt64), ratio: Double) -> Bool {
        if ratio >= 1 { return true }
        if ratio <= 0 { return false }
        return Double(traceID.low & (UInt64.max >> 1)) < ratio * Double(UInt64.max >> 1)
    }
}

/// A span of `HeraldTracer`; records only when sampled with an exporter installed.
public struct HeraldSpan: Tracing.Span {
    public let context: InstrumentationContext
    let recorder: SpanRecorder?
    /// The name when nothing is recorded (kept for `operationName`'s readers).
    private let name: String

    init(context: InstrumentationContext, operationName: String, recorder: SpanRecorder?) {
        self.context = context
        self.recorder = recorder
        name = operationName
    }

    public var operationName: String {
        get { recorder?.state.withLock { $0.name } ?? name }
        nonmutating set { recorder?.state.withLock { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { recorder?.state.withLock { $0.attributes } ?? [:] }
        nonmutating set { recorder?.state.withLock { $0.attributes = newValue } }
    }

    public var isRecording: Bool { recorder != nil }

    public func setStatus(_ status: SpanStatus) {
        recorder?.state.withLock { $0.status = status }
    }

    public func addEvent(_ event: SpanEvent) {
        recorder?.state.withLock { $0.events.append(event) }
    }

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        guard let recorder else { return }
        // The error's type only: a message may quote a URL or a payload.
        var attributes = attributes
        attributes["exception.type"] = "\(type(of: error))"
        let event = SpanEvent(name: "exception", at: instant(), attributes: attributes)
        recorder.state.withLock { $0.events.append(event) }
    }

    public func addLink(_ link: SpanLink) {
        guard let recorder, let parent = link.context.traceParent else { return }
        recorder.state.withLock { $0.links.append(parent) }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        recorder?.end(at: instant().nanosecondsSinceEpoch)
    }
}

/// A recorded span while it is open; handed to the exporter once, when it ends.
final class SpanRecorder: Sendable {
    let state: Mutex<FinishedSpan>
    private let ended = Atomic<Bool>(false)
    private let exporter: SpanExporter

    init(_ span: FinishedSpan, exporter: SpanExporter) {
        state = Mutex(span)
        self.exporter = exporter
    }

    func end(at nanoseconds: UInt64) {
        guard !ended.exchange(true, ordering: .relaxed) else { return }
        let span = state.withLock { span in
            span.end = max(span.start, nanoseconds)
            return span
        }
        exporter.export(span)
    }
}

/// What the exporter sends of a span.
public struct FinishedSpan: Sendable {
    public var identity: TraceParent
    public var parentSpanID: UInt64?
    public var name: String
    public var kind: SpanKind
    public var start: UInt64
    public var end: UInt64 = 0
    public var attributes: SpanAttributes = [:]
    public var status: SpanStatus?
    public var events: [SpanEvent] = []
    public var links: [TraceParent] = []

    public init(identity: TraceParent, parentSpanID: UInt64?, name: String, kind: SpanKind, start: UInt64) {
        self.identity = identity
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.start = start
    }
}
