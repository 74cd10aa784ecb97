internal import COpenSSL

/// HMAC-SHA256 and SHA-256 over OpenSSL's libcrypto.
///
/// Webhook signatures are HMACs of the raw body; receivers recompute them with the
/// standard library of their language, so the output must be byte-exact.
public enum SHA256 {
    /// Length of a SHA-256 digest in bytes.
    public static let byteCount = 32

    /// The SHA-256 digest of `data`.
    ///
    /// The generic entry points are inlinable so that callers get them specialised; the
    /// work is done once, over bytes, in this module.
    @inlinable
    public static func hash(_ data: some Collection<UInt8>) -> [UInt8] {
        data.withContiguousBytes { hash(bytes: $0) }
    }

    /// HMAC-SHA256 of `message` under `key`.
    @inlinable
    public static func hmac(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        key.withContiguousBytes { key in message.withContiguousBytes { hmac(key: key, prefix: UnsafeRawBufferPointer(start: nil, count: 0), message: $0) } }
    }

    /// HMAC-SHA256 of `prefix` followed by `message`, without joining them: a signature
    /// covers a short header (`"{id}.{seconds}."`) and the body, which is not copied.
    @inlinable
    public static func hmac(key: some Collection<UInt8>, prefix: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        key.withContiguousBytes { key in
            prefix.withContiguousBytes { prefix in message.withContiguousBytes { hmac(key: key, prefix: prefix, message: $0) } }
        }
    }

    /// Through SHA-256's own context, as the HMAC below: `EVP_Digest` fetched the algorithm
    /// from its provider and allocated a context on every call.
    @usableFromInline
    static func hash(bytes input: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: byteCount)
        digest.withUnsafeMutableBytes { hash(bytes: input, into: $0) }
        return digest
    }

    /// The digest of `input` written to the first `byteCount` bytes of `digest`: for a
    /// caller that keeps it on the stack (a delivery's id is derived from one).
    public static func hash(bytes input: UnsafeRawBufferPointer, into digest: UnsafeMutableRawBufferPointer) {
        precondition(digest.count >= byteCount, "a SHA-256 digest takes 32 bytes")
        var context = SHA256_CTX()
        herald_sha256_init(&context)
        herald_sha256_update(&context, input.baseAddress, input.count)
        herald_sha256_final(digest.baseAddress?.assumingMemoryBound(to: UInt8.self), &context)
    }

    /// RFC 2104 over SHA-256's own context: no allocation but the result, where OpenSSL 3's
    /// one-shot `HMAC` fetched the algorithm under a lock and allocated about fifteen times.
    @usableFromInline
    static func hmac(key: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> [UInt8] {
        let blockSize = 64
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: blockSize) { pad in
            defer { OPENSSL_cleanse(pad.baseAddress, blockSize) }
            // The key, hashed first when longer than a block, zero-padded to a block.
            pad.initialize(repeating: 0)
            if key.count > blockSize {
                var context = SHA256_CTX()
                defer { OPENSSL_cleanse(&context, MemoryLayout<SHA256_CTX>.size) }
                herald_sha256_init(&context)
                herald_sha256_update(&context, key.baseAddress, key.count)
                herald_sha256_final(pad.baseAddress, &context)
            } else if let base = key.baseAddress {
                pad.baseAddress!.update(from: base.assumingMemoryBound(to: UInt8.self), count: key.count)
            }
            var mac = [UInt8](repeating: 0, count: byteCount)
            mac.withUnsafeMutableBufferPointer { out in
                var context = SHA256_CTX()
                defer { OPENSSL_cleanse(&context, MemoryLayout<SHA256_CTX>.size) }
                for index in 0..<blockSize { pad[index] ^= 0x36 }
                herald_sha256_init(&context)
                herald_sha256_update(&context, pad.baseAddress, blockSize)
                herald_sha256_update(&context, prefix.baseAddress, prefix.count)
                herald_sha256_update(&context, message.baseAddress, message.count)
                herald_sha256_final(out.baseAddress, &context)
                for index in 0..<blockSize { pad[index] ^= 0x36 ^ 0x5C }
                herald_sha256_init(&context)
                herald_sha256_update(&context, pad.baseAddress, blockSize)
                herald_sha256_update(&context, out.baseAddress, byteCount)
                herald_sha256_final(out.baseAddress, &context)
            }
            return mac
        }
    }
}

extension Collection<UInt8> {
    /// Calls `body` with contiguous bytes, copying only when the collection is not contiguous.
    @inlinable
    func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let result = try self.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return try Array(self).withUnsafeBytes(body)
    }
}
