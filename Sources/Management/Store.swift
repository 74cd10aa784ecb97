public import Cryptography
import Delivery
import Records
import HeraldSupport
public import FanOut
public import Foundation
public import Postgres

/// Fields of an endpoint as a tenant sets them; nil leaves a field as it is (update) or
/// at its default (create).
public struct EndpointInput: Sendable, Equatable {
    public var url: String?
    public var description: String?
    public var eventTypes: [String]?
    public var filters: [String: [String]]?
    public var headers: [String: String]?
    public var payloadFormat: String?
    public var payloadFields: EnvelopeFields?
    public var payloadFilter: FilterSetting?
    public var signature: SignatureProfile?
    /// Requests per second at most; 0 removes the limit.
    public var rateLimit: Int?
    /// One delivery at a time, in order (FIFO).
    public var ordered: Bool?
    public var enabled: Bool?
    public var dpaConfirmedBy: String?
    public var secret: String?

    public init(
        url: String? = nil, description: String? = nil, eventTypes: [String]? = nil, filters: [String: [String]]? = nil,
        headers: [String: String]? = nil, payloadFormat: String? = nil, payloadFields: EnvelopeFields? = nil, payloadFilter: FilterSetting? = nil,
        signature: SignatureProfile? = nil, rateLimit: Int? = nil, ordered: Bool? = nil, enabled: Bool? = nil, dpaConfirmedBy: String? = nil,
        secret: String? = nil
    ) {
        self.ordered = ordered
        self.url = url
        self.description = description
        self.eventTypes = eventTypes
        self.filters = filters
        self.headers = headers
        self.payloadFormat = payloadFormat
        self.payloadFields = payloadFields
        self.payloadFilter = payloadFilter
        self.signature = signature
        self.rateLimit = rateLimit
        self.enabled = enabled
        self.dpaConfirmedBy = dpaConfirmedBy
        self.secret = secret
    }
}

/// A payload filter to set, or the one there to remove.
public enum FilterSetting: Sendable, Equatable {
    case filter(PayloadFilter)
    case remove
}

/// Which tenant a live API key belongs to: the API's authentication.
public protocol TenantKeys: Sendable {
    func tenant(forKey key: String) async throws -> UUID?
}

/// The database side of the management API. Every tenant-scoped call takes the tenant
/// and filters by it, so a foreign id is indistinguishable from a missing one.
public struct Store: TenantKeys {
    let pool: Pool
    /// Seals endpoint secrets before they are stored and opens them for reveal.
    let keyring: SecretKeyring
    /// The deployment's header prefix (`X-Herald`), whose headers no tenant's may take.
    let brand: String

    public init(pool: Pool, keyring: SecretKeyring = .plaintext, headerPrefix: String = "X-Herald") {
        self.pool = pool
        self.keyring = keyring
        brand = headerPrefix
    }

    // MARK: Tenants and keys

    public func createTenant(name: String) async throws -> TenantView {
        let row = try await pool.query("INSERT INTO tenants (name) VALUES (\(name)) RETURNING id, name, created_at")[0]
        return TenantView(id: try row.id(0), name: try row.decode(String.self, 1), createdAt: try row.decode(Date.self, 2))
    }

    public func tenants() async throws -> [TenantView] {
        try await pool.query("SELECT id, name, created_at FROM tenants ORDER BY created_at, id").map {
            TenantView(id: try $0.id(0), name: try $0.decode(String.self, 1), createdAt: try $0.decode(Date.self, 2))
        }
    }

    /// Every tenant with its endpoints counted, for the operator console.
    public func tenantOverview() async throws -> [TenantOverview] {
        try await pool.query(
            """
            SELECT t.id, t.name, t.created_at, count(e.id), count(e.id) FILTER (WHERE e.enabled),
                   count(e.id) FILTER (WHERE NOT e.enabled AND e.disabled_at IS NOT NULL)
            FROM tenants t LEFT JOIN endpoints e ON e.tenant_id = t.id
            GROUP BY t.id ORDER BY t.created_at, t.id
            """
        ).map {
            TenantOverview(
                tenant: TenantView(id: try $0.id(0), name: try $0.decode(String.self, 1), createdAt: try $0.decode(Date.self, 2)),
                endpoints: try $0.decode(Int.self, 3), enabled: try $0.decode(Int.self, 4), disabled: try $0.decode(Int.self, 5))
        }
    }

