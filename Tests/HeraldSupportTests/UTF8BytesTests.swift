import HeraldSupport
import Testing

@Suite struct UTF8BytesTests {
    @Test(arguments: ["", "plain ASCII", "café", "€ and 😀", "\u{FFFD} stays"])
    func validTextReadsAsItself(_ text: String) {
        #expect(String(validUTF8: Array(text.utf8)) == text)
        #expect(String(validUTF8: Array(("xx" + text + "yy").utf8)[2...].dropLast(2)) == text, "a slice")
    }

    /// Invalid bytes, among them a truncated sequence whose one replacement character has
    /// as many bytes as it had (F0 9F 98): the check compares bytes, not counts.
    @Test(arguments: [[0xFF], [0xC3], [0x80], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0x61, 0xF0, 0x9F, 0x98]] as [[UInt8]])
    func invalidBytesAreRefused(_ bytes: [UInt8]) {
        #expect(String(validUTF8: bytes) == nil)
        #expect(String(validating: bytes, as: UTF8.self) == nil, "the standard library agrees")
    }

    @Test func sameUTF8ComparesBytesNotCanonicalEquivalence() {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        #expect(composed == decomposed, "Swift's equality")
        #expect(!composed.hasSameUTF8(as: decomposed))
        #expect(composed.hasSameUTF8(as: "caf" + "\u{E9}"))
        #expect(!"abc".hasSameUTF8(as: "abd"))
        #expect(!"abc".hasSameUTF8(as: "abcd"))
        #expect("".hasSameUTF8(as: ""))
        let long = String(repeating: "evt_0123456789abcdef", count: 4)
        #expect(long.hasSameUTF8(as: String(long.reversed().reversed())))
    }
}
