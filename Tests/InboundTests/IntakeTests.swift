import HeraldSupport
import Cryptography
import Foundation
import Testing

@testable import Inbound

/// The intake's decision in order, and the Creatio mapping of the reference document.
@Suite struct IntakeTests {
    let creatio = Array(
        #"{"Name": "John Best", "Email": "j.best@ourcompany.com", "MobilePhone": "+1 212 542 4238", "CountryId": "f8af0e88-f36b-1410-fa98-00155d043204", "EntityName": "Contact"}"#
            .utf8)
    let now = Date()

    func source(_ verification: Verification = .none, mapping: Mapping? = nil, deliveryID: DeliveryIDRule? = nil) -> InboundSource {
        InboundSource(id: UUID(), tenantID: UUID(), name: "forms", verification: verification, mapping: mapping, deliveryID: deliveryID, maxBodyBytes: 1024)
    }

    var entities: Mapping {
        Mapping(type: .field(JSONPath("EntityName")!), types: ["Contact": "contact.created", "Lead": "lead.created"])
    }

    func decide(_ body: [UInt8], _ source: InboundSource, headers: [(String, String)] = [("Content-Type", "application/json")]) -> Verdict {
        Intake.decide(InboundRequest(headers: headers.map { (name: $0.0, value: $0.1) }, body: body), source: source, secret: "s", now: now, maxDataBytes: 1000)
    }

    @Test func creatiosContactBecomesContactCreatedWithTheBodyAsItCame() {
        let verdict = decide(creatio, source(mapping: entities))
        #expect(verdict.status == .processed)
        #expect(verdict.httpStatus == 200)
        #expect(verdict.event == MappedEvent(type: "contact.created", data: creatio))
    }

