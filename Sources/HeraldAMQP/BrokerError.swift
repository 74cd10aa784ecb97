/// What went wrong talking to RabbitMQ. Carries the broker's reply code and text or
/// the library's status text, never a message body or a password.
public struct BrokerError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// TCP connect or login failed.
        public static let connectionFailed = Code("connectionFailed")
        /// The connection broke or the broker closed it (restart, heartbeat timeout).
        public static let connectionLost = Code("connectionLost")
        /// The broker closed the channel (e.g. 404 no such exchange, 406 inequivalent arguments).
        public static let channelClosed = Code("channelClosed")
        /// The broker negatively acknowledged a published message.
        public static let nacked = Code("nacked")
        /// A `mandatory` message could not be routed to any queue and came back.
        public static let returned = Code("returned")
        /// The connection was closed by this process.
        public static let closed = Code("closed")
        /// No answer from the broker in the time allowed.
        public static let timeout = Code("timeout")
        /// A name or header value the protocol cannot carry.
        public static let invalidArgument = Code("invalidArgument")
    }

    public var code: Code
    /// AMQP reply code from the broker (e.g. 312 NO_ROUTE, 404 NOT_FOUND), when there is one.
    public var replyCode: UInt16?
    public var message: String
    /// The operation that failed, e.g. `queue.declare herald.work`.
    public var operation: String?

    public init(_ code: Code, replyCode: UInt16? = nil, message: String, operation: String? = nil) {
        self.code = code
        self.replyCode = replyCode
        self.message = message
        self.operation = operation
    }

    public var description: String {
        var text = "broker error \(code)"
        if let operation { text += " in \(operation)" }
        if let replyCode { text += " (\(replyCode))" }
        return text + ": \(message)"
    }
}
