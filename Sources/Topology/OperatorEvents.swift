package import Foundation
package import HeraldAMQP
package import HeraldEvents

/// Where an operator event goes: the operator exchange always; the events exchange too,
/// as the operator tenant's event, when there is one. Never for an event about the
/// operator tenant itself, so a failing operator endpoint cannot feed on its own events.
package enum OperatorEvents {
    package static func messages(_ event: OperatorEvent, topology: Topology, operatorTenant: UUID?) -> [(message: Message, exchange: String)] {
        var messages = [(Message(body: event.json, messageID: event.id, type: event.kind.rawValue), topology.operatorExchange)]
        if let operatorTenant, event.tenantID != operatorTenant {
            messages.append((Message(body: WireFormat.encode(event.event(for: operatorTenant))), topology.eventsExchange))
        }
        return messages
    }
}
