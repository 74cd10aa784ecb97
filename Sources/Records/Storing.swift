public import HeraldEvents
public import Foundation
import Postgres
import Delivery

extension PostgresRecords {
    /// A whole batch in one statement (events and deliveries inserted together, so both or
    /// neither are committed). An event or delivery that already exists (a redelivered or
    /// republished event) is kept as it is and read back afterwards. Each column travels as
    /// one array, so the statement's text is the same for every batch and its plan is
    /// prepared once per connection.
    public func store(_ arrivals: [Arrival]) async throws -> [Stored] {
        try await store(arrivals, recording: []).0
    }

    /// With `records` (which `AttemptRecord.mayRide` accepts), the batch's statement also logs their
    /// attempts, moves their deliveries and ends their endpoints' runs of failures, as
    /// `record` does for successes: one statement, one commit, for both. Without deliveries
    /// to create, the two are written one after the other.
    public func store(_ arrivals: [Arrival], recording records: [AttemptRecord]) async throws -> ([Stored], [Recorded]) {
        precondition(AttemptRecord.mayRide(records), "only successes of distinct deliveries ride with a store")
        guard !arrivals.isEmpty else { return ([], try await record(records)) }
        let eventColumns: Query = """
            \(Column(arrivals.map(\.event.tenantID)))::uuid[], \(Column(arrivals.map(\.event.id)))::text[],
            \(Column(arrivals.map(\.event.type)))::text[], \(Column(arrivals.map(\.event.occurredAt)))::timestamptz[],
            \(Column(json: arrivals.map(\.event.dataBytes)))::json[], \(Column(arrivals.map { Self.attributes($0.event) }))::jsonb[]
            """
        func events(_ existing: Existing) -> Query {
            """
            INSERT INTO events (tenant_id, id, type, occurred_at, data, attributes) SELECT * FROM unnest(\(eventColumns))
            \(existing == .skipped ? "ON CONFLICT (tenant_id, id) DO NOTHING" as Query : "") RETURNING tenant_id, id
            """
        }
        // Sized up front: grown one insert at a time, a set hashes its keys again each time
        // it doubles, and every key here hashes an event id.
        var claimedTargets = Set<DeliveryKey>(minimumCapacity: arrivals.count)
        var sentTargets = Set<DeliveryKey>(minimumCapacity: arrivals.count)
        var sent: [AttemptRecord] = []
        var columns = DeliveryColumns(capacity: arrivals.reduce(0) { $0 + $1.targets.count })
        for arrival in arrivals {
            let key = EventKey(arrival.event)
            for target in arrival.targets {
                let identity = DeliveryState.identity(tenant: arrival.event.tenantID, event: arrival.event.id, endpoint: target.endpoint)
                if target.claim { claimedTargets.insert(DeliveryKey(key, target.endpoint)) }
                if var record = target.sent {
                    sentTargets.insert(DeliveryKey(key, target.endpoint))
                    record.attempt.deliveryID = identity.id
                    sent.append(record)
                }
                columns.ids.append(identity.id)
                columns.requestIDs.append(identity.requestID)
                columns.tenants.append(arrival.event.tenantID)
                columns.eventIDs.append(arrival.event.id)
                columns.endpoints.append(target.endpoint)
                columns.statuses.append((target.skip ? DeliveryState.Status.skipped : target.sent != nil ? .delivered : .pending).rawValue)
                columns.attempts.append(target.claim || target.sent != nil ? 1 : 0)
                columns.codes.append(target.sent?.attempt.outcome.statusCode)
                columns.ordered.append(target.ordered)
            }
        }
        // Events that match no endpoint (none yet, none confirmed, none subscribed) are
        // stored all the same, so the log can say so, and the message is acked.
        // Otherwise one statement, one round trip. The attempts of targets sent first are
        // logged for the deliveries it creates (`s`); the riders' attempts are logged (`a`)
        // and their deliveries moved (`m`, marked -1); the endpoints of both end their runs
        // of failures (`r`).
        func statement(_ existing: Existing) -> Query {
            if columns.endpoints.isEmpty { return events(existing) }
            let delivered = DeliveryState.Status.delivered.rawValue
            return """
                WITH e AS (\(events(existing))), d AS (\(Self.insertDeliveries(columns, existing))),
                s AS (\(Self.insertAttempts(sent, where: "WHERE v.delivery_id IN (SELECT id FROM d WHERE status = \(delivered))"))),
                a AS (\(Self.insertAttempts(records))), m AS (\(Self.moveDeliveries(records, indices: Array(records.indices)))), r AS (
                    UPDATE endpoints SET consecutive_failures = 0, first_failure_at = NULL
                    WHERE id IN (SELECT endpoint_id FROM m UNION SELECT endpoint_id FROM d WHERE status = \(delivered)) AND consecutive_failures <> 0
                )
                SELECT NULL::uuid, NULL::uuid, NULL::uuid, NULL::text, NULL::int, 0, tenant_id, id, false FROM e
                UNION ALL SELECT * FROM d
                UNION ALL SELECT id, endpoint_id, NULL::uuid, NULL::text, NULL::int, -1, NULL::uuid, NULL::text, false FROM m
                """
        }
        // Rows of the events created (a NULL delivery id) and of the deliveries created.
        // Written first as if none existed: skipping what exists (`ON CONFLICT`) has
        // PostgreSQL look every row up in each unique index before inserting it, about a
        // tenth of its CPU per delivery, and a stored event comes back rarely (a redelivery,
        // a republish). A batch that holds one fails on the key as a whole, changing
        // nothing, and is written again skipping what exists.
        let written: [Row]
        do {
            written = Array(try await pool.query(statement(.absent).prepared()))
        } catch let error as DatabaseError where error.isUniqueViolation {
            written = Array(try await pool.query(statement(.skipped).prepared()))
        }
        let recorded = columns.endpoints.isEmpty ? try await record(records) : nil
        var created = Set<EventKey>(minimumCapacity: arrivals.count)
        var new = [EventKey: [DeliveryState]](minimumCapacity: arrivals.count)
        var claimed = Set<UUID>(minimumCapacity: written.count)
        var settled = Set<UUID>(minimumCapacity: written.count)
        var moved: Set<UUID> = []
        for row in written {
            if try row.columnCount == 9 && row.decode(Int.self, 5) == -1 {
                moved.insert(try row.decode(UUID.self, 0))
                continue
            }
            if try row.columnCount == 2 || row.decode(UUID?.self, 0) == nil {
                let column = row.columnCount == 2 ? 0 : 6
                created.insert(EventKey(tenant: try row.decode(UUID.self, column), id: try row.decode(String.self, column + 1)))
                continue
            }
            // A claimed delivery has attempt 1 started now.
            let state = try Self.state(row, ordered: 8)
            let key = EventKey(tenant: try row.decode(UUID.self, 6), id: try row.decode(String.self, 7))
            new[key, default: []].append(state)
            if claimedTargets.contains(DeliveryKey(key, state.endpointID)) { claimed.insert(state.id) }
            // Inserted delivered: from a sent target (another copy in the batch may have
            // inserted the row before it, pending).
            if state.status == .delivered, sentTargets.contains(DeliveryKey(key, state.endpointID)) { settled.insert(state.id) }
        }
        // Events stored earlier keep their first content.
        var earlier: [EventKey: Event] = [:]
        let republished = arrivals.filter { !created.contains(EventKey($0.event)) }
        if !republished.isEmpty {
            let keys = Self.distinctKeys(republished)
            // Each key looked up on its own in the key's index. `OFFSET 0` keeps the lookup a
            // subquery per key: joined instead, a plan made while the table was small (and kept
            // by the session) hashes the keys and reads the whole table; filtered with
            // `= ANY` on each column, it read all of a tenant's rows.
            let earlierEvents: Query = """
                SELECT e.* FROM unnest(\(Column(keys.map(\.tenant)))::uuid[], \(Column(keys.map(\.id)))::text[]) AS k (tenant_id, id)
                CROSS JOIN LATERAL (
                    SELECT e.tenant_id, e.id, e.type, e.occurred_at, e.data::text FROM events e
                    WHERE e.tenant_id = k.tenant_id AND e.id = k.id OFFSET 0) e
                """
            for row in try await pool.query(earlierEvents.prepared()) {
                let key = EventKey(tenant: try row.decode(UUID.self, 0), id: try row.decode(String.self, 1))
                guard var event = republished.first(where: { EventKey($0.event) == key })?.event else { continue }
                event.type = try row.decode(String.self, 2)
                event.occurredAt = try row.decode(Date.self, 3)
                event.data = Array(try row.decode(String.self, 4).utf8)
                earlier[key] = event
            }
        }
        // The deliveries that existed before, for arrivals that did not create all of theirs.
        var existing: [EventKey: [DeliveryState]] = [:]
        var seen = Set<EventKey>(minimumCapacity: arrivals.count)
        let incomplete = arrivals.filter { arrival in
            let key = EventKey(arrival.event)
            defer { seen.insert(key) }
            return seen.contains(key) || (new[key]?.count ?? 0) < arrival.targets.count
        }
        if !incomplete.isEmpty {
            let keys = Self.distinctKeys(incomplete)
            let earlierDeliveries: Query = """
                SELECT d.* FROM unnest(\(Column(keys.map(\.tenant)))::uuid[], \(Column(keys.map(\.id)))::text[]) AS k (tenant_id, event_id)
                CROSS JOIN LATERAL (
                    SELECT d.id, d.endpoint_id, d.request_id, d.status, d.attempts,
                           \(Self.lastAttempt),
                           d.tenant_id, d.event_id, d.position IS NOT NULL
                    FROM deliveries d WHERE d.tenant_id = k.tenant_id AND d.event_id = k.event_id OFFSET 0) d
                """
            for row in try await pool.query(earlierDeliveries.prepared()) {
                existing[EventKey(tenant: try row.decode(UUID.self, 6), id: try row.decode(String.self, 7)), default: []].append(try Self.state(row, ordered: 8))
            }
        }
        // The first arrival of an event owns what this call created; a second copy of it
        // in the same batch sees those deliveries as existing.
        var handedOut = Set<EventKey>(minimumCapacity: arrivals.count)
        let stored = arrivals.map { arrival in
            let key = EventKey(arrival.event)
            let first = handedOut.insert(key).inserted
            let states = existing[key] ?? new[key] ?? []
            let ids = Set(states.map(\.id))
            return Stored(
                event: earlier[key] ?? arrival.event, deliveries: states, claimed: first ? claimed.intersection(ids) : [],
                settled: first ? settled.intersection(ids) : [])
        }
        return (stored, recorded ?? records.map { Recorded(applied: moved.contains($0.attempt.deliveryID), disabledEndpoint: false) })
    }