    /// Enabled endpoints whose circuit a worker opened, across tenants, most recent first.
    public func openCircuits(limit: Int) async throws -> [(tenant: String, endpoint: EndpointView)] {
        try await pool.query(
            """
            SELECT (SELECT name FROM tenants WHERE tenants.id = endpoints.tenant_id), \(Self.endpointColumns) FROM endpoints
            WHERE enabled AND circuit_opened_at IS NOT NULL
            ORDER BY circuit_opened_at DESC LIMIT \(limit)
            """
        ).map { (try $0.decode(String.self, 0), try Self.endpoint($0, offset: 1)) }
    }

    /// Endpoints that were active and are disabled now (by their tenant or automatically),
    /// across tenants, most recently disabled first.
    public func disabledEndpoints(limit: Int) async throws -> [(tenant: String, endpoint: EndpointView)] {
        try await pool.query(
            """
            SELECT (SELECT name FROM tenants WHERE tenants.id = endpoints.tenant_id), \(Self.endpointColumns) FROM endpoints
            WHERE NOT enabled AND disabled_at IS NOT NULL
            ORDER BY disabled_at DESC LIMIT \(limit)
            """
        ).map { (try $0.decode(String.self, 0), try Self.endpoint($0, offset: 1)) }
    }

    public func tenantExists(_ tenant: UUID) async throws -> Bool {
        try await !pool.query("SELECT 1 FROM tenants WHERE id = \(tenant)").isEmpty
    }

    public func createKey(tenant: UUID, name: String) async throws -> KeyView {
        let key = APIKey.generate()
        let rows = try await pool.query(
            """
            INSERT INTO api_keys (tenant_id, name, key_hash)
            SELECT id, \(name), \(APIKey.hash(key)) FROM tenants WHERE id = \(tenant)
            RETURNING id, created_at
            """)
        guard let row = rows.first else { throw ManagementError(.notFound, "no such tenant") }
        return KeyView(id: try row.id(0), tenantId: tenant.lowercasedText, name: name, createdAt: try row.decode(Date.self, 1), revokedAt: nil, key: key)
    }

    /// A tenant's keys, newest first, revoked ones included; never a key itself (only its
    /// hash is stored). `ManagementError.notFound` for an unknown tenant.
    public func keys(tenant: UUID) async throws -> [KeyView] {
        guard try await tenantExists(tenant) else { throw ManagementError(.notFound, "no such tenant") }
        return try await pool.query(
            "SELECT id, name, created_at, revoked_at FROM api_keys WHERE tenant_id = \(tenant) ORDER BY created_at DESC, id DESC"
        ).map {
            KeyView(
                id: try $0.id(0), tenantId: tenant.lowercasedText, name: try $0.decode(String.self, 1), createdAt: try $0.decode(Date.self, 2),
                revokedAt: try $0.decode(Date?.self, 3), key: nil)
        }
    }

    /// Revokes a key; `tenant` limits it to that tenant's keys (nil: the operator).
    public func revokeKey(_ id: UUID, tenant: UUID?) async throws {
        let rows = try await pool.query(
            """
            UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
            WHERE id = \(id) AND (\(tenant)::uuid IS NULL OR tenant_id = \(tenant))
            RETURNING 1
            """)
        if rows.isEmpty { throw ManagementError(.notFound, "no such key") }
    }

    /// The tenant a live key belongs to.
    public func tenant(forKey key: String) async throws -> UUID? {
        try await pool.query("SELECT tenant_id FROM api_keys WHERE key_hash = \(APIKey.hash(key)) AND revoked_at IS NULL")
            .first?.decode(UUID.self, 0)
    }

    // MARK: Endpoints

