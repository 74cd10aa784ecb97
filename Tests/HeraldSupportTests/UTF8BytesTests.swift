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

@Suite struct CopyBytesTests {
    /// Contiguous collections by `memcpy`, others element by element: the same bytes either way.
    @Test func copiesEveryKindOfCollectionExactly() {
        let large = String(repeating: "grüße, 東京 ✓ ", count: 200)
        let cases: [(name: String, expected: [UInt8], copy: (UnsafeMutableRawPointer) -> Int)] = [
            ("array", Array(0...255), { $0.copyBytes(of: Array(UInt8(0)...255)) }),
            ("slice", Array(10...20), { $0.copyBytes(of: Array(UInt8(0)...255)[10...20]) }),
            ("small string", Array("X-Herald".utf8), { $0.copyBytes(of: "X-Herald".utf8) }),
            ("large string", Array(large.utf8), { $0.copyBytes(of: large.utf8) }),
            ("lazy", (0..<700).map { UInt8(truncatingIfNeeded: $0) }, { $0.copyBytes(of: (0..<700).lazy.map { UInt8(truncatingIfNeeded: $0) }) }),
            ("empty", [], { $0.copyBytes(of: [UInt8]()) }),
        ]
        for (name, expected, copy) in cases {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(expected.count, 1), alignment: 1)
            defer { buffer.deallocate() }
            let count = copy(buffer.baseAddress!)
            #expect(count == expected.count, "\(name)")
            #expect(Array(buffer.prefix(count)) == expected, "\(name)")
        }
    }
}
