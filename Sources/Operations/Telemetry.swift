import CoreMetrics
import Metrics
import Prometheus

/// The process's metrics: swift-metrics everywhere, exported in Prometheus text format
/// with a `# HELP` line for each (from `Telemetry.help`), as `promtool check metrics` wants.
public enum Telemetry {
    private static let registry = PrometheusCollectorRegistry()

    /// What each metric means, by name: the one list `/metrics` takes its help text from and
    /// the tests hold every metric of the sources to.
    public static let help: [String: String] = [
        "herald_deliveries_total": "Attempts that ended a step of a delivery, by what the delivery became (delivered, retrying, failed).",
        "herald_attempt_duration_seconds": "Time from sending an attempt's request to its answer or error, by outcome.",
        "herald_deliveries_deferred_total": "Deliveries sent to the defer queue unattempted: their endpoint made no progress, its circuit was open or its pace was more than a second away.",
        "herald_deliveries_in_flight": "Messages the worker is processing now.",
        "herald_consumer_renewals_total": "New subscriptions of the work queue consumer, by reason: the message size moved the prefetch (size), or messages of unanswering endpoints filled the window (stragglers).",
        "herald_circuit_transitions_total": "Endpoint circuits this worker opened or closed, by the state entered.",
        "herald_worker_replicas": "Workers consuming now, counted from the heartbeats (they share rate limits and shards).",
        "herald_queue_messages": "Messages ready in each of Herald's queues, read from the broker by the worker.",
        "herald_queue_consumers": "Consumers of each of Herald's queues, read from the broker by the worker.",
        "herald_endpoints_disabled": "Endpoints disabled now, by who disabled them (automatic: failures or 410 Gone; tenant: by hand).",
        "herald_inbound_requests_total": "Inbound webhooks received, by the status they were stored with.",
        "herald_inbound_rejected_total": "Inbound webhooks refused, by reason.",
        "herald_inbound_rejected_unstored_total": "Inbound webhooks refused and not stored (the per-source sample of refusals was full).",
        "herald_inbound_accept_seconds": "Time from an inbound webhook's arrival to its answer.",
        "herald_outbox_pending": "Rows of the outbox not yet published (the relay's backlog).",
        "herald_outbox_oldest_seconds": "Age of the oldest row of the outbox not yet published.",
        "herald_http_requests_total": "Requests the API answered, by method, route pattern and status.",
        "herald_http_request_duration_seconds": "Time the API took to answer, by method and route pattern.",
        "herald_trace_spans_exported_total": "Spans sent to the OpenTelemetry collector.",
        "herald_trace_spans_dropped_total": "Spans not sent: the export queue was full, or the collector refused or could not be reached.",
    ]

    /// Installs the Prometheus backend once per process, before any metric is created.
    public static func bootstrap() {
        MetricsSystem.bootstrap(Factory(registry: registry))
    }

    /// Everything recorded so far, for `/metrics`.
    public static func render() -> String {
        registry.emitToString()
    }

    /// Attempt latency: from a fast local receiver to the 10 s timeout.
    static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// swift-metrics onto the registry's public API, with each metric's help text (the
    /// library's own factory registers every metric without one).
    struct Factory: MetricsFactory {
        let registry: PrometheusCollectorRegistry

        /// The name as is (units are in Herald's names already) with its help text.
        private func describe(_ label: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: label, unitName: "", helpText: Telemetry.help[label] ?? "Herald metric \(label).")
        }

        func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
            registry.makeCounter(descriptor: describe(label), labels: dimensions)
        }

        func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
            registry.makeCounter(descriptor: describe(label), labels: dimensions)
        }

        func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
            guard aggregate else { return registry.makeGauge(descriptor: describe(label), labels: dimensions) }
            return registry.makeValueHistogram(
                descriptor: describe(label), labels: dimensions, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        }

        func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
            registry.makeGauge(descriptor: describe(label), labels: dimensions)
        }

        func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
            registry.makeDurationHistogram(descriptor: describe(label), labels: dimensions, buckets: Telemetry.durationBuckets)
        }

        func destroyCounter(_ handler: any CounterHandler) {
            if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
        }

        func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
            if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
        }

        func destroyRecorder(_ handler: any RecorderHandler) {
            if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
            if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
        }

        func destroyMeter(_ handler: any MeterHandler) {
            if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        }

        func destroyTimer(_ handler: any TimerHandler) {
            if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
        }
    }
}
