import HeraldEvents
import Foundation
import Testing

@Suite struct EventValidationTests {
    let tenant = UUID()

    func event(type: String = "client.created", id: String = "evt_1", data: String = "{\"a\":1}") -> Event {
        Event(id: id, type: type, tenantID: tenant, occurredAt: Date(timeIntervalSince1970: 1_778_578_200), data: Array(data.utf8))
    }

    @Test(arguments: ["client.created", "project.status_changed", "a.b", "invoice.item.added", "v2.x1"])
    func acceptsWellFormedTypes(_ type: String) throws {
        try event(type: type).validate()
    }

    @Test(arguments: [
        "", "client", "Client.created", "client..created", ".created", "client.", "client.created!", "1x.y", "client created", "client.*",
        "a._b", "a.1b", "x.é", "a.b\u{0}", ".", "a..",
    ])
    func rejectsMalformedTypes(_ type: String) {
        #expect(throws: EventError(field: "type", reason: "must be dot-separated lower-case words like 'invoice.paid'")) {
            try event(type: type).validate()
        }
    }

    /// The byte scan against the rule as words of Unicode scalars, on random strings of the
    /// characters that matter at each position.
    @Test func theShapeOfATypeIsCheckedAsTheRuleSays() {
        func rule(_ type: String) -> Bool {
            let words = type.split(separator: ".", omittingEmptySubsequences: false)
            guard words.count >= 2 else { return false }
            return words.allSatisfy { word in
                guard let first = word.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
                return word.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            }
        }
        let alphabet: [Character] = ["a", "z", "0", "9", "_", ".", "A", "é", " ", "-"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let type = String((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            #expect(EventType.isWellFormed(type) == rule(type), "\(type)")
        }
    }

    // A byte order mark inside an event's JSON is not JSON: the worker could not read it.
    @Test(arguments: ["[1]", "\"text\"", "42", "null", "{", "", "{} {}", "{\"a\":tru}", "\u{FEFF}{\"a\":1}"])
    func dataMustBeAnObject(_ data: String) {
        #expect(throws: EventError(field: "data", reason: "must be a JSON object")) { try event(data: data).validate() }
    }

    @Test func dataSizeLimitIsEnforcedWithAClearError() {
        let big = "{\"x\":\"" + String(repeating: "a", count: 300) + "\"}"
        do {
            try event(data: big).validate(EventLimits(maxDataBytes: 256))
            Issue.record("an oversized event was accepted")
        } catch {
            #expect(error.field == "data")
            #expect(error.reason.contains("256"))
        }
    }

    @Test(arguments: ["", "has space", "tab\there", String(repeating: "x", count: 201)])
    func rejectsBadIDs(_ id: String) {
        #expect(throws: EventError.self) { try event(id: id).validate() }
    }

    @Test func generatedIDsAreUniqueAndValid() throws {
        let now = Date()
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = Event.generateID(at: now)
            #expect(id.hasPrefix("evt_") && id.count == 36)
            #expect(id.dropFirst(4).allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
            // Version 7, variant 10: the digits at 12 and 16 of the UUID.
            let hex = Array(id.dropFirst(4))
            #expect(hex[12] == "7" && "89ab".contains(hex[16]), "\(id)")
            seen.insert(id)
        }
        // Made in the same millisecond, they differ in their 74 random bits.
        #expect(seen.count == 10_000)
        try event(id: Event.generateID()).validate()
    }

    /// What every copy of an event shares: the time in a version 7 id.
    @Test func aGeneratedIDSaysWhenItWasMade() throws {
        let now = Date(timeIntervalSince1970: 1_780_000_000.123)
        let id = Event.generateID(at: now)
        #expect(try #require(event(id: id).idTime).timeIntervalSince1970 == 1_780_000_000.123)
        // RFC 9562's example of version 7: 2022-02-22 19:22:22 UTC.
        let example = try #require(event(id: "017F22E2-79B0-7CC3-98C4-DC0C0C07398F").idTime)
        #expect(example == Date(timeIntervalSince1970: 1_645_557_742))
        #expect(event(id: "017f22e279b07cc398c4dc0c0c07398f").idTime == example)
        for other in [
            "evt_" + UUID().uuidString.lowercased().filter { $0 != "-" }, "evt_1", "evt_017f22e279b07cc398c4dc0c0c07398",
            "017F22E2-79B0-7CC3-18C4-DC0C0C07398F", "017F22E2x79B0-7CC3-98C4-DC0C0C07398F", "evt_017f22e279b07cc398c4dc0c0c07398g",
        ] {
            #expect(event(id: other).idTime == nil, "\(other)")
        }
    }
}