    /// With a space on each side, to sit between `RETURNING` / `SELECT` and what follows.
    static let endpointColumns = Query(
        stringLiteral: " id, url, description, event_types, filters::text, custom_headers::text, payload_format, enabled, "
            + "dpa_confirmed_at, dpa_confirmed_by, disabled_at, disabled_reason, consecutive_failures, created_at, updated_at, "
            + "signature::text, payload_fields::text, payload_filter::text, "
            + "CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END, circuit_opened_at, rate_limit, ordered ")

    /// Refuses settings that contradict one another: renamed keys without an envelope, a
    /// custom header the signature profile sends itself.
    func check(format: String, fields: EnvelopeFields, signature: SignatureProfile, headers: some Sequence<String>) throws {
        if format != Endpoint.PayloadFormat.envelope.rawValue && !fields.isDefault {
            throw ManagementError(.invalid, field: "payload_fields", "renames an envelope's keys; set payload_format to envelope, or leave payload_fields out")
        }
        for name in headers where signature.reserves(name, brand: brand) {
            throw ManagementError(
                .invalid, field: "headers", "'\(name.prefix(100))' is a header Herald sends itself with the \(signature.name) signature profile")
        }
    }

    /// Creates an endpoint; `limit` (0: none) is the most a tenant may have.
    public func createEndpoint(tenant: UUID, _ input: EndpointInput, limit: Int = 0) async throws -> EndpointView {
        guard let url = input.url, let types = input.eventTypes else {
            throw ManagementError(.invalid, field: input.url == nil ? "url" : "event_types", "is required")
        }
        if input.enabled == true && input.dpaConfirmedBy == nil {
            throw ManagementError(.invalid, field: "enabled", "an endpoint cannot be enabled before its DPA is confirmed (dpa_confirmed_by)")
        }
        let format = input.payloadFormat ?? Endpoint.PayloadFormat.raw.rawValue
        let fields = input.payloadFields ?? EnvelopeFields()
        let signature = input.signature ?? .herald
        try check(format: format, fields: fields, signature: signature, headers: (input.headers ?? [:]).keys)
        let filter: String? = if case .filter(let filter) = input.payloadFilter { filter.description } else { nil }
        let secret = input.secret ?? Signature.generateSecret()
        // The id is chosen here: the sealed secret is bound to it.
        let id = UUID()
        let rows = try await pool.query(
            """
            INSERT INTO endpoints (id, tenant_id, url, description, event_types, filters, custom_headers, payload_format, secret,
                                   enabled, dpa_confirmed_at, dpa_confirmed_by, signature, payload_fields, payload_filter, rate_limit,
                                   ordered)
            SELECT \(id), id, \(url), \(input.description ?? ""), \(types), \(JSONB(Self.json(input.filters ?? [:]))),
                   \(JSONB(Self.json(input.headers ?? [:]))), \(format), \(keyring.seal(secret, endpoint: id)),
                   \(input.enabled ?? false),
                   CASE WHEN \(input.dpaConfirmedBy)::text IS NULL THEN NULL ELSE now() END, \(input.dpaConfirmedBy),
                   \(JSONB(ConfigValue.text(signature.config))), \(JSONB(ConfigValue.text(fields.config))), \(filter.map(JSONB.init)),
                   \(input.rateLimit.flatMap { $0 == 0 ? nil : $0 }), \(input.ordered ?? false)
            FROM tenants t WHERE id = \(tenant)
              AND (\(limit) = 0 OR (SELECT count(*) FROM endpoints e WHERE e.tenant_id = t.id) < \(limit))
            RETURNING
            """ + Self.endpointColumns)
        guard let row = rows.first else {
            guard try await pool.query("SELECT 1 FROM tenants WHERE id = \(tenant)").isEmpty else {
                throw ManagementError(.conflict, "the tenant has \(limit) endpoints, the most allowed; delete one first")
            }
            throw ManagementError(.notFound, "no such tenant")
        }
        var view = try Self.endpoint(row)
        view.secret = secret
        return view
    }

    public func endpoints(tenant: UUID) async throws -> [EndpointView] {
        try await pool.query("SELECT " + Self.endpointColumns + " FROM endpoints WHERE tenant_id = \(tenant) ORDER BY created_at, id")
            .map { try Self.endpoint($0) }
    }

