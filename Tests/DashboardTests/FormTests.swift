@testable import Dashboard
import Delivery
import Foundation
import Management
import Policy
import Records
import Testing

@Suite("The endpoint form and the dashboard's small parsers")
struct FormTests {
    func form(_ fields: [(String, String)]) -> Form {
        Form(fields.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }.joined(separator: "&"))
    }

    @Test func headersAndFiltersAreReadOneLineEach() {
        var entry = EndpointForm(form([
            ("url", "https://hooks.example.com/in"), ("event_types", "client.*"), ("dpa", "yes"), ("dpa_confirmed_by", "Ada"),
            ("headers", "Authorization: Bearer abc:def\r\n\r\nX-Team:  photo  "), ("filters", "workspace: w_1, w_2,\nregion: eu"),
        ]))
        entry.validate(urlPolicy: URLPolicy(), headerPrefix: "X-Herald")
        #expect(entry.errors.isEmpty, "\(entry.errors)")
        #expect(entry.parsedHeaders == ["Authorization": "Bearer abc:def", "X-Team": "photo"], "split at the first colon")
        #expect(entry.parsedFilters == ["workspace": ["w_1", "w_2"], "region": ["eu"]])
        #expect(entry.input(headerPrefix: "X-Herald").enabled == true && entry.input(headerPrefix: "X-Herald").dpaConfirmedBy == "Ada")
    }

    @Test(arguments: [
        ("headers", "X-Herald-Signature: forged", "set by Herald"), ("headers", "webhook-id: 1", "set by Herald"),
        ("headers", "Bad Name: x", "not a valid header"), ("headers", "no colon here", "Line 1"),
        ("filters", "workspace:", "at least one value"), ("filters", "just words", "Line 1"),
    ])
    func aBadLineIsNamedNextToItsField(field: String, value: String, expected: String) {
        var entry = EndpointForm(form([("url", "https://hooks.example.com/in"), ("event_types", "*"), (field, value)]))
        entry.validate(urlPolicy: URLPolicy(), headerPrefix: "X-Herald")
        #expect(entry.errors[field]?.contains(expected) == true, "\(entry.errors)")
        #expect(field == "headers" ? entry.headers == value : entry.filters == value, "what was typed is kept")
    }

    @Test func anEditKeepsAConfirmedAgreementAndLeavesEnablingAlone() {
        let view = EndpointView(
            id: UUID().uuidString.lowercased(), url: "https://a.example.com", description: "", eventTypes: ["*"], filters: ["w": ["1"]],
            headers: ["X-Team": "photo"], payloadFormat: "envelope", enabled: false, dpaConfirmedAt: Date(), dpaConfirmedBy: "Ada",
            disabledAt: nil, disabledReason: nil, consecutiveFailures: 0, createdAt: Date(), updatedAt: Date(), secret: nil)
        let shown = EndpointForm(editing: view)
        #expect(shown.headers == "X-Team: photo" && shown.filters == "w: 1" && shown.payloadFormat == "envelope")
        var posted = EndpointForm(form([("url", "https://b.example.com"), ("event_types", "*"), ("dpa_confirmed_by", "Mallory")]), editing: view)
        posted.validate(urlPolicy: URLPolicy(), headerPrefix: "X-Herald")
        #expect(posted.errors.isEmpty)
        #expect(posted.input(headerPrefix: "X-Herald").enabled == nil && posted.input(headerPrefix: "X-Herald").dpaConfirmedBy == nil, "an edit neither enables nor re-confirms")
    }

    @Test func theOrderCheckboxIsShownAndReadBack() {
        let view = EndpointView(
            id: UUID().uuidString.lowercased(), url: "https://a.example.com", eventTypes: ["*"], enabled: true, createdAt: Date(), updatedAt: Date(),
            ordered: true)
        #expect(EndpointForm(editing: view).ordered)
        let checked = EndpointForm(form([("url", "https://b.example.com"), ("event_types", "*"), ("ordered", "yes")]), editing: view)
        #expect(checked.input(headerPrefix: "X-Herald").ordered == true)
        // An unchecked box is absent from the form: the edit turns ordering off.
        let unchecked = EndpointForm(form([("url", "https://b.example.com"), ("event_types", "*")]), editing: view)
        #expect(unchecked.input(headerPrefix: "X-Herald").ordered == false)
    }

    @Test func timesFromTheFormsAreReadAsUTC() {
        #expect(Portal.dateTime("2026-05-12T09:30") == Date(timeIntervalSince1970: 1_778_578_200))
        #expect(Portal.dateTime("2026-05-12T09:30:00") == Date(timeIntervalSince1970: 1_778_578_200))
        #expect(Portal.dateTime("2026-05-12T11:30:00+02:00") == Date(timeIntervalSince1970: 1_778_578_200))
        #expect(Portal.dateTime("yesterday") == nil && Portal.dateTime("") == nil)
    }

    @Test func anAttemptsHeadersAreRebuiltWithoutTheirSignatures() {
        let delivery = DeliveryView(
            id: UUID().uuidString.lowercased(), endpointId: UUID().uuidString.lowercased(), eventId: "evt_1", eventType: "client.created",
            status: .delivered, attempts: 1, requestId: UUID().uuidString.lowercased(), createdAt: Date())
        let attempt = AttemptView(attempt: 1, trigger: .automatic, requestId: delivery.requestId, startedAt: Date(timeIntervalSince1970: 1_778_578_200), durationMs: 5)
        let detail = DeliveryDetail(
            delivery: delivery, event: EventView(id: "evt_1", type: "client.created", occurredAt: Date(), attributes: [:], data: .object([:])),
            attempts: [attempt])
        let endpoint = EndpointView(
            id: delivery.endpointId, url: "https://a.example.com", description: "", eventTypes: ["*"], filters: [:], headers: ["X-Team": "photo"],
            payloadFormat: "raw", enabled: true, dpaConfirmedAt: Date(), dpaConfirmedBy: "Ada", disabledAt: nil, disabledReason: nil,
            consecutiveFailures: 0, createdAt: Date(), updatedAt: Date(), secret: nil)
        let headers = Dictionary(uniqueKeysWithValues: Pages.sentHeaders(detail, attempt: attempt, endpoint: endpoint, settings: RequestSettings()).map { ($0.name, $0.value) })
        #expect(headers["webhook-id"] == delivery.id && headers["X-Herald-Request-ID"] == delivery.requestId)
        #expect(headers["webhook-timestamp"] == "1778578200" && headers["X-Herald-Timestamp"] == "2026-05-12T09:30:00Z")
        #expect(headers["X-Herald-Signature"] == "… (not shown)" && headers["webhook-signature"] == "… (not shown)")
        #expect(headers["X-Team"] == "photo")
    }

    @Test func aFramedPortalOverHTTPSGetsACookieTheFrameReceives() {
        #expect(Portal.cookieAttributes(secure: true, framed: true) == "HttpOnly; SameSite=None; Secure; Partitioned")
        #expect(Portal.cookieAttributes(secure: true, framed: false) == "HttpOnly; SameSite=Lax; Secure")
        #expect(Portal.cookieAttributes(secure: false, framed: true) == "HttpOnly; SameSite=Lax", "None without Secure is refused by browsers")
    }

    @Test func signInAttemptsAreLimitedPerAddress() {
        let start = ContinuousClock.now
        let throttle = SignInThrottle(rate: 0.2, burst: 10, origin: start)
        for n in 0..<10 {
            #expect(throttle.attempt(from: "203.0.113.9", now: start + .milliseconds(n)) == nil, "the first ten go ahead")
        }
        #expect(throttle.attempt(from: "203.0.113.9", now: start + .milliseconds(10)) == 5, "the eleventh waits until a token is back")
        // Another address (the operator's) is not held up by a guesser's failures.
        #expect(throttle.attempt(from: "198.51.100.4", now: start + .milliseconds(11)) == nil)
        #expect(throttle.attempt(from: "203.0.113.9", now: start + .seconds(5) + .milliseconds(20)) == nil)
        #expect(throttle.attempt(from: "203.0.113.9", now: start + .seconds(6)) != nil, "the token that came back was taken")
        // The addresses of one IPv6 /64 count together.
        for n in 0..<10 { #expect(throttle.attempt(from: "2001:db8:1:2::\(n + 1)", now: start) == nil) }
        #expect(throttle.attempt(from: "2001:db8:1:2:ffff::9", now: start) != nil)
        #expect(throttle.attempt(from: "2001:db8:1:3::1", now: start) == nil)
        #expect(SignInThrottle.client("2001:db8:1:2::7") == "20010db800010002/64")
    }
}
