import Foundation
@testable import Postgres
import Testing

@Suite("Queries bind every value")
struct QueryTests {
    @Test func interpolatedValuesBecomePlaceholders() {
        let id = UUID()
        let name = "Robert'); DROP TABLE tenants;--"
        let query: Query = "SELECT * FROM tenants WHERE id = \(id) AND name = \(name)"
        let (sql, binds) = query.render()
        #expect(sql == "SELECT * FROM tenants WHERE id = $1 AND name = $2")
        #expect(binds.map(\.text) == [id.uuidString.lowercased(), name])
        #expect(binds.map(\.oid) == [2950, 0])
    }

    @Test(arguments: [("", false), ("fine", false), ("\u{0}", true), ("a long text that is not a small string \u{0}", true), ("grüße\u{0}x", true)])
    func nulBytesAreFoundInTextParameters(_ text: String, _ hasNUL: Bool) {
        #expect(Bind(text: text, oid: 0).hasNUL == hasNUL)
        #expect(!Bind.null.hasNUL)
    }

    @Test func nilIsNull() {
        let missing: String? = nil
        let (sql, binds) = Query("UPDATE t SET x = \(missing)").render()
        #expect(sql == "UPDATE t SET x = $1")
        #expect(binds.count == 1)
        #expect(binds[0].text == nil)
    }

    @Test func fragmentsAreRenumbered() {
        let tenant = UUID()
        let fragment: Query = "\(1), \("a")"
        let query: Query = "INSERT INTO t (tenant, n, s) VALUES (\(tenant), \(fragment))"
        let (sql, binds) = query.render()
        #expect(sql == "INSERT INTO t (tenant, n, s) VALUES ($1, $2, $3)")
        #expect(binds.map(\.text) == [tenant.uuidString.lowercased(), "1", "a"])
    }

    @Test func aColumnIsOneArrayParameter() {
        let statuses: [Int?] = [200, nil, 503]
        let (sql, binds) = Query("SELECT * FROM unnest(\(Column(statuses))::int[], \(Column(["a", "b\"c", "d\\e"]))::text[])").render()
        #expect(sql == "SELECT * FROM unnest($1::int[], $2::text[])")
        #expect(binds.map(\.text) == [#"{"200",NULL,"503"}"#, #"{"a","b\"c","d\\e"}"#])
        // The statement's cast names the type, so the text is the same whatever the values.
        #expect(binds.map(\.oid) == [0, 0])
    }

    @Test func jsonColumnsTravelInTheBinaryArrayFormat() {
        let escaped = Array(#"{"a":"\\"}"#.utf8)
        #expect(escaped.count == 10)
        let (sql, binds) = Query("SELECT * FROM unnest(\(Column(json: [Array("{}".utf8), escaped]))::json[])").render()
        #expect(sql == "SELECT * FROM unnest($1::json[])")
        #expect(binds[0].text == nil && binds[0].oid == 199)
        let header: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 114, 0, 0, 0, 2, 0, 0, 0, 1]
        #expect(binds[0].binary == header + [0, 0, 0, 2] + Array("{}".utf8) + [0, 0, 0, 10] + escaped, "as they are, not escaped")
        #expect(Column(json: [[UInt8]]()).bind.binary == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 114])
    }

    @Test func identifiersAndInstantsTravelInTheBinaryArrayFormat() {
        let id = UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))
        let ids = Column([id, nil]).bind
        #expect(ids.text == nil && ids.oid == 2951)
        let uuidHeader: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x0B, 0x86, 0, 0, 0, 2, 0, 0, 0, 1]
        #expect(ids.binary == uuidHeader + [0, 0, 0, 16] + Array(1...16) + [255, 255, 255, 255], "16 bytes, then NULL")
        // PostgreSQL counts microseconds from 2000-01-01 UTC; before it, the count is negative.
        let instants = Column([Date(timeIntervalSince1970: 946_684_800.000_001), Date(timeIntervalSince1970: 946_684_799)]).bind
        #expect(instants.text == nil && instants.oid == 1185)
        #expect(instants.binary?.prefix(12) == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x04, 0xA0])
        #expect(instants.binary?.suffix(24) == [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 8, 255, 255, 255, 255, 255, 0xF0, 0xBD, 0xC0])
    }

    @Test func preparingKeepsTheStatement() {
        let query: Query = "SELECT \(1)"
        #expect(!query.isPrepared)
        #expect(query.prepared().isPrepared)
        #expect(query.prepared().render().sql == query.render().sql)
    }
}

