import Logging
import Operations
import ServiceLifecycle
import Settings
import Tracing

/// Installs Herald's tracer for a server command, once, before anything starts a span.
enum TraceSetup {
    /// The exporter to run first in the command's service group (so that it stops last
    /// and sends the spans of the shutdown), or nil when no collector is configured.
    static func bootstrap(_ settings: Settings, command: String, logger: Logger) -> SpanExporter? {
        let exporter = settings.tracesURL.map { url in
            SpanExporter(
                configuration: .init(
                    url: url, headers: settings.tracesHeaders, serviceName: settings.serviceName ?? "herald-\(command)",
                    serviceVersion: Herald.version),
                logger: logger)
        }
        InstrumentationSystem.bootstrap(HeraldTracer(exporter: exporter, sampleRatio: settings.traceSampleRatio))
        return exporter
    }
}
