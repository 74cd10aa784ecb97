package import Foundation

/// Identifiers as text in the one form Herald stores, signs and shows: lower-case,
/// canonical (`1b4e28ba-2fa1-11d2-883f-0016d3cca427`).
///
/// Written by hand because every delivery turns several identifiers into text and back
/// (statement parameters, result rows, `webhook-id`, work messages): Foundation's
/// `uuidString` formats with `sprintf` and `lowercased()` copies it again, and
/// `UUID(uuidString:)` parses with `sscanf` — together a few per cent of a worker's CPU.
extension UUID {
    /// The lower-case canonical text.
    package var lowercasedText: String { text(prefix: "", hyphens: true) }

    /// `prefix` and the 32 lower-case hex digits without hyphens (`evt_…`), in one string.
    package func hexText(prefix: StaticString) -> String { text(prefix: prefix, hyphens: false) }

    private func text(prefix: StaticString, hyphens: Bool) -> String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: prefix.utf8CodeUnitCount + (hyphens ? 36 : 32)) { out in
                prefix.withUTF8Buffer { start in
                    digits.withUTF8Buffer { hex in
                        var n = 0
                        for byte in start {
                            out[n] = byte
                            n += 1
                        }
                        for (index, byte) in bytes.enumerated() {
                            if hyphens, index == 4 || index == 6 || index == 8 || index == 10 {
                                out[n] = UInt8(ascii: "-")
                                n += 1
                            }
                            out[n] = hex[Int(byte >> 4)]
                            out[n + 1] = hex[Int(byte & 0x0F)]
                            n += 2
                        }
                        return n
                    }
                }
            }
        }
    }

    /// The canonical form in either case; nil for anything else (no braces, no missing
    /// hyphens, no surrounding space: `UUID(uuidString:)` skipped a leading space).
    package init?(text: String) {
        var text = text
        guard let id = text.withUTF8({ UUID(utf8: $0) }) else { return nil }
        self = id
    }

    /// The canonical form in either case, from its UTF-8 bytes.
    package init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard let bytes = Self.parse(utf8) else { return nil }
        self.init(uuid: bytes)
    }

    /// The canonical form, or its 32 hex digits without hyphens, in either case.
    package init?<Text: StringProtocol>(textOrHex text: Text) {
        var text = String(text)
        guard let bytes = text.withUTF8({ Self.parse($0, hyphens: $0.count == 36) }) else { return nil }
        self.init(uuid: bytes)
    }

    private static func parse(_ utf8: UnsafeBufferPointer<UInt8>, hyphens: Bool = true) -> uuid_t? {
        guard utf8.count == (hyphens ? 36 : 32) else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &value) { out -> Bool in
            var i = 0
            for index in 0..<16 {
                if hyphens, index == 4 || index == 6 || index == 8 || index == 10 {
                    guard utf8[i] == UInt8(ascii: "-") else { return false }
                    i += 1
                }
                guard let high = nibble(utf8[i]), let low = nibble(utf8[i + 1]) else { return false }
                out[index] = high << 4 | low
                i += 2
            }
            return true
        }
        return parsed ? value : nil
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }
}
