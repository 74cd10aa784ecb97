import Foundation
import Testing

@testable import Inbound

@Suite struct ParsingTests {
    @Test func jsonKeepsRangesAndRefusesWhatIsNotJSON() throws {
        let text = Array(#" {"a": {"b": [1, 2.5e3, "x\u00e9\ud83d\ude00"]}, "c": true, "d": null} "#.utf8)
        let root = try JSONTree.parse(text)
        let b = try #require(JSONPath("$.a.b")?.find(in: root))
        #expect(String(decoding: text[b.range], as: UTF8.self) == #"[1, 2.5e3, "x\u00e9\ud83d\ude00"]"#)
        #expect(JSONPath("a.b[2]")?.find(in: root)?.scalarText == "xé😀")
        #expect(JSONPath("a.b[1]")?.find(in: root)?.scalarText == "2.5e3")
        #expect(JSONPath("c")?.find(in: root)?.scalarText == "true")
        #expect(JSONPath("a.b[3]")?.find(in: root) == nil)

        for (bad, reason) in [
            ("{\"a\": 1,}", "expected a key in double quotes"), ("[01]", "expected ',' or ']' in an array"),
            ("{\"a\" 1}", "expected ':' after a key"), ("\"\\ud800\"", "a lone surrogate in \\u escapes"),
            ("{} {}", "unexpected content after the document"), ("\"a\tb\"", "a control character in a string must be escaped"),
            ("", "the document ends where a value was expected"), ("tru", "expected a value"),
        ] {
            #expect(throws: JSONSyntaxError.self, "\(bad)") { try JSONTree.parse(Array(bad.utf8)) }
            do { _ = try JSONTree.parse(Array(bad.utf8)) } catch { #expect(error.reason == reason, "\(bad)") }
        }
        // Invalid UTF-8 inside a string, named with the offset of the string's text.
        #expect(throws: JSONSyntaxError(offset: 1, reason: "a string is not valid UTF-8")) { try JSONTree.parse([0x22, 0x61, 0xFF, 0x22]) }
    }

    @Test func deepNestingIsAnErrorNotARecursion() {
        let deep = Array(repeating: UInt8(ascii: "["), count: 10_000) + Array(repeating: UInt8(ascii: "]"), count: 10_000)
        #expect(throws: JSONSyntaxError(offset: 64, reason: "nested more than 64 levels deep")) { try JSONTree.parse(deep) }
        let fine = Array(repeating: UInt8(ascii: "["), count: 64) + Array(repeating: UInt8(ascii: "]"), count: 64)
        #expect(throws: Never.self) { try JSONTree.parse(fine) }
    }

    @Test func pathsAreCheckedWhenConfigured() {
        #expect(JSONPath("$.data.object.id")?.steps == [.key("data"), .key("object"), .key("id")])
        #expect(JSONPath("items[0][1].name")?.steps == [.key("items"), .index(0), .index(1), .key("name")])
        for bad in ["", "$", "a..b", "a[x]", "a b", "a[-1]", "[0]"] { #expect(JSONPath(bad) == nil, "\(bad)") }
    }

    @Test func contentTypes() {
        #expect(BodyFormat(contentType: "application/json; charset=utf-8") == .json)
        #expect(BodyFormat(contentType: "Application/JSON") == .json)
        #expect(BodyFormat(contentType: "application/cloudevents+json") == .json)
        #expect(BodyFormat(contentType: "application/x-www-form-urlencoded") == .form)
        #expect(BodyFormat(contentType: "multipart/form-data; boundary=\"abc\"") == .multipart(boundary: "abc"))
        #expect(BodyFormat(contentType: "multipart/form-data") == nil)
        #expect(BodyFormat(contentType: "text/xml") == nil)
        #expect(BodyFormat(contentType: "") == nil)
    }

    @Test func formFieldsBecomeAnObjectRepeatedOnesAnArray() throws {
        let body = try BodyFormat.form.parse(Array("Name=John+Best&Email=j.best%40ourcompany.com&tag=a&tag=b&EntityName=Contact&empty=".utf8))
        #expect(String(decoding: body.json, as: UTF8.self)
            == #"{"Name":"John Best","Email":"j.best@ourcompany.com","tag":["a","b"],"EntityName":"Contact","empty":""}"#)
        #expect(throws: ParseFailure(field: "Name", "the value is not valid percent-encoded UTF-8")) {
            try BodyFormat.form.parse(Array("Name=%FF%FE".utf8))
        }
        #expect(throws: ParseFailure(field: "Name", "the value is not valid percent-encoded UTF-8")) { try BodyFormat.form.parse(Array("Name=%4".utf8)) }
    }

    @Test func multipartFieldsWithoutFiles() throws {
        let boundary = "----b0undary"
        func part(_ disposition: String, _ value: String) -> String {
            "--\(boundary)\r\nContent-Disposition: form-data; \(disposition)\r\n\r\n\(value)\r\n"
        }
        let body = part("name=\"Name\"", "John Best") + part("name=\"EntityName\"", "Contact") + "--\(boundary)--\r\n"
        let parsed = try BodyFormat.multipart(boundary: boundary).parse(Array(body.utf8))
        #expect(String(decoding: parsed.json, as: UTF8.self) == #"{"Name":"John Best","EntityName":"Contact"}"#)
        let withFile = part("name=\"cv\"; filename=\"cv.pdf\"", "%PDF") + "--\(boundary)--\r\n"
        #expect(throws: ParseFailure(field: "cv", "files are not accepted; send fields only")) {
            try BodyFormat.multipart(boundary: boundary).parse(Array(withFile.utf8))
        }
        #expect(throws: ParseFailure(field: nil, "the multipart body has no part with the boundary its Content-Type names")) {
            try BodyFormat.multipart(boundary: "other").parse(Array(body.utf8))
        }
        let unterminated = "--\(boundary)\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue"
        #expect(throws: ParseFailure(field: "a", "the part does not end with the boundary")) {
            try BodyFormat.multipart(boundary: boundary).parse(Array(unterminated.utf8))
        }
    }

    @Test func aHostileBodyIsRefusedBeforeItIsHeld() throws {
        let zeros = Array("[".utf8) + Array(repeating: Array("0,".utf8), count: 100_000).flatMap { $0 } + Array("0]".utf8)
        #expect(throws: JSONSyntaxError.self) { try JSONTree.parse(zeros) }
        do { _ = try JSONTree.parse(zeros) } catch { #expect(error.reason == "more than 100000 values") }
        // Checked without a tree, the same body is fine: nothing of it is held.
        #expect(throws: Never.self) { try JSONTree.check(zeros) }
        #expect(throws: JSONSyntaxError.self) { try JSONTree.check(Array("[1,]".utf8)) }
        let fields = Array(repeating: "a=1", count: BodyFormat.maxFields + 1).joined(separator: "&")
        #expect(throws: ParseFailure(field: nil, "more than 10000 form fields")) { try BodyFormat.form.parse(Array(fields.utf8)) }
    }
}