    /// How a batch's statement treats events and deliveries stored before.
    private enum Existing {
        /// None is expected: one makes the statement fail on its key.
        case absent
        /// Each is skipped (and read back afterwards).
        case skipped
    }

    /// A batch's deliveries, one array per column.
    private struct DeliveryColumns {
        var ids: [UUID] = [], requestIDs: [UUID] = [], tenants: [UUID] = [], eventIDs: [String] = [], endpoints: [UUID] = []
        var statuses: [String] = [], attempts: [Int] = [], codes: [Int?] = [], ordered: [Bool] = []

        /// Sized for the batch's deliveries: nine columns grown one row at a time would be
        /// copied about six times each.
        init(capacity: Int) {
            ids.reserveCapacity(capacity)
            requestIDs.reserveCapacity(capacity)
            tenants.reserveCapacity(capacity)
            eventIDs.reserveCapacity(capacity)
            endpoints.reserveCapacity(capacity)
            statuses.reserveCapacity(capacity)
            attempts.reserveCapacity(capacity)
            codes.reserveCapacity(capacity)
            ordered.reserveCapacity(capacity)
        }
    }

    /// The deliveries of a batch, under the ids `DeliveryState.identity` gives them;
    /// returns their rows as `state` reads them (a delivered one has its attempt recorded).
    /// Each endpoint of the batch is locked once, as a foreign key would lock it for every
    /// row (migration 0020): a delivery is inserted only for an endpoint that exists, and an
    /// endpoint's delete waits until the batch commits, then deletes what it stored
    /// (`Store.deleteEndpoint`). Skipping existing ones, every unique index is an arbiter:
    /// the id and `deliveries_once` name the same row, and a concurrent insert of it must
    /// be skipped on either.
    private static func insertDeliveries(_ columns: DeliveryColumns, _ existing: Existing) -> Query {
        """
        INSERT INTO deliveries (id, request_id, tenant_id, event_id, endpoint_id, status, attempts, claimed_at, last_status_code,
                                delivered_at, position)
        SELECT v.id, v.request_id, v.tenant_id, v.event_id, v.endpoint_id, v.status, v.attempts, CASE WHEN v.attempts > 0 THEN now() END,
               v.code, CASE WHEN v.status = \(DeliveryState.Status.delivered.rawValue) THEN now() END,
               CASE WHEN v.ordered THEN nextval('delivery_positions') END
        FROM unnest(\(Column(columns.ids))::uuid[], \(Column(columns.requestIDs))::uuid[], \(Column(columns.tenants))::uuid[],
                    \(Column(columns.eventIDs))::text[], \(Column(columns.endpoints))::uuid[], \(Column(columns.statuses))::text[],
                    \(Column(columns.attempts))::int[], \(Column(columns.codes))::int[], \(Column(columns.ordered))::bool[])
             AS v (id, request_id, tenant_id, event_id, endpoint_id, status, attempts, code, ordered)
        WHERE v.endpoint_id IN (
            SELECT e.id FROM unnest(\(Column(Array(Set(columns.endpoints))))::uuid[]) AS k (id)
            CROSS JOIN LATERAL (SELECT id FROM endpoints WHERE id = k.id OFFSET 0 FOR KEY SHARE) e)
        \(existing == .skipped ? "ON CONFLICT DO NOTHING" as Query : "")
        RETURNING id, endpoint_id, request_id, status, attempts, (status = \(DeliveryState.Status.delivered.rawValue))::int,
                  tenant_id, event_id, position IS NOT NULL
        """
    }

