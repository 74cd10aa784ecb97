internal import CHeraldAMQP
import Foundation
import HeraldSupport

/// C memory for one library call: strings, byte buffers and field tables that must
/// outlive the call and are freed together afterwards.
///
/// `amqp_basic_publish` and the declare calls serialise their arguments before they
/// return, so an arena scoped to the call is enough. Its pieces are cut from blocks
/// front to back: a publish's dozen small strings cost one allocation, not a dozen.
final class Arena {
    private static let blockSize = 1024
    private var blocks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var room = 0

    deinit {
        for block in blocks { free(block) }
    }

    /// `byteCount` bytes aligned for any C type (`malloc`'s 16 bytes at most).
    private func allocate(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        if let cursor {
            let padding = (alignment - Int(bitPattern: cursor) % alignment) % alignment
            if padding + byteCount <= room {
                self.cursor = cursor + padding + byteCount
                room -= padding + byteCount
                return cursor + padding
            }
        }
        if byteCount > Self.blockSize / 4 {
            // A large piece (a body, a long table) gets its own block; the current one stays.
            let memory = malloc(max(byteCount, 1))!
            blocks.append(memory)
            return memory
        }
        let block = malloc(Self.blockSize)!
        blocks.append(block)
        cursor = block + byteCount
        room = Self.blockSize - byteCount
        return block
    }

    func bytes(_ data: some Collection<UInt8>) -> amqp_bytes_t {
        guard !data.isEmpty else { return amqp_bytes_t(len: 0, bytes: nil) }
        let memory = allocate(byteCount: data.count, alignment: 1)
        return amqp_bytes_t(len: memory.copyBytes(of: data), bytes: memory)
    }

    func bytes(_ text: String) -> amqp_bytes_t {
        var text = text
        return text.withUTF8 { bytes($0) }
    }

    func table(_ table: FieldTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_empty_table }
        let entries = allocate(amqp_table_entry_t.self, count: table.count)
        for (index, (key, value)) in table.sorted(by: { $0.key < $1.key }).enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: field(value))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    private func field(_ value: FieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .bool(let v):
            field.kind = UInt8(ascii: "t")
            field.value.boolean = v ? 1 : 0
        case .int(let v):
            field.kind = UInt8(ascii: "l")
            field.value.i64 = v
        case .double(let v):
            field.kind = UInt8(ascii: "d")
            field.value.f64 = v
        case .string(let v):
            field.kind = UInt8(ascii: "S")
            field.value.bytes = bytes(v)
        case .bytes(let v):
            field.kind = UInt8(ascii: "x")
            field.value.bytes = bytes(v)
        case .timestamp(let v):
            field.kind = UInt8(ascii: "T")
            field.value.u64 = v
        case .array(let values):
            field.kind = UInt8(ascii: "A")
            let entries = allocate(amqp_field_value_t.self, count: max(values.count, 1))
            for (index, element) in values.enumerated() { entries[index] = self.field(element) }
            field.value.array = amqp_array_t(num_entries: Int32(values.count), entries: entries)
        case .table(let nested):
            field.kind = UInt8(ascii: "F")
            field.value.table = table(nested)
        case .void:
            field.kind = UInt8(ascii: "V")
        }
        return field
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let byteCount = count * MemoryLayout<T>.stride
        let memory = allocate(byteCount: byteCount, alignment: MemoryLayout<T>.alignment)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
        return memory.bindMemory(to: T.self, capacity: count)
    }
}

