import Cryptography
import Testing

@Suite("HMAC-SHA256 (RFC 4231)")
struct HMACTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let key: [UInt8]
        let data: [UInt8]
        let mac: String
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(name: "case 1", key: Array(repeating: 0x0b, count: 20), data: Array("Hi There".utf8),
               mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        Vector(name: "case 2", key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8),
               mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        Vector(name: "case 3", key: Array(repeating: 0xaa, count: 20), data: Array(repeating: 0xdd, count: 50),
               mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        Vector(name: "case 4", key: Array(1...25), data: Array(repeating: 0xcd, count: 50),
               mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        // Case 5 specifies only the first 128 bits of the output.
        Vector(name: "case 5", key: Array(repeating: 0x0c, count: 20), data: Array("Test With Truncation".utf8),
               mac: "a3b6167473100ee06e0c796c2955552b"),
        Vector(name: "case 6", key: Array(repeating: 0xaa, count: 131),
               data: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
               mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        Vector(name: "case 7", key: Array(repeating: 0xaa, count: 131),
               data: Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
               mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test(arguments: vectors)
    func rfc4231(_ vector: Vector) {
        let mac = Hex.encode(SHA256.hmac(key: vector.key, message: vector.data))
        #expect(mac.hasPrefix(vector.mac))
        #expect(mac.count == 64)
    }

    @Test func emptyKeyAndMessage() {
        // Python: hmac.new(b"", b"", hashlib.sha256).hexdigest()
        #expect(Hex.encode(SHA256.hmac(key: [UInt8](), message: [UInt8]()))
            == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    /// RFC 2104's definition, composed here from SHA-256 itself, for every key length around
    /// the block (64) and the message lengths where padding changes (55, 56, 63, 64, …).
    @Test func matchesTheDefinitionForEveryLengthAroundTheBlock() {
        var generator = SystemRandomNumberGenerator()
        for keyLength in [0, 1, 31, 32, 63, 64, 65, 100, 128, 129, 300] {
            for messageLength in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 1000, 4097] {
                let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let message = (0..<messageLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                var block = key.count > 64 ? SHA256.hash(key) : key
                block += [UInt8](repeating: 0, count: 64 - block.count)
                let inner = SHA256.hash(block.map { $0 ^ 0x36 } + message)
                let expected = SHA256.hash(block.map { $0 ^ 0x5C } + inner)
                #expect(SHA256.hmac(key: key, message: message) == expected, "key \(keyLength), message \(messageLength) bytes")
            }
        }
    }

    @Test func sha256OfABC() {
        #expect(Hex.encode(SHA256.hash(Array("abc".utf8)))
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// Into caller's memory: the same digest, and nothing written past its 32 bytes.
    @Test func sha256IntoCallersMemory() {
        var out = [UInt8](repeating: 0xAA, count: 40)
        Array("abc".utf8).withUnsafeBytes { input in out.withUnsafeMutableBytes { SHA256.hash(bytes: input, into: $0) } }
        #expect(Hex.encode(Array(out[..<32])) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(out[32...].allSatisfy { $0 == 0xAA })
    }

    @Test func nonContiguousInputsGiveTheSameMAC() {
        let key = Array("secret".utf8)
        let message = Array("1715000000.{\"a\":1}".utf8)
        #expect(SHA256.hmac(key: key, message: message) == SHA256.hmac(key: key.reversed().reversed(), message: message.lazy.map { $0 }))
    }

    @Test func aPrefixSignsAsIfJoinedToTheMessage() {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for prefixLength in [0, 1, 20, 63, 64, 65, 130] {
            for messageLength in [0, 1, 55, 64, 1000] {
                let prefix = (0..<prefixLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let message = (0..<messageLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                #expect(
                    SHA256.hmac(key: key, prefix: prefix, message: message) == SHA256.hmac(key: key, message: prefix + message),
                    "prefix \(prefixLength), message \(messageLength) bytes")
            }
        }
        // A string's own UTF-8, small (inline) or not, signs as its bytes do.
        for text in ["1715000000.", "msg_2f3a9c1e-5b7d-4a8e-9c0f-1d2e3f4a5b6c.1715000000."] {
            #expect(SHA256.hmac(key: "k".utf8, prefix: text.utf8, message: [1, 2]) == SHA256.hmac(key: Array("k".utf8), message: Array(text.utf8) + [1, 2]))
        }
    }
}

@Suite("Encodings and comparison")
struct EncodingTests {
    @Test(arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ])
    func base64RFC4648(_ plain: String, _ encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(encoded) == Array(plain.utf8))
    }

    @Test func base64RoundTripsEveryByte() {
        let bytes = (0...255).map(UInt8.init)
        #expect(Base64.decode(Base64.encode(bytes)) == bytes)
    }

    @Test(arguments: ["Zg=", "Zg", "Z===", "Zm9v!", "Zg==Zg==", "=Zg=", "Zm 9v", "Zm9v\n"])
    func base64RejectsMalformed(_ text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test func hexRoundTrip() {
        #expect(Hex.encode([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.decode("000FA0ff") == [0x00, 0x0f, 0xa0, 0xff])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }

    @Test func constantTimeEquality() {
        #expect(constantTimeEquals(Array("sha256=abc".utf8), Array("sha256=abc".utf8)))
        #expect(!constantTimeEquals(Array("sha256=abc".utf8), Array("sha256=abd".utf8)))
        #expect(!constantTimeEquals(Array("short".utf8), Array("shorter".utf8)))
        #expect(constantTimeEquals([UInt8](), [UInt8]()))
    }

    @Test func randomBytesAreFreshEachTime() {
        let a = randomBytes(count: 32)
        let b = randomBytes(count: 32)
        #expect(a.count == 32)
        #expect(a != b)
        #expect(randomBytes(count: 0).isEmpty)
    }
}
