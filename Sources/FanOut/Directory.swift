public import Cryptography
public import Foundation
import Logging
public import Postgres
import Synchronization

/// The endpoints of each tenant, cached so that PostgreSQL is not queried per message.
///
/// Without notifications an entry lives `timeToLive`: a change shows up within it. While a
/// `DirectoryListener` holds a lease of trust (PostgreSQL tells it of every change to a
/// tenant's endpoints, migration 0021), an entry lives `notifiedTimeToLive`, so a worker
/// serving thousands of tenants does not read each of them again every few seconds; a
/// change drops the tenant's entry a moment after its commit. An entry is trusted that
/// long only if nothing was invalidated while it was read (the read may predate the
/// change) and only while the lease holds: a listener that stalls or loses its session
/// lets every entry fall back to `timeToLive`.
public final class Directory: Sendable {
    private struct Entry {
        var endpoints: [Endpoint]
        var fetchedAt: ContinuousClock.Instant
        /// Read while notifications were trusted, with no invalidation during the read.
        var notified: Bool
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        /// Counts invalidations: a read that saw it change may have missed a change.
        var epoch = 0
        /// Until when the listener's last probe vouches for its notifications.
        var trustedUntil: ContinuousClock.Instant?

        func trusted(at now: ContinuousClock.Instant) -> Bool { trustedUntil.map { now < $0 } ?? false }
    }

    private let timeToLive: Duration
    private let notifiedTimeToLive: Duration
    private let capacity: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let load: @Sendable (UUID) async throws -> [Endpoint]?
    private let state = Mutex(State())

    /// The endpoints as `load` reads them (nil: no such tenant); a worker's unit tests
    /// give a fixed list, Herald reads PostgreSQL (`init(pool:timeToLive:keyring:)`).
    /// `capacity` bounds the tenants kept; `now` is the clock (a test's own).
    public init(
        timeToLive: Duration = .seconds(5), notifiedTimeToLive: Duration = .seconds(600), capacity: Int = 10_000,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, load: @escaping @Sendable (UUID) async throws -> [Endpoint]?
    ) {
        self.timeToLive = timeToLive
        self.notifiedTimeToLive = max(notifiedTimeToLive, timeToLive)
        self.capacity = max(capacity, 1)
        self.now = now
        self.load = load
    }

    /// Reads PostgreSQL; `keyring` opens the secrets stored sealed.
    public convenience init(
        pool: Pool, timeToLive: Duration = .seconds(5), notifiedTimeToLive: Duration = .seconds(600), capacity: Int = 10_000,
        keyring: SecretKeyring = .plaintext
    ) {
        self.init(timeToLive: timeToLive, notifiedTimeToLive: notifiedTimeToLive, capacity: capacity) { tenant in
            try await Self.load(tenant: tenant, pool: pool, keyring: keyring)
        }
    }

    /// The tenant's endpoints, or nil when no such tenant exists. An absent tenant is not
    /// cached: its event is parked, which is final, so it is always checked afresh (a
    /// tenant created a moment ago, then its parked events replayed, is found).
    public func endpoints(tenant: UUID) async throws -> [Endpoint]? {
        let asked = now()
        let (cached, epoch, trusted) = state.withLock { state -> ([Endpoint]?, Int, Bool) in
            let trusted = state.trusted(at: asked)
            guard let entry = state.entries[tenant] else { return (nil, state.epoch, trusted) }
            let lifetime = entry.notified && trusted ? notifiedTimeToLive : timeToLive
            return (asked - entry.fetchedAt < lifetime ? entry.endpoints : nil, state.epoch, trusted)
        }
        if let cached { return cached }
        guard let endpoints = try await load(tenant) else { return nil }
        guard timeToLive > .zero else { return endpoints }
        state.withLock { state in
            state.entries[tenant] = Entry(endpoints: endpoints, fetchedAt: asked, notified: trusted && state.epoch == epoch)
            if state.entries.count > capacity { evict(&state, at: asked) }
        }
        return endpoints
    }

    /// Drops the cached entry, e.g. after this process disabled one of the tenant's
    /// endpoints, or when PostgreSQL notified a change.
    public func invalidate(tenant: UUID) {
        state.withLock { state in
            state.epoch += 1
            state.entries[tenant] = nil
        }
    }

    /// Drops every entry: notifications may have been missed (a listener's session began
    /// or ended), or a table was emptied.
    public func invalidateAll() {
        state.withLock { state in
            state.epoch += 1
            state.entries.removeAll()
        }
    }

    /// The listener's probe came back: its notifications are current until `until`.
    public func trustNotifications(until: ContinuousClock.Instant) {
        state.withLock { $0.trustedUntil = until }
    }

    /// The listener lost its session: nothing notified is trusted, and what was read
    /// before may have missed a change.
    public func distrustNotifications() {
        state.withLock { state in
            state.trustedUntil = nil
            state.epoch += 1
            state.entries.removeAll()
        }
    }

    /// Tenants cached now (for tests and metrics).
    public var cachedTenants: Int { state.withLock { $0.entries.count } }

    /// Whether a listener's lease holds now.
    public var trustsNotifications: Bool {
        let now = now()
        return state.withLock { $0.trusted(at: now) }
    }

    /// Over capacity: the entries past their lifetime go, then the longest held, down to
    /// nine tenths, so that eviction runs once per tenth of the capacity.
    private func evict(_ state: inout State, at now: ContinuousClock.Instant) {
        let trusted = state.trusted(at: now)
        state.entries = state.entries.filter { now - $0.value.fetchedAt < ($0.value.notified && trusted ? notifiedTimeToLive : timeToLive) }
        let keep = capacity * 9 / 10
        guard state.entries.count > keep else { return }
        let oldest = state.entries.sorted { $0.value.fetchedAt < $1.value.fetchedAt }.prefix(state.entries.count - keep)
        for (tenant, _) in oldest { state.entries[tenant] = nil }
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
