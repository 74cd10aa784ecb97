public import Management
public import ServiceLifecycle

/// Keeps the API's broker connection open for the life of the process, so that a
/// resend finds it ready and `/readyz` reports it without connecting.
public struct BrokerLink: Service {
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
