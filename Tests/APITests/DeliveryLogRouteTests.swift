import API
import Delivery
import HeraldEvents
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Management
import Postgres
import HeraldProducer
import Records
import Inbound
import Cryptography
import Synchronization
import Testing
import TestSupport
import Topology

/// The delivery log's routes run in Hummingbird's router test mode against the in-memory
/// record: authentication, paging, errors and resends, without a socket. (Pool, broker
/// publisher and parking lot connect lazily and are never used here.)
@Suite("Delivery log routes (no sockets)")
struct DeliveryLogRouteTests {
    struct FixedKeys: TenantKeys {
        let keys: [String: UUID]
        func tenant(forKey key: String) async throws -> UUID? { keys[key] }
    }

    /// Keeps what it dispatched; refuses everything when `refuse` is set.
    final class RecordingDispatcher: DeliveryDispatching {
        let refuse: Bool
        private let sent = Mutex<[(UUID, Int, Bool)]>([])
        init(refuse: Bool = false) { self.refuse = refuse }
        var dispatched: [(UUID, Int, Bool)] { sent.withLock { $0 } }

        func dispatch(delivery: UUID, attempt: Int, manual: Bool) async throws {
            if refuse { throw ManagementError(.unavailable, "the broker did not accept the delivery") }
            sent.withLock { $0.append((delivery, attempt, manual)) }
        }
    }

    struct Harness {
        let tenant = UUID()
        let key = "hk_" + String(repeating: "a", count: 64)
        let endpoint = UUID()
        let records = MemoryRecords()
        let dispatcher: RecordingDispatcher
        let api: API
        let app: Application<RouterResponder<APIContext>>

        init(refuse: Bool = false) throws {
            dispatcher = RecordingDispatcher(refuse: refuse)
            let logger = Logger(label: "test")
            let nowhere = "amqp://guest:guest@127.0.0.1:1/"
            let pool = try Pool(url: "postgresql://nobody@127.0.0.1:1/none", logger: logger)
            api = API(
                configuration: .init(operatorToken: "operator-token"),
                store: Store(pool: pool),
                keys: FixedKeys(keys: [key: tenant]), log: records, dispatcher: dispatcher, portalAccess: PortalAccess(pool: pool),
                parking: ParkingLot(amqpURL: nowhere, topology: Topology(), logger: logger),
                producer: Producer(configuration: .init(amqpURL: nowhere), logger: logger),
                inbound: InboundStore(pool: pool, keyring: .plaintext, publicURL: "http://127.0.0.1", maxDataBytes: 1024), readiness: { [:] },
                metrics: { "" })
            app = Application(router: api.router())
        }

