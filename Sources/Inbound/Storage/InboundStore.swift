package import Cryptography
package import Foundation
import HeraldSupport
import HeraldEvents
package import Postgres
package import Records

/// Why a call on sources or inbound webhooks could not be done.
package struct InboundError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable { case notFound, conflict }
    package var kind: Kind
    package var message: String
    package var description: String { message }

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// What a stored request became, for the sender's answer.
package struct Receipt: Sendable, Equatable {
    package var id: UUID
    package var status: InboundStatus
    package var duplicateOf: UUID?
    package var eventID: String?
}

/// The filter of the inbound log.
package struct InboundFilter: Sendable {
    package var source: UUID?
    package var status: InboundStatus?
    package var since: Date?
    package var until: Date?
    package var cursor: Cursor?
    package var limit = 50

    package init() {}
}

/// The one owner of `inbound_sources`, `inbound_webhooks` and `inbound_dedup`. Every
/// tenant-scoped call filters by the tenant, so a foreign id is a missing one.
package struct InboundStore: Sendable {
    let pool: Pool
    /// Seals the URL tokens and the secrets at rest.
    let keyring: SecretKeyring
    /// The base of the URLs senders post to.
    let publicURL: String
    /// An event's largest `data`: a mapping that makes more is a parse error.
    let maxDataBytes: Int
    /// Requests that arrive while a batch is written wait and go into the next one: each
    /// statement and commit serves all of them (`write`).
    let arrivals: Batcher<Arrival, Result<Receipt, any Error>>
    /// Sources looked up by their token, kept while PostgreSQL tells of every change; nil:
    /// every request looks its source up.
    let sources: SourceCache?

    package init(pool: Pool, keyring: SecretKeyring, publicURL: String, maxDataBytes: Int, sources: SourceCache? = nil) {
        self.pool = pool
        self.keyring = keyring
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.maxDataBytes = maxDataBytes
        self.sources = sources
        arrivals = Batcher(maxBatch: 64, maxFlushes: 1, maxWeight: 4 << 20, weight: \.weight) { await Self.write($0, on: pool) }
    }

    // MARK: Sources

    static let sourceColumns = columns(of: "inbound_sources")

    package func createSource(tenant: UUID, _ input: SourceInput) async throws -> SourceView {
        let id = UUID()
        let verification = input.verification ?? .none
        let secret = verification.needsSecret ? (input.secret ?? Self.generateSecret(for: verification)) : ""
        let token = Self.generateToken()
        let rows = try await pool.query(
            """
            INSERT INTO inbound_sources (id, tenant_id, name, service, token_hash, token, verification, secret, mapping, dedup,
                                         dedup_window_seconds, max_body_bytes, retention)
            SELECT \(id), t.id, \(input.name ?? ""), \(input.service ?? ""), \(Self.hash(token)), \(keyring.seal(token, context: Self.tokenContext(id))),
                   \(JSONB(ConfigValue.text(verification.config))), \(secret.isEmpty ? "" : keyring.seal(secret, context: Self.secretContext(id))),
                   \(Self.mappingText(input.mapping)), \(Self.dedupText(input.deliveryID)),
                   \(input.dedupWindow ?? 86_400), \(input.maxBodyBytes ?? 1_048_576), \(JSONB(Self.retentionText(input.retention ?? [:])))
            FROM tenants t WHERE t.id = \(tenant)
            RETURNING \(Self.sourceColumns)
            """)
        guard let row = rows.first else { throw InboundError(.notFound, "no such tenant") }
        var view = try sourceView(row)
        if !secret.isEmpty { view.secret = secret }
        return view
    }

    package func sources(tenant: UUID) async throws -> [SourceView] {
        try await pool.query("SELECT \(Self.sourceColumns) FROM inbound_sources WHERE tenant_id = \(tenant) ORDER BY created_at, id")
            .map(sourceView)
    }

    package func source(tenant: UUID, id: UUID) async throws -> SourceView {
        guard let row = try await pool.query("SELECT \(Self.sourceColumns) FROM inbound_sources WHERE tenant_id = \(tenant) AND id = \(id)").first
        else { throw InboundError(.notFound, "no such source") }
        return try sourceView(row)
    }

    package func updateSource(tenant: UUID, id: UUID, _ input: SourceInput) async throws -> SourceView {
        defer { sources?.invalidate(source: id) }
        return try await pool.transaction { tx in
            guard let row = try await tx.query("SELECT \(Self.sourceColumns) FROM inbound_sources WHERE tenant_id = \(tenant) AND id = \(id) FOR UPDATE").first
            else { throw InboundError(.notFound, "no such source") }
            let current = try intakeSource(row)
            let verification = input.verification ?? current.verification
            var secret = input.secret
            var generated = false
            let stored = try row.decode(String.self, 7)
            if verification.needsSecret && secret == nil && stored.isEmpty {
                secret = Self.generateSecret(for: verification)
                generated = true
            }
            let sealed = secret.map { keyring.seal($0, context: Self.secretContext(id)) }
            let updated = try await tx.query(
                """
                UPDATE inbound_sources SET
                    name = coalesce(\(input.name), name), service = coalesce(\(input.service), service),
                    verification = \(JSONB(ConfigValue.text(verification.config))), secret = coalesce(\(sealed), secret),
                    mapping = CASE WHEN \(input.mapping != nil) THEN \(Self.mappingText(input.mapping)) ELSE mapping END,
                    dedup = CASE WHEN \(input.deliveryID != nil) THEN \(Self.dedupText(input.deliveryID)) ELSE dedup END,
                    dedup_window_seconds = coalesce(\(input.dedupWindow), dedup_window_seconds),
                    max_body_bytes = coalesce(\(input.maxBodyBytes), max_body_bytes),
                    retention = coalesce(\(input.retention.map { JSONB(Self.retentionText($0)) }), retention),
                    updated_at = now()
                WHERE id = \(id)
                RETURNING \(Self.sourceColumns)
                """)
            var view = try sourceView(updated[0])
            if generated || input.secret != nil { view.secret = secret }
            return view
        }
    }

    package func deleteSource(tenant: UUID, id: UUID) async throws {
        defer { sources?.invalidate(source: id) }
        let deleted = try await pool.query("DELETE FROM inbound_sources WHERE tenant_id = \(tenant) AND id = \(id)").affectedRows
        if deleted == 0 { throw InboundError(.notFound, "no such source") }
    }

    /// A new URL; the old one keeps working for `grace`, then answers 404.
    package func rotateToken(tenant: UUID, id: UUID, grace: Duration) async throws -> SourceView {
        defer { sources?.invalidate(source: id) }
        let token = Self.generateToken()
        let rows = try await pool.query(
            """
            UPDATE inbound_sources SET previous_token_hash = token_hash, token_hash = \(Self.hash(token)),
                   token = \(keyring.seal(token, context: Self.tokenContext(id))),
                   previous_token_expires_at = now() + make_interval(secs => \(Int(grace.components.seconds))), updated_at = now()
            WHERE tenant_id = \(tenant) AND id = \(id)
            RETURNING \(Self.sourceColumns)
            """)
        guard let row = rows.first else { throw InboundError(.notFound, "no such source") }
        return try sourceView(row)
    }

    /// The verification secret, for the tenant to paste into the sending service.
    package func secret(tenant: UUID, id: UUID) async throws -> String {
        guard let row = try await pool.query("SELECT secret FROM inbound_sources WHERE tenant_id = \(tenant) AND id = \(id)").first else {
            throw InboundError(.notFound, "no such source")
        }
        let stored = try row.decode(String.self, 0)
        return stored.isEmpty ? "" : try keyring.open(stored, context: Self.secretContext(id))
    }

    /// Webhooks received per source since `since`, for the portal's list.
    package func receivedCounts(tenant: UUID, since: Date) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await pool.query(
            "SELECT source_id, count(*) FROM inbound_webhooks WHERE tenant_id = \(tenant) AND received_at >= \(since) GROUP BY source_id")
        {
            counts[try row.id(0)] = try row.decode(Int.self, 1)
        }
        return counts
    }

    /// Seals every source's token and secret that is not sealed with the current key
    /// (plaintext rows, rows of a retired key); returns how many sources were sealed again.
    package func resealSecrets() async throws -> Int {
        guard keyring.current != nil else { return 0 }
        var count = 0
        for row in try await pool.query("SELECT id, token, secret FROM inbound_sources ORDER BY id") {
            let id = try row.decode(UUID.self, 0)
            let token = try row.decode(String.self, 1)
            let secret = try row.decode(String.self, 2)
            guard keyring.needsResealing(token) || (!secret.isEmpty && keyring.needsResealing(secret)) else { continue }
            let newToken = keyring.seal(try keyring.open(token, context: Self.tokenContext(id)), context: Self.tokenContext(id))
            let newSecret = secret.isEmpty ? "" : keyring.seal(try keyring.open(secret, context: Self.secretContext(id)), context: Self.secretContext(id))
            // Only if the row still holds what was read: a rotation in between wins.
            count += try await pool.query(
                "UPDATE inbound_sources SET token = \(newToken), secret = \(newSecret) WHERE id = \(id) AND token = \(token) AND secret = \(secret)"
            ).affectedRows
        }
        return count
    }

    // MARK: Intake

    /// The source a URL token names, with its secret; nil for an unknown token or one
    /// rotated out longer ago than its grace.
    package func intake(token: String) async throws -> (source: InboundSource, secret: String)? {
        guard token.hasPrefix("hin_"), token.utf8.count <= 100 else { return nil }
        let hash = Self.hash(token)
        if let found = sources?.cached(hash.bytes) { return (found.source, found.secret) }
        let ticket = sources?.ticket()
        // Prepared, as the store below: a request whose source is not kept runs both.
        let lookup: Query = """
            SELECT \(Self.sourceColumns), token_hash = \(hash) FROM inbound_sources
            WHERE token_hash = \(hash) OR (previous_token_hash = \(hash) AND previous_token_expires_at > now())
            """
        guard let row = try await pool.query(lookup.prepared()).first else { return nil }
        let source = try intakeSource(row)
        let stored = try row.decode(String.self, 7)
        let found = SourceCache.Found(source: source, secret: stored.isEmpty ? "" : try keyring.open(stored, context: Self.secretContext(source.id)))
        // A token in its grace after a rotation is looked up until it expires.
        if try row.decode(Bool.self, 15) { sources?.keep(found, tokenHash: hash.bytes, ticket: ticket) }
        return (found.source, found.secret)
    }

    /// Stores a request with its verdict (one statement, one commit, shared with the
    /// requests that arrive meanwhile): a repeat of a delivery id within the window becomes
    /// a duplicate, and a processed webhook's event goes into the outbox with it, so the
    /// event exists exactly when the webhook says processed.
    package func receive(_ verdict: Verdict, request: InboundRequest, source: InboundSource) async throws -> Receipt {
        let event = verdict.status == .processed ? verdict.event : nil
        let arrival = Arrival(
            id: UUID(), sourceID: source.id, tenantID: source.tenantID, dedupWindow: source.dedupWindow,
            claimKey: verdict.status == .rejected ? nil : verdict.dedupKey, status: verdict.status.rawValue,
            error: verdict.failure?.reason, errorField: verdict.failure?.field, responseStatus: verdict.httpStatus,
            remoteAddress: request.remoteAddress, contentType: String((request.header("Content-Type") ?? "").prefix(200)),
            headers: Self.headersJSON(request, source: source), query: Self.queryText(request, source: source),
            body: verdict.keepsBody ? request.body : nil, bodySize: request.bodySize, dedupKey: verdict.dedupKey,
            eventID: event.map { _ in Event.generateID() }, eventType: event?.type, data: event?.data)
        return try await arrivals.submit(arrival).get()
    }

    /// A request on its way into a batch: the row it becomes, and its event's.
    struct Arrival: Sendable {
        var id: UUID
        var sourceID: UUID
        var tenantID: UUID
        var dedupWindow: Int
        /// The delivery id this request claims: none for a rejected one (which is kept
        /// with its id but claims nothing).
        var claimKey: String?
        var status: String
        var error: String?
        var errorField: String?
        var responseStatus: Int
        var remoteAddress: String
        var contentType: String
        var headers: [UInt8]
        var query: String
        var body: [UInt8]?
        var bodySize: Int
        var dedupKey: String?
        var eventID: String?
        var eventType: String?
        var data: [UInt8]?

        /// A batch holds about 4 MiB of bodies and events at most.
        var weight: Int { (body?.count ?? 0) + (data?.count ?? 0) + headers.count }
    }

    /// Writes a batch: each round of requests in one statement, where a round holds no two
    /// claims of one delivery id (the second would find the first's claim only after its
    /// commit, so it goes in the next round, in order; its event, if the first's claim failed
    /// or had expired, then follows the first round's in the outbox). A failed round is
    /// written again one request at a time, so a bad request fails alone; a committed round
    /// is never written twice, which is why this returns each request's result instead of
    /// throwing. A round whose connection was lost may have committed: each of its requests
    /// written again finds its own row (its id is its own) and is answered with what was
    /// stored, so a sender is not told 500 for a webhook that was kept.
    static func write(_ arrivals: [Arrival], on pool: Pool) async -> [Result<Receipt, any Error>] {
        // Every request is in one round, and every round sets its requests' results.
        var results = [Result<Receipt, any Error>](repeating: .failure(InboundError(.conflict, "not written")), count: arrivals.count)
        for round in rounds(arrivals) {
            do {
                for (index, receipt) in zip(round, try await insert(round.map { arrivals[$0] }, on: pool)) {
                    results[index] = .success(receipt)
                }
            } catch {
                // The session ended under the statement (lost, or ended or cancelled by the
                // server: SQLSTATE classes 08 and 57), so it may have committed.
                let ended = (error as? DatabaseError).map { $0.code == .connectionLost || ["08", "57"].contains($0.sqlState?.prefix(2) ?? "") } ?? false
                for index in round {
                    // A lone request the database refused would be refused again.
                    results[index] = round.count == 1 && !ended ? .failure(error) : await writeAlone(arrivals[index], on: pool)
                }
            }
        }
        return results
    }

    /// One request on its own; if its row exists already (the statement that stored it lost
    /// its connection before answering), what was stored.
    static func writeAlone(_ arrival: Arrival, on pool: Pool) async -> Result<Receipt, any Error> {
        do {
            return .success(try await insert([arrival], on: pool)[0])
        } catch let error as DatabaseError where error.isUniqueViolation && error.constraint == "inbound_webhooks_pkey" {
            do {
                let rows = try await pool.query("SELECT status, duplicate_of, event_id FROM inbound_webhooks WHERE id = \(arrival.id)")
                guard let row = rows.first else { return .failure(error) }
                return .success(
                    Receipt(id: arrival.id, status: try Self.status(row, 0), duplicateOf: try row.decode(UUID?.self, 1), eventID: try row.decode(String?.self, 2)))
            } catch {
                return .failure(error)
            }
        } catch {
            return .failure(error)
        }
    }

    /// The batch's requests by round, each round in submission order: a request goes into
    /// the first round that holds no claim of its source and delivery id.
    static func rounds(_ arrivals: [Arrival]) -> [[Int]] {
        struct Claim: Hashable {
            var source: UUID
            // The key's bytes: PostgreSQL compares text byte for byte, `String` by canonical equivalence.
            var key: [UInt8]
        }
        var rounds: [[Int]] = []
        var claims: [Claim: Int] = [:]
        for (index, arrival) in arrivals.enumerated() {
            var round = 0
            if let key = arrival.claimKey {
                let claim = Claim(source: arrival.sourceID, key: Array(key.utf8))
                round = claims[claim].map { $0 + 1 } ?? 0
                claims[claim] = round
            }
            if round == rounds.count { rounds.append([]) }
            rounds[round].append(index)
        }
        return rounds
    }

    /// One round in one statement. Claims are taken in the order of their keys, so that two
    /// batches at once (two API processes) never wait for each other's claims in a cycle.
    /// Of two concurrent requests with one delivery id in different statements, the second
    /// waits for the first's commit and finds its claim (the update returns the row as it is
    /// then, not as the statement's snapshot saw it).
    static func insert(_ arrivals: [Arrival], on pool: Pool) async throws -> [Receipt] {
        let statement: Query = """
            WITH input AS (
                SELECT * FROM unnest(
                    \(Column(arrivals.map(\.id)))::uuid[], \(Column(arrivals.map(\.sourceID)))::uuid[], \(Column(arrivals.map(\.tenantID)))::uuid[],
                    \(Column(arrivals.map(\.dedupWindow)))::int[], \(Column(arrivals.map(\.claimKey)))::text[], \(Column(arrivals.map(\.status)))::text[],
                    \(Column(arrivals.map(\.error)))::text[], \(Column(arrivals.map(\.errorField)))::text[], \(Column(arrivals.map(\.responseStatus)))::int[],
                    \(Column(arrivals.map(\.remoteAddress)))::text[], \(Column(arrivals.map(\.contentType)))::text[],
                    \(Column(json: arrivals.map(\.headers)))::json[], \(Column(arrivals.map(\.query)))::text[], \(Column(bytes: arrivals.map(\.body)))::bytea[],
                    \(Column(arrivals.map(\.bodySize)))::bigint[], \(Column(arrivals.map(\.dedupKey)))::text[], \(Column(arrivals.map(\.eventID)))::text[],
                    \(Column(arrivals.map(\.eventType)))::text[], \(Column(json: arrivals.map(\.data)))::json[]
                ) WITH ORDINALITY AS i (id, source_id, tenant_id, dedup_window, claim_key, status, error, error_field, response_status,
                                        remote_address, content_type, headers, query, body, body_size, dedup_key, event_id, event_type, data, n)
            ), claim AS (
                -- A live claim is kept and returned (its first webhook); a missing or expired one becomes this request's.
                INSERT INTO inbound_dedup (source_id, key, webhook_id, expires_at)
                SELECT source_id, claim_key, id, now() + make_interval(secs => dedup_window) FROM input
                WHERE claim_key IS NOT NULL
                ORDER BY source_id, claim_key
                ON CONFLICT (source_id, key) DO UPDATE SET
                    webhook_id = CASE WHEN inbound_dedup.expires_at <= now() THEN EXCLUDED.webhook_id ELSE inbound_dedup.webhook_id END,
                    expires_at = CASE WHEN inbound_dedup.expires_at <= now() THEN EXCLUDED.expires_at ELSE inbound_dedup.expires_at END
                RETURNING source_id, key, webhook_id
            ), decided AS (
                SELECT i.*, c.webhook_id AS original, CASE WHEN c.webhook_id IS NOT NULL THEN 'duplicate' ELSE i.status END AS outcome
                FROM input i LEFT JOIN claim c ON c.source_id = i.source_id AND c.key = i.claim_key AND c.webhook_id <> i.id
            ), stored AS (
                INSERT INTO inbound_webhooks (id, source_id, tenant_id, status, error, error_field, response_status, remote_address,
                    content_type, headers, query, body, body_size, dedup_key, duplicate_of, event_id, event_type, processed_at)
                SELECT id, source_id, tenant_id, outcome, error, error_field, response_status, remote_address,
                    content_type, headers::jsonb, query, body, body_size, dedup_key, original,
                    CASE WHEN outcome = 'processed' THEN event_id END, CASE WHEN outcome = 'processed' THEN event_type END,
                    CASE WHEN outcome IN ('processed', 'parse_error') THEN now() END
                FROM decided
                RETURNING id, status, duplicate_of
            ), queued AS (
                INSERT INTO outbox (tenant_id, event_id, type, data, attributes)
                SELECT tenant_id, event_id, event_type, data, jsonb_build_object('inbound_source', source_id::text)
                FROM decided WHERE outcome = 'processed'
                ORDER BY n
            )
            SELECT id, status, duplicate_of FROM stored
            """
        var stored: [UUID: (status: InboundStatus, duplicateOf: UUID?)] = [:]
        for row in try await pool.query(statement.prepared()) {
            stored[try row.decode(UUID.self, 0)] = (try Self.status(row, 1), try row.decode(UUID?.self, 2))
        }
        return try arrivals.map { arrival in
            guard let row = stored[arrival.id] else { throw InboundError(.conflict, "inbound webhook \(arrival.id.lowercasedText) was not stored") }
            return Receipt(
                id: arrival.id, status: row.status, duplicateOf: row.duplicateOf, eventID: row.status == .processed ? arrival.eventID : nil)
        }
    }

    static func enqueue(_ event: MappedEvent, id: String, source: InboundSource, on tx: Connection) async throws {
        let attributes = ConfigValue.text(["inbound_source": .string(source.id.lowercasedText)])
        try await tx.query(
            """
            INSERT INTO outbox (tenant_id, event_id, type, data, attributes)
            VALUES (\(source.tenantID), \(id), \(event.type), \(JSON(bytes: event.data)), \(JSONB(attributes)))
            """)
    }

    // MARK: The inbound log

    package func webhooks(tenant: UUID, _ filter: InboundFilter) async throws -> InboundPage {
        var conditions: Query = "tenant_id = \(tenant)"
        if let source = filter.source { conditions = conditions + " AND source_id = \(source)" }
        if let status = filter.status { conditions = conditions + " AND status = \(status.rawValue)" }
        if let since = filter.since { conditions = conditions + " AND received_at >= \(since)" }
        if let until = filter.until { conditions = conditions + " AND received_at < \(until)" }
        if let cursor = filter.cursor {
            conditions = conditions + " AND (received_at, id) < (\(cursor.createdAt), \(cursor.id))"
        }
        let rows = try await pool.query(
            """
            SELECT id, source_id, received_at, status, response_status, error, error_field, body_size, event_id, event_type, duplicate_of
            FROM inbound_webhooks WHERE \(conditions)
            ORDER BY received_at DESC, id DESC LIMIT \(filter.limit + 1)
            """)
        var items: [InboundSummaryView] = []
        for row in rows.prefix(filter.limit) {
            items.append(
                InboundSummaryView(
                    id: try row.id(0), sourceId: try row.id(1), receivedAt: try row.decode(Date.self, 2),
                    status: try Self.status(row, 3), responseStatus: try row.decode(Int.self, 4), error: try row.decode(String?.self, 5),
                    errorField: try row.decode(String?.self, 6), bodySize: try row.decode(Int.self, 7), eventId: try row.decode(String?.self, 8),
                    eventType: try row.decode(String?.self, 9), duplicateOf: try row.decode(UUID?.self, 10)?.lowercasedText))
        }
        var next: String?
        if rows.count > filter.limit, let last = items.last, let id = UUID(text: last.id) {
            next = Cursor(createdAt: last.receivedAt, id: id).token
        }
        return InboundPage(items: items, nextCursor: next)
    }

    package func webhook(tenant: UUID, id: UUID) async throws -> InboundWebhookView {
        guard let row = try await pool.query(
            """
            SELECT id, source_id, received_at, status, response_status, error, error_field, remote_address, content_type, headers::text,
                   query, body, body_size, dedup_key, duplicate_of, event_id, event_type, processed_at
            FROM inbound_webhooks WHERE tenant_id = \(tenant) AND id = \(id)
            """
        ).first else { throw InboundError(.notFound, "no such inbound webhook") }
        let body = try row.decode(Bytea?.self, 11)?.bytes
        let text = body.flatMap { String(validating: $0, as: UTF8.self) }
        return InboundWebhookView(
            id: try row.id(0), sourceId: try row.id(1), receivedAt: try row.decode(Date.self, 2), status: try Self.status(row, 3),
            responseStatus: try row.decode(Int.self, 4), error: try row.decode(String?.self, 5), errorField: try row.decode(String?.self, 6),
            remoteAddress: try row.decode(String.self, 7), contentType: try row.decode(String.self, 8),
            headers: Self.headers(try row.decode(String.self, 9)).map { [$0.name, $0.value] }, query: try row.decode(String.self, 10),
            body: text, bodyBase64: text == nil ? body.map(Base64.encode) : nil, bodySize: try row.decode(Int.self, 12),
            dedupKey: try row.decode(String?.self, 13), duplicateOf: try row.decode(UUID?.self, 14)?.lowercasedText,
            eventId: try row.decode(String?.self, 15), eventType: try row.decode(String?.self, 16), processedAt: try row.decode(Date?.self, 17))
    }

    /// Runs a stored webhook through its source's present mapping again: after the
    /// mapping was fixed, a parse error becomes an event, and a webhook stored only becomes
    /// one once its source maps. A rejected webhook was never verified, a duplicate repeats
    /// another, and a processed one has its event already (its deliveries can be resent):
    /// none of them is replayed, so a replay never makes a second event. The row is locked
    /// while it is done, so two replays at once make one event.
    package func replay(tenant: UUID, id: UUID) async throws -> ReplayView {
        try await pool.transaction { tx in
            guard let row = try await tx.query(
                """
                SELECT w.status, w.body, w.content_type, w.headers::text, w.event_id, w.duplicate_of, \(Self.columns(of: "s"))
                FROM inbound_webhooks w JOIN inbound_sources s ON s.id = w.source_id
                WHERE w.tenant_id = \(tenant) AND w.id = \(id) FOR UPDATE OF w
                """
            ).first else { throw InboundError(.notFound, "no such inbound webhook") }
            switch try Self.status(row, 0) {
            case .rejected: throw InboundError(.conflict, "a rejected webhook was never verified and cannot be replayed")
            case .duplicate:
                let original = try row.decode(UUID?.self, 5).map { " \($0.lowercasedText)" } ?? ""
                throw InboundError(.conflict, "a duplicate repeats an earlier webhook\(original); replay that one")
            case .processed:
                let event = try row.decode(String?.self, 4) ?? ""
                throw InboundError(.conflict, "already processed into event \(event); resend its deliveries from the delivery log instead")
            case .received, .parseError: break
            }
            guard let body = try row.decode(Bytea?.self, 1)?.bytes else {
                throw InboundError(.conflict, "the webhook's body was not kept and cannot be replayed")
            }
            let source = try intakeSource(row, offset: 6)
            let verdict = Intake.remap(
                body: body, contentType: try row.decode(String.self, 2), headers: Self.headers(try row.decode(String.self, 3)), source: source,
                maxDataBytes: maxDataBytes)
            if verdict.status == .rejected {
                throw InboundError(.conflict, "the stored webhook cannot be read again: \(verdict.failure?.description ?? "refused")")
            }
            let eventID = verdict.event.map { _ in Event.generateID() }
            if let event = verdict.event, let eventID {
                try await Self.enqueue(event, id: eventID, source: source, on: tx)
            }
            try await tx.query(
                """
                UPDATE inbound_webhooks SET status = \(verdict.status.rawValue), error = \(verdict.failure?.reason),
                       error_field = \(verdict.failure?.field), event_id = \(eventID), event_type = \(verdict.event?.type), processed_at = now()
                WHERE id = \(id)
                """)
            return ReplayView(
                id: id.lowercasedText, status: verdict.status, error: verdict.failure?.reason, errorField: verdict.failure?.field,
                eventId: eventID, eventType: verdict.event?.type)
        }
    }

    // MARK: Retention

    /// Deletes webhooks older than their status's retention (the source's own, else
    /// `defaults`), and delivery ids whose window ended, in batches; returns the rows deleted.
    package static func deleteExpired(on pool: Pool, defaults: [InboundStatus: Int], batch: Int = 1000) async throws -> Int {
        var total = 0
        // Per status, each source's webhooks older than its age: every lookup a range of the
        // (source_id, status, received_at) index (0007), however large the table.
        for status in InboundStatus.allCases {
            let fallback = defaults[status] ?? 90
            while true {
                let deleted = try await pool.query(
                    """
                    DELETE FROM inbound_webhooks WHERE id IN (
                        SELECT old.id FROM inbound_sources s CROSS JOIN LATERAL (
                            SELECT w.id FROM inbound_webhooks w
                            WHERE w.source_id = s.id AND w.status = \(status.rawValue)
                              AND w.received_at < now() - make_interval(days => coalesce((s.retention ->> \(status.rawValue))::int, \(fallback)::int))
                            LIMIT \(batch)) old
                        LIMIT \(batch))
                    """).affectedRows
                total += deleted
                if deleted < batch { break }
            }
        }
        total += try await pool.query(
            // Rows a batch of requests is claiming again are skipped: the batch locks its keys in
            // their order, this scan in its own, and the two would wait for each other.
            """
            DELETE FROM inbound_dedup WHERE (source_id, key) IN (
                SELECT source_id, key FROM inbound_dedup WHERE expires_at < now() LIMIT \(batch * 10) FOR UPDATE SKIP LOCKED)
            """
        ).affectedRows
        return total
    }

    // MARK: Rows

    static func columns(of alias: String) -> Query {
        Query(stringLiteral: """
            \(alias).id, \(alias).tenant_id, \(alias).name, \(alias).service, \(alias).token,
            CASE WHEN \(alias).previous_token_expires_at > now() THEN \(alias).previous_token_expires_at END,
            \(alias).verification::text, \(alias).secret, \(alias).mapping::text, \(alias).dedup::text, \(alias).dedup_window_seconds,
            \(alias).max_body_bytes, \(alias).retention::text, \(alias).created_at, \(alias).updated_at
            """)
    }

    func intakeSource(_ row: Row, offset: Int = 0) throws -> InboundSource {
        func stored(_ index: Int) throws -> [String: Any]? {
            guard let text = try row.decode(String?.self, offset + index) else { return nil }
            guard let object = ConfigValue.object(text) else { throw InboundError(.conflict, "a stored source setting is not a JSON object") }
            return object
        }
        do {
            return InboundSource(
                id: try row.decode(UUID.self, offset), tenantID: try row.decode(UUID.self, offset + 1), name: try row.decode(String.self, offset + 2),
                verification: try Verification(object: try stored(6) ?? [:]), mapping: try stored(8).map { try Mapping(object: $0) },
                deliveryID: try stored(9).map { try DeliveryIDRule(object: $0) }, dedupWindow: try row.decode(Int.self, offset + 10),
                maxBodyBytes: try row.decode(Int.self, offset + 11), retention: try InboundSource.retention(object: try stored(12) ?? [:]))
        } catch let failure as ParseFailure {
            throw InboundError(.conflict, "a stored source setting is no longer valid: \(failure)")
        }
    }

    func sourceView(_ row: Row) throws -> SourceView {
        let source = try intakeSource(row)
        let token = try keyring.open(try row.decode(String.self, 4), context: Self.tokenContext(source.id))
        return SourceView(
            id: source.id.lowercasedText, name: source.name, service: try row.decode(String.self, 3), url: "\(publicURL)/in/\(token)",
            previousUrlExpiresAt: try row.decode(Date?.self, 5), verification: source.verification.config, mapping: source.mapping?.config,
            dedup: source.effectiveDeliveryID?.config, dedupWindowSeconds: source.dedupWindow, maxBodyBytes: source.maxBodyBytes,
            retentionDays: Dictionary(uniqueKeysWithValues: source.retention.map { ($0.key.rawValue, $0.value) }),
            createdAt: try row.decode(Date.self, 13), updatedAt: try row.decode(Date.self, 14), settings: source)
    }

    static func status(_ row: Row, _ index: Int) throws -> InboundStatus {
        let text = try row.decode(String.self, index)
        guard let status = InboundStatus(rawValue: text) else { throw InboundError(.conflict, "unknown inbound status '\(text)'") }
        return status
    }

    static func mappingText(_ change: SourceInput.Change<Mapping>?) -> JSONB? {
        guard case .set(let mapping) = change else { return nil }
        return JSONB(ConfigValue.text(mapping.config))
    }

    static func dedupText(_ change: SourceInput.Change<DeliveryIDRule>?) -> JSONB? {
        guard case .set(let rule) = change else { return nil }
        return JSONB(ConfigValue.text(rule.config))
    }

    static func retentionText(_ retention: [InboundStatus: Int]) -> String {
        ConfigValue.text(Dictionary(uniqueKeysWithValues: retention.map { ($0.key.rawValue, ConfigValue.int($0.value)) }))
    }

    /// Headers that carry credentials are not kept: a stored webhook shows who knocked, not their keys.
    static let credentialHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]

    static func headersJSON(_ request: InboundRequest, source: InboundSource) -> [UInt8] {
        let secretNames = credentialHeaders.union(source.verification.credentialHeaders.map { $0.lowercased() })
        // `[["name","value"],…]`, written directly: a serializer's round trip through
        // Foundation's objects cost the API more than checking the request's signature.
        var text: [UInt8] = [UInt8(ascii: "[")]
        for header in request.headers where !secretNames.contains(header.name.lowercased()) {
            if text.count > 1 { text.append(UInt8(ascii: ",")) }
            text.append(UInt8(ascii: "["))
            text += JSONText.string(header.name)
            text.append(UInt8(ascii: ","))
            text += JSONText.string(header.value)
            text.append(UInt8(ascii: "]"))
        }
        text.append(UInt8(ascii: "]"))
        return text
    }

    static func headers(_ text: String) -> [(name: String, value: String)] {
        guard let pairs = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String]] else { return [] }
        return pairs.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
    }

    /// The query without the source's token parameter, encoded again.
    static func queryText(_ request: InboundRequest, source: InboundSource) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+")
        return request.query.filter { item in
            if case .queryToken(let parameter) = source.verification { return item.name != parameter }
            return true
        }.map { "\($0.name.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        .joined(separator: "&")
    }

    static func generateToken() -> String {
        "hin_" + Base64.encode(randomBytes(count: 24)).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    /// A secret for a sender that takes one: `whsec_` and 32 random bytes for signatures,
    /// 32 hex digits for a token or a password.
    static func generateSecret(for verification: Verification) -> String {
        switch verification {
        case .headerToken, .queryToken, .basic: Hex.encode(randomBytes(count: 16))
        default: "whsec_" + Base64.encode(randomBytes(count: 32))
        }
    }

    static func hash(_ token: String) -> Bytea { Bytea(SHA256.hash(Array(token.utf8))) }
    static func tokenContext(_ id: UUID) -> [UInt8] { Array("inbound-token:\(id.lowercasedText)".utf8) }
    static func secretContext(_ id: UUID) -> [UInt8] { Array("inbound-secret:\(id.lowercasedText)".utf8) }
}
