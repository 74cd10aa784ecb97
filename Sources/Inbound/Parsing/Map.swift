package import HeraldSupport
import HeraldEvents

/// The event a mapped webhook becomes.
package struct MappedEvent: Sendable, Equatable {
    package var type: String
    /// JSON object text, as the sender spelled it where it was JSON.
    package var data: [UInt8]
}

extension Mapping {
    /// What the mapping makes of a body: an event, nil when there is nothing to map (the
    /// type's field or header is absent: stored only, as Creatio does without an
    /// `EntityName`), or the parse error naming the field.
    package func apply(to body: ParsedBody, request: InboundRequest, maxDataBytes: Int) throws(ParseFailure) -> MappedEvent? {
        let eventType: String
        switch type {
        case .fixed(let name):
            eventType = name
        case .header(let name):
            guard let value = request.header(name) else { return nil }
            eventType = try resolve(value, field: name)
        case .field(let path):
            // Absent or null: nothing to map, as Creatio stores a webhook without EntityName.
            guard let node = path.find(in: body.root) else { return nil }
            if case .null = node.value { return nil }
            guard let value = node.scalarText else { throw ParseFailure(field: path.description, "must be a string, not \(node.kind)") }
            eventType = try resolve(value, field: path.description)
        }
        let dataNode: JSONNode
        if let path = data {
            guard let node = path.find(in: body.root) else { throw ParseFailure(field: path.description, "is missing; the mapping takes the event's data from it") }
            dataNode = node
        } else {
            dataNode = body.root
        }
        guard case .object = dataNode.value else {
            throw ParseFailure(field: data?.description ?? "body", "must be a JSON object to become an event's data, not \(dataNode.kind)")
        }
        let bytes = Array(body.json[dataNode.range])
        guard bytes.count <= maxDataBytes else {
            throw ParseFailure(field: data?.description ?? "body", "is \(bytes.count) bytes; an event's data is at most \(maxDataBytes)")
        }
        return MappedEvent(type: eventType, data: bytes)
    }

    /// The event type for a value: through the map (the registered entities) when there is one.
    private func resolve(_ value: String, field: String) throws(ParseFailure) -> String {
        if types.isEmpty {
            guard EventTypeName.isWellFormed(value) else { throw ParseFailure(field: field, EventTypeName.advice(value)) }
            return value
        }
        guard let mapped = types[value] else {
            let registered = types.keys.sorted().joined(separator: ", ")
            throw ParseFailure(field: field, "'\(value.prefix(100))' is not a registered entity; registered: \(registered)")
        }
        return mapped
    }
}
