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
        key.withContiguousBytes { key in message.withContiguousBytes { hmac(key: key, message: $0) } }
    }

    @usableFromInline
    static func hash(bytes input: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { out in
            EVP_Digest(input.baseAddress, input.count, out.baseAddress, &length, EVP_sha256(), nil)
        }
        precondition(ok == 1 && length == byteCount, "EVP_Digest(SHA-256) failed")
        return digest
    }

    @usableFromInline
    static func hmac(key keyBytes: UnsafeRawBufferPointer, message messageBytes: UnsafeRawBufferPointer) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        let result = mac.withUnsafeMutableBufferPointer { out in
            // A zero-length buffer may have no base address; HMAC needs a valid pointer.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1) { empty in
                HMAC(
                    EVP_sha256(),
                    keyBytes.baseAddress ?? UnsafeRawPointer(empty.baseAddress!), Int32(keyBytes.count),
                    messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(empty.baseAddress!),
                    messageBytes.count,
                    out.baseAddress, &length)
            }
        }
        precondition(result != nil && length == byteCount, "HMAC-SHA256 failed")
        return mac
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
