/// Why a management operation was refused; the API turns each into a problem response.
public struct ManagementError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// No such object for this tenant (foreign ids included: their existence is not revealed).
        case notFound
        /// The input is well-formed but not acceptable (policy, DPA gate).
        case invalid
        /// The object's state does not allow it now.
        case conflict
        /// The broker or database could not take the request.
        case unavailable
    }

    public let kind: Kind
    /// The input field concerned, when there is one.
    public let field: String?
    public let message: String

    public init(_ kind: Kind, field: String? = nil, _ message: String) {
        self.kind = kind
        self.field = field
        self.message = message
    }

    public var description: String { field.map { "\($0): \(message)" } ?? message }
}
