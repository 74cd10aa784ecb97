internal import CPostgres
import Foundation
public import Logging
import HeraldSupport
import Synchronization

/// One PostgreSQL session over libpq. Every libpq call runs on the connection's own
/// thread (`SerialThread`): libpq blocks, and a `PGconn` must be used by one thread at a time.
public final class Connection: Sendable {
    private let thread: SerialThread
    private let handle: Handle
    public let logger: Logger
    /// Whether the session was open and outside a transaction when its last job ended,
    /// so a pool takes it back without another trip to its thread.
    private let idleAfterLastJob = Atomic<Bool>(true)

    private init(thread: SerialThread, handle: Handle, logger: Logger) {
        self.thread = thread
        self.handle = handle
        self.logger = logger
    }

    /// Opens a session from a `postgres://` or `postgresql://` URL. The session runs in
    /// UTC with ISO dates, which the value codecs rely on.
    ///
    /// With `genericPlans` (`plan_cache_mode = force_generic_plan`) a prepared statement is
    /// planned once per session. By default PostgreSQL plans it again for every execution
    /// while those plans look cheaper than a generic one, which batch statements over
    /// arrays always do: a planner run per statement. Unprepared statements are planned
    /// without their values too, so only a session whose every statement has a good plan
    /// without them should ask for it.
    ///
    /// With `peerTimeout` the session fails once the server leaves data unacknowledged or
    /// stays silent that long (TCP keepalives and `tcp_user_timeout`), rather than after the
    /// system's default of a quarter of an hour: for a session that waits on the server
    /// (`LISTEN`) and must notice a vanished peer.
    public static func connect(
        to url: String, applicationName: String = "herald", connectTimeout: Int = 10, genericPlans: Bool = false,
        peerTimeout: Duration? = nil, logger: Logger
    ) async throws -> Connection {
        try ConnectionURL.validate(url)
        let thread = SerialThread(name: "postgres")
        let handle = Handle()
        do {
            try await thread.run {
                try handle.open(
                    url: url, applicationName: applicationName, connectTimeout: connectTimeout, genericPlans: genericPlans, peerTimeout: peerTimeout)
            }
        } catch {
            thread.stop()
            throw error
        }
        return Connection(thread: thread, handle: handle, logger: logger)
    }

    /// Runs one statement; its interpolated values travel as parameters.
    @discardableResult
    public func query(_ query: Query) async throws -> Rows {
        let (sql, binds) = query.render()
        let prepared = query.isPrepared
        return try await run { handle in try handle.execute(sql: sql, binds: binds, prepared: prepared) }
    }

    /// One statement on a session that lay idle in a pool, checked for what the server sent
    /// meanwhile in the same job: nil when the server had closed it, and nothing ran.
    func queryUnlessClosed(_ query: Query) async throws -> Rows? {
        let (sql, binds) = query.render()
        let prepared = query.isPrepared
        return try await run { handle in
            guard handle.isReusable else { return nil }
            return try handle.execute(sql: sql, binds: binds, prepared: prepared)
        }
    }

    /// Runs SQL text that may hold several statements and no parameters (migration files).
    public func execute(script: String) async throws {
        try await run { handle in try handle.execute(script: script) }
    }

    /// Waits at most `timeout` for a `NOTIFY` on the channels this session listens to
    /// (`LISTEN`), and returns what arrived, possibly nothing. The wait holds the session's
    /// thread, so a listening session is used for nothing else; a caller that loops on it
    /// notices its cancellation within one `timeout`.
    public func notifications(waitingAtMost timeout: Duration) async throws -> [DatabaseNotification] {
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        return try await run { handle in try handle.notifications(waitingAtMost: milliseconds) }
    }

    /// `body` on the session's thread; notes afterwards whether the session is idle.
    private func run<T: Sendable>(_ body: @escaping @Sendable (Handle) throws -> T) async throws -> T {
        try await thread.run { [self] in
            defer { idleAfterLastJob.store(handle.isIdle, ordering: .releasing) }
            return try body(handle)
        }
    }

    /// Runs `body` inside BEGIN … COMMIT; any error rolls back and is rethrown.
    public func transaction<T>(_ body: (Connection) async throws -> T) async throws -> T {
        try await query("BEGIN")
        do {
            let result = try await body(self)
            try await query("COMMIT")
            return result
        } catch {
            if await isUsable { _ = try? await query("ROLLBACK") }
            throw error
        }
    }

    /// Whether the session is open and idle outside a transaction: reads whatever the
    /// server sent meanwhile (a shutdown notice closes it), without blocking.
    var isReusable: Bool {
        get async { (try? await run { $0.isReusable }) ?? false }
    }

    /// Whether the session was open and outside a transaction when its last job ended: what
    /// a pool needs to take it back, known without reading what the server sent since.
    var wasIdleAfterLastJob: Bool { idleAfterLastJob.load(ordering: .acquiring) }

