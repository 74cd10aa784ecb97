import Logging
import Operations
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport

@Suite("Service lifecycle")
struct LifecycleTests {
    struct Failed: Error {}

    struct Failing: Service {
        func run() async throws { throw Failed() }
    }

    final class Closed: Sendable {
        let names = Mutex<[String]>([])
        func add(_ name: String) { names.withLock { $0.append(name) } }
    }

    /// A service that stops when the group shuts down, noting that it did.
    struct Working: Service {
        let closed: Closed
        func run() async throws {
            try? await gracefulShutdown()
            closed.add("worker")
        }
    }

    /// Resources were closed by hand after `group.run()`, so a service that threw skipped
    /// their cleanup. Now they close after the others, also when one fails.
    @Test func resourcesCloseLastEvenWhenAServiceFails() async throws {
        let closed = Closed()
        let group = ServiceGroup(
            configuration: .process(
                [Closing("pool") { closed.add("pool") }, Closing("client") { closed.add("client") }, Working(closed: closed), Failing()],
                gracefulShutdownSignals: [], logger: TestServices.logger))
        await #expect(throws: Failed.self) { try await group.run() }
        #expect(closed.names.withLock { $0 } == ["worker", "client", "pool"])
    }

    /// Listed before the services that use them, they close after them, in reverse order.
    @Test func onGracefulShutdownResourcesCloseAfterTheirUsers() async throws {
        let closed = Closed()
        let group = ServiceGroup(
            configuration: .process(
                [Closing("pool") { closed.add("pool") }, Closing("client") { closed.add("client") }, Working(closed: closed)],
                gracefulShutdownSignals: [], logger: TestServices.logger))
        let running = Task { try await group.run() }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(closed.names.withLock { $0 } == ["worker", "client", "pool"])
    }
}
