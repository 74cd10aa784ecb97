/// The characters of an HTTP token (RFC 9110, section 5.6.2): what a header name is made
/// of. Endpoint headers and inbound sources' header names are checked against it.
package enum HTTPToken {
    package static let characters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    package static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(characters.contains)
    }
}
