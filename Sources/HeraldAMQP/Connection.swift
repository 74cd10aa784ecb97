import Foundation
package import Logging
import Synchronization
import HeraldSupport

/// A connection to RabbitMQ over rabbitmq-c, owned by a dedicated thread.
///
/// Callers on any task post commands; the thread runs them, reads frames, resolves
/// publisher confirms and feeds consumers. When the broker goes away every pending
/// call fails with `connectionLost` and `closed()` returns the reason: reconnecting
/// means opening a new `Connection` (see `connect(to:logger:backoff:)`).
package final class Connection: Sendable {
    private let inbox: Inbox
    private let lifecycle: Lifecycle
    package let url: BrokerURL
    /// Moves the process's rotation past this node (a cluster's URL list only).
    private let passOver: @Sendable () -> Void

    private init(inbox: Inbox, lifecycle: Lifecycle, url: BrokerURL, passOver: @escaping @Sendable () -> Void) {
        self.inbox = inbox
        self.lifecycle = lifecycle
        self.url = url
        self.passOver = passOver
    }

    /// Connects and logs in once. `url` may list the nodes of a cluster, separated by
    /// commas: they are tried in turn (from where the process's rotation stands) until one
    /// accepts; the error of the last is thrown when none does. A lost connection moves
    /// the rotation on, so the next `connect` tries another node first.
    package static func connect(to url: String, logger: Logger, rotation: BrokerRotation = .shared) async throws -> Connection {
        let brokers = try BrokerURL.list(url)
        var lastError: (any Error)?
        for index in rotation.order(brokers.count) {
            do {
                let connection = try await connect(to: brokers[index], logger: logger) { rotation.failed(index, of: brokers.count) }
                rotation.connected(index)
                if brokers.count > 1 {
                    // When it is lost (not closed by this process), the next connect
                    // starts at the following node.
                    let lifecycle = connection.lifecycle
                    lifecycle.onFinished {
                        if lifecycle.error != nil { rotation.failed(index, of: brokers.count) }
                    }
                }
                return connection
            } catch let error as BrokerError where error.code == .connectionFailed {
                rotation.failed(index, of: brokers.count)
                if brokers.count > 1 {
                    logger.warning("broker node unreachable, trying the next", metadata: ["broker": "\(brokers[index].redacted)", "reason": "\(error.message)"])
                }
                lastError = error
            }
        }
        throw lastError ?? BrokerError(.connectionFailed, message: "no broker to connect to")
    }

    private static func connect(to parsed: BrokerURL, logger: Logger, passOver: @escaping @Sendable () -> Void) async throws -> Connection {
        let inbox = Inbox()
        let lifecycle = Lifecycle()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            startNamedThread("amqp") {
                let core: Core
                do {
                    core = try Core.open(parsed, inbox: inbox, lifecycle: lifecycle, logger: logger)
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                continuation.resume()
                core.run()
            }
        }
        return Connection(inbox: inbox, lifecycle: lifecycle, url: parsed, passOver: passOver)
    }

    /// Closes a connection whose node let the process in but could not serve it (a
    /// declare or a consume failed: a node cut off from the cluster's majority does
    /// that): the next `connect` starts at the following node instead of this one.
    package func abandon() async {
        passOver()
        await close()
    }

    /// Connects, retrying with `backoff` while the broker is unreachable, until it
    /// succeeds or the task is cancelled. Each failure is logged once.
    package static func connect(to url: String, logger: Logger, backoff: Backoff) async throws -> Connection {
        var attempt = 0
        while true {
            do {
                let connection = try await connect(to: url, logger: logger)
                if attempt > 0 { logger.info("connected to the broker", metadata: ["attempts": "\(attempt + 1)"]) }
                return connection
            } catch let error as BrokerError where error.code == .connectionFailed {
                let delay = backoff.delay(attempt: attempt)
                logger.warning(
                    "broker unreachable, retrying",
                    metadata: ["reason": "\(error.message)", "retry_in_ms": "\(delay.milliseconds)"])
                attempt += 1
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Opens a new channel on this connection.
    package func openChannel() async throws -> Channel {
        let id = try await withCheckedThrowingContinuation { continuation in
            post(.openChannel(continuation))
        }
        return Channel(id: id, connection: self)
    }

    /// Closes the connection cleanly; pending publishes fail with `closed`, consumers finish.
    package func close() async {
        await withCheckedContinuation { continuation in
            if !inbox.post(.close(continuation)) { continuation.resume() }
        }
    }

    /// Waits until the connection ends: nil after `close()`, the reason otherwise.
    package func closed() async -> BrokerError? {
        await lifecycle.wait()
    }

    package var isOpen: Bool { !lifecycle.isFinished }

    /// Posts `command`, failing it at once if the connection is already gone.
    func post(_ command: Command) {
        if !inbox.post(command) {
            command.fail(lifecycle.error ?? BrokerError(.closed, message: "the connection is closed"))
        }
    }
}

/// When a connection's thread has ended, and why.
final class Lifecycle: Sendable {
    private struct State {
        var finished = false
        var error: BrokerError?
        var waiters: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    var isFinished: Bool { state.withLock { $0.finished } }
    var error: BrokerError? { state.withLock { $0.error } }

    func finish(_ error: BrokerError?) {
        let waiters = state.withLock { state in
            state.finished = true
            state.error = error
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter() }
    }

    /// Runs `body` once finished (at once if already).
    func onFinished(_ body: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            if state.finished { return true }
            state.waiters.append(body)
            return false
        }
        if now { body() }
    }

    func wait() async -> BrokerError? {
        await withCheckedContinuation { continuation in
            onFinished { continuation.resume() }
        }
        return error
    }
}
