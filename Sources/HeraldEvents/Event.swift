import HeraldSupport
public import Foundation

/// A domain event as Herald carries it: one tenant's fact (`client.created`, …) with a
/// JSON object of data. The producer validates it, the worker stores it once per
/// (tenant, id) and fans it out.
public struct Event: Sendable, Equatable {
    /// Unique per tenant; chosen by the producer or generated (`evt_…`).
    public var id: String
    /// Dot-separated lower-case words, e.g. `invoice.paid`.
    public var type: String
    /// The workspace whose customers subscribe.
    public var tenantID: UUID
    public var occurredAt: Date
    /// The event's JSON object, as bytes: exactly what a `raw` endpoint receives.
    public var data: [UInt8] {
        get { Array(dataBytes) }
        set { dataBytes = newValue[...] }
    }
    /// `data` where it lies: in the worker, a slice of the message the event came in, so an
    /// event in flight holds its body once, not twice.
    package var dataBytes: ArraySlice<UInt8>
    /// String pairs that attribute filters match on (`workspace`, `production_step`, …).
    public var attributes: [String: String]

    public init(
        id: String = Event.generateID(), type: String, tenantID: UUID, occurredAt: Date = Date(), data: [UInt8],
        attributes: [String: String] = [:]
    ) {
        self.id = id
        self.type = type
        self.tenantID = tenantID
        self.occurredAt = occurredAt
        self.dataBytes = data[...]
        self.attributes = attributes
    }

    package init(id: String, type: String, tenantID: UUID, occurredAt: Date, dataBytes: ArraySlice<UInt8>, attributes: [String: String]) {
        self.id = id
        self.type = type
        self.tenantID = tenantID
        self.occurredAt = occurredAt
        self.dataBytes = dataBytes
        self.attributes = attributes
    }

    /// `evt_` and a UUID of version 7 (RFC 9562) in hex: unique, and it says when it was
    /// made, the same on every copy of the event (`idTime`).
    ///
    /// Its random bits come from the system's generator (`getrandom`): Foundation's `UUID()`
    /// opens and reads `/dev/urandom` for every id, a fifth of a producer's CPU.
    public static func generateID(at now: Date = Date()) -> String {
        var random = SystemRandomNumberGenerator()
        var bytes = (random.next() as UInt64, random.next() as UInt64)
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        withUnsafeMutableBytes(of: &bytes) { raw in
            for index in 0..<6 { raw[index] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * index)) }
            raw[6] = (raw[6] & 0x0F) | 0x70
            raw[8] = (raw[8] & 0x3F) | 0x80
        }
        return UUID(uuid: unsafeBitCast(bytes, to: uuid_t.self)).hexText(prefix: "evt_")
    }

    /// When the id was made, if it is a UUID of version 7 (`evt_` and 32 hex digits as
    /// `generateID` makes, or a UUID's 36 characters): unlike `occurredAt`, which a
    /// producer may fill anew when it publishes an event again, the id is what every copy
    /// of an event shares. Nil for any other id.
    package var idTime: Date? {
        guard let uuid = UUID(textOrHex: id.hasPrefix("evt_") ? id.dropFirst(4) : id[...]) else { return nil }
        return withUnsafeBytes(of: uuid.uuid) { bytes -> Date? in
            // Version 7, variant 10.
            guard bytes[6] >> 4 == 7, bytes[8] >> 6 == 2 else { return nil }
            let milliseconds = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
    }
}

/// Limits an event must respect; the defaults are the documented ones.
public struct EventLimits: Sendable, Equatable {
    /// Largest `data` object in bytes (default 256 KiB).
    public var maxDataBytes: Int
    /// In UTF-8 bytes, like the other lengths; at most 255, an AMQP message id's limit.
    public var maxIDLength: Int
    public var maxTypeLength: Int
    public var maxAttributes: Int
    public var maxAttributeLength: Int

