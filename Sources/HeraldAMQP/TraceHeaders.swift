import Instrumentation

/// Carries a trace context in a message's headers (W3C `traceparent` and `tracestate`
/// as string fields), from the producer through the queues and the retry rungs
/// (dead-lettering keeps headers) to the worker.
package struct MessageHeaders: Injector, Extractor {
    package init() {}

    package func inject(_ value: String, forKey key: String, into carrier: inout FieldTable) {
        carrier[key] = .string(value)
    }

    package func extract(key: String, from carrier: FieldTable) -> String? {
        carrier[key]?.string
    }
}
