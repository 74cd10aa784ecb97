import Glibc

/// Strings read from and compared as their UTF-8 bytes, on paths every delivery takes.
///
/// The standard library's `String(validating:as:)` is generic over the encoding and runs
/// unspecialised, asking the runtime for type metadata on every call: it cost a JSON string
/// four times its parse (counted with callgrind, `bench/run --only instructions`). Comparing
/// `utf8` views with `elementsEqual` walks them a byte at a time through an iterator.
extension String {
    /// The text these bytes spell if they are valid UTF-8; nil if they are not.
    ///
    /// Decoding repairs what is not valid UTF-8, so the bytes are valid exactly when the
    /// decoded text has the same bytes.
    package init?(validUTF8 bytes: ArraySlice<UInt8>) {
        var text = String(decoding: bytes, as: UTF8.self)
        let same = bytes.withUnsafeBufferPointer { given in
            text.withUTF8 { decoded in Self.equal(UnsafeRawBufferPointer(given), UnsafeRawBufferPointer(decoded)) }
        }
        guard same else { return nil }
        self = text
    }

    /// The text these bytes spell if they are valid UTF-8; nil if they are not.
    package init?(validUTF8 bytes: [UInt8]) {
        self.init(validUTF8: bytes[...])
    }

    /// Whether both strings have the same UTF-8 bytes: equality as PostgreSQL's `text`
    /// and HMAC see it, where `==` would also equate canonically equivalent forms.
    package func hasSameUTF8(as other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        var a = self
        var b = other
        return a.withUTF8 { x in b.withUTF8 { y in Self.equal(UnsafeRawBufferPointer(x), UnsafeRawBufferPointer(y)) } }
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let x = a.baseAddress, let y = b.baseAddress else { return true }
        return memcmp(x, y, a.count) == 0
    }
}

extension UnsafeMutableRawPointer {
    /// Copies `bytes` here and returns how many: a `memcpy` when they are contiguous (an
    /// array, a native string's UTF-8). `initializeMemory(as:from:)` walks any collection an
    /// element at a time, which was 3 % of a worker's instructions for its header lines.
    @inlinable
    package func copyBytes(of bytes: some Collection<UInt8>) -> Int {
        let copied = bytes.withContiguousStorageIfAvailable { source -> Int in
            if let start = source.baseAddress { copyMemory(from: start, byteCount: source.count) }
            return source.count
        }
        return copied ?? UnsafeMutableRawBufferPointer(start: self, count: bytes.count).initializeMemory(as: UInt8.self, from: bytes).initialized.count
    }
}