    public init(
        maxDataBytes: Int = 256 * 1024, maxIDLength: Int = 200, maxTypeLength: Int = 100, maxAttributes: Int = 32,
        maxAttributeLength: Int = 200
    ) {
        self.maxDataBytes = maxDataBytes
        self.maxIDLength = min(maxIDLength, 255)
        self.maxTypeLength = maxTypeLength
        self.maxAttributes = maxAttributes
        self.maxAttributeLength = maxAttributeLength
    }
}

/// Why an event was refused, naming the field: shown to the CRM's developers and used as
/// the parking reason in the worker. Never contains the data itself.
public struct EventError: Error, CustomStringConvertible, Equatable, Sendable {
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

extension Event {
    /// Checks every field against `limits`; the first problem is thrown.
    public func validate(_ limits: EventLimits = EventLimits()) throws(EventError) {
        try validate(limits, dataIsObject: false)
    }

    /// `dataIsObject`: the caller has parsed `data` as a JSON object already (the wire
    /// format's decoder), so it is not parsed again.
    func validate(_ limits: EventLimits, dataIsObject: Bool) throws(EventError) {
        // Lengths in UTF-8 bytes: what the broker's short strings and the columns count.
        guard !id.isEmpty, id.utf8.count <= limits.maxIDLength else {
            throw EventError(field: "id", reason: "must be 1 to \(limits.maxIDLength) bytes of UTF-8")
        }
        guard id.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
            throw EventError(field: "id", reason: "must not contain spaces or control characters")
        }
        guard type.utf8.count <= limits.maxTypeLength, EventType.isWellFormed(type) else {
            throw EventError(field: "type", reason: "must be dot-separated lower-case words like 'invoice.paid'")
        }
        guard RFC3339.isRepresentable(occurredAt) else {
            throw EventError(field: "occurred_at", reason: "must lie between the years 0001 and 9999")
        }
        guard dataBytes.count <= limits.maxDataBytes else {
            throw EventError(field: "data", reason: "is \(dataBytes.count) bytes; the limit is \(limits.maxDataBytes)")
        }
        guard dataIsObject || Self.isObject(dataBytes) else {
            throw EventError(field: "data", reason: "must be a JSON object")
        }
        guard attributes.count <= limits.maxAttributes else {
            throw EventError(field: "attributes", reason: "at most \(limits.maxAttributes) attributes")
        }
        for (key, value) in attributes {
            guard !key.isEmpty, key.utf8.count <= limits.maxAttributeLength, value.utf8.count <= limits.maxAttributeLength else {
                throw EventError(field: "attributes", reason: "keys and values must be 1 to \(limits.maxAttributeLength) bytes of UTF-8")
            }
            guard !key.utf8.contains(0), !value.utf8.contains(0) else {
                throw EventError(field: "attributes", reason: "keys and values must not contain NUL characters")
            }
        }
    }
}

extension Event {
    /// Checked by the reader workers decode events with (`WireFormat.decode`), to the depth
    /// it allows for `data` inside an event: what a producer accepts, a worker reads. It
    /// builds nothing, where Foundation's reader built the whole object to be dropped.
    static func isObject(_ bytes: ArraySlice<UInt8>) -> Bool {
        let first = bytes.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        guard first == UInt8(ascii: "{") else { return false }
        return (try? JSONTree.check(Array(bytes), maxDepth: WireFormat.maxDepth - 1)) != nil
    }
}

/// The shape of event type names.
public enum EventType {
    /// Two or more dot-separated words of `a-z`, `0-9` and `_`, each starting with a letter.
    public static func isWellFormed(_ type: String) -> Bool {
        // On the UTF-8 bytes: every event is checked, and anything not ASCII is refused.
        var words = 1
        var wordStart = true
        for byte in type.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                wordStart = false
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                guard !wordStart else { return false }
            case UInt8(ascii: "."):
                guard !wordStart else { return false }
                words += 1
                wordStart = true
            default:
                return false
            }
        }
        return words >= 2 && !wordStart
    }
}
