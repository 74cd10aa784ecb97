@testable import HeraldSupport
import Testing

@Suite struct JSONTreeTests {
    /// An envelope's members: the named ones built, the others only checked and located.
    @Test func membersBuildOnlyWhatIsAskedFor() throws {
        let text = Array(#"{"attributes":{"w":"1"},"data":{"deep":{"x":[1,2]}},"id":"e"}"#.utf8)
        let members = try #require(try JSONTree.members(of: text, expanding: ["attributes"]))
        #expect(members.map(\.key) == ["attributes", "data", "id"])
        guard case .object(let attributes) = members[0].node.value, case .object(let data) = members[1].node.value,
            case .string(let id) = members[2].node.value
        else {
            Issue.record("kinds: \(members.map(\.node.kind))")
            return
        }
        #expect(attributes.map(\.key) == ["w"])
        #expect(data.isEmpty, "checked, not built")
        #expect(String(decoding: text[members[1].node.range], as: UTF8.self) == #"{"deep":{"x":[1,2]}}"#)
        #expect(id == "e")
        #expect(try JSONTree.members(of: Array("[1]".utf8), expanding: []) == nil, "valid JSON, not an object")
        #expect(throws: JSONSyntaxError.self) { try JSONTree.members(of: Array(#"{"a":1} x"#.utf8), expanding: []) }
        #expect(throws: JSONSyntaxError.self) { try JSONTree.members(of: Array(#"{"a":{"b":[1,}}"#.utf8), expanding: []) }
    }

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

    @Test func aHostileBodyIsRefusedBeforeItIsHeld() throws {
        let zeros = Array("[".utf8) + Array(repeating: Array("0,".utf8), count: 100_000).flatMap { $0 } + Array("0]".utf8)
        #expect(throws: JSONSyntaxError.self) { try JSONTree.parse(zeros) }
        do { _ = try JSONTree.parse(zeros) } catch { #expect(error.reason == "more than 100000 values") }
        // Checked without a tree, the same body is fine: nothing of it is held.
        #expect(throws: Never.self) { try JSONTree.check(zeros) }
        #expect(throws: JSONSyntaxError.self) { try JSONTree.check(Array("[1,]".utf8)) }
    }
}
