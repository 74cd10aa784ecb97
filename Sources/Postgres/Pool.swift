public import Logging
import Synchronization

/// A small pool of connections to one database.
///
/// Connections open lazily up to `size`. A connection is checked on the way out and
/// dropped when the server closed it (a restart, an idle timeout) or it was left inside
/// a transaction; the next caller gets a fresh one, so the pool recovers by itself
/// once the server is back.
public final class Pool: Sendable {
    private enum Lease {
        case reuse(Connection)
        case open
    }

    private struct State {
        var idle: [Connection] = []
        var open = 0
        var waiters: [CheckedContinuation<Lease, any Error>] = []
        var closed = false
    }

    private let url: String
    private let size: Int
    private let applicationName: String
    private let logger: Logger
    private let state = Mutex(State())

    public init(url: String, size: Int = 8, applicationName: String = "herald", logger: Logger) throws {
        precondition(size > 0, "a pool needs at least one connection")
        try ConnectionURL.validate(url)
        self.url = url
        self.size = size
        self.applicationName = applicationName
        self.logger = logger
    }

    /// Lends a connection to `body` and takes it back afterwards.
    public func withConnection<T>(_ body: (Connection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            await release(connection)
            return result
        } catch {
            await release(connection)
            throw error
        }
    }

    /// One statement on any pooled connection.
    @discardableResult
    public func query(_ query: Query) async throws -> Rows {
        try await withConnection { try await $0.query(query) }
    }

    /// `body` in a transaction on one pooled connection.
    public func transaction<T>(_ body: (Connection) async throws -> T) async throws -> T {
        try await withConnection { try await $0.transaction(body) }
    }

    /// Closes idle connections and fails waiting callers; lent connections close when returned.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.resume(throwing: DatabaseError(.poolClosed)) }
        for connection in idle { await connection.close() }
    }

    private func acquire() async throws -> Connection {
        while true {
            let lease: Lease = try await withCheckedThrowingContinuation { continuation in
                let immediate: Result<Lease, any Error>? = state.withLock { state in
                    if state.closed { return .failure(DatabaseError(.poolClosed)) }
                    if let connection = state.idle.popLast() { return .success(.reuse(connection)) }
                    if state.open < size {
                        state.open += 1
                        return .success(.open)
                    }
                    state.waiters.append(continuation)
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
            switch lease {
            case .reuse(let connection):
                if await connection.isReusable { return connection }
                logger.info("dropping a broken database connection")
                await discard(connection)
            case .open:
                do {
                    return try await Connection.connect(to: url, applicationName: applicationName, logger: logger)
                } catch {
                    handOn()
                    throw error
                }
            }
        }
    }

    private func release(_ connection: Connection) async {
        guard await connection.isReusable else {
            await discard(connection)
            return
        }
        enum Next {
            case handTo(CheckedContinuation<Lease, any Error>)
            case keep
            case close
        }
        let next: Next = state.withLock { state in
            if state.closed {
                state.open -= 1
                return .close
            }
            if !state.waiters.isEmpty { return .handTo(state.waiters.removeFirst()) }
            state.idle.append(connection)
            return .keep
        }
        switch next {
        case .handTo(let waiter): waiter.resume(returning: .reuse(connection))
        case .keep: break
        case .close: await connection.close()
        }
    }

    private func discard(_ connection: Connection) async {
        await connection.close()
        handOn()
    }

    /// A slot was freed: a waiter may open a connection in it.
    private func handOn() {
        let waiter: CheckedContinuation<Lease, any Error>? = state.withLock { state in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.resume(returning: .open)
    }
}
