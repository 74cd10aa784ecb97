public import Cryptography
public import Foundation
public import HeraldSupport
import Logging
public import Postgres
import Synchronization

/// The endpoints of each tenant, cached so that PostgreSQL is not queried per message.
///
/// An entry lives `timeToLive`, or `notifiedTimeToLive` while a `ChangeListener`'s lease
/// vouches that every change is being notified (`invalidate`) and nothing changed the
/// tenant while it was read. Tenants missing from the cache are read together, up to
/// `tenantsPerRead` in one statement, each once however many ask (docs/ARCHITECTURE.md).
public final class Directory: NotifiedCache {
    /// Reads the endpoints of each tenant asked; a tenant missing from the answer does not
    /// exist, and one whose endpoints could not be read fails alone.
    public typealias Read = @Sendable ([UUID]) async throws -> [UUID: Result<[Endpoint], any Error>]
    public static let tenantsPerRead = 100

    private struct Entry {
        var endpoints: [Endpoint]
        var fetchedAt: ContinuousClock.Instant
        /// Read while notifications were trusted, with no invalidation during the read.
        var notified: Bool
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        /// Counts `invalidateAll` and lost sessions: a read that saw it change may have missed a change.
        var epoch = 0
        /// Until when the listener's last probe vouches for its notifications.
        var trustedUntil: ContinuousClock.Instant?
        /// Those waiting for a tenant's next read.
        var queued: [UUID: [OneShot<[Endpoint]?>]] = [:]
        /// The next read's tenants, in the order asked.
        var queue: [UUID] = []
        /// Those waiting for the read in flight, by tenant.
        var reading: [UUID: [OneShot<[Endpoint]?>]] = [:]
        /// Tenants of the read in flight invalidated since it began: what it returns for
        /// them may predate the change, so it answers those who asked before and is not kept.
        var changedWhileRead: Set<UUID> = []
        var readInFlight = false

        func trusted(at now: ContinuousClock.Instant) -> Bool { trustedUntil.map { now < $0 } ?? false }

        /// The next read's tenants; their waiters move to `reading`.
        mutating func takeQueue() -> [UUID] {
            let taken = Array(queue.prefix(Directory.tenantsPerRead))
            queue.removeFirst(taken.count)
            for tenant in taken { reading[tenant] = queued.removeValue(forKey: tenant) }
            return taken
        }

        mutating func invalidate(_ tenant: UUID) {
            entries[tenant] = nil
            if reading[tenant] != nil { changedWhileRead.insert(tenant) }
        }

        mutating func invalidateAll() {
            epoch += 1
            entries.removeAll()
            changedWhileRead.formUnion(reading.keys)
        }
    }

    private let timeToLive: Duration
    private let notifiedTimeToLive: Duration
    private let capacity: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let read: Read
    private let state = Mutex(State())

    /// The endpoints as `read` reads them; Herald reads PostgreSQL
    /// (`init(pool:timeToLive:notifiedTimeToLive:capacity:keyring:)`). `capacity` bounds the
    /// tenants kept; `now` is the clock (a test's own).
    public init(
        timeToLive: Duration = .seconds(5), notifiedTimeToLive: Duration = .seconds(600), capacity: Int = 10_000,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, read: @escaping Read
    ) {
        self.timeToLive = timeToLive
        self.notifiedTimeToLive = max(notifiedTimeToLive, timeToLive)
        self.capacity = max(capacity, 1)
        self.now = now
        self.read = read
    }

    /// One tenant at a time as `load` reads it (nil: no such tenant): a worker's unit tests
    /// give a fixed list.
    public convenience init(
        timeToLive: Duration = .seconds(5), notifiedTimeToLive: Duration = .seconds(600), capacity: Int = 10_000,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, load: @escaping @Sendable (UUID) async throws -> [Endpoint]?
    ) {
        self.init(timeToLive: timeToLive, notifiedTimeToLive: notifiedTimeToLive, capacity: capacity, now: now) { tenants in
            var found: [UUID: Result<[Endpoint], any Error>] = [:]
            for tenant in tenants {
                do {
                    if let endpoints = try await load(tenant) { found[tenant] = .success(endpoints) }
                } catch {
                    found[tenant] = .failure(error)
                }
            }
            return found
        }
    }

    /// Reads PostgreSQL; `keyring` opens the secrets stored sealed.
    public convenience init(
        pool: Pool, timeToLive: Duration = .seconds(5), notifiedTimeToLive: Duration = .seconds(600), capacity: Int = 10_000,
        keyring: SecretKeyring = .plaintext
    ) {
        self.init(timeToLive: timeToLive, notifiedTimeToLive: notifiedTimeToLive, capacity: capacity) { tenants in
            try await Self.read(tenants: tenants, pool: pool, keyring: keyring)
        }
    }

