import Foundation
import HeraldSupport
import Testing

@testable import Inbound

@Suite struct ParsingTests {
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

    @Test func tooManyFormFieldsAreRefused() throws {
        let fields = Array(repeating: "a=1", count: BodyFormat.maxFields + 1).joined(separator: "&")
        #expect(throws: ParseFailure(field: nil, "more than 10000 form fields")) { try BodyFormat.form.parse(Array(fields.utf8)) }
    }
}
