import Foundation
import HeraldEvents
package import HeraldSupport

/// An inbound body as JSON, whatever form it came in: a JSON body as sent, a form's fields
/// as an object of strings (a repeated field as an array), so one mapping reads both.
package struct ParsedBody: Sendable {
    /// The JSON text: the body itself when it was JSON.
    package var json: [UInt8]
    package var root: JSONNode
}

package enum BodyFormat: Sendable, Equatable {
    case json
    case form
    case multipart(boundary: String)

    /// The format of a `Content-Type`; nil for one Herald does not read.
    package init?(contentType: String) {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let media = parts.first?.lowercased() else { return nil }
        switch media {
        case "application/json": self = .json
        case "application/x-www-form-urlencoded": self = .form
        case "multipart/form-data":
            guard let boundary = Self.parameter("boundary", in: parts.dropFirst()), !boundary.isEmpty, boundary.utf8.count <= 70 else {
                return nil
            }
            self = .multipart(boundary: boundary)
        default:
            // application/cloudevents+json, application/vnd.foo+json: JSON too.
            guard media.hasPrefix("application/"), media.hasSuffix("+json") else { return nil }
            self = .json
        }
    }

    static func parameter(_ name: String, in parts: some Sequence<String>) -> String? {
        for part in parts {
            guard let equals = part.firstIndex(of: "=") else { continue }
            guard part[..<equals].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var value = part[part.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    /// Checks the body without keeping a tree: what a source needs that reads nothing in it.
    package func check(_ bytes: [UInt8]) throws(ParseFailure) {
        guard self == .json else {
            _ = try parse(bytes)
            return
        }
        do {
            try JSONTree.check(bytes)
        } catch {
            throw ParseFailure(field: nil, error.description)
        }
    }

    /// Form fields a body may have; more is refused rather than held.
    package static let maxFields = 10_000

    package func parse(_ bytes: [UInt8], maxDepth: Int = JSONTree.defaultMaxDepth) throws(ParseFailure) -> ParsedBody {
        switch self {
        case .json:
            do {
                return ParsedBody(json: bytes, root: try JSONTree.parse(bytes, maxDepth: maxDepth))
            } catch {
                throw ParseFailure(field: nil, error.description)
            }
        case .form:
            // Pair by pair, counted as it goes: a body of a million empty fields is refused
            // after ten thousand, never split whole.
            var fields: [(String, String)] = []
            var start = 0
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.count
                defer { start = end + 1 }
                guard end > start else { continue }
                let pair = bytes[start..<end]
                let equals = pair.firstIndex(of: UInt8(ascii: "="))
                guard let name = Self.percentDecoded(pair[..<(equals ?? end)]) else {
                    throw ParseFailure(field: nil, "a form field name is not valid percent-encoded UTF-8")
                }
                guard let value = Self.percentDecoded(equals.map { pair[($0 + 1)...] } ?? []) else {
                    throw ParseFailure(field: name, "the value is not valid percent-encoded UTF-8")
                }
                guard fields.count < Self.maxFields else { throw ParseFailure(field: nil, "more than \(Self.maxFields) form fields") }
                fields.append((name, value))
            }
            return try Self.object(of: fields)
        case .multipart(let boundary):
            return try Self.object(of: try Self.multipartFields(bytes, boundary: boundary))
        }
    }

    /// Fields as a JSON object of strings; a name given more than once holds an array.
    static func object(of fields: [(String, String)]) throws(ParseFailure) -> ParsedBody {
        // Each name once, in the order first seen, with all its values.
        var grouped: [(name: String, values: [String])] = []
        var position: [String: Int] = [:]
        for (name, value) in fields {
            guard !name.isEmpty else { throw ParseFailure(field: nil, "a form field has no name") }
            if let index = position[name] {
                grouped[index].values.append(value)
            } else {
                position[name] = grouped.count
                grouped.append((name, [value]))
            }
        }
        var json: [UInt8] = [UInt8(ascii: "{")]
        for (index, field) in grouped.enumerated() {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            json += JSONText.string(field.name) + [UInt8(ascii: ":")]
            if field.values.count == 1 {
                json += JSONText.string(field.values[0])
            } else {
                json.append(UInt8(ascii: "["))
                json += field.values.map(JSONText.string).joined(separator: [UInt8(ascii: ",")])
                json.append(UInt8(ascii: "]"))
            }
        }
        json.append(UInt8(ascii: "}"))
        do {
            return ParsedBody(json: json, root: try JSONTree.parse(json))
        } catch {
            throw ParseFailure(field: nil, "the form could not be read as fields")
        }
    }

    static func percentDecoded(_ bytes: some Collection<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The fields of a `multipart/form-data` body (RFC 7578); a part carrying a file is refused.
    static func multipartFields(_ bytes: [UInt8], boundary: String) throws(ParseFailure) -> [(String, String)] {
        let delimiter = Array("--\(boundary)".utf8)
        var fields: [(String, String)] = []
        guard var at = find(delimiter, in: bytes, from: 0) else {
            throw ParseFailure(field: nil, "the multipart body has no part with the boundary its Content-Type names")
        }
        while true {
            at += delimiter.count
            if bytes[at...].starts(with: Array("--".utf8)) { return fields }
            guard bytes[at...].starts(with: [13, 10]) else { throw ParseFailure(field: nil, "a multipart boundary is not followed by CRLF") }
            at += 2
            guard let headerEnd = find([13, 10, 13, 10], in: bytes, from: at) else {
                throw ParseFailure(field: nil, "a multipart part's headers do not end")
            }
            guard let headerText = String(validating: bytes[at..<headerEnd], as: UTF8.self) else {
                throw ParseFailure(field: nil, "a multipart part's headers are not UTF-8")
            }
            var name: String?
            for line in headerText.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == "content-disposition" else { continue }
                let parameters = line[line.index(after: colon)...].split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                name = parameter("name", in: parameters)
                if parameter("filename", in: parameters) != nil || parameter("filename*", in: parameters) != nil {
                    throw ParseFailure(field: name, "files are not accepted; send fields only")
                }
            }
            guard let field = name else { throw ParseFailure(field: nil, "a multipart part has no Content-Disposition name") }
            let contentStart = headerEnd + 4
            guard let next = find([13, 10] + delimiter, in: bytes, from: contentStart) else {
                throw ParseFailure(field: field, "the part does not end with the boundary")
            }
            guard let value = String(validating: bytes[contentStart..<next], as: UTF8.self) else {
                throw ParseFailure(field: field, "the value is not valid UTF-8")
            }
            guard fields.count < maxFields else { throw ParseFailure(field: nil, "more than \(maxFields) form fields") }
            fields.append((field, value))
            at = next + 2
        }
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, bytes.count >= needle.count else { return nil }
        var index = start
        while index <= bytes.count - needle.count {
            if bytes[index] == first, bytes[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
