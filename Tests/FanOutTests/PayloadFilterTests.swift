import FanOut
import Foundation
import HeraldSupport
import Testing

@Suite struct PayloadFilterTests {
    /// CreatorDesk's invoice.paid example data.
    static let invoice = #"""
        {"id": 89, "invoice_number": "R-2026-0089", "status": "paid", "total": "1450.00", "subtotal": "1218.49",
         "issue_date": "2026-05-01", "paid_at": "2026-05-12T09:30:00Z", "quote_id": null,
         "client": {"id": 42, "email": "anna@example.com", "name": "Anna Beispiel"}, "project_id": 38,
         "tags": ["Hochzeit", "2026"], "items": [{"id": 412, "product_type": "print", "quantity": 2}, {"id": 413, "product_type": "digital"}]}
        """#

    /// Creative Force's task payload (abridged).
    static let task = #"""
        {"Action": "completed", "EventGroupName": "task", "EventDatetimeUtc": 1595204418000,
         "ClientId": "2c856b2f-aded-4609-bf67-27009603b2b9", "ClientName": "My Big client", "StepId": "3", "StepName": "Photography"}
        """#

    func filter(_ text: String) throws(ParseFailure) -> PayloadFilter {
        try PayloadFilter(parsing: Array(text.utf8))
    }

    func matches(_ filterText: String, _ data: String = invoice) throws -> Bool {
        let root = try JSONTree.parse(Array(data.utf8))
        return try filter(filterText).matches(root)
    }

    @Test func theReferenceExamples() throws {
        #expect(try matches(#"{"total": {"$gte": "1000"}}"#))
        #expect(try !matches(#"{"total": {"$gte": "1500"}}"#))
        // Numeric strings compare as numbers: "999" is less than "1000".
        #expect(try matches(#"{"total": {"$gt": 999}}"#))
        #expect(try !matches(#"{"total": {"$lt": "999"}}"#))
        #expect(try matches(#"{"tags": {"$contains": "Hochzeit"}}"#))
        #expect(try !matches(#"{"tags": {"$contains": "Portrait"}}"#))
        // Creative Force's workspace and production-step filters.
        let cf = #"{"ClientId": {"$in": ["2c856b2f-aded-4609-bf67-27009603b2b9", "0f000000-0000-0000-0000-000000000000"]}, "StepName": {"$in": ["Photography", "Final Selection"]}}"#
        #expect(try matches(cf, Self.task))
        #expect(try !matches(cf.replacingOccurrences(of: "\"Photography\", ", with: ""), Self.task))
    }

    @Test func everyOperator() throws {
        let cases: [(String, Bool)] = [
            (#"{"status": "paid"}"#, true), (#"{"status": "draft"}"#, false),
            (#"{"status": {"$eq": "paid"}}"#, true), (#"{"project_id": 38.0}"#, true), (#"{"project_id": "38"}"#, false),
            (#"{"status": {"$neq": "draft"}}"#, true), (#"{"status": {"$neq": "paid"}}"#, false), (#"{"missing": {"$neq": 1}}"#, true),
            (#"{"status": {"$in": ["paid", "sent"]}}"#, true), (#"{"status": {"$in": ["sent"]}}"#, false), (#"{"missing": {"$in": [null]}}"#, false),
            (#"{"status": {"$nin": ["draft"]}}"#, true), (#"{"status": {"$nin": ["paid"]}}"#, false), (#"{"missing": {"$nin": ["x"]}}"#, true),
            (#"{"project_id": {"$gt": 37}}"#, true), (#"{"project_id": {"$gt": 38}}"#, false), (#"{"project_id": {"$gte": 38}}"#, true),
            (#"{"project_id": {"$lt": 38}}"#, false), (#"{"project_id": {"$lte": 38}}"#, true), (#"{"project_id": {"$lt": "1e2"}}"#, true),
            (#"{"issue_date": {"$gte": "2026-01-01", "$lt": "2026-06-01"}}"#, true), (#"{"issue_date": {"$gt": "2026-05-01"}}"#, false),
            (#"{"status": {"$gt": 1}}"#, false), (#"{"client": {"$gt": 1}}"#, false), (#"{"missing": {"$gt": 1}}"#, false),
            (#"{"quote_id": {"$exists": true}}"#, true), (#"{"quote_id": null}"#, true), (#"{"missing": {"$exists": false}}"#, true),
            (#"{"client.email": {"$exists": true}}"#, true), (#"{"client.phone": {"$exists": true}}"#, false),
            (#"{"invoice_number": {"$contains": "2026"}}"#, true), (#"{"invoice_number": {"$contains": "2025"}}"#, false),
            (#"{"items": {"$contains": {"product_type": "print"}}}"#, true), (#"{"items": {"$contains": {"product_type": "frame"}}}"#, false),
            (#"{"project_id": {"$contains": 3}}"#, false),
            (#"{"client.id": 42}"#, true), (#"{"client": {"id": 42, "name": "Anna Beispiel"}}"#, true), (#"{"client": {"id": 41}}"#, false),
            (#"{"items[1].product_type": "digital"}"#, true), (#"{"items[2].product_type": "digital"}"#, false),
            (#"{"tags": ["Hochzeit", "2026"]}"#, true), (#"{"tags": ["2026", "Hochzeit"]}"#, false),
            (#"{"client": {"$eq": {"id": 42, "email": "anna@example.com", "name": "Anna Beispiel"}}}"#, true),
            (#"{"client": {"$eq": {"id": 42}}}"#, false),
            (#"{"$and": [{"status": "paid"}, {"client.id": 42}]}"#, true), (#"{"$and": [{"status": "paid"}, {"client.id": 41}]}"#, false),
            (#"{"$or": [{"status": "draft"}, {"client.id": 42}]}"#, true), (#"{"$or": [{"status": "draft"}, {"client.id": 41}]}"#, false),
            (#"{"$not": {"status": "draft"}}"#, true), (#"{"$not": {"status": "paid"}}"#, false),
            (#"{"$not": {"$or": [{"status": "draft"}, {"tags": {"$contains": "Hochzeit"}}]}}"#, false),
            (#"{"status": "paid", "total": {"$lt": "100"}}"#, false),
        ]
        for (text, expected) in cases {
            #expect(try matches(text) == expected, "\(text)")
        }
    }

    @Test func substringsAreFoundByTheirCodePoints() throws {
        let data = #"{"city": "Köln-Süd 🎉", "short": "ab"}"#
        for (needle, expected) in [("Köln", true), ("Süd 🎉", true), ("ö", true), ("", true), ("Koln", false), ("abc", false), ("🎉 ", false)] {
            #expect(try matches(#"{"city": {"$contains": "\#(needle)"}}"#, data) == expected, "\(needle)")
        }
        #expect(try !matches(#"{"short": {"$contains": "abc"}}"#, data))
        #expect(try matches(#"{"short": {"$contains": "ab"}}"#, data))
    }

    @Test func everyErrorNamesThePathAndTheOperator() {
        let cases: [(String, String)] = [
            (#"{"total": {"$gte2": 1}}"#, "payload_filter.total.$gte2: '$gte2' is not an operator; use $eq, $neq, $in, $nin, $gt, $gte, $lt, $lte, $exists or $contains"),
            (#"{"$xor": []}"#, "payload_filter.$xor: '$xor' is not an operator here; use $and, $or or $not, or a path followed by $eq, $neq, $in, $nin, $gt, $gte, $lt, $lte, $exists or $contains"),
            (#"{"a b": 1}"#, "payload_filter.a b: 'a b' is not a path: keys of letters, digits, _ and -, joined by dots, with [n] for an array element"),
            (#"{"total": {"$in": "x"}}"#, "payload_filter.total.$in: must be an array of 1 to 500 values"),
            (#"{"total": {"$in": []}}"#, "payload_filter.total.$in: must be an array of 1 to 500 values"),
            (#"{"total": {"$gt": [1]}}"#, "payload_filter.total.$gt: must be a number or a string"),
            (#"{"total": {"$exists": 1}}"#, "payload_filter.total.$exists: must be true or false"),
            (#"{"$and": []}"#, "payload_filter.$and: must be a non-empty array of filters"),
            (#"{"$or": [{"a": 1}, 2]}"#, "payload_filter.$or[1]: must be an object of paths and operators"),
            (#"{"$not": {}}"#, "payload_filter.$not: must hold at least one condition"),
            (#"{"client": {"$eq": 1, "id": 2}}"#, "payload_filter.client.id: mixes operators with paths; put the path in its own condition"),
            (#"{"a": {"$eq": {"$gt": 1}}}"#, "payload_filter.a.$eq.$gt: an operator cannot stand inside a value"),
            (#"{"a": 1, "a": 2}"#, "payload_filter.a: appears twice"),
            (#"[1]"#, "payload_filter: must be an object of paths and operators"),
            (#"{"a": 1"#, "payload_filter: invalid JSON at byte 7: the document ends inside an object"),
        ]
        for (text, message) in cases {
            #expect(throws: (any Error).self, "\(text)") { try filter(text) }
            do { _ = try filter(text) } catch { #expect(error.description == message, "\(text)") }
        }
        let many = "{" + (0...PayloadFilter.maxConditions).map { "\"k\($0)\": 1" }.joined(separator: ",") + "}"
        #expect(throws: ParseFailure(field: "payload_filter", "holds more than \(PayloadFilter.maxConditions) conditions")) { try filter(many) }
    }

    @Test func theFilterIsShownAsWritten() throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        let shown = try encoder.encode(try filter(#"{"ClientId": {"$in": ["a", 2, true, null, 1.5]}}"#))
        // The tenant's keys are kept, whatever the encoder does with its own.
        #expect(String(decoding: shown, as: UTF8.self) == #"{"ClientId":{"$in":["a",2,true,null,1.5]}}"#)
    }

    @Test func aFilterDecidesOnlyForTheEventsTheEndpointSelects() throws {
        var endpoint = Endpoint(id: UUID(), tenantID: UUID(), url: "https://x", eventTypes: ["invoice.*"], secret: "s")
        endpoint.payloadFilter = try filter(#"{"total": {"$gte": "1000"}}"#)
        let data = ParsedData(Array(Self.invoice.utf8))
        #expect(endpoint.target(for: "invoice.paid", attributes: [:], data: data) == .deliver)
        #expect(endpoint.target(for: "booking.confirmed", attributes: [:], data: data) == .none)
        let small = ParsedData(Array(#"{"total": "99.00"}"#.utf8))
        #expect(endpoint.target(for: "invoice.paid", attributes: [:], data: small) == .none)
        // The erasure notice reaches the endpoint whatever its filter.
        #expect(endpoint.target(for: "client.deleted", attributes: [:], data: small) == .deliver)
        // Data too deep to read matches no filter.
        let deep = ParsedData(Array(("{\"a\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}").utf8))
        #expect(endpoint.target(for: "invoice.paid", attributes: [:], data: deep) == .none)
    }
}
