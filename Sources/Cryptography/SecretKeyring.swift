internal import COpenSSL

/// Encrypts endpoint secrets at rest with a deployment key, so that a database dump alone
/// does not reveal them (signing needs the secret itself, so it cannot be hashed).
///
/// A sealed value is `aes256gcm:KEYID:BASE64` — AES-256-GCM with a random 96-bit nonce,
/// the base64 holding nonce, ciphertext and tag. `KEYID` (the first 4 bytes of the key's
/// SHA-256, in hex) names the key, so that a key can be rotated: the new key becomes
/// current, the old one is kept as retired until every value is sealed again. The
/// caller's `context` (the endpoint's id) is authenticated with the value, so a sealed
/// secret copied onto another row does not open there.
///
/// Without a current key, values are stored as they are; a stored value without the
/// prefix is read as plaintext (rows written before a key was set).
public struct SecretKeyring: Sendable {
    public struct Key: Sendable, Equatable {
        /// Hex of the first 4 bytes of the key's SHA-256: says which key sealed a value, reveals nothing.
        public let id: String
        let bytes: [UInt8]

        /// A key from the base64 of 32 random bytes (`openssl rand -base64 32`).
        public init(base64: String) throws(SecretKeyError) {
            guard let bytes = Base64.decode(base64), bytes.count == 32 else {
                throw SecretKeyError(reason: "must be the base64 of 32 random bytes (openssl rand -base64 32)")
            }
            self.bytes = bytes
            id = Hex.encode(SHA256.hash(bytes).prefix(4))
        }
    }

    /// The prefix of a sealed value; a tenant's own secret may not begin with it.
    public static let prefix = "aes256gcm:"

    /// Seals new values; nil: values are stored as they are.
    public let current: Key?
    /// Open values sealed before a rotation.
    public let retired: [Key]

    /// No key: secrets are stored in plaintext.
    public static let plaintext = SecretKeyring(currentKey: nil, retiredKeys: [])

    public init(currentKey: Key?, retiredKeys: [Key]) {
        current = currentKey
        retired = retiredKeys
    }

    /// From the settings' base64 texts; the error says which one is malformed.
    public init(current: String?, retired: [String]) throws(SecretKeyError) {
        let currentKey = try current.map { (text: String) throws(SecretKeyError) -> Key in try Key(base64: text) }
        var keys: [Key] = []
        for text in retired {
            do {
                keys.append(try Key(base64: text))
            } catch {
                throw SecretKeyError(reason: error.reason, retired: true)
            }
        }
        if !keys.isEmpty && currentKey == nil {
            throw SecretKeyError(reason: "retired keys are given but no current key")
        }
        self.init(currentKey: currentKey, retiredKeys: keys)
    }

    /// Whether `stored` is a sealed value (not plaintext).
    public static func isSealed(_ stored: String) -> Bool { stored.hasPrefix(prefix) }

    /// `secret` as it is stored: sealed under the current key, or as it is without one.
    public func seal(_ secret: String, context: some Collection<UInt8>) -> String {
        guard let key = current else { return secret }
        let nonce = randomBytes(count: 12)
        let (ciphertext, tag) = AESGCM.seal(Array(secret.utf8), key: key.bytes, nonce: nonce, aad: Array(context))
        return Self.prefix + key.id + ":" + Base64.encode(nonce + ciphertext + tag)
    }

    /// The secret a stored value holds. Fails, naming the key id only, when the key is not
    /// in the ring or the value does not authenticate (altered, or copied from another row).
    public func open(_ stored: String, context: some Collection<UInt8>) throws(SecretKeyError) -> String {
        guard Self.isSealed(stored) else { return stored }
        let parts = stored.dropFirst(Self.prefix.count).split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let sealed = Base64.decode(parts[1]), sealed.count >= 28 else {
            throw SecretKeyError(reason: "a stored secret is not a well-formed sealed value")
        }
        let id = String(parts[0])
        guard let key = ([current].compactMap { $0 } + retired).first(where: { $0.id == id }) else {
            throw SecretKeyError(
                reason: "a stored secret is sealed with key \(id), which neither HERALD_SECRET_KEY nor HERALD_SECRET_KEYS_RETIRED holds")
        }
        let nonce = Array(sealed.prefix(12))
        let tag = Array(sealed.suffix(16))
        let ciphertext = Array(sealed.dropFirst(12).dropLast(16))
        guard let plain = AESGCM.open(ciphertext, tag: tag, key: key.bytes, nonce: nonce, aad: Array(context)),
            let secret = String(validating: plain, as: UTF8.self)
        else {
            throw SecretKeyError(reason: "a stored secret sealed with key \(id) does not authenticate (altered, or not this row's)")
        }
        return secret
    }

    /// Whether `stored` should be sealed again: plaintext while a key is set, or sealed
    /// with a key other than the current one.
    public func needsResealing(_ stored: String) -> Bool {
        guard let current else { return false }
        return !stored.hasPrefix(Self.prefix + current.id + ":")
    }
}

/// A key that cannot be used, or a stored secret that cannot be opened. Never holds a key or a secret.
public struct SecretKeyError: Error, CustomStringConvertible, Equatable, Sendable {
    public let reason: String
    /// Whether the malformed key is one of the retired ones.
    public let retired: Bool

    public init(reason: String, retired: Bool = false) {
        self.reason = reason
        self.retired = retired
    }

    public var description: String { reason }
}

/// AES-256-GCM over libcrypto's EVP interface, with a 96-bit nonce and a 128-bit tag.
enum AESGCM {
    static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) -> (ciphertext: [UInt8], tag: [UInt8]) {
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed: out of memory") }
        defer { EVP_CIPHER_CTX_free(context) }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: 16)
        var length: Int32 = 0
        var total = 0
        var ok = EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1
        if !aad.isEmpty { ok = ok && EVP_EncryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1 }
        ciphertext.withUnsafeMutableBufferPointer { out in
            if !plaintext.isEmpty {
                ok = ok && EVP_EncryptUpdate(context, out.baseAddress, &length, plaintext, Int32(plaintext.count)) == 1
                total = Int(length)
            }
            ok = ok && EVP_EncryptFinal_ex(context, out.baseAddress! + total, &length) == 1
            total += Int(length)
        }
        ok = ok && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, &tag) == 1
        precondition(ok, "AES-256-GCM encryption failed")
        return (Array(ciphertext.prefix(total)), tag)
    }

    /// The plaintext, or nil when the tag does not authenticate.
    static func open(_ ciphertext: [UInt8], tag: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed: out of memory") }
        defer { EVP_CIPHER_CTX_free(context) }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var tag = tag
        var length: Int32 = 0
        var total = 0
        var ok = EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1
        if !aad.isEmpty { ok = ok && EVP_DecryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1 }
        plaintext.withUnsafeMutableBufferPointer { out in
            if !ciphertext.isEmpty {
                ok = ok && EVP_DecryptUpdate(context, out.baseAddress, &length, ciphertext, Int32(ciphertext.count)) == 1
                total = Int(length)
            }
            ok = ok && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, 16, &tag) == 1
            ok = ok && EVP_DecryptFinal_ex(context, out.baseAddress! + total, &length) == 1
            total += Int(length)
        }
        return ok ? Array(plaintext.prefix(total)) : nil
    }
}
