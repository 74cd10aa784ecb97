import Cryptography
public import Foundation
public import Postgres

/// A portal session: which tenant it shows, whether it may change anything, and the token
/// every one of its forms carries.
public struct PortalSession: Sendable, Equatable {
    /// The cookie's value; only known when the session is opened (the table keeps its hash).
    public var id: String?
    public var tenant: UUID
    public var readOnly: Bool
    public var csrfToken: String
    public var expiresAt: Date
}

/// A link that opens the portal for one tenant, once.
public struct PortalLinkView: Codable, Sendable, Equatable {
    /// Where to send the tenant's browser, relative to Herald's address (`/portal/enter/…`).
    public var path: String
    public var expiresAt: Date
    public var readOnly: Bool
}

/// The portal's ways in: single-use links a CRM asks for with the operator token, and the
/// sessions they open. The only code on `portal_links` and `portal_sessions`; tokens and
/// session ids are stored as SHA-256 hashes.
public struct PortalAccess: Sendable {
    let pool: Pool

    public init(pool: Pool) {
        self.pool = pool
    }

    /// A link for `tenant` valid for `ttl`; `notFound` for an unknown tenant.
    public func createLink(tenant: UUID, readOnly: Bool, ttl: Duration) async throws -> PortalLinkView {
        let token = "hpl_" + Hex.encode(randomBytes(count: 32))
        let rows = try await pool.query(
            """
            INSERT INTO portal_links (token_hash, tenant_id, read_only, expires_at)
            SELECT \(Self.hash(token)), id, \(readOnly), now() + make_interval(secs => \(Double(ttl.components.seconds)))
            FROM tenants WHERE id = \(tenant)
            RETURNING expires_at
            """)
        guard let row = rows.first else { throw ManagementError(.notFound, "no such tenant") }
        return PortalLinkView(path: "/portal/enter/\(token)", expiresAt: try row.decode(Date.self, 0), readOnly: readOnly)
    }

    /// Uses the link up and opens a session for `ttl`, in one statement: of two browsers
    /// opening one link, one gets the session. Nil for a link unknown, used or expired.
    public func open(link token: String, ttl: Duration) async throws -> PortalSession? {
        guard token.hasPrefix("hpl_"), token.utf8.count == 68 else { return nil }
        let id = Hex.encode(randomBytes(count: 32))
        let csrf = Hex.encode(randomBytes(count: 16))
        let rows = try await pool.query(
            """
            WITH used AS (
                UPDATE portal_links SET used_at = now()
                WHERE token_hash = \(Self.hash(token)) AND used_at IS NULL AND expires_at > now()
                RETURNING tenant_id, read_only
            )
            INSERT INTO portal_sessions (id_hash, tenant_id, read_only, csrf_token, expires_at)
            SELECT \(Self.hash(id)), tenant_id, read_only, \(csrf), now() + make_interval(secs => \(Double(ttl.components.seconds)))
            FROM used
            RETURNING tenant_id, read_only, expires_at
            """)
        guard let row = rows.first else { return nil }
        return PortalSession(
            id: id, tenant: try row.decode(UUID.self, 0), readOnly: try row.decode(Bool.self, 1), csrfToken: csrf,
            expiresAt: try row.decode(Date.self, 2))
    }

    /// The live session a cookie names; nil for anything else (expired, unknown, tampered).
    public func session(id: String) async throws -> PortalSession? {
        guard Self.isSessionID(id) else { return nil }
        let rows = try await pool.query(
            "SELECT tenant_id, read_only, csrf_token, expires_at FROM portal_sessions WHERE id_hash = \(Self.hash(id)) AND expires_at > now()")
        guard let row = rows.first else { return nil }
        return PortalSession(
            id: nil, tenant: try row.decode(UUID.self, 0), readOnly: try row.decode(Bool.self, 1), csrfToken: try row.decode(String.self, 2),
            expiresAt: try row.decode(Date.self, 3))
    }

    /// Ends a session (sign out).
    public func close(session id: String) async throws {
        try await pool.query("DELETE FROM portal_sessions WHERE id_hash = \(Self.hash(id))")
    }

    /// Deletes expired links and sessions; returns how many.
    public func deleteExpired() async throws -> Int {
        let links = try await pool.query("DELETE FROM portal_links WHERE expires_at < now() - interval '1 day'").affectedRows
        let sessions = try await pool.query("DELETE FROM portal_sessions WHERE expires_at < now()").affectedRows
        return links + sessions
    }

    /// 64 lower-case hex digits, as every session id Herald hands out.
    static func isSessionID(_ id: String) -> Bool {
        id.utf8.count == 64 && id.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    static func hash(_ token: String) -> String {
        Hex.encode(SHA256.hash(Array(token.utf8)))
    }
}