    @Test func anUnregisteredEntityIsAParseErrorSayingSo() {
        let order = Array(#"{"EntityName": "Order", "Number": "ORD-1"}"#.utf8)
        let verdict = decide(order, source(mapping: entities))
        #expect(verdict.status == .parseError)
        #expect(verdict.httpStatus == 200)
        #expect(verdict.failure == ParseFailure(field: "EntityName", "'Order' is not a registered entity; registered: Contact, Lead"))
        #expect(verdict.event == nil)
    }

    @Test func withoutTheEntityNameItIsStoredOnly() {
        let verdict = decide(Array(#"{"Name": "John"}"#.utf8), source(mapping: entities))
        #expect(verdict.status == .received)
        #expect(verdict.event == nil && verdict.failure == nil)
        #expect(decide(creatio, source()).status == .received)
        // A null EntityName is no EntityName.
        #expect(decide(Array(#"{"EntityName": null}"#.utf8), source(mapping: entities)).status == .received)
    }

    @Test func typesFromAHeaderOrFixedAndDataFromASubObject() {
        let stripeLike = Array(#"{"id": "evt_9", "type": "invoice.paid", "data": {"object": {"amount": 1.50}}}"#.utf8)
        let byField = decide(stripeLike, source(mapping: Mapping(type: .field(JSONPath("type")!), data: JSONPath("data.object"))))
        #expect(byField.event == MappedEvent(type: "invoice.paid", data: Array(#"{"amount": 1.50}"#.utf8)))
        let byHeader = decide(stripeLike, source(mapping: Mapping(type: .header("X-Event"))), headers: [("Content-Type", "application/json"), ("X-Event", "Invoice Paid")])
        #expect(byHeader.failure == ParseFailure(field: "X-Event", "'Invoice Paid' is not an event type (lower-case words joined by dots, like contact.created)"))
        let fixed = decide(stripeLike, source(mapping: Mapping(type: .fixed("stripe.event"), data: JSONPath("data.object.amount"))))
        #expect(fixed.failure == ParseFailure(field: "data.object.amount", "must be a JSON object to become an event's data, not a number"))
        let missing = decide(stripeLike, source(mapping: Mapping(type: .fixed("stripe.event"), data: JSONPath("payload"))))
        #expect(missing.failure == ParseFailure(field: "payload", "is missing; the mapping takes the event's data from it"))
        let notString = decide(Array(#"{"EntityName": {"a": 1}}"#.utf8), source(mapping: entities))
        #expect(notString.failure == ParseFailure(field: "EntityName", "must be a string, not an object"))
    }

    @Test func theOrderOfRefusals() {
        let github = source(.github, mapping: entities)
        // Too large beats everything; the body is not kept.
        let large = Intake.decide(InboundRequest(headers: [], body: [], bodySize: 5000, isTooLarge: true), source: github, secret: "s", now: now, maxDataBytes: 1000)
        #expect(large.status == .rejected && large.httpStatus == 413 && !large.keepsBody)
        let slow = Intake.decide(InboundRequest(headers: [], body: [], bodySize: 10, timedOut: true), source: github, secret: "s", now: now, maxDataBytes: 1000)
        #expect(slow.status == .rejected && slow.httpStatus == 408 && !slow.keepsBody)
        // A forged signature: 401, the body kept so the tenant sees who knocked.
        let forged = decide(creatio, github, headers: [("Content-Type", "application/json"), ("X-Hub-Signature-256", "sha256=" + String(repeating: "0", count: 64))])
        #expect(forged.status == .rejected && forged.httpStatus == 401 && forged.keepsBody)
        #expect(forged.failure?.reason == "verification failed: the signature in X-Hub-Signature-256 does not match the body")
        let signature = "sha256=" + Hex.encode(SHA256.hmac(key: Array("s".utf8), message: creatio))
        let xml = decide(creatio, github, headers: [("Content-Type", "text/xml"), ("X-Hub-Signature-256", signature)])
        #expect(xml.status == .rejected && xml.httpStatus == 415)
        let invalid = decide(Array("{nope".utf8), source(mapping: entities))
        #expect(invalid.status == .parseError && invalid.httpStatus == 400)
        #expect(invalid.failure == ParseFailure(field: nil, "invalid JSON at byte 1: expected a key in double quotes"))
        let utf8 = decide([0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D], source())
        #expect(utf8.status == .parseError && utf8.failure?.reason.contains("not valid UTF-8") == true)
    }

    @Test func deliveryIdsFromPresetsAndRules() {
        let signature = "sha256=" + Hex.encode(SHA256.hmac(key: Array("s".utf8), message: creatio))
        let github = decide(
            creatio, source(.github), headers: [("Content-Type", "application/json"), ("X-Hub-Signature-256", signature), ("X-GitHub-Delivery", "72d3162e")])
        #expect(github.dedupKey == "72d3162e")
        let byPath = decide(Array(#"{"meta": {"id": 42}}"#.utf8), source(deliveryID: .jsonPath(JSONPath("meta.id")!)))
        #expect(byPath.dedupKey == "42")
        #expect(decide(creatio, source()).dedupKey == nil)
        let stripe = Verification.stripe(tolerance: 300)
        #expect(stripe.presetDeliveryID == .jsonPath(JSONPath("id")!))
    }

    @Test func sourceInputNamesEveryBadField() throws {
        let input = try SourceInput(
            object: [
                "name": "Creatio forms", "verification": ["method": "basic", "username": "creatio"],
                "mapping": ["event_type_path": "$.EntityName", "event_types": ["Contact": "contact.created"]],
                "dedup": ["header": "X-Request-Id"], "retention_days": ["rejected": 7],
            ], creating: true)
        #expect(input.verification == .basic(username: "creatio"))
        #expect(input.retention == [.rejected: 7])
        let cases: [([String: Any], ParseFailure)] = [
            (["verification": ["method": "none"]], ParseFailure(field: "name", "is required")),
            (["name": "x"], ParseFailure(field: "verification", "is required: {\"method\": \"none\"} or one of token, basic, hmac, standard-webhooks, github, stripe, shopify, herald")),
            (["name": "x", "verification": ["method": "none"], "mapping": ["event_type": "Contact"]],
             ParseFailure(field: "mapping.event_type", "'Contact' is not an event type (lower-case words joined by dots, like contact.created)")),
            (["name": "x", "verification": ["method": "none"], "mapping": ["event_type_path": "a", "event_types": ["Contact": "Contact"]]],
             ParseFailure(field: "mapping.event_types.Contact", "'Contact' is not an event type (lower-case words joined by dots, like contact.created)")),
            (["name": "x", "verification": ["method": "none"], "mapping": ["event_type": "a.b", "event_type_path": "a"]],
             ParseFailure(field: "mapping", "takes one of event_type, event_type_header or event_type_path")),
            (["name": "x", "verification": ["method": "none"], "retention_days": ["lost": 3]],
             ParseFailure(field: "retention_days.lost", "is not a status (received, processed, parse_error, rejected, duplicate)")),
            (["name": "x", "verification": ["method": "none"], "max_body_bytes": 100], ParseFailure(field: "max_body_bytes", "must be a whole number from 1024 to 16777216")),
            (["name": "x", "verification": ["method": "none"], "colour": 1], ParseFailure(field: "colour", "is not a known field")),
        ]
        for (object, failure) in cases {
            #expect(throws: failure) { try SourceInput(object: object, creating: true) }
        }
    }

    @Test func onlyASourceThatReadsTheBodyBuildsItsTree() {
        let zeros = Array("[".utf8) + Array(repeating: Array("0,".utf8), count: 100_000).flatMap { $0 } + Array("0]".utf8)
        // Stored only: checked without a tree, accepted.
        #expect(decide(zeros, source()).status == .received)
        // Mapped: the tree is built, and a body of more values than it may hold is refused.
        let mapped = decide(zeros, source(mapping: entities))
        #expect(mapped.status == .parseError && mapped.httpStatus == 400)
        #expect(mapped.failure?.reason.hasSuffix("more than 100000 values") == true)
    }
}
