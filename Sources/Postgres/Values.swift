public import Foundation
import HeraldSupport

/// A Swift value that can be sent as a statement parameter, in PostgreSQL's text format.
public protocol Bindable: Sendable {
    /// The text form; nil sends NULL.
    var postgresText: String? { get }
    /// The parameter's type OID; 0 lets the server infer it from context.
    static var postgresType: UInt32 { get }
}

/// A Swift value that can be read from a column in PostgreSQL's text format.
public protocol ColumnDecodable: Sendable {
    /// nil when `text` is not a valid value of this type.
    init?(postgresText text: String)
    /// The same from the text's UTF-8 bytes, as a result holds them; by default through a
    /// String. Types whose text is long (identifiers, instants) read the bytes themselves.
    init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>)
}

extension ColumnDecodable {
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) {
        self.init(postgresText: String(decoding: bytes, as: UTF8.self))
    }
}

extension String: Bindable, ColumnDecodable {
    public var postgresText: String? { self }
    public static var postgresType: UInt32 { 0 }
    public init?(postgresText text: String) { self = text }
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) { self.init(decoding: bytes, as: UTF8.self) }
}

extension Int: Bindable, ColumnDecodable {
    public var postgresText: String? { String(self) }
    public static var postgresType: UInt32 { 20 }
    public init?(postgresText text: String) { self.init(text) }
}

extension Int64: Bindable, ColumnDecodable {
    public var postgresText: String? { String(self) }
    public static var postgresType: UInt32 { 20 }
    public init?(postgresText text: String) { self.init(text) }
}

extension Int32: Bindable, ColumnDecodable {
    public var postgresText: String? { String(self) }
    public static var postgresType: UInt32 { 23 }
    public init?(postgresText text: String) { self.init(text) }
}

extension ColumnDecodable where Self: FixedWidthInteger & SignedInteger {
    /// A decimal integer read from its text's bytes without a String in between (a
    /// delivery's rows carry several): what `Self(String)` accepts — a sign, then digits —
    /// and nil otherwise or when it does not fit.
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) {
        guard let first = bytes.first else { return nil }
        let negative = first == UInt8(ascii: "-")
        var index = negative || first == UInt8(ascii: "+") ? 1 : 0
        guard index < bytes.count else { return nil }
        var value: Self = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            // Built on the side of the sign, so that the most negative value fits too.
            let (next, overflowedAgain) =
                negative ? shifted.subtractingReportingOverflow(Self(digit)) : shifted.addingReportingOverflow(Self(digit))
            guard !overflowed, !overflowedAgain else { return nil }
            value = next
            index += 1
        }
        self = value
    }
}

extension Double: Bindable, ColumnDecodable {
    public var postgresText: String? { "\(self)" }
    public static var postgresType: UInt32 { 701 }
    public init?(postgresText text: String) { self.init(text) }
}

extension Bool: Bindable, ColumnDecodable {
    public var postgresText: String? { self ? "t" : "f" }
    public static var postgresType: UInt32 { 16 }
    public init?(postgresText text: String) {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension UUID: Bindable, ColumnDecodable {
    public var postgresText: String? { lowercasedText }
    public static var postgresType: UInt32 { 2950 }
    public init?(postgresText text: String) { self.init(text: text) }
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) { self.init(utf8: bytes) }
}

extension Date: Bindable, ColumnDecodable {
    /// Microseconds, the server's precision; the session is set to `timezone=UTC`, `datestyle=ISO`.
    public var postgresText: String? { RFC3339.format(self, fractionDigits: 6) }
    public static var postgresType: UInt32 { 1184 }
    public init?(postgresText text: String) {
        guard let date = RFC3339.parse(text) else { return nil }
        self = date
    }
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) {
        guard let date = RFC3339.parse(bytes: bytes) else { return nil }
        self = date
    }
}

extension Array: Bindable where Element == String {
    public var postgresText: String? { TextArray.literal(lazy.map { Optional($0) }) }
    public static var postgresType: UInt32 { 1009 }
}

extension Array: ColumnDecodable where Element == String {
    public init?(postgresText text: String) {
        guard let elements = TextArray.parse(text) else { return nil }
        self = elements
    }
}

