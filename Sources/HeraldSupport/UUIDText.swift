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

    /// The 32 digits gathered into two words, a group at a time (a row of a batch's store
    /// decodes several identifiers, and digit by digit with optional nibbles each took
    /// about 500 instructions).
    private static func parse(_ utf8: UnsafeBufferPointer<UInt8>, hyphens: Bool = true) -> uuid_t? {
        guard utf8.count == (hyphens ? 36 : 32), let p = utf8.baseAddress else { return nil }
        if hyphens {
            guard p[8] == UInt8(ascii: "-"), p[13] == UInt8(ascii: "-"), p[18] == UInt8(ascii: "-"), p[23] == UInt8(ascii: "-")
            else { return nil }
        }
        // Where each group of digits starts: 8, 4, 4, 4 and 12 of them.
        let skip = hyphens ? 1 : 0
        var high: UInt64 = 0
        var low: UInt64 = 0
        var invalid: UInt8 = 0
        hexDigits(p, 8, into: &high, invalid: &invalid)
        hexDigits(p + 8 + skip, 4, into: &high, invalid: &invalid)
        hexDigits(p + 12 + 2 * skip, 4, into: &high, invalid: &invalid)
        hexDigits(p + 16 + 3 * skip, 4, into: &low, invalid: &invalid)
        hexDigits(p + 20 + 4 * skip, 12, into: &low, invalid: &invalid)
        guard invalid == 0 else { return nil }
        return withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { $0.loadUnaligned(as: uuid_t.self) }
    }

    /// `count` hex digits at `p` shifted into `value`; a byte that is not a digit (in
    /// either case) sets bits of `invalid`.
    @inline(__always)
    private static func hexDigits(_ p: UnsafePointer<UInt8>, _ count: Int, into value: inout UInt64, invalid: inout UInt8) {
        for k in 0..<count {
            let c = p[k]
            let decimal = c &- UInt8(ascii: "0")
            let letter = (c | 0x20) &- UInt8(ascii: "a")
            let digit: UInt8 = decimal < 10 ? decimal : letter < 6 ? letter &+ 10 : 0xFF
            invalid |= digit & 0xF0
            value = value << 4 | UInt64(digit & 0x0F)
        }
    }
}
