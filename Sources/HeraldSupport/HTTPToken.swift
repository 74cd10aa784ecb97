/// The characters of an HTTP token (RFC 9110, section 5.6.2): what a header name is made
/// of. Endpoint headers and inbound sources' header names are checked against it.
package enum HTTPToken {
    package static let characters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    /// One flag per byte value: every header of every request is checked, and a lookup in
    /// `characters` hashed each byte.
    private static let table: [Bool] = (0...255).map { characters.contains(UInt8($0)) }

    package static func isToken(_ text: String) -> Bool {
        var text = text
        return !text.isEmpty && table.withUnsafeBufferPointer { table in text.withUTF8 { $0.allSatisfy { table[Int($0)] } } }
    }
}
