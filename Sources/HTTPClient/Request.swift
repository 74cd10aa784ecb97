/// One HTTP request. Deliberately narrow: Herald posts JSON to receivers and reads a
/// bounded excerpt of what they answer.
public struct Request: Sendable {
    public var url: String
    public var method: String
    /// Sent in order; names are case-insensitive on the wire.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8] {
        get { Array(bodyBytes) }
        set { bodyBytes = newValue[...] }
    }
    /// The body as a slice, so that a webhook's body can be the event's `data` inside the
    /// message it came in, not a copy of it.
    package var bodyBytes: ArraySlice<UInt8>
    /// Upper bound for the whole transfer, connect included.
    public var timeout: Duration
    /// Upper bound for DNS resolution and TCP/TLS connect.
    public var connectTimeout: Duration
    /// Response body bytes kept; the rest is handled per `overflow`.
    public var maxResponseBytes: Int
    public var overflow: Overflow

    /// What happens to response body bytes past `maxResponseBytes`.
    public enum Overflow: Sendable {
        /// Read and dropped: the transfer completes and the status code counts.
        case discard
        /// The transfer is aborted at the cap: the response (status, headers, capped body)
        /// is still returned once its status line arrived; before that, `tooLarge`.
        case abort
    }

    public init(
        url: String, method: String = "POST", headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        timeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(5), maxResponseBytes: Int = 4096,
        overflow: Overflow = .discard
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.bodyBytes = body[...]
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
        self.overflow = overflow
    }
}

/// What the server answered. Any status is a response, 3xx included: redirects are
/// never followed.
public struct Response: Sendable {
    public var status: Int
    /// Header fields of the final response, in order, as sent.
    public var headers: [(name: String, value: String)]
    /// At most `maxResponseBytes` of the body.
    public var body: [UInt8]
    /// True when the body was longer than what `body` holds.
    public var bodyTruncated: Bool
    /// The transfer's time as curl measured it on its thread (`CURLINFO_TOTAL_TIME`, to the
    /// microsecond): the endpoint's answer, without the caller's wait to resume.
    public var duration: Duration
    /// The address actually connected to.
    public var remoteAddress: String?

    public init(
        status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [], bodyTruncated: Bool = false,
        duration: Duration = .zero, remoteAddress: String? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTruncated = bodyTruncated
        self.duration = duration
        self.remoteAddress = remoteAddress
    }

    /// The first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }
}

/// An address a transfer is about to connect to, for the connect-time policy.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable { case ipv4, ipv6 }
    public let family: Family
    /// 4 or 16 bytes in network order.
    public let bytes: [UInt8]
    public let port: Int

    public init(family: Family, bytes: [UInt8], port: Int) {
        self.family = family
        self.bytes = bytes
        self.port = port
    }

    public var description: String {
        switch family {
        case .ipv4: return bytes.map(String.init).joined(separator: ".")
        case .ipv6:
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
    }
}
