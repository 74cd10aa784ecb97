package import HeraldSupport

/// A condition on an event's `data`, in the JSON filter language of Convoy and Outpost,
/// so a tenant receives `invoice.paid` only when the total is at least 1000:
///
///     {"total": {"$gte": "1000"}}
///     {"tags": {"$contains": "Hochzeit"}}
///     {"$or": [{"ClientId": "2c85…"}, {"StepName": {"$in": ["Photography", "Final Selection"]}}]}
///
/// Keys are paths into `data` (`client.email`, `items[0].product_type`); a value is
/// compared for equality, or is an object of operators (all must hold), or an object of
/// further paths under that key. `$and`, `$or` take lists of filters, `$not` one.
/// Checked when an endpoint is saved (every error names the path and the operator) and
/// evaluated on the worker's parsed `data` during fan-out, without allocation.
public struct PayloadFilter: Sendable, Equatable, CustomStringConvertible {
    indirect enum Node: Sendable, Equatable {
        case all([Node])
        case any([Node])
        case not(Node)
        case test([JSONPath.Step], Test)
    }

    enum Test: Sendable, Equatable {
        case eq(Operand)
        /// Absent, or a different value.
        case neq(Operand)
        case `in`([Operand])
        /// Absent, or none of the values.
        case nin([Operand])
        case gt(Operand)
        case gte(Operand)
        case lt(Operand)
        case lte(Operand)
        case exists(Bool)
        case contains(Operand)
    }

    /// A value of the filter, compared with the data's values.
    enum Operand: Sendable, Equatable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([Operand])
        case object([(key: String, value: Operand)])