@Suite("Text-format values")
struct ValueTests {
    @Test func datesTravelInTheServersPrecision() {
        #expect(Date(timeIntervalSince1970: 1_778_578_200.25).postgresText == "2026-05-12T09:30:00.250000Z")
        #expect(Date(postgresText: "2026-05-12 11:30:00.5+02")?.timeIntervalSince1970 == 1_778_578_200.5)
        #expect(Date(postgresText: "2026-05-12 09:30:00") == nil)
    }

    @Test(arguments: [
        ([], "{}"),
        (["a"], "{\"a\"}"),
        (["a b", "c,d", "e\"f", "g\\h", "NULL", ""], "{\"a b\",\"c,d\",\"e\\\"f\",\"g\\\\h\",\"NULL\",\"\"}"),
    ])
    func textArraysRoundTrip(_ elements: [String], _ literal: String) {
        #expect(TextArray.literal(elements.map { Optional($0) }) == literal)
        #expect(TextArray.parse(literal) == elements)
    }

    @Test func parsesTheServersUnquotedForm() {
        #expect(TextArray.parse("{invoice.*,client.created}") == ["invoice.*", "client.created"])
    }

    @Test(arguments: ["", "{", "{a,}", "{NULL}", "{{a}}", "{\"a}", "a,b"])
    func rejectsMalformedArrays(_ literal: String) {
        #expect(TextArray.parse(literal) == nil)
    }

    @Test func scalarCodecs() {
        #expect(Bool(postgresText: "t") == true)
        #expect(Bool(postgresText: "f") == false)
        #expect(Bool(postgresText: "yes") == nil)
        #expect(Int(postgresText: "-12") == -12)
        #expect(Int32(postgresText: "99999999999") == nil)
        let id = UUID()
        #expect(UUID(postgresText: id.postgresText!) == id)
        #expect(JSONB(postgresText: "{\"a\": 1}")?.text == "{\"a\": 1}")
        #expect(Optional<Int>.none.postgresText == nil)
    }

    /// Integers read from a row's bytes agree with `Int(String)` on every kind of text,
    /// at each width's limits and one past them.
    @Test(arguments: [
        "0", "7", "-12", "+5", "00042", "-0", "", "-", "+", "1a", " 1", "1 ", "--1", "1.5", "١",
        "2147483647", "2147483648", "-2147483648", "-2147483649",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "99999999999999999999",
    ])
    func integersFromBytesAgreeWithTheStandardLibrary(_ text: String) {
        var utf8 = text
        utf8.withUTF8 { bytes in
            #expect(Int(postgresBytes: bytes) == Int(text))
            #expect(Int64(postgresBytes: bytes) == Int64(text))
            #expect(Int32(postgresBytes: bytes) == Int32(text))
        }
    }
}

@Suite struct ConnectionURLTests {
    @Test func acceptsBothSchemes() throws {
        try ConnectionURL.validate("postgres://postgres@127.0.0.1:5433/herald")
        try ConnectionURL.validate("postgresql://u:p@db/herald?sslmode=disable")
    }

    @Test(arguments: ["mysql://x/y", "127.0.0.1:5432", "postgres://h/db?nosuchoption=1"])
    func rejects(_ url: String) {
        #expect(throws: DatabaseError.self) { try ConnectionURL.validate(url) }
    }

