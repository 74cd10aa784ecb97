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

        public init(literalCapacity: Int, interpolationCount: Int) {}

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

        /// A fragment built elsewhere (e.g. `Query.values(rows)`); its placeholders are renumbered.
        public mutating func appendInterpolation(_ fragment: Query) {
            segments.append(contentsOf: fragment.segments)
        }
    }

    /// Two statements' text joined, each value still bound: for conditions built up at run time.
    public static func + (lhs: Query, rhs: Query) -> Query {
        Query(segments: lhs.segments + rhs.segments)
    }

    /// `($1, $2), ($3, $4), …` for a multi-row `INSERT … VALUES \(Query.values(rows))`:
    /// a batch in one round trip, every value still bound.
    public static func values(_ rows: [[any Bindable]]) -> Query {
        var segments: [Segment] = []
        for (rowIndex, row) in rows.enumerated() {
            segments.append(.sql(rowIndex == 0 ? "(" : ", ("))
            for (columnIndex, value) in row.enumerated() {
                if columnIndex > 0 { segments.append(.sql(", ")) }
                segments.append(.bind(Bind(value)))
            }
            segments.append(.sql(")"))
        }
        return Query(segments: segments)
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

/// A parameter in PostgreSQL's text format, with its type OID (0 lets the server infer it).
struct Bind: Sendable {
    var text: String?
    var oid: UInt32

    static let null = Bind(text: nil, oid: 0)

    init(text: String?, oid: UInt32) {
        self.text = text
        self.oid = oid
    }

    init(_ value: some Bindable) {
        self.init(text: value.postgresText, oid: type(of: value).postgresType)
    }

    init(_ value: any Bindable) {
        self.init(text: value.postgresText, oid: type(of: value).postgresType)
    }
}
