import Foundation
import HeraldSupport
import Testing

@Suite("Identifiers as text")
struct UUIDTextTests {
    @Test func writesWhatFoundationWritesInLowerCase() {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(id.lowercasedText == id.uuidString.lowercased())
        }
        #expect(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).lowercasedText == "00000000-0000-0000-0000-000000000000")
        let ones = UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))
        #expect(ones.lowercasedText == "ffffffff-ffff-ffff-ffff-ffffffffffff")
    }

    @Test func writesHexWithAPrefixAndNoHyphens() {
        for _ in 0..<1_000 {
            let id = UUID()
            let text = id.hexText(prefix: "evt_")
            #expect(text == "evt_" + id.uuidString.lowercased().filter { $0 != "-" })
            #expect(UUID(textOrHex: text.dropFirst(4)) == id)
        }
        #expect(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).hexText(prefix: "") == String(repeating: "0", count: 32))
    }

    @Test func readsBothCasesBack() {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(UUID(text: id.lowercasedText) == id)
            #expect(UUID(text: id.uuidString) == id)
        }
        #expect(UUID(text: "1B4e28BA-2fa1-11d2-883f-0016d3cca427")?.lowercasedText == "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    }

    @Test(arguments: [
        "", "1b4e28ba-2fa1-11d2-883f-0016d3cca42", "1b4e28ba-2fa1-11d2-883f-0016d3cca4277",
        "1b4e28ba2fa111d2883f0016d3cca427", "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}",
        "1b4e28ba-2fa1-11d2-883f_0016d3cca427",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca42g", "1b4e28b--2fa1-11d2-883f-0016d3cca427",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca4é", "1b4e28ba-2fa1-11d2-883f-0016d3cca4\u{0}7",
    ])
    func refusesWhatFoundationRefuses(_ text: String) {
        #expect(UUID(text: text) == nil)
        #expect(UUID(uuidString: text) == nil)
    }

    /// Foundation parsed with `sscanf`, which skips leading space and reads a short last
    /// group (` 1b4e…a42` became `…cca402` here). An identifier in a path or a message is
    /// either exact or not one.
    @Test func refusesAnythingButTheExactForm() {
        #expect(UUID(text: " 1b4e28ba-2fa1-11d2-883f-0016d3cca42") == nil)
        #expect(UUID(text: "1b4e28ba-2fa1-11d2-883f-0016d3cca427 ") == nil)
    }

    /// Every byte value at every position: a digit reads as its value in either case, a
    /// hyphen only where one belongs, anything else makes no identifier.
    @Test func everyByteAtEveryPosition() {
        let base = Array("1b4e28ba-2fa1-11d2-883f-0016d3cca427".utf8)
        let hex = Array("0123456789abcdef".utf8)
        for position in base.indices {
            for byte in UInt8.min...UInt8.max {
                var bytes = base
                bytes[position] = byte
                let parsed = UUID(text: String(decoding: bytes, as: UTF8.self))
                if [8, 13, 18, 23].contains(position) {
                    #expect((parsed != nil) == (byte == UInt8(ascii: "-")), "\(byte) at \(position)")
                } else if let digit = hex.firstIndex(of: byte < 0x80 ? byte | (byte >= 0x41 && byte <= 0x46 ? 0x20 : 0) : byte) {
                    var expected = base
                    expected[position] = hex[digit]
                    #expect(parsed?.lowercasedText == String(decoding: expected, as: UTF8.self), "\(byte) at \(position)")
                } else {
                    #expect(parsed == nil, "\(byte) at \(position)")
                }
            }
        }
    }
}
