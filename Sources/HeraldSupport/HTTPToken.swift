/// The characters of an HTTP token (RFC 9110, section 5.6.2): what a header name is made
/// of. Endpoint headers and inbound sources' header names are checked against it.
package enum HTTPToken {
    package static let characters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    /// One flag per byte value: every header of every request is checked, and a lookup in
    /// `characters` hashed each byte.
    private static let table: [Bool] = (0...255).map { characters.contains(UInt8($0)) }

    /// Whether two header names are the same name: ASCII letters match in either case
    /// (RFC 9110, section 5.1), every other byte only itself. Foundation's
    /// case-insensitive compare would fold other scripts too, through `NSString`.
    package static func equalIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { x, y in
            x == y || (x | 0x20 == y | 0x20 && (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(x | 0x20))
        }
    }

    package static func isToken(_ text: String) -> Bool {
        var text = text
        return !text.isEmpty && table.withUnsafeBufferPointer { table in text.withUTF8 { $0.allSatisfy { table[Int($0)] } } }
    }
}
