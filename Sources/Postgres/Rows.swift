import HeraldSupport
import Foundation
/// The rows a statement returned, copied out of libpq's result in text format.
public struct Rows: Sendable, Sequence {
    public let columns: [String]
    let values: [[String?]]
    /// Rows affected by an INSERT, UPDATE or DELETE (`PQcmdTuples`).
    public let affectedRows: Int
    let query: String

    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }
    public var first: Row? { values.isEmpty ? nil : self[0] }

    public subscript(index: Int) -> Row {
        Row(columns: columns, values: values[index], query: query)
    }

    public func makeIterator() -> some IteratorProtocol<Row> {
        var index = 0
        return AnyIterator {
            guard index < values.count else { return nil }
            defer { index += 1 }
            return self[index]
        }
    }
}

/// One row; columns are read by position or name into a `ColumnDecodable` type.
public struct Row: Sendable {
    let columns: [String]
    let values: [String?]
    let query: String

    /// How many columns the row has.
    public var columnCount: Int { values.count }

    /// The value of column `index`; NULL decodes only into an Optional.
    public func decode<T: ColumnDecodable>(_ type: T.Type, _ index: Int) throws -> T {
        guard index >= 0, index < values.count else {
            throw DatabaseError(.decoding, message: "no column at index \(index)", query: query)
        }
        guard let text = values[index] else {
            throw DatabaseError(.decoding, message: "NULL where \(T.self) was expected", query: query, column: columns[index])
        }
        guard let value = T(postgresText: text) else {
            throw DatabaseError(.decoding, message: "not a valid \(T.self)", query: query, column: columns[index])
        }
        return value
    }

    /// The value of column `index`, nil for NULL.
    public func decode<T: ColumnDecodable>(_ type: T?.Type, _ index: Int) throws -> T? {
        guard index >= 0, index < values.count else {
            throw DatabaseError(.decoding, message: "no column at index \(index)", query: query)
        }
        guard values[index] != nil else { return nil }
        return try decode(T.self, index)
    }

    /// A uuid column as lower-case text, the form an API shows and webhook headers carry.
    public func id(_ index: Int) throws -> String {
        try decode(UUID.self, index).lowercasedText
    }

    public func decode<T: ColumnDecodable>(_ type: T.Type, _ column: String) throws -> T {
        try decode(type, try index(of: column))
    }

    public func decode<T: ColumnDecodable>(_ type: T?.Type, _ column: String) throws -> T? {
        try decode(type, try index(of: column))
    }

    private func index(of column: String) throws -> Int {
        guard let index = columns.firstIndex(of: column) else {
            throw DatabaseError(.decoding, message: "no such column", query: query, column: column)
        }
        return index
    }
}
