public import Logging
public import ServiceLifecycle
public import UnixSignals

/// A resource a process holds for its whole life (a database pool, the HTTP client, a
/// publisher), closed when the service group ends. Listed before the services that use
/// it in a group made with `ServiceGroupConfiguration.process`, it is closed after them
/// (the group stops its services in reverse order), also when one of them fails.
public struct Closing: Service, CustomStringConvertible {
    public let description: String
    private let close: @Sendable () async -> Void

    public init(_ name: String, close: @escaping @Sendable () async -> Void) {
        description = "Closing(\(name))"
        self.close = close
    }

    public func run() async throws {
        // Until the group shuts down, gracefully or by cancellation.
        try? await gracefulShutdown()
        await close()
    }
}

extension ServiceGroupConfiguration {
    /// A process's group: `services` in start order (its resources first). If one of them
    /// ends or fails, the others shut down gracefully in reverse order, as on SIGTERM, so
    /// the resources still close after the services that use them.
    public static func process(
        _ services: [any Service], gracefulShutdownSignals: [UnixSignal], logger: Logger
    ) -> ServiceGroupConfiguration {
        ServiceGroupConfiguration(
            services: services.map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
    }
}