/// Reading what the library decoded back into Swift values.
enum FieldDecoder {
    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let pointer = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: bytes.len), as: UTF8.self)
    }

    static func data(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let pointer = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: bytes.len))
    }

    static func table(_ table: amqp_table_t, names: inout RecurringStrings) -> FieldTable {
        var result: FieldTable = [:]
        guard table.num_entries > 0, let entries = table.entries else { return result }
        result.reserveCapacity(Int(table.num_entries))
        for index in 0..<Int(table.num_entries) {
            result[names.string(entries[index].key)] = field(entries[index].value, names: &names)
        }
        return result
    }

    static func field(_ field: amqp_field_value_t, names: inout RecurringStrings) -> FieldValue {
        let v = field.value
        switch field.kind {
        case UInt8(ascii: "t"): return .bool(v.boolean != 0)
        case UInt8(ascii: "b"): return .int(Int64(v.i8))
        case UInt8(ascii: "B"): return .int(Int64(v.u8))
        case UInt8(ascii: "s"): return .int(Int64(v.i16))
        case UInt8(ascii: "u"): return .int(Int64(v.u16))
        case UInt8(ascii: "I"): return .int(Int64(v.i32))
        case UInt8(ascii: "i"): return .int(Int64(v.u32))
        case UInt8(ascii: "l"): return .int(v.i64)
        case UInt8(ascii: "L"): return v.u64 <= UInt64(Int64.max) ? .int(Int64(v.u64)) : .double(Double(v.u64))
        case UInt8(ascii: "f"): return .double(Double(v.f32))
        case UInt8(ascii: "d"): return .double(v.f64)
        case UInt8(ascii: "D"):
            return .double(Double(v.decimal.value) / pow(10, Double(v.decimal.decimals)))
        case UInt8(ascii: "S"): return .string(string(v.bytes))
        case UInt8(ascii: "x"): return .bytes(data(v.bytes))
        case UInt8(ascii: "T"): return .timestamp(v.u64)
        case UInt8(ascii: "F"): return .table(table(v.table, names: &names))
        case UInt8(ascii: "A"):
            guard v.array.num_entries > 0, let entries = v.array.entries else { return .array([]) }
            var values: [FieldValue] = []
            values.reserveCapacity(Int(v.array.num_entries))
            for index in 0..<Int(v.array.num_entries) { values.append(self.field(entries[index], names: &names)) }
            return .array(values)
        default: return .void
        }
    }

    /// `names` keeps the strings that recur from message to message (header keys, the
    /// content type, the type); ids and values are read afresh.
    static func message(_ properties: amqp_basic_properties_t, body: amqp_bytes_t, names: inout RecurringStrings) -> Message {
        let flags = properties._flags
        func has(_ flag: UInt32) -> Bool { flags & flag != 0 }
        return Message(
            body: data(body),
            headers: has(herald_flag_headers) ? table(properties.headers, names: &names) : [:],
            contentType: has(herald_flag_content_type) ? names.string(properties.content_type) : nil,
            messageID: has(herald_flag_message_id) ? string(properties.message_id) : nil,
            correlationID: has(herald_flag_correlation_id) ? string(properties.correlation_id) : nil,
            type: has(herald_flag_type) ? names.string(properties.type) : nil,
            timestamp: has(herald_flag_timestamp) ? properties.timestamp : nil,
            expiration: has(herald_flag_expiration) ? string(properties.expiration) : nil,
            persistent: has(herald_flag_delivery_mode) && properties.delivery_mode == 2)
    }

    /// Encodes `message`'s properties into `arena`.
    static func properties(_ message: Message, extraHeaders: FieldTable, arena: Arena) -> amqp_basic_properties_t {
        var properties = amqp_basic_properties_t()
        var flags: UInt32 = herald_flag_delivery_mode
        properties.delivery_mode = message.persistent ? 2 : 1
        var headers = message.headers
        headers.merge(extraHeaders) { _, new in new }
        if !headers.isEmpty {
            flags |= herald_flag_headers
            properties.headers = arena.table(headers)
        }
        if let contentType = message.contentType {
            flags |= herald_flag_content_type
            properties.content_type = arena.bytes(contentType)
        }
        if let messageID = message.messageID {
            flags |= herald_flag_message_id
            properties.message_id = arena.bytes(messageID)
        }
        if let correlationID = message.correlationID {
            flags |= herald_flag_correlation_id
            properties.correlation_id = arena.bytes(correlationID)
        }
        if let type = message.type {
            flags |= herald_flag_type
            properties.type = arena.bytes(type)
        }
        if let timestamp = message.timestamp {
            flags |= herald_flag_timestamp
            properties.timestamp = timestamp
        }
        if let expiration = message.expiration {
            flags |= herald_flag_expiration
            properties.expiration = arena.bytes(expiration)
        }
        properties._flags = flags
        return properties
    }
}

/// The strings a connection reads again with nearly every message — consumer tags,
/// exchange names, routing keys, header keys, content types — kept so that a message
/// reuses the copy made for an earlier one instead of allocating its own. Owned by the
/// connection's thread. Strings of up to 15 bytes are stored inline by Swift and never
/// allocate, so only longer ones are kept; the most recent 32 are.
struct RecurringStrings {
    private var kept: [String] = []
    private var next = 0
    static let capacity = 32

    mutating func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 15, let pointer = bytes.bytes else { return FieldDecoder.string(bytes) }
        let wanted = UnsafeRawBufferPointer(start: pointer, count: bytes.len)
        for index in kept.indices {
            let same = kept[index].utf8.withContiguousStorageIfAvailable { stored in
                stored.count == wanted.count && memcmp(stored.baseAddress!, pointer, wanted.count) == 0
            }
            if same == true { return kept[index] }
        }
        let made = String(decoding: wanted, as: UTF8.self)
        if kept.count < Self.capacity {
            kept.append(made)
        } else {
            // The oldest goes: names that stop recurring (a closed consumer's tag) age out.
            kept[next] = made
            next = (next + 1) % Self.capacity
        }
        return made
    }
}
