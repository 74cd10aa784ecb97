package import Logging
import HeraldSupport

/// A long-lived confirmed publisher for processes that publish now and then (the
/// producer library, the API): connects on first use, shares one connection attempt
/// among concurrent callers, and starts over after the connection broke or a confirm
/// did not come in time. Nothing is reported as published unless the broker confirmed it.
package actor Publisher {
    package let url: String
    package let timeout: Duration
    private let setup: @Sendable (Channel) async throws -> Void
    private let logger: Logger
    private var connection: Connection?
    private var channel: Channel?
    private var connecting: Task<(Connection, Channel), any Error>?

    /// `setup` runs on each new channel before confirm mode (declare what you publish to).
    package init(url: String, timeout: Duration = .seconds(10), logger: Logger, setup: @escaping @Sendable (Channel) async throws -> Void = { _ in }) {
        self.url = url
        self.timeout = timeout
        self.logger = logger
        self.setup = setup
    }

    /// Publishes with a confirm, within `timeout` (connecting included).
    package func publish(_ message: Message, exchange: String, routingKey: String, mandatory: Bool = true) async throws {
        do {
            if isConnected, let channel {
                // Nearly always: the wait for the confirm is bounded by the shared watch. The
                // deadline is taken here, with no suspension before `watch`, so the watched
                // waits stay in deadline order.
                let reply = OneShot<Void>()
                watch(reply, until: .now + timeout)
                // Settled whatever happened (a publish refused before it waited, too), so the
                // watch lets it go.
                defer {
                    reply.resume(throwing: CancellationError())
                    forgetSettled()
                }
                try await channel.publish(message, exchange: exchange, routingKey: routingKey, mandatory: mandatory, reply: reply)
            } else {
                try await publishConnecting(message, exchange: exchange, routingKey: routingKey, mandatory: mandatory)
            }
        } catch let error as BrokerError {
            // The old connection closes in the background: a broker that confirms nothing
            // may not answer connection.close either, and the caller has waited enough.
            if [.connectionLost, .closed, .channelClosed, .timeout].contains(error.code) { drop() }
            throw error
        }
    }

    /// Connects, then publishes, raced against a timer of its own (the rare path). The
    /// connection being made does not stop for a caller that gave up: the caller's wait
    /// ends at the deadline all the same, and the connection serves later publishes.
    private func publishConnecting(_ message: Message, exchange: String, routingKey: String, mandatory: Bool) async throws {
        let outcome = OneShot<Void>()
        let deadline = ContinuousClock.now + timeout
        let expired = timeoutError
        let work = Task {
            do {
                let channel = try await self.readyChannel()
                try await channel.publish(message, exchange: exchange, routingKey: routingKey, mandatory: mandatory)
                outcome.resume(returning: ())
            } catch {
                outcome.resume(throwing: error)
            }
        }
        let timer = Task {
            try? await Task.sleep(until: deadline)
            outcome.resume(throwing: expired)
        }
        defer {
            timer.cancel()
            work.cancel()
        }
        try await outcome.wait {}
    }

    private var timeoutError: BrokerError {
        BrokerError(.timeout, message: "no confirm from the broker within \(timeout)", operation: "basic.publish")
    }

    // MARK: Time limits
    //
    // One timer for every publish waiting for its confirm, not a timer task per publish
    // (which was about a tenth of a producer's CPU). It runs on the Swift side, not on the
    // connection's thread: that thread may be blocked in `send` to a broker that stopped
    // reading (a blocked connection), and the limit must hold exactly then.

    /// Waits with their time limits, in the order they began: with one `timeout`, the
    /// earliest limit is the first one still waiting.
    private var limits: [(deadline: ContinuousClock.Instant, reply: OneShot<Void>)] = []
    private var limitsStart = 0
    private var watching: Task<Void, Never>?

    /// Publishes the watch still holds: waiting, or settled behind one that waits.
    package var watched: Int { limits.count - limitsStart }

    private func watch(_ reply: OneShot<Void>, until deadline: ContinuousClock.Instant) {
        limits.append((deadline, reply))
        if watching == nil { watching = Task { await self.enforceLimits() } }
    }

    /// Lets the answered waits at the front go.
    private func forgetSettled() {
        while limitsStart < limits.count, limits[limitsStart].reply.isSettled { limitsStart += 1 }
        if limitsStart == limits.count {
            limits.removeAll(keepingCapacity: limits.count < 4096)
            limitsStart = 0
        } else if limitsStart >= 1024, limitsStart * 2 >= limits.count {
            limits.removeFirst(limitsStart)
            limitsStart = 0
        }
    }

    /// Sleeps until the earliest limit, fails what is still waiting at it, until none is left
    /// (never cancelled: a wait registered meanwhile would be left without its limit).
    private func enforceLimits() async {
        while true {
            let now = ContinuousClock.now
            while limitsStart < limits.count, limits[limitsStart].deadline <= now {
                limits[limitsStart].reply.resume(throwing: timeoutError)
                limitsStart += 1
            }
            forgetSettled()
            guard limitsStart < limits.count else { break }
            try? await Task.sleep(until: limits[limitsStart].deadline)
        }
        watching = nil
    }

    /// Closes the connection; a later publish opens a new one.
    package func close() async {
        await reset()
    }

    /// Whether a connection is open now, without opening one: what readiness reports.
    package var isConnected: Bool { connection?.isOpen == true }

    /// Keeps a connection open until cancelled, reconnecting with `backoff` whenever it
    /// drops, so that `isConnected` follows the broker (heartbeats notice a dead one) and
    /// a readiness probe never has to connect to find out.
    package func maintain(backoff: Backoff = Backoff()) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                _ = try await readyChannel()
                failures = 0
                if let connection {
                    // Waiting for the end of a connection is not cancellable by itself:
                    // cancelling closes it, which ends the wait.
                    _ = await withTaskCancellationHandler {
                        await connection.closed()
                    } onCancel: {
                        Task { await connection.close() }
                    }
                }
            } catch {
                failures += 1
                logger.debug("broker connection not ready", metadata: ["reason": "\(error)"])
            }
            if Task.isCancelled { break }
            try? await Task.sleep(for: backoff.delay(attempt: failures))
        }
    }

    private func readyChannel() async throws -> Channel {
        if let channel, connection?.isOpen == true { return channel }
        let url = url
        let logger = logger
        let setup = setup
        let task = connecting ?? Task {
            let connection = try await Connection.connect(to: url, logger: logger)
            do {
                let channel = try await connection.openChannel()
                try await setup(channel)
                try await channel.enableConfirms()
                return (connection, channel)
            } catch {
                await connection.abandon()
                throw error
            }
        }
        connecting = task
        defer { connecting = nil }
        let (connection, channel) = try await task.value
        self.connection = connection
        self.channel = channel
        return channel
    }

    private func reset() async {
        let old = connection
        connection = nil
        channel = nil
        await old?.close()
    }

    private func drop() {
        let old = connection
        connection = nil
        channel = nil
        if let old { Task { await old.close() } }
    }
}