    public func endpoint(tenant: UUID, id: UUID) async throws -> EndpointView {
        guard let row = try await pool.query("SELECT " + Self.endpointColumns + " FROM endpoints WHERE tenant_id = \(tenant) AND id = \(id)").first
        else { throw ManagementError(.notFound, "no such endpoint") }
        return try Self.endpoint(row)
    }

    public func updateEndpoint(tenant: UUID, id: UUID, _ input: EndpointInput) async throws -> EndpointView {
        let current = try await endpoint(tenant: tenant, id: id)
        let enabling = input.enabled == true && !current.enabled
        if enabling && current.dpaConfirmedAt == nil && input.dpaConfirmedBy == nil {
            throw ManagementError(.invalid, field: "enabled", "an endpoint cannot be enabled before its DPA is confirmed (dpa_confirmed_by)")
        }
        let filters = input.filters.map { JSONB(Self.json($0)) }
        var newHeaders = input.headers
        if let given = newHeaders, given.values.contains(EndpointView.redactedValue) {
            // A view's "[redacted]" sent back keeps the value it stands for.
            let stored = try await pool.query("SELECT custom_headers::text FROM endpoints WHERE tenant_id = \(tenant) AND id = \(id)")
                .first.map { Self.headers(try $0.decode(String.self, 0)) } ?? [:]
            for (name, value) in given where value == EndpointView.redactedValue {
                // Header names are case-insensitive; a placeholder with nothing behind it is refused.
                guard let kept = stored.first(where: { $0.key.caseInsensitiveCompare(name) == .orderedSame })?.value else {
                    throw ManagementError(
                        .invalid, field: "headers", "'\(name.prefix(100))' is \(EndpointView.redactedValue), but the endpoint has no such header to keep")
                }
                newHeaders?[name] = kept
            }
        }
        let headers = newHeaders.map { JSONB(Self.json($0)) }
        let format = input.payloadFormat ?? current.payloadFormat
        // Renamed keys stay only while the format is an envelope.
        let fields = input.payloadFields ?? (format == Endpoint.PayloadFormat.envelope.rawValue ? current.payloadFields : nil) ?? EnvelopeFields()
        let signature = input.signature ?? current.signature
        try check(format: format, fields: fields, signature: signature, headers: newHeaders.map { Array($0.keys) } ?? Array(current.headers.keys))
        let filter: String?? =
            switch input.payloadFilter {
            case .filter(let filter): .some(filter.description)
            case .remove: .some(nil)
            case nil: nil
            }
        let disabling = input.enabled == false && current.enabled
        let rows = try await pool.query(
            """
            UPDATE endpoints SET
                url = COALESCE(\(input.url), url),
                description = COALESCE(\(input.description), description),
                event_types = COALESCE(\(input.eventTypes), event_types),
                filters = COALESCE(\(filters), filters),
                custom_headers = COALESCE(\(headers), custom_headers),
                payload_format = \(format),
                payload_fields = \(JSONB(ConfigValue.text(fields.config))),
                signature = \(JSONB(ConfigValue.text(signature.config))),
                payload_filter = CASE WHEN \(filter != nil) THEN \(filter.flatMap { $0 }.map(JSONB.init)) ELSE payload_filter END,
                ordered = COALESCE(\(input.ordered), ordered),
                rate_limit = CASE WHEN \(input.rateLimit != nil) THEN \(input.rateLimit.flatMap { $0 == 0 ? nil : $0 }) ELSE rate_limit END,
                dpa_confirmed_at = CASE WHEN \(input.dpaConfirmedBy)::text IS NULL THEN dpa_confirmed_at ELSE now() END,
                dpa_confirmed_by = COALESCE(\(input.dpaConfirmedBy), dpa_confirmed_by),
                enabled = COALESCE(\(input.enabled), enabled),
                disabled_at = CASE WHEN \(disabling) THEN now() WHEN \(enabling) THEN NULL ELSE disabled_at END,
                disabled_reason = CASE WHEN \(disabling) THEN 'disabled by the tenant' WHEN \(enabling) THEN NULL ELSE disabled_reason END,
                -- Enabling starts the failure count anew, as activation does: otherwise one
                -- more failure would disable it again at once.
                consecutive_failures = CASE WHEN \(enabling) THEN 0 ELSE consecutive_failures END,
                first_failure_at = CASE WHEN \(enabling) THEN NULL ELSE first_failure_at END,
                updated_at = now()
            WHERE tenant_id = \(tenant) AND id = \(id)
            RETURNING
            """ + Self.endpointColumns)
        guard let row = rows.first else { throw ManagementError(.notFound, "no such endpoint") }
        return try Self.endpoint(row)
    }

