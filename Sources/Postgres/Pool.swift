public import Logging
import Synchronization
import HeraldSupport

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
        /// Callers waiting for a connection; one that was cancelled refuses what it is handed.
        var waiters: [OneShot<Lease>] = []
        var closed = false
    }

    private let url: String
    private let size: Int
    private let applicationName: String
    private let genericPlans: Bool
    private let logger: Logger
    private let state = Mutex(State())

    /// With `genericPlans`, every session plans a prepared statement once
    /// (`Connection.connect(genericPlans:)`): for a pool whose statements are all known and
    /// checked under generic plans, such as the worker's.
    public init(url: String, size: Int = 8, applicationName: String = "herald", genericPlans: Bool = false, logger: Logger) throws {
        precondition(size > 0, "a pool needs at least one connection")
        try ConnectionURL.validate(url)
        self.url = url
        self.size = size
        self.applicationName = applicationName
        self.genericPlans = genericPlans
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

    /// One statement on any pooled connection. A connection that lay idle is checked in the
    /// statement's own trip to its thread, and taken back on what that trip saw: one trip
    /// per statement where `withConnection` makes two. Each connection found closed is
    /// dropped; a new one is not checked, so this ends at the latest with a new connection.
    @discardableResult
    public func query(_ query: Query) async throws -> Rows {
        while true {
            let connection: Connection
            let opened: Bool
            switch try await lease() {
            case .reuse(let idle):
                (connection, opened) = (idle, false)
            case .open:
                (connection, opened) = (try await open(), true)
            }
            let rows: Rows?
            do {
                rows = opened ? try await connection.query(query) : try await connection.queryUnlessClosed(query)
            } catch {
                await release(connection)
                throw error
            }
            guard let rows else {
                logger.info("dropping a broken database connection")
                await discard(connection)
                continue
            }
            await release(connection)
            return rows
        }
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

    /// A connection checked for what the server sent while it lay idle.
    private func acquire() async throws -> Connection {
        while true {
            switch try await lease() {
            case .reuse(let connection):
                if await connection.isReusable { return connection }
                logger.info("dropping a broken database connection")
                await discard(connection)
            case .open:
                return try await open()
            }
        }
    }

    /// An idle connection, or a free slot to open one in.
    private func lease() async throws -> Lease {
        let waiter = OneShot<Lease>()
        let immediate: Result<Lease, any Error>? = state.withLock { state in
            if state.closed { return .failure(DatabaseError(.poolClosed)) }
            if let connection = state.idle.popLast() { return .success(.reuse(connection)) }
            if state.open < size {
                state.open += 1
                return .success(.open)
            }
            state.waiters.append(waiter)
            return nil
        }
        // A waiter that is cancelled returns at once; what is handed to it later goes on
        // to the next one (see `handOver`).
        if let immediate { return try immediate.get() }
        return try await waiter.wait {}
    }

    /// A new connection in a slot the caller leased; the slot is handed on if it fails.
    private func open() async throws -> Connection {
        do {
            return try await Connection.connect(to: url, applicationName: applicationName, genericPlans: genericPlans, logger: logger)
        } catch {
            handOn()
            throw error
        }
    }

    /// Takes `connection` back if its last job left it open and outside a transaction.
    private func release(_ connection: Connection) async {
        guard connection.wasIdleAfterLastJob else {
            await discard(connection)
            return
        }
        if let closing = handOver(.reuse(connection)) { await closing.close() }
    }

    private func discard(_ connection: Connection) async {
        await connection.close()
        handOn()
    }

    /// A slot was freed: a waiter may open a connection in it.
    private func handOn() {
        _ = handOver(.open)
    }

    /// Gives `lease` to the first waiter still waiting; with none, a connection becomes
    /// idle and a free slot is given back. Returns a connection to close (the pool closed).
    private func handOver(_ lease: Lease) -> Connection? {
        while true {
            enum Next {
                case give(OneShot<Lease>)
                case kept
                case close(Connection?)
            }
            let next: Next = state.withLock { state in
                if state.closed {
                    state.open -= 1
                    if case .reuse(let connection) = lease { return .close(connection) }
                    return .close(nil)
                }
                if !state.waiters.isEmpty { return .give(state.waiters.removeFirst()) }
                switch lease {
                case .reuse(let connection): state.idle.append(connection)
                case .open: state.open -= 1
                }
                return .kept
            }
            switch next {
            case .give(let waiter): if waiter.resume(returning: lease) { return nil }
            case .kept: return nil
            case .close(let connection): return connection
            }
        }
    }
}