        /// Stores `count` events with one delivery each to the endpoint; returns their ids, oldest first.
        func deliveries(_ count: Int) async throws -> [UUID] {
            var ids: [UUID] = []
            for n in 0..<count {
                let event = Event(id: "evt_\(n)", type: "invoice.paid", tenantID: tenant, data: Array(#"{"n":1}"#.utf8))
                ids += try await records.store([Arrival(event: event, targets: [.init(endpoint: endpoint)])])[0].deliveries.map(\.id)
            }
            return ids
        }

        func finish(_ id: UUID, status: Int) async throws {
            let state = try #require(records.states[id])
            _ = try await records.claim([AttemptClaim(delivery: id, attempt: 1)])
            let outcome = Outcome.of(status: status, retryAfter: nil, now: Date())
            _ = try await records.record([
                AttemptRecord(
                    Attempt(
                        deliveryID: id, endpointID: state.endpointID, number: 1, requestID: state.requestID, startedAt: Date(),
                        duration: .milliseconds(3), outcome: outcome, excerpt: []),
                    next: outcome.verdict == .delivered ? .delivered : .failed, nextAttemptAt: nil)
            ])
        }
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    @Test func credentialsAreCheckedBeforeTheLogIsRead() async throws {
        let harness = try Harness()
        try await harness.app.test(.router) { client in
            try await client.execute(uri: "/v1/deliveries", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            try await client.execute(uri: "/v1/deliveries", method: .get, headers: [.authorization: "Bearer hk_unknown"]) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/deliveries", method: .get, headers: [.authorization: "Bearer operator-token"]) { response in
                #expect(response.status == .forbidden, "the log is a tenant's")
            }
        }
    }

    @Test func theLogPagesWithItsCursorAndRefusesAForgedOne() async throws {
        let harness = try Harness()
        let ids = try await harness.deliveries(5)
        let auth: HTTPFields = [.authorization: "Bearer \(harness.key)"]
        try await harness.app.test(.router) { client in
            var seen: [String] = []
            var uri = "/v1/deliveries?limit=2"
            while true {
                let body = try await client.execute(uri: uri, method: .get, headers: auth) { response in
                    #expect(response.status == .ok)
                    return try Self.json(response.body)
                }
                let items = try #require(body["items"] as? [[String: Any]])
                seen += items.compactMap { $0["id"] as? String }
                #expect(items.allSatisfy { $0["status"] as? String == "pending" && $0["event_type"] as? String == "invoice.paid" })
                guard let next = body["next_cursor"] as? String else { break }
                uri = "/v1/deliveries?limit=2&cursor=\(next)"
            }
            #expect(seen == ids.reversed().map { $0.uuidString.lowercased() })
            try await client.execute(uri: "/v1/deliveries?cursor=MTIzOm5vdC1hLXV1aWQ", method: .get, headers: auth) { response in
                #expect(response.status == .badRequest)
                let problem = try Self.json(response.body)
                #expect(problem["field"] as? String == "cursor")
            }
            try await client.execute(uri: "/v1/deliveries?status=lost", method: .get, headers: auth) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test func aDeliveryOfAnotherTenantIsNotFound() async throws {
        let harness = try Harness()
        let id = try #require(try await harness.deliveries(1).first)
        let other = try Harness()
        try await other.app.test(.router) { client in
            try await client.execute(uri: "/v1/deliveries/\(id)", method: .get, headers: [.authorization: "Bearer \(other.key)"]) { response in
                #expect(response.status == .notFound)
            }
        }
        try await harness.app.test(.router) { client in
            try await client.execute(uri: "/v1/deliveries/\(id)", method: .get, headers: [.authorization: "Bearer \(harness.key)"]) { response in
                #expect(response.status == .ok)
                let body = try Self.json(response.body)
                #expect((body["event"] as? [String: Any])?["data"] as? [String: Int] == ["n": 1])
            }
        }
    }

    @Test func aResendDispatchesTheNextAttemptOnlyForAFinishedDelivery() async throws {
        let harness = try Harness()
        let ids = try await harness.deliveries(2)
        try await harness.finish(ids[0], status: 404)
        let auth: HTTPFields = [.authorization: "Bearer \(harness.key)"]
        try await harness.app.test(.router) { client in
            try await client.execute(uri: "/v1/deliveries/\(ids[0])/retry", method: .post, headers: auth) { response in
                #expect(response.status == .accepted)
                let body = try Self.json(response.body)
                #expect(body["attempt"] as? Int == 2)
            }
            try await client.execute(uri: "/v1/deliveries/\(ids[1])/retry", method: .post, headers: auth) { response in
                #expect(response.status == .conflict, "still pending")
            }
        }
        #expect(harness.dispatcher.dispatched.map(\.0) == [ids[0]])
        #expect(harness.dispatcher.dispatched.map(\.1) == [2] && harness.dispatcher.dispatched.map(\.2) == [true])
        #expect(harness.records.states[ids[0]]?.status == .pending)
    }

    @Test func aResendTheBrokerRefusedLeavesTheDeliveryAsItWas() async throws {
        let harness = try Harness(refuse: true)
        let id = try #require(try await harness.deliveries(1).first)
        try await harness.finish(id, status: 404)
        try await harness.app.test(.router) { client in
            try await client.execute(uri: "/v1/deliveries/\(id)/retry", method: .post, headers: [.authorization: "Bearer \(harness.key)"]) { response in
                #expect(response.status == .serviceUnavailable)
            }
        }
        #expect(harness.records.states[id]?.status == .failed, "not left pending with no message to finish it")
    }
}
