import Foundation

/// A statement whose interpolated values are bound as parameters, never spliced:
///
///     let rows = try await connection.query("SELECT name FROM tenants WHERE id = \(id)")
///
/// sends `SELECT name FROM tenants WHERE id = $1` with `id` as parameter 1.
public struct Query: Sendable, ExpressibleByStringInterpolation {
    enum Segment: Sendable {
        case sql(String)
        case bind(Bind)
    }

    private(set) var segments: [Segment]
    /// Prepared once per connection and run from its plan afterwards (see `prepared()`).
    private(set) var isPrepared = false

    public init(stringLiteral value: String) {
        segments = [.sql(value)]
    }

    public init(stringInterpolation: StringInterpolation) {
        segments = stringInterpolation.segments
    }

    private init(segments: [Segment]) {
        self.segments = segments
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var segments: [Segment] = []

        /// Room for every piece: a literal between each two interpolations, one at each end.
        public init(literalCapacity: Int, interpolationCount: Int) {
            segments.reserveCapacity(interpolationCount * 2 + 1)
        }

        public mutating func appendLiteral(_ literal: String) {
            segments.append(.sql(literal))
        }

        /// A value, bound as the next parameter.
        public mutating func appendInterpolation(_ value: some Bindable) {
            segments.append(.bind(Bind(value)))
        }

        /// An optional value: NULL when nil.
        public mutating func appendInterpolation(_ value: (some Bindable)?) {
            segments.append(.bind(value.map(Bind.init) ?? .null))
        }

        /// A batch's column, bound as one array parameter.
        public mutating func appendInterpolation(_ column: Column) {
            segments.append(.bind(column.bind))
        }

        /// A fragment built elsewhere (e.g. `Query.values(rows)`); its placeholders are renumbered.
        public mutating func appendInterpolation(_ fragment: Query) {
            segments.append(contentsOf: fragment.segments)
        }
    }

    /// Two statements' text joined, each value still bound: for conditions built up at run time.
    public static func + (lhs: Query, rhs: Query) -> Query {
        Query(segments: lhs.segments + rhs.segments)
    }

    /// The same statement, parsed once per connection and then run from PostgreSQL's plan
    /// cache (planned once in a session with `genericPlans`): for the statements a worker
    /// runs for every batch and the API for every inbound request. Its text must not vary
    /// with the data (a batch passes each column as one array, `Column`), or every
    /// variant would hold a plan of its own.
    public func prepared() -> Query {
        var query = self
        query.isPrepared = true
        return query
    }

    /// The SQL text with `$n` placeholders, and the parameters in order.
    func render() -> (sql: String, binds: [Bind]) {
        var sql = ""
        var binds: [Bind] = []
        for segment in segments {
            switch segment {
            case .sql(let text):
                sql += text
            case .bind(let bind):
                binds.append(bind)
                sql += "$\(binds.count)"
            }
        }
        return (sql, binds)
    }

    /// The SQL text, for errors and logs.
    public var sql: String { render().sql }
}

/// A parameter in PostgreSQL's text format, or its binary format when `binary` is set, with
/// its type OID (0 lets the server infer it).
struct Bind: Sendable {
    var text: String?
    var binary: [UInt8]?
    var oid: UInt32

    static let null = Bind(text: nil, oid: 0)

    init(text: String?, oid: UInt32) {
        self.text = text
        self.oid = oid
    }

    init(binary: [UInt8], oid: UInt32) {
        self.binary = binary
        self.oid = oid
    }

    /// Whether the text holds a NUL byte, found with `memchr` on its UTF-8.
    var hasNUL: Bool {
        guard let text else { return false }
        return text.utf8.withContiguousStorageIfAvailable { utf8 in utf8.baseAddress.map { memchr($0, 0, utf8.count) != nil } ?? false }
            ?? text.utf8.contains(0)
    }

    init(_ value: some Bindable) {
        self.init(text: value.postgresText, oid: type(of: value).postgresType)
    }
}