    /// The events' keys, each once (a batch may hold two copies of an event).
    private static func distinctKeys(_ arrivals: [Arrival]) -> [EventKey] {
        var seen: Set<EventKey> = []
        return arrivals.map { EventKey($0.event) }.filter { seen.insert($0).inserted }
    }

    /// An event's attributes as a JSON object, keys sorted.
    private static func attributes(_ event: Event) -> JSONB {
        var attributes: [UInt8] = [UInt8(ascii: "{")]
        for (index, key) in event.attributes.keys.sorted().enumerated() {
            if index > 0 { attributes.append(UInt8(ascii: ",")) }
            attributes += JSONText.string(key) + [UInt8(ascii: ":")] + JSONText.string(event.attributes[key] ?? "")
        }
        attributes.append(UInt8(ascii: "}"))
        return JSONB(bytes: attributes)
    }

    public func load(delivery id: UUID) async throws -> (DeliveryState, Event)? {
        let rows = try await pool.query(
            """
            SELECT d.id, d.endpoint_id, d.request_id, d.status, d.attempts,
                   \(Self.lastAttempt),
                   e.tenant_id, e.id, e.type, e.occurred_at, e.data::text, e.attributes::text, d.position IS NOT NULL
            FROM deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
            WHERE d.id = \(id)
            """)
        guard let row = rows.first else { return nil }
        let attributes = (try? JSONSerialization.jsonObject(with: Data(try row.decode(String.self, 11).utf8)) as? [String: String]) ?? [:]
        let event = Event(
            id: try row.decode(String.self, 7), type: try row.decode(String.self, 8), tenantID: try row.decode(UUID.self, 6),
            occurredAt: try row.decode(Date.self, 9), data: Array(try row.decode(String.self, 10).utf8), attributes: attributes)
        return (try Self.state(row, ordered: 12), event)
    }

