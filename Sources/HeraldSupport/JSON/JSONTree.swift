/// A JSON document read strictly (RFC 8259, UTF-8), keeping each value's byte range so a
/// sub-object can become an event's data exactly as the sender spelled it.
///
/// Foundation's reader gives no ranges and no position in its errors; a sender whose
/// body is refused should learn where and why. Nesting is bounded, so a hostile
/// 10,000-deep body is an error, not a deep recursion.
package struct JSONNode: Sendable {
    package indirect enum Value: Sendable {
        case object([(key: String, node: JSONNode)])
        case array([JSONNode])
        case string(String)
        case number(String)
        case bool(Bool)
        case null
    }

    package var value: Value
    /// Where the value is in the document's bytes.
    package var range: Range<Int>

    /// The member `key` of an object; nil for another kind of value or an absent key.
    package subscript(key: String) -> JSONNode? {
        guard case .object(let members) = value else { return nil }
        return members.last { $0.key == key }?.node
    }

    /// A string's text, a number's or a boolean's spelling: what a type map looks up.
    package var scalarText: String? {
        switch value {
        case .string(let text): text
        case .number(let text): text
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    package var kind: String {
        switch value {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// Where and why a document is not JSON.
package struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    package var offset: Int
    package var reason: String
    package var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

package enum JSONTree {
    /// Nesting deeper than this is refused; real webhooks nest a few levels.
    package static let defaultMaxDepth = 64
    /// Values a tree may hold: each costs memory, so a hostile `[0,0,0,…]` is refused
    /// rather than built. Real webhooks hold hundreds.
    package static let defaultMaxValues = 100_000

    package static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth, maxValues: Int = defaultMaxValues) throws(JSONSyntaxError) -> JSONNode {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth, maxValues: maxValues, builds: true)
        return try parser.document()
    }

    /// Checks that `bytes` are one JSON document without building its tree: memory in
    /// proportion to the nesting, not the size.
    package static func check(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONSyntaxError) {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth, maxValues: .max, builds: false)
        _ = try parser.document()
    }

    /// The members of a document that must be one JSON object, each with its value's byte
    /// range; nil for valid JSON that is not an object. Only the members named in
    /// `expanding` are built whole; the others are checked and kept as their kind, their
    /// range and (for a string) their text, so a large member costs no tree. What a message
    /// envelope needs: its fields, and where its data lies. (A few keys, compared rather
    /// than hashed: this runs for every message.)
    package static func members(
        of bytes: [UInt8], expanding: [String], maxDepth: Int = defaultMaxDepth, skippingByteOrderMark: Bool = false
    ) throws(JSONSyntaxError) -> [(key: String, node: JSONNode)]? {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth, maxValues: .max, builds: false)
        if skippingByteOrderMark && bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.at = 3 }
        return try parser.members(expanding: expanding)
    }

    /// Whether any of a word's eight bytes is a quote, a backslash, a control character or
    /// not ASCII: what ends a run of plain string bytes (the bit tricks of "Bit Twiddling
    /// Hacks": a byte is zero, or less than 0x20, where the subtraction borrows into its
    /// high bit).
    static func special(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        return word & highs != 0 || hasZero(word ^ (ones &* 0x22)) || hasZero(word ^ (ones &* 0x5C))
            || (word &- ones &* 0x20) & ~word & highs != 0
    }

    private struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        let maxValues: Int
        /// Keeps the members and elements; otherwise each is read and dropped.
        var builds: Bool
        var at = 0
        var values = 0

        mutating func document() throws(JSONSyntaxError) -> JSONNode {
            skipSpace()
            let node = try value(depth: 0, kept: builds)
            skipSpace()
            guard at == bytes.count else { throw error("unexpected content after the document") }
            return node
        }

        func error(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: at, reason: reason) }

        mutating func members(expanding: [String]) throws(JSONSyntaxError) -> [(key: String, node: JSONNode)]? {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "{") else {
                _ = try document()
                return nil
            }
            let members = try object(depth: 0, expanding: expanding)
            skipSpace()
            guard at == bytes.count else { throw error("unexpected content after the document") }
            return members
        }

        /// An object's members from its opening brace. With `expanding`, every member is
        /// kept and only those it names are built whole; without, members are kept when the
        /// parser builds.
        mutating func object(depth: Int, expanding: [String]?) throws(JSONSyntaxError) -> [(key: String, node: JSONNode)] {
            at += 1
            var members: [(key: String, node: JSONNode)] = []
            // A message envelope's handful of members, in one allocation rather than four.
            if expanding != nil { members.reserveCapacity(8) }
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") {
                at += 1
                return members
            }
            while true {
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a key in double quotes") }
                // An object only checked needs no key texts (inside an event's data).
                let key = try string(keeping: builds || expanding != nil)
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
                at += 1
                skipSpace()
                if let expanding { builds = expanding.contains(key) }
                let kept = builds || expanding != nil
                let member = try value(depth: depth + 1, kept: kept)
                if kept { members.append((key, member)) }
                skipSpace()
                guard at < bytes.count else { throw error("the document ends inside an object") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                guard bytes[at] == UInt8(ascii: "}") else { throw error("expected ',' or '}' in an object") }
                at += 1
                return members
            }
        }

        mutating func skipSpace() {
            while at < bytes.count {
                switch bytes[at] {
                case 0x20, 0x09, 0x0A, 0x0D: at += 1
                default: return
                }
            }
        }

        /// The value here; `kept`: the caller keeps the node, so a string's or a number's text
        /// is made (a value only checked, inside an event's data, is not spelled out again).
        mutating func value(depth: Int, kept: Bool) throws(JSONSyntaxError) -> JSONNode {
            guard at < bytes.count else { throw error("the document ends where a value was expected") }
            values += 1
            guard values <= maxValues else { throw error("more than \(maxValues) values") }
            let start = at
            switch bytes[at] {
            case UInt8(ascii: "{"):
                guard depth < maxDepth else { throw error("nested more than \(maxDepth) levels deep") }
                let members = try object(depth: depth, expanding: nil)
                return JSONNode(value: .object(members), range: start..<at)
            case UInt8(ascii: "["):
                guard depth < maxDepth else { throw error("nested more than \(maxDepth) levels deep") }
                at += 1
                var elements: [JSONNode] = []
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") {
                    at += 1
                    return JSONNode(value: .array(elements), range: start..<at)
                }
                while true {
                    skipSpace()
                    let element = try value(depth: depth + 1, kept: builds)
                    if builds { elements.append(element) }
                    skipSpace()
                    guard at < bytes.count else { throw error("the document ends inside an array") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    guard bytes[at] == UInt8(ascii: "]") else { throw error("expected ',' or ']' in an array") }
                    at += 1
                    return JSONNode(value: .array(elements), range: start..<at)
                }
            case UInt8(ascii: "\""):
                let text = try string(keeping: kept)
                return JSONNode(value: .string(text), range: start..<at)
            case UInt8(ascii: "t"):
                try literal("true")
                return JSONNode(value: .bool(true), range: start..<at)
            case UInt8(ascii: "f"):
                try literal("false")
                return JSONNode(value: .bool(false), range: start..<at)
            case UInt8(ascii: "n"):
                try literal("null")
                return JSONNode(value: .null, range: start..<at)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try number()
                return JSONNode(value: .number(kept ? String(decoding: bytes[start..<at], as: UTF8.self) : ""), range: start..<at)
            default:
                throw error("expected a value")
            }
        }

        mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
            let count = word.utf8CodeUnitCount
            let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
            guard at + count <= bytes.count, bytes[at..<at + count].elementsEqual(expected) else { throw error("expected a value") }
            at += count
        }

        mutating func digits() -> Int {
            let start = at
            while at < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) { at += 1 }
            return at - start
        }

        mutating func number() throws(JSONSyntaxError) {
            if bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard at < bytes.count else { throw error("a number ends after '-'") }
            if bytes[at] == UInt8(ascii: "0") {
                at += 1
            } else if digits() == 0 {
                throw error("a number needs a digit")
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
                at += 1
                guard digits() > 0 else { throw error("a number needs digits after '.'") }
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
                at += 1
                if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { throw error("a number needs digits in its exponent") }
            }
        }

        /// A string from its opening quote; escapes resolved, UTF-8 checked. `keeping`: its
        /// text is made; otherwise the string is only checked and "" returned (a value inside
        /// an event's data). Plain ASCII, nearly all of it, is scanned eight bytes at a time
        /// and needs no UTF-8 check; a string with an escape is read by `escapedString`.
        mutating func string(keeping: Bool = true) throws(JSONSyntaxError) -> String {
            at += 1
            let start = at
            var high: UInt8 = 0
            let end: Int? = bytes.withUnsafeBufferPointer { bytes in
                guard let base = bytes.baseAddress else { return nil }
                var i = start
                while i < bytes.count {
                    // A word holding anything but plain ASCII goes byte by byte.
                    while i + 8 <= bytes.count, !JSONTree.special(UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)) { i += 8 }
                    guard i < bytes.count else { break }
                    let byte = bytes[i]
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { return i }
                    high |= byte
                    i += 1
                }
                return nil
            }
            guard let end else {
                at = bytes.count
                throw error("the document ends inside a string")
            }
            at = end
            switch bytes[end] {
            case UInt8(ascii: "\""):
                var text = ""
                if high >= 0x80 || keeping {
                    guard let valid = String(validUTF8: bytes[start..<end]) else {
                        throw JSONSyntaxError(offset: start, reason: "a string is not valid UTF-8")
                    }
                    if keeping { text = valid }
                }
                at += 1
                return text
            case UInt8(ascii: "\\"):
                let text = try escapedString(from: start)
                return keeping ? text : ""
            default:
                throw error("a control character in a string must be escaped")
            }
        }

        /// The rest of a string that holds an escape, as UTF-8 bytes checked once at its end.
        mutating func escapedString(from start: Int) throws(JSONSyntaxError) -> String {
            var utf8 = Array(bytes[start..<at])
            while at < bytes.count {
                let byte = bytes[at]
                if byte == UInt8(ascii: "\"") {
                    at += 1
                    guard let text = String(validUTF8: utf8) else {
                        throw JSONSyntaxError(offset: start, reason: "a string is not valid UTF-8")
                    }
                    return text
                }
                if byte < 0x20 { throw error("a control character in a string must be escaped") }
                guard byte == UInt8(ascii: "\\") else {
                    utf8.append(byte)
                    at += 1
                    continue
                }
                at += 1
                guard at < bytes.count else { break }
                let escape = bytes[at]
                at += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else {
                            throw error("a lone surrogate in \\u escapes")
                        }
                        at += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("a lone surrogate in \\u escapes") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw error("a lone surrogate in \\u escapes") }
                    UTF8.encode(scalar) { utf8.append($0) }
                default:
                    throw error("an unknown escape in a string")
                }
            }
            throw error("the document ends inside a string")
        }

        mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
            guard at + 4 <= bytes.count else { throw error("a \\u escape needs four hex digits") }
            var code: UInt32 = 0
            for byte in bytes[at..<at + 4] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw error("a \\u escape needs four hex digits")
                }
                code = code << 4 | UInt32(digit)
            }
            at += 4
            return code
        }
    }
}

