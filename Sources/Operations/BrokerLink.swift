public import Management
public import ServiceLifecycle

/// Keeps the API's broker connection open for the life of the process, so that a
/// resend finds it ready and `/readyz` reports it without connecting.
public struct BrokerLink: Service, CustomStringConvertible {
    /// What service-lifecycle logs for this service: never the URL, which holds the password.
    public var description: String { "BrokerLink" }

    let dispatcher: Dispatcher

    public init(dispatcher: Dispatcher) {
        self.dispatcher = dispatcher
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await dispatcher.maintainConnection()
        }
    }
}
