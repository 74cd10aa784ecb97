public import Foundation
import HeraldSupport

/// The JSON an event travels as on the event exchange:
///
///     {"id":"evt_…","type":"client.created","tenant_id":"…","occurred_at":"2026-05-12T09:30:00.000Z",
///      "attributes":{"workspace":"w1"},"data":{…}}
///
/// `data` travels and is stored verbatim: endpoints receive exactly the bytes the
/// producer published, on every attempt.
public enum WireFormat {
    /// The message header that names an event's tenant bucket (decimal text, `0..<buckets`).
    /// Workers with shards route on it, so that one tenant's events always reach one shard
    /// in the order they were published; an event without it goes to shard 0.
    public static let bucketHeader = "herald-bucket"
    /// How many buckets tenants hash into: shard `i` of `n` takes the buckets `b` with
    /// `b % n == i`, so any shard count up to this divides them without the producer knowing it.
    public static let buckets = 64

    /// The bucket of `tenant`: FNV-1a (32 bits) of its lowercase UUID text, modulo
    /// `buckets`. A producer in another language computes the same in a few lines.
    public static func bucket(of tenant: UUID) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in tenant.lowercasedText.utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return Int(hash % UInt32(buckets))
    }

    /// How deep an event may nest (its `data` one level less): Foundation's reader's limit.
    static let maxDepth = 512

    /// An event's fields, and those built whole (the others are only checked and located);
    /// made once, not for every message, and few enough to compare rather than hash.
    static let fields = ["id", "type", "tenant_id", "occurred_at", "attributes", "data"]
    static let expanded = ["attributes"]

    public static func encode(_ event: Event) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(
            event.dataBytes.count + event.id.utf8.count + event.type.utf8.count + 150
                + event.attributes.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
        out.append(contentsOf: "{\"id\":".utf8)
        JSONText.append(event.id, to: &out)
        out.append(contentsOf: ",\"type\":".utf8)
        JSONText.append(event.type, to: &out)
        out.append(contentsOf: ",\"tenant_id\":\"".utf8)
        out.append(contentsOf: event.tenantID.lowercasedText.utf8)
        out.append(contentsOf: "\",\"occurred_at\":\"".utf8)
        out.append(contentsOf: RFC3339.format(event.occurredAt, fractionDigits: 3).utf8)
        out.append(contentsOf: "\",\"attributes\":{".utf8)
        for (index, key) in event.attributes.keys.sorted().enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.append(key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONText.append(event.attributes[key] ?? "", to: &out)
        }
        out.append(contentsOf: "},\"data\":".utf8)
        out += event.dataBytes
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Parses and validates a message body; the error names the offending field. With
    /// `fillingDefaults` (input from people and CRMs, not from the exchange) a missing `id`
    /// is generated and a missing `occurred_at` is now.
    public static func decode(_ body: [UInt8], limits: EventLimits = EventLimits(), fillingDefaults: Bool = false) throws(EventError) -> Event {
        guard body.count <= limits.maxDataBytes + 64 * 1024 else {
            throw EventError(field: "body", reason: "is \(body.count) bytes, larger than any valid event")
        }
        // Read by hand: the fields are built, `data` is only checked and located, so a large
        // event costs no object tree and travels as the bytes the producer sent.
        let found: [(key: String, node: JSONNode)]?
        do {
            // Foundation's nesting limit (the API reads request bodies with it); producers
            // check `data` with this reader at this depth (`Event.isObject`), so what they
            // accept is read here too. A UTF-8 byte order mark is skipped, as Foundation did.
            found = try JSONTree.members(of: body, expanding: Self.expanded, maxDepth: Self.maxDepth, skippingByteOrderMark: true)
        } catch {
            throw EventError(field: "body", reason: "is not a JSON object (\(error))")
        }
        guard let members = found else { throw EventError(field: "body", reason: "is not a JSON object") }
        // A handful of members, found by comparing keys; the last of a repeated key counts,
        // as it did when they went into a dictionary.
        func member(_ key: String) -> JSONNode? { members.last(where: { $0.key == key })?.node }
        if members.contains(where: { !Self.fields.contains($0.key) }),
            let unknown = members.map(\.key).sorted().first(where: { !Self.fields.contains($0) })
        {
            throw EventError(field: unknown, reason: "is not an event field")
        }
        func text(_ key: String) -> String? {
            if case .string(let value)? = member(key)?.value { return value }
            return nil
        }
        let id: String
        if let given = text("id") {
            id = given
        } else if fillingDefaults && member("id") == nil {
            id = Event.generateID()
        } else {
            throw EventError(field: "id", reason: "is required and must be a string")
        }
        guard let type = text("type") else { throw EventError(field: "type", reason: "is required and must be a string") }
        guard let tenant = text("tenant_id"), let tenantID = UUID(text: tenant) else {
            throw EventError(field: "tenant_id", reason: "is required and must be a UUID")
        }
        let occurredAt: Date
        if let occurred = text("occurred_at"), let parsed = RFC3339.parse(occurred) {
            occurredAt = parsed
        } else if fillingDefaults && member("occurred_at") == nil {
            occurredAt = Date()
        } else {
            throw EventError(field: "occurred_at", reason: "is required and must be an ISO 8601 date-time")
        }
        guard let data = member("data"), case .object = data.value else {
            throw EventError(field: "data", reason: "is required and must be a JSON object")
        }
        var attributes: [String: String] = [:]
        switch member("attributes")?.value {
        case nil, .null?:
            break
        case .object(let pairs)?:
            for (key, value) in pairs {
                guard case .string(let text) = value.value else {
                    throw EventError(field: "attributes.\(key)", reason: "must be a string")
                }
                attributes[key] = text
            }
        default:
            throw EventError(field: "attributes", reason: "must be an object of strings")
        }
        // A slice: the event shares the message's storage instead of copying it.
        let bytes = body[data.range]
        let event = Event(id: id, type: type, tenantID: tenantID, occurredAt: occurredAt, dataBytes: bytes, attributes: attributes)
        // The document parsed, so a member value that opens with `{` is a whole JSON object.
        try event.validate(limits, dataIsObject: true)
        return event
    }
}

