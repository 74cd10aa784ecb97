public import ServiceLifecycle

/// A resource a process holds for its whole life (a database pool, the HTTP client, a
/// publisher), closed when the service group ends. Listed before the services that use
/// it, it is closed after them (a group stops its services in reverse order), and a
/// service that fails does not skip it.
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
