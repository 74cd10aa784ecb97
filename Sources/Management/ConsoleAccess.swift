import Cryptography
public import Foundation
public import Postgres

/// An operator console session: only the token its forms carry and when it ends.
public struct ConsoleSession: Sendable, Equatable {
    /// The cookie's value; only known when the session is opened (the table keeps its hash).
    public var id: String?
    public var csrfToken: String
    public var expiresAt: Date
}

/// The operator console's sessions, opened by typing the operator token into a form (so
/// the token never travels in a URL or stays in a browser's history). The only code on
/// `console_sessions`; session ids are stored as SHA-256 hashes.
public struct ConsoleAccess: Sendable {
    let pool: Pool
    /// The token that opens a session; nil: the console cannot be opened.
    let operatorToken: String?

    public init(pool: Pool, operatorToken: String?) {
        self.pool = pool
        self.operatorToken = operatorToken
    }

    /// Whether an operator token is configured; without one no session can be opened.
    public var isOpen: Bool { operatorToken?.isEmpty == false }

    /// A session for `ttl` if `token` is the operator token (compared in constant time).
    public func signIn(token: String, ttl: Duration) async throws -> ConsoleSession? {
        guard let expected = operatorToken, !token.isEmpty, APIKey.matches(token, expected) else { return nil }
        let id = Hex.encode(randomBytes(count: 32))
        let csrf = Hex.encode(randomBytes(count: 16))
        let row = try await pool.query(
            """
            INSERT INTO console_sessions (id_hash, csrf_token, expires_at)
            VALUES (\(PortalAccess.hash(id)), \(csrf), now() + make_interval(secs => \(Double(ttl.components.seconds))))
            RETURNING expires_at
            """)[0]
        return ConsoleSession(id: id, csrfToken: csrf, expiresAt: try row.decode(Date.self, 0))
    }

    /// The live session a cookie names; nil for anything else (expired, unknown, tampered).
    public func session(id: String) async throws -> ConsoleSession? {
        guard PortalAccess.isSessionID(id) else { return nil }
        let rows = try await pool.query(
            "SELECT csrf_token, expires_at FROM console_sessions WHERE id_hash = \(PortalAccess.hash(id)) AND expires_at > now()")
        guard let row = rows.first else { return nil }
        return ConsoleSession(id: nil, csrfToken: try row.decode(String.self, 0), expiresAt: try row.decode(Date.self, 1))
    }

    public func close(session id: String) async throws {
        try await pool.query("DELETE FROM console_sessions WHERE id_hash = \(PortalAccess.hash(id))")
    }

    public func deleteExpired() async throws -> Int {
        try await pool.query("DELETE FROM console_sessions WHERE expires_at < now()").affectedRows
    }
}