    public func deleteEndpoint(tenant: UUID, id: UUID) async throws {
        // No foreign key takes its deliveries and their attempts (migrations 0019, 0020). The
        // delete waits for the store batches that locked the endpoint; the second statement,
        // with a snapshot taken after them (read committed, whatever the server's default),
        // deletes what they stored, and batches after it find no endpoint to store for.
        try await pool.transaction { tx in
            try await tx.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            if try await tx.query("DELETE FROM endpoints WHERE tenant_id = \(tenant) AND id = \(id) RETURNING 1").isEmpty {
                throw ManagementError(.notFound, "no such endpoint")
            }
            try await PostgresRecords.deleteDeliveries(ofEndpoint: id, on: tx)
        }
    }

    public func secret(tenant: UUID, id: UUID) async throws -> SecretView {
        guard let row = try await pool.query(
            """
            SELECT secret, CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
            FROM endpoints WHERE tenant_id = \(tenant) AND id = \(id)
            """).first
        else { throw ManagementError(.notFound, "no such endpoint") }
        return SecretView(
            secret: try keyring.open(try row.decode(String.self, 0), endpoint: id), previousSecretExpiresAt: try row.decode(Date?.self, 1))
    }

    /// A new secret. The one the receiver has keeps signing for `grace`: as a second
    /// entry where a header carries several (`webhook-signature`, `Stripe-Signature`), and
    /// alone where it carries one, until the rotation is confirmed (`confirmSecret`). A
    /// rotation while one is pending replaces the pending secret and keeps the previous one,
    /// which is still what single-signature receivers verify.
    public func rotateSecret(tenant: UUID, id: UUID, grace: Duration) async throws -> SecretView {
        let secret = Signature.generateSecret()
        let graceSeconds = Double(grace.components.seconds)
        guard let row = try await pool.query(
            """
            UPDATE endpoints SET
                previous_secret = CASE WHEN previous_secret_expires_at > now() THEN previous_secret ELSE secret END,
                secret = \(keyring.seal(secret, endpoint: id)),
                previous_secret_expires_at = now() + make_interval(secs => \(graceSeconds)), updated_at = now()
            WHERE tenant_id = \(tenant) AND id = \(id)
            RETURNING previous_secret_expires_at
            """).first
        else { throw ManagementError(.notFound, "no such endpoint") }
        return SecretView(secret: secret, previousSecretExpiresAt: try row.decode(Date.self, 0))
    }

    /// Ends a pending rotation: the receiver has the new secret, so the previous one signs
    /// nothing from now on (within the workers' directory refresh). The end is kept: a
    /// refusal shortly after is taken for a receiver still switching (`Endpoint.rotationSettles`).
    public func confirmSecret(tenant: UUID, id: UUID) async throws -> EndpointView {
        let rows = try await pool.query(
            """
            UPDATE endpoints SET previous_secret = NULL, previous_secret_expires_at = now(), updated_at = now()
            WHERE tenant_id = \(tenant) AND id = \(id) AND previous_secret_expires_at > now()
            RETURNING
            """ + Self.endpointColumns)
        guard let row = rows.first else {
            _ = try await endpoint(tenant: tenant, id: id)
            throw ManagementError(.conflict, "no rotation of this endpoint's secret is pending")
        }
        return try Self.endpoint(row)
    }

