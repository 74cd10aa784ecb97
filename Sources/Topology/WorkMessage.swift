package import HeraldAMQP
public import HeraldEvents
public import Foundation
import HeraldSupport

/// What a message on the work queue asks for.
public enum WorkMessage: Sendable, Equatable {
    /// A new event from a producer: fan out, then make attempt 1 of each delivery.
    case event(Event)
    /// A scheduled retry (back from a delay queue), or a resend someone asked for
    /// (`manual`): make attempt `attempt` of one delivery. `endpoint`, when the message
    /// names it, lets a worker defer the message for a busy endpoint without a lookup.
    case delivery(id: UUID, attempt: Int, manual: Bool, endpoint: UUID? = nil)
    /// Deliveries of one endpoint deferred together, none of them claimed: each is taken
    /// as its own delivery message. One message for many keeps an endpoint that makes no
    /// progress from costing the broker a message per delivery every defer delay.
    case deferred(endpoint: UUID, deliveries: [Deferral])

    /// One delivery of a deferred batch.
    public struct Deferral: Sendable, Equatable {
        public var id: UUID
        public var attempt: Int
        public var manual: Bool
        /// Deferred from a redelivered message: the holder before it may have died with the
        /// attempt claimed, so whoever takes it resumes as from a redelivery (`Step`).
        public var redelivered: Bool

        public init(id: UUID, attempt: Int, manual: Bool, redelivered: Bool = false) {
            self.id = id
            self.attempt = attempt
            self.manual = manual
            self.redelivered = redelivered
        }
    }

    /// The most deliveries one deferred message carries.
    package static let maxDeferrals = 500

    /// Header naming a delivery message; event messages carry none.
    public static let kindHeader = "herald-kind"
    /// Herald's own attempt counter; `x-death` is never relied on.
    public static let attemptHeader = "herald-attempt"
    /// `manual` on a resend requested through the API or CLI.
    public static let triggerHeader = "herald-trigger"
    /// The trigger header's value on a resend.
    static let manualTrigger = "manual"
    /// The delivery's endpoint (optional).
    public static let endpointHeader = "herald-endpoint"

    private static func string(_ node: JSONNode?) -> String? {
        if case .string(let text)? = node?.value { return text }
        return nil
    }

    /// Reads a message; a message that cannot be read throws the reason it is parked for.
    package static func parse(_ message: Message, limits: EventLimits) throws(EventError) -> WorkMessage {
        switch message.headers[kindHeader]?.string {
        case nil:
            return .event(try WireFormat.decode(message.body, limits: limits))
        case "delivery":
            guard let attempt = message.headers[attemptHeader]?.int, attempt >= 1, attempt <= 1000 else {
                throw EventError(field: attemptHeader, reason: "must be a positive integer header")
            }
            guard let root = try? JSONTree.parse(message.body), let text = Self.string(root["delivery_id"]), let id = UUID(text: text)
            else {
                throw EventError(field: "delivery_id", reason: "the body must be {\"delivery_id\": \"<uuid>\"}")
            }
            return .delivery(
                id: id, attempt: Int(attempt), manual: message.headers[triggerHeader]?.string == manualTrigger,
                endpoint: message.headers[endpointHeader]?.string.flatMap(UUID.init(text:)))
        case "deferred":
            guard let endpoint = message.headers[endpointHeader]?.string.flatMap(UUID.init(text:)) else {
                throw EventError(field: endpointHeader, reason: "a deferred message names its endpoint")
            }
            guard let root = try? JSONTree.parse(message.body), case .array(let list)? = root["deliveries"]?.value,
                (1...maxDeferrals).contains(list.count)
            else {
                throw EventError(field: "deliveries", reason: "the body must be {\"deliveries\": [1 to \(maxDeferrals) deliveries]}")
            }
            var deferrals: [Deferral] = []
            for entry in list {
                guard let text = Self.string(entry["delivery_id"]), let id = UUID(text: text),
                    case .number(let number)? = entry["attempt"]?.value, let attempt = Int(number), (1...1000).contains(attempt)
                else {
                    throw EventError(field: "deliveries", reason: "each is {\"delivery_id\": \"<uuid>\", \"attempt\": 1 to 1000, \"manual\": bool, \"redelivered\": bool}")
                }
                var manual = false
                if case .bool(let flag)? = entry["manual"]?.value { manual = flag }
                var redelivered = false
                if case .bool(let flag)? = entry["redelivered"]?.value { redelivered = flag }
                deferrals.append(Deferral(id: id, attempt: attempt, manual: manual, redelivered: redelivered))
            }
            return .deferred(endpoint: endpoint, deliveries: deferrals)
        case let other?:
            throw EventError(field: kindHeader, reason: "unknown message kind '\(other.prefix(40))'")
        }
    }

    /// One message for deliveries of `endpoint` deferred together (at most `maxDeferrals`).
    package static func deferred(_ deliveries: [Deferral], endpoint: UUID) -> Message {
        let entries = deliveries.map {
            #"{"delivery_id":"\#($0.id.lowercasedText)","attempt":\#($0.attempt),"manual":\#($0.manual)\#($0.redelivered ? ",\"redelivered\":true" : "")}"#
        }
        return Message(
            body: Array("{\"deliveries\":[\(entries.joined(separator: ","))]}".utf8),
            headers: [kindHeader: "deferred", endpointHeader: .string(endpoint.lowercasedText)])
    }

    /// The message that asks for attempt `attempt` of delivery `id`.
    package static func retry(delivery id: UUID, attempt: Int, manual: Bool = false, endpoint: UUID? = nil) -> Message {
        var headers: FieldTable = [kindHeader: "delivery", attemptHeader: .int(Int64(attempt))]
        if manual { headers[triggerHeader] = .string(manualTrigger) }
        if let endpoint { headers[endpointHeader] = .string(endpoint.lowercasedText) }
        return Message(
            body: Array("{\"delivery_id\":\"\(id.lowercasedText)\"}".utf8), headers: headers,
            messageID: "\(id.lowercasedText).\(attempt)")
    }
}