extension Optional: Bindable where Wrapped: Bindable {
    public var postgresText: String? { self?.postgresText }
    public static var postgresType: UInt32 { Wrapped.postgresType }
}

/// A `json` parameter: the exact text is stored (unlike `jsonb`), which is what gets signed.
public struct JSON: Bindable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init(bytes: some Collection<UInt8>) { self.text = String(decoding: bytes, as: UTF8.self) }
    public var postgresText: String? { text }
    public static var postgresType: UInt32 { 114 }
}

/// A `jsonb` value as its JSON text; the caller encodes and decodes the document.
public struct JSONB: Bindable, ColumnDecodable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init(bytes: some Collection<UInt8>) { self.text = String(decoding: bytes, as: UTF8.self) }
    public var postgresText: String? { text }
    public static var postgresType: UInt32 { 3802 }
    public init?(postgresText text: String) { self.text = text }
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) { self.text = String(decoding: bytes, as: UTF8.self) }
}

/// A `bytea` value: bytes kept exactly, sent and read in the hex format (`\\x…`).
public struct Bytea: Bindable, ColumnDecodable, Hashable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var postgresText: String? {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        text[0] = UInt8(ascii: "\\")
        text[1] = UInt8(ascii: "x")
        for (index, byte) in bytes.enumerated() {
            text[2 + index * 2] = digits[Int(byte >> 4)]
            text[3 + index * 2] = digits[Int(byte & 0x0F)]
        }
        return String(decoding: text, as: UTF8.self)
    }
    public static var postgresType: UInt32 { 17 }

    public init?(postgresText text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var index = 2
        while index < utf8.count {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.bytes = bytes
    }
}

/// One column of a batch, sent as a single array parameter that the statement casts and
/// unnests (`SELECT * FROM unnest(\(ids)::uuid[], \(names)::text[])`): the statement's text,
/// and so its prepared plan, is the same for one row or a thousand, and no batch comes
/// near PostgreSQL's 65,535 parameters.
public struct Column: Sendable {
    let bind: Bind

    /// Values in an array literal; the cast in the statement names its type. A loop, not
    /// `lazy.map(\.postgresText)`: called from another module this init runs unspecialised,
    /// and a key path there is looked up for every element.
    public init<Value: Bindable>(_ values: [Value]) {
        var literal = TextArray.Literal()
        for value in values { literal.append(value.postgresText) }
        bind = Bind(text: literal.text, oid: 0)
    }

    /// JSON documents as a `json[]` in PostgreSQL's binary array format: each document's
    /// bytes go into one buffer as they are, neither escaped nor copied again on the way
    /// (event data is most of a batch's bytes). The server still checks each document.
    public init<Bytes: Collection<UInt8>>(json values: [Bytes]) {
        var array = BinaryArray(elementType: 114, count: values.count, payload: values.reduce(0) { $0 + $1.count })
        for value in values { array.element(value) }
        bind = Bind(binary: array.bytes, oid: 199)
    }

    /// Optional JSON documents as a `json[]`, nil as NULL.
    public init<Bytes: Collection<UInt8>>(json values: [Bytes?]) {
        self.init(optional: values, elementType: 114, arrayType: 199)
    }

    /// Byte strings as a binary `bytea[]`, nil as NULL: bodies go as they are, not as
    /// hexadecimal text twice their size for the server to decode.
    public init(bytes values: [[UInt8]?]) {
        self.init(optional: values, elementType: 17, arrayType: 1001)
    }

    /// Elements of any length as they are, nil as NULL.
    private init<Bytes: Collection<UInt8>>(optional values: [Bytes?], elementType: UInt32, arrayType: UInt32) {
        var array = BinaryArray(elementType: elementType, count: values.count, payload: values.reduce(0) { $0 + ($1?.count ?? 0) })
        for value in values {
            if let value { array.element(value) } else { array.null() }
        }
        bind = Bind(binary: array.bytes, oid: arrayType)
    }

    /// Identifiers as a binary `uuid[]`: sixteen bytes each, no text to write on this side
    /// or to parse on the server's (a batch carries three or four of these columns).
    public init(_ values: [UUID?]) {
        self.init(binary: values, elementType: 2950, arrayType: 2951, width: 16) { value, array in
            withUnsafeBytes(of: value.uuid) { array.element($0) }
        }
    }

