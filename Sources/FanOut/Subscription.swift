import HeraldEvents
package import HeraldSupport

/// What an endpoint's subscription makes of an event.
public enum Target: Sendable, Equatable {
    /// Not for this endpoint.
    case none
    /// Deliver.
    case deliver
    /// Would be delivered, but the endpoint is disabled: record the delivery as skipped.
    case skip
}

extension Endpoint {
    /// Whether `type` is in the endpoint's selection: exact, a wildcard on a prefix of
    /// whole words (`invoice.*` matches `invoice.paid` and `invoice.item.added`), or `*`.
    public func selects(_ type: String) -> Bool {
        eventTypes.contains { pattern in
            if pattern == "*" || pattern == type { return true }
            guard pattern.hasSuffix(".*") else { return false }
            return type.hasPrefix(pattern.dropLast())
        }
    }

    /// Whether every filter key is an attribute of the event with an allowed value.
    public func filtersAccept(_ attributes: [String: String]) -> Bool {
        filters.allSatisfy { key, allowed in attributes[key].map(allowed.contains) ?? false }
    }

    /// The subscription decision for one event. `client.deleted` (the erasure notice)
    /// reaches every endpoint of the tenant whatever its selection and filters.
    public func target(for type: String, attributes: [String: String], data: ParsedData) -> Target {
        let wanted =
            type == Catalog.erasureType
            || (selects(type) && filtersAccept(attributes) && (payloadFilter.map { filter in data.root.map(filter.matches) ?? false } ?? true))
        guard wanted else { return .none }
        if enabled { return .deliver }
        return disabledAt != nil ? .skip : .none
    }
}

/// An event's `data` as payload filters read it: parsed once per fan-out, and only when
/// an endpoint has a payload filter. Data nested deeper than 64 levels matches no filter.
public final class ParsedData {
    private let bytes: ArraySlice<UInt8>
    private var parsed: JSONNode??

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes[...]
    }

    package init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    package var root: JSONNode? {
        if let parsed { return parsed }
        let node = try? JSONTree.parse(Array(bytes), maxValues: .max)
        parsed = .some(node)
        return node
    }
}
