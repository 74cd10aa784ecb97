internal import COpenSSL

/// Constant-time comparison, so that checking a signature leaks no timing about
/// how many leading bytes matched.
@inlinable
public func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withContiguousBytes { x in b.withContiguousBytes { y in constantTimeEquals(x, y) } }
}

@usableFromInline
func constantTimeEquals(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Bool {
    CRYPTO_memcmp(x.baseAddress, y.baseAddress, x.count) == 0
}

/// Cryptographically secure random bytes (OpenSSL's CSPRNG), for secrets, keys and ids.
public func randomBytes(count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    guard count > 0 else { return bytes }
    let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
    precondition(ok == 1, "RAND_bytes failed: the CSPRNG is not seeded")
    return bytes
}

/// Lower-case hexadecimal, the form of `sha256=` signatures.
///
/// The generic entry points here are inlinable so that callers get them specialised (a
/// worker signs every delivery); the work is done once, over bytes, in this module.
public enum Hex {
    @inlinable
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        bytes.withContiguousBytes { encode(bytes: $0) }
    }

    @usableFromInline
    static func encode(bytes: UnsafeRawBufferPointer) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            digits.withUTF8Buffer { hex in
                for (index, byte) in bytes.enumerated() {
                    out[2 * index] = hex[Int(byte >> 4)]
                    out[2 * index + 1] = hex[Int(byte & 0x0F)]
                }
            }
            return bytes.count * 2
        }
    }

    /// Decodes upper- or lower-case hex; nil for odd length or a non-hex character.
    @inlinable
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(utf8: Array(text.utf8))
    }

    @usableFromInline
    static func decode(utf8 chars: [UInt8]) -> [UInt8]? {
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = value(chars[index]), let low = value(chars[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Standard base64 (RFC 4648 §4, with padding) over OpenSSL's EVP block codec.
public enum Base64 {
    @inlinable
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        bytes.withContiguousBytes { encode(bytes: $0) }
    }

    @usableFromInline
    static func encode(bytes input: UnsafeRawBufferPointer) -> String {
        guard !input.isEmpty else { return "" }
        let capacity = 4 * ((input.count + 2) / 3) + 1
        var out = [UInt8](repeating: 0, count: capacity)
        let written = out.withUnsafeMutableBufferPointer { output in
            EVP_EncodeBlock(output.baseAddress, input.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(input.count))
        }
        return String(decoding: out[0..<Int(written)], as: UTF8.self)
    }

    /// Decodes padded standard base64; nil for anything else (wrong length, foreign
    /// characters, misplaced padding). EVP_DecodeBlock alone would accept some of those
    /// and count padding as data, so the input is checked first.
    @inlinable
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(utf8: Array(text.utf8))
    }

    @usableFromInline
    static func decode(utf8 chars: [UInt8]) -> [UInt8]? {
        guard chars.count % 4 == 0 else { return nil }
        guard !chars.isEmpty else { return [] }
        var padding = 0
        for (index, c) in chars.enumerated() {
            if c == UInt8(ascii: "=") {
                guard index >= chars.count - 2 else { return nil }
                padding += 1
            } else {
                guard padding == 0, isAlphabet(c) else { return nil }
            }
        }
        var out = [UInt8](repeating: 0, count: chars.count / 4 * 3)
        let written = chars.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                EVP_DecodeBlock(output.baseAddress, input.baseAddress, Int32(input.count))
            }
        }
        guard written >= 0 else { return nil }
        return Array(out[0..<(Int(written) - padding)])
    }

    private static func isAlphabet(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }
}