    public init(_ values: [UUID]) {
        self.init(values.map(Optional.some))
    }

    /// Instants as a binary `timestamptz[]`: microseconds since 2000-01-01 UTC, the
    /// instant `Date.postgresText` writes, without formatting it.
    public init(_ values: [Date?]) {
        self.init(binary: values, elementType: 1184, arrayType: 1185, width: 8) { value, array in
            let micros = RFC3339.microseconds(value) - 946_684_800_000_000
            withUnsafeBytes(of: micros.bigEndian) { array.element($0) }
        }
    }

    public init(_ values: [Date]) {
        self.init(values.map(Optional.some))
    }

    private init<Value>(
        binary values: [Value?], elementType: UInt32, arrayType: UInt32, width: Int, append: (Value, inout BinaryArray) -> Void
    ) {
        var array = BinaryArray(elementType: elementType, count: values.count, payload: values.count * width)
        for value in values {
            if let value { append(value, &array) } else { array.null() }
        }
        bind = Bind(binary: array.bytes, oid: arrayType)
    }
}

/// PostgreSQL's binary array format (`array_send`), one dimension: a header, then each
/// element's length and bytes (length -1 for NULL).
struct BinaryArray {
    private(set) var bytes: [UInt8] = []

    init(elementType: UInt32, count: Int, payload: Int) {
        bytes.reserveCapacity(20 + 4 * count + payload)
        // Dimensions (none for an empty array), a "has NULLs" flag the server does not
        // need, the element type; then the one dimension's length and lower bound.
        append(count == 0 ? 0 : 1)
        append(0)
        append(elementType)
        if count > 0 {
            append(UInt32(count))
            append(1)
        }
    }

    mutating func element(_ value: some Collection<UInt8>) {
        append(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func null() {
        append(UInt32(bitPattern: -1))
    }

    private mutating func append(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}

/// `text[]` literals: `{a,"b c","d\"e",NULL}`.
enum TextArray {
    /// Any array's literal from its elements' text forms, each quoted; nil is NULL.
    static func literal(_ elements: some Sequence<String?>) -> String {
        var literal = Literal()
        for element in elements { literal.append(element) }
        return literal.text
    }

    /// A literal written one element at a time.
    struct Literal {
        private var out: [UInt8] = [UInt8(ascii: "{")]

        mutating func append(_ element: String?) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            guard let element else {
                out += "NULL".utf8
                return
            }
            out.append(UInt8(ascii: "\""))
            var text = element
            text.withUTF8 { bytes in
                // Ids, types and statuses hold nothing to escape: copied whole.
                guard bytes.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                    out.append(contentsOf: bytes)
                    return
                }
                for byte in bytes {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                    out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }

        var text: String {
            String(decoding: out + [UInt8(ascii: "}")], as: UTF8.self)
        }
    }

    /// nil for a malformed literal, a NULL element or a nested array.
    static func parse(_ text: String) -> [String]? {
        let s = Array(text.unicodeScalars)
        guard s.count >= 2, s.first == "{", s.last == "}" else { return nil }
        var elements: [String] = []
        var i = 1
        let end = s.count - 1
        if i == end { return [] }
        while i < end {
            var element = String.UnicodeScalarView()
            if s[i] == "\"" {
                i += 1
                while i < end, s[i] != "\"" {
                    if s[i] == "\\" { i += 1 }
                    guard i < end else { return nil }
                    element.append(s[i])
                    i += 1
                }
                guard i < end else { return nil }
                i += 1
                elements.append(String(element))
            } else {
                while i < end, s[i] != "," {
                    guard s[i] != "{", s[i] != "\"" else { return nil }
                    element.append(s[i])
                    i += 1
                }
                let bare = String(element)
                guard !bare.isEmpty, bare.uppercased() != "NULL" else { return nil }
                elements.append(bare)
            }
            if i < end {
                guard s[i] == "," else { return nil }
                i += 1
                guard i < end else { return nil }
            }
        }
        return elements
    }
}
