import HeraldEvents
import FanOut
import Foundation
import Testing

@Suite struct SubscriptionTests {
    func endpoint(_ types: [String], filters: [String: Set<String>] = [:], enabled: Bool = true, disabledAt: Date? = nil) -> Endpoint {
        Endpoint(id: UUID(), tenantID: UUID(), url: "https://example.com/hook", eventTypes: types, filters: filters, secret: "s", enabled: enabled, disabledAt: disabledAt)
    }

    @Test(arguments: [
        (["client.created"], "client.created", true),
        (["client.created"], "client.updated", false),
        (["invoice.*"], "invoice.paid", true),
        (["invoice.*"], "invoice.item.added", true),
        (["invoice.*"], "invoices.paid", false),
        (["invoice.*"], "invoice", false),
        (["*"], "anything.at_all", true),
        ([], "client.created", false),
        (["booking.confirmed", "order.*"], "order.shipped", true),
    ])
    func selection(_ types: [String], _ type: String, _ expected: Bool) {
        #expect(endpoint(types).selects(type) == expected)
    }

    @Test func everyFilterKeyMustMatch() {
        let e = endpoint(["*"], filters: ["workspace": ["w1", "w2"], "production_step": ["retouch"]])
        #expect(e.filtersAccept(["workspace": "w2", "production_step": "retouch", "other": "x"]))
        #expect(!e.filtersAccept(["workspace": "w3", "production_step": "retouch"]))
        #expect(!e.filtersAccept(["workspace": "w1"]))
        #expect(endpoint(["*"]).filtersAccept([:]))
    }

    @Test func erasureNoticeReachesEveryEndpoint() {
        let narrow = endpoint(["invoice.paid"], filters: ["workspace": ["w1"]])
        #expect(narrow.target(for: "client.deleted", attributes: [:], data: ParsedData([])) == .deliver)
        #expect(narrow.target(for: "client.created", attributes: ["workspace": "w1"], data: ParsedData([])) == .none)
    }

    @Test func disabledEndpointsGetSkippedDeliveriesOnlyOnceActive() {
        #expect(endpoint(["*"], enabled: false, disabledAt: Date()).target(for: "a.b", attributes: [:], data: ParsedData([])) == .skip)
        // Never enabled (e.g. awaiting its DPA): nothing is recorded.
        #expect(endpoint(["*"], enabled: false).target(for: "a.b", attributes: [:], data: ParsedData([])) == .none)
        #expect(endpoint(["x.y"], enabled: false, disabledAt: Date()).target(for: "a.b", attributes: [:], data: ParsedData([])) == .none)
    }
}
