/// What went wrong talking to RabbitMQ. Carries the broker's reply code and text or
/// the library's status text, never a message body or a password.
package struct BrokerError: Error, CustomStringConvertible, Sendable, Equatable {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        package var description: String { name }

        /// The URL could not be parsed.
        package static let invalidURL = Code("invalidURL")
        /// TCP connect or login failed.
        package static let connectionFailed = Code("connectionFailed")
        /// The connection broke or the broker closed it (restart, heartbeat timeout).
        package static let connectionLost = Code("connectionLost")
        /// The broker closed the channel (e.g. 404 no such exchange, 406 inequivalent arguments).
        package static let channelClosed = Code("channelClosed")
        /// The broker negatively acknowledged a published message.
        package static let nacked = Code("nacked")
        /// A `mandatory` message could not be routed to any queue and came back.
        package static let returned = Code("returned")
        /// The connection was closed by this process.
        package static let closed = Code("closed")
        /// No answer from the broker in the time allowed.
        package static let timeout = Code("timeout")
        /// A name or header value the protocol cannot carry.
        package static let invalidArgument = Code("invalidArgument")
    }

    package var code: Code
    /// AMQP reply code from the broker (e.g. 312 NO_ROUTE, 404 NOT_FOUND), when there is one.
    package var replyCode: UInt16?
    package var message: String
    /// The operation that failed, e.g. `queue.declare herald.work`.
    package var operation: String?

    package init(_ code: Code, replyCode: UInt16? = nil, message: String, operation: String? = nil) {
        self.code = code
        self.replyCode = replyCode
        self.message = message
        self.operation = operation
    }

    package var description: String {
        var text = "broker error \(code)"
        if let operation { text += " in \(operation)" }
        if let replyCode { text += " (\(replyCode))" }
        return text + ": \(message)"
    }
}