    private var isUsable: Bool {
        get async { (try? await run { $0.isUsable }) ?? false }
    }

    /// Ends the session and its thread.
    public func close() async {
        _ = try? await run { $0.close() }
        thread.stop()
    }
}

/// A `NOTIFY` a listening session received.
public struct DatabaseNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    /// The server process of the session that notified (`pg_backend_pid()` there).
    public var sender: Int32
}

/// The `PGconn` of one `Connection`.
///
/// `@unchecked Sendable`: it is created on the caller's task but only ever used inside
/// jobs on the connection's `SerialThread`, which runs them one at a time.
private final class Handle: @unchecked Sendable {
    private var conn: OpaquePointer?
    /// The session's prepared statements by text and parameter types, with their last use;
    /// the least recently used is deallocated beyond `Self.statementLimit`.
    private var statements: [StatementKey: (name: String, used: Int)] = [:]
    private var uses = 0
    private var statementsMade = 0
    /// The server dropped prepared statements (`DISCARD ALL`) while a transaction it aborted
    /// was open: `statements` was emptied, and the server's own list is emptied too before
    /// the next statement is prepared, so that the two agree again.
    private var deallocateAll = false
    static let statementLimit = 32
    /// Set by libpq's notice receiver when the server says it is ending the session (a
    /// FATAL notice read while idle): its close may not have arrived yet, and a statement
    /// sent meanwhile would fail.
    private let ending = UnsafeMutablePointer<Bool>.allocate(capacity: 1)

    init() {
        ending.initialize(to: false)
    }

    private struct StatementKey: Hashable {
        var sql: String
        var types: [Oid]
    }

    deinit {
        if let conn { PQfinish(conn) }
        ending.deallocate()
    }

