@testable import Cryptography
import Testing

@Suite("Secret keyring")
struct SecretKeyringTests {
    static let endpoint = Array("endpoint:2b7f6a1e-0000-4000-8000-000000000001".utf8)

    static func ring() throws -> SecretKeyring {
        SecretKeyring(currentKey: try SecretKeyring.Key(base64: Base64.encode(randomBytes(count: 32))), retiredKeys: [])
    }

    /// Test case 16 of the GCM specification (AES-256, 96-bit IV, additional data).
    @Test func aesGCMMatchesTheSpecificationsTestVector() throws {
        let key = try #require(Hex.decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"))
        let iv = try #require(Hex.decode("cafebabefacedbaddecaf888"))
        let plaintext = try #require(Hex.decode(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"))
        let aad = try #require(Hex.decode("feedfacedeadbeeffeedfacedeadbeefabaddad2"))
        let (ciphertext, tag) = AESGCM.seal(plaintext, key: key, nonce: iv, aad: aad)
        #expect(Hex.encode(ciphertext)
            == "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
        #expect(Hex.encode(tag) == "76fc6ece0f4e1768cddf8853bb2d551b")
        #expect(AESGCM.open(ciphertext, tag: tag, key: key, nonce: iv, aad: aad) == plaintext)
        #expect(AESGCM.open(ciphertext, tag: tag, key: key, nonce: iv, aad: []) == nil)
    }

    @Test func sealedSecretsOpenOnlyWithTheirKeyAndContext() throws {
        let ring = try Self.ring()
        let secret = "whsec_" + Base64.encode(randomBytes(count: 32))
        let sealed = ring.seal(secret, context: Self.endpoint)
        #expect(sealed.hasPrefix("aes256gcm:\(ring.current!.id):"))
        #expect(!sealed.contains(secret.dropFirst(6)))
        #expect(ring.seal(secret, context: Self.endpoint) != sealed, "a fresh nonce every time")
        #expect(try ring.open(sealed, context: Self.endpoint) == secret)
        #expect(throws: SecretKeyError.self) { try ring.open(sealed, context: Array("endpoint:another".utf8)) }
        #expect(throws: SecretKeyError.self) { try Self.ring().open(sealed, context: Self.endpoint) }
        for malformed in ["aes256gcm:", "aes256gcm:abcd", "aes256gcm:\(ring.current!.id):!!!", "aes256gcm:\(ring.current!.id):AAAA"] {
            #expect(throws: SecretKeyError.self) { try ring.open(malformed, context: Self.endpoint) }
        }
        // Every single-byte change of the sealed bytes is refused.
        let prefix = "aes256gcm:\(ring.current!.id):"
        let bytes = try #require(Base64.decode(sealed.dropFirst(prefix.count)))
        for index in bytes.indices {
            var altered = bytes
            altered[index] ^= 0x01
            #expect(throws: SecretKeyError.self) { try ring.open(prefix + Base64.encode(altered), context: Self.endpoint) }
        }
    }

    @Test func errorsNameTheKeyNeverTheSecret() throws {
        let ring = try Self.ring()
        let secret = "a-secret-that-must-never-be-printed-0123456789"
        let sealed = ring.seal(secret, context: Self.endpoint)
        do {
            _ = try SecretKeyring.plaintext.open(sealed, context: Self.endpoint)
            Issue.record("opened without a key")
        } catch {
            #expect(error.description.contains(ring.current!.id))
            #expect(!error.description.contains(secret))
        }
    }

    @Test func withoutAKeyValuesAreStoredAndReadAsTheyAre() throws {
        let plain = SecretKeyring.plaintext
        #expect(plain.seal("whsec_abc", context: Self.endpoint) == "whsec_abc")
        #expect(try plain.open("whsec_abc", context: Self.endpoint) == "whsec_abc")
        #expect(!plain.needsResealing("whsec_abc"))
        let ring = try Self.ring()
        #expect(try ring.open("legacy-plaintext", context: Self.endpoint) == "legacy-plaintext")
        #expect(ring.needsResealing("legacy-plaintext"))
        #expect(!ring.needsResealing(ring.seal("x", context: Self.endpoint)))
    }

    @Test func rotationOpensRetiredKeysAndSealsWithTheNewOne() throws {
        let old = try Self.ring()
        let sealedOld = old.seal("secret-one", context: Self.endpoint)
        let newKey = try SecretKeyring.Key(base64: Base64.encode(randomBytes(count: 32)))
        let rotating = SecretKeyring(currentKey: newKey, retiredKeys: [old.current!])
        #expect(try rotating.open(sealedOld, context: Self.endpoint) == "secret-one")
        #expect(rotating.needsResealing(sealedOld))
        let resealed = rotating.seal("secret-one", context: Self.endpoint)
        #expect(resealed.hasPrefix("aes256gcm:\(newKey.id):"))
        #expect(try SecretKeyring(currentKey: newKey, retiredKeys: []).open(resealed, context: Self.endpoint) == "secret-one")
    }

    @Test func malformedKeysAreRefusedNamingWhichOne() {
        for text in ["", "short", Base64.encode(randomBytes(count: 16)), Base64.encode(randomBytes(count: 33)), "not base64 at all!"] {
            #expect(throws: SecretKeyError.self) { try SecretKeyring.Key(base64: text) }
        }
        let good = Base64.encode(randomBytes(count: 32))
        #expect(throws: SecretKeyError(reason: "must be the base64 of 32 random bytes (openssl rand -base64 32)", retired: true)) {
            try SecretKeyring(current: good, retired: ["nope"])
        }
        #expect(throws: SecretKeyError.self) { try SecretKeyring(current: nil, retired: [good]) }
    }
}
