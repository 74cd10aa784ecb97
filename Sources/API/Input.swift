import HeraldEvents
import Foundation
import Hummingbird

/// A JSON request body read strictly: every field is checked for its type, and any
/// field the route does not know is a 400 naming it.
struct Input {
    private let object: [String: Any]
    /// The body as it came, for a value that must be kept byte for byte.
    private let bytes: [UInt8]
    private var used: Set<String> = []

    /// Reads the body (at most the context's upload size) as a JSON object.
    static func read(_ request: Request, context: APIContext) async throws -> Input {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch {
            throw Problem(.contentTooLarge, "the body is larger than \(context.maxUploadSize) bytes")
        }
        if buffer.readableBytes == 0 { return Input(object: [:], bytes: []) }
        let bytes = Array(buffer.readableBytesView)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw Problem(.badRequest, "the body must be a JSON object")
        }
        return Input(object: object, bytes: bytes)
    }

    /// The body as a JSON object, for a reader that checks its fields itself.
    static func readObject(_ request: Request, context: APIContext) async throws -> [String: Any] {
        try await read(request, context: context).object
    }

    init(object: [String: Any], bytes: [UInt8] = []) {
        self.object = object
        self.bytes = bytes
    }

    /// An object field's JSON exactly as the body spells it (key order, number forms,
    /// escapes), after checking that it is an object; nil when absent.
    mutating func verbatimObject(_ field: String) throws -> [UInt8]? {
        guard try object(field) != nil else { return nil }
        guard let range = JSONText.topLevelValue(named: field, in: bytes) else {
            // Spelled with escapes in its key: JSONSerialization found it, the scanner did not.
            throw Problem.badRequest(field, "must be spelled plainly as a key")
        }
        return Array(bytes[range])
    }

    /// Fails on any field that was not read.
    func rejectUnknown() throws {
        if let unknown = object.keys.sorted().first(where: { !used.contains($0) }) {
            throw Problem.badRequest(unknown, "is not a known field")
        }
    }

    /// The field's value; nil when absent. No field of the API is nullable: `null` is
    /// refused rather than read as absent, as the schema says.
    private mutating func raw(_ field: String) throws -> Any? {
        used.insert(field)
        guard let value = object[field] else { return nil }
        guard !(value is NSNull) else { throw Problem.badRequest(field, "must not be null; leave it out instead") }
        return value
    }

    /// A string PostgreSQL can store: no NUL, at most `maxLength` characters counted as
    /// the database counts them (code points, not grapheme clusters).
    static func checked(_ text: String, _ field: String, maxLength: Int) throws -> String {
        guard text.unicodeScalars.count <= maxLength else { throw Problem.badRequest(field, "must be at most \(maxLength) characters") }
        guard !text.utf8.contains(0) else { throw Problem.badRequest(field, "must not contain NUL characters") }
        return text
    }

    mutating func string(_ field: String, maxLength: Int = 2048) throws -> String? {
        guard let value = try raw(field) else { return nil }
        guard let text = value as? String else { throw Problem.badRequest(field, "must be a string") }
        return try Self.checked(text, field, maxLength: maxLength)
    }

    mutating func bool(_ field: String) throws -> Bool? {
        guard let value = try raw(field) else { return nil }
        // JSONSerialization gives booleans as NSNumber of ObjC type "c"; 0 and 1 are not booleans.
        guard let number = value as? NSNumber, String(cString: number.objCType) == "c" else {
            throw Problem.badRequest(field, "must be true or false")
        }
        return number.boolValue
    }

    mutating func integer(_ field: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let value = try raw(field) else { return nil }
        guard let number = value as? NSNumber, !(String(cString: number.objCType) == "c"), number.doubleValue == Double(number.intValue),
            range.contains(number.intValue)
        else { throw Problem.badRequest(field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return number.intValue
    }

    mutating func strings(_ field: String, maxCount: Int = 100) throws -> [String]? {
        guard let value = try raw(field) else { return nil }
        guard let array = value as? [Any], array.count <= maxCount, let strings = array as? [String] else {
            throw Problem.badRequest(field, "must be an array of at most \(maxCount) strings")
        }
        return try strings.map { try Self.checked($0, field, maxLength: 2048) }
    }

    mutating func stringMap(_ field: String) throws -> [String: String]? {
        guard let value = try raw(field) else { return nil }
        guard let map = value as? [String: Any], map.count <= 50, let strings = map as? [String: String] else {
            throw Problem.badRequest(field, "must be an object of at most 50 string values")
        }
        for (key, value) in strings {
            _ = try Self.checked(key, field, maxLength: 2048)
            _ = try Self.checked(value, "\(field).\(key)", maxLength: 2048)
        }
        return strings
    }

    mutating func stringListMap(_ field: String) throws -> [String: [String]]? {
        guard let value = try raw(field) else { return nil }
        guard let map = value as? [String: Any], map.count <= 20, let lists = map as? [String: [String]] else {
            throw Problem.badRequest(field, "must be an object whose values are arrays of strings")
        }
        for (key, values) in lists {
            _ = try Self.checked(key, field, maxLength: 2048)
            for value in values { _ = try Self.checked(value, "\(field).\(key)", maxLength: 2048) }
        }
        return lists
    }

    /// The raw JSON object of `field`, re-serialised.
    mutating func object(_ field: String) throws -> [String: Any]? {
        guard let value = try raw(field) else { return nil }
        guard let object = value as? [String: Any] else { throw Problem.badRequest(field, "must be a JSON object") }
        return object
    }
}
