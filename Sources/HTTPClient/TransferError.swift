/// A request that got no HTTP response, classified the way the delivery log shows it.
public struct TransferError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The total or connect timeout ran out.
        case timeout
        /// The host name did not resolve.
        case dns
        /// The TCP connection was refused or the host unreachable.
        case connect
        /// TLS handshake or certificate verification failed.
        case tls
        /// The connection broke mid-exchange (reset, empty reply, malformed response).
        case network
        /// The connect-time address policy refused the address.
        case blocked
        /// The response body passed the cap with `Overflow.abort`.
        case tooLarge
        /// The URL or a header cannot be sent (bad URL, unsupported scheme).
        case invalidRequest
        /// The client was shut down or the transfer cancelled.
        case cancelled
        /// Anything else libcurl reported.
        case other

        /// The class of a libcurl result code (`CURLcode`).
        public init(curlCode code: Int) {
            switch code {
            case 28: self = .timeout
            case 5, 6: self = .dns
            case 7: self = .connect
            case 35, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91, 98: self = .tls
            case 8, 16, 18, 52, 55, 56, 92, 95: self = .network
            case 1, 3, 43: self = .invalidRequest
            case 42: self = .cancelled
            default: self = .other
            }
        }
    }

    public var kind: Kind
    /// libcurl's result code, 0 when the error did not come from libcurl.
    public var curlCode: Int
    /// libcurl's explanation; names host and address but never headers or bodies.
    public var message: String

    public init(_ kind: Kind, curlCode: Int = 0, message: String) {
        self.kind = kind
        self.curlCode = curlCode
        self.message = message
    }

    public var description: String { "\(kind): \(message)" }
}
