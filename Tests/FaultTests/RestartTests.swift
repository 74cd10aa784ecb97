import HeraldAMQP
import HeraldEvents
import Foundation
import HeraldProducer
import Postgres
import Testing
import TestSupport

@Suite("Server restarts (faults instance)", .serialized)
struct RestartTests {
    @Test func amqpReconnectsAfterTheBrokerRestarts() async throws {
        let url = TestServices.faultsAMQPURL
        let before = try await Connection.connect(to: url, logger: TestServices.logger)
        let channel = try await before.openChannel()
        let queue = TestServices.uniqueName("survives")
        try await channel.declareQueue(queue)
        try await channel.enableConfirms()
        try await channel.publish(Message(body: Array("persisted".utf8)), exchange: "", routingKey: queue, mandatory: true)

        try TestServices.script("stop-rabbitmq", "faults")
        // The broker's shutdown (or the dead socket) ends the connection with a reason.
        let reason = await before.closed()
        #expect(reason?.code == .connectionLost)
        await #expect(throws: BrokerError.self) {
            try await channel.publish(Message(body: [1]), exchange: "", routingKey: queue)
        }

        // Reconnecting with backoff waits for the broker to come back.
        let reconnect = Task {
            try await Connection.connect(to: url, logger: TestServices.logger, backoff: Backoff(initial: .milliseconds(200), maximum: .seconds(1)))
        }
        try TestServices.script("start-rabbitmq", "faults")
        let after = try await reconnect.value
        let again = try await after.openChannel()
        try await again.enableConfirms()
        // The durable queue and its persistent message survived the restart.
        let info = try await again.declareQueue(queue, passive: true)
        #expect(info.messageCount == 1)
        try await again.publish(Message(body: [2]), exchange: "", routingKey: queue, mandatory: true)
        try await again.deleteQueue(queue)
        await after.close()
    }

    @Test func poolRecoversAfterPostgresRestarts() async throws {
        let pool = try Pool(url: TestServices.faultsDatabaseURL, size: 2, logger: TestServices.logger)
        let first = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int.self, 0)

        try TestServices.script("stop-postgres", "faults")
        do {
            try await pool.query("SELECT 1")
            Issue.record("a query succeeded while the server was down")
        } catch let error as DatabaseError {
            #expect(error.code == .connectionFailed || error.code == .connectionLost)
        }
        try TestServices.script("start-postgres", "faults")

        // The broken connection is dropped on checkout; a fresh session answers.
        let second = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int.self, 0)
        #expect(second != first)
        await pool.close()
    }
}

// In the same serialized suite: it stops the same broker.
extension RestartTests {
    @Test func publishingFailsFastWhileTheBrokerIsDownAndWorksWhenItIsBack() async throws {
        let exchange = TestServices.uniqueName("resilient") + ".events"
        let queue = TestServices.uniqueName("resilient.work")
        let setup = try await Connection.connect(to: TestServices.faultsAMQPURL, logger: TestServices.logger)
        let channel = try await setup.openChannel()
        try await channel.declareExchange(exchange, type: .topic)
        try await channel.declareQueue(queue)
        try await channel.bindQueue(queue, exchange: exchange, routingKey: "#")
        await setup.close()
        let producer = Producer(configuration: .init(amqpURL: TestServices.faultsAMQPURL, exchange: exchange, timeout: .seconds(3)), logger: TestServices.logger)
        let event = { Event(type: "client.created", tenantID: UUID(), data: Array("{}".utf8)) }
        try await producer.publish(event())

        try TestServices.script("stop-rabbitmq", "faults")
        let started = ContinuousClock.now
        do {
            try await producer.publish(event())
            Issue.record("published while the broker was down")
        } catch let error as PublishError {
            #expect(error.code == .unavailable || error.code == .timeout)
        }
        // Never hangs: the configured timeout bounds it.
        #expect(ContinuousClock.now - started < .seconds(10))

        try TestServices.script("start-rabbitmq", "faults")
        try await producer.publish(event())
        let check = try await Connection.connect(to: TestServices.faultsAMQPURL, logger: TestServices.logger)
        let info = try await check.openChannel().declareQueue(queue, passive: true)
        #expect(info.messageCount == 2)
        let cleanup = try await check.openChannel()
        try await cleanup.deleteQueue(queue)
        try await cleanup.deleteExchange(exchange)
        await check.close()
        await producer.close()
    }
}

