public import Cryptography
public import Foundation
import Logging
public import Postgres
import Synchronization

/// The endpoints of each tenant, cached for a short time so that PostgreSQL is not
/// queried per message; a change shows up within `timeToLive`.
public final class Directory: Sendable {
    private struct Entry {
        var endpoints: [Endpoint]
        var fetchedAt: ContinuousClock.Instant
    }

    private let timeToLive: Duration
    private let load: @Sendable (UUID) async throws -> [Endpoint]?
    private let cache = Mutex<[UUID: Entry]>([:])

    /// The endpoints as `load` reads them (nil: no such tenant); a worker's unit tests
    /// give a fixed list, Herald reads PostgreSQL (`init(pool:timeToLive:keyring:)`).
    public init(timeToLive: Duration = .seconds(5), load: @escaping @Sendable (UUID) async throws -> [Endpoint]?) {
        self.timeToLive = timeToLive
        self.load = load
    }

    /// Reads PostgreSQL; `keyring` opens the secrets stored sealed.
    public convenience init(pool: Pool, timeToLive: Duration = .seconds(5), keyring: SecretKeyring = .plaintext) {
        self.init(timeToLive: timeToLive) { tenant in try await Self.load(tenant: tenant, pool: pool, keyring: keyring) }
    }

    /// The tenant's endpoints, or nil when no such tenant exists. An absent tenant is not
    /// cached: its event is parked, which is final, so it is always checked afresh (a
    /// tenant created a moment ago, then its parked events replayed, is found).
    public func endpoints(tenant: UUID) async throws -> [Endpoint]? {
        let now = ContinuousClock.now
        if let entry = cache.withLock({ $0[tenant] }), now - entry.fetchedAt < timeToLive {
            return entry.endpoints
        }
        guard let endpoints = try await load(tenant) else { return nil }
        cache.withLock { $0[tenant] = Entry(endpoints: endpoints, fetchedAt: now) }
        return endpoints
    }

    /// Drops the cached entry, e.g. after this process disabled one of the tenant's endpoints.
    public func invalidate(tenant: UUID) {
        _ = cache.withLock { $0.removeValue(forKey: tenant) }
    }

    private static func load(tenant: UUID, pool: Pool, keyring: SecretKeyring) async throws -> [Endpoint]? {
        let rows = try await pool.query(
            """
            SELECT t.id, e.id, e.url, e.event_types, e.filters::text, e.custom_headers::text, e.payload_format,
                   e.secret, e.previous_secret, e.previous_secret_expires_at, e.enabled, e.disabled_at,
                   e.signature::text, e.payload_fields::text, e.payload_filter::text, e.circuit_opened_at, e.rate_limit, e.ordered
            FROM tenants t LEFT JOIN endpoints e ON e.tenant_id = t.id
            WHERE t.id = \(tenant)
            """)
        guard !rows.isEmpty else { return nil }
        let now = Date()
        return try rows.compactMap { row -> Endpoint? in
            guard let id = try row.decode(UUID?.self, 1) else { return nil }
            // One endpoint whose secret does not open must not stop the tenant's others.
            var unavailable: String?
            let format = Endpoint.PayloadFormat(rawValue: try row.decode(String.self, 6))
            if format == nil { unavailable = "stored payload format unknown" }
            func open(_ stored: String) -> String {
                do {
                    return try keyring.open(stored, endpoint: id)
                } catch {
                    unavailable = error.description
                    return ""
                }
            }
            let previousExpiresAt = try row.decode(Date?.self, 9)
            // A rotated-out secret past its grace signs nothing: it is not opened.
            let previous = previousExpiresAt.map { $0 > now } == true ? try row.decode(String?.self, 8).map(open) : nil
            var endpoint = Endpoint(
                id: id, tenantID: tenant, url: try row.decode(String.self, 2),
                eventTypes: try row.decode([String].self, 3),
                filters: Self.filters(try row.decode(String.self, 4)),
                customHeaders: Self.headers(try row.decode(String.self, 5)),
                payloadFormat: format ?? .raw,
                secret: open(try row.decode(String.self, 7)),
                previousSecret: previous,
                previousSecretExpiresAt: previousExpiresAt,
                enabled: try row.decode(Bool.self, 10),
                disabledAt: try row.decode(Date?.self, 11))
            do {
                let settings = try StoredProfiles(
                    signature: try row.decode(String.self, 12), fields: try row.decode(String.self, 13), filter: try row.decode(String?.self, 14))
                endpoint.signature = settings.signature
                endpoint.envelopeFields = settings.fields
                endpoint.payloadFilter = settings.filter
            } catch {
                unavailable = unavailable ?? "stored settings unreadable: \(error)"
            }
            endpoint.unusable = unavailable
            endpoint.circuitOpenedAt = try row.decode(Date?.self, 15)
            endpoint.rateLimit = try row.decode(Int?.self, 16)
            endpoint.ordered = try row.decode(Bool.self, 17)
            return endpoint
        }
    }

    /// `{"workspace": ["w1", "w2"]}`; anything else in the column is ignored.
    static func filters(_ json: String) -> [String: Set<String>] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return [:] }
        var filters: [String: Set<String>] = [:]
        for (key, value) in object {
            if let values = value as? [String] { filters[key] = Set(values) }
        }
        return filters
    }

    static func headers(_ json: String) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String]) ?? [:]
    }
}
