import Metrics
import Prometheus

/// The process's metrics: swift-metrics everywhere, exported in Prometheus text format.
public enum Telemetry {
    private static let registry = PrometheusCollectorRegistry()

    /// Installs the Prometheus backend once per process, before any metric is created.
    public static func bootstrap() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Attempt latency: from a fast local receiver to the 10 s timeout.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// Everything recorded so far, for `/metrics`.
    public static func render() -> String {
        registry.emitToString()
    }
}
