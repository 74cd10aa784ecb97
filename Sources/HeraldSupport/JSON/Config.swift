import Foundation

/// A configuration value as the API shows it and the database keeps it (`jsonb`).
package enum ConfigValue: Sendable, Equatable, Encodable {
    case string(String)
    case int(Int)
    case object([String: ConfigValue])

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .int(let number): try container.encode(number)
        case .object(let members): try container.encode(members)
        }
    }

    /// The JSON text, keys sorted: what is stored.
    package static func text(_ object: [String: ConfigValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(object)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// A stored object read back; nil for text that is not a JSON object.
    package static func object(_ text: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    }
}

/// Reads a configuration object strictly: each field type-checked, unknown fields
/// refused, every error naming the field by its path (`verification.header`).
package struct ConfigReader {
    let object: [String: Any]
    let path: String
    private var used: Set<String> = []

    package init(_ value: Any, path: String) throws(ParseFailure) {
        guard let object = value as? [String: Any] else { throw ParseFailure(field: path, "must be a JSON object") }
        self.object = object
        self.path = path
    }

    package func field(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    /// A field's raw value, `NSNull` when it is `null`; nil when absent.
    package mutating func value(_ name: String) -> Any? {
        used.insert(name)
        return object[name]
    }

    package mutating func string(_ name: String, maxLength: Int = 200) throws(ParseFailure) -> String? {
        used.insert(name)
        guard let value = object[name], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw ParseFailure(field: field(name), "must be a string") }
        guard text.unicodeScalars.count <= maxLength, !text.utf8.contains(0) else {
            throw ParseFailure(field: field(name), "must be at most \(maxLength) characters, without NUL")
        }
        return text
    }

    package mutating func required(_ name: String, maxLength: Int = 200) throws(ParseFailure) -> String {
        guard let text = try string(name, maxLength: maxLength), !text.isEmpty else { throw ParseFailure(field: field(name), "is required") }
        return text
    }

    package mutating func integer(_ name: String, _ range: ClosedRange<Int>) throws(ParseFailure) -> Int? {
        used.insert(name)
        guard let value = object[name], !(value is NSNull) else { return nil }
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c", number.doubleValue == Double(number.intValue),
            range.contains(number.intValue)
        else { throw ParseFailure(field: field(name), "must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return number.intValue
    }

    package mutating func stringMap(_ name: String, maxCount: Int = 200) throws(ParseFailure) -> [String: String]? {
        used.insert(name)
        guard let value = object[name], !(value is NSNull) else { return nil }
        guard let map = value as? [String: Any], map.count <= maxCount, let strings = map as? [String: String],
            strings.allSatisfy({ $0.key.unicodeScalars.count <= 200 && $0.value.unicodeScalars.count <= 200 }),
            strings.allSatisfy({ !$0.key.utf8.contains(0) && !$0.value.utf8.contains(0) })
        else { throw ParseFailure(field: field(name), "must be an object of at most \(maxCount) strings of at most 200 characters") }
        return strings
    }

    package mutating func path(_ name: String) throws(ParseFailure) -> JSONPath? {
        guard let text = try string(name) else { return nil }
        guard let path = JSONPath(text) else {
            throw ParseFailure(field: field(name), "'\(text.prefix(100))' is not a path like $.data.object.id or items[0].name")
        }
        return path
    }

    /// An HTTP header name (an RFC 9110 token).
    package mutating func headerName(_ name: String) throws(ParseFailure) -> String? {
        guard let text = try string(name, maxLength: 100) else { return nil }
        guard HTTPToken.isToken(text) else {
            throw ParseFailure(field: field(name), "'\(text)' is not a header name (letters, digits and !#$%&'*+-.^_`|~)")
        }
        return text
    }

    package func rejectUnknown() throws(ParseFailure) {
        if let unknown = object.keys.sorted().first(where: { !used.contains($0) }) {
            throw ParseFailure(field: field(unknown), "is not a known field")
        }
    }
}

/// What could not be read or mapped, and where: the field (a JSON path, a form field, a
/// header) and what was wrong with it. Shown to the tenant beside the stored webhook.
package struct ParseFailure: Error, Sendable, Equatable, CustomStringConvertible {
    package var field: String?
    package var reason: String

    package init(field: String?, _ reason: String) {
        self.field = field
        self.reason = reason
    }

    package var description: String { field.map { "\($0): \(reason)" } ?? reason }
}