@Suite struct AttributeTests {
    /// A NUL could not be stored (jsonb refuses it): the producer is told, not the database.
    @Test func attributesMustNotContainNUL() {
        for attributes in [["work\u{0}space": "w1"], ["workspace": "w\u{0}1"]] {
            let event = Event(type: "client.created", tenantID: UUID(), data: Array("{}".utf8), attributes: attributes)
            #expect(throws: EventError(field: "attributes", reason: "keys and values must not contain NUL characters")) { try event.validate() }
        }
    }
}

@Suite struct WireFormatTests {
    @Test func roundTripsAnEvent() throws {
        let event = Event(
            id: "evt_\"quoted\"", type: "invoice.paid", tenantID: UUID(), occurredAt: Date(timeIntervalSince1970: 1_778_578_200.5),
            data: Array(#"{"total":"1450.00","client":{"name":"Anna"}}"#.utf8), attributes: ["workspace": "w1", "step": "retouch"])
        let decoded = try WireFormat.decode(WireFormat.encode(event))
        #expect(decoded.id == event.id)
        #expect(decoded.type == event.type)
        #expect(decoded.tenantID == event.tenantID)
        #expect(abs(decoded.occurredAt.timeIntervalSince1970 - event.occurredAt.timeIntervalSince1970) < 0.001)
        #expect(decoded.attributes == event.attributes)
        #expect(decoded.data == event.data)
    }

    /// The message body is a contract between producers and workers of different versions:
    /// these exact bytes.
    @Test func encodesTheDocumentedWireForm() throws {
        let event = Event(
            id: "evt_1", type: "invoice.paid", tenantID: try #require(UUID(uuidString: "1B4E28BA-2FA1-11D2-883F-0016D3CCA427")),
            occurredAt: Date(timeIntervalSince1970: 1_778_578_200.5), data: Array(#"{"a": 1}"#.utf8),
            attributes: ["workspace": "w1", "step": "re\"touch\n"])
        let expected = #"{"id":"evt_1","type":"invoice.paid","tenant_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","#
            + #""occurred_at":"2026-05-12T09:30:00.500Z","attributes":{"step":"re\"touch\n","workspace":"w1"},"data":{"a": 1}}"#
        #expect(String(decoding: WireFormat.encode(event), as: UTF8.self) == expected)
        let bare = Event(id: "e", type: "a.b", tenantID: event.tenantID, occurredAt: event.occurredAt, data: Array("{}".utf8))
        #expect(String(decoding: WireFormat.encode(bare), as: UTF8.self).hasSuffix(#","attributes":{},"data":{}}"#))
    }

    /// Endpoints receive the producer's bytes: key order, spacing and number spelling kept.
    @Test(arguments: [
        #"{"b":1,"a":[1,2]}"#,
        #"{ "a" : [1, 2.50, 1e3], "b" : {"x":"}],{\"quoted\"}"} }"#,
        #"{"text":"comma, brace } and bracket ]","n":-0.0,"t":true,"z":null}"#,
        "{}",
    ])
    func dataTravelsVerbatim(_ data: String) throws {
        let tenant = UUID()
        let first = #"{"id":"e","type":"a.b","tenant_id":"\#(tenant)","occurred_at":"2026-05-12T09:30:00Z","data":\#(data)}"#
        let last = #"{ "data" :\#(data) , "type":"a.b","id":"e","occurred_at":"2026-05-12T09:30:00Z","attributes":{"data":"x"},"tenant_id":"\#(tenant)"}"#
        #expect(String(decoding: try WireFormat.decode(Array(first.utf8)).data, as: UTF8.self) == data)
        #expect(String(decoding: try WireFormat.decode(Array(last.utf8)).data, as: UTF8.self) == data)
    }

    @Test func locatesTopLevelMembersOnly() {
        let json = Array(#"{"attributes":{"data":"inner"},"data" : [1, {"data":2}] ,"x":"\"data\""}"#.utf8)
        let range = JSONText.topLevelValue(named: "data", in: json)
        #expect(range.map { String(decoding: json[$0], as: UTF8.self) } == #"[1, {"data":2}]"#)
        #expect(JSONText.topLevelValue(named: "missing", in: json) == nil)
        #expect(JSONText.topLevelValue(named: "x", in: json).map { String(decoding: json[$0], as: UTF8.self) } == #""\"data\"""#)
    }

    /// A key spelled with an escape is still the `data` member, its value the bytes sent.
    @Test func escapedKeyStillFindsTheData() throws {
        let body = #"{"id":"e","type":"a.b","tenant_id":"\#(UUID())","occurred_at":"2026-05-12T09:30:00Z","d\u0061ta":{"a":1}}"#
        #expect(String(decoding: try WireFormat.decode(Array(body.utf8)).data, as: UTF8.self) == #"{"a":1}"#)
    }

    /// The event's data is the message's own storage, not a copy: a worker holds a large
    /// event's body once.
    @Test func theDataSharesTheBodysStorage() throws {
        let body = Array(#"{"id":"e","type":"a.b","tenant_id":"\#(UUID())","occurred_at":"2026-05-12T09:30:00Z","data":{"blob":"\#(String(repeating: "x", count: 4096))"}}"#.utf8)
        let event = try WireFormat.decode(body)
        let marker = Array(#""data":"#.utf8)
        let start = try #require((0...(body.count - marker.count)).first { Array(body[$0..<$0 + marker.count]) == marker }) + marker.count
        let shared = body.withUnsafeBufferPointer { whole in event.dataBytes.withUnsafeBufferPointer { $0.baseAddress == whole.baseAddress! + start } }
        #expect(shared)
        #expect(event.dataBytes.count == body.count - start - 1)
    }

    /// The last of a repeated member counts, as in every mainstream JSON reader; a reason
    /// for JSON that does not parse says where, never what.
    @Test func aRepeatedMemberCountsOnceAndBrokenJSONIsLocated() throws {
        let tenant = UUID()
        let body = #"{"id":"first","type":"a.b","tenant_id":"\#(tenant)","occurred_at":"2026-05-12T09:30:00Z","data":{"a":1},"id":"second","attributes":null}"#
        let event = try WireFormat.decode(Array(body.utf8))
        #expect(event.id == "second")
        #expect(event.attributes.isEmpty)
        #expect(throws: EventError(field: "body", reason: "is not a JSON object (invalid JSON at byte 27: expected a value)")) {
            try WireFormat.decode(Array(#"{"id":"e","data":{"secret":tru}}"#.utf8))
        }
    }

    /// What the producer and the API accept the worker reads too: data
    /// nested 300 deep, a body that opens with a UTF-8 byte order mark.
    @Test func whatTheProducerAcceptsTheWorkerReads() throws {
        let deep = String(repeating: #"{"a":"#, count: 300) + "1" + String(repeating: "}", count: 300)
        let body = #"{"id":"e","type":"a.b","tenant_id":"\#(UUID())","occurred_at":"2026-05-12T09:30:00Z","data":\#(deep)}"#
        let event = Event(type: "a.b", tenantID: UUID(), data: Array(deep.utf8))
        #expect(throws: Never.self) { try event.validate() }
        #expect(String(decoding: try WireFormat.decode(Array(body.utf8)).data, as: UTF8.self) == deep)
        #expect(try WireFormat.decode([0xEF, 0xBB, 0xBF] + Array(body.utf8)).id == "e")
    }

    /// The producer checks data with the worker's reader and to the depth the worker allows
    /// inside an event: the deepest data it accepts, the worker reads; one level more, it refuses.
    @Test func theProducersDepthLimitIsTheWorkers() throws {
        func nested(_ depth: Int) -> String { String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth) }
        let deepest = try #require((400...600).last { depth in (try? event(depth: depth, nested)) != nil })
        #expect(deepest >= 300)
        let body = #"{"id":"e","type":"a.b","tenant_id":"\#(UUID())","occurred_at":"2026-05-12T09:30:00Z","data":\#(nested(deepest))}"#
        #expect(try WireFormat.decode(Array(body.utf8)).data.count == nested(deepest).utf8.count)
        let deeper = #"{"id":"e","type":"a.b","tenant_id":"\#(UUID())","occurred_at":"2026-05-12T09:30:00Z","data":\#(nested(deepest + 1))}"#
        #expect(throws: EventError.self) { try WireFormat.decode(Array(deeper.utf8)) }
        #expect(throws: EventError(field: "data", reason: "must be a JSON object")) { try event(depth: deepest + 1, nested) }
    }

    private func event(depth: Int, _ nested: (Int) -> String) throws {
        try Event(type: "a.b", tenantID: UUID(), data: Array(nested(depth).utf8)).validate()
    }

    @Test(arguments: [
        ("not json", "body"),
        ("[]", "body"),
        (#"{"type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-05-12T09:30:00Z","data":{}}"#, "id"),
        (#"{"id":"e","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-05-12T09:30:00Z","data":{}}"#, "type"),
        (#"{"id":"e","type":"a.b","occurred_at":"2026-05-12T09:30:00Z","data":{}}"#, "tenant_id"),
        (#"{"id":"e","type":"a.b","tenant_id":"nope","occurred_at":"2026-05-12T09:30:00Z","data":{}}"#, "tenant_id"),
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"yesterday","data":{}}"#, "occurred_at"),
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-05-12T09:30:00Z","data":[1]}"#, "data"),
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-05-12T09:30:00Z","data":{},"attributes":{"w":1}}"#, "attributes.w"),
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-05-12T09:30:00Z","data":{},"extra":1}"#, "extra"),
        (#"{"id":7,"type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-05-12T09:30:00Z","data":{}}"#, "id"),
        // Dates a lenient parser rolls over, and instants before year 1 (hardening issue, item 4).
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-02-30T09:30:00Z","data":{}}"#, "occurred_at"),
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-05-12T12:99:00Z","data":{}}"#, "occurred_at"),
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"0001-01-01T00:00:00+01:00","data":{}}"#, "occurred_at"),
        (#"{"id":"e","type":"a.b","tenant_id":"00000000-0000-0000-0000-000000000000","occurred_at":"0000-12-31T00:00:00Z","data":{}}"#, "occurred_at"),
    ])
    func namesTheOffendingField(_ body: String, _ field: String) {
        do {
            _ = try WireFormat.decode(Array(body.utf8))
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.field == field)
        }
    }

    /// 100 four-byte characters are 400 bytes: more than a broker's short string holds
    /// (hardening issue, item 3: such an id broke the API's connection).
    @Test func lengthsAreCountedInBytes() {
        let tenant = UUID()
        let wide = String(repeating: "\u{1F4F7}", count: 100)
        #expect(wide.count == 100)
        #expect(throws: EventError.self) { try Event(id: wide, type: "a.b", tenantID: tenant, data: Array("{}".utf8)).validate() }
        #expect(throws: EventError.self) {
            try Event(type: "a.b", tenantID: tenant, data: Array("{}".utf8), attributes: ["k": String(repeating: "\u{E9}", count: 150)]).validate()
        }
        #expect(throws: Never.self) { try Event(id: String(repeating: "\u{E9}", count: 100), type: "a.b", tenantID: tenant, data: Array("{}".utf8)).validate() }
        #expect(EventLimits(maxIDLength: 1000).maxIDLength == 255)
    }

    @Test func anInstantOutsideTheYearsOneToNineThousandIsRefused() {
        for seconds in [-62_135_596_801.0, 253_402_300_800, .infinity, .nan] {
            let event = Event(type: "a.b", tenantID: UUID(), occurredAt: Date(timeIntervalSince1970: seconds), data: Array("{}".utf8))
            #expect(throws: EventError(field: "occurred_at", reason: "must lie between the years 0001 and 9999")) { try event.validate() }
        }
    }

    /// Mutations of a valid message body: the decoder never traps, and whatever it
    /// accepts passes validation and encodes back to a body it accepts again.
    @Test func decoderSurvivesMutatedBodies() {
        let valid = Array(#"{"id":"evt_1","type":"invoice.paid","tenant_id":"00000000-0000-0000-0000-000000000001","occurred_at":"2026-05-12T09:30:00.250Z","attributes":{"w":"1"},"data":{"a":[1,2.5,"x"],"b":{"c":null}}}"#.utf8)
        let alphabet = Array(#"{}[]":,.-+0123456789eE\ u"#.utf8) + [0, 0x80, 0xC3, 0xFF]
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<20_000 {
            var body = valid
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let index = Int.random(in: 0..<body.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: body[index] = alphabet.randomElement(using: &generator)!
                case 1: body.insert(alphabet.randomElement(using: &generator)!, at: index)
                default: body.remove(at: index)
                }
            }
            guard let event = try? WireFormat.decode(body) else { continue }
            accepted += 1
            #expect(throws: Never.self) { try event.validate() }
            #expect(throws: Never.self) { _ = try WireFormat.decode(WireFormat.encode(event)) }
        }
        #expect(accepted > 0)
    }

    @Test func jsonStringsAreEscaped() {
        #expect(String(decoding: JSONText.string("a\"b\\c\nd\u{1}"), as: UTF8.self) == #""a\"b\\c\nd\u0001""#)
        #expect(String(decoding: JSONText.string("\u{8}\u{C}\r\t\u{1F}/"), as: UTF8.self) == #""\b\f\r\t\u001f/""#)
    }

}

@Suite struct CatalogTests {
    @Test func hasTheSeventeenReferenceEvents() {
        #expect(Catalog.entries.count == 17)
        #expect(Set(Catalog.entries.map(\.type)).count == 17)
        for type in ["client.created", "client.deleted", "booking.confirmed", "invoice.paid", "order.shipped", "form.submitted"] {
            #expect(Catalog.entry(type) != nil)
        }
    }

    @Test(arguments: Catalog.entries.map(\.type))
    func everySampleIsAValidEvent(_ type: String) throws {
        let entry = try #require(Catalog.entry(type))
        #expect(!entry.description.isEmpty)
        try Event(type: type, tenantID: UUID(), data: Array(entry.sample.utf8)).validate()
    }
}