        static func == (lhs: Operand, rhs: Operand) -> Bool {
            switch (lhs, rhs) {
            case (.null, .null): true
            case (.bool(let a), .bool(let b)): a == b
            case (.number(let a), .number(let b)): a == b
            case (.string(let a), .string(let b)): a == b
            case (.array(let a), .array(let b)): a == b
            case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            default: false
            }
        }
    }

    let root: Node
    /// The filter as the tenant wrote it, what is stored and shown.
    let tree: JSONNode
    public let description: String

    /// Most conditions in one filter, and most values in an `$in` list.
    package static let maxConditions = 200
    package static let maxListValues = 500
    /// The longest filter text, in bytes.
    package static let maxBytes = 16 * 1024

    public static func == (lhs: PayloadFilter, rhs: PayloadFilter) -> Bool { lhs.root == rhs.root }

    /// Reads and checks a filter; the error names the field by its path under `field`.
    package init(parsing bytes: [UInt8], field: String = "payload_filter") throws(ParseFailure) {
        guard bytes.count <= Self.maxBytes else { throw ParseFailure(field: field, "must be at most \(Self.maxBytes) bytes of JSON") }
        let tree: JSONNode
        do {
            tree = try JSONTree.parse(bytes, maxDepth: 16, maxValues: 5_000)
        } catch {
            throw ParseFailure(field: field, error.description)
        }
        var reader = Reader(field: field)
        root = try reader.filter(tree, path: [], at: field)
        self.tree = tree
        description = String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `data` (an event's parsed `data` object) passes the filter.
    package func matches(_ data: JSONNode) -> Bool {
        Self.evaluate(root, data)
    }

    // MARK: Evaluation

    private static func evaluate(_ node: Node, _ data: JSONNode) -> Bool {
        switch node {
        case .all(let nodes): return nodes.allSatisfy { evaluate($0, data) }
        case .any(let nodes): return nodes.contains { evaluate($0, data) }
        case .not(let inner): return !evaluate(inner, data)
        case .test(let steps, let test): return check(test, JSONPath.find(steps, in: data))
        }
    }

    private static func check(_ test: Test, _ value: JSONNode?) -> Bool {
        switch test {
        case .exists(let wanted): return (value != nil) == wanted
        case .neq(let operand): return value.map { !equal($0, operand) } ?? true
        case .nin(let operands): return value.map { value in !operands.contains { equal(value, $0) } } ?? true
        default: break
        }
        guard let value else { return false }
        switch test {
        case .eq(let operand): return equal(value, operand)
        case .in(let operands): return operands.contains { equal(value, $0) }
        case .gt(let operand): return order(value, operand).map { $0 > 0 } ?? false
        case .gte(let operand): return order(value, operand).map { $0 >= 0 } ?? false
        case .lt(let operand): return order(value, operand).map { $0 < 0 } ?? false
        case .lte(let operand): return order(value, operand).map { $0 <= 0 } ?? false
        case .contains(let operand):
            switch (value.value, operand) {
            case (.array(let elements), .object(let members)):
                // An element that is an object holding these members: "an item whose type is print".
                return elements.contains { element in members.allSatisfy { member in element[member.key].map { equal($0, member.value) } ?? false } }
            case (.array(let elements), _): return elements.contains { equal($0, operand) }
            case (.string(let text), .string(let part)): return Self.contains(text, part)
            default: return false
            }
        case .exists, .neq, .nin: return false
        }
    }

    /// Whether `part` occurs in `text`, compared by their UTF-8 bytes: exact code points, as
    /// JSON spells them (String's own `contains` compares grapheme clusters, 30 times slower).
    static func contains(_ text: String, _ part: String) -> Bool {
        var text = text
        var part = part
        return text.withUTF8 { haystack in
            part.withUTF8 { needle in
                guard let first = needle.first else { return true }
                guard needle.count <= haystack.count else { return false }
                var index = 0
                while index <= haystack.count - needle.count {
                    if haystack[index] == first {
                        var matched = 1
                        while matched < needle.count && haystack[index + matched] == needle[matched] { matched += 1 }
                        if matched == needle.count { return true }
                    }
                    index += 1
                }
                return false
            }
        }
    }

    /// JSON equality: the same kind and value, numbers by value (`1` equals `1.0`).
    private static func equal(_ value: JSONNode, _ operand: Operand) -> Bool {
        switch (value.value, operand) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let text), .number(let b)): return Double(text) == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let elements), .array(let operands)):
            return elements.count == operands.count && zip(elements, operands).allSatisfy { equal($0, $1) }
        case (.object(let members), .object(let operands)):
            let keys = Set(members.map(\.key))
            return keys.count == operands.count && operands.allSatisfy { operand in value[operand.key].map { equal($0, operand.value) } ?? false }
        default: return false
        }
    }

    /// The order of `value` against `operand`: numerically when both are numbers or
    /// strings that spell numbers (CreatorDesk's `"total": "1450.00"`), by text when both
    /// are other strings (ISO 8601 dates order so); nil for anything else.
    private static func order(_ value: JSONNode, _ operand: Operand) -> Int? {
        let left: Double?
        switch value.value {
        case .number(let text): left = Double(text)
        case .string(let text): left = Self.number(text)
        default: left = nil
        }
        let right: Double?
        switch operand {
        case .number(let number): right = number
        case .string(let text): right = Self.number(text)
        default: right = nil
        }
        if let left, let right { return left < right ? -1 : (left > right ? 1 : 0) }
        if case .string(let a) = value.value, case .string(let b) = operand, left == nil || right == nil {
            return a < b ? -1 : (a > b ? 1 : 0)
        }
        return nil
    }

    /// A string's number when it is written as a decimal number (`"1450.00"`, `"-3"`, `"1e3"`).
    static func number(_ text: String) -> Double? {
        guard !text.isEmpty, text.utf8.count <= 40,
            text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x2B || $0 == 0x65 || $0 == 0x45 }),
            let number = Double(text), number.isFinite
        else { return nil }
        return number
    }

    // MARK: Reading

    private struct Reader {
        let field: String
        var conditions = 0

        mutating func filter(_ node: JSONNode, path: [JSONPath.Step], at location: String) throws(ParseFailure) -> Node {
            guard case .object(let members) = node.value else { throw ParseFailure(field: location, "must be an object of paths and operators") }
            guard !members.isEmpty else { throw ParseFailure(field: location, "must hold at least one condition") }
            var seen: Set<String> = []
            for member in members where !seen.insert(member.key).inserted {
                throw ParseFailure(field: "\(location).\(member.key.prefix(100))", "appears twice")
            }
            var nodes: [Node] = []
            for (key, value) in members {
                let here = "\(location).\(key)"
                switch key {
                case "$and", "$or":
                    guard case .array(let elements) = value.value, !elements.isEmpty else {
                        throw ParseFailure(field: here, "must be a non-empty array of filters")
                    }
                    var inner: [Node] = []
                    for (index, element) in elements.enumerated() { inner.append(try filter(element, path: path, at: "\(here)[\(index)]")) }
                    nodes.append(key == "$and" ? .all(inner) : .any(inner))
                case "$not":
                    nodes.append(.not(try filter(value, path: path, at: here)))
                default:
                    if key.hasPrefix("$") {
                        throw ParseFailure(field: here, "'\(key.prefix(40))' is not an operator here; use $and, $or or $not, or a path followed by $eq, $neq, $in, $nin, $gt, $gte, $lt, $lte, $exists or $contains")
                    }
                    guard let steps = JSONPath(key)?.steps else {
                        throw ParseFailure(field: here, "'\(key.prefix(100))' is not a path: keys of letters, digits, _ and -, joined by dots, with [n] for an array element")
                    }
                    nodes.append(try condition(value, path: path + steps, at: here))
                }
            }
            return nodes.count == 1 ? nodes[0] : .all(nodes)
        }

        /// What a path's value must be: a value (equality), an object of operators, or an
        /// object of further paths.
        private mutating func condition(_ value: JSONNode, path: [JSONPath.Step], at location: String) throws(ParseFailure) -> Node {
            guard case .object(let members) = value.value, let first = members.first else {
                try count()
                return .test(path, .eq(try operand(value, at: location)))
            }
            let operators = members.filter { $0.key.hasPrefix("$") }
            guard !operators.isEmpty else { return try filter(value, path: path, at: location) }
            guard operators.count == members.count else {
                let path = members.first { !$0.key.hasPrefix("$") }?.key ?? first.key
                throw ParseFailure(field: "\(location).\(path)", "mixes operators with paths; put the path in its own condition")
            }
            var nodes: [Node] = []
            for (key, operandNode) in members {
                let here = "\(location).\(key)"
                let test: Test
                switch key {
                case "$eq": test = .eq(try operand(operandNode, at: here))
                case "$neq": test = .neq(try operand(operandNode, at: here))
                case "$in", "$nin":
                    guard case .array(let elements) = operandNode.value, !elements.isEmpty, elements.count <= PayloadFilter.maxListValues else {
                        throw ParseFailure(field: here, "must be an array of 1 to \(PayloadFilter.maxListValues) values")
                    }
                    var values: [Operand] = []
                    for (index, element) in elements.enumerated() { values.append(try operand(element, at: "\(here)[\(index)]")) }
                    test = key == "$in" ? .in(values) : .nin(values)
                case "$gt", "$gte", "$lt", "$lte":
                    let bound = try operand(operandNode, at: here)
                    switch bound {
                    case .number, .string: break
                    default: throw ParseFailure(field: here, "must be a number or a string")
                    }
                    test = key == "$gt" ? .gt(bound) : key == "$gte" ? .gte(bound) : key == "$lt" ? .lt(bound) : .lte(bound)
                case "$exists":
                    guard case .bool(let flag) = operandNode.value else { throw ParseFailure(field: here, "must be true or false") }
                    test = .exists(flag)
                case "$contains": test = .contains(try operand(operandNode, at: here))
                default:
                    throw ParseFailure(field: here, "'\(key.prefix(40))' is not an operator; use $eq, $neq, $in, $nin, $gt, $gte, $lt, $lte, $exists or $contains")
                }
                try count()
                nodes.append(.test(path, test))
            }
            return nodes.count == 1 ? nodes[0] : .all(nodes)
        }

        private mutating func count() throws(ParseFailure) {
            conditions += 1
            guard conditions <= PayloadFilter.maxConditions else {
                throw ParseFailure(field: field, "holds more than \(PayloadFilter.maxConditions) conditions")
            }
        }

        private func operand(_ node: JSONNode, at location: String) throws(ParseFailure) -> Operand {
            switch node.value {
            case .null: return .null
            case .bool(let flag): return .bool(flag)
            case .number(let text):
                guard let number = Double(text), number.isFinite else { throw ParseFailure(field: location, "is a number out of range") }
                return .number(number)
            case .string(let text): return .string(text)
            case .array(let elements):
                var values: [Operand] = []
                for (index, element) in elements.enumerated() { values.append(try operand(element, at: "\(location)[\(index)]")) }
                return .array(values)
            case .object(let members):
                var values: [(key: String, value: Operand)] = []
                for member in members {
                    if member.key.hasPrefix("$") {
                        throw ParseFailure(field: "\(location).\(member.key.prefix(40))", "an operator cannot stand inside a value")
                    }
                    values.append((member.key, try operand(member.node, at: "\(location).\(member.key)")))
                }
                return .object(values)
            }
        }
    }
}

extension PayloadFilter: Encodable {
    public func encode(to encoder: any Encoder) throws {
        try tree.encode(to: encoder)
    }
}