    /// The tenant's endpoints, or nil when no such tenant exists. An absent tenant is not
    /// cached: its event is parked, which is final, so it is always checked afresh (a
    /// tenant created a moment ago, then its parked events replayed, is found). A cancelled
    /// caller stops waiting at once; the read goes on for the others.
    public func endpoints(tenant: UUID) async throws -> [Endpoint]? {
        let asked = now()
        let cached = state.withLock { state -> [Endpoint]? in
            guard let entry = state.entries[tenant] else { return nil }
            let lifetime = entry.notified && state.trusted(at: asked) ? notifiedTimeToLive : timeToLive
            return asked - entry.fetchedAt < lifetime ? entry.endpoints : nil
        }
        if let cached { return cached }
        let answer = OneShot<[Endpoint]?>()
        return try await answer.wait {
            let first: [UUID]? = state.withLock { state in
                // The read in flight answers only if nothing changed the tenant since it began.
                if state.reading[tenant] != nil, !state.changedWhileRead.contains(tenant) {
                    state.reading[tenant]?.append(answer)
                    return nil
                }
                if state.queued[tenant] != nil {
                    state.queued[tenant]?.append(answer)
                    return nil
                }
                state.queued[tenant] = [answer]
                state.queue.append(tenant)
                guard !state.readInFlight else { return nil }
                state.readInFlight = true
                return state.takeQueue()
            }
            // The reader outlives no one: it ends as soon as no tenant waits.
            if let first { Task { await readAll(first) } }
        }
    }

    /// Reads `first`, then whatever was asked for meanwhile, until nothing waits.
    private func readAll(_ first: [UUID]) async {
        var tenants = first
        while true {
            let started = now()
            let (epoch, trusted) = state.withLock { ($0.epoch, $0.trusted(at: started)) }
            let outcome: Result<[UUID: Result<[Endpoint], any Error>], any Error>
            do {
                outcome = .success(try await read(tenants))
            } catch {
                outcome = .failure(error)
            }
            var answers: [(OneShot<[Endpoint]?>, Result<[Endpoint]?, any Error>)] = []
            let next: [UUID]? = state.withLock { state in
                let notified = trusted && state.epoch == epoch
                for tenant in tenants {
                    let changed = state.changedWhileRead.contains(tenant)
                    let answer: Result<[Endpoint]?, any Error>
                    switch outcome.map({ $0[tenant] }) {
                    case .failure(let error), .success(.failure(let error)?): answer = .failure(error)
                    case .success(nil): answer = .success(nil)
                    case .success(.success(let endpoints)?):
                        answer = .success(endpoints)
                        if timeToLive > .zero, !changed {
                            state.entries[tenant] = Entry(endpoints: endpoints, fetchedAt: started, notified: notified)
                        }
                    }
                    for waiting in state.reading.removeValue(forKey: tenant) ?? [] { answers.append((waiting, answer)) }
                }
                state.changedWhileRead.removeAll()
                if state.entries.count > capacity { evict(&state, at: started) }
                guard !state.queue.isEmpty else {
                    state.readInFlight = false
                    return nil
                }
                return state.takeQueue()
            }
            for (waiting, answer) in answers {
                switch answer {
                case .success(let endpoints): _ = waiting.resume(returning: endpoints)
                case .failure(let error): _ = waiting.resume(throwing: error)
                }
            }
            guard let next else { return }
            tenants = next
        }
    }

    /// Drops the cached entry, e.g. after this process disabled one of the tenant's
    /// endpoints, or when PostgreSQL notified a change; a read of it in flight is not kept.
    public func invalidate(tenant: UUID) {
        state.withLock { $0.invalidate(tenant) }
    }

    /// Drops every entry: a table was emptied.
    public func invalidateAll() {
        state.withLock { $0.invalidateAll() }
    }

    /// A notification on `herald_directory`: the tenant it names, or every tenant.
    public func notified(_ payload: String) {
        switch DirectoryChange(payload) {
        case .tenant(let tenant): invalidate(tenant: tenant)
        case .all: invalidateAll()
        case .unknown: break
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
            state.invalidateAll()
        }
    }

    /// Tenants cached now.
    public var cachedTenants: Int { state.withLock { $0.entries.count } }

    /// Askers waiting for the next read, and for the read in flight.
    var waiting: (queued: Int, onTheRead: Int) {
        state.withLock { state in (state.queued.values.reduce(0) { $0 + $1.count }, state.reading.values.reduce(0) { $0 + $1.count }) }
    }

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

    private static func read(tenants: [UUID], pool: Pool, keyring: SecretKeyring) async throws -> [UUID: Result<[Endpoint], any Error>] {
        let statement: Query = """
            SELECT t.id, e.id, e.url, e.event_types, e.filters::text, e.custom_headers::text, e.payload_format,
                   e.secret, e.previous_secret, e.previous_secret_expires_at, e.enabled, e.disabled_at,
                   e.signature::text, e.payload_fields::text, e.payload_filter::text, e.circuit_opened_at, e.rate_limit, e.ordered
            FROM tenants t LEFT JOIN endpoints e ON e.tenant_id = t.id
            WHERE t.id = ANY(\(tenants.map(\.lowercasedText))::uuid[])
            """
        let rows = try await pool.query(statement.prepared())
        let now = Date()
        var found: [UUID: Result<[Endpoint], any Error>] = [:]
        for row in rows {
            let tenant = try row.decode(UUID.self, 0)
            // A tenant with a row that cannot be read fails alone; a tenant without endpoints is one row of NULLs.
            guard case .success(var endpoints) = found[tenant] ?? .success([]) else { continue }
            do {
                if let endpoint = try endpoint(row, tenant: tenant, keyring: keyring, now: now) { endpoints.append(endpoint) }
                found[tenant] = .success(endpoints)
            } catch {
                found[tenant] = .failure(error)
            }
        }
        return found
    }

    /// The endpoint in `row`, nil for the row of a tenant without endpoints.
    private static func endpoint(_ row: Row, tenant: UUID, keyring: SecretKeyring, now: Date) throws -> Endpoint? {
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
