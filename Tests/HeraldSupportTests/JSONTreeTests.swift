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

    /// The word-at-a-time scan stops exactly at a word holding a quote, a backslash, a
    /// control character or a byte that is not ASCII, wherever it sits in the word.
    @Test func aWordIsSpecialExactlyWhenOneOfItsBytesIs() {
        let plain = Array(repeating: UInt8(ascii: "a"), count: 8)
        #expect(!JSONTree.special(word(plain)))
        for value in 0...255 {
            let byte = UInt8(value)
            let expected = byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80
            for position in 0..<8 {
                var bytes = plain
                bytes[position] = byte
                #expect(JSONTree.special(word(bytes)) == expected, "byte \(value) at \(position)")
                // Beside a borrow from a lower byte, too.
                bytes[(position + 7) % 8] = 0x20
                #expect(JSONTree.special(word(bytes)) == expected, "byte \(value) at \(position) beside a space")
            }
        }
    }

    private func word(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    /// A string only checked (inside an event's data) is refused exactly when, and where,
    /// the same string read in full is: random strings of quotes, escapes, control bytes,
    /// valid and broken UTF-8, long enough to cross words.
    @Test func checkedStringsFailAsBuiltOnesDo() {
        let fine: [[UInt8]] = [
            Array("a".utf8), Array("abcdefgh".utf8), Array(#"\n"#.utf8), Array(#"\u00e9"#.utf8), Array(#"\ud83d\ude00"#.utf8), [0x7F], [0x20],
            [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80],
        ]
        let wrong: [[UInt8]] = [
            [0x22], [0x5C], Array(#"\ud83d"#.utf8), [0x01], [0x1F], [0xC3], [0x80], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xED, 0xA0, 0x80], [0xFF],
            [0xC0, 0xAF],
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var refused = 0
        for _ in 0..<3_000 {
            var text: [UInt8] = []
            for _ in 0..<next(24) { text += next(16) == 0 ? wrong[next(wrong.count)] : fine[next(fine.count)] }
            for document in [Array(#"{"k":""#.utf8) + text + Array(#""}"#.utf8), Array(#"[""#.utf8) + text + Array(#""]"#.utf8)] {
                let built = failure { () throws(JSONSyntaxError) in _ = try JSONTree.parse(document) }
                let checked = failure { () throws(JSONSyntaxError) in try JSONTree.check(document) }
                #expect(built == checked, "\(document)")
                if built != nil { refused += 1 }
            }
        }
        #expect(refused > 600 && refused < 5_400, "both kinds of strings were drawn: \(refused) refused")
    }

    private func failure(_ body: () throws(JSONSyntaxError) -> Void) -> JSONSyntaxError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
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
