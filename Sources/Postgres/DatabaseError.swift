/// What went wrong talking to PostgreSQL, with enough context to act on and
/// nothing that could be a secret or a payload: the SQL text (values are always
/// bound, never part of it), the server's SQLSTATE, primary message and constraint.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    /// An opaque category, stable for callers to branch on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The URL could not be parsed or names an unsupported scheme.
        public static let invalidURL = Code("invalidURL")
        /// The server could not be reached or refused the session.
        public static let connectionFailed = Code("connectionFailed")
        /// The connection broke while in use (server restart, network).
        public static let connectionLost = Code("connectionLost")
        /// The server rejected a statement; see `sqlState`.
        public static let server = Code("server")
        /// A value could not be sent (e.g. a NUL byte in text).
        public static let encoding = Code("encoding")
        /// A column could not be read as the requested Swift type.
        public static let decoding = Code("decoding")
        /// The pool was shut down.
        public static let poolClosed = Code("poolClosed")
    }

    /// The statement failed for what it was given (a data exception or an integrity
    /// violation, SQLSTATE classes 22 and 23, or a value that cannot be sent): trying
    /// again will fail the same way.
    public var refusesData: Bool {
        code == .encoding || (code == .server && (sqlState?.hasPrefix("22") == true || sqlState?.hasPrefix("23") == true))
    }

    public var code: Code
    /// Five-character SQLSTATE from the server, e.g. `23505` for a unique violation.
    public var sqlState: String?
    /// The server's or libpq's primary message.
    public var message: String?
    /// The constraint a violation concerns, when the server names one.
    public var constraint: String?
    /// The SQL text (with `$n` placeholders) of the failing statement.
    public var query: String?
    /// The column that failed to decode.
    public var column: String?

    public init(
        _ code: Code, sqlState: String? = nil, message: String? = nil, constraint: String? = nil,
        query: String? = nil, column: String? = nil
    ) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.constraint = constraint
        self.query = query
        self.column = column
    }

    /// SQLSTATE 23505.
    public var isUniqueViolation: Bool { sqlState == "23505" }

    public var description: String {
        var parts = ["database error \(code)"]
        if let sqlState { parts.append("sqlstate=\(sqlState)") }
        if let message { parts.append("message=\(message)") }
        if let constraint { parts.append("constraint=\(constraint)") }
        if let column { parts.append("column=\(column)") }
        if let query { parts.append("query=\(query.prefix(200))") }
        return parts.joined(separator: " ")
    }
}