    func open(url: String, applicationName: String, connectTimeout: Int, genericPlans: Bool, peerTimeout: Duration?) throws {
        // Later keywords override what the URL says; `dbname` first is expanded as the URL.
        var keywords = ["dbname", "application_name", "connect_timeout", "client_encoding", "options"]
        let options = "-c timezone=UTC -c datestyle=ISO" + (genericPlans ? " -c plan_cache_mode=force_generic_plan" : "")
        var values = [url, applicationName, String(connectTimeout), "UTF8", options]
        if let peerTimeout {
            let milliseconds = max(1000, peerTimeout.components.seconds * 1000 + peerTimeout.components.attoseconds / 1_000_000_000_000_000)
            keywords += ["keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"]
            values += ["1", String(max(1, milliseconds / 2000)), String(max(1, milliseconds / 4000)), "2", String(milliseconds)]
        }
        let connection = withCStringArray(keywords) { k in
            withCStringArray(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let connection else {
            throw DatabaseError(.connectionFailed, message: "out of memory")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.message(PQerrorMessage(connection))
            PQfinish(connection)
            throw DatabaseError(.connectionFailed, message: message)
        }
        // NOTICEs (`… already exists, skipping`) would go to stderr otherwise; only a
        // session's end is kept.
        PQsetNoticeReceiver(connection, noticeReceiver, UnsafeMutableRawPointer(ending))
        conn = connection
    }

    /// Reads what the server sent while the session was idle: a server that ends the
    /// session sends a FATAL notice, then closes the socket, and libpq notices the close
    /// only on a read after the one that took the notice. It reads while the socket has
    /// more; a notice that arrived without its close yet ends the session here.
    var isUsable: Bool {
        guard let conn else { return false }
        var socket = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        var reads = 0
        while PQstatus(conn) == CONNECTION_OK, !ending.pointee, reads < 4, poll(&socket, 1, 0) == 1 {
            _ = PQconsumeInput(conn)
            // Parses what was read, which hands a notice to the receiver.
            _ = PQisBusy(conn)
            reads += 1
        }
        return PQstatus(conn) == CONNECTION_OK && !ending.pointee
    }

    var isReusable: Bool {
        guard let conn, isUsable else { return false }
        return PQtransactionStatus(conn) == PQTRANS_IDLE
    }

    /// Open and outside a transaction as far as the session knows, without a system call.
    var isIdle: Bool {
        guard let conn else { return false }
        return PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE && !ending.pointee
    }

    func close() {
        if let conn { PQfinish(conn) }
        conn = nil
        statements.removeAll()
    }

    func execute(sql: String, binds: [Bind], prepared: Bool) throws -> Rows {
        let conn = try live(sql)
        // libpq would cut the value short at the NUL; refused before anything is prepared.
        guard !binds.contains(where: \.hasNUL) else {
            throw DatabaseError(.encoding, message: "a text parameter contains a NUL byte", query: sql)
        }
        let types = binds.map { Oid($0.oid) }
        guard prepared else {
            let result = withParameters(binds) { count, values, lengths, formats in
                types.withUnsafeBufferPointer { types in
                    PQexecParams(conn, sql, count, types.baseAddress, values, lengths, formats, 0)
                }
            }
            return try rows(of: result, conn: conn, sql: sql)
        }
        var retried = false
        while true {
            let name = try statement(sql: sql, types: types, conn: conn)
            let result = withParameters(binds) { count, values, lengths, formats in
                PQexecPrepared(conn, name, count, values, lengths, formats, 0)
            }
            do {
                return try rows(of: result, conn: conn, sql: sql)
            } catch let error as DatabaseError where Self.invalidatesStatement.contains(error.sqlState ?? "") {
                // Gone (`DISCARD ALL`: then every other one is gone too, and is forgotten
                // with it, so the rest of a transaction that fails here fails no further
                // when run again) or planned for columns a migration changed: prepared
                // afresh, and run again when no transaction was aborted by the failure.
                if error.sqlState == "26000" {
                    statements.removeAll()
                    deallocateAll = true
                } else {
                    statements[StatementKey(sql: sql, types: types)] = nil
                    PQclear(PQexec(conn, "DEALLOCATE \(name)"))
                }
                guard !retried, PQtransactionStatus(conn) == PQTRANS_IDLE else { throw error }
                retried = true
            }
        }
    }

    /// invalid_sql_statement_name; feature_not_supported ("cached plan must not change result type").
    private static let invalidatesStatement: Set<String> = ["26000", "0A000"]

    /// The name of the session's prepared statement for `sql`, prepared now if it is new.
    private func statement(sql: String, types: [Oid], conn: OpaquePointer) throws -> String {
        // Not in a transaction the server aborted, where it would run nothing.
        if deallocateAll, PQtransactionStatus(conn) != PQTRANS_INERROR {
            _ = try rows(of: PQexec(conn, "DEALLOCATE ALL"), conn: conn, sql: "DEALLOCATE ALL")
            deallocateAll = false
        }
        uses += 1
        let key = StatementKey(sql: sql, types: types)
        if let known = statements[key] {
            statements[key] = (known.name, uses)
            return known.name
        }
        if statements.count >= Self.statementLimit, let oldest = statements.min(by: { $0.value.used < $1.value.used }) {
            statements[oldest.key] = nil
            PQclear(PQexec(conn, "DEALLOCATE \(oldest.value.name)"))
        }
        statementsMade += 1
        let name = "herald_\(statementsMade)"
        let result = types.withUnsafeBufferPointer { types in PQprepare(conn, name, sql, Int32(types.count), types.baseAddress) }
        _ = try rows(of: result, conn: conn, sql: sql)
        statements[key] = (name, uses)
        return name
    }

    /// The notifications libpq has read, then, if there were none, those that arrive within
    /// `milliseconds`. A closed socket or a session the server ended is an error.
    func notifications(waitingAtMost milliseconds: Int32) throws -> [DatabaseNotification] {
        let conn = try live("LISTEN")
        var received = Self.takeNotifications(conn)
        if received.isEmpty {
            var socket = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
            // An interrupted wait (-1, EINTR) reads nothing and returns empty, like a timeout.
            if poll(&socket, 1, milliseconds) > 0 {
                guard PQconsumeInput(conn) == 1, PQstatus(conn) == CONNECTION_OK, !ending.pointee else {
                    throw DatabaseError(.connectionLost, message: Self.message(PQerrorMessage(conn)), query: "LISTEN")
                }
                received = Self.takeNotifications(conn)
            }
        }
        guard PQstatus(conn) == CONNECTION_OK, !ending.pointee else {
            throw DatabaseError(.connectionLost, message: "the server ended the session", query: "LISTEN")
        }
        return received
    }

    private static func takeNotifications(_ conn: OpaquePointer) -> [DatabaseNotification] {
        var received: [DatabaseNotification] = []
        while let notify = PQnotifies(conn) {
            received.append(
                DatabaseNotification(
                    channel: String(cString: notify.pointee.relname), payload: String(cString: notify.pointee.extra), sender: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }

    func execute(script: String) throws {
        let conn = try live(script)
        let result = PQexec(conn, script)
        _ = try rows(of: result, conn: conn, sql: script)
    }

    private func live(_ sql: String) throws -> OpaquePointer {
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            throw DatabaseError(.connectionLost, message: "the connection is closed", query: sql)
        }
        return conn
    }

    private func rows(of result: OpaquePointer?, conn: OpaquePointer, sql: String) throws -> Rows {
        guard let result else {
            throw DatabaseError(
                PQstatus(conn) == CONNECTION_BAD ? .connectionLost : .server,
                message: Self.message(PQerrorMessage(conn)), query: sql)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            break
        default:
            let field = { (code: Int32) in PQresultErrorField(result, code).map { String(cString: $0) } }
            let lost = PQstatus(conn) == CONNECTION_BAD
            throw DatabaseError(
                lost ? .connectionLost : .server,
                sqlState: field(herald_pg_diag_sqlstate()),
                message: field(herald_pg_diag_message_primary()) ?? Self.message(PQresultErrorMessage(result)),
                constraint: field(herald_pg_diag_constraint_name()),
                query: sql)
        }
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var spans: [ResultValues.Span] = []
        spans.reserveCapacity(rowCount * columnCount)
        var total = 0
        for row in 0..<Int32(rowCount) {
            for column in 0..<Int32(columnCount) {
                let null = PQgetisnull(result, row, column) == 1
                let length = null ? -1 : Int(PQgetlength(result, row, column))
                spans.append(ResultValues.Span(start: total, length: length))
                total += max(length, 0)
            }
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard let base = buffer.baseAddress else { return }  // nothing but NULLs and ''
            var index = 0
            for row in 0..<Int32(rowCount) {
                for column in 0..<Int32(columnCount) {
                    let span = spans[index]
                    index += 1
                    guard span.length > 0, let value = PQgetvalue(result, row, column) else { continue }
                    memcpy(base + span.start, value, span.length)
                }
            }
            count = total
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        let values = ResultValues(columns: columns, rowCount: rowCount, bytes: bytes, spans: spans, query: sql)
        return Rows(values, affectedRows: affected)
    }

    private static func message(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "unknown error" }
        return String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Calls `body` with libpq's parameter arrays: values (text as each string's own
/// NUL-terminated UTF-8, binary in place), their lengths and formats (lengths and formats nil
/// when every parameter is text).
private func withParameters<R>(
    _ binds: [Bind],
    _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
) -> R {
    var values: [UnsafePointer<CChar>?] = []
    values.reserveCapacity(binds.count)
    func next(_ index: Int) -> R {
        guard index < binds.count else {
            return values.withUnsafeBufferPointer { values in
                guard binds.contains(where: { $0.binary != nil }) else { return body(Int32(binds.count), values.baseAddress, nil, nil) }
                let lengths = binds.map { Int32($0.binary?.count ?? 0) }
                let formats = binds.map { Int32($0.binary == nil ? 0 : 1) }
                return body(Int32(binds.count), values.baseAddress, lengths, formats)
            }
        }
        if let binary = binds[index].binary {
            return binary.withUnsafeBytes { bytes in
                // An empty buffer has no address, and a null value pointer would send NULL.
                values.append(bytes.baseAddress?.assumingMemoryBound(to: CChar.self) ?? empty)
                return next(index + 1)
            }
        }
        guard let text = binds[index].text else {
            values.append(nil)
            return next(index + 1)
        }
        return text.withCString { pointer in
            values.append(pointer)
            return next(index + 1)
        }
    }
    return next(0)
}

/// A zero-length value that is not NULL.
private var empty: UnsafePointer<CChar> { UnsafeRawPointer(StaticString("").utf8Start).assumingMemoryBound(to: CChar.self) }

/// Calls `body` with a NULL-terminated C array of C strings that lives for the call.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let pointers: [UnsafePointer<CChar>?] = strings.map { UnsafePointer(strdup($0)) } + [nil]
    defer { for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Checks a database URL before libpq sees it, so a typo gets a clear error.
enum ConnectionURL {
    static func validate(_ url: String) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw DatabaseError(.invalidURL, message: "expected postgres://user@host:port/database, got scheme of '\(redacted(url))'")
        }
        var error: UnsafeMutablePointer<CChar>?
        let options = PQconninfoParse(url, &error)
        if let options { PQconninfoFree(options) }
        if let error {
            let message = String(cString: error).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfreemem(error)
            throw DatabaseError(.invalidURL, message: "\(message) in '\(redacted(url))'")
        }
    }

    /// The URL without its password, for messages.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://"), let at = url[schemeEnd.upperBound...].lastIndex(of: "@") else {
            return url.components(separatedBy: "://").first.map { $0 + "://…" } ?? "…"
        }
        let userInfo = url[schemeEnd.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return url[..<colon] + ":***" + url[at...]
    }
}

/// libpq's notice receiver: notes a FATAL or PANIC notice (the server ending the session)
/// in the flag `arg` points to, and drops every other notice.
private let noticeReceiver: PQnoticeReceiver = { arg, result in
    guard let arg, let result,
        let severity = PQresultErrorField(result, herald_pg_diag_severity_nonlocalized())
    else { return }
    let text = String(cString: severity)
    if text == "FATAL" || text == "PANIC" { arg.assumingMemoryBound(to: Bool.self).pointee = true }
}