/// JSON string literals without a serializer round trip, escaped as Foundation's encoders
/// escape them (the two-character forms where JSON has one, `\u00XX` for other controls).
public enum JSONText {
    public static func string(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        append(text, to: &out)
        return out
    }

    /// `text` as a JSON string literal at the end of `out`.
    public static func append(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONText {
    /// Where the value of the top-level member spelled `"name"` lies in `json`, a document
    /// already known to be a valid JSON object; the last one if the key repeats. Nil when
    /// no key is spelled exactly so.
    public static func topLevelValue(named name: String, in json: [UInt8]) -> Range<Int>? {
        let key = Array(name.utf8)
        var found: Range<Int>?
        var index = 0
        func skipSpace() {
            while index < json.count, [0x20, 0x09, 0x0A, 0x0D].contains(json[index]) { index += 1 }
        }
        /// Moves past the string starting at `index`; returns where its contents lie.
        func skipString() -> Range<Int> {
            let start = index + 1
            index += 1
            while index < json.count, json[index] != UInt8(ascii: "\"") {
                index += json[index] == UInt8(ascii: "\\") ? 2 : 1
            }
            index += 1
            return start..<(index - 1)
        }
        func skipValue() {
            var depth = 0
            repeat {
                guard index < json.count else { return }
                switch json[index] {
                case UInt8(ascii: "\""):
                    _ = skipString()
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                case UInt8(ascii: ","): if depth == 0 { return }
                default: break
                }
                index += 1
            } while depth > 0 || (index < json.count && ![UInt8(ascii: ","), UInt8(ascii: "}")].contains(json[index]))
        }
        skipSpace()
        guard index < json.count, json[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        while true {
            skipSpace()
            guard index < json.count, json[index] == UInt8(ascii: "\"") else { return found }
            let keyRange = skipString()
            skipSpace()
            guard index < json.count, json[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            skipSpace()
            let start = index
            skipValue()
            var end = index
            while end > start, [0x20, 0x09, 0x0A, 0x0D].contains(json[end - 1]) { end -= 1 }
            if json[keyRange].elementsEqual(key) { found = start..<end }
            skipSpace()
            guard index < json.count, json[index] == UInt8(ascii: ",") else { return found }
            index += 1
        }
    }
}