extension RestartTests {
    /// The shortened fault run: kills, a broker and a database restart, a 503 stretch and
    /// a freeze while 2,000 events are delivered; it exits non-zero on any lost,
    /// unexpected or badly signed delivery, an open delivery or a non-empty queue.
    @Test func theShortFaultRunLosesNothing() async throws {
        try Self.faultRun(["--events", "2000", "--rate", "150", "--kills", "2", "--timeout", "240"])
    }

    /// The same on a three-node RabbitMQ cluster (`scripts/services start cluster`): two
    /// workers and the producer on different nodes; the node leading the work queue is
    /// killed with SIGKILL and restarted, later another node is stopped and started, and a
    /// worker is killed, while 3,000 events are delivered: nothing lost.
    @Test func theShortFaultRunOnAClusterLosesNothing() async throws {
        try Self.faultRun(["--cluster", "--events", "3000", "--rate", "100", "--kills", "1", "--timeout", "300"])
    }

    static func faultRun(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = TestServices.repositoryRoot.appendingPathComponent(".build/debug/faultrun")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let report = String(decoding: data, as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(report)")
        for line in ["lost                  0", "unexpected            0", "invalid signatures    0", "every queue empty     true"] {
            #expect(report.contains(line), "missing '\(line)' in \(report)")
        }
    }

    // In this suite, not a suite of its own: the restarts above must not run meanwhile.
    /// A broker that stays connected but confirms nothing (publishing blocked by its
    /// memory alarm) held a publish until the heartbeat dropped the connection: the
    /// timeout raced a wait that ignored cancellation. Now the publishes fail with their
    /// timeout while the broker is still blocked.
    @Test func aPublishToABrokerThatNeverConfirmsEndsWithItsTimeout() async throws {
        let queue = TestServices.uniqueName("blocked")
        let setup = try await Connection.connect(to: TestServices.faultsAMQPURL, logger: TestServices.logger)
        try await setup.openChannel().declareQueue(queue)
        let publisher = Publisher(url: TestServices.faultsAMQPURL, timeout: .seconds(2), logger: TestServices.logger)
        // Connected (and confirming) before the broker blocks.
        try await publisher.publish(Message(body: [0]), exchange: "", routingKey: queue)
        try TestServices.script("block-publishing", "faults")
        // Were the wait still unbounded, lifting the block lets the test end (and fail).
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            try TestServices.script("unblock-publishing", "faults")
        }
        defer { watchdog.cancel() }
        // Many at once, twice what this machine's sockets can buffer (both ends at their
        // largest), so the connection's thread is stuck sending to a broker that stopped
        // reading. One shared timer watches every publish, outside that thread; each fails
        // with its timeout (were the thread free, the first timeout's close would fail the
        // others as closed).
        let buffered = [("tcp_wmem"), ("tcp_rmem")].compactMap { name in
            (try? String(contentsOfFile: "/proc/sys/net/ipv4/\(name)", encoding: .utf8))?.split(separator: "\t").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }.reduce(0, +)
        let count = max(32, 2 * buffered / (1024 * 1024) + 1)
        let outcomes = await withTaskGroup(of: BrokerError.Code?.self) { group in
            for n in 0..<count {
                group.addTask {
                    do {
                        try await publisher.publish(Message(body: Array(repeating: UInt8(n), count: 1024 * 1024)), exchange: "", routingKey: queue)
                        return nil
                    } catch let error as BrokerError {
                        return error.code
                    } catch {
                        return .connectionLost
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes == Array(repeating: .timeout, count: count), "a publish was confirmed by a blocked broker, or failed otherwise")
        try TestServices.script("unblock-publishing", "faults")
        // The publisher starts over with a new connection.
        try await publisher.publish(Message(body: [2]), exchange: "", routingKey: queue)
        await publisher.close()
        try await setup.openChannel().deleteQueue(queue)
        await setup.close()
    }
}