/// A path into a JSON document: `$.data.object.id`, `items[0].name`, `EntityName`.
package struct JSONPath: Sendable, Equatable, CustomStringConvertible {
    package enum Step: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    package let steps: [Step]
    package let description: String

    /// nil when `text` is not a path: keys are letters, digits, `_` and `-`, joined by dots,
    /// with `[n]` for an array element; `$.` may lead.
    package init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= 200 else { return nil }
        var rest = Substring(text)
        if rest.hasPrefix("$.") { rest = rest.dropFirst(2) } else if rest == "$" { return nil }
        var steps: [Step] = []
        for part in rest.split(separator: ".", omittingEmptySubsequences: false) {
            var segment = part
            let keyEnd = segment.firstIndex(of: "[") ?? segment.endIndex
            let key = segment[..<keyEnd]
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else { return nil }
            steps.append(.key(String(key)))
            segment = segment[keyEnd...]
            while !segment.isEmpty {
                guard segment.first == "[", let close = segment.firstIndex(of: "]"),
                    let index = Int(segment[segment.index(after: segment.startIndex)..<close]), index >= 0, index < 10_000
                else { return nil }
                steps.append(.index(index))
                segment = segment[segment.index(after: close)...]
            }
        }
        self.steps = steps
        description = text
    }

    /// The node the path names; nil when a step is missing.
    package func find(in root: JSONNode) -> JSONNode? {
        Self.find(steps, in: root)
    }

    /// The node `steps` lead to from `root`; nil when a step is missing.
    package static func find(_ steps: [Step], in root: JSONNode) -> JSONNode? {
        var node = root
        for step in steps {
            switch (step, node.value) {
            case (.key(let key), .object):
                guard let next = node[key] else { return nil }
                node = next
            case (.index(let index), .array(let elements)):
                guard index < elements.count else { return nil }
                node = elements[index]
            default:
                return nil
            }
        }
        return node
    }
}

extension JSONNode: Encodable {
    /// The value again as JSON: what a stored filter is shown as. Whole numbers keep their
    /// value exactly; others go through `Double`.
    package func encode(to encoder: any Encoder) throws {
        switch value {
        case .object(let members):
            // A dictionary, not coding keys: an encoder's key strategy (snake case) leaves
            // a dictionary's keys as they are, and these are the tenant's.
            var container = encoder.singleValueContainer()
            try container.encode(Dictionary(members.map { ($0.key, $0.node) }, uniquingKeysWith: { $1 }))
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            for element in elements { try container.encode(element) }
        case .string(let text):
            var container = encoder.singleValueContainer()
            try container.encode(text)
        case .number(let text):
            var container = encoder.singleValueContainer()
            if let whole = Int64(text) { try container.encode(whole) } else { try container.encode(Double(text) ?? 0) }
        case .bool(let flag):
            var container = encoder.singleValueContainer()
            try container.encode(flag)
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        }
    }
}