    /// Re-enables an endpoint (after an automatic disable), resetting its failure count.
    /// Its skipped deliveries are the delivery log's to reopen (`DeliveryLog.reopenSkipped`).
    public func activate(tenant: UUID, id: UUID) async throws -> EndpointView {
        try await pool.transaction { tx in
            guard let row = try await tx.query("SELECT dpa_confirmed_at IS NOT NULL FROM endpoints WHERE tenant_id = \(tenant) AND id = \(id) FOR UPDATE").first
            else { throw ManagementError(.notFound, "no such endpoint") }
            guard try row.decode(Bool.self, 0) else {
                throw ManagementError(.invalid, field: "dpa_confirmed_by", "confirm the DPA before activating the endpoint")
            }
            let updated = try await tx.query(
                """
                UPDATE endpoints SET enabled = true, disabled_at = NULL, disabled_reason = NULL, consecutive_failures = 0,
                       first_failure_at = NULL, updated_at = now()
                WHERE id = \(id)
                RETURNING
                """ + Self.endpointColumns)[0]
            return try Self.endpoint(updated)
        }
    }

    // MARK: Secrets at rest

    /// Seals every endpoint secret that is not sealed with the current key (plaintext rows,
    /// rows of a retired key), one row per statement; returns how many were sealed again.
    /// After it, the retired keys may be dropped.
    public func resealSecrets() async throws -> Int {
        guard keyring.current != nil else { return 0 }
        let rows = try await pool.query("SELECT id, secret, previous_secret FROM endpoints ORDER BY id")
        var count = 0
        for row in rows {
            let id = try row.decode(UUID.self, 0)
            let stored = try row.decode(String.self, 1)
            let previous = try row.decode(String?.self, 2)
            guard keyring.needsResealing(stored) || previous.map(keyring.needsResealing) == true else { continue }
            let secret = keyring.seal(try keyring.open(stored, endpoint: id), endpoint: id)
            let previousSecret = try previous.map { (value: String) throws(SecretKeyError) -> String in
                keyring.seal(try keyring.open(value, endpoint: id), endpoint: id)
            }
            // Only if the row still holds what was read: a rotation in between wins.
            count += try await pool.query(
                """
                UPDATE endpoints SET secret = \(secret), previous_secret = \(previousSecret)
                WHERE id = \(id) AND secret = \(stored) AND previous_secret IS NOT DISTINCT FROM \(previous)
                """).affectedRows
        }
        return count
    }

    // MARK: Rows

    /// An endpoint from `endpointColumns`, which start at column `offset`.
    static func endpoint(_ row: Row, offset o: Int = 0) throws -> EndpointView {
        let profiles: StoredProfiles
        do {
            profiles = try StoredProfiles(
                signature: try row.decode(String.self, o + 15), fields: try row.decode(String.self, o + 16),
                filter: try row.decode(String?.self, o + 17))
        } catch {
            throw ManagementError(.unavailable, "the endpoint's stored settings cannot be read (\(error))")
        }
        return EndpointView(
            id: try row.id(o + 0), url: try row.decode(String.self, o + 1), description: try row.decode(String.self, o + 2),
            eventTypes: try row.decode([String].self, o + 3),
            filters: (try? JSONSerialization.jsonObject(with: Data(try row.decode(String.self, o + 4).utf8)) as? [String: [String]]) ?? [:],
            headers: EndpointView.redacting(Self.headers(try row.decode(String.self, o + 5))),
            payloadFormat: try row.decode(String.self, o + 6), payloadFields: profiles.fields.isDefault ? nil : profiles.fields,
            payloadFilter: profiles.filter, signature: profiles.signature, enabled: try row.decode(Bool.self, o + 7),
            dpaConfirmedAt: try row.decode(Date?.self, o + 8), dpaConfirmedBy: try row.decode(String?.self, o + 9),
            disabledAt: try row.decode(Date?.self, o + 10), disabledReason: try row.decode(String?.self, o + 11),
            consecutiveFailures: try row.decode(Int.self, o + 12), createdAt: try row.decode(Date.self, o + 13),
            updatedAt: try row.decode(Date.self, o + 14), secret: nil, previousSecretExpiresAt: try row.decode(Date?.self, o + 18),
            circuitOpenedAt: try row.decode(Date?.self, o + 19), rateLimit: try row.decode(Int?.self, o + 20),
            ordered: try row.decode(Bool.self, o + 21))
    }

    static func headers(_ json: String) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String]) ?? [:]
    }

    static func json(_ value: Any) -> String {
        (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