    public func head(ofOrdered endpoint: UUID) async throws -> DeliveryState? {
        try await pool.query(
            """
            SELECT d.id, d.endpoint_id, d.request_id, d.status, d.attempts,
                   \(Self.lastAttempt)
            FROM deliveries d
            WHERE d.endpoint_id = \(endpoint) AND d.open_position IS NOT NULL
            ORDER BY d.open_position LIMIT 1
            """
        ).first.map { var state = try Self.state($0); state.ordered = true; return state }
    }

    /// The delivery `d`'s highest recorded attempt. Its attempts start after it was created
    /// (by the database's clock; a worker's clock may lag it by up to a day): the bound
    /// lets PostgreSQL look in the day partitions from the day before on, not in every day
    /// the retention keeps.
    static let lastAttempt: Query = """
        COALESCE((SELECT max(a.attempt) FROM delivery_attempts a
                  WHERE a.delivery_id = d.id AND a.started_at >= d.created_at - interval '1 day'), 0)
        """

    /// A delivery from columns 0–5 (and `ordered`, whether it has a position, when given).
    static func state(_ row: Row, ordered column: Int? = nil) throws -> DeliveryState {
        DeliveryState(
            id: try row.decode(UUID.self, 0), endpointID: try row.decode(UUID.self, 1), requestID: try row.decode(UUID.self, 2),
            status: try row.decode(DeliveryState.Status.self, 3),
            attempts: try row.decode(Int.self, 4), recordedAttempts: try row.decode(Int.self, 5),
            ordered: try column.map { try row.decode(Bool.self, $0) } ?? false)
    }
}