    @Test func redactsThePassword() {
        #expect(ConnectionURL.redacted("postgres://herald:s3cret@db:5432/x") == "postgres://herald:***@db:5432/x")
        #expect(ConnectionURL.redacted("postgres://herald@db/x") == "postgres://herald@db/x")
    }

    @Test func errorsNeverShowThePassword() {
        do {
            try ConnectionURL.validate("postgres://u:s3cret@h/db?nosuchoption=1")
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains("s3cret"))
        }
    }
}

@Suite("Database errors")
struct DatabaseErrorTests {
    /// Data and integrity errors fail the same way every time; the rest may pass later.
    @Test(arguments: [
        (DatabaseError(.server, sqlState: "23503"), true),
        (DatabaseError(.server, sqlState: "22P05"), true),
        (DatabaseError(.encoding), true),
        (DatabaseError(.server, sqlState: "40P01"), false),
        (DatabaseError(.server, sqlState: "57P01"), false),
        (DatabaseError(.connectionLost), false),
        (DatabaseError(.poolClosed), false),
    ])
    func refusedDataIsToldApart(_ error: DatabaseError, _ refused: Bool) {
        #expect(error.refusesData == refused)
    }
}

@Suite("Result rows read from one buffer")
struct RowsTests {
    /// Two rows of (uuid, text, int, timestamptz) as libpq hands them over: text, one
    /// buffer, a span per value, NULL as a negative length, '' as an empty span.
    static func sample() -> Rows {
        let texts: [String?] = [
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "grüße", "42", "2026-05-12 09:30:00.123456+00",
            "1B4E28BA-2FA1-11D2-883F-0016D3CCA428", "", nil, "not a time",
        ]
        var bytes: [UInt8] = []
        var spans: [ResultValues.Span] = []
        for text in texts {
            spans.append(ResultValues.Span(start: bytes.count, length: text.map { $0.utf8.count } ?? -1))
            bytes += Array((text ?? "").utf8)
        }
        let values = ResultValues(columns: ["id", "name", "n", "at"], rowCount: 2, bytes: bytes, spans: spans, query: "SELECT sample")
        return Rows(values, affectedRows: 0)
    }

    @Test func valuesDecodeFromTheirSpans() throws {
        let rows = Self.sample()
        #expect(rows.count == 2 && rows.columns == ["id", "name", "n", "at"])
        let first = rows[0]
        #expect(try first.id(0) == "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
        #expect(try first.decode(String.self, "name") == "grüße")
        #expect(try first.decode(Int.self, 2) == 42)
        #expect(abs(try first.decode(Date.self, 3).timeIntervalSince1970 - 1_778_578_200.123456) < 0.000_001)
        let second = rows[1]
        #expect(try second.decode(UUID.self, 0) == UUID(uuidString: "1b4e28ba-2fa1-11d2-883f-0016d3cca428"), "either case")
        #expect(try second.decode(String.self, 1) == "", "empty is not NULL")
        #expect(try second.decode(Int?.self, 2) == nil)
        #expect(Array(rows).count == 2)
    }

    @Test func badValuesNameTheirColumnAndStatement() {
        let second = Self.sample()[1]
        for (attempt, message, column) in [
            ({ _ = try second.decode(Int.self, 2) }, "NULL where Int was expected", "n"),
            ({ _ = try second.decode(Date.self, "at") }, "not a valid Date", "at"),
            ({ _ = try second.decode(UUID.self, 1) }, "not a valid UUID", "name"),
        ] as [(() throws -> Void, String, String)] {
            let error = #expect(throws: DatabaseError.self) { try attempt() }
            #expect(error?.code == .decoding && error?.message == message && error?.column == column && error?.query == "SELECT sample")
        }
        #expect(throws: DatabaseError.self) { try second.decode(String.self, 4) }
        #expect(throws: DatabaseError.self) { try second.decode(String.self, "missing") }
    }
}
