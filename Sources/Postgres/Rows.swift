import HeraldSupport
import Foundation

/// The rows a statement returned, copied out of libpq's result in text format.
///
/// Every value's bytes sit in one buffer that the rows share, and a value is decoded from
/// its bytes: a result costs a few allocations however many values it holds, and an
/// identifier is parsed without a String in between (a worker reads several per delivery).
public struct Rows: Sendable, Sequence {
    @usableFromInline let values: ResultValues
    /// Rows affected by an INSERT, UPDATE or DELETE (`PQcmdTuples`).
    public let affectedRows: Int

    init(_ values: ResultValues, affectedRows: Int) {
        self.values = values
        self.affectedRows = affectedRows
    }

    public var columns: [String] { values.columns }
    public var count: Int { values.rowCount }
    public var isEmpty: Bool { values.rowCount == 0 }
    public var first: Row? { isEmpty ? nil : self[0] }

    public subscript(index: Int) -> Row {
        precondition(index >= 0 && index < values.rowCount, "row \(index) of \(values.rowCount)")
        return Row(values: values, first: index * values.columns.count)
    }

    public func makeIterator() -> Iterator {
        Iterator(rows: self)
    }

    /// The rows in order.
    public struct Iterator: IteratorProtocol {
        let rows: Rows
        var index = 0

        public mutating func next() -> Row? {
            guard index < rows.count else { return nil }
            defer { index += 1 }
            return rows[index]
        }
    }
}

/// One row; columns are read by position or name into a `ColumnDecodable` type.
///
/// The decoding methods are inlinable so that callers in other modules get them
/// specialised: run generically, each call looked up its type's metadata.
public struct Row: Sendable {
    @usableFromInline let values: ResultValues
    /// The position of the row's first value in `values.spans`.
    @usableFromInline let first: Int

    init(values: ResultValues, first: Int) {
        self.values = values
        self.first = first
    }

    /// How many columns the row has.
    public var columnCount: Int { values.columns.count }

    /// The value of column `index`; NULL decodes only into an Optional.
    @inlinable
    public func decode<T: ColumnDecodable>(_ type: T.Type, _ index: Int) throws -> T {
        guard let span = try span(index) else { throw values.error("NULL where \(T.self) was expected", column: index) }
        let decoded = values.bytes.withUnsafeBufferPointer {
            T(postgresBytes: UnsafeBufferPointer(rebasing: $0[span.start..<span.start + span.length]))
        }
        guard let decoded else { throw values.error("not a valid \(T.self)", column: index) }
        return decoded
    }

    /// The value of column `index`, nil for NULL.
    @inlinable
    public func decode<T: ColumnDecodable>(_ type: T?.Type, _ index: Int) throws -> T? {
        guard try span(index) != nil else { return nil }
        return try decode(T.self, index)
    }

    /// A uuid column as lower-case text, the form an API shows and webhook headers carry.
    public func id(_ index: Int) throws -> String {
        try decode(UUID.self, index).lowercasedText
    }

    @inlinable
    public func decode<T: ColumnDecodable>(_ type: T.Type, _ column: String) throws -> T {
        try decode(type, try values.index(of: column))
    }

    @inlinable
    public func decode<T: ColumnDecodable>(_ type: T?.Type, _ column: String) throws -> T? {
        try decode(type, try values.index(of: column))
    }

    /// Where column `index`'s bytes are; nil for NULL.
    @inlinable
    func span(_ index: Int) throws -> ResultValues.Span? {
        guard index >= 0, index < values.columns.count else {
            throw DatabaseError(.decoding, message: "no column at index \(index)", query: values.query)
        }
        let span = values.spans[first + index]
        return span.length < 0 ? nil : span
    }
}

/// A result's values, shared by its rows.
@usableFromInline
final class ResultValues: Sendable {
    /// Where a value is in `bytes`; a negative length for NULL.
    @usableFromInline
    struct Span: Sendable {
        @usableFromInline let start: Int
        @usableFromInline let length: Int
    }

    @usableFromInline let columns: [String]
    let rowCount: Int
    /// Every value's bytes, one after another, row by row.
    @usableFromInline let bytes: [UInt8]
    /// One per value, row by row.
    @usableFromInline let spans: [Span]
    /// The statement, for errors.
    @usableFromInline let query: String

    init(columns: [String], rowCount: Int, bytes: [UInt8], spans: [Span], query: String) {
        self.columns = columns
        self.rowCount = rowCount
        self.bytes = bytes
        self.spans = spans
        self.query = query
    }

    @usableFromInline
    func index(of column: String) throws -> Int {
        guard let index = columns.firstIndex(of: column) else {
            throw DatabaseError(.decoding, message: "no such column", query: query, column: column)
        }
        return index
    }

    @usableFromInline
    func error(_ message: String, column: Int) -> DatabaseError {
        DatabaseError(.decoding, message: message, query: query, column: columns[column])
    }
}
