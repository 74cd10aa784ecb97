public import Foundation
import Chronology

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
}

extension String: Bindable, ColumnDecodable {
    public var postgresText: String? { self }
    public static var postgresType: UInt32 { 0 }
    public init?(postgresText text: String) { self = text }
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
    public var postgresText: String? { uuidString.lowercased() }
    public static var postgresType: UInt32 { 2950 }
    public init?(postgresText text: String) { self.init(uuidString: text) }
}

extension Date: Bindable, ColumnDecodable {
    public var postgresText: String? { Timestamp.format(self) }
    public static var postgresType: UInt32 { 1184 }
    public init?(postgresText text: String) {
        guard let date = Timestamp.parse(text) else { return nil }
        self = date
    }
}

extension Array: Bindable where Element == String {
    public var postgresText: String? { TextArray.format(self) }
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
}

/// `timestamptz` in the ISO style the session is set to (`timezone=UTC`, `datestyle=ISO`),
/// converted with plain calendar arithmetic: no formatter, no locale.
enum Timestamp {
    /// `2026-05-12 09:30:00.123456+00`, or with an offset such as `+05:30`.
    static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        var i = 0
        func number(_ digits: Int) -> Int? {
            guard i + digits <= b.count else { return nil }
            var value = 0
            for k in i..<(i + digits) {
                let d = Int(b[k]) - 48
                guard d >= 0 && d <= 9 else { return nil }
                value = value * 10 + d
            }
            i += digits
            return value
        }
        func expect(_ c: Unicode.Scalar) -> Bool {
            guard i < b.count, b[i] == UInt8(ascii: c) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2) else {
            return nil
        }
        guard i < b.count, b[i] == UInt8(ascii: " ") || b[i] == UInt8(ascii: "T") else { return nil }
        i += 1
        guard let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2) else {
            return nil
        }
        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
        }
        var offsetSeconds = 0
        if i < b.count, b[i] == UInt8(ascii: "Z") {
            i += 1
        } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let hours = number(2) else { return nil }
            var minutes = 0
            if expect(":") {
                guard let m = number(2) else { return nil }
                minutes = m
            }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard i == b.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        let days = CivilDate.days(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// `2026-05-12T09:30:00.123456Z`: microseconds, the server's precision.
    static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = CivilDate.date(days: Int(days))
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(Int(secondOfDay / 3600), 2)):\(pad(Int(secondOfDay % 3600 / 60), 2)):\(pad(Int(secondOfDay % 60), 2))"
            + ".\(pad(Int(fraction), 6))Z"
    }

}

/// `text[]` literals: `{a,"b c","d\"e",NULL}`.
enum TextArray {
    static func format(_ elements: [String]) -> String {
        var out = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { out += "," }
            out += "\""
            for c in element.unicodeScalars {
                if c == "\"" || c == "\\" { out += "\\" }
                out.unicodeScalars.append(c)
            }
            out += "\""
        }
        return out + "}"
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
